// SPDX-License-Identifier: MIT
#include "pgqueue.h"

#include "pgconnection.h"
#include "pgschema.h"
#include "runid.h"

#include <QJsonDocument>
#include <QLoggingCategory>
#include <QSqlError>
#include <QSqlQuery>
#include <QVariant>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <tuple>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

Q_LOGGING_CATEGORY(lcQueue, "taskdeck.queue")

std::atomic<quint64> g_nextQueue{1};

// Leases and due times use the server's clock: workers on several machines agree on it.
const QString kNowMs = u"(extract(epoch from clock_timestamp()) * 1000)::bigint"_s;
const QString kActive = u"('queued', 'running', 'retrying')"_s;
constexpr qsizetype kIdsPerNotify = 150;
// Runs queued by one INSERT statement at most (6 values each, well under the 65,535
// parameters a statement may have).
constexpr qsizetype kEnqueueChunk = 1000;
// The rows of taskdeck_limits that hold a task's start-rate bucket: this, then the task's key.
const QString kTaskRatePrefix = u"task_rate:"_s;

bool notifyRuns(QSqlDatabase &db, const QStringList &ids, QSqlError *failure = nullptr)
{
    QSqlQuery notify(db);
    notify.prepare(u"SELECT pg_notify(?, ?)"_s);
    for (qsizetype i = 0; i < ids.size(); i += kIdsPerNotify) {
        notify.addBindValue(QString::fromLatin1(PgSchema::kRunsChannel));
        notify.addBindValue(ids.mid(i, kIdsPerNotify).join(u','));
        if (!notify.exec()) {
            if (failure)
                *failure = notify.lastError();
            return false;
        }
    }
    return true;
}

} // namespace

PgQueue::PgQueue(const PgConnectionInfo &info, const QString &worker)
    : m_info(info)
    , m_worker(worker)
    , m_name(u"taskdeck-pg-queue-%1"_s.arg(g_nextQueue++))
{
}

PgQueue::~PgQueue()
{
    m_claim.reset();
    if (!QSqlDatabase::contains(m_name))
        return;
    QSqlDatabase::database(m_name, false).close();
    QSqlDatabase::removeDatabase(m_name);
}

bool PgQueue::open(QString *error)
{
    QSqlDatabase db = m_info.open(m_name, error);
    if (!db.isOpen())
        return false;
    // A claim walks the ready index, which is in claim order, and stops after the runs it
    // takes. A queue table without statistics yet (just created and filled, before autovacuum
    // analyzed it) makes the planner guess that few rows match and read every ready row and
    // sort them instead, for every claim: 1.5 ms of server time per run claimed, measured on a
    // fresh 20,000-run queue. This connection runs only the queue's short statements, none of
    // which needs a sort, so sorting is off here, and JIT compiling (which a disabled sort's
    // cost would trigger) with it.
    QSqlQuery settings(db);
    if (!settings.exec(u"SET enable_sort = off"_s) || !settings.exec(u"SET jit = off"_s)) {
        if (error)
            *error = m_info.describe(settings.lastError());
        return false;
    }
    return true;
}

QSqlDatabase PgQueue::database() const
{
    return QSqlDatabase::database(m_name, false);
}

bool PgQueue::ensureOpen(QString *error)
{
    if (QSqlDatabase::contains(m_name)) {
        {
            QSqlDatabase db = database();
            QSqlQuery probe(db);
            if (db.isOpen() && probe.exec(u"SELECT 1"_s))
                return true;
        }
        m_claim.reset(); // prepared on the connection that is gone
        QSqlDatabase::database(m_name, false).close();
        QSqlDatabase::removeDatabase(m_name);
    }
    return open(error);
}

bool PgQueue::fail(const QSqlError &error, QString *out)
{
    if (out)
        *out = m_info.describe(error);
    QSqlDatabase db = database();
    QSqlQuery(db).exec(u"ROLLBACK"_s);
    return false;
}

