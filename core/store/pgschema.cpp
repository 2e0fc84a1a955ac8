// SPDX-License-Identifier: MIT
#include "pgschema.h"

#include <QSqlError>
#include <QSqlQuery>
#include <QVariant>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// The advisory lock key every Taskdeck takes while it migrates ("tdck" in ASCII).
constexpr qint64 kMigrationLock = 0x7464636b;

const QStringList &version1()
{
    static const QStringList statements = {
        u"CREATE TABLE taskdeck_runs ("
        "  id text PRIMARY KEY,"
        "  task text NOT NULL,"
        "  status text NOT NULL,"
        "  attempt integer NOT NULL DEFAULT 0,"
        "  max_attempts integer NOT NULL DEFAULT 1,"
        "  args text NOT NULL DEFAULT '{}',"
        "  queued_at bigint NOT NULL,"
        "  started_at bigint,"
        "  finished_at bigint,"
        "  progress_done bigint NOT NULL DEFAULT 0,"
        "  progress_total bigint NOT NULL DEFAULT 0,"
        "  progress_message text NOT NULL DEFAULT '',"
        "  result text,"
        "  error_message text NOT NULL DEFAULT '',"
        "  error_kind text NOT NULL DEFAULT '',"
        "  error_detail text NOT NULL DEFAULT '',"
        "  error_transient boolean NOT NULL DEFAULT false,"
        "  log_lines bigint NOT NULL DEFAULT 0,"
        "  owner text NOT NULL DEFAULT '',"
        "  trace_id text NOT NULL DEFAULT '',"
        "  seq bigint NOT NULL DEFAULT 0,"
        "  next_attempt_at bigint,"
        "  tasks_version text NOT NULL DEFAULT '',"
        "  changed_at bigint NOT NULL DEFAULT 0)"_s,
        u"CREATE INDEX taskdeck_runs_queued_at ON taskdeck_runs (queued_at)"_s,
        u"CREATE INDEX taskdeck_runs_task_queued_at ON taskdeck_runs (task, queued_at)"_s,
        u"CREATE INDEX taskdeck_runs_active ON taskdeck_runs (status) "
        "WHERE status IN ('queued', 'running', 'retrying')"_s,
        u"CREATE INDEX taskdeck_runs_finished_at ON taskdeck_runs (finished_at) "
        "WHERE finished_at IS NOT NULL"_s,
        u"CREATE INDEX taskdeck_runs_changed_at ON taskdeck_runs (changed_at)"_s,
        u"CREATE TABLE taskdeck_log_chunks ("
        "  run_id text NOT NULL,"
        "  first_line bigint NOT NULL,"
        "  last_line bigint NOT NULL,"
        "  last_seq bigint NOT NULL DEFAULT 0,"
        "  data bytea NOT NULL,"
        "  PRIMARY KEY (run_id, first_line))"_s,
        u"CREATE INDEX taskdeck_log_chunks_seq ON taskdeck_log_chunks (run_id, last_seq)"_s,
        u"CREATE TABLE taskdeck_queue ("
        "  id text PRIMARY KEY,"
        "  task text NOT NULL,"
        "  tasks_version text NOT NULL DEFAULT '',"
        "  run_at bigint NOT NULL,"
        "  attempt integer NOT NULL DEFAULT 0,"
        "  max_attempts integer NOT NULL DEFAULT 1,"
        "  locked_by text,"
        "  lease_until bigint)"_s,
        u"CREATE INDEX taskdeck_queue_ready ON taskdeck_queue (run_at, id) WHERE locked_by IS NULL"_s,
        u"CREATE INDEX taskdeck_queue_leases ON taskdeck_queue (lease_until) WHERE locked_by IS NOT NULL"_s,
    };
    return statements;
}

} // namespace

bool PgSchema::migrate(QSqlDatabase &db, const QString &display, QString *error)
{
    QSqlQuery q(db);
    auto fail = [&](const QSqlError &sqlError) {
        QString text = sqlError.databaseText().trimmed();
        if (text.isEmpty())
            text = sqlError.driverText();
        *error = u"database %1 cannot be brought to Taskdeck's schema: %2"_s.arg(display, text);
        QSqlQuery(db).exec(u"ROLLBACK"_s);
        return false;
    };
    if (!q.exec(u"BEGIN"_s))
        return fail(q.lastError());
    if (!q.exec(u"SELECT pg_advisory_xact_lock(%1)"_s.arg(kMigrationLock)))
        return fail(q.lastError());
    if (!q.exec(u"CREATE TABLE IF NOT EXISTS taskdeck_meta (key text PRIMARY KEY, value text NOT NULL)"_s))
        return fail(q.lastError());
    if (!q.exec(u"SELECT value FROM taskdeck_meta WHERE key = 'schema_version'"_s))
        return fail(q.lastError());
    const int version = q.next() ? q.value(0).toString().toInt() : 0;
    if (version > kVersion) {
        QSqlQuery(db).exec(u"ROLLBACK"_s);
        *error = u"database %1 was written by a newer Taskdeck (schema version %2; this one knows up "
                 u"to %3): upgrade this Taskdeck"_s.arg(display).arg(version).arg(kVersion);
        return false;
    }
    if (version < 1) {
        for (const QString &sql : version1()) {
            if (!q.exec(sql))
                return fail(q.lastError());
        }
    }
    if (version < kVersion) {
        if (!q.exec(u"INSERT INTO taskdeck_meta (key, value) VALUES ('schema_version', '%1') "
                    u"ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"_s.arg(kVersion)))
            return fail(q.lastError());
    }
    if (!q.exec(u"COMMIT"_s))
        return fail(q.lastError());
    return true;
}

} // namespace taskdeck
