// SPDX-License-Identifier: MIT
#pragma once

#include <QStringList>
#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QModelIndex;
class QTreeView;

namespace taskdeck::ui {

class TaskFilterProxy;
class TaskModel;

/*!
 * The task browser: a search field, tag and category filters and the tree of tasks by
 * category, each row with its icon and danger (!) / expensive ($) badges.
 *
 * Keyboard: Ctrl+F focuses the search (while focus is inside the browser; the window may call
 * focusSearch() from its own shortcut), Down goes from the search into the tree, Enter or a
 * double click activates a task, typing in the tree jumps to a matching title.
 */
class TaskBrowser final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskBrowser)

public:
    /*! Shows \a model (not owned; it must outlive the browser). */
    explicit TaskBrowser(TaskModel *model, QWidget *parent = nullptr);
    ~TaskBrowser() override;

    /*! The key of the current task; empty when none (or a category) is current. */
    QString currentTaskKey() const;

    /*! Shows the tasks file's problems, one "file:line:column: message" each, above the
     *  tree; an empty list hides the area. */
    void setTasksFileErrors(const QStringList &messages);

    QLineEdit *searchField() const { return m_search; }
    QComboBox *tagFilter() const { return m_tags; }
    QComboBox *categoryFilter() const { return m_categories; }
    QTreeView *treeView() const { return m_tree; }
    QLabel *errorArea() const { return m_errors; }
    TaskFilterProxy *proxyModel() const { return m_proxy; }

public Q_SLOTS:
    /*! Focuses the search field and selects its text. */
    void focusSearch();
    /*! Makes the task with \a key current (clearing filters that hide it). */
    void selectTask(const QString &key);

Q_SIGNALS:
    /*! Enter or a double click on the task \a key. */
    void taskActivated(const QString &key);
    /*! The current task changed; \a key is empty when no task is current. */
    void currentTaskChanged(const QString &key);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void refreshFilterChoices();
    void expandCategories(const QModelIndex &parent, int first, int last);
    QModelIndex firstTask() const;
    void onActivated(const QModelIndex &index);

    TaskModel *m_model;
    TaskFilterProxy *m_proxy;
    QLineEdit *m_search;
    QComboBox *m_tags;
    QComboBox *m_categories;
    QLabel *m_errors;
    QTreeView *m_tree;
    QString m_lastCurrentKey;
};

} // namespace taskdeck::ui
