// SPDX-License-Identifier: MIT
// What every command that runs tasks sets up the same way: the data directory, the history
// and the tasks that come with Taskdeck.
#pragma once

#include "sqliterunstore.h"

#include <QString>

#include <memory>

namespace taskdeck {

struct Settings;
class TaskRegistry;

/*! TASK_DATA_DIR, or ~/.local/share/taskdeck (the same for the window and the command line). */
QString dataDirectory(const Settings &settings);

/*!
 * Opens the history in the data directory, records the runs that processes which died left
 * queued or running as interrupted, and starts retention. Null with \a error set on failure.
 * With ReadOnlyWhenUnwritable, a history that cannot be written is opened for reading.
 */
std::unique_ptr<SqliteRunStore> openHistory(
    const Settings &settings, QString *error,
    SqliteRunStore::OpenMode mode = SqliteRunStore::OpenMode::ReadWrite);

/*! Registers the built-in, system and history tasks (the last ones only with a store). */
void registerStandardTasks(TaskRegistry &registry, SqliteRunStore *store, const Settings &settings);

} // namespace taskdeck
