// SPDX-License-Identifier: MIT
#include "taskmodel.h"

#include "taskicons.h"

#include <QFont>
#include <QRegularExpression>
#include <QSet>

#include <algorithm>
#include <map>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

// Categories: case-insensitive by name, the empty one last.
bool categoryLess(const QString &a, const QString &b)
{
    if (a.isEmpty() != b.isEmpty())
        return b.isEmpty();
    const int c = QString::compare(a, b, Qt::CaseInsensitive);
    return c != 0 ? c < 0 : a < b;
}

// Tasks: case-insensitive by title, then by key so the order is total.
bool taskLess(const TaskPtr &a, const TaskPtr &b)
{
    const int c = QString::compare(a->title, b->title, Qt::CaseInsensitive);
    if (c != 0)
        return c < 0;
    return a->key < b->key;
}

// Whether two snapshots of a task look the same in the model.
bool sameShown(const Task &a, const Task &b)
{
    return a.title == b.title && a.description == b.description && a.icon == b.icon
        && a.tags == b.tags && a.danger == b.danger && a.expensive == b.expensive
        && a.category == b.category;
}

QString taskToolTip(const Task &task)
{
    QString tip = u"<b>"_s + task.title.toHtmlEscaped() + u"</b> <code>"_s
        + task.key.toHtmlEscaped() + u"</code>"_s;
    if (!task.description.isEmpty())
        tip += u"<br>"_s + task.description.toHtmlEscaped();
    if (!task.tags.isEmpty())
        tip += u"<br><i>"_s + TaskModel::tr("Tags: %1").arg(task.tags.join(u", "_s)).toHtmlEscaped()
            + u"</i>"_s;
    if (task.isDangerous())
        tip += u"<br>"_s + TaskModel::tr("Dangerous: %1").arg(task.danger).toHtmlEscaped();
    if (task.expensive)
        tip += u"<br>"_s + TaskModel::tr("Expensive to run").toHtmlEscaped();
    return tip;
}

} // namespace

TaskModel::TaskModel(TaskRegistry *registry, QObject *parent)
    : QAbstractItemModel(parent)
    , m_registry(registry)
{
    if (registry)
        connect(registry, &TaskRegistry::changed, this, &TaskModel::reload);
    reload();
}

TaskModel::~TaskModel() = default;

QString TaskModel::categoryLabel(const QString &category)
{
    return category.isEmpty() ? tr("Uncategorised") : category;
}

int TaskModel::categoryRow(const Category *category) const
{
    for (size_t i = 0; i < m_categories.size(); ++i) {
        if (m_categories[i].get() == category)
            return int(i);
    }
    return -1;
}

void TaskModel::reload()
{
    std::map<QString, std::vector<TaskPtr>, decltype(&categoryLess)> wanted(&categoryLess);
    if (m_registry) {
        for (const TaskPtr &task : m_registry->tasks())
            wanted[task->category].push_back(task);
    }
    for (auto &entry : wanted)
        std::sort(entry.second.begin(), entry.second.end(), taskLess);

    if (!m_loaded) {
        beginResetModel();
        m_categories.clear();
        for (auto &entry : wanted) {
            auto category = std::make_unique<Category>();
            category->name = entry.first;
            category->tasks = std::move(entry.second);
            m_categories.push_back(std::move(category));
        }
        m_loaded = true;
        endResetModel();
        return;
    }

    // Categories that went away.
    for (int row = int(m_categories.size()) - 1; row >= 0; --row) {
        if (wanted.find(m_categories[size_t(row)]->name) == wanted.end()) {
            beginRemoveRows(QModelIndex(), row, row);
            m_categories.erase(m_categories.begin() + row);
            endRemoveRows();
        }
    }
    // Tasks of the categories that stay.
    for (size_t row = 0; row < m_categories.size(); ++row)
        syncCategory(*m_categories[row], int(row), wanted[m_categories[row]->name]);
    // New categories, each at its place, with its tasks.
    int row = 0;
    for (auto &entry : wanted) {
        if (size_t(row) >= m_categories.size() || m_categories[size_t(row)]->name != entry.first) {
            beginInsertRows(QModelIndex(), row, row);
            auto category = std::make_unique<Category>();
            category->name = entry.first;
            category->tasks = entry.second;
            m_categories.insert(m_categories.begin() + row, std::move(category));
            endInsertRows();
        }
        ++row;
    }
}

