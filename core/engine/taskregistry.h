// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

#include <QObject>
#include <QReadWriteLock>
#include <QStringList>

#include <map>
#include <memory>

namespace taskdeck {

using TaskPtr = std::shared_ptr<const Task>;

/*!
 * The set of tasks an engine can run, by key. Thread-safe: lookups may come from any
 * thread; changes emit changed() on the registry's thread.
 *
 * Tasks added by add() belong to no source. A tasks file registers its tasks under a source
 * name with replaceSource(), which swaps that source's tasks in one step (hot reload).
 */
class TaskRegistry final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskRegistry)

public:
    explicit TaskRegistry(QObject *parent = nullptr);
    ~TaskRegistry() override;

    /*! Adds \a task. Refuses (false, \a error set) an invalid or duplicate key or a task
     *  without a function. */
    bool add(Task task, QString *error = nullptr);
    /*! Removes the task with \a key; false when there is none. */
    bool remove(const QString &key);
    /*! Replaces every task registered under \a source by \a tasks, all or nothing. */
    bool replaceSource(const QString &source, const QList<Task> &tasks, QString *error = nullptr);

    TaskPtr find(const QString &key) const;
    bool contains(const QString &key) const { return find(key) != nullptr; }
    int size() const;
    /*! All tasks, ordered by category, then title. */
    QList<TaskPtr> tasks() const;
    /*!
     * Tasks whose key, title, description or tags contain every word of \a text (case
     * insensitive), in \a category and carrying \a tag when those are not empty.
     */
    QList<TaskPtr> search(const QString &text, const QString &category = QString(),
                          const QString &tag = QString()) const;
    QStringList categories() const; //!< sorted, without duplicates
    QStringList tags() const;       //!< sorted, without duplicates
    /*! Up to \a max keys closest to \a key by edit distance, for "did you mean" hints. */
    QStringList nearestKeys(const QString &key, int max = 3) const;

Q_SIGNALS:
    void changed();

private:
    bool checkTask(const Task &task, QString *error) const;
    void notifyChanged();

    struct Entry { TaskPtr task; QString source; };
    mutable QReadWriteLock m_lock;
    std::map<QString, Entry> m_tasks; // guarded by m_lock
};

} // namespace taskdeck
