// SPDX-License-Identifier: MIT
#pragma once

#include "taskregistry.h"

#include <QAbstractItemModel>
#include <QPointer>
#include <QSortFilterProxyModel>
#include <QStringList>

#include <memory>
#include <vector>

namespace taskdeck::ui {

/*!
 * The tasks of a TaskRegistry as a two-level tree: categories (sorted, the uncategorised
 * tasks last) holding their tasks (sorted by title).
 *
 * The model follows TaskRegistry::changed() by comparing the registry with what it shows and
 * announcing only the differences (rows inserted, removed, changed), so views keep their
 * selection and expansion across a tasks-file reload. Only the first load resets the model.
 */
class TaskModel final : public QAbstractItemModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskModel)

public:
    enum Role {
        KeyRole = Qt::UserRole + 1, //!< QString: the task key (empty on category rows)
        IsCategoryRole,             //!< bool
        DangerRole,                 //!< bool: the task needs confirmation
        ExpensiveRole,              //!< bool
        TagsRole,                   //!< QStringList
        CategoryRole,               //!< QString: the category as written (empty: none)
        DescriptionRole,            //!< QString
        DangerTextRole,             //!< QString: the task's warning text
    };
    Q_ENUM(Role)

    /*! Shows the tasks of \a registry (not owned; must outlive the model or be destroyed
     *  with it). */
    explicit TaskModel(TaskRegistry *registry, QObject *parent = nullptr);
    ~TaskModel() override;

    QModelIndex index(int row, int column, const QModelIndex &parent = QModelIndex()) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;
    QHash<int, QByteArray> roleNames() const override;

    /*! The index of the task with \a key, or an invalid index. */
    QModelIndex indexForKey(const QString &key) const;
    /*! The task shown at \a index, or null for a category row. */
    TaskPtr taskAt(const QModelIndex &index) const;
    /*! Every tag of the shown tasks, sorted case-insensitively. */
    QStringList tags() const;
    /*! Every category shown, in display order (the empty category last). */
    QStringList categories() const;
    /*! The name shown for \a category ("Uncategorised" for the empty one). */
    static QString categoryLabel(const QString &category);

private:
    struct Category
    {
        QString name;
        std::vector<TaskPtr> tasks;
    };

    void reload();
    void syncCategory(Category &shown, int categoryRow, const std::vector<TaskPtr> &wanted);
    int categoryRow(const Category *category) const;

    QPointer<TaskRegistry> m_registry;
    std::vector<std::unique_ptr<Category>> m_categories;
    bool m_loaded = false;
};

/*!
 * Filters a TaskModel: search words (every word must appear in the key, title, description
 * or a tag, case-insensitively), one tag and one category (empty: any). Categories left
 * without a matching task are hidden.
 */
class TaskFilterProxy final : public QSortFilterProxyModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskFilterProxy)

public:
    explicit TaskFilterProxy(QObject *parent = nullptr);

    QString searchText() const { return m_searchText; }
    QString tag() const { return m_tag; }
    QString category() const { return m_category; }

    /*! True when a task row with these values passes the filter. */
    bool matches(const QString &key, const QString &title, const QString &description,
                 const QStringList &tags, const QString &category) const;

public Q_SLOTS:
    void setSearchText(const QString &text);
    void setTag(const QString &tag);
    void setCategory(const QString &category);

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    QString m_searchText;
    QStringList m_words;
    QString m_tag;
    QString m_category;
};

} // namespace taskdeck::ui