void TaskModel::syncCategory(Category &shown, int categoryRow, const std::vector<TaskPtr> &wanted)
{
    const QModelIndex parentIndex = index(categoryRow, 0);
    QHash<QString, TaskPtr> wantedByKey;
    for (const TaskPtr &task : wanted)
        wantedByKey.insert(task->key, task);

    // Remove the tasks that left, and those whose title moves them elsewhere in the order;
    // what remains is then in the wanted order.
    for (int row = int(shown.tasks.size()) - 1; row >= 0; --row) {
        const TaskPtr &old = shown.tasks[size_t(row)];
        const TaskPtr now = wantedByKey.value(old->key);
        if (!now || now->title != old->title) {
            beginRemoveRows(parentIndex, row, row);
            shown.tasks.erase(shown.tasks.begin() + row);
            endRemoveRows();
        }
    }
    for (size_t row = 0; row < wanted.size(); ++row) {
        const TaskPtr &task = wanted[row];
        if (row < shown.tasks.size() && shown.tasks[row]->key == task->key) {
            const TaskPtr old = shown.tasks[row];
            shown.tasks[row] = task;
            if (!sameShown(*old, *task)) {
                const QModelIndex changed = index(int(row), 0, parentIndex);
                Q_EMIT dataChanged(changed, changed);
            }
            continue;
        }
        beginInsertRows(parentIndex, int(row), int(row));
        shown.tasks.insert(shown.tasks.begin() + qsizetype(row), task);
        endInsertRows();
    }
}

QModelIndex TaskModel::index(int row, int column, const QModelIndex &parent) const
{
    if (row < 0 || column != 0)
        return {};
    if (!parent.isValid()) {
        if (size_t(row) >= m_categories.size())
            return {};
        return createIndex(row, column, nullptr);
    }
    if (parent.internalPointer() || size_t(parent.row()) >= m_categories.size())
        return {};
    Category *category = m_categories[size_t(parent.row())].get();
    if (size_t(row) >= category->tasks.size())
        return {};
    return createIndex(row, column, category);
}

QModelIndex TaskModel::parent(const QModelIndex &child) const
{
    if (!child.isValid() || !child.internalPointer())
        return {};
    const int row = categoryRow(static_cast<const Category *>(child.internalPointer()));
    return row < 0 ? QModelIndex() : createIndex(row, 0, nullptr);
}

int TaskModel::rowCount(const QModelIndex &parent) const
{
    if (!parent.isValid())
        return int(m_categories.size());
    if (parent.column() != 0 || parent.internalPointer() || size_t(parent.row()) >= m_categories.size())
        return 0;
    return int(m_categories[size_t(parent.row())]->tasks.size());
}

int TaskModel::columnCount(const QModelIndex &parent) const
{
    Q_UNUSED(parent)
    return 1;
}

TaskPtr TaskModel::taskAt(const QModelIndex &index) const
{
    if (!index.isValid() || index.model() != this || !index.internalPointer())
        return {};
    const auto *category = static_cast<const Category *>(index.internalPointer());
    if (size_t(index.row()) >= category->tasks.size())
        return {};
    return category->tasks[size_t(index.row())];
}

QVariant TaskModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid))
        return {};
    if (!index.internalPointer()) {
        const QString &name = m_categories[size_t(index.row())]->name;
        switch (role) {
        case Qt::DisplayRole: return categoryLabel(name);
        case Qt::FontRole: {
            QFont font;
            font.setBold(true);
            return font;
        }
        case IsCategoryRole: return true;
        case CategoryRole: return name;
        case KeyRole: return QString();
        case DangerRole:
        case ExpensiveRole: return false;
        default: return {};
        }
    }
    const TaskPtr task = taskAt(index);
    if (!task)
        return {};
    switch (role) {
    case Qt::DisplayRole: return task->title.isEmpty() ? task->key : task->title;
    case Qt::DecorationRole: return taskIcon(task->icon);
    case Qt::ToolTipRole: return taskToolTip(*task);
    case KeyRole: return task->key;
    case IsCategoryRole: return false;
    case DangerRole: return task->isDangerous();
    case ExpensiveRole: return task->expensive;
    case TagsRole: return task->tags;
    case CategoryRole: return task->category;
    case DescriptionRole: return task->description;
    case DangerTextRole: return task->danger;
    default: return {};
    }
}

