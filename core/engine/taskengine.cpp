// SPDX-License-Identifier: MIT
#include "taskengine.h"

#include "runcontext.h"
#include "runrecorder.h"
#include "spinmutex.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QHash>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QMetaMethod>
#include <QMutex>
#include <QRandomGenerator>
#include <QScopeGuard>
#include <QSet>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <QUuid>
#include <QVarLengthArray>
#include <QWaitCondition>

#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <typeinfo>
#include <unordered_map>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

Q_LOGGING_CATEGORY(lcEngine, "taskdeck.engine")

namespace taskdeck {

namespace {

qint64 steadyNowMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

QString demangledTypeName(const std::type_info &type)
{
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
    return status == 0 && name ? QString::fromLatin1(name.get()) : QString::fromLatin1(type.name());
}

/*!
 * A time-ordered (version 7) UUID without braces: 48 bits of Unix milliseconds, a 12-bit
 * counter that keeps the ids of one millisecond in order, and 62 random bits. Run ids thus
 * sort by creation, and the history's index on them grows at its end: with random ids
 * every commit rewrote index pages all over the file.
 */
QString newRunId()
{
    static std::atomic<quint64> last{0}; // (milliseconds << 12) | counter of the latest id
    const quint64 now = quint64(QDateTime::currentMSecsSinceEpoch()) << 12;
    quint64 previous = last.load(std::memory_order_relaxed);
    quint64 next = 0;
    do {
        // A clock that steps back, or more than 4096 ids in one millisecond, borrow from
        // the next millisecond: order wins over exact time.
        next = std::max(now, previous + 1);
    } while (!last.compare_exchange_weak(previous, next, std::memory_order_relaxed));
    const quint64 ms = next >> 12;

    QUuid uuid = QUuid::createUuid(); // random bits with the RFC variant already set
    uuid.data1 = quint32(ms >> 16);
    uuid.data2 = quint16(ms & 0xffff);
    uuid.data3 = quint16(0x7000 | (next & 0xfff));

    QString id(36, Qt::Uninitialized);
    char16_t *out = reinterpret_cast<char16_t *>(id.data());
    const auto hex = [&out](quint64 value, int digits) {
        for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
            *out++ = u"0123456789abcdef"[(value >> shift) & 0xf];
    };
    hex(uuid.data1, 8);
    *out++ = u'-';
    hex(uuid.data2, 4);
    *out++ = u'-';
    hex(uuid.data3, 4);
    *out++ = u'-';
    hex(quint64(uuid.data4[0]) << 8 | uuid.data4[1], 4);
    *out++ = u'-';
    for (int i = 2; i < 8; ++i)
        hex(uuid.data4[i], 2);
    return id;
}

QString processOwner()
{
    // "pid@host#start": the start time (in clock ticks since boot, from /proc) tells a live
    // owner from a later process that happens to reuse its pid.
    static const QString owner = [] {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        QString start = u"0"_s;
        QFile stat(u"/proc/self/stat"_s);
        if (stat.open(QIODevice::ReadOnly)) {
            const QByteArray text = stat.readAll();
            const qsizetype close = text.lastIndexOf(')');
            const QList<QByteArray> fields = text.mid(close + 2).split(' ');
            // Field 22 of stat is the start time; fields here start at field 3.
            if (fields.size() > 19)
                start = QString::fromLatin1(fields.at(19));
        }
        return u"%1@%2#%3"_s.arg(QCoreApplication::applicationPid()).arg(QString::fromLocal8Bit(host), start);
    }();
    return owner;
}

// Producers wait when this many log lines are waiting for the engine's thread, so a task
// that prints faster than the receivers consume is slowed down instead of growing memory.
constexpr qsizetype kPendingLineCap = 50000;

constexpr qint64 kNever = std::numeric_limits<qint64>::max();

enum StopReason : int { NotStopped = 0, StopCanceled = 1, StopTimedOut = 2 };

} // namespace

namespace detail {

struct RunState;
using RunStatePtr = std::shared_ptr<RunState>;

/*!
 * One entry on the way to the engine's thread. Producers push entries onto a lock-free
 * list; the engine's thread takes the whole list at once and delivers it in order.
 */
struct EventNode
{
    enum class Kind { Queued, Started, Activity, Finished };
    explicit EventNode(Kind k, bool inState = false) : kind(k), embedded(inState) {}
    virtual ~EventNode() = default;
    Q_DISABLE_COPY_MOVE(EventNode)

    const Kind kind;
    const bool embedded;      // part of the RunState, not deleted after delivery
    RunStatePtr state;        // keeps the run alive until the entry is delivered
    EventNode *next = nullptr;
};

/*! A start: the run as it was when the attempt began. */
struct StartedEvent final : EventNode
{
    explicit StartedEvent(bool inState = false) : EventNode(Kind::Started, inState) {}
    Run snapshot;
};

/*!
 * A run's log lines and latest progress. It stays open (the run's \c activity) and keeps
 * filling until the engine's thread takes its contents or a lifecycle event of the run
 * closes it, so lines never overtake a start or a finish.
 */
struct ActivityEvent final : EventNode
{
    ActivityEvent() : EventNode(Kind::Activity) {}
    LogLines lines;                   // guarded by state->mutex
    std::optional<Progress> progress; // guarded by state->mutex
};

struct RunState
{
    TaskPtr task;
    QJsonObject args;  // typed, secrets in clear; read-only after creation
    RunOptions options;
    std::chrono::milliseconds timeout{0};

    std::atomic<bool> cancelRequested{false};
    std::atomic<int> stopReason{NotStopped};
    // When the current attempt times out (steady clock, ms); 0 for none. Written under mutex.
    std::atomic<qint64> deadlineMs{0};

    mutable std::mutex mutex;
    Run run;                    // guarded by mutex
    // Made on the first line: many runs log nothing, and an empty deque already allocates.
    std::unique_ptr<std::deque<LogLine>> recent; // guarded by mutex
    QString scratchDir;         // guarded by mutex
    ActivityEvent *activity = nullptr; // guarded by mutex; the open entry, if any
    bool finished = false;      // guarded by mutex
    bool closed = false;        // guarded by mutex; set when the final snapshot is taken
    std::atomic<int> appending{0}; // log lines numbered but not yet handed to the recorder
    // One condition for both "finished" and "canceled": waiters recheck what they wait for.
    std::condition_variable changed; // waits on mutex

