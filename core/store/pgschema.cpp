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

// The queue's shared limits, cancel requests, and the guard that lets only the holder of a
// queued run's claim write it (and a run finish once). Each statement may run again over its
// own result (a version row set back by hand), and leaves the same.
const QStringList &version2()
{
    static const QStringList statements = {
        u"ALTER TABLE taskdeck_queue ADD COLUMN IF NOT EXISTS cancel_requested boolean NOT NULL DEFAULT false"_s,
        u"CREATE TABLE IF NOT EXISTS taskdeck_limits ("
        "  name text PRIMARY KEY,"
        "  value double precision NOT NULL,"
        "  tokens double precision NOT NULL DEFAULT 0,"
        "  refilled_at bigint NOT NULL DEFAULT 0)"_s,
        u"CREATE OR REPLACE FUNCTION taskdeck_guard_run() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE holder text;\n"
        "BEGIN\n"
        "  IF coalesce(current_setting('taskdeck.queue_admin', true), '') = 'on' THEN\n"
        "    RETURN NEW;\n"
        "  END IF;\n"
        "  SELECT locked_by INTO holder FROM taskdeck_queue WHERE id = NEW.id;\n"
        "  IF FOUND AND NEW.owner <> '' AND holder IS DISTINCT FROM NEW.owner THEN\n"
        "    RAISE WARNING 'taskdeck: refused a write of run % by %, which does not hold its claim (held by %)',\n"
        "      NEW.id, NEW.owner, coalesce(holder, 'no worker');\n"
        "    RETURN NULL;\n"
        "  END IF;\n"
        "  IF OLD.status NOT IN ('queued', 'running', 'retrying')\n"
        "     AND NEW.finished_at IS DISTINCT FROM OLD.finished_at THEN\n"
        "    RAISE WARNING 'taskdeck: refused a second end of run % (by %): it ended already as %',\n"
        "      NEW.id, NEW.owner, OLD.status;\n"
        "    RETURN NULL;\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$"_s,
        u"DROP TRIGGER IF EXISTS taskdeck_runs_guard ON taskdeck_runs"_s,
        u"CREATE TRIGGER taskdeck_runs_guard BEFORE UPDATE ON taskdeck_runs FOR EACH ROW "
        "EXECUTE FUNCTION taskdeck_guard_run()"_s,
    };
    return statements;
}

// The queue table is small but churns: every run is inserted, updated at its claim and
// deleted at its end, and the claims step over the dead rows until they are vacuumed. The
// default thresholds (a fifth of the table, once a minute) let them pile up; these have
// autovacuum come after a thousand, unthrottled (the table is small).
const QStringList &version3()
{
    static const QStringList statements = {
        u"ALTER TABLE taskdeck_queue SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0, "
        "autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000)"_s,
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
    if (version < 2) {
        for (const QString &sql : version2()) {
            if (!q.exec(sql))
                return fail(q.lastError());
        }
    }
    if (version < 3) {
        for (const QString &sql : version3()) {
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
