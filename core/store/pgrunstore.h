// SPDX-License-Identifier: MIT
#pragma once

#include "runstore.h"

#include <chrono>
#include <memory>

namespace taskdeck {

class PgConnectionInfo;

/*!
 * The run history in a PostgreSQL database shared by any number of Taskdeck processes on
 * any number of machines (see docs/postgresql.md). Behaves as SqliteRunStore does towards
 * its callers; what differs is where the rows live.
 *
 * Writing: record*() queue the change and return. One writer thread with its own connection
 * drains the queue every few tens of milliseconds into one transaction: the latest state of
 * every run in it as one upsert (an unnest of arrays, one round trip for the whole batch), new
 * log lines as LogChunk rows. A finish is committed at once (finishes 3 ms apart share a
 * commit) and
 * the engine's \c durable callback runs after the commit. The same transaction notifies the
 * channel PgSchema::kRunsChannel with the ids it wrote (one statement for the whole batch)
 * and, in a worker (see setQueueWorker()), deletes the queue rows of the runs that ended.
 * The writer's statements are prepared once on its connection. When the server is gone (restarted,
 * network lost) the writer keeps the batch, logs "reconnecting" on the category
 * "taskdeck.store", and writes it once it is back; \c durable callbacks wait for that up to
 * kDurableWait, then run anyway so the engine never hangs.
 *
 * Reading: the synchronous queries run on the calling thread's own connection to the
 * database; the asynchronous ones on one of two reader threads of the store's. Each query
 * first waits (up to a few seconds) for what was recorded before it to be committed.
 *
 * Changes: while notifier() is watched, a listener thread LISTENs on the runs channel and
 * posts every run id another process (or this one) wrote; after a lost connection it
 * reconnects and posts the runs written while it was away. Nobody polls per run.
 *
 * Destroy the store in the thread that opened it.
 */
class PgRunStore final : public IRunStore
{
public:
    Q_DISABLE_COPY_MOVE(PgRunStore)

    /*! How long a finish waits for its commit while the server is away before \c durable runs. */
    static constexpr std::chrono::seconds kDurableWait{30};

    /*!
     * Connects to the database at \a url (see PgConnectionInfo) and brings its schema up to
     * date. Returns nullptr with \a error set when the URL is wrong, the server cannot be
     * reached or refuses the login, or the schema is from a newer Taskdeck.
     */
    static std::unique_ptr<PgRunStore> open(const QString &url, QString *error);

    /*! Commits what is queued (waiting at most a few seconds), then stops the threads. */
    ~PgRunStore() override;

    /*! The connection description of this store (never with a password). */
    const PgConnectionInfo &connectionInfo() const;

    /*!
     * For a queue worker: the row in taskdeck_queue of a run that \a worker (its PgQueue
     * claimer name) holds is deleted in the same transaction that stores the run's end, so a
     * finished run leaves the queue exactly when its end is committed, in the writer's batch,
     * with no statement of its own. Rows another worker holds (after this one's lease expired)
     * stay. Empty (the default): the queue is left alone. Thread-safe; set it before the
     * runs are recorded.
     *
     * \a notHeld, when set, is called on the writer's thread after each commit that stored
     * ends of runs whose queue row \a worker no longer held (its lease expired and the run was
     * taken back; the guard trigger refused those ends), with their ids, before the batch's
     * \c durable callbacks run. It is called under the store's lock (so that once replaced it
     * is never called again): it must not call the store.
     */
    void setQueueWorker(const QString &worker, std::function<void(const QStringList &notHeld)> notHeld = {});

    /*! Deletes runs that finished more than \a days ago, now and every \a interval. 0: off. */
    void startRetention(int days, std::chrono::milliseconds interval = std::chrono::hours(1)) override;

    void recordQueued(const Run &run) override;
    void recordStarted(const Run &run) override;
    void recordRetrying(const Run &run) override;
    void recordProgress(const QString &runId, const Progress &progress) override;
    void recordLog(const QString &runId, const LogLines &lines) override;
    void recordFinished(const Run &run, std::function<void()> durable) override;

    bool isAvailable() const override;
    QString errorString() const override;
    QString location() const override;
    std::optional<Run> findRun(const QString &id) override;
    RunPage findRuns(const RunQuery &query) override;
    LogLines readLog(const QString &runId, qint64 fromLine = 1, int maxLines = 1000) override;
    LogLines readLogAfterSeq(const QString &runId, qint64 afterSeq, int maxLines = 1000) override;
    QFuture<std::optional<Run>> findRunAsync(const QString &id) override;
    /*! Cancels a run waiting in the shared queue, or asks the worker that holds it. */
    QFuture<CancelRequest> requestCancelAsync(const QString &runId) override;
    QFuture<RunPage> findRunsAsync(const RunQuery &query) override;
    QFuture<LogLines> readLogAsync(const QString &runId, qint64 fromLine = 1, int maxLines = 1000) override;
    QFuture<LogLines> readLogAfterSeqAsync(const QString &runId, qint64 afterSeq, int maxLines = 1000) override;
    RunStoreNotifier *notifier() override;
    QString traceId(const QString &runId) override;
    /*!
     * Marks Interrupted the unfinished runs of processes on this machine that are gone, as
     * SqliteRunStore does. Runs of the shared queue (waiting for a worker, or held under a
     * lease) are the queue's to reclaim and are left alone.
     */
    int recoverInterrupted() override;
    int pruneFinishedBefore(const QDateTime &cutoff) override;
    /*!
     * PostgreSQL checks its own pages; this checks what is Taskdeck's: that every log chunk
     * decodes, that chunks of a run neither overlap nor leave gaps (and a finished run has
     * every line it counted), that the schema version is this Taskdeck's, that no run stays
     * in the queue after its history row ended, and that every unfinished run is held under a
     * live lease or owned by a live process (as far as can be told: processes on other
     * machines cannot be).
     */
    QStringList checkIntegrity() override;
    bool flush(std::chrono::milliseconds timeout) override;

private:
    struct Private;
    explicit PgRunStore(std::unique_ptr<Private> d);
    std::unique_ptr<Private> d;
};

} // namespace taskdeck
