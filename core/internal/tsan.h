// SPDX-License-Identifier: MIT
#pragma once

// ThreadSanitizer annotations for the hand-overs that Qt orders where TSan cannot see it.
//
// Debian's Qt is not built with -fsanitize=thread, so TSan does not see the locks inside it
// (QMutex is a futex, taken in Qt's own uninstrumented code). Three hand-overs of ours go
// through such a lock: a closure given to a QThreadPool (written by the submitting thread,
// read by the worker), a QPromise's result (written on the thread that computes it, read
// where the future is watched) and a call posted to another thread's event loop (the
// closure written by the poster, called by the receiver). Each gets one release before the
// hand-over and one acquire where it arrives, in the wrappers below, so that TSan knows the
// order Qt keeps. A fourth order is Qt's own but too weak for TSan: a QList changed in place
// once the copies other threads read are dropped (acquireDroppedCopies()). The annotations
// compile to nothing unless the build has -fsanitize=thread, and postTo() is then
// QMetaObject::invokeMethod (docs/testing-sanitizers.md).

#include <QArrayDataPointer>
#include <QCoreApplication>
#include <QEvent>
#include <QFuture>
#include <QFutureWatcher>
#include <QObject>
#include <QPromise>
#include <QRunnable>
#include <QThreadPool>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#  define TASKDECK_WITH_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define TASKDECK_WITH_TSAN 1
#  endif
#endif

#if defined(TASKDECK_WITH_TSAN)
#  include <sanitizer/tsan_interface.h>
/*! What this thread did so far happens before a later TASKDECK_HAPPENS_AFTER(\a addr). */
#  define TASKDECK_HAPPENS_BEFORE(addr) \
      __tsan_release(const_cast<void *>(static_cast<const volatile void *>(addr)))
/*! What threads did before their TASKDECK_HAPPENS_BEFORE(\a addr) happens before what follows. */
#  define TASKDECK_HAPPENS_AFTER(addr) \
      __tsan_acquire(const_cast<void *>(static_cast<const volatile void *>(addr)))
#else
#  define TASKDECK_HAPPENS_BEFORE(addr) static_cast<void>(addr)
#  define TASKDECK_HAPPENS_AFTER(addr) static_cast<void>(addr)
#endif

namespace taskdeck::detail {

/*! \internal A closure run once by a QThreadPool, with the hand-over annotated. */
template <typename F>
class PooledClosure final : public QRunnable
{
public:
    PooledClosure(QThreadPool *pool, F &&fn) : m_pool(pool), m_fn(std::move(fn)) {}
    PooledClosure(QThreadPool *pool, const F &fn) : m_pool(pool), m_fn(fn) {}
    ~PooledClosure() override
    {
        // Also reached without run() when the pool is cleared before it got to it.
        TASKDECK_HAPPENS_AFTER(this);
        m_fn.reset();
        // The closure's last step, for waitForPool().
        TASKDECK_HAPPENS_BEFORE(m_pool);
    }
    Q_DISABLE_COPY_MOVE(PooledClosure)

