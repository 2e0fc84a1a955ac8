// SPDX-License-Identifier: MIT
#include "tasksfilewatcher.h"

#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QLoggingCategory>
#include <QTimer>

#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace taskdeck {

namespace {

Q_LOGGING_CATEGORY(lcTasksFile, "taskdeck.tasksfile")

// Long enough to let an editor finish a save made of several steps (write, fsync, rename),
// short enough to feel immediate.
constexpr auto ReloadDelay = 200ms;

} // namespace

TasksFileWatcher::TasksFileWatcher(const QString &path, TaskRegistry *registry, QObject *parent)
    : QObject(parent)
    , m_path(path)
    , m_source(QFileInfo(path).absoluteFilePath())
    , m_registry(registry)
{
    static const bool registered = [] {
        qRegisterMetaType<TasksFileError>();
        qRegisterMetaType<QList<TasksFileError>>();
        return true;
    }();
    Q_UNUSED(registered);
}

TasksFileWatcher::~TasksFileWatcher() = default;

bool TasksFileWatcher::load()
{
    return reload(true);
}

void TasksFileWatcher::startWatching()
{
    if (m_watcher)
        return;
    if (!m_loadedOnce) {
        // Registered by someone else: a change is measured against the file as it is now,
        // and its keys are this file's own, not clashes with somebody else's.
        std::optional<QByteArray> content;
        const TasksFileResult current = loadTasksFile(m_path, &content);
        m_lastContent = content;
        m_loadedOnce = true;
        m_ownKeys.clear();
        if (current.ok()) {
            for (const Task &task : current.tasks)
                m_ownKeys << task.key;
        }
    }
    m_watcher = new QFileSystemWatcher(this);
    m_debounce = new QTimer(this);
    m_debounce->setSingleShot(true);
    m_debounce->setInterval(ReloadDelay);
    // Every change restarts the timer, so a burst of changes leads to one reload.
    const auto changed = [this] { m_debounce->start(); };
    connect(m_watcher, &QFileSystemWatcher::fileChanged, this, changed);
    connect(m_watcher, &QFileSystemWatcher::directoryChanged, this, changed);
    connect(m_debounce, &QTimer::timeout, this, [this] {
        watchPaths();
        reload(false);
    });
    watchPaths();
}

void TasksFileWatcher::stopWatching()
{
    delete m_watcher;
    m_watcher = nullptr;
    delete m_debounce;
    m_debounce = nullptr;
}

void TasksFileWatcher::watchPaths()
{
    if (!m_watcher)
        return;
    // A file replaced by rename is a new inode: the old watch is gone and the new file must
    // be added again. The directory watch is what notices the rename in the first place.
    const QString directory = QFileInfo(m_source).absolutePath();
    if (!m_watcher->directories().contains(directory) && QFileInfo(directory).isDir())
        m_watcher->addPath(directory);
    if (!m_watcher->files().contains(m_source) && QFileInfo(m_source).isFile())
        m_watcher->addPath(m_source);
}

bool TasksFileWatcher::reload(bool force)
{
    std::optional<QByteArray> content;
    const TasksFileResult result = loadTasksFile(m_path, &content);
    // The directory watch also fires for unrelated files next to this one.
    if (!force && m_loadedOnce && content == m_lastContent)
        return m_lastErrors.isEmpty();
    m_loadedOnce = true;
    m_lastContent = content;

    if (!result.ok()) {
        fail(result.errors);
        return false;
    }

    QString why;
    if (!m_registry->replaceSource(m_source, result.tasks, &why)) {
        // The registry names the problem but not where it is written: point at every key
        // that is taken by someone else, or fall back to the registry's own words.
        QList<TasksFileError> clashes;
        for (qsizetype i = 0; i < result.tasks.size(); ++i) {
            const QString &key = result.tasks.at(i).key;
            if (m_ownKeys.contains(key) || !m_registry->contains(key))
                continue;
            const TasksFilePosition pos = result.positions.value(i);
            clashes.append({m_path, pos.line, pos.column,
                            u"task key \"%1\" is already used by a built-in task or another tasks "
                            u"file; choose another key"_s.arg(key)});
        }
        if (clashes.isEmpty())
            clashes.append({m_path, 0, 0, why});
        fail(clashes);
        return false;
    }
    m_ownKeys.clear();
    for (const Task &task : std::as_const(result.tasks))
        m_ownKeys << task.key;
    m_lastErrors.clear();
    qCInfo(lcTasksFile).noquote() << u"loaded %1 tasks from %2"_s.arg(result.tasks.size()).arg(m_path);
    Q_EMIT loaded(int(result.tasks.size()));
    return true;
}

void TasksFileWatcher::fail(const QList<TasksFileError> &errors)
{
    m_lastErrors = errors;
    qCWarning(lcTasksFile).noquote()
        << u"%1 was not loaded; tasks registered from it before, if any, stay in use"_s.arg(m_path);
    for (const TasksFileError &e : errors)
        qCWarning(lcTasksFile).noquote() << e.toString();
    Q_EMIT loadFailed(errors);
}

} // namespace taskdeck