    // Every run has one queued and one finished event and usually one start: their entries
    // live here instead of on the heap. The queued and finished entries carry no copy of
    // the run: a queued run differs from a new Run only in fields fixed when it is made,
    // and a finished run no longer changes.
    EventNode queuedEvent{EventNode::Kind::Queued, true};
    StartedEvent startedEvent{true};
    EventNode finishedEvent{EventNode::Kind::Finished, true};
};

// Runs taken from the queue under the scheduling mutex, started after it is released.
using ReadyRuns = QVarLengthArray<RunStatePtr, 4>;

struct Outcome
{
    bool ok = false;
    QJsonValue result;
    RunError error;
};

class EngineCore
{
public:
    EngineCore(TaskEngine *q, TaskRegistry *registry, const EngineConfig &config);
    ~EngineCore();

    StartResult start(const QString &key, const QJsonObject &args, const RunOptions &options,
                      std::shared_ptr<RunState> *state = nullptr);
    bool cancel(const QString &runId);
    void cancelAll();
    RunStatePtr find(const QString &runId) const;
    std::optional<Run> waitForFinished(const QString &runId, std::chrono::milliseconds timeout);
    Run waitForState(const std::shared_ptr<RunState> &st, std::chrono::milliseconds timeout, bool *finished);
    bool shutdown(std::chrono::milliseconds grace);
    void deliverEvents();

    // Called from RunContext on a worker thread.
    void appendLog(const RunStatePtr &st, LogStream stream, const QString &text);
    void appendLines(const RunStatePtr &st, const OutputLine *lines, qsizetype count);
    void setProgress(const RunStatePtr &st, const Progress &progress);
    bool sleep(const RunStatePtr &st, std::chrono::milliseconds duration);

    TaskEngine *q;
    TaskRegistry *registry;
    EngineConfig config;
    // config.effectiveMaxConcurrent(), resolved once: with maxConcurrent 0 it asks the
    // kernel for the CPUs this process may use, a system call too slow for every dispatch.
    const int maxActive;
    QThreadPool pool;
    IRunRecorder *recorder = nullptr;

private:
    friend class taskdeck::TaskEngine;
    void dispatchLocked(ReadyRuns &ready);
    void launch(const ReadyRuns &ready, qsizetype from = 0);
    void work(RunStatePtr st);
    RunStatePtr execute(const RunStatePtr &st);
    RunStatePtr linger();
    Outcome invoke(const RunStatePtr &st, int attempt);
    void beginAttempt(const RunStatePtr &st, int attempt);
    RunStatePtr finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning,
                       bool handOff = false);
    void requestStop(const RunStatePtr &st, StopReason reason);
    void deliver(EventNode *node);
    static Run queuedSnapshot(const RunState &st);
    void linkEvent(EventNode *node);
    // The run's open activity entry, made and linked if there is none; st->mutex held.
    ActivityEvent *activityLocked(const RunStatePtr &st, bool *opened);
    void requestDelivery(bool soon);
    void schedulerLoop();
    qint64 stopOverdue();
    void wakeSchedulerFor(qint64 atMs);
    bool onEngineThread() const { return QThread::currentThread() == q->thread(); }

    // Scheduling state.
    mutable SpinMutex m_mutex;
    std::deque<RunStatePtr> m_queue;                   // guarded by m_mutex
    std::vector<RunStatePtr> m_active;                 // guarded by m_mutex; dispatched, not finished
    QHash<QString, RunStatePtr> m_runs;                // guarded by m_mutex
    std::deque<QString> m_finishedOrder;               // guarded by m_mutex
    QHash<QString, int> m_runningPerTask;              // guarded by m_mutex; limited tasks only
    // A worker whose run ended with the queue empty waits briefly for the next run (see
    // linger()); dispatch hands it over through m_handoff instead of waking another thread.
    bool m_lingering = false;                          // guarded by m_mutex
    RunStatePtr m_handoff;                             // guarded by m_mutex
    std::atomic<bool> m_handoffReady{false};
    // Finishes waiting for the recorder. Publishing one takes no lock unless shutdown()
    // waits for the count to reach zero (m_publishWaiter).
    std::atomic<int> m_unpublished{0};
    std::atomic<bool> m_publishWaiter{false};
    std::condition_variable_any m_allPublished;        // waits on m_mutex
    std::atomic<bool> m_accepting{true};               // written under m_mutex
    double m_tokens = 0;                               // guarded by m_mutex
    qint64 m_lastRefillMs = 0;                         // guarded by m_mutex

    // Events on their way to the engine's thread: a lock-free list, newest first.
    std::atomic<EventNode *> m_eventHead{nullptr};
    std::atomic<bool> m_flushQueued{false};  // a delivery is on its way (timer or soon)
    std::atomic<bool> m_soonQueued{false};   // a delivery on the next turn of the loop
    std::atomic<qsizetype> m_pendingLineCount{0};
    std::mutex m_drainMutex;                 // only for producers waiting on backpressure
    std::condition_variable m_eventsDrained; // waits on m_drainMutex
    std::atomic<bool> m_draining{false};
    QTimer m_flushTimer;

