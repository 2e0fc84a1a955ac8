// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <QList>
#include <QObject>

#include <functional>
#include <memory>

namespace taskdeck {

/*!
 * One event of a run, as followers receive it. Every event of a run has a sequence number
 * (1, 2, 3, ... with no gaps); a Log event holds a batch of consecutive lines, each with its
 * own seq, so it covers seq .. lastSeq().
 */
struct RunEvent
{
    enum class Type { Queued, Started, Retrying, Progress, Log, Finished };

    Type type = Type::Log;
    qint64 seq = 0;                 //!< Log: the first line's seq
    LogLines lines;                 //!< Log only
    Progress progress;              //!< Progress only
    std::shared_ptr<const Run> run; //!< Queued, Started, Retrying, Finished: the run then

    qint64 lastSeq() const { return type == Type::Log && !lines.isEmpty() ? lines.constLast().seq : seq; }
};
using RunEvents = QList<RunEvent>;

namespace detail { struct FollowerLink; }

/*!
 * A follower of one run, in the style of KDE's KJob: it emits that run's events, in order,
 * each once, on the thread it lives in; it never sees another run's events.
 *
 * Get one from TaskEngine::follow(), which hands out the run's snapshot with it. Destroying
 * the handle stops the following (and only that; the run goes on). If its thread does not
 * take the events as fast as they come, and more than the follower's limit wait for it, the
 * handle drops them, emits fellBehind() with the seq of the last event it emitted, and
 * follows no more: follow the run again from that seq to go on without a gap. A slow
 * follower never slows the run or other followers.
 *
 * The event source (the engine, or a history reader for runs the engine no longer holds)
 * feeds it through push(); an application only connects to the signals.
 */
class RunHandle final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunHandle)

public:
    /*! A handle of run \a runId whose events are emitted after seq \a after. \a cancel is
     *  what cancel() calls (may be empty). Pushed events wait while \a held. */
    RunHandle(const QString &runId, qint64 after, qsizetype maxQueuedLines,
              std::function<bool()> cancel, bool held = false, QObject *parent = nullptr);
    ~RunHandle() override;

    QString runId() const { return m_runId; }
    /*! The seq of the last event emitted (or the seq followed from, before the first). */
    qint64 seq() const { return m_seq; }
    /*! True once finished() or fellBehind() was emitted: nothing more comes. */
    bool isDone() const { return m_done; }

    /*! Asks for the run to be canceled; false when it is unknown or already finished. */
    bool cancel();

    /*!
     * Thread-safe, for event sources: queues \a events (those at or before the last seq
     * queued are skipped) and has them emitted on the handle's thread. Returns false once
     * the handle is gone, fell behind or finished: the source can forget it then.
     */
    bool push(const RunEvents &events) { return pushTo(m_link, events); }
    /*! The same for a source that holds the handle's link rather than the handle, which
     *  may be deleted on its own thread at any time. */
    static bool pushTo(const std::shared_ptr<detail::FollowerLink> &link, const RunEvents &events);
    std::shared_ptr<detail::FollowerLink> link() const { return m_link; }
    /*!
     * For event sources, while the handle is held: puts \a events (older than every event
     * pushed so far, and newer than those supplied before) ahead of the pushed ones. This is
     * how the history fills in what the engine no longer holds (Following::missingTo).
     */
    void supply(const RunEvents &events);
    /*! For event sources: while held, events wait; release() lets them go (from the event
     *  loop, so a caller can connect to the handle first). */
    void release();

    /*! How many log lines may wait for a follower before it falls behind, by default. */
    static constexpr qsizetype kDefaultMaxQueuedLines = 100000;

Q_SIGNALS:
    void queued(const taskdeck::Run &run);
    void started(const taskdeck::Run &run);           //!< once per attempt
    void retrying(const taskdeck::Run &run);          //!< run.nextAttemptAt says when
    void progressed(const taskdeck::Progress &progress, qint64 seq);
    void log(const taskdeck::LogLines &lines);        //!< each line carries its seq
    void finished(const taskdeck::Run &run);
    /*! Events after \a seq were dropped because they were not taken in time. */
    void fellBehind(qint64 seq);
    /*! Every event of a batch, for followers that forward them as they are (a WebSocket);
     *  emitted before the typed signals of the same events. */
    void events(const taskdeck::RunEvents &events);

private:
    static bool scheduleDrainLocked(detail::FollowerLink &link, bool here);
    void drain();
    void emitEvents(const RunEvents &events);

    const QString m_runId;
    const std::function<bool()> m_cancel;
    const std::shared_ptr<detail::FollowerLink> m_link;
    qint64 m_seq = 0;   // handle's thread only
    bool m_done = false; // handle's thread only
};

} // namespace taskdeck

// Members that hold no pointer into themselves: lists of events grow by moving memory.
Q_DECLARE_TYPEINFO(taskdeck::RunEvent, Q_RELOCATABLE_TYPE);
Q_DECLARE_METATYPE(taskdeck::RunEvents)
