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

/*!
 * The shared work queue in PostgreSQL (table taskdeck_queue, next to the history; see
 * PgSchema and docs/postgresql.md). Uses one connection of its own on the thread that
 * creates it; every call is a short statement or transaction on that thread.
 *
 * A run is queued together with its history row (status queued) in one transaction that
 * notifies PgSchema::kQueueChannel. Workers claim() with SELECT ... FOR UPDATE SKIP LOCKED, so
 * claimers never wait for each other nor take the same row; a claim holds a lease that the
 * worker renews. A claim without limits is one prepared statement (claiming and reading the
 * runs' history rows); tasks with a limit are claimed in a transaction, under a per-task
 * advisory lock, after counting the runs of the task held by every worker. When a run ends,
 * its queue row is deleted in the transaction that stores its end (a worker's PgRunStore
 * does it, see PgRunStore::setQueueWorker(); finish() does it for other callers): the queue
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

    /*! Queues \a runs in one transaction; their new ids, in order, or nullopt with \a error. */
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

private:
    bool fail(const QSqlError &error, QString *out);

    const PgConnectionInfo m_info;
    const QString m_worker;
    const QString m_name;
    std::optional<QSqlQuery> m_claim; // the claim statement, prepared on the open connection
};

} // namespace taskdeck