Qt::ItemFlags TaskModel::flags(const QModelIndex &index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    if (!index.internalPointer())
        return Qt::ItemIsEnabled;
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemNeverHasChildren;
}

QHash<int, QByteArray> TaskModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractItemModel::roleNames();
    names.insert(KeyRole, "key");
    names.insert(IsCategoryRole, "isCategory");
    names.insert(DangerRole, "danger");
    names.insert(ExpensiveRole, "expensive");
    names.insert(TagsRole, "tags");
    names.insert(CategoryRole, "category");
    names.insert(DescriptionRole, "description");
    names.insert(DangerTextRole, "dangerText");
    return names;
}

QModelIndex TaskModel::indexForKey(const QString &key) const
{
    for (size_t c = 0; c < m_categories.size(); ++c) {
        const auto &tasks = m_categories[c]->tasks;
        for (size_t t = 0; t < tasks.size(); ++t) {
            if (tasks[t]->key == key)
                return createIndex(int(t), 0, m_categories[c].get());
        }
    }
    return {};
}

QStringList TaskModel::tags() const
{
    QSet<QString> seen;
    QStringList tags;
    for (const auto &category : m_categories) {
        for (const TaskPtr &task : category->tasks) {
            for (const QString &tag : task->tags) {
                if (!seen.contains(tag)) {
                    seen.insert(tag);
                    tags.append(tag);
                }
            }
        }
    }
    std::sort(tags.begin(), tags.end(), [](const QString &a, const QString &b) {
        const int c = QString::compare(a, b, Qt::CaseInsensitive);
        return c != 0 ? c < 0 : a < b;
    });
    return tags;
}

QStringList TaskModel::categories() const
{
    QStringList names;
    for (const auto &category : m_categories)
        names.append(category->name);
    return names;
}

// --- TaskFilterProxy ------------------------------------------------------------------------

TaskFilterProxy::TaskFilterProxy(QObject *parent)
    : QSortFilterProxyModel(parent)
{
    setRecursiveFilteringEnabled(true);
}

void TaskFilterProxy::setSearchText(const QString &text)
{
    if (text == m_searchText)
        return;
    m_searchText = text;
    m_words = text.split(QRegularExpression(u"\\s+"_s), Qt::SkipEmptyParts);
    invalidateFilter();
}

void TaskFilterProxy::setTag(const QString &tag)
{
    if (tag == m_tag)
        return;
    m_tag = tag;
    invalidateFilter();
}

void TaskFilterProxy::setCategory(const QString &category)
{
    if (category == m_category)
        return;
    m_category = category;
    invalidateFilter();
}

bool TaskFilterProxy::matches(const QString &key, const QString &title, const QString &description,
                              const QStringList &tags, const QString &category) const
{
    if (!m_category.isEmpty() && category.compare(m_category, Qt::CaseInsensitive) != 0)
        return false;
    if (!m_tag.isEmpty() && !tags.contains(m_tag, Qt::CaseInsensitive))
        return false;
    for (const QString &word : m_words) {
        const bool found = key.contains(word, Qt::CaseInsensitive)
            || title.contains(word, Qt::CaseInsensitive)
            || description.contains(word, Qt::CaseInsensitive)
            || std::any_of(tags.cbegin(), tags.cend(), [&word](const QString &tag) {
                   return tag.contains(word, Qt::CaseInsensitive);
               });
        if (!found)
            return false;
    }
    return true;
}

bool TaskFilterProxy::filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const
{
    const QModelIndex index = sourceModel()->index(sourceRow, 0, sourceParent);
    // A category shows when one of its tasks does (recursive filtering), never on its own.
    if (index.data(TaskModel::IsCategoryRole).toBool())
        return false;
    return matches(index.data(TaskModel::KeyRole).toString(),
                   index.data(Qt::DisplayRole).toString(),
                   index.data(TaskModel::DescriptionRole).toString(),
                   index.data(TaskModel::TagsRole).toStringList(),
                   index.data(TaskModel::CategoryRole).toString());
}

} // namespace taskdeck::ui
