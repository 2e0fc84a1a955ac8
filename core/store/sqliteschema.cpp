// SPDX-License-Identifier: MIT
#include "sqliteschema.h"

#include "logchunk.h"

#include <QDateTime>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QVariant>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

bool execAll(QSqlDatabase &db, std::initializer_list<QString> statements, QSqlError *error)
{
    for (const QString &sql : statements) {
        QSqlQuery query(db);
        if (!query.exec(sql)) {
            *error = query.lastError();
            return false;
        }
    }
    return true;
}

bool exec(QSqlDatabase &db, const QString &sql, QSqlError *error, QVariant *firstValue = nullptr)
{
    QSqlQuery query(db);
    if (!query.exec(sql)) {
        *error = query.lastError();
        return false;
    }
    if (firstValue)
        *firstValue = query.next() ? query.value(0) : QVariant();
    return true;
}

using Migration = bool (*)(QSqlDatabase &, QSqlError *);

// Index i brings a file from version i to version i + 1.
constexpr Migration kMigrations[] = {
    &SqliteSchema::createVersion1,
    &SqliteSchema::migrateToVersion2,
    &SqliteSchema::migrateToVersion3,
    &SqliteSchema::migrateToVersion4,
    &SqliteSchema::migrateToVersion5,
    &SqliteSchema::migrateToVersion6,
};
static_assert(std::size(kMigrations) == SqliteSchema::kVersion);

} // namespace

bool SqliteSchema::createVersion1(QSqlDatabase &db, QSqlError *error)
{
    return execAll(db, {
        u"CREATE TABLE runs ("
        "  id TEXT PRIMARY KEY,"
        "  task TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  attempt INTEGER NOT NULL DEFAULT 0,"
        "  args TEXT NOT NULL DEFAULT '{}',"
        "  queued_at INTEGER NOT NULL,"
        "  started_at INTEGER,"
        "  finished_at INTEGER,"
        "  progress_done INTEGER NOT NULL DEFAULT 0,"
        "  progress_total INTEGER NOT NULL DEFAULT 0,"
        "  progress_message TEXT NOT NULL DEFAULT '',"
        "  result TEXT,"
        "  error_message TEXT NOT NULL DEFAULT '',"
        "  error_kind TEXT NOT NULL DEFAULT '',"
        "  error_detail TEXT NOT NULL DEFAULT '',"
        "  error_transient INTEGER NOT NULL DEFAULT 0,"
        "  log_lines INTEGER NOT NULL DEFAULT 0)"_s,
        u"CREATE INDEX runs_queued_at ON runs(queued_at)"_s,
        u"CREATE INDEX runs_task_queued_at ON runs(task, queued_at)"_s,
        u"CREATE TABLE log_lines ("
        "  run_id TEXT NOT NULL,"
        "  line INTEGER NOT NULL,"
        "  time_ms INTEGER NOT NULL,"
        "  stream TEXT NOT NULL,"
        "  text TEXT NOT NULL,"
        "  PRIMARY KEY (run_id, line)) WITHOUT ROWID"_s,
    }, error);
}

bool SqliteSchema::migrateToVersion2(QSqlDatabase &db, QSqlError *error)
{
    const bool altered = execAll(db, {
        u"ALTER TABLE runs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1"_s,
        u"ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''"_s,
        u"ALTER TABLE runs ADD COLUMN trace_id TEXT NOT NULL DEFAULT ''"_s,
        // Version 1 did not keep the limit; the attempts a run made are a lower bound of it.
        u"UPDATE runs SET max_attempts = max(1, attempt)"_s,
        u"UPDATE runs SET trace_id = lower(hex(randomblob(16)))"_s,
        u"CREATE INDEX runs_status ON runs(status)"_s,
        u"CREATE TABLE log_chunks ("
        "  run_id TEXT NOT NULL,"
        "  first_line INTEGER NOT NULL,"
        "  last_line INTEGER NOT NULL,"
        "  data BLOB NOT NULL,"
        "  PRIMARY KEY (run_id, first_line)) WITHOUT ROWID"_s,
    }, error);
    if (!altered)
        return false;

    QSqlQuery insert(db);
    if (!insert.prepare(u"INSERT INTO log_chunks (run_id, first_line, last_line, data) VALUES (?, ?, ?, ?)"_s)) {
        *error = insert.lastError();
        return false;
    }
    QString chunkRun;
    LogChunk chunk;
    auto writeChunk = [&]() -> bool {
        if (chunk.isEmpty())
            return true;
        insert.bindValue(0, chunkRun);
        insert.bindValue(1, chunk.firstLine());
        insert.bindValue(2, chunk.lastLine());
        insert.bindValue(3, chunk.data());
        chunk.clear();
        if (!insert.exec()) {
            *error = insert.lastError();
            return false;
        }
        return true;
    };

    QSqlQuery lines(db);
    lines.setForwardOnly(true);
    if (!lines.exec(u"SELECT run_id, line, time_ms, stream, text FROM log_lines ORDER BY run_id, line"_s)) {
        *error = lines.lastError();
        return false;
    }
    while (lines.next()) {
        const QString runId = lines.value(0).toString();
        if (runId != chunkRun || chunk.isFull()) {
            if (!writeChunk())
                return false;
            chunkRun = runId;
        }
        LogLine line;
        line.number = lines.value(1).toLongLong();
        line.timeMs = lines.value(2).toLongLong();
        line.stream = logStreamFromName(lines.value(3).toString()).value_or(LogStream::Out);
        line.text = lines.value(4).toString();
        chunk.append(line);
    }
    if (lines.lastError().isValid()) {
        *error = lines.lastError();
        return false;
    }
    if (!writeChunk())
        return false;
    lines.finish();
    return exec(db, u"DROP TABLE log_lines"_s, error);
}