    // Timeouts and rate-limit wake-ups, served by one thread so they fire even while the
    // engine's thread is blocked in run(). It finds the deadlines of the running runs in
    // m_active, so starting a run with the usual timeout costs no lock here and no wake-up.
    std::mutex m_schedMutex;
    std::condition_variable m_schedCondition;
    // When the scheduler's current wait ends (the maximum before its first look). A deadline
    // at or after it needs no wake-up: the scheduler publishes this before it looks at the
    // runs a last time, so it either sees the deadline or is woken for it.
    std::atomic<qint64> m_schedWakeAt{std::numeric_limits<qint64>::max()};
    bool m_rescan = false;                             // guarded by m_schedMutex
    qint64 m_rateWakeAt = 0;                           // guarded by m_schedMutex
    bool m_schedStop = false;                          // guarded by m_schedMutex
    std::thread m_scheduler;
};

EngineCore::EngineCore(TaskEngine *engine, TaskRegistry *reg, const EngineConfig &cfg)
    : q(engine)
    , registry(reg)
    , config(cfg)
    , maxActive(config.effectiveMaxConcurrent())
{
    config.bufferSize = std::max(1, config.bufferSize);
    config.finishedRunsKept = std::max(0, config.finishedRunsKept);
    config.startBurst = std::max(1, config.startBurst);
    pool.setObjectName(u"taskdeck-engine"_s);
    pool.setMaxThreadCount(maxActive);
    m_tokens = config.startBurst;
    m_lastRefillMs = steadyNowMs();
    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(int(config.eventInterval.count()));
    QObject::connect(&m_flushTimer, &QTimer::timeout, q, [this] { deliverEvents(); });
    m_scheduler = std::thread([this] { schedulerLoop(); });
}

EngineCore::~EngineCore()
{
    shutdown(5s);
    // A task that ignores cancellation still holds a worker; its thread must end before the
    // state it uses goes away.
    pool.waitForDone();
    // Entries nobody delivered (the engine's thread had no event loop) hold their runs.
    EventNode *node = m_eventHead.exchange(nullptr);
    while (node) {
        EventNode *next = node->next;
        if (node->embedded) {
            const RunStatePtr release = std::move(node->state); // may free the node itself
        } else {
            delete node;
        }
        node = next;
    }
}

StartResult EngineCore::start(const QString &key, const QJsonObject &args, const RunOptions &options,
                              RunStatePtr *state)
{
    StartResult answer;
    const TaskPtr task = registry->find(key);
    if (!task) {
        answer.error.code = StartError::Code::UnknownTask;
        answer.error.suggestions = registry->nearestKeys(key);
        answer.error.message = answer.error.suggestions.isEmpty()
            ? u"unknown task \"%1\""_s.arg(key)
            : u"unknown task \"%1\"; did you mean: %2?"_s.arg(key, answer.error.suggestions.join(u", "_s));
        return answer;
    }
    Validation validation = validateArguments(task->fields, args);
    if (!validation.ok()) {
        answer.error.code = StartError::Code::InvalidArguments;
        answer.error.fields = validation.errors;
        answer.error.message = u"invalid arguments for task \"%1\": %2"_s.arg(key, formatFieldErrors(validation.errors));
        return answer;
    }
    if (task->isDangerous() && !options.confirmed) {
        answer.error.code = StartError::Code::ConfirmationRequired;
        answer.error.message = u"task \"%1\" needs confirmation: %2"_s.arg(key, task->danger);
        return answer;
    }

    if (!m_accepting.load()) {
        answer.error.code = StartError::Code::ShuttingDown;
        answer.error.message = u"the engine is shutting down; task \"%1\" was not started"_s.arg(key);
        return answer;
    }

    auto st = std::make_shared<RunState>();
    st->task = task;
    st->args = validation.values;
    st->options = options;
    st->timeout = options.timeout ? *options.timeout : task->timeout ? *task->timeout : config.defaultTimeout;
    st->run.id = newRunId();
    st->run.task = task->key;
    st->run.args = redactSecrets(task->fields, validation.values);
    st->run.maxAttempts = task->retry.maxAttempts;
    st->run.queuedAt = QDateTime::currentDateTimeUtc();
    st->run.owner = processOwner();
    const QString id = st->run.id;

    // The queued event goes out before the run enters the queue, so no worker can report
    // its start first.
    if (recorder)
        recorder->recordQueued(st->run);
    st->queuedEvent.state = st;
    linkEvent(&st->queuedEvent);
    requestDelivery(true);
    ReadyRuns ready;
    bool accepted = true;
    {
        QMutexLocker locker(&m_mutex);
        m_runs.insert(id, st);
        accepted = m_accepting.load();
        if (accepted) {
            m_queue.push_back(st);
            dispatchLocked(ready);
        }
    }
    launch(ready);
    if (!accepted) {
        // Shutdown began after the check above; the run exists now, so it ends like every
        // queued run that shutdown cancels.
        st->stopReason.store(StopCanceled);
        st->cancelRequested.store(true);
        finish(st, RunStatus::Canceled, {false, {}, {u"canceled: the engine shut down before it started"_s, u"Canceled"_s, {}, false}}, false);
    }
    answer.runId = id;
    if (state)
        *state = st;
    return answer;
}

void EngineCore::dispatchLocked(ReadyRuns &ready)
{
    while (qsizetype(m_active.size()) < maxActive && !m_queue.empty()) {
        const auto eligible = std::find_if(m_queue.begin(), m_queue.end(), [this](const RunStatePtr &st) {
            return st->task->maxConcurrent <= 0
                   || m_runningPerTask.value(st->task->key) < st->task->maxConcurrent;
        });
        if (eligible == m_queue.end())
            return;
        if (config.startRate > 0) {
            const qint64 now = steadyNowMs();
            m_tokens = std::min(double(config.startBurst),
                                m_tokens + double(now - m_lastRefillMs) * config.startRate / 1000.0);
            m_lastRefillMs = now;
            if (m_tokens < 1.0) {
                const qint64 wait = qint64(std::ceil((1.0 - m_tokens) * 1000.0 / config.startRate));
                const qint64 at = now + std::max<qint64>(1, wait);
                {
                    std::lock_guard<std::mutex> sched(m_schedMutex);
                    if (m_rateWakeAt == 0 || m_rateWakeAt > at)
                        m_rateWakeAt = at;
                }
                wakeSchedulerFor(at);
                return;
            }
            m_tokens -= 1.0;
        }
        RunStatePtr st = *eligible;
        m_queue.erase(eligible);
        if (st->task->maxConcurrent > 0)
            ++m_runningPerTask[st->task->key];
        m_active.push_back(st);
        if (m_lingering && !m_handoff) {
            m_handoff = std::move(st);
            m_handoffReady.store(true, std::memory_order_release);
        } else {
            ready.append(std::move(st));
        }
    }
}

void EngineCore::launch(const ReadyRuns &ready, qsizetype from)
{
    for (qsizetype i = from; i < ready.size(); ++i)
        pool.start([this, st = ready.at(i)] { work(st); });
}

void EngineCore::work(RunStatePtr st)
{
    static thread_local bool named = false;
    if (!named) {
        QThread::currentThread()->setObjectName(u"taskdeck-worker"_s);
        named = true;
    }
    // A worker whose run ends takes the next queued one itself: no hand-over to the pool
    // and no other thread to wake while the queue is busy.
    while (st) {
        st = execute(st);
        if (!st)
            st = linger();
    }
}

RunStatePtr EngineCore::linger()
{
    // Waking a sleeping pool thread costs a system call on each side and a thread switch:
    // far more than a no-op run, and on a virtual machine several microseconds. So when
    // runs arrive in quick succession, one worker spins for a few microseconds after its
    // run and takes the next one directly.
    constexpr auto kLinger = std::chrono::microseconds(20);
    {
        QMutexLocker locker(&m_mutex);
        if (m_lingering || !m_accepting.load())
            return {};
        m_lingering = true;
    }
    const auto until = std::chrono::steady_clock::now() + kLinger;
    for (int spin = 1; !m_handoffReady.load(std::memory_order_acquire); ++spin) {
        if (spin % 32 == 0) {
            if (std::chrono::steady_clock::now() >= until)
                break;
            // Past the first moment, give the CPU to any other thread that wants it (the
            // history writer, the engine's thread): a waiting worker must not slow them.
            if (spin >= 64)
                std::this_thread::yield();
        }
        SpinMutex::relax();
    }
    QMutexLocker locker(&m_mutex);
    m_lingering = false;
    m_handoffReady.store(false, std::memory_order_relaxed);
    return std::exchange(m_handoff, nullptr);
}

void EngineCore::beginAttempt(const RunStatePtr &st, int attempt)
{
    Run snapshot;
    qint64 deadline = 0;
    {
        QMutexLocker locker(&st->mutex);
        st->run.status = RunStatus::Running;
        st->run.attempt = attempt;
        if (!st->run.startedAt.isValid())
            st->run.startedAt = QDateTime::currentDateTimeUtc();
        if (st->timeout.count() > 0)
            deadline = steadyNowMs() + st->timeout.count();
        st->deadlineMs.store(deadline);
        // Lines of an earlier attempt stay before this start, later ones after it: the
        // entry is linked under the run's mutex, like the lines' entries.
        st->activity = nullptr;
        StartedEvent *started = attempt == 1 ? &st->startedEvent : new StartedEvent;
        started->snapshot = st->run;
        started->state = st;
        linkEvent(started);
        if (recorder)
            snapshot = st->run;
    }
    if (deadline)
        wakeSchedulerFor(deadline);
    if (recorder)
        recorder->recordStarted(snapshot);
    requestDelivery(true);
}

Outcome EngineCore::invoke(const RunStatePtr &st, int attempt)
{
    Outcome outcome;
    auto context = [&] {
        return u"task: %1\nattempt: %2 of %3\nargs: %4"_s.arg(
            st->task->key, QString::number(attempt), QString::number(st->task->retry.maxAttempts),
            QString::fromUtf8(QJsonDocument(st->run.args).toJson(QJsonDocument::Compact)));
    };
    try {
        RunContext ctx(this, st);
        outcome.result = st->task->fn(ctx);
        outcome.ok = true;
    } catch (const TaskError &e) {
        outcome.error = {e.message(), e.kind(), context() + u'\n' + e.detail(), e.isTransient()};
    } catch (const std::exception &e) {
        outcome.error = {QString::fromLocal8Bit(e.what()), demangledTypeName(typeid(e)), context(), false};
    } catch (...) {
        outcome.error = {u"the task threw something that is not an exception"_s, u"unknown"_s, context(), false};
    }
    return outcome;
}

RunStatePtr EngineCore::execute(const RunStatePtr &st)
{
    const RetryPolicy &retry = st->task->retry;
    QStringList failures;
    for (int attempt = 1;; ++attempt) {
        if (st->cancelRequested.load()) {
            return finish(st, st->stopReason.load() == StopTimedOut ? RunStatus::TimedOut : RunStatus::Canceled,
                          {}, true, true);
        }
        beginAttempt(st, attempt);
        Outcome outcome = invoke(st, attempt);
        const int stop = st->stopReason.load();
        if (stop == StopTimedOut) {
            outcome.error = {u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s,
                             outcome.error.message.isEmpty() ? QString() : u"the task then reported: "_s + outcome.error.message,
                             false};
            return finish(st, RunStatus::TimedOut, outcome, true, true);
        }
        if (stop == StopCanceled) {
            outcome.error = {u"canceled"_s, u"Canceled"_s, QString(), false};
            return finish(st, RunStatus::Canceled, outcome, true, true);
        }
        if (outcome.ok)
            return finish(st, RunStatus::Succeeded, outcome, true, true);
        failures << u"attempt %1: %2"_s.arg(attempt).arg(outcome.error.message);
        if (!outcome.error.transient || attempt >= retry.maxAttempts) {
            if (failures.size() > 1)
                outcome.error.detail += u"\nattempts:\n  "_s + failures.join(u"\n  "_s);
            return finish(st, RunStatus::Failed, outcome, true, true);
        }
        const auto base = retry.baseDelay(attempt);
        const double spread = std::clamp(retry.jitter, 0.0, 1.0);
        const double factor = 1.0 + spread * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
        const auto delay = std::chrono::milliseconds(qint64(double(base.count()) * factor));
        appendLog(st, LogStream::System,
                  u"attempt %1 of %2 failed: %3; retrying in %4"_s.arg(
                      QString::number(attempt), QString::number(retry.maxAttempts),
                      outcome.error.message, formatDuration(delay)));
        sleep(st, delay);
    }
}

RunStatePtr EngineCore::finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning,
                               bool handOff)
{
    QString scratch;
    {
        QMutexLocker locker(&st->mutex);
        st->run.status = status;
        st->run.finishedAt = QDateTime::currentDateTimeUtc();
        if (status == RunStatus::Succeeded) {
            st->run.result = outcome.result;
        } else {
            st->run.error = outcome.error;
            if (st->run.error.isEmpty()) {
                st->run.error = status == RunStatus::TimedOut
                    ? RunError{u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s, {}, false}
                    : RunError{u"canceled"_s, u"Canceled"_s, {}, false};
            }
        }
        st->closed = true;
        st->activity = nullptr;
        st->deadlineMs.store(0);
        scratch = std::exchange(st->scratchDir, QString());
    }
    // From here on the run does not change: every writer checks closed first.
    const Run &final = st->run;
    // Lines already numbered reach the recorder before the finish does.
    while (st->appending.load() > 0)
        QThread::yieldCurrentThread();
    if (!scratch.isEmpty())
        QDir(scratch).removeRecursively();
    ReadyRuns ready;
    {
        QMutexLocker locker(&m_mutex);
        if (wasRunning) {
            const auto active = std::find(m_active.begin(), m_active.end(), st);
            if (active != m_active.end()) {
                std::swap(*active, m_active.back());
                m_active.pop_back();
            }
            if (st->task->maxConcurrent > 0 && --m_runningPerTask[final.task] <= 0)
                m_runningPerTask.remove(final.task);
        }
        m_finishedOrder.push_back(final.id);
        while (qsizetype(m_finishedOrder.size()) > config.finishedRunsKept) {
            m_runs.remove(m_finishedOrder.front());
            m_finishedOrder.pop_front();
        }
        dispatchLocked(ready);
    }
    RunStatePtr next;
    if (handOff && !ready.isEmpty())
        next = ready.front();
    launch(ready, next ? 1 : 0);
    m_unpublished.fetch_add(1);
    // The slot is free for the next run already; the finish is shown once it is durable.
    auto publish = [this, st] {
        st->finishedEvent.state = st;
        linkEvent(&st->finishedEvent);
        requestDelivery(true);
        {
            QMutexLocker locker(&st->mutex);
            st->finished = true;
        }
        st->changed.notify_all();
        if (m_unpublished.fetch_sub(1) == 1 && m_publishWaiter.load()) {
            QMutexLocker locker(&m_mutex);
            m_allPublished.notify_all();
        }
    };
    if (recorder)
        recorder->recordFinished(final, std::move(publish));
    else
        publish();
    return next;
}

