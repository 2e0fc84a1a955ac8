// SPDX-License-Identifier: MIT
#pragma once

#include "runrecorder.h"

#include <QDateTime>
#include <QFuture>
#include <QList>
#include <QString>
#include <QStringList>

#include <chrono>
#include <optional>

namespace taskdeck {

class RunStoreNotifier;

/*! Which runs IRunStore::findRuns() returns. Empty or invalid members do not filter. */
struct RunQuery
{
    QString task;                     //!< task key, exact
    std::optional<RunStatus> status;
    QDateTime from;                   //!< queuedAt >= from
    QDateTime to;                     //!< queuedAt < to
    int limit = 50;                   //!< page size, at most 1000; 0 only counts
    int offset = 0;
};

/*! One page of runs, newest first, and how many runs match the query in all. */
struct RunPage
{
    QList<Run> runs;
    qint64 total = 0;
};

/*!
 * What IRunStore::requestCancelAsync() found and did with a run this process does not run. A
 * run that waits in a shared queue or runs on one of its workers can be canceled from any
 * process sharing the history; a run of another process outside a shared queue only by that
 * process.
 */
struct CancelRequest
{
    enum class Outcome {
        Canceled,   //!< it waited in the shared queue: it left the queue and is stored canceled
        Requested,  //!< a worker holds it: the worker was asked, and cancels it within moments
        Finished,   //!< it has ended already (status)
        Elsewhere,  //!< another process runs it outside any shared queue (owner): only it can cancel it
        Unknown,    //!< the history has no such run
        Failed,     //!< the database did not answer; error says why
    };
    Outcome outcome = Outcome::Failed;
    QString error;             //!< Failed: what went wrong, naming the database
    RunStatus status{};        //!< Finished: how it ended
    QString owner;             //!< Elsewhere: the Run::owner of the process that runs it
    bool sharedQueue = false;  //!< the history has a shared queue (runs queued there can be canceled anywhere)

    /*! The answer when the history could not be asked: \a error says why. */
    static CancelRequest failed(const QString &error)
    {
        CancelRequest answer;
        answer.error = error;
        return answer;
    }
    /*! The answer for a run that no shared queue holds: \a run as the history has it. */
    static CancelRequest outsideQueue(const std::optional<Run> &run, bool sharedQueue)
    {
        CancelRequest answer;
        answer.sharedQueue = sharedQueue;
        if (!run) {
            answer.outcome = Outcome::Unknown;
        } else if (run->isFinished()) {
            answer.outcome = Outcome::Finished;
            answer.status = run->status;
        } else {
            answer.outcome = Outcome::Elsewhere;
            answer.owner = run->owner;
        }
        return answer;
    }
};

/*!
 * A run history: records every change the engine reports and answers queries about past
 * and present runs, including their full logs.
 *
 * Recording (the IRunRecorder half) never blocks on storage for long: changes are queued and
 * written in the background. Queries see every change recorded before they were called
 * (while the history can be written; when it cannot, they answer with what is stored).
 * All methods are thread-safe.
 *
 * Each query comes in two forms. The synchronous one (findRun(), ...) does its work on the
 * calling thread, which may wait for the writer (seconds, while another process holds the
 * file): for command-line tools and worker threads. The asynchronous one (findRunAsync(),
 * ...) returns at once and does the work, the wait included, on a thread of the store's; the
 * caller takes the result on its own thread with detail::whenDone(context, future, ...)
 * (whendone.h), so a GUI thread never waits on disk. Not QFuture::then(context, ...): Qt 6.4
 * asserts there when the context is gone before the answer, and ThreadSanitizer cannot follow
 * its hand-over. A future of a store that is destroyed first is canceled.
 *
 * \code
 * QString error;
 * std::unique_ptr<SqliteRunStore> store = SqliteRunStore::open(dataDir, &error);
 * if (!store)
 *     qWarning().noquote() << error << "- running without history";
 * else
 *     engine.setRecorder(store.get()); // the store must outlive the engine
 *
 * // In the GUI thread: the page arrives later, in this thread, while the window goes on.
 * detail::whenDone(window, store->findRunsAsync(query), [window](const RunPage &page) { window->show(page); });
 * \endcode
 */
class IRunStore : public IRunRecorder
{
public:
    ~IRunStore() override = default;

