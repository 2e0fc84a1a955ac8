// SPDX-License-Identifier: MIT
// What every command that runs tasks sets up the same way: the data directory, the history
// and the tasks that come with Taskdeck.
#pragma once

#include "sqliterunstore.h"

#include <QProcessEnvironment>
#include <QString>

#include <memory>

namespace taskdeck {

struct Settings;
class TaskRegistry;

/*! TASK_DATA_DIR, or ~/.local/share/taskdeck (the same for the window and the command line). */
QString dataDirectory(const Settings &settings);

/*! The shared database's URL: \a flag (--database) if given, else TASK_DATABASE_URL; empty: none. */
QString databaseUrl(const QString &flag, const QProcessEnvironment &env);

/*!
 * Opens the history in the data directory, records the runs that processes which died left
 * queued or running as interrupted, and starts retention. Null with \a error set on failure.
 * With ReadOnlyWhenUnwritable, a history that cannot be written is opened for reading.
 */
std::unique_ptr<SqliteRunStore> openHistory(
    const Settings &settings, QString *error,
    SqliteRunStore::OpenMode mode = SqliteRunStore::OpenMode::ReadWrite);

/*!
 * Opens the history: the PostgreSQL database at \a databaseUrl when it is not empty (see
 * PgRunStore, with the same recovery and retention), else openHistory(). Null with \a error
 * set on failure.
 */
std::unique_ptr<IRunStore> openRunStore(const Settings &settings, const QString &databaseUrl,
                                        QString *error, SqliteRunStore::OpenMode mode);

/*!
 * Registers the built-in, system and history tasks (the last ones only with a store; with a
 * shared database only the purge, as backups copy an SQLite file).
 */
void registerStandardTasks(TaskRegistry &registry, IRunStore *store, const Settings &settings);

} // namespace taskdeck