void EngineCore::requestStop(const RunStatePtr &st, StopReason reason)
{
    int expected = NotStopped;
    const bool first = st->stopReason.compare_exchange_strong(expected, reason);
    // The line is numbered before the task can see the request, so it is never lost to a
    // run that ends at once.
    if (first) {
        appendLog(st, LogStream::System, reason == StopTimedOut
                      ? u"timed out after %1; stopping"_s.arg(formatDuration(st->timeout))
                      : u"cancel requested; stopping"_s);
    }
    st->cancelRequested.store(true);
    {
        // Taking the mutex orders the flag before a waiter's check of it.
        QMutexLocker locker(&st->mutex);
    }
    st->changed.notify_all();
}

bool EngineCore::cancel(const QString &runId)
{
    RunStatePtr st;
    bool wasQueued = false;
    {
        QMutexLocker locker(&m_mutex);
        st = m_runs.value(runId);
        if (!st)
            return false;
        const auto it = std::find(m_queue.begin(), m_queue.end(), st);
        if (it != m_queue.end()) {
            m_queue.erase(it);
            wasQueued = true;
        }
    }
    if (wasQueued) {
        st->stopReason.store(StopCanceled);
        st->cancelRequested.store(true);
        finish(st, RunStatus::Canceled, {false, {}, {u"canceled before it started"_s, u"Canceled"_s, {}, false}}, false);
        return true;
    }
    {
        QMutexLocker locker(&st->mutex);
        if (isTerminal(st->run.status))
            return false;
    }
    requestStop(st, StopCanceled);
    return true;
}

