// SPDX-License-Identifier: MIT
#pragma once

#include "pgconnection.h"
#include "run.h"

#include <QDateTime>
#include <QHash>
#include <QJsonObject>
#include <QList>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QString>
#include <QStringList>

#include <chrono>
#include <optional>

namespace taskdeck {

/*! A run to put in the shared queue. */
struct NewQueuedRun
{
    QString task;
    QJsonObject args;        //!< validated; no secret fields (they are never stored)
    QString tasksVersion;    //!< the tasks-file version the arguments were validated against
    int maxAttempts = 1;     //!< claims allowed after a worker is lost (the task's retry policy)
};

/*! A run a worker claimed. */
struct ClaimedRun
{
    QString id;
    QString task;
    QJsonObject args;
    QDateTime queuedAt;
    int attempt = 1;         //!< this claim's number, from 1
    int maxAttempts = 1;
    qint64 logLines = 0;     //!< lines stored by earlier attempts: this attempt's lines follow them
    qint64 seq = 0;          //!< the run's stored seq: this attempt's events follow it
};

/*! Which tasks a worker claims: per tasks-file version, the keys, each with its own limit. */
struct ClaimScope
{
    QString tasksVersion;
    /*! Task key -> the most runs of it held at once by all workers together (0: no limit). */
    QHash<QString, int> tasks;
};

/*! The limits of the queue, stored in the database and obeyed by every worker's claims. */
struct QueueLimits
{
    int maxRunning = 0;      //!< runs held by all workers together; 0: no limit
    double startRate = 0;    //!< claims (so starts) per second by all workers together; 0: no limit
    /*! Claims allowed at once after a quiet spell: ceil(startRate), at least 1 (as the engine's). */
    int startBurst() const;
};

/*! What a cancel request found. */
enum class CancelOutcome {
    Canceled,    //!< no worker held the run: it left the queue and is stored canceled
    Requested,   //!< a worker holds it: the request is stored and notified; the worker cancels it
    NotQueued,   //!< not in the queue (finished already, or never queued)
};

/*!
 * PgQueue::requestCancel() on connection \a db, for a caller without a queue of its own (the
 * history's readers: PgRunStore::requestCancelAsync()). One transaction; when a statement
 * fails it is rolled back, \a failure says why and the answer is nullopt.
 */
std::optional<CancelOutcome> requestQueuedCancel(QSqlDatabase &db, const QString &id, QSqlError *failure);

/*!
 * The shared work queue in PostgreSQL (table taskdeck_queue, next to the history; see
 * PgSchema and docs/postgresql.md). Uses one connection of its own on the thread that
 * creates it; every call is a short statement or transaction on that thread.
 *
 * A run is queued together with its history row (status queued) in one transaction that
 * notifies PgSchema::kQueueChannel. Workers claim() with SELECT ... FOR UPDATE SKIP LOCKED, so
 * claimers never wait for each other nor take the same row; a claim holds a lease that the
 * worker renews. Every claim is one transaction: it reads the queue's own limits (QueueLimits,
 * table taskdeck_limits: a global max-running and a start rate) under the limits rows' lock,
 * then claims with one prepared statement that also reads the runs' history rows; tasks with
 * a limit are claimed under a per-task advisory lock, after counting the runs of the task held
 * by every worker. When a run ends, its queue row is deleted in the transaction that stores
 * its end, and only while this worker still holds it (a worker's PgRunStore does it, see
 * PgRunStore::setQueueWorker(); finishHeld() and finish() do it for other callers): the queue
 * only holds work in flight. The connection plans with sorting off (see open() in the
 * source): a claim reads the ready index in claim order.
 * reclaimExpired() gives the runs of lost workers (expired leases) another attempt where
 * their retry policy allows, else marks them interrupted.
 */
class PgQueue final
{
public:
    Q_DISABLE_COPY_MOVE(PgQueue)

    /*! \a worker names the claimer (its owner string); empty for a process that only queues. */
    PgQueue(const PgConnectionInfo &info, const QString &worker);
    ~PgQueue();

    /*! Connects (the schema must be current: open a PgRunStore first). */
    bool open(QString *error);
    /*! The queue's connection, for LISTEN (QSqlDriver::subscribeToNotification). */
    QSqlDatabase database() const;
    /*! Reconnects when the connection is gone; false with \a error when it cannot yet. */
    bool ensureOpen(QString *error);

