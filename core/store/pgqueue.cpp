// SPDX-License-Identifier: MIT
#include "pgqueue.h"

#include "pgschema.h"

#include <QJsonDocument>
#include <QSqlError>
#include <QSqlQuery>
#include <QUuid>
#include <QVariant>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <tuple>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

std::atomic<quint64> g_nextQueue{1};

// Leases and due times use the server's clock: workers on several machines agree on it.
const QString kNowMs = u"(extract(epoch from clock_timestamp()) * 1000)::bigint"_s;
const QString kActive = u"('queued', 'running', 'retrying')"_s;
constexpr qsizetype kIdsPerNotify = 150;

// A PostgreSQL text[] literal.
QString textArray(const QStringList &values)
{
    QStringList quoted;
    for (QString value : values) {
        value.replace(u'\\', u"\\\\"_s);
        value.replace(u'"', u"\\\""_s);
        quoted << u'"' + value + u'"';
    }
    return u'{' + quoted.join(u',') + u'}';
}

bool notifyRuns(QSqlDatabase &db, const QStringList &ids)
{
    QSqlQuery notify(db);
    notify.prepare(u"SELECT pg_notify(?, ?)"_s);
    for (qsizetype i = 0; i < ids.size(); i += kIdsPerNotify) {
        notify.addBindValue(QString::fromLatin1(PgSchema::kRunsChannel));
        notify.addBindValue(ids.mid(i, kIdsPerNotify).join(u','));
        if (!notify.exec())
            return false;
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
    QSqlQuery run(db);
    run.prepare(u"INSERT INTO taskdeck_runs (id, task, status, attempt, max_attempts, args, queued_at, owner, "
                "trace_id, seq, tasks_version, changed_at) VALUES (?, ?, 'queued', 0, ?, ?, ?, '', ?, 1, ?, ?)"_s);
    QSqlQuery queue(db);
    queue.prepare(u"INSERT INTO taskdeck_queue (id, task, tasks_version, run_at, max_attempts) "
                  "VALUES (?, ?, ?, "_s + kNowMs + u", ?)"_s);
    QStringList ids;
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    for (const NewQueuedRun &r : runs) {
        const QString id = QUuid::createUuid().toString(QUuid::WithoutBraces);
        run.addBindValue(id);
        run.addBindValue(r.task);
        run.addBindValue(std::max(1, r.maxAttempts));
        run.addBindValue(QString::fromUtf8(QJsonDocument(r.args).toJson(QJsonDocument::Compact)));
        run.addBindValue(now);
        run.addBindValue(QUuid::createUuid().toString(QUuid::Id128));
        run.addBindValue(r.tasksVersion);
        run.addBindValue(now);
        if (!run.exec()) {
            fail(run.lastError(), error);
            return std::nullopt;
        }
        queue.addBindValue(id);
        queue.addBindValue(r.task);
        queue.addBindValue(r.tasksVersion);
        queue.addBindValue(std::max(1, r.maxAttempts));
        if (!queue.exec()) {
            fail(queue.lastError(), error);
            return std::nullopt;
        }
        ids << id;
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
    // A claim without limits is one statement, its own transaction: one round trip. Limits
    // count and claim under advisory locks, which need a transaction around them.
    bool limited = globalLimit > 0 || scopes.size() > 1;
    for (const ClaimScope &scope : scopes) {
        for (auto it = scope.tasks.cbegin(); it != scope.tasks.cend() && !limited; ++it)
            limited = it.value() > 0;
    }
    QSqlQuery q(db);
    if (limited && !q.exec(u"BEGIN"_s)) {
        fail(q.lastError(), error);
        return std::nullopt;
    }
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
    // prepared once per connection; the runs are put in claim order here (see open()).
    if (!m_claim) {
        m_claim.emplace(db);
        const QString sql =
            u"WITH picked AS (UPDATE taskdeck_queue q SET locked_by = ?, lease_until = "_s + kNowMs
            + u" + ?, attempt = q.attempt + 1 "
              "FROM (SELECT id FROM taskdeck_queue WHERE locked_by IS NULL AND run_at <= "_s + kNowMs
            + u" AND tasks_version = ? AND task = ANY(?::text[]) ORDER BY run_at, id LIMIT ? "
              "FOR UPDATE SKIP LOCKED) p WHERE q.id = p.id "
              "RETURNING q.id, q.task, q.attempt, q.max_attempts, q.run_at) "
              "SELECT p.id, p.task, p.attempt, p.max_attempts, r.args, r.queued_at, r.log_lines, r.seq, p.run_at "
              "FROM picked p LEFT JOIN taskdeck_runs r ON r.id = p.id"_s;
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

    for (const ClaimScope &scope : scopes) {
        QStringList unlimited;
        for (auto it = scope.tasks.cbegin(); it != scope.tasks.cend(); ++it) {
            if (it.value() <= 0)
                unlimited << it.key();
        }
        if (!unlimited.isEmpty() && claimed.size() < max && !take(scope.tasksVersion, unlimited, max - int(claimed.size())))
            return std::nullopt;
        for (auto it = scope.tasks.cbegin(); it != scope.tasks.cend() && claimed.size() < max; ++it) {
            if (it.value() <= 0)
                continue;
            // One claimer of this task at a time counts and claims: the limit holds across
            // every worker. The lock ends with the transaction.
            QSqlQuery limit(db);
            limit.prepare(u"SELECT pg_advisory_xact_lock(hashtext(?))"_s);
            limit.addBindValue(QString(u"taskdeck-task:"_s + it.key()));
            if (!limit.exec())
                return fail(limit.lastError(), error), std::nullopt;
            QSqlQuery held(db);
            held.prepare(u"SELECT count(*) FROM taskdeck_queue WHERE task = ? AND locked_by IS NOT NULL"_s);
            held.addBindValue(it.key());
            if (!held.exec() || !held.next())
                return fail(held.lastError(), error), std::nullopt;
            const int room = std::min(it.value() - held.value(0).toInt(), max - int(claimed.size()));
            if (room > 0 && !take(scope.tasksVersion, {it.key()}, room))
                return std::nullopt;
        }
    }
    if (limited && !q.exec(u"COMMIT"_s))
        return fail(q.lastError(), error), std::nullopt;
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
    if (!q.exec(u"BEGIN"_s))
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

} // namespace taskdeck