void EngineCore::cancelAll()
{
    QStringList ids;
    {
        QMutexLocker locker(&m_mutex);
        // Queued runs first, in queue order, so none of them starts while others are canceled.
        QSet<QString> seen;
        for (const RunStatePtr &st : m_queue) {
            ids << st->run.id; // the id never changes after creation
            seen.insert(st->run.id);
        }
        for (auto it = m_runs.cbegin(); it != m_runs.cend(); ++it) {
            if (!seen.contains(it.key()))
                ids << it.key();
        }
    }
    for (const QString &id : std::as_const(ids))
        cancel(id);
}

RunStatePtr EngineCore::find(const QString &runId) const
{
    QMutexLocker locker(&m_mutex);
    return m_runs.value(runId);
}

std::optional<Run> EngineCore::waitForFinished(const QString &runId, std::chrono::milliseconds timeout)
{
    const RunStatePtr st = find(runId);
    if (!st)
        return std::nullopt;
    bool finished = false;
    Run run = waitForState(st, timeout, &finished);
    return finished ? std::optional<Run>(std::move(run)) : std::nullopt;
}

Run EngineCore::waitForState(const RunStatePtr &st, std::chrono::milliseconds timeout, bool *finished)
{
    const auto deadline = std::chrono::steady_clock::now()
        + std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24 * 365 * 10));
    const bool deliver = onEngineThread();
    for (;;) {
        {
            std::unique_lock locker(st->mutex);
            if (st->finished)
                break;
            if (std::chrono::steady_clock::now() >= deadline) {
                *finished = false;
                return st->run;
            }
            // On the engine's thread nobody else delivers events while we block, so wake up
            // regularly to do it.
            const auto step = deliver
                ? std::min(deadline, std::chrono::steady_clock::now() + config.eventInterval)
                : deadline;
            st->changed.wait_until(locker, step);
        }
        if (deliver)
            deliverEvents();
    }
    if (deliver)
        deliverEvents();
    *finished = true;
    QMutexLocker locker(&st->mutex);
    return st->run;
}

