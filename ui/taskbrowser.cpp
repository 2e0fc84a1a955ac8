// SPDX-License-Identifier: MIT
#include "taskbrowser.h"

#include "taskicons.h"
#include "taskmodel.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QStyledItemDelegate>
#include <QTreeView>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

// Paints a task row as usual, with its danger and expensive badges at the right edge.
class TaskItemDelegate final : public QStyledItemDelegate
{
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override
    {
        QList<QIcon> badges;
        if (index.data(TaskModel::DangerRole).toBool())
            badges.append(dangerBadgeIcon());
        if (index.data(TaskModel::ExpensiveRole).toBool())
            badges.append(expensiveBadgeIcon());
        if (badges.isEmpty()) {
            QStyledItemDelegate::paint(painter, option, index);
            return;
        }
        QStyleOptionViewItem opt = option;
        initStyleOption(&opt, index);
        const QWidget *widget = option.widget;
        QStyle *style = widget ? widget->style() : QApplication::style();
        // The row's background spans the badges; the text stops before them.
        style->drawPrimitive(QStyle::PE_PanelItemViewItem, &opt, painter, widget);
        const int side = qMax(12, qMin(16, opt.rect.height() - 4));
        const int reserved = int(badges.size()) * (side + kGap) + kGap;
        QStyleOptionViewItem text = opt;
        text.rect.setRight(opt.rect.right() - reserved);
        style->drawControl(QStyle::CE_ItemViewItem, &text, painter, widget);
        int x = opt.rect.right() - reserved + kGap;
        const int y = opt.rect.top() + (opt.rect.height() - side) / 2;
        for (const QIcon &badge : std::as_const(badges)) {
            badge.paint(painter, QRect(x, y, side, side));
            x += side + kGap;
        }
    }

    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override
    {
        QSize size = QStyledItemDelegate::sizeHint(option, index);
        const int badges = int(index.data(TaskModel::DangerRole).toBool())
            + int(index.data(TaskModel::ExpensiveRole).toBool());
        size.rwidth() += badges * (16 + kGap) + kGap;
        return size;
    }

private:
    static constexpr int kGap = 3;
};

const QString kErrorStyle = u"QLabel { background: #fdecea; color: #7a1c1c; "
                            "border: 1px solid #e3a1a1; border-radius: 3px; padding: 4px; }"_s;

} // namespace

TaskBrowser::TaskBrowser(TaskModel *model, QWidget *parent)
    : QWidget(parent)
    , m_model(model)
    , m_proxy(new TaskFilterProxy(this))
    , m_search(new QLineEdit(this))
    , m_tags(new QComboBox(this))
    , m_categories(new QComboBox(this))
    , m_errors(new QLabel(this))
    , m_tree(new QTreeView(this))
{
    m_proxy->setSourceModel(model);

    m_search->setPlaceholderText(tr("Search tasks (Ctrl+F)"));
    m_search->setClearButtonEnabled(true);
    m_search->installEventFilter(this);
    m_search->setAccessibleName(tr("Search tasks"));
    connect(m_search, &QLineEdit::textChanged, m_proxy, &TaskFilterProxy::setSearchText);

    auto *find = new QAction(tr("Find Task"), this);
    find->setShortcut(QKeySequence::Find);
    find->setShortcutContext(Qt::WidgetWithChildrenShortcut);
    connect(find, &QAction::triggered, this, &TaskBrowser::focusSearch);
    addAction(find);

    m_tags->setAccessibleName(tr("Tag filter"));
    m_tags->setToolTip(tr("Show only tasks with this tag"));
    m_categories->setAccessibleName(tr("Category filter"));
    m_categories->setToolTip(tr("Show only tasks of this category"));
    connect(m_tags, &QComboBox::activated, this,
            [this] { m_proxy->setTag(m_tags->currentData().toString()); });
    connect(m_categories, &QComboBox::activated, this,
            [this] { m_proxy->setCategory(m_categories->currentData().toString()); });

    m_errors->setStyleSheet(kErrorStyle);
    m_errors->setWordWrap(true);
    m_errors->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_errors->setObjectName(u"tasksFileErrors"_s);
    m_errors->hide();

    m_tree->setModel(m_proxy);
    m_tree->setHeaderHidden(true);
    m_tree->setUniformRowHeights(true);
    m_tree->setRootIsDecorated(true);
    m_tree->setSelectionMode(QAbstractItemView::SingleSelection);
    m_tree->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_tree->setItemDelegate(new TaskItemDelegate(m_tree));
    m_tree->setAccessibleName(tr("Tasks"));
    m_tree->setIconSize(QSize(16, 16));
    connect(m_tree, &QTreeView::activated, this, &TaskBrowser::onActivated);
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex &current) {
                const QString key = current.data(TaskModel::KeyRole).toString();
                if (key == m_lastCurrentKey)
                    return;
                m_lastCurrentKey = key;
                Q_EMIT currentTaskChanged(key);
            });
    connect(m_proxy, &QAbstractItemModel::rowsInserted, this, &TaskBrowser::expandCategories);
    connect(m_proxy, &QAbstractItemModel::modelReset, this, [this] { m_tree->expandAll(); });
    connect(m_proxy, &QAbstractItemModel::layoutChanged, this, [this] { m_tree->expandAll(); });

    connect(model, &QAbstractItemModel::modelReset, this, &TaskBrowser::refreshFilterChoices);
    connect(model, &QAbstractItemModel::rowsInserted, this, &TaskBrowser::refreshFilterChoices);
    connect(model, &QAbstractItemModel::rowsRemoved, this, &TaskBrowser::refreshFilterChoices);
    connect(model, &QAbstractItemModel::dataChanged, this, &TaskBrowser::refreshFilterChoices);

    auto *filters = new QHBoxLayout;
    filters->setContentsMargins(0, 0, 0, 0);
    filters->addWidget(m_tags, 1);
    filters->addWidget(m_categories, 1);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_search);
    layout->addLayout(filters);
    layout->addWidget(m_errors);
    layout->addWidget(m_tree, 1);

    setFocusProxy(m_search);
    refreshFilterChoices();
    m_tree->expandAll();
}

