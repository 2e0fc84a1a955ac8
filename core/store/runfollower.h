// SPDX-License-Identifier: MIT
#pragma once

#include "runstore.h"
#include "taskengine.h"

#include <QObject>

#include <functional>

namespace taskdeck {

/*!
 * Follows a run wherever its events are: live in the engine; in the history for what the
 * engine no longer holds (the start of a long log, a run it has forgotten); and, for a run
 * of another Taskdeck process sharing the history, in the history as that process writes
 * it. The desktop log pane and the WebSocket both follow runs through it.
 *
 * It never blocks: the answer comes through \a ready, on the thread of \a context (at once
 * when the engine holds the run). Connect to the handle inside \a ready: its events may
 * follow as soon as \a ready returns. The handle then emits the events after options.after (or
 * after the snapshot, with after = -1), in order, each once. The history keeps a run's log
 * lines and its final state, not its progress reports or starts: those numbers are skipped
 * in what it serves.
 *
 * \code
 * RunFollower follower(&engine, store.get());
 * follower.follow(runId, {.after = lastSeenSeq}, pane, [pane](Following following) {
 *     if (!following.handle)
 *         return pane->showUnknownRun();
 *     pane->show(following.run, following.recentLog);
 *     pane->attach(std::move(following.handle));
 * });
 * \endcode
 */
class RunFollower final
{
public:
    /*! \a store may be null (no history): then only runs the engine holds can be followed. */
    RunFollower(TaskEngine *engine, IRunStore *store);

    using Ready = std::function<void(Following following)>;
    /*! Follows \a runId; \a ready gets a null handle when no one knows the run. */
    void follow(const QString &runId, const FollowOptions &options, QObject *context, Ready ready);

    /*! Log lines read from the history at once while catching up. */
    static constexpr int kPageLines = 1000;

private:
    void followStored(const QString &runId, const FollowOptions &options, QObject *context, Ready ready);

    TaskEngine *m_engine;
    IRunStore *m_store;
};

} // namespace taskdeck