bool EngineCore::shutdown(std::chrono::milliseconds grace)
{
    {
        QMutexLocker locker(&m_mutex);
        m_accepting.store(false);
    }
    m_draining.store(true);
    {
        std::lock_guard locker(m_drainMutex);
        m_eventsDrained.notify_all();
    }
    cancelAll();
    QDeadlineTimer deadline(grace);
    bool done = pool.waitForDone(int(grace.count()));
    {
        // Finishes the recorder has not made durable yet still belong to this engine.
        std::unique_lock locker(m_mutex);
        m_publishWaiter.store(true);
        while (m_unpublished.load() > 0 && !deadline.hasExpired())
            m_allPublished.wait_for(locker, std::chrono::milliseconds(std::max<qint64>(1, deadline.remainingTime())));
        m_publishWaiter.store(false);
        done = done && m_unpublished.load() == 0;
    }
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        m_schedStop = true;
    }
    m_schedCondition.notify_all();
    if (m_scheduler.joinable())
        m_scheduler.join();
    if (onEngineThread())
        deliverEvents();
    if (!done)
        qCWarning(lcEngine) << "some tasks did not stop within" << grace.count() << "ms of shutdown";
    return done;
}

void EngineCore::appendLog(const RunStatePtr &st, LogStream stream, const QString &text)
{
    const OutputLine line{stream, text};
    appendLines(st, &line, 1);
}

void EngineCore::appendLines(const RunStatePtr &st, const OutputLine *lines, qsizetype count)
{
    if (count <= 0)
        return;
    // A task that prints faster than the receivers take its lines waits here (a bounded
    // time) instead of growing memory.
    if (m_pendingLineCount.load(std::memory_order_relaxed) >= kPendingLineCap && !m_draining.load()
        && !onEngineThread()) {
        std::unique_lock locker(m_drainMutex);
        m_eventsDrained.wait_for(locker, 250ms, [this] {
            return m_pendingLineCount.load() < kPendingLineCap || m_draining.load();
        });
    }
    const qint64 timeMs = QDateTime::currentMSecsSinceEpoch();
    LogLines recorded;
    if (recorder)
        recorded.reserve(count);
    bool opened = false;
    QString id;
    {
        QMutexLocker locker(&st->mutex);
        // A line from another thread (a cancel, a timeout) that loses the race with the end
        // of the run has nowhere to go: the final snapshot is already taken.
        if (st->closed)
            return;
        ++st->appending;
        if (!st->recent)
            st->recent = std::make_unique<std::deque<LogLine>>();
        LogLines &pending = activityLocked(st, &opened)->lines;
        if (pending.capacity() - pending.size() < count)
            pending.reserve(std::max(pending.size() + count, pending.capacity() * 2));
        for (qsizetype i = 0; i < count; ++i) {
            LogLine line;
            line.number = ++st->run.logLines;
            line.timeMs = timeMs;
            line.stream = lines[i].stream;
            line.text = lines[i].text;
            st->recent->push_back(line);
            if (qsizetype(st->recent->size()) > config.bufferSize)
                st->recent->pop_front();
            if (recorder)
                recorded.append(line);
            pending.append(std::move(line));
        }
        id = st->run.id;
    }
    m_pendingLineCount.fetch_add(count, std::memory_order_relaxed);
    const auto handedOn = qScopeGuard([&st] { --st->appending; });
    if (recorder)
        recorder->recordLog(id, recorded);
    if (opened)
        requestDelivery(false);
}

ActivityEvent *EngineCore::activityLocked(const RunStatePtr &st, bool *opened)
{
    if (!st->activity) {
        st->activity = new ActivityEvent;
        st->activity->state = st;
        // Linked under the run's mutex, so it keeps its place among the run's events.
        linkEvent(st->activity);
        *opened = true;
    }
    return st->activity;
}

void EngineCore::setProgress(const RunStatePtr &st, const Progress &progress)
{
    bool opened = false;
    QString id;
    {
        QMutexLocker locker(&st->mutex);
        if (st->closed)
            return;
        st->run.progress = progress;
        activityLocked(st, &opened)->progress = progress;
        id = st->run.id;
    }
    if (recorder)
        recorder->recordProgress(id, progress);
    if (opened)
        requestDelivery(false);
}

bool EngineCore::sleep(const RunStatePtr &st, std::chrono::milliseconds duration)
{
    std::unique_lock locker(st->mutex);
    st->changed.wait_for(locker, duration, [&st] { return st->cancelRequested.load(); });
    return !st->cancelRequested.load();
}

void EngineCore::linkEvent(EventNode *node)
{
    EventNode *head = m_eventHead.load(std::memory_order_relaxed);
    do {
        node->next = head;
    } while (!m_eventHead.compare_exchange_weak(head, node));
}

void EngineCore::requestDelivery(bool soon)
{
    // The flags are reset before the engine's thread takes the list, so an entry linked
    // after that always asks for a new delivery, and one linked before is always taken.
    if (soon) {
        // Lifecycle changes go out on the next turn of the event loop; one queued delivery
        // carries every event that arrives before it runs.
        if (m_soonQueued.exchange(true))
            return;
        m_flushQueued.store(true);
        QMetaObject::invokeMethod(q, [this] { deliverEvents(); }, Qt::QueuedConnection);
        return;
    }
    // Log lines and progress wait up to one event interval, to arrive in batches.
    if (m_flushQueued.exchange(true))
        return;
    // QTimer must be started on its own thread.
    if (onEngineThread()) {
        if (!m_flushTimer.isActive())
            m_flushTimer.start();
    } else {
        QMetaObject::invokeMethod(q, [this] {
            if (!m_flushTimer.isActive())
                m_flushTimer.start();
        }, Qt::QueuedConnection);
    }
}

