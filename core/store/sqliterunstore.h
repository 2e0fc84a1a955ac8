// SPDX-License-Identifier: MIT
#pragma once

#include "runstore.h"

#include <chrono>
#include <memory>

namespace taskdeck {

/*!
 * The run history in an SQLite file (dataDir/history.sqlite3), the default IRunStore.
 *
 * Writing: record*() only queue the change and return; one writer thread with its own
 * connection drains the queue every few tens of milliseconds into one transaction,
 * coalescing repeated updates of a run into one row write and log lines into chunks (see
 * LogChunk). A finish is committed at once (group commit) and the engine's \c durable
 * callback runs right after that commit, in commit order, on a thread of the store's own
 * (not the writer's). If the file cannot be written
 * the change is kept for a few retries, a warning is logged (category "taskdeck.store") and
 * \c durable still runs, so the engine never hangs on its history. When more than
 * kMaxQueuedLines log lines wait, recordLog() waits (a bounded time) for the writer. WAL
 * checkpoints happen when the writer has been idle briefly (or the WAL passed 64 MiB), not
 * in the middle of a burst. Commits use synchronous=NORMAL: a killed process loses nothing
 * committed; a power cut may lose the last commits.
 *
 * Reading: the synchronous queries run on the calling thread with that thread's own
 * read-only connection (in WAL mode readers and the writer do not block each other); the
 * asynchronous ones run the same way on one of two reader threads the store owns and hand
 * the result over through a QFuture. Each query first waits for what was recorded before it
 * to be committed, so it sees it.
 *
 * Changes: after each commit the writer posts the ids it wrote to notifier(). While the
 * notifier is watched, the writer also asks SQLite every 250 ms whether another connection
 * committed (PRAGMA data_version, which reads no page) and, when one did, looks up the runs
 * whose change number (a row of the changes table, one per transaction) is newer than the last it saw.
 *
 * Several processes (desktop, CLI, server) may use one data directory at once; each writes
 * its own runs, and recoverInterrupted() only touches runs whose owner process is gone.
 *
 * Opening costs the same whatever the history's size: the whole file is read (PRAGMA
 * quick_check) only when a process that had it open is gone without closing it (see
 * HistoryOwners), or on request (checkIntegrity()); otherwise only each table's first page
 * is read. The data directory is created 0700 and every file in it 0600 (see PrivateFiles);
 * looser modes of Taskdeck's own files there are tightened at open, with one warning.
 *
 * Destroy the store in the thread that opened it (its notifier lives there).
 *
 * \code
 * QString error;
 * auto store = SqliteRunStore::open(dataDir, &error);
 * if (store) {
 *     store->recoverInterrupted();
 *     store->startRetention(settings.retentionDays);
 *     engine.setRecorder(store.get());
 * }
 * \endcode
 */
class SqliteRunStore final : public IRunStore
{
public:
    Q_DISABLE_COPY_MOVE(SqliteRunStore)

    /*! How open() may open the history. */
    enum class OpenMode {
        ReadWrite,              //!< read and write; fail when the history cannot be written
        /*! Read and write when possible; when the data directory, the history file or its
         *  -wal or -shm file cannot be written, or the disk is full, only read: nothing is recorded, recovered or
         *  pruned, and the history must already be at the current schema version. For
         *  commands that only read (history, show, log, export). */
        ReadOnlyWhenUnwritable,
    };

    /*! Log lines waiting for the writer beyond which recordLog() waits. */
    static constexpr qsizetype kMaxQueuedLines = 200000;

    /*!
     * Opens (creating if needed) the history in \a dataDir, creating the directory too
     * (mode 0700; the history 0600), and brings an older file up to date. Returns nullptr
     * with \a error naming the file and the problem when the history is corrupt (found by
     * the full check after an unclean shutdown, or in a table's first page), locked by
     * another process beyond the busy timeout, not writable (the message names the file,
     * folder, -wal or -shm that is not), or from a newer version. Never deletes or rewrites a
     * file it cannot use. With OpenMode::ReadOnlyWhenUnwritable a history that cannot be
     * written is opened only to be read instead.
     */
    static std::unique_ptr<SqliteRunStore> open(const QString &dataDir, QString *error,
                                                 OpenMode mode = OpenMode::ReadWrite);
    /*!
     * What the history could not keep since it was opened: when the disk is full, the new
     * log lines of the runs writing then are dropped, and every later line of those runs
     * too, so that each stored log is the start of its run's log without holes; the runs'
     * states are still written (with the space the store keeps aside, see below), and each
     * such run records where its stored log stops (Run::logMissingFrom). Changes that could
     * not be written at all after a few tries are counted in \c changes.
     *
     * The store keeps 256 KiB of the disk aside in "history.sqlite3-reserve" next to the
     * history, made at open when missing, and deletes it the first time the disk is full.
     */
    struct Losses
    {
        qint64 logLines = 0;              //!< log lines not stored
        qint64 runsWithIncompleteLog = 0; //!< runs whose stored log stops early
        qint64 changes = 0;               //!< run changes (states) given up
        QString problem;                  //!< the first failure, naming the history
        bool isEmpty() const { return logLines == 0 && changes == 0; }
    };
    /*! What was lost so far (see Losses); empty while everything recorded was stored. */
    Losses losses() const;
    /*! True when the history was opened only to be read (OpenMode::ReadOnlyWhenUnwritable). */
    bool isReadOnly() const;
    /*! Why the history is only read, naming what cannot be written ("PATH-shm is not
     *  writable (mode 0444)"); empty when it is not read-only. */
    QString readOnlyReason() const;
    /*! The file name inside the data directory. */
    static QString fileName();

    /*! Commits what is queued, then stops the writer. The engine must be gone already. */
    ~SqliteRunStore() override;

    /*!
     * Deletes runs that finished more than \a days ago, now and then every \a interval, on
     * the writer thread, logging how many went. \a days == 0 turns it off.
     */
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
    /*! Cancels nothing (there is no shared queue): says whether the run has finished, or
     *  which process runs it. */
    QFuture<CancelRequest> requestCancelAsync(const QString &runId) override;
    QFuture<std::optional<Run>> findRunAsync(const QString &id) override;
    QFuture<RunPage> findRunsAsync(const RunQuery &query) override;
    QFuture<LogLines> readLogAsync(const QString &runId, qint64 fromLine = 1, int maxLines = 1000) override;
    QFuture<LogLines> readLogAfterSeqAsync(const QString &runId, qint64 afterSeq, int maxLines = 1000) override;
    RunStoreNotifier *notifier() override;
    QString traceId(const QString &runId) override;
    int recoverInterrupted() override;
    int pruneFinishedBefore(const QDateTime &cutoff) override;
    QStringList checkIntegrity() override;
    bool flush(std::chrono::milliseconds timeout) override;

private:
    struct Private;
    explicit SqliteRunStore(std::unique_ptr<Private> d);
    static std::unique_ptr<SqliteRunStore> openReadOnly(const QString &path, const QString &why,
                                                        QString *error);

    std::unique_ptr<Private> d;
};

} // namespace taskdeck
