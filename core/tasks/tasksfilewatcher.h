// SPDX-License-Identifier: MIT
#pragma once

#include "tasksfile.h"

#include <QByteArray>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include <optional>

QT_BEGIN_NAMESPACE
class QFileSystemWatcher;
class QTimer;
QT_END_NAMESPACE

namespace taskdeck {

class TaskRegistry;

/*!
 * Keeps a registry's tasks in step with one tasks file (hot reload).
 *
 * load() reads the file and, when it has no mistake, replaces the tasks registered under
 * the file's absolute path in one step (TaskRegistry::replaceSource). A file with any
 * mistake (or one whose keys clash with tasks from elsewhere) changes nothing: the previous
 * tasks stay registered, loadFailed() reports every error and each is logged on the
 * "taskdeck.tasksfile" category. Runs already started are never affected either way: they
 * hold their own copy of the task.
 *
 * After startWatching(), changes to the file are picked up by themselves. The watcher
 * follows the file and its directory, since editors often save by writing a new file and
 * renaming it over the old one, and waits for a short quiet spell so that a save made of
 * several writes is read once. A change that leaves the file's bytes as they were last read
 * is ignored; a deleted file is reported as a failed load and its tasks stay.
 *
 * Threading: create and use it on a thread with an event loop (normally the main thread);
 * its signals are emitted there. The registry is not owned and must outlive the watcher;
 * destroying the watcher leaves the tasks it registered in place.
 *
 * \code
 * TasksFileWatcher watcher(findTasksFile(options.tasks, env), &registry);
 * connect(&watcher, &TasksFileWatcher::loadFailed, this, &MainWindow::showTasksFileErrors);
 * watcher.load();
 * watcher.startWatching();
 * \endcode
 */
class TasksFileWatcher final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TasksFileWatcher)

public:
    explicit TasksFileWatcher(const QString &path, TaskRegistry *registry,
                              QObject *parent = nullptr);
    ~TasksFileWatcher() override;

    /*! The file as given to the constructor (used in error messages). */
    QString path() const { return m_path; }
    /*! The source name the tasks are registered under: the file's absolute path. */
    QString source() const { return m_source; }

    /*!
     * Reads the file now and registers its tasks if it has no mistake. Emits loaded() or
     * loadFailed() before returning. Returns whether the tasks were registered.
     */
    bool load();

    /*!
     * Starts following changes to the file (and its directory). Idempotent. Without a
     * load() before, the tasks are taken to be registered already from the file as it is
     * now (the first reload comes with the first change).
     */
    void startWatching();
    /*! Stops following changes; pending reloads are dropped. */
    void stopWatching();
    bool isWatching() const { return m_watcher != nullptr; }

    /*! The bytes the last load read (nullopt when the file could not be read, or before any
     *  load): after loaded(), what the registered tasks were made from. */
    std::optional<QByteArray> lastContent() const { return m_lastContent; }
    /*! The errors of the last load; empty after a successful one. */
    QList<TasksFileError> lastErrors() const { return m_lastErrors; }

Q_SIGNALS:
    /*! The file was read and \a taskCount tasks are registered from it. */
    void loaded(int taskCount);
    /*! The file could not be used; the previously registered tasks stay. */
    void loadFailed(const QList<taskdeck::TasksFileError> &errors);

private:
    bool reload(bool force);
    void watchPaths();
    void fail(const QList<TasksFileError> &errors);

    QString m_path;
    QString m_source;
    TaskRegistry *m_registry;
    QFileSystemWatcher *m_watcher = nullptr;
    QTimer *m_debounce = nullptr;
    std::optional<QByteArray> m_lastContent; // what the last load read; nullopt: unreadable
    bool m_loadedOnce = false;
    QStringList m_ownKeys;    // keys this file registered: a clash is any other taken key
    QList<TasksFileError> m_lastErrors;
};

} // namespace taskdeck

Q_DECLARE_METATYPE(taskdeck::TasksFileError)