void EngineCore::deliverEvents()
{
    m_flushTimer.stop();
    m_soonQueued.store(false);
    m_flushQueued.store(false);
    EventNode *newestFirst = m_eventHead.exchange(nullptr);
    EventNode *ordered = nullptr;
    while (newestFirst) {
        EventNode *next = newestFirst->next;
        newestFirst->next = ordered;
        ordered = newestFirst;
        newestFirst = next;
    }
    while (ordered) {
        EventNode *node = ordered;
        ordered = node->next;
        deliver(node);
    }
}

void EngineCore::deliver(EventNode *node)
{
    // The entry may live inside the run's state: this reference keeps both alive until the
    // entry is done with.
    const RunStatePtr st = std::move(node->state);
    switch (node->kind) {
    case EventNode::Kind::Queued:
        if (q->isSignalConnected(QMetaMethod::fromSignal(&TaskEngine::runQueued)))
            Q_EMIT q->runQueued(queuedSnapshot(*st));
        break;
    case EventNode::Kind::Started:
        Q_EMIT q->runStarted(static_cast<StartedEvent *>(node)->snapshot);
        break;
    case EventNode::Kind::Finished:
        // Closed runs do not change any more: the final snapshot is the run itself.
        Q_EMIT q->runFinished(st->run);
        break;
    case EventNode::Kind::Activity: {
        auto *activity = static_cast<ActivityEvent *>(node);
        LogLines lines;
        std::optional<Progress> progress;
        {
            QMutexLocker locker(&st->mutex);
            if (st->activity == activity)
                st->activity = nullptr;
            lines.swap(activity->lines);
            progress.swap(activity->progress);
        }
        if (!lines.isEmpty()) {
            const qsizetype before = m_pendingLineCount.fetch_sub(lines.size());
            if (before >= kPendingLineCap) {
                { std::lock_guard locker(m_drainMutex); }
                m_eventsDrained.notify_all();
            }
            Q_EMIT q->runLog(st->run.id, lines); // the id never changes after creation
        }
        if (progress)
            Q_EMIT q->runProgress(st->run.id, *progress);
        break;
    }
    }
    if (node->kind == EventNode::Kind::Started)
        static_cast<StartedEvent *>(node)->snapshot = Run();
    if (!node->embedded)
        delete node;
}

Run EngineCore::queuedSnapshot(const RunState &st)
{
    // These fields never change once start() has made the run; the others still hold
    // their defaults in a run that waits in the queue.
    Run run;
    run.id = st.run.id;
    run.task = st.run.task;
    run.args = st.run.args;
    run.maxAttempts = st.run.maxAttempts;
    run.queuedAt = st.run.queuedAt;
    run.owner = st.run.owner;
    return run;
}

void EngineCore::wakeSchedulerFor(qint64 atMs)
{
    // The scheduler publishes when its wait ends before it looks at the runs a last time,
    // so a later deadline needs no wake-up.
    if (atMs >= m_schedWakeAt.load())
        return;
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        m_rescan = true;
    }
    m_schedCondition.notify_one();
}

qint64 EngineCore::stopOverdue()
{
    const qint64 now = steadyNowMs();
    QVarLengthArray<RunStatePtr, 8> due;
    qint64 next = kNever;
    {
        QMutexLocker locker(&m_mutex);
        for (const RunStatePtr &st : m_active) {
            const qint64 at = st->deadlineMs.load();
            if (at == 0)
                continue;
            if (at <= now)
                due.append(st);
            else
                next = std::min(next, at);
        }
    }
    for (const RunStatePtr &st : due) {
        bool stop = false;
        {
            QMutexLocker locker(&st->mutex);
            const qint64 at = st->deadlineMs.load();
            stop = !st->finished && st->run.status == RunStatus::Running && at != 0 && at <= now;
            if (stop)
                st->deadlineMs.store(0);
        }
        if (stop)
            requestStop(st, StopTimedOut);
    }
    return next;
}

void EngineCore::schedulerLoop()
{
    std::unique_lock<std::mutex> lock(m_schedMutex);
    while (!m_schedStop) {
        m_rescan = false;
        lock.unlock();
        qint64 next = stopOverdue();
        lock.lock();
        const qint64 now = steadyNowMs();
        if (m_rateWakeAt && m_rateWakeAt <= now) {
            m_rateWakeAt = 0;
            lock.unlock();
            ReadyRuns ready;
            {
                QMutexLocker locker(&m_mutex);
                dispatchLocked(ready);
            }
            launch(ready);
            lock.lock();
            continue;
        }
        if (m_rateWakeAt)
            next = std::min(next, m_rateWakeAt);
        m_schedWakeAt.store(next);
        if (m_rescan)
            continue;
        // A deadline set while the runs were being looked at compared itself with the old
        // wake time; look once more now that the new one is published.
        lock.unlock();
        const qint64 check = stopOverdue();
        lock.lock();
        if (check < next || m_rescan)
            continue;
        const auto woken = [this] { return m_rescan || m_schedStop; };
        if (next == kNever)
            m_schedCondition.wait(lock, woken);
        else
            m_schedCondition.wait_for(lock, std::chrono::milliseconds(std::max<qint64>(0, next - steadyNowMs())), woken);
    }
}

} // namespace detail

// RunContext ---------------------------------------------------------------------------

RunContext::RunContext(detail::EngineCore *core, std::shared_ptr<detail::RunState> state)
    : m_core(core)
    , m_state(std::move(state))
{
}

RunContext::~RunContext() = default;

QString RunContext::runId() const { return m_state->run.id; } // immutable after creation
QString RunContext::taskKey() const { return m_state->task->key; }
const QJsonObject &RunContext::args() const { return m_state->args; }

int RunContext::attempt() const
{
    QMutexLocker locker(&m_state->mutex);
    return m_state->run.attempt;
}

void RunContext::log(LogStream stream, const QString &line)
{
    // A multi-line message becomes several log lines so every line has its own number.
    if (line.contains(u'\n')) {
        OutputLines parts;
        for (QStringView part : QStringView(line).split(u'\n'))
            parts.append(OutputLine{stream, part.toString()});
        m_core->appendLines(m_state, parts.constData(), parts.size());
        return;
    }
    m_core->appendLog(m_state, stream, line);
}