std::optional<QStringList> PgQueue::enqueue(const QList<NewQueuedRun> &runs, QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (!q.exec(u"BEGIN"_s)) {
        fail(q.lastError(), error);
        return std::nullopt;
    }
    QStringList ids;
    ids.reserve(runs.size());
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    for (qsizetype from = 0; from < runs.size(); from += kEnqueueChunk) {
        const qsizetype count = std::min(kEnqueueChunk, runs.size() - from);
        // One statement for the whole chunk: its history rows and its queue rows, from one
        // list of values, instead of two statements a run.
        QStringList rows;
        rows.reserve(count);
        for (qsizetype i = 0; i < count; ++i)
            rows << u"(?, ?, ?::integer, ?, ?, ?)"_s;
        QSqlQuery insert(db);
        insert.prepare(
            u"WITH v (id, task, max_attempts, args, trace_id, tasks_version) AS (VALUES "_s + rows.join(u", "_s)
            + u"), r AS (INSERT INTO taskdeck_runs (id, task, status, attempt, max_attempts, args, queued_at, owner, "
              "trace_id, seq, tasks_version, changed_at) SELECT id, task, 'queued', 0, max_attempts, args, %1, '', "
              "trace_id, 1, tasks_version, %1 FROM v) "
              "INSERT INTO taskdeck_queue (id, task, tasks_version, run_at, max_attempts) "
              "SELECT id, task, tasks_version, "_s.arg(now)
            + kNowMs + u", max_attempts FROM v"_s);
        for (qsizetype i = from; i < from + count; ++i) {
            const NewQueuedRun &r = runs.at(i);
            // Time-ordered ids, as the engine's: the history's and the queue's keys grow at their
            // end, and a claim's lookups and a finish's updates touch the same few index pages
            // however long the history (random ids spread them over the whole index).
            const QString id = newRunId();
            insert.addBindValue(id);
            insert.addBindValue(r.task);
            insert.addBindValue(std::max(1, r.maxAttempts));
            insert.addBindValue(QString::fromUtf8(QJsonDocument(r.args).toJson(QJsonDocument::Compact)));
            insert.addBindValue(newTraceId());
            insert.addBindValue(r.tasksVersion);
            ids << id;
        }
        if (!insert.exec()) {
            fail(insert.lastError(), error);
            return std::nullopt;
        }
    }
    QSqlQuery notify(db);
    notify.prepare(u"SELECT pg_notify(?, '')"_s);
    notify.addBindValue(QString::fromLatin1(PgSchema::kQueueChannel));
    if (!notify.exec() || !notifyRuns(db, ids) || !q.exec(u"COMMIT"_s)) {
        fail(notify.lastError().isValid() ? notify.lastError() : q.lastError(), error);
        return std::nullopt;
    }
    return ids;
}