    void run() override
    {
        TASKDECK_HAPPENS_AFTER(this);
        (*m_fn)();
    }

private:
    QThreadPool *const m_pool;
    std::optional<F> m_fn;
};

/*!
 * Runs \a fn once on \a pool, like QThreadPool::start(), with the hand-over of \a fn and of
 * everything the calling thread wrote before visible to ThreadSanitizer.
 *
 * The closure is built here, before the release, and Qt's queue only passes its pointer on;
 * the worker acquires before anything else. \a fn may be move-only and may be mutable; it is
 * destroyed on the worker after it ran.
 */
template <typename F>
void startOnPool(QThreadPool *pool, F &&fn, int priority = 0)
{
    auto *closure = new PooledClosure<std::decay_t<F>>(pool, std::forward<F>(fn));
    TASKDECK_HAPPENS_BEFORE(closure);
    pool->start(closure, priority);
}

/*!
 * Waits like QThreadPool::waitForDone() (for ever) for every closure started on \a pool, and
 * makes what they did, their destruction included, happen before what follows: Qt's wait is
 * a condition inside Qt that TSan does not see, and an owner that frees what its closures
 * read once they are done (a store's state, after its last query) needs that order.
 */
inline void waitForPool(QThreadPool *pool)
{
    pool->waitForDone();
    TASKDECK_HAPPENS_AFTER(pool);
}

/*!
 * Call before changing \a list in place (an append, a remove) where copies of it may have
 * been read on other threads and dropped since.
 *
 * Each copy of an implicitly shared QList drops its reference with a release, but QList
 * decides that its buffer is no longer shared, and may be changed in place, with a relaxed
 * load of the count (QArrayData::needsDetach()): nothing orders the other threads' reads of
 * the lines before this thread's writes, for TSan or for the C++ memory model. Qt relies on
 * the hardware there. This is the acquire that load leaves out, on the count's own address,
 * where TSan keeps what the releasing decrements published.
 */
template <typename T>
void acquireDroppedCopies(QList<T> &list)
{
#if defined(TASKDECK_WITH_TSAN)
    // Qt 6.4's QList has no accessor for its header: it holds a QArrayDataPointer and
    // nothing else, whose first member is the header (with the count first).
    static_assert(sizeof(QList<T>) == sizeof(QArrayDataPointer<T>));
    QArrayData *header = nullptr;
    std::memcpy(&header, static_cast<const void *>(&list), sizeof header);
    if (header)
        TASKDECK_HAPPENS_AFTER(&header->ref_);
#else
    Q_UNUSED(list);
#endif
}

/*!
 * \internal The address both sides of a future's hand-over name: its first result, which lives
 * as long as any copy of the future. Null when the future holds no result.
 */
template <typename T>
const void *resultKey(const QFuture<T> &future)
{
    if (future.resultCount() == 0)
        return nullptr;
    return &*future.constBegin(); // the stored result itself, not a copy
}

/*!
 * Sets \a value as \a promise's result and marks the hand-over: what this thread wrote before
 * (the result included) happens before whatever reads the result through
 * acquireResult(). Call it before QPromise::finish(). Returns false when the promise did not
 * take the result (it was canceled).
 */
#if defined(TASKDECK_WITH_TSAN)
/*!
 * \internal Held while a result is stored and its hand-over marked (publishResult()), and
 * while a reader that gives up on a future looks for a result (abandonResult()): a lock TSan
 * sees, so that a reader either finds the release of a stored result or cancels the future
 * before anything is stored. Only in the tsan build.
 */
inline std::mutex &publishMutex()
{
    static std::mutex mutex;
    return mutex;
}
#endif

template <typename T, typename V>
bool publishResult(QPromise<T> &promise, V &&value)
{
#if defined(TASKDECK_WITH_TSAN)
    const std::lock_guard lock(publishMutex());
#endif
    if (!promise.addResult(std::forward<V>(value)))
        return false;
    if (const void *key = resultKey(promise.future()))
        TASKDECK_HAPPENS_BEFORE(key);
    return true;
}

/*!
 * The reading side of publishResult(): call it on the thread that got \a future's result
 * before it reads it.
 */
template <typename T>
void acquireResult(const QFuture<T> &future)
{
    if (const void *key = resultKey(future))
        TASKDECK_HAPPENS_AFTER(key);
}

/*!
 * The reader is done with \a future's result: the thread that drops the last copy of the
 * future (and so destroys the result) calls acquireResult() first. A reader that may not hold
 * the last copy calls this when it has read.
 */
template <typename T>
void releaseResult(const QFuture<T> &future)
{
    if (const void *key = resultKey(future))
        TASKDECK_HAPPENS_BEFORE(key);
}

/*!
 * A reader lets go of \a future without reading its result, or after it read it: its owner
 * is going away, maybe before the future finished. An unfinished future is canceled, so a
 * result not stored yet never is (QPromise::addResult() refuses it), and the release of one
 * stored already is acquired: the reader's copy of the future may be the last one and then
 * destroys the result. Without this, an owner deleted between the store and the watcher's
 * finished() destroys a result TSan never saw handed over.
 */
template <typename T>
void abandonResult(QFuture<T> future)
{
    if (!future.isFinished())
        future.cancel();
#if defined(TASKDECK_WITH_TSAN)
    const std::lock_guard lock(publishMutex());
#endif
    acquireResult(future);
}

/*!
 * A QFutureWatcher for a future whose result comes from publishResult(): it calls
 * abandonResult() when it is destroyed, whether or not the result was read. Readers that may
 * go away while the future is in flight (detail::whenDone()) watch with it.
 */
template <typename T>
class ResultWatcher final : public QFutureWatcher<T>
{
public:
    explicit ResultWatcher(QObject *parent = nullptr) : QFutureWatcher<T>(parent) {}
    ~ResultWatcher() override { abandonResult(this->future()); }
    Q_DISABLE_COPY_MOVE(ResultWatcher)
};

/*!
 * Finishes \a promise after publishResult() and lets go of it. The reader may have read the
 * result and dropped its copies of the future already; this thread then holds the last one
 * and destroys the result when it returns, so it acquires what the reader released in
 * releaseResult() first, as late as it can.
 */
template <typename T>
void finishPublished(std::shared_ptr<QPromise<T>> promise)
{
    const QFuture<T> future = promise->future();
    promise->finish();
    promise.reset();
    acquireResult(future);
}

/*!
 * Computes \a fn() once on \a pool and returns a future of its result, like
 * QtConcurrent::run(pool, fn), with the hand-over of \a fn and of its result visible to
 * ThreadSanitizer: read the result with acquireResult() first, or through a ResultWatcher.
 */
template <typename F>
auto computeOnPool(QThreadPool *pool, F &&fn) -> QFuture<std::invoke_result_t<std::decay_t<F> &>>
{
    using Result = std::invoke_result_t<std::decay_t<F> &>;
    // Shared, as finishPublished() wants it: the worker's copy is the last one it lets go of.
    auto promise = std::make_shared<QPromise<Result>>();
    QFuture<Result> future = promise->future();
    promise->start();
    startOnPool(pool, [promise, fn = std::forward<F>(fn)]() mutable {
        if (!promise->isCanceled())
            publishResult(*promise, fn());
        finishPublished(std::move(promise));
    });
    return future;
}

#if defined(TASKDECK_WITH_TSAN)

/*!
 * \internal A call posted to another thread's loop by postTo(). The receiver's event()
 * never sees it: the delivery hook below takes it first.
 */
class PostedCall : public QEvent
{
public:
    static QEvent::Type eventType()
    {
        static const auto type = QEvent::Type(QEvent::registerEventType());
        return type;
    }
    PostedCall() : QEvent(eventType()) {}
    ~PostedCall() override
    {
        // Also reached without call() when the receiver went first and Qt drops the event.
        TASKDECK_HAPPENS_AFTER(this);
    }
    Q_DISABLE_COPY_MOVE(PostedCall)