bool SqliteSchema::migrateToVersion3(QSqlDatabase &db, QSqlError *error)
{
    // Only recovery looks runs up by status alone, and only queued or running ones; history
    // views filter status along the time or task indexes. An index of every run's status
    // cost each stored run one more index insert, and a status change a delete as well.
    return execAll(db, {
        u"DROP INDEX runs_status"_s,
        u"CREATE INDEX runs_active ON runs(status) WHERE status IN ('queued', 'running')"_s,
    }, error);
}

bool SqliteSchema::migrateToVersion4(QSqlDatabase &db, QSqlError *error)
{
    // Adding columns with constant defaults rewrites no row. What changed is logged one row
    // per transaction (the ids it wrote), not as an index entry per run write: a run written
    // several times cost the index a delete and an insert each time.
    return execAll(db, {
        u"ALTER TABLE runs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0"_s,
        u"ALTER TABLE runs ADD COLUMN next_attempt_at INTEGER"_s,
        u"CREATE TABLE changes (seq INTEGER PRIMARY KEY, run_ids TEXT NOT NULL)"_s,
        u"DROP INDEX runs_active"_s,
        u"CREATE INDEX runs_active ON runs(status) WHERE "_s + activeCondition(u"status"_s),
        u"ALTER TABLE log_chunks ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0"_s,
        u"CREATE INDEX log_chunks_seq ON log_chunks(run_id, last_seq)"_s,
    }, error);
}

bool SqliteSchema::migrateToVersion5(QSqlDatabase &db, QSqlError *error)
{
    return execAll(db, {
        u"CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, run_ids TEXT NOT NULL)"_s,
        u"DROP INDEX IF EXISTS runs_changed"_s,
    }, error);
}

bool SqliteSchema::migrateToVersion6(QSqlDatabase &db, QSqlError *error)
{
    return execAll(db, {
        u"ALTER TABLE runs ADD COLUMN log_missing_from INTEGER NOT NULL DEFAULT 0"_s,
    }, error);
}

QString SqliteSchema::activeCondition(const QString &column)
{
    // Not "IN (...)": with three values or more SQLite builds a temporary table for the list
    // each time the statement runs, and the index condition runs at every insert of a run
    // (a third more time for SQLite's work per run, measured).
    return u"(%1 = 'queued' OR %1 = 'running' OR %1 = 'retrying')"_s.arg(column);
}

std::optional<qint64> SqliteSchema::nextChange(QSqlDatabase &db, QSqlError *error)
{
    // Above every number given so far (the write lock orders the transactions of every
    // process), and never below the clock: pruning the change log down to nothing must not
    // hand the highest number out again, or a reader that saw it would miss the change.
    // Milliseconds times 1024 leave room for 1024 transactions in one millisecond.
    QVariant value;
    const qint64 clock = QDateTime::currentMSecsSinceEpoch() * 1024;
    if (!exec(db, u"SELECT max(coalesce((SELECT max(seq) FROM changes), 0) + 1, %1)"_s.arg(clock), error, &value))
        return std::nullopt;
    return value.toLongLong();
}

bool SqliteSchema::migrate(QSqlDatabase &db, Failure *failure)
{
    for (;;) {
        // IMMEDIATE takes the write lock up front: two processes opening an old file at
        // once apply each migration only once, and a file another writer holds is found
        // here (after the busy timeout) rather than half way through.
        if (!exec(db, u"BEGIN IMMEDIATE"_s, &failure->error))
            return false;
        auto rollback = [&] {
            QSqlError ignored;
            exec(db, u"ROLLBACK"_s, &ignored);
            return false;
        };
        QVariant value;
        if (!exec(db, u"PRAGMA user_version"_s, &failure->error, &value))
            return rollback();
        const int version = value.toInt();
        if (version > kVersion) {
            failure->problem = u"was written by a newer Taskdeck (history schema version %1; this one "
                               "knows up to %2)"_s.arg(version).arg(kVersion);
            return rollback();
        }
        if (version == kVersion) {
            // Rewriting the version is the cheapest real write: it proves the file can be
            // changed now, not only read.
            if (!exec(db, u"PRAGMA user_version = %1"_s.arg(kVersion), &failure->error)
                || !exec(db, u"COMMIT"_s, &failure->error)) {
                return rollback();
            }
            return true;
        }
        if (!kMigrations[version](db, &failure->error)
            || !exec(db, u"PRAGMA user_version = %1"_s.arg(version + 1), &failure->error)
            || !exec(db, u"COMMIT"_s, &failure->error)) {
            return rollback();
        }
    }
}

} // namespace taskdeck