std::optional<QList<ClaimedRun>> PgQueue::claim(const QList<ClaimScope> &scopes, int max,
                                                std::chrono::milliseconds lease, QString *error,
                                                int globalLimit)
{
    QList<ClaimedRun> claimed;
    if (max <= 0)
        return claimed;
    QSqlDatabase db = database();
    // Every claim is a transaction: the queue's stored limits (taskdeck_limits) are read under
    // their rows' lock and spent in it, and task limits count and claim under advisory locks.
    QSqlQuery q(db);
    if (!q.exec(u"BEGIN"_s)) {
        fail(q.lastError(), error);
        return std::nullopt;
    }
    if (!takeLimits(db, &max, error))
        return std::nullopt;
    if (max <= 0) {
        if (!q.exec(u"COMMIT"_s))
            return fail(q.lastError(), error), std::nullopt;
        return claimed;
    }
    const int allowed = max;
    if (globalLimit > 0) {
        // One claimer at a time counts every held run and claims what is left under the limit.
        if (!q.exec(u"SELECT pg_advisory_xact_lock(hashtext('taskdeck-global'))"_s)
            || !q.exec(u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NOT NULL"_s) || !q.next())
            return fail(q.lastError(), error), std::nullopt;
        max = std::min(max, globalLimit - q.value(0).toInt());
        q.finish();
        if (max <= 0) {
            q.exec(u"COMMIT"_s);
            return claimed;
        }
    }
    // Claims and reads what a worker needs of each run (its history row) in one statement,
    // prepared once per connection; the runs are put in claim order here (see open()). The
    // rows are updated by key (= ANY of the ids locked) and their history rows looked up one
    // by one (LATERAL): with plain joins, a large batch on a long queue was planned as hash
    // joins that read the whole queue and the whole history on every claim.
    if (!m_claim) {
        m_claim.emplace(db);
        const QString sql =
            u"WITH picked AS (UPDATE taskdeck_queue q SET locked_by = ?, lease_until = "_s + kNowMs
            + u" + ?, attempt = q.attempt + 1 "
              "WHERE q.id = ANY(ARRAY(SELECT id FROM taskdeck_queue WHERE locked_by IS NULL AND run_at <= "_s + kNowMs
            + u" AND tasks_version = ? AND task = ANY(?::text[]) ORDER BY run_at, id LIMIT ? "
              "FOR UPDATE SKIP LOCKED)) "
              "RETURNING q.id, q.task, q.attempt, q.max_attempts, q.run_at) "
              "SELECT p.id, p.task, p.attempt, p.max_attempts, r.args, r.queued_at, r.log_lines, r.seq, p.run_at "
              "FROM picked p LEFT JOIN LATERAL (SELECT args, queued_at, log_lines, seq FROM taskdeck_runs "
              "WHERE id = p.id) r ON true"_s;
        if (!m_claim->prepare(sql)) {
            const QSqlError failure = m_claim->lastError();
            m_claim.reset();
            return fail(failure, error), std::nullopt;
        }
    }
    QList<qint64> due; // run_at of each claimed run
    auto take = [&](const QString &version, const QStringList &tasks, int count) -> bool {
        QSqlQuery &pick = *m_claim;
        pick.addBindValue(m_worker);
        pick.addBindValue(qint64(lease.count()));
        pick.addBindValue(version);
        pick.addBindValue(textArray(tasks));
        pick.addBindValue(count);
        if (!pick.exec())
            return fail(pick.lastError(), error);
        while (pick.next()) {
            ClaimedRun run;
            run.id = pick.value(0).toString();
            run.task = pick.value(1).toString();
            run.attempt = pick.value(2).toInt();
            run.maxAttempts = pick.value(3).toInt();
            run.args = QJsonDocument::fromJson(pick.value(4).toString().toUtf8()).object();
            run.queuedAt = QDateTime::fromMSecsSinceEpoch(pick.value(5).toLongLong(), Qt::UTC);
            run.logLines = pick.value(6).toLongLong();
            run.seq = pick.value(7).toLongLong();
            claimed << run;
            due << pick.value(8).toLongLong();
        }
        pick.finish();
        return true;
    };

    // A task with a concurrency limit is counted and claimed by one claimer at a time, under
    // an advisory lock that ends with the transaction: the limit holds across every worker.
    // Lowers \a room to what the limit leaves.
    auto countHeld = [&](const QString &task, int limit, int *room) -> bool {
        QSqlQuery lock(db);
        lock.prepare(u"SELECT pg_advisory_xact_lock(hashtext(?))"_s);
        lock.addBindValue(QString(u"taskdeck-task:"_s + task));
        if (!lock.exec())
            return fail(lock.lastError(), error);
        QSqlQuery held(db);
        held.prepare(u"SELECT count(*) FROM taskdeck_queue WHERE task = ? AND locked_by IS NOT NULL"_s);
        held.addBindValue(task);
        if (!held.exec() || !held.next())
            return fail(held.lastError(), error);
        *room = std::min(*room, limit - held.value(0).toInt());
        return true;
    };

    for (const ClaimScope &scope : scopes) {
        QStringList unlimited; // neither a concurrency limit nor a start rate of its own
        for (auto it = scope.tasks.cbegin(); it != scope.tasks.cend(); ++it) {
            if (it.value() <= 0 && !m_taskBuckets.contains(it.key()))
                unlimited << it.key();
        }
        if (!unlimited.isEmpty() && claimed.size() < max && !take(scope.tasksVersion, unlimited, max - int(claimed.size())))
            return std::nullopt;
        for (auto it = scope.tasks.cbegin(); it != scope.tasks.cend() && claimed.size() < max; ++it) {
            const auto bucket = m_taskBuckets.find(it.key());
            if (bucket != m_taskBuckets.end()) {
                // The task's own start rate: at most its whole tokens (takeLimits() holds the
                // bucket's row locked, so one claimer at a time spends them).
                const int whole = int(std::floor(bucket->tokens));
                int room = std::min(whole, max - int(claimed.size()));
                if (it.value() > 0) {
                    if (!countHeld(it.key(), it.value(), &room))
                        return std::nullopt;
                }
                const qsizetype before = claimed.size();
                if (room > 0 && !take(scope.tasksVersion, {it.key()}, room))
                    return std::nullopt;
                bucket->taken += int(claimed.size() - before);
                if (int(claimed.size() - before) >= whole)
                    waitForToken(bucket->tokens - bucket->taken, bucket->rate); // runs may wait
                continue;
            }
            if (it.value() <= 0)
                continue;
            int room = max - int(claimed.size());
            if (!countHeld(it.key(), it.value(), &room))
                return std::nullopt;
            if (room > 0 && !take(scope.tasksVersion, {it.key()}, room))
                return std::nullopt;
        }
    }
    if (!settleStartTokens(db, int(claimed.size()), error))
        return std::nullopt;
    if (m_tokensAt > 0 && claimed.size() == allowed && m_tokens - double(allowed) < 1.0) {
        // Every token went: more runs may wait for the next one.
        waitForToken(m_tokens - double(allowed), m_lastLimits.startRate);
    }
    if (!q.exec(u"COMMIT"_s))
        return fail(q.lastError(), error), std::nullopt;
    m_claimedSinceVacuum += claimed.size();
    vacuumAfterBurst(claimed.isEmpty());
    // Oldest first, as the queue hands them out.
    QList<qsizetype> order(claimed.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](qsizetype a, qsizetype b) {
        return std::tie(due.at(a), claimed.at(a).id) < std::tie(due.at(b), claimed.at(b).id);
    });
    QList<ClaimedRun> sorted;
    sorted.reserve(claimed.size());
    for (const qsizetype i : std::as_const(order))
        sorted << std::move(claimed[i]);
    return sorted;
}

void PgQueue::vacuumAfterBurst(bool foundNone)
{
    // Every claim leaves an entry of the ready index behind, and every finish a dead row,
    // which the claims after it step over until the table is vacuumed: after a burst of
    // 100,000 runs that made the first claims of the next runs take tens of milliseconds,
    // and autovacuum comes by at most once a minute. So the worker that finds the queue empty
    // after a burst vacuums it (a small table: what is in flight, and the dead rows), and one
    // that claims without end does so every kVacuumDuring runs. SKIP_LOCKED: another
    // worker's vacuum of the table is as good. A role that does not own the table gets a
    // warning from the server, not an error, and nothing is vacuumed.
    constexpr qint64 kVacuumAfter = 2000;
    constexpr qint64 kVacuumDuring = 50000;
    if (m_claimedSinceVacuum < (foundNone ? kVacuumAfter : kVacuumDuring))
        return;
    m_claimedSinceVacuum = 0;
    QSqlQuery q(database());
    if (!q.exec(u"VACUUM (SKIP_LOCKED) taskdeck_queue"_s))
        qCDebug(lcQueue).noquote() << u"vacuuming the queue:"_s << q.lastError().text();
}

bool PgQueue::renew(std::chrono::milliseconds lease, QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    q.prepare(u"UPDATE taskdeck_queue SET lease_until = "_s + kNowMs + u" + ? WHERE locked_by = ?"_s);
    q.addBindValue(qint64(lease.count()));
    q.addBindValue(m_worker);
    return q.exec() || fail(q.lastError(), error);
}

bool PgQueue::finish(const QStringList &ids, QString *error)
{
    if (ids.isEmpty())
        return true;
    QSqlDatabase db = database();
    QSqlQuery q(db);
    q.prepare(u"DELETE FROM taskdeck_queue WHERE id = ANY(?::text[]) AND locked_by = ?"_s);
    q.addBindValue(textArray(ids));
    q.addBindValue(m_worker);
    return q.exec() || fail(q.lastError(), error);
}

bool PgQueue::handBack(const QStringList &ids, QString *error)
{
    if (ids.isEmpty())
        return true;
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (!q.exec(u"BEGIN"_s))
        return fail(q.lastError(), error);
    QSqlQuery back(db);
    back.prepare(u"UPDATE taskdeck_queue SET locked_by = NULL, lease_until = NULL, attempt = GREATEST(attempt - 1, 0) "
                 "WHERE id = ANY(?::text[]) AND locked_by = ?"_s);
    back.addBindValue(textArray(ids));
    back.addBindValue(m_worker);
    QSqlQuery notify(db);
    notify.prepare(u"SELECT pg_notify(?, '')"_s);
    notify.addBindValue(QString::fromLatin1(PgSchema::kQueueChannel));
    if (!back.exec() || !notify.exec() || !q.exec(u"COMMIT"_s))
        return fail(back.lastError().isValid() ? back.lastError() : q.lastError(), error);
    return true;
}

int PgQueue::reclaimExpired(QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    // The queue's bookkeeping writes runs it does not hold: the guard lets it (PgSchema).
    if (!q.exec(u"BEGIN"_s) || !q.exec(u"SET LOCAL taskdeck.queue_admin = 'on'"_s))
        return fail(q.lastError(), error), -1;
    QSqlQuery expired(db);
    expired.setForwardOnly(true);
    if (!expired.exec(u"SELECT q.id, q.attempt, q.max_attempts, q.locked_by, r.status FROM taskdeck_queue q "
                      "LEFT JOIN taskdeck_runs r ON r.id = q.id WHERE q.locked_by IS NOT NULL AND q.lease_until < "_s
                      + kNowMs + u" FOR UPDATE OF q SKIP LOCKED"_s))
        return fail(expired.lastError(), error), -1;
    struct Lost { QString id; int attempt; int maxAttempts; QString worker; QString status; };
    QList<Lost> lost;
    while (expired.next()) {
        lost.append({expired.value(0).toString(), expired.value(1).toInt(), expired.value(2).toInt(),
                     expired.value(3).toString(), expired.value(4).toString()});
    }
    expired.finish();
    QStringList changed;
    bool requeued = false;
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    for (const Lost &l : std::as_const(lost)) {
        QSqlQuery step(db);
        if (!kActive.contains(u'\'' + l.status + u'\'') || l.status.isEmpty()) {
            // Its end is stored already; only the queue row was left behind.
            step.prepare(u"DELETE FROM taskdeck_queue WHERE id = ?"_s);
            step.addBindValue(l.id);
        } else if (l.attempt < l.maxAttempts) {
            step.prepare(u"UPDATE taskdeck_queue SET locked_by = NULL, lease_until = NULL, run_at = "_s + kNowMs
                         + u" WHERE id = ?"_s);
            step.addBindValue(l.id);
            if (!step.exec())
                return fail(step.lastError(), error), -1;
            step = QSqlQuery(db);
            step.prepare(u"UPDATE taskdeck_runs SET status = 'queued', changed_at = ?, error_message = ?, "
                         "error_kind = 'WorkerLost', error_transient = true WHERE id = ?"_s);
            step.addBindValue(now);
            step.addBindValue(u"worker %1 stopped answering during attempt %2 of %3; the run was queued again"_s
                                  .arg(l.worker).arg(l.attempt).arg(l.maxAttempts));
            step.addBindValue(l.id);
            requeued = true;
            changed << l.id;
        } else {
            step.prepare(u"WITH gone AS (DELETE FROM taskdeck_queue WHERE id = ?) "
                         "UPDATE taskdeck_runs SET status = 'interrupted', finished_at = ?, changed_at = ?, "
                         "error_message = ?, error_kind = 'Interrupted', error_detail = ?, error_transient = false "
                         "WHERE id = ? AND status IN "_s + kActive);
            step.addBindValue(l.id);
            step.addBindValue(now);
            step.addBindValue(now);
            step.addBindValue(u"worker %1 stopped answering (its lease expired) while this run was %2; it was "
                              u"marked interrupted"_s.arg(l.worker, l.status));
            step.addBindValue(u"worker: %1\nattempt: %2 of %3"_s.arg(l.worker).arg(l.attempt).arg(l.maxAttempts));
            step.addBindValue(l.id);
            changed << l.id;
        }
        if (!step.exec())
            return fail(step.lastError(), error), -1;
    }
    if (requeued) {
        QSqlQuery notify(db);
        notify.prepare(u"SELECT pg_notify(?, '')"_s);
        notify.addBindValue(QString::fromLatin1(PgSchema::kQueueChannel));
        notify.exec();
    }
    if (!notifyRuns(db, changed) || !q.exec(u"COMMIT"_s))
        return fail(q.lastError(), error), -1;
    return int(lost.size());
}

qint64 PgQueue::waitingCount(QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (!q.exec(u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NULL"_s) || !q.next())
        return fail(q.lastError(), error), -1;
    return q.value(0).toLongLong();
}

// The queue's limits and cancel requests, and the lease checks of a worker cut off: kept apart
// from the claim's statements above.

int QueueLimits::startBurst() const
{
    if (!(startRate > 0))
        return 1;
    return std::max(1, int(std::min(std::ceil(startRate), 1.0e6)));
}

bool PgQueue::takeLimits(QSqlDatabase &db, int *max, QString *error)
{
    m_lastLimits = QueueLimits();
    m_rateWait = std::chrono::milliseconds(0);
    m_tokensAt = 0;
    m_taskBuckets.clear();
    QSqlQuery q(db);
    q.setForwardOnly(true);
    // Every claimer of a queue with limits takes these rows' locks first, in one order: one
    // claimer at a time reads and spends them, and the transaction's end releases them.
    if (!q.exec(u"SELECT name, value, tokens, refilled_at, "_s + kNowMs
                + u" FROM taskdeck_limits ORDER BY name FOR UPDATE"_s))
        return fail(q.lastError(), error);
    double tokens = 0;
    qint64 refilledAt = 0;
    qint64 now = 0;
    while (q.next()) {
        const QString name = q.value(0).toString();
        if (name == u"max_running") {
            m_lastLimits.maxRunning = int(q.value(1).toDouble());
        } else if (name == u"start_rate") {
            m_lastLimits.startRate = q.value(1).toDouble();
            tokens = q.value(2).toDouble();
            refilledAt = q.value(3).toLongLong();
            now = q.value(4).toLongLong();
        } else if (name.startsWith(kTaskRatePrefix)) {
            TaskBucket bucket;
            bucket.rate = q.value(1).toDouble();
            bucket.at = q.value(4).toLongLong();
            const double elapsed = double(std::max<qint64>(0, bucket.at - q.value(3).toLongLong()));
            bucket.tokens = std::min(double(QueueLimits{0, bucket.rate}.startBurst()),
                                     q.value(2).toDouble() + elapsed * bucket.rate / 1000.0);
            if (bucket.rate > 0)
                m_taskBuckets.insert(name.mid(kTaskRatePrefix.size()), bucket);
        }
    }
    q.finish();
    if (m_lastLimits.maxRunning > 0) {
        QSqlQuery held(db);
        if (!held.exec(u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NOT NULL"_s) || !held.next())
            return fail(held.lastError(), error);
        *max = std::min(*max, m_lastLimits.maxRunning - held.value(0).toInt());
    }
    if (m_lastLimits.startRate > 0) {
        const double elapsed = double(std::max<qint64>(0, now - refilledAt));
        m_tokens = std::min(double(m_lastLimits.startBurst()), tokens + elapsed * m_lastLimits.startRate / 1000.0);
        m_tokensAt = now;
        const int whole = int(std::floor(m_tokens));
        if (whole <= 0 && *max > 0) {
            // No token: wait for the next one only when runs are waiting.
            QSqlQuery waiting(db);
            if (!waiting.exec(u"SELECT EXISTS (SELECT 1 FROM taskdeck_queue WHERE locked_by IS NULL AND run_at <= "_s
                              + kNowMs + u")"_s) || !waiting.next())
                return fail(waiting.lastError(), error);
            if (waiting.value(0).toBool())
                waitForToken(m_tokens, m_lastLimits.startRate);
        }
        *max = std::min(*max, whole);
    }
    return true;
}

bool PgQueue::settleStartTokens(QSqlDatabase &db, int claimed, QString *error)
{
    QSqlQuery q(db);
    q.prepare(u"UPDATE taskdeck_limits SET tokens = ?, refilled_at = ? WHERE name = ?"_s);
    if (m_tokensAt > 0) {
        q.addBindValue(m_tokens - double(claimed));
        q.addBindValue(m_tokensAt);
        q.addBindValue(u"start_rate"_s);
        if (!q.exec())
            return fail(q.lastError(), error);
    }
    for (auto it = m_taskBuckets.cbegin(); it != m_taskBuckets.cend(); ++it) {
        if (it->taken <= 0)
            continue; // left as stored: the next claim refills it from there the same
        q.addBindValue(it->tokens - double(it->taken));
        q.addBindValue(it->at);
        q.addBindValue(QString(kTaskRatePrefix + it.key()));
        if (!q.exec())
            return fail(q.lastError(), error);
    }
    return true;
}

void PgQueue::waitForToken(double tokens, double rate)
{
    const std::chrono::milliseconds wait(qint64(std::ceil((1.0 - tokens) * 1000.0 / rate)) + 1);
    if (m_rateWait.count() == 0 || wait < m_rateWait)
        m_rateWait = wait;
}

bool PgQueue::setMaxRunning(int maxRunning, QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (maxRunning <= 0) {
        q.prepare(u"DELETE FROM taskdeck_limits WHERE name = 'max_running'"_s);
    } else {
        q.prepare(u"INSERT INTO taskdeck_limits (name, value) VALUES ('max_running', ?) "
                  "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"_s);
        q.addBindValue(double(maxRunning));
    }
    return q.exec() || fail(q.lastError(), error);
}

bool PgQueue::setStartRate(double perSecond, QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (!(perSecond > 0)) {
        q.prepare(u"DELETE FROM taskdeck_limits WHERE name = 'start_rate'"_s);
        return q.exec() || fail(q.lastError(), error);
    }
    QueueLimits limits;
    limits.startRate = perSecond;
    // A new rate starts with a full bucket; the same rate given again keeps the bucket as it is,
    // so that starting one more worker never grants a burst.
    q.prepare(u"INSERT INTO taskdeck_limits (name, value, tokens, refilled_at) VALUES ('start_rate', ?, ?, "_s
              + kNowMs + u") ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
                         "tokens = CASE WHEN taskdeck_limits.value = EXCLUDED.value THEN taskdeck_limits.tokens "
                         "ELSE EXCLUDED.tokens END, "
                         "refilled_at = CASE WHEN taskdeck_limits.value = EXCLUDED.value "
                         "THEN taskdeck_limits.refilled_at ELSE EXCLUDED.refilled_at END"_s);
    q.addBindValue(perSecond);
    q.addBindValue(double(limits.startBurst()));
    return q.exec() || fail(q.lastError(), error);
}

bool PgQueue::setTaskStartRates(const QHash<QString, double> &rates, QString *error)
{
    QSqlDatabase db = database();
    QStringList none;
    QSqlQuery q(db);
    // As setStartRate(): a new rate starts with a full bucket, the same one keeps its bucket.
    q.prepare(u"INSERT INTO taskdeck_limits (name, value, tokens, refilled_at) VALUES (?, ?, ?, "_s + kNowMs
              + u") ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
                "tokens = CASE WHEN taskdeck_limits.value = EXCLUDED.value THEN taskdeck_limits.tokens "
                "ELSE EXCLUDED.tokens END, "
                "refilled_at = CASE WHEN taskdeck_limits.value = EXCLUDED.value "
                "THEN taskdeck_limits.refilled_at ELSE EXCLUDED.refilled_at END"_s);
    for (auto it = rates.cbegin(); it != rates.cend(); ++it) {
        if (!(it.value() > 0)) {
            none << QString(kTaskRatePrefix + it.key());
            continue;
        }
        q.addBindValue(QString(kTaskRatePrefix + it.key()));
        q.addBindValue(it.value());
        q.addBindValue(double(QueueLimits{0, it.value()}.startBurst()));
        if (!q.exec())
            return fail(q.lastError(), error);
    }
    if (none.isEmpty())
        return true;
    QSqlQuery drop(db);
    drop.prepare(u"DELETE FROM taskdeck_limits WHERE name = ANY(?::text[])"_s);
    drop.addBindValue(textArray(none));
    return drop.exec() || fail(drop.lastError(), error);
}

std::optional<QueueLimits> PgQueue::limits(QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    if (!q.exec(u"SELECT name, value FROM taskdeck_limits"_s))
        return fail(q.lastError(), error), std::nullopt;
    QueueLimits limits;
    while (q.next()) {
        if (q.value(0).toString() == u"max_running")
            limits.maxRunning = int(q.value(1).toDouble());
        else if (q.value(0).toString() == u"start_rate")
            limits.startRate = q.value(1).toDouble();
    }
    m_lastLimits = limits;
    return limits;
}

std::optional<CancelOutcome> requestQueuedCancel(QSqlDatabase &db, const QString &id, QSqlError *failure)
{
    QSqlQuery q(db);
    auto failed = [&](const QSqlQuery &statement) -> std::optional<CancelOutcome> {
        *failure = statement.lastError();
        QSqlQuery(db).exec(u"ROLLBACK"_s);
        return std::nullopt;
    };
    if (!q.exec(u"BEGIN"_s))
        return failed(q);
    QSqlQuery row(db);
    row.prepare(u"SELECT locked_by FROM taskdeck_queue WHERE id = ? FOR UPDATE"_s);
    row.addBindValue(id);
    if (!row.exec())
        return failed(row);
    if (!row.next()) {
        row.finish();
        if (!q.exec(u"COMMIT"_s))
            return failed(q);
        return CancelOutcome::NotQueued;
    }
    const bool held = !row.value(0).isNull();
    row.finish();
    CancelOutcome outcome = CancelOutcome::Requested;
    QSqlQuery step(db);
    if (held) {
        step.prepare(u"UPDATE taskdeck_queue SET cancel_requested = true WHERE id = ?"_s);
        step.addBindValue(id);
        if (!step.exec())
            return failed(step);
        step = QSqlQuery(db);
        step.prepare(u"SELECT pg_notify(?, ?)"_s);
        step.addBindValue(QString::fromLatin1(PgSchema::kCancelChannel));
        step.addBindValue(id);
    } else {
        // Nobody holds it: it ends here, before any worker may take it.
        outcome = CancelOutcome::Canceled;
        step.prepare(u"DELETE FROM taskdeck_queue WHERE id = ?"_s);
        step.addBindValue(id);
        if (!step.exec())
            return failed(step);
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        step = QSqlQuery(db);
        step.prepare(u"UPDATE taskdeck_runs SET status = 'canceled', finished_at = ?, changed_at = ?, seq = seq + 1, "
                     "error_message = 'canceled before a worker started it', error_kind = 'Canceled', "
                     "error_detail = '', error_transient = false WHERE id = ? AND status IN "_s + kActive);
        step.addBindValue(now);
        step.addBindValue(now);
        step.addBindValue(id);
    }
    if (!step.exec())
        return failed(step);
    if (outcome == CancelOutcome::Canceled && !notifyRuns(db, {id}, failure)) {
        QSqlQuery(db).exec(u"ROLLBACK"_s);
        return std::nullopt;
    }
    if (!q.exec(u"COMMIT"_s))
        return failed(q);
    return outcome;
}

std::optional<CancelOutcome> PgQueue::requestCancel(const QString &id, QString *error)
{
    QSqlDatabase db = database();
    QSqlError failure;
    const std::optional<CancelOutcome> outcome = requestQueuedCancel(db, id, &failure);
    if (!outcome && error)
        *error = m_info.describe(failure);
    return outcome;
}

std::optional<QStringList> PgQueue::cancelRequests(QString *error)
{
    QSqlDatabase db = database();
    QSqlQuery q(db);
    q.prepare(u"SELECT id FROM taskdeck_queue WHERE locked_by = ? AND cancel_requested"_s);
    q.addBindValue(m_worker);
    if (!q.exec())
        return fail(q.lastError(), error), std::nullopt;
    QStringList ids;
    while (q.next())
        ids << q.value(0).toString();
    return ids;
}

std::optional<QStringList> PgQueue::renewHeld(const QStringList &ids, std::chrono::milliseconds lease,
                                              QString *error)
{
    if (ids.isEmpty())
        return QStringList();
    QSqlDatabase db = database();
    QSqlQuery q(db);
    q.prepare(u"UPDATE taskdeck_queue SET lease_until = "_s + kNowMs
              + u" + ? WHERE locked_by = ? AND id = ANY(?::text[]) RETURNING id"_s);
    q.addBindValue(qint64(lease.count()));
    q.addBindValue(m_worker);
    q.addBindValue(textArray(ids));
    if (!q.exec())
        return fail(q.lastError(), error), std::nullopt;
    QStringList held;
    while (q.next())
        held << q.value(0).toString();
    return held;
}

std::optional<QStringList> PgQueue::finishHeld(const QStringList &ids, QString *error)
{
    if (ids.isEmpty())
        return QStringList();
    QSqlDatabase db = database();
    QSqlQuery q(db);
    q.prepare(u"DELETE FROM taskdeck_queue WHERE id = ANY(?::text[]) AND locked_by = ? RETURNING id"_s);
    q.addBindValue(textArray(ids));
    q.addBindValue(m_worker);
    if (!q.exec())
        return fail(q.lastError(), error), std::nullopt;
    QStringList removed;
    while (q.next())
        removed << q.value(0).toString();
    return removed;
}

} // namespace taskdeck