    void deliver()
    {
        TASKDECK_HAPPENS_AFTER(this);
        call();
    }

private:
    virtual void call() = 0;
};

template <typename F>
class PostedClosure final : public PostedCall
{
public:
    explicit PostedClosure(F &&fn) : m_fn(std::move(fn)) {}
    explicit PostedClosure(const F &fn) : m_fn(fn) {}

private:
    void call() override { m_fn(); }
    F m_fn;
};

/*!
 * \internal Qt's hook before every event reaches its receiver, on the receiver's thread:
 * a PostedCall is called here and goes no further.
 */
inline bool deliverPostedCall(void **data)
{
    auto *event = static_cast<QEvent *>(data[1]);
    if (event->type() != PostedCall::eventType())
        return false;
    static_cast<PostedCall *>(event)->deliver();
    *static_cast<bool *>(data[2]) = true;
    return true;
}

inline void installPostedCallHook()
{
    QInternal::registerCallback(QInternal::EventNotifyCallback, &deliverPostedCall);
}

// The hook goes in when the application object is made, on the main thread, before any
// worker can post: Qt's callback list is not safe to change while events are delivered.
inline const bool postedCallHookQueued = (qAddPreRoutine(&installPostedCallHook), true);

#endif

/*!
 * Calls \a fn once in \a context's thread from its event loop, like
 * QMetaObject::invokeMethod(context, fn, Qt::QueuedConnection), and not at all when
 * \a context is destroyed first. Meant for calls from another thread: with ThreadSanitizer,
 * what the calling thread did before happens before \a fn runs.
 */
template <typename F>
void postTo(QObject *context, F &&fn)
{
#if defined(TASKDECK_WITH_TSAN)
    auto *event = new PostedClosure<std::decay_t<F>>(std::forward<F>(fn));
    TASKDECK_HAPPENS_BEFORE(event);
    QCoreApplication::postEvent(context, event);
#else
    QMetaObject::invokeMethod(context, std::forward<F>(fn), Qt::QueuedConnection);
#endif
}

} // namespace taskdeck::detail
