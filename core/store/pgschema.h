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
 *
 * Version 2:
 * - taskdeck_queue.cancel_requested: set by a cancel request (taskdeck run interrupted); the
 *   worker holding the run cancels it.
 * - taskdeck_limits: the limits of the queue shared by every worker, by name: max_running
 *   (runs held by all workers together) and start_rate (starts per second, a token bucket:
 *   tokens and refilled_at, on the server's clock).
 * - the trigger taskdeck_runs_guard on taskdeck_runs: an update of a run that is in the
 *   queue by a process that does not hold its claim (owner differs from locked_by) is
 *   skipped, and so is a second end of a run that ended already (a different finished_at):
 *   a worker cut off past its lease never writes over what the worker or the recovery that
 *   took the run back wrote. The queue's own bookkeeping sets taskdeck.queue_admin to pass.
 *
 * Version 3:
 * - taskdeck_queue's autovacuum settings: vacuumed and analyzed after 1,000 dead rows,
 *   unthrottled, instead of after a fifth of the table (workers also vacuum it themselves
 *   after a burst: PgQueue::claim()).
 */
class PgSchema final
{
public:
    static constexpr int kVersion = 3;
    /*! The LISTEN/NOTIFY channel: the payload is run ids, comma-separated. */
    static constexpr const char kRunsChannel[] = "taskdeck_runs";
    /*! The channel a queue insert notifies: the payload is the task key. */
    static constexpr const char kQueueChannel[] = "taskdeck_queue";
    /*! The channel a cancel request notifies: the payload is the run id. */
    static constexpr const char kCancelChannel[] = "taskdeck_cancel";

    /*!
     * Brings \a db to kVersion. Returns false with \a error set (a sentence naming the
     * database as \a display) when the database cannot be changed or is from a newer Taskdeck.
     */
    static bool migrate(QSqlDatabase &db, const QString &display, QString *error);
};

} // namespace taskdeck