void RunContext::progress(qint64 done, qint64 total, const QString &message)
{
    m_core->setProgress(m_state, Progress{done, total, message});
}

bool RunContext::isCanceled() const { return m_state->cancelRequested.load(); }

bool RunContext::sleep(std::chrono::milliseconds duration) { return m_core->sleep(m_state, duration); }

QString RunContext::scratchDir()
{
    QMutexLocker locker(&m_state->mutex);
    if (m_state->scratchDir.isEmpty()) {
        const QString path = QDir::temp().filePath(u"taskdeck-run-"_s + m_state->run.id);
        if (!QDir().mkpath(path))
            throw TaskError(u"cannot create scratch directory %1"_s.arg(path), u"ScratchDir"_s);
        m_state->scratchDir = path;
    }
    return m_state->scratchDir;
}

CommandResult RunContext::run(const Command &cmd)
{
    CommandSink sink;
    sink.lines = [this](const OutputLines &lines) { m_core->appendLines(m_state, lines.constData(), lines.size()); };
    sink.progress = [this](const Progress &p) { m_core->setProgress(m_state, p); };
    sink.isCanceled = [this] { return m_state->cancelRequested.load(); };
    return runCommand(cmd, sink);
}

QJsonValue RunContext::runChecked(const Command &cmd)
{
    const CommandResult r = run(cmd);
    const QString program = cmd.argv.value(0);
    const QString tail = r.stderrTail.isEmpty() ? QString() : u"last stderr lines:\n"_s + r.stderrTail.join(u'\n');
    if (!r.started) {
        const bool notFound = r.startError.startsWith(u"command not found"_s);
        throw TaskError(r.startError, notFound ? u"CommandNotFound"_s : u"StartFailed"_s, false,
                        u"argv: "_s + cmd.argv.join(u' '));
    }
    if (r.canceled)
        throw TaskError(u"%1 was stopped"_s.arg(program), u"Canceled"_s, false, tail);
    if (r.signal != 0) {
        throw TaskError(u"%1 was killed by signal %2 (%3)"_s.arg(program).arg(r.signal).arg(signalName(r.signal)),
                        u"Signal"_s, false, tail);
    }
    if (r.exitCode != 0)
        throw TaskError(u"%1 exited with code %2"_s.arg(program).arg(r.exitCode), u"ExitCode"_s, false, tail);
    if (r.result)
        return *r.result;
    return QJsonObject{{u"exitCode"_s, 0}};
}

// TaskEngine ---------------------------------------------------------------------------

TaskEngine::TaskEngine(TaskRegistry *registry, const EngineConfig &config, QObject *parent)
    : QObject(parent)
    , d(std::make_unique<detail::EngineCore>(this, registry, config))
{
    static const bool registered = [] {
        qRegisterMetaType<Run>();
        qRegisterMetaType<Progress>();
        qRegisterMetaType<LogLines>();
        return true;
    }();
    Q_UNUSED(registered);
}

TaskEngine::~TaskEngine() = default;

TaskRegistry *TaskEngine::registry() const { return d->registry; }
const EngineConfig &TaskEngine::config() const { return d->config; }
QThreadPool *TaskEngine::threadPool() const { return &d->pool; }
void TaskEngine::setRecorder(IRunRecorder *recorder) { d->recorder = recorder; }

StartResult TaskEngine::start(const QString &key, const QJsonObject &args, const RunOptions &options)
{
    return d->start(key, args, options);
}

RunResult TaskEngine::run(const QString &key, const QJsonObject &args, const RunOptions &options)
{
    RunResult answer;
    detail::RunStatePtr state;
    const StartResult started = d->start(key, args, options, &state);
    if (!started.ok()) {
        answer.error = started.error;
        return answer;
    }
    bool finished = false;
    answer.run = d->waitForState(state, std::chrono::hours(24 * 365), &finished);
    return answer;
}

bool TaskEngine::cancel(const QString &runId) { return d->cancel(runId); }
void TaskEngine::cancelAll() { d->cancelAll(); }

std::optional<Run> TaskEngine::snapshot(const QString &runId) const
{
    const auto st = d->find(runId);
    if (!st)
        return std::nullopt;
    QMutexLocker locker(&st->mutex);
    return st->run;
}

std::optional<RunStatus> TaskEngine::status(const QString &runId) const
{
    const auto run = snapshot(runId);
    return run ? std::optional(run->status) : std::nullopt;
}

std::optional<Progress> TaskEngine::progress(const QString &runId) const
{
    const auto run = snapshot(runId);
    return run ? std::optional(run->progress) : std::nullopt;
}

LogLines TaskEngine::recentLog(const QString &runId) const
{
    const auto st = d->find(runId);
    if (!st)
        return {};
    QMutexLocker locker(&st->mutex);
    return st->recent ? LogLines(st->recent->cbegin(), st->recent->cend()) : LogLines();
}

QList<Run> TaskEngine::activeRuns() const
{
    QList<detail::RunStatePtr> states;
    {
        QMutexLocker locker(&d->m_mutex);
        for (const auto &st : d->m_runs)
            states << st;
    }
    QList<Run> runs;
    for (const auto &st : states) {
        QMutexLocker locker(&st->mutex);
        if (!isTerminal(st->run.status))
            runs << st->run;
    }
    std::sort(runs.begin(), runs.end(), [](const Run &a, const Run &b) { return a.queuedAt < b.queuedAt; });
    return runs;
}

int TaskEngine::runningCount() const
{
    QMutexLocker locker(&d->m_mutex);
    return int(d->m_active.size());
}

int TaskEngine::queuedCount() const
{
    QMutexLocker locker(&d->m_mutex);
    return int(d->m_queue.size());
}

std::optional<Run> TaskEngine::waitForFinished(const QString &runId, std::chrono::milliseconds timeout)
{
    return d->waitForFinished(runId, timeout);
}

bool TaskEngine::shutdown(std::chrono::milliseconds grace) { return d->shutdown(grace); }

void TaskEngine::deliverEvents() { d->deliverEvents(); }

} // namespace taskdeck
