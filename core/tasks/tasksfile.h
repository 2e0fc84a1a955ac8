// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

#include <QByteArray>
#include <QList>
#include <QProcessEnvironment>
#include <QString>

#include <optional>

namespace taskdeck {

/*!
 * One mistake in a tasks file, with its 1-based position. \c line and \c column are 0 when
 * the problem has no position (the file cannot be read, a clash with another source).
 */
struct TasksFileError
{
    QString file;
    int line = 0;
    int column = 0;
    QString message;

    /*! "file:line:column: message", or "file: message" without a position. */
    QString toString() const;
};

/*! Where a task's key is written in its tasks file (1-based). */
struct TasksFilePosition
{
    int line = 0;
    int column = 0;
};

/*!
 * What reading a tasks file gave: the tasks, or every mistake found.
 *
 * When errors is not empty, tasks holds the tasks that were read without a mistake; callers
 * that register tasks must not register a partial file (TasksFileWatcher does not).
 */
struct TasksFileResult
{
    QString file;                         //!< the name used in errors
    QList<Task> tasks;                    //!< in file order
    QList<TasksFilePosition> positions;   //!< parallel to tasks: where each key is written
    QList<TasksFileError> errors;         //!< in file order (YAML syntax errors stop reading)

    bool ok() const { return errors.isEmpty(); }
    /*! Where the task \a key is written; a zero position when the file has no such task. */
    TasksFilePosition positionOf(const QString &key) const;
};

/*!
 * Reads command tasks from YAML text. \a fileName only names the text in errors.
 *
 * The text is a mapping with \c tasks: (task key -> task) and an optional \c version: 1.
 * Each task runs either \c command (an argv list, or one string split like a shell would
 * without running one) or \c shell (a script for /bin/sh -c). In command argv elements and in
 * \c cwd and \c env values, \c {{field}} is replaced by the argument's text, always inside
 * that one element: nothing is ever re-split or passed through a shell. Shell scripts are not
 * templated; every task gets each argument as the environment variable TASK_ARG_<KEY>.
 * A secret field may be templated into \c env but not into command arguments, which every
 * local user can read.
 * A task without \c cwd runs in \a baseDirectory, and a relative \c cwd is resolved against
 * it; an empty \a baseDirectory means the process's working directory.
 *
 * Every mistake is reported, each with its position, as far as the YAML itself parses.
 * Pure function; safe to call from any thread. See examples/taskdeck.yml for the format.
 *
 * \code
 * const TasksFileResult r = parseTasksYaml(text, u"taskdeck.yml"_s);
 * for (const TasksFileError &e : r.errors)
 *     qWarning().noquote() << e.toString();
 * if (r.ok())
 *     registry.replaceSource(u"taskdeck.yml"_s, r.tasks);
 * \endcode
 */
TasksFileResult parseTasksYaml(const QByteArray &yaml, const QString &fileName,
                               const QString &baseDirectory = QString());

/*!
 * Reads the tasks file at \a path (see parseTasksYaml()). Tasks run in the file's directory
 * unless they set \c cwd. A missing or unreadable file is one error without a position.
 * When \a content is not null it receives the bytes read, or nullopt when the file could not
 * be read (for callers that want to tell an unchanged file from a changed one).
 */
TasksFileResult loadTasksFile(const QString &path,
                              std::optional<QByteArray> *content = nullptr);

/*!
 * Finds the tasks file to use: \a explicitPath (from --tasks) if set, else TASK_FILE from
 * \a env if set, else taskdeck.yml in \a workingDirectory, else taskdeck.yml in the
 * application's config directory (QStandardPaths::AppConfigLocation). An explicit path or
 * TASK_FILE is returned even when it does not exist, so that loading reports it; the other
 * two are only returned when they exist. Returns an empty string when there is none.
 */
QString findTasksFile(const QString &explicitPath, const QProcessEnvironment &env,
                      const QString &workingDirectory = QString());

/*! The environment variable that carries argument \a fieldKey: TASK_ARG_ + the key upper
 *  cased, with every character other than A-Z and 0-9 replaced by '_'. */
QString taskArgumentVariable(const QString &fieldKey);

} // namespace taskdeck
