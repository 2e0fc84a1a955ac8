// SPDX-License-Identifier: MIT
#pragma once

#include <QSqlDatabase>
#include <QString>

namespace taskdeck {

/*!
 * The PostgreSQL history's and queue's tables, and the ordered migrations that bring an older
 * database to them. The version is the row of taskdeck_meta with key 'schema_version'. Every
 * process that opens the database calls migrate(): the first one applies what is missing,
 * each migration in one transaction with the version bump, under a transaction-scoped
 * advisory lock, so processes that start together apply each migration once and the others
 * wait for it and then find the database current.
 *
 * Version 1:
 * - taskdeck_runs: one row per run, the same columns as the SQLite history (times in
 *   milliseconds since the epoch, UTC), plus tasks_version (the tasks-file version a queued
 *   run was validated against) and changed_at (when the row was last written, for a listener
 *   that reconnects and looks for what it missed).
 * - taskdeck_log_chunks: a run's log as LogChunk rows (run_id, first_line, last_line,
 *   last_seq, data), which never overlap.
 * - taskdeck_queue: the runs waiting for a worker or held by one (locked_by, lease_until);
 *   a run leaves it when it finishes, so the table stays as small as the work in flight.
 */
class PgSchema final
{
public:
    static constexpr int kVersion = 1;
    /*! The LISTEN/NOTIFY channel: the payload is run ids, comma-separated. */
    static constexpr const char kRunsChannel[] = "taskdeck_runs";
    /*! The channel a queue insert notifies: the payload is the task key. */
    static constexpr const char kQueueChannel[] = "taskdeck_queue";

    /*!
     * Brings \a db to kVersion. Returns false with \a error set (a sentence naming the
     * database as \a display) when the database cannot be changed or is from a newer Taskdeck.
     */
    static bool migrate(QSqlDatabase &db, const QString &display, QString *error);
};

} // namespace taskdeck
