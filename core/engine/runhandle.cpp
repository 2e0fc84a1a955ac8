// SPDX-License-Identifier: MIT
#include "runhandle.h"

#include <QMetaObject>
#include <QPointer>
#include <QThread>

#include <mutex>

namespace taskdeck {

namespace detail {

/*! What a handle shares with the sources that feed it; outlives the handle if need be. */
struct FollowerLink
{
    std::mutex mutex;
    RunHandle *handle = nullptr;  // guarded by mutex; null once the handle is gone
    qint64 after = 0;             // guarded by mutex; events up to here are skipped
    RunEvents queue;              // guarded by mutex
    qsizetype queuedLines = 0;    // guarded by mutex
    qsizetype maxQueuedLines = 0; // guarded by mutex
    bool held = false;            // guarded by mutex
    qsizetype supplied = 0;       // guarded by mutex; queue entries that came from supply()
    bool drainPosted = false;     // guarded by mutex
    bool behind = false;          // guarded by mutex
    bool closed = false;          // guarded by mutex; the finish is queued
};

} // namespace detail

// Whether the link's queue should be drained now, on this thread (only where \a here allows
// it); posts the drain otherwise. Link mutex held.
bool RunHandle::scheduleDrainLocked(detail::FollowerLink &link, bool here)
{
    if (link.held || link.drainPosted || !link.handle)
        return false;
    if (link.queue.isEmpty() && !link.behind)
        return false;
    link.drainPosted = true;
    if (here && link.handle->thread() == QThread::currentThread())
        return true;
    // Posted to the handle's thread; Qt drops the call if the handle is deleted first.
    RunHandle *handle = link.handle;
    QMetaObject::invokeMethod(handle, [handle] { handle->drain(); }, Qt::QueuedConnection);
    return false;
}

RunHandle::RunHandle(const QString &runId, qint64 after, qsizetype maxQueuedLines,
                     std::function<bool()> cancel, bool held, QObject *parent)
    : QObject(parent)
    , m_runId(runId)
    , m_cancel(std::move(cancel))
    , m_link(std::make_shared<detail::FollowerLink>())
    , m_seq(after)
{
    static const bool registered = [] {
        qRegisterMetaType<RunEvents>();
        return true;
    }();
    Q_UNUSED(registered);
    m_link->handle = this;
    m_link->after = after;
    m_link->maxQueuedLines = std::max<qsizetype>(1, maxQueuedLines);
    m_link->held = held;
}

RunHandle::~RunHandle()
{
    std::lock_guard lock(m_link->mutex);
    m_link->handle = nullptr;
    m_link->queue.clear();
}

bool RunHandle::cancel()
{
    return m_cancel ? m_cancel() : false;
}

bool RunHandle::pushTo(const std::shared_ptr<detail::FollowerLink> &linkPtr, const RunEvents &events)
{
    detail::FollowerLink &link = *linkPtr;
    bool drainHere = false;
    bool open = true;
    RunHandle *handle = nullptr;
    {
        std::lock_guard lock(link.mutex);
        if (!link.handle || link.behind || link.closed)
            return false;
        for (const RunEvent &event : events) {
            if (event.lastSeq() <= link.after)
                continue;
            if (event.type == RunEvent::Type::Log && event.seq <= link.after) {
                RunEvent rest = event;
                const auto firstNew = std::find_if(rest.lines.cbegin(), rest.lines.cend(),
                                                   [&link](const LogLine &l) { return l.seq > link.after; });
                rest.lines.remove(0, firstNew - rest.lines.cbegin());
                rest.seq = rest.lines.constFirst().seq;
                link.queuedLines += rest.lines.size();
                link.queue.append(std::move(rest));
            } else {
                if (event.type == RunEvent::Type::Log)
                    link.queuedLines += event.lines.size();
                link.queue.append(event);
            }
            link.after = event.lastSeq();
            if (event.type == RunEvent::Type::Finished)
                link.closed = true;
        }
        if (link.queuedLines > link.maxQueuedLines) {
            link.behind = true;
            link.queue.clear();
            link.queuedLines = 0;
            link.supplied = 0;
        }
        open = !link.behind && !link.closed;
        drainHere = scheduleDrainLocked(link, true);
        handle = link.handle;
    }
    // Only this thread could delete the handle, so it is still there.
    if (drainHere)
        handle->drain();
    return open;
}

void RunHandle::supply(const RunEvents &events)
{
    std::lock_guard lock(m_link->mutex);
    if (!m_link->held || m_link->behind)
        return;
    for (const RunEvent &event : events) {
        if (event.type == RunEvent::Type::Log)
            m_link->queuedLines += event.lines.size();
        m_link->queue.insert(m_link->supplied++, event);
    }
}

void RunHandle::release()
{
    {
        std::lock_guard lock(m_link->mutex);
        m_link->held = false;
        m_link->supplied = 0;
        // Posted: whoever releases the handle connects to it first.
        scheduleDrainLocked(*m_link, false);
    }
}

void RunHandle::drain()
{
    RunEvents events;
    bool behind = false;
    {
        std::lock_guard lock(m_link->mutex);
        m_link->drainPosted = false;
        if (m_link->held)
            return;
        events.swap(m_link->queue);
        m_link->queuedLines = 0;
        behind = m_link->behind;
    }
    if (m_done)
        return;
    QPointer<RunHandle> self(this);
    emitEvents(events);
    if (self && behind && !m_done) {
        m_done = true;
        Q_EMIT fellBehind(m_seq);
    }
}

void RunHandle::emitEvents(const RunEvents &events)
{
    if (events.isEmpty())
        return;
    // A slot may delete the handle: stop as soon as it is gone.
    QPointer<RunHandle> self(this);
    Q_EMIT this->events(events);
    for (const RunEvent &event : events) {
        if (!self)
            return;
        m_seq = event.lastSeq();
        switch (event.type) {
        case RunEvent::Type::Queued: Q_EMIT queued(*event.run); break;
        case RunEvent::Type::Started: Q_EMIT started(*event.run); break;
        case RunEvent::Type::Retrying: Q_EMIT retrying(*event.run); break;
        case RunEvent::Type::Progress: Q_EMIT progressed(event.progress, event.seq); break;
        case RunEvent::Type::Log: Q_EMIT log(event.lines); break;
        case RunEvent::Type::Finished:
            m_done = true;
            Q_EMIT finished(*event.run);
            break;
        }
    }
}

} // namespace taskdeck
