// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

#include <QString>

namespace taskdeck {

class IRunStore;
class TaskRegistry;

/*!
 * "Database Backup" (backup): a consistent copy of the run history while it is in use.
 *
 * The run takes a snapshot with \c{VACUUM INTO} on a read connection of its own to
 * \a store's database (IRunStore::location()), so it sees one committed state while the
 * store keeps writing. Argument \c format chooses the output, written into \a backupDir
 * (created when missing) as \c{taskdeck-history-YYYYMMDD-HHMMSS.<ext>} (UTC, "-2", "-3" ...
 * appended when the name is taken), readable by its owner only:
 *  - \c sql (.sql): a plain-text SQL script that recreates every table, row, index, trigger
 *    and view and the schema version (PRAGMA user_version) in an empty SQLite database;
 *  - \c tar (.tar.gz): a gzip-compressed tar, made by the \c tar program, holding the
 *    snapshot as \c history.sqlite3.
 *
 * The result is {file (absolute path), size (bytes), sha256 (hex), format}. A failed or
 * canceled run leaves no partial backup behind. Progress: the snapshot, each table (sql) or
 * the archive (tar), then the checksum. One backup runs at a time.
 *
 * Works for an SQLite history only: a store whose location() is no database file fails the
 * run with kind "HistoryUnavailable". \a store is not owned and must outlive the task.
 */
Task backupTask(IRunStore *store, const QString &backupDir);

/*!
 * "Purge History" (purge-history): deletes finished runs, with their logs, that finished
 * more than \c days days ago (0: every finished run). Queued and running runs are never
 * touched. Dangerous: runs need confirmation.
 *
 * It first waits (bounded) for the store to write what was recorded, so a run that just
 * finished is judged by its stored state. The result is {deleted (count), olderThan (the
 * cutoff, ISO 8601 UTC)}. A store that is not available fails the run with kind
 * "HistoryUnavailable" and the store's reason. \a store is not owned and must outlive the task.
 */
Task purgeHistoryTask(IRunStore *store);

/*!
 * Registers backup and purge-history for \a store through the public API, as an embedding
 * app would. With a null \a store (the app runs without history) nothing is registered:
 * tasks that could only fail are not offered. A store that exists but cannot be used at
 * run time makes the run fail with the store's reason instead.
 */
void registerHistoryTasks(TaskRegistry &registry, IRunStore *store, const QString &backupDir);

} // namespace taskdeck
