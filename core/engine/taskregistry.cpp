// SPDX-License-Identifier: MIT
#include "taskregistry.h"

#include <QMetaObject>
#include <QSet>
#include <QThread>

#include <algorithm>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

int editDistance(const QString &a, const QString &b)
{
    QList<int> previous(b.size() + 1);
    QList<int> current(b.size() + 1);
    for (qsizetype j = 0; j <= b.size(); ++j)
        previous[j] = int(j);
    for (qsizetype i = 1; i <= a.size(); ++i) {
        current[0] = int(i);
        for (qsizetype j = 1; j <= b.size(); ++j) {
            const int cost = a[i - 1].toLower() == b[j - 1].toLower() ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

bool matchesWords(const Task &task, const QStringList &words)
{
    for (const QString &word : words) {
        const bool found = task.key.contains(word, Qt::CaseInsensitive)
                           || task.title.contains(word, Qt::CaseInsensitive)
                           || task.description.contains(word, Qt::CaseInsensitive)
                           || task.category.contains(word, Qt::CaseInsensitive)
                           || std::any_of(task.tags.cbegin(), task.tags.cend(), [&](const QString &t) {
                                  return t.contains(word, Qt::CaseInsensitive);
                              });
        if (!found)
            return false;
    }
    return true;
}

void sortForDisplay(QList<TaskPtr> &list)
{
    std::sort(list.begin(), list.end(), [](const TaskPtr &a, const TaskPtr &b) {
        const int byCategory = a->category.compare(b->category, Qt::CaseInsensitive);
        if (byCategory != 0)
            return byCategory < 0;
        const QString ta = a->title.isEmpty() ? a->key : a->title;
        const QString tb = b->title.isEmpty() ? b->key : b->title;
        const int byTitle = ta.compare(tb, Qt::CaseInsensitive);
        return byTitle != 0 ? byTitle < 0 : a->key < b->key;
    });
}

} // namespace

TaskRegistry::TaskRegistry(QObject *parent)
    : QObject(parent)
{
}

TaskRegistry::~TaskRegistry() = default;

bool TaskRegistry::checkTask(const Task &task, QString *error) const
{
    QString why;
    if (!isValidTaskKey(task.key, &why)) {
        if (error)
            *error = why;
        return false;
    }
    if (!task.fn) {
        if (error)
            *error = u"task \"%1\" has no function to run"_s.arg(task.key);
        return false;
    }
    QSet<QString> fieldKeys;
    for (const Field &f : task.fields) {
        if (f.key.isEmpty() || fieldKeys.contains(f.key)) {
            if (error) {
                *error = f.key.isEmpty()
                             ? u"task \"%1\" has a field without a key"_s.arg(task.key)
                             : u"task \"%1\" has two fields named \"%2\""_s.arg(task.key, f.key);
            }
            return false;
        }
        fieldKeys.insert(f.key);
    }
    if (task.maxConcurrent < 0 || task.retry.maxAttempts < 1) {
        if (error)
            *error = u"task \"%1\": maxConcurrent must be >= 0 and retry.maxAttempts >= 1"_s.arg(task.key);
        return false;
    }
    return true;
}

bool TaskRegistry::add(Task task, QString *error)
{
    if (!checkTask(task, error))
        return false;
    {
        QWriteLocker locker(&m_lock);
        if (m_tasks.count(task.key)) {
            if (error)
                *error = u"a task with key \"%1\" is already registered"_s.arg(task.key);
            return false;
        }
        const QString key = task.key;
        m_tasks.emplace(key, Entry{std::make_shared<const Task>(std::move(task)), QString()});
    }
    notifyChanged();
    return true;
}

bool TaskRegistry::remove(const QString &key)
{
    {
        QWriteLocker locker(&m_lock);
        if (m_tasks.erase(key) == 0)
            return false;
    }
    notifyChanged();
    return true;
}

bool TaskRegistry::replaceSource(const QString &source, const QList<Task> &tasks, QString *error)
{
    QSet<QString> incoming;
    for (const Task &task : tasks) {
        if (!checkTask(task, error))
            return false;
        if (incoming.contains(task.key)) {
            if (error)
                *error = u"task key \"%1\" appears twice"_s.arg(task.key);
            return false;
        }
        incoming.insert(task.key);
    }
    {
        QWriteLocker locker(&m_lock);
        for (const Task &task : tasks) {
            const auto it = m_tasks.find(task.key);
            if (it != m_tasks.end() && it->second.source != source) {
                if (error) {
                    *error = it->second.source.isEmpty()
                                 ? u"task key \"%1\" is already used by a built-in task"_s.arg(task.key)
                                 : u"task key \"%1\" is already defined in %2"_s.arg(task.key, it->second.source);
                }
                return false;
            }
        }
        for (auto it = m_tasks.begin(); it != m_tasks.end();) {
            if (it->second.source == source && !source.isEmpty())
                it = m_tasks.erase(it);
            else
                ++it;
        }
        for (const Task &task : tasks)
            m_tasks.insert_or_assign(task.key, Entry{std::make_shared<const Task>(task), source});
    }
    notifyChanged();
    return true;
}

TaskPtr TaskRegistry::find(const QString &key) const
{
    QReadLocker locker(&m_lock);
    const auto it = m_tasks.find(key);
    return it == m_tasks.end() ? nullptr : it->second.task;
}

int TaskRegistry::size() const
{
    QReadLocker locker(&m_lock);
    return int(m_tasks.size());
}

QList<TaskPtr> TaskRegistry::tasks() const
{
    return search(QString());
}

QList<TaskPtr> TaskRegistry::search(const QString &text, const QString &category,
                                    const QString &tag) const
{
    const QStringList words = text.split(u' ', Qt::SkipEmptyParts);
    QList<TaskPtr> found;
    {
        QReadLocker locker(&m_lock);
        for (const auto &[key, entry] : m_tasks) {
            const Task &task = *entry.task;
            if (!category.isEmpty() && task.category.compare(category, Qt::CaseInsensitive) != 0)
                continue;
            if (!tag.isEmpty() && !task.tags.contains(tag, Qt::CaseInsensitive))
                continue;
            if (matchesWords(task, words))
                found << entry.task;
        }
    }
    sortForDisplay(found);
    return found;
}

QStringList TaskRegistry::categories() const
{
    QSet<QString> set;
    {
        QReadLocker locker(&m_lock);
        for (const auto &[key, entry] : m_tasks) {
            if (!entry.task->category.isEmpty())
                set.insert(entry.task->category);
        }
    }
    QStringList list(set.cbegin(), set.cend());
    list.sort(Qt::CaseInsensitive);
    return list;
}

QStringList TaskRegistry::tags() const
{
    QSet<QString> set;
    {
        QReadLocker locker(&m_lock);
        for (const auto &[key, entry] : m_tasks) {
            for (const QString &t : entry.task->tags)
                set.insert(t);
        }
    }
    QStringList list(set.cbegin(), set.cend());
    list.sort(Qt::CaseInsensitive);
    return list;
}

QStringList TaskRegistry::nearestKeys(const QString &key, int max) const
{
    QList<QPair<int, QString>> scored;
    {
        QReadLocker locker(&m_lock);
        for (const auto &[candidate, entry] : m_tasks) {
            int distance = editDistance(key, candidate);
            // A key that contains what was typed (or the reverse) is a likely intent.
            if (candidate.contains(key, Qt::CaseInsensitive) || key.contains(candidate, Qt::CaseInsensitive))
                distance = std::min(distance, 1);
            scored.append({distance, candidate});
        }
    }
    std::sort(scored.begin(), scored.end());
    // Far-off keys are noise, not suggestions.
    const int limit = std::max(2, int(key.size()) / 2);
    QStringList keys;
    for (const auto &[distance, candidate] : scored) {
        if (distance > limit || keys.size() >= max)
            break;
        keys << candidate;
    }
    return keys;
}

void TaskRegistry::notifyChanged()
{
    if (QThread::currentThread() == thread())
        Q_EMIT changed();
    else
        QMetaObject::invokeMethod(this, &TaskRegistry::changed, Qt::QueuedConnection);
}

} // namespace taskdeck