    /*!
     * Queues \a runs in one transaction, with one INSERT statement per 1,000 runs (their
     * history rows and queue rows together); their new ids, in order, or nullopt with \a error.
     */
    std::optional<QStringList> enqueue(const QList<NewQueuedRun> &runs, QString *error);
    /*!
     * Claims up to \a max runs of \a scopes, oldest first, each with a lease of \a lease.
     * With \a globalLimit > 0, no more runs than that are held by all workers together after
     * the claim (counted under an advisory lock, like the per-task limits).
     */
    std::optional<QList<ClaimedRun>> claim(const QList<ClaimScope> &scopes, int max,
                                           std::chrono::milliseconds lease, QString *error,
                                           int globalLimit = 0);
    /*! Extends every lease this worker holds; false when the database did not answer. */
    bool renew(std::chrono::milliseconds lease, QString *error);
    /*! Removes finished runs this worker held from the queue. */
    bool finish(const QStringList &ids, QString *error);
    /*! Gives runs this worker holds but did not start back to the queue, unchanged. */
    bool handBack(const QStringList &ids, QString *error);
    /*! Handles runs whose lease expired: another attempt, or interrupted. Returns how many. */
    int reclaimExpired(QString *error);
    /*! Runs waiting in the queue (not held by a worker). */
    qint64 waitingCount(QString *error);

    /*!
     * Stores the global limit of runs held by all workers together (0: none). Every worker
     * reads it at each claim.
     */
    bool setMaxRunning(int maxRunning, QString *error);
    /*!
     * Stores the start rate of the whole queue in starts per second (0: none); the token
     * bucket starts full. Claims take tokens under the limits row's lock, refilled on the
     * server's clock, so the rate holds across every worker.
     */
    bool setStartRate(double perSecond, QString *error);
    /*!
     * Stores the start rates of tasks, task key -> starts per second by all workers together
     * (a task's \c start_rate), each a token bucket of its own like setStartRate()'s, row
     * \c task_rate:KEY of taskdeck_limits; a rate of 0 removes the task's. A task's claims take
     * its tokens in the claim's transaction, so its rate holds across every worker.
     */
    bool setTaskStartRates(const QHash<QString, double> &rates, QString *error);
    /*! The stored limits; nullopt with \a error when the database did not answer. */
    std::optional<QueueLimits> limits(QString *error);
    /*! The limits the last claim() or limits() found (none before either). */
    QueueLimits lastLimits() const { return m_lastLimits; }
    /*!
     * When the last claim() took fewer runs than it could because the start rate had no token
     * left while runs were waiting: how long until the next token. Zero otherwise.
     */
    std::chrono::milliseconds startRateWait() const { return m_rateWait; }

    /*!
     * Asks for run \a id to be canceled: a run no worker holds leaves the queue and is
     * stored canceled at once; a held one gets cancel_requested and a notification on
     * PgSchema::kCancelChannel for its worker. nullopt with \a error when the database did not
     * answer.
     */
    std::optional<CancelOutcome> requestCancel(const QString &id, QString *error);
    /*! The runs this worker holds whose cancel was requested. */
    std::optional<QStringList> cancelRequests(QString *error);
    /*!
     * Extends the leases of runs \a ids this worker holds; the ids of those it still holds (a run
     * taken back after its lease expired is not among them), or nullopt.
     */
    std::optional<QStringList> renewHeld(const QStringList &ids, std::chrono::milliseconds lease, QString *error);
    /*!
     * Removes finished runs this worker still holds from the queue; the ids removed (a run
     * it no longer held is not among them), or nullopt.
     */
    std::optional<QStringList> finishHeld(const QStringList &ids, QString *error);

private:
    bool fail(const QSqlError &error, QString *out);

    /*! Applies the stored limits inside claim()'s transaction: lowers \a max. */
    bool takeLimits(QSqlDatabase &db, int *max, QString *error);
    /*! Takes \a claimed tokens from the start-rate bucket read by takeLimits(), and the
     *  tasks' claimed tokens from theirs. */
    bool settleStartTokens(QSqlDatabase &db, int claimed, QString *error);
    /*! The next token of a bucket with \a tokens and \a rate comes in this long. */
    void waitForToken(double tokens, double rate);
    /*! Vacuums the queue table once this queue claimed many runs and found it empty. */
    void vacuumAfterBurst(bool foundNone);

    /*! A task's start-rate bucket as takeLimits() refilled it. */
    struct TaskBucket
    {
        double rate = 0;
        double tokens = 0;
        qint64 at = 0;         // server clock (ms) of the refill
        int taken = 0;         // tokens this claim took
    };

    const PgConnectionInfo m_info;
    const QString m_worker;
    const QString m_name;
    std::optional<QSqlQuery> m_claim; // the claim statement, prepared on the open connection
    qint64 m_claimedSinceVacuum = 0;  // runs this queue claimed since it last vacuumed the table
    QueueLimits m_lastLimits;
    std::chrono::milliseconds m_rateWait{0};
    double m_tokens = 0;       // the bucket as takeLimits() refilled it
    qint64 m_tokensAt = 0;     // server clock (ms) of that refill
    QHash<QString, TaskBucket> m_taskBuckets; // by task key, as takeLimits() refilled them
};

} // namespace taskdeck