    /*! False while the history cannot be written; errorString() says why. */
    virtual bool isAvailable() const = 0;
    /*! Why the store is not available (naming the database); empty when it is. */
    virtual QString errorString() const = 0;
    /*! Where the history lives (the database file, or a connection description). */
    virtual QString location() const = 0;

    /*! The run with \a id, or nullopt. */
    virtual std::optional<Run> findRun(const QString &id) = 0;
    /*! Runs matching \a query, newest first (by queuedAt), one page at a time. */
    virtual RunPage findRuns(const RunQuery &query) = 0;
    /*!
     * Up to \a maxLines lines of the run's log, in order, starting at line \a fromLine (lines
     * count from 1). Call again from the last line's number + 1 to read on; an empty answer
     * means the end. Memory stays bounded by \a maxLines however long the log is.
     */
    virtual LogLines readLog(const QString &runId, qint64 fromLine = 1, int maxLines = 1000) = 0;
    /*!
     * Up to \a maxLines lines of the run's log whose event sequence number (LogLine::seq) is
     * above \a afterSeq, in order: where a follower that saw every event up to \a afterSeq
     * resumes once the engine no longer holds the run. Call again after the last line's seq
     * to read on. Lines stored without a seq (by an older Taskdeck) are never returned.
     * Memory stays bounded by \a maxLines.
     */
    virtual LogLines readLogAfterSeq(const QString &runId, qint64 afterSeq, int maxLines = 1000) = 0;

    /*! findRun() on a thread of the store's; never blocks the caller. */
    virtual QFuture<std::optional<Run>> findRunAsync(const QString &id) = 0;
    /*! findRuns() on a thread of the store's; never blocks the caller. */
    virtual QFuture<RunPage> findRunsAsync(const RunQuery &query) = 0;
    /*! readLog() on a thread of the store's; never blocks the caller. */
    virtual QFuture<LogLines> readLogAsync(const QString &runId, qint64 fromLine = 1, int maxLines = 1000) = 0;
    /*! readLogAfterSeq() on a thread of the store's; never blocks the caller. */
    virtual QFuture<LogLines> readLogAfterSeqAsync(const QString &runId, qint64 afterSeq, int maxLines = 1000) = 0;
    /*!
     * Asks that run \a runId, which the engine of this process does not know, be canceled where
     * it is, on a thread of the store's; the answer says what was done, or why nothing could be
     * (see CancelRequest). Only a history with a shared queue (PostgreSQL) cancels anything.
     */
    virtual QFuture<CancelRequest> requestCancelAsync(const QString &runId) = 0;

    /*!
     * Announces which runs changed, by this process or by another one sharing the history
     * (see RunStoreNotifier). Owned by the store; lives in the thread that opened it.
     */
    virtual RunStoreNotifier *notifier() = 0;
    /*!
     * The W3C-shaped trace id (32 hex digits) the store gave the run when it first recorded
     * it, to correlate its log with other systems; empty for an unknown run.
     */
    virtual QString traceId(const QString &runId) = 0;

    /*!
     * Marks Interrupted every queued or running run whose owning process is gone (on this
     * machine: no process with its pid and start time any more), with an error explaining
     * what happened and finishedAt = now. Runs of live processes and of other machines are
     * left alone. Returns how many runs were marked.
     */
    virtual int recoverInterrupted() = 0;
    /*!
     * Deletes finished runs (terminal statuses only, never queued or running ones) that
     * finished at or before \a cutoff (to the millisecond), with their logs. Returns how
     * many, or -1 when the history could not be changed.
     */
    virtual int pruneFinishedBefore(const QDateTime &cutoff) = 0;
    /*!
     * Deletes runs that finished more than \a days ago, now and then every \a interval, away
     * from the calling thread. \a days == 0 turns it off.
     */
    virtual void startRetention(int days, std::chrono::milliseconds interval) = 0;
    /*!
     * Checks the whole history for damage (SQLite's integrity check: it reads everything, so
     * it takes time in proportion to the history's size) on the calling thread. Returns the
     * problems found, each naming the history; empty when the history is sound.
     */
    virtual QStringList checkIntegrity() = 0;
    /*! Waits up to \a timeout until everything recorded so far is stored; false if not. */
    virtual bool flush(std::chrono::milliseconds timeout) = 0;
};

} // namespace taskdeck
