// SPDX-License-Identifier: MIT
// taskdeck worker and taskdeck start: the shared queue of a PostgreSQL database.
#pragma once

#include <QHash>
#include <QString>

#include <chrono>
#include <optional>

namespace taskdeck {

class Console;
class PgRunStore;
class TaskRegistry;
class TasksFileWatcher;
struct CommandLine;
struct Settings;

/*! The lease of a claimed run unless --lease says otherwise. */
inline constexpr std::chrono::seconds kDefaultLease{30};

/*!
 * The version each task is validated against, by key: the tasks file's content hash for the
 * tasks of \a tasksFilePath, "builtin-VERSION" for the tasks built into this Taskdeck. A
 * queued run names its task's version; a worker only claims runs of the versions it has.
 */
QHash<QString, QString> taskVersions(const TaskRegistry &registry, const QString &tasksFilePath);

/*!
 * taskdeck worker: claims runs of the queue in \a store's database and runs them until
 * SIGINT or SIGTERM (then it claims nothing more, lets what it holds finish and exits; a
 * second signal cancels them). It follows \a tasksFile (may be null): once the file changes,
 * it runs the runs queued with the new file, and leaves those of the earlier one to workers
 * that still have it. Returns the exit code.
 */
int runWorker(TaskRegistry *registry, PgRunStore *store, const Settings &settings,
              const QHash<QString, QString> &versions, TasksFileWatcher *tasksFile,
              const CommandLine &commandLine, Console *console);

/*!
 * taskdeck start: validates and queues runs (one, or one per line of --each) and prints their
 * ids, one a line (with --json, {"id": ...} objects). Returns the exit code.
 */
int startRuns(TaskRegistry *registry, PgRunStore *store, const QHash<QString, QString> &versions,
              const CommandLine &commandLine, Console *console);

/*!
 * taskdeck run with a shared database: validates and queues one run, follows it through the
 * history wherever a worker runs it (its log live, then the summary, as a local run prints),
 * and returns its exit code. The first SIGINT or SIGTERM asks for its cancel through the
 * database (the worker holding it cancels it; one no worker took yet ends at once); a second
 * quits at once. When no worker has taken the run after a few seconds it says so, once.
 * nullopt, with a note printed, for a task with secret fields: secrets are never stored in the
 * queue, so the caller runs it here.
 */
std::optional<int> runQueued(TaskRegistry *registry, PgRunStore *store, const Settings &settings,
                             const QHash<QString, QString> &versions, const CommandLine &commandLine,
                             Console *console);

} // namespace taskdeck