TaskBrowser::~TaskBrowser() = default;

QString TaskBrowser::currentTaskKey() const
{
    return m_tree->currentIndex().data(TaskModel::KeyRole).toString();
}

void TaskBrowser::setTasksFileErrors(const QStringList &messages)
{
    if (messages.isEmpty()) {
        m_errors->clear();
        m_errors->hide();
        return;
    }
    QString text = u"<b>"_s + tr("The tasks file has problems:").toHtmlEscaped() + u"</b>"_s;
    for (const QString &message : messages)
        text += u"<br>"_s + message.toHtmlEscaped();
    m_errors->setTextFormat(Qt::RichText);
    m_errors->setText(text);
    m_errors->setToolTip(messages.join(u'\n'));
    m_errors->show();
}

void TaskBrowser::focusSearch()
{
    m_search->setFocus(Qt::ShortcutFocusReason);
    m_search->selectAll();
}

void TaskBrowser::selectTask(const QString &key)
{
    const QModelIndex source = m_model->indexForKey(key);
    if (!source.isValid())
        return;
    QModelIndex index = m_proxy->mapFromSource(source);
    if (!index.isValid()) {
        m_search->clear();
        m_tags->setCurrentIndex(0);
        m_categories->setCurrentIndex(0);
        m_proxy->setTag(QString());
        m_proxy->setCategory(QString());
        index = m_proxy->mapFromSource(source);
    }
    m_tree->expand(index.parent());
    m_tree->setCurrentIndex(index);
    m_tree->scrollTo(index);
}

bool TaskBrowser::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_search && event->type() == QEvent::KeyPress) {
        const auto *key = static_cast<QKeyEvent *>(event);
        switch (key->key()) {
        case Qt::Key_Down:
        case Qt::Key_PageDown: {
            QModelIndex current = m_tree->currentIndex();
            if (!current.isValid() || current.data(TaskModel::IsCategoryRole).toBool())
                current = firstTask();
            if (current.isValid())
                m_tree->setCurrentIndex(current);
            m_tree->setFocus(Qt::TabFocusReason);
            return true;
        }
        case Qt::Key_Return:
        case Qt::Key_Enter: {
            // Enter in the search runs the selected task when it is still shown, else the
            // first match.
            QModelIndex current = m_tree->currentIndex();
            if (!current.isValid() || current.data(TaskModel::IsCategoryRole).toBool())
                current = firstTask();
            if (current.isValid()) {
                m_tree->setCurrentIndex(current);
                onActivated(current);
            }
            return true;
        }
        default:
            break;
        }
    }
    return QWidget::eventFilter(watched, event);
}

QModelIndex TaskBrowser::firstTask() const
{
    for (int c = 0; c < m_proxy->rowCount(); ++c) {
        const QModelIndex category = m_proxy->index(c, 0);
        if (m_proxy->rowCount(category) > 0)
            return m_proxy->index(0, 0, category);
    }
    return {};
}

void TaskBrowser::onActivated(const QModelIndex &index)
{
    const QString key = index.data(TaskModel::KeyRole).toString();
    if (!key.isEmpty())
        Q_EMIT taskActivated(key);
}

void TaskBrowser::expandCategories(const QModelIndex &parent, int first, int last)
{
    if (parent.isValid())
        return;
    for (int row = first; row <= last; ++row)
        m_tree->expand(m_proxy->index(row, 0));
}

void TaskBrowser::refreshFilterChoices()
{
    const QString tag = m_proxy->tag();
    const QString category = m_proxy->category();

    m_tags->clear();
    m_tags->addItem(tr("All tags"), QString());
    for (const QString &name : m_model->tags())
        m_tags->addItem(name, name);
    m_tags->setCurrentIndex(qMax(0, m_tags->findData(tag)));
    if (m_tags->findData(tag) < 0)
        m_proxy->setTag(QString());

    m_categories->clear();
    m_categories->addItem(tr("All categories"), QString());
    for (const QString &name : m_model->categories()) {
        // The empty category cannot be told from "any"; it is reachable by the tree only.
        if (!name.isEmpty())
            m_categories->addItem(name, name);
    }
    m_categories->setCurrentIndex(qMax(0, m_categories->findData(category)));
    if (m_categories->findData(category) < 0)
        m_proxy->setCategory(QString());
}

} // namespace taskdeck::ui
