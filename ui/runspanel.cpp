// SPDX-License-Identifier: MIT
#include "runspanel.h"

#include "historymodel.h"
#include "progressdelegate.h"
#include "runsmodel.h"

#include <QComboBox>
#include <QDataStream>
#include <QGuiApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QIODevice>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QStackedWidget>
#include <QTabBar>
#include <QTableView>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr quint32 kStateMagic = 0x7464'7270; // "tdrp"
constexpr quint32 kStateVersion = 1;

enum TimeSpan { AnyTime, LastHour, Today, LastWeek };

// Filters the session's runs by status and by words of the task's key or title.
class ActiveRunsFilter final : public QSortFilterProxyModel
{
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

    void setFilter(int status, const QString &task)
    {
        m_status = status;
        m_task = task.trimmed();
        invalidateFilter();
    }

protected:
    bool filterAcceptsRow(int row, const QModelIndex &parent) const override
    {
        const QModelIndex index = sourceModel()->index(row, RunTableModel::TaskColumn, parent);
        if (m_status >= 0 && index.data(RunTableModel::StatusRole).toInt() != m_status)
            return false;
        if (m_task.isEmpty())
            return true;
        return index.data(RunTableModel::TaskKeyRole).toString().contains(m_task, Qt::CaseInsensitive)
            || index.data(Qt::DisplayRole).toString().contains(m_task, Qt::CaseInsensitive);
    }

private:
    int m_status = -1;
    QString m_task;
};

QString statusLabel(RunStatus status)
{
    Run run;
    run.status = status;
    if (status == RunStatus::Retrying)
        return RunsPanel::tr("Retrying");
    return RunTableModel::statusText(run);
}

} // namespace

RunsPanel::RunsPanel(ActiveRunsModel *active, HistoryModel *history, QWidget *parent)
    : QWidget(parent)
    , m_activeModel(active)
    , m_historyModel(history)
    , m_activeProxy(new ActiveRunsFilter(this))
    , m_delegate(new ProgressDelegate(this))
    , m_tabs(new QTabBar(this))
    , m_stack(new QStackedWidget(this))
    , m_activeView(new QTableView(this))
    , m_historyView(new QTableView(this))
    , m_status(new QComboBox(this))
    , m_task(new QLineEdit(this))
    , m_time(new QComboBox(this))
    , m_cancel(new QPushButton(tr("Cancel"), this))
    , m_rerun(new QPushButton(tr("Re-run"), this))
{
    m_tabs->addTab(tr("Active"));
    m_tabs->addTab(tr("History"));
    m_tabs->setDrawBase(false);

    m_activeProxy->setSourceModel(active);
    m_activeView->setModel(m_activeProxy);
    m_historyView->setModel(history);
    setUpTable(m_activeView);
    setUpTable(m_historyView);
    m_activeView->setAccessibleName(tr("Active runs"));
    m_historyView->setAccessibleName(tr("Run history"));
    m_stack->addWidget(m_activeView);
    m_stack->addWidget(m_historyView);

    m_status->addItem(tr("Any status"), -1);
    for (const QString &name : runStatusNames()) {
        const RunStatus status = *runStatusFromName(name);
        m_status->addItem(statusLabel(status), int(status));
    }
    m_status->setAccessibleName(tr("Status filter"));
    m_task->setPlaceholderText(tr("Task"));
    m_task->setClearButtonEnabled(true);
    m_task->setAccessibleName(tr("Task filter"));
    m_task->setToolTip(tr("Active: part of a task's key or title. History: a task's key."));
    m_time->addItem(tr("Any time"), AnyTime);
    m_time->addItem(tr("Last hour"), LastHour);
    m_time->addItem(tr("Today"), Today);
    m_time->addItem(tr("Last 7 days"), LastWeek);
    m_time->setAccessibleName(tr("Time filter"));
    m_time->setVisible(false);

    m_cancel->setToolTip(tr("Cancel the selected run"));
    m_rerun->setToolTip(tr("Run the selected run's task again with the same arguments"));
    connect(m_cancel, &QPushButton::clicked, this, &RunsPanel::requestCancel);
    connect(m_rerun, &QPushButton::clicked, this, &RunsPanel::requestRerun);

    connect(m_tabs, &QTabBar::currentChanged, this, [this](int tab) {
        m_stack->setCurrentIndex(tab);
        m_time->setVisible(tab == int(View::History));
        applyFilters();
        updateButtons();
    });
    connect(m_status, &QComboBox::activated, this, &RunsPanel::applyFilters);
    connect(m_time, &QComboBox::activated, this, &RunsPanel::applyFilters);
    connect(m_task, &QLineEdit::textChanged, this, [this] {
        // The history filters by an exact key: wait for Enter there, filter live here.
        if (currentView() == View::Active)
            applyFilters();
    });
    connect(m_task, &QLineEdit::returnPressed, this, &RunsPanel::applyFilters);
    // Buttons follow the selected run's status as it changes.
    connect(active, &QAbstractItemModel::dataChanged, this, &RunsPanel::updateButtons);
    connect(history, &QAbstractItemModel::dataChanged, this, &RunsPanel::updateButtons);

    auto *top = new QHBoxLayout;
    top->setContentsMargins(0, 0, 0, 0);
    top->addWidget(m_tabs);
    top->addSpacing(12);
    top->addWidget(m_status);
    top->addWidget(m_task, 1);
    top->addWidget(m_time);
    top->addStretch();
    top->addWidget(m_cancel);
    top->addWidget(m_rerun);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(top);
    layout->addWidget(m_stack, 1);
    updateButtons();
}

RunsPanel::~RunsPanel() = default;

void RunsPanel::setUpTable(QTableView *view)
{
    view->setItemDelegateForColumn(RunTableModel::ProgressColumn, m_delegate);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->setSelectionMode(QAbstractItemView::SingleSelection);
    view->setEditTriggers(QAbstractItemView::NoEditTriggers);
    view->setAlternatingRowColors(true);
    view->setShowGrid(false);
    view->setWordWrap(false);
    view->setContextMenuPolicy(Qt::CustomContextMenu);
    view->verticalHeader()->hide();
    view->verticalHeader()->setDefaultSectionSize(view->fontMetrics().height() + 8);
    view->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    QHeaderView *header = view->horizontalHeader();
    header->setHighlightSections(false);
    header->setStretchLastSection(true);
    header->resizeSection(RunTableModel::StatusColumn, 200);
    header->resizeSection(RunTableModel::TaskColumn, 180);
    header->resizeSection(RunTableModel::StartedColumn, 130);
    header->resizeSection(RunTableModel::DurationColumn, 80);
    connect(view, &QTableView::activated, this, [this](const QModelIndex &index) {
        const QString id = index.data(RunTableModel::RunIdRole).toString();
        if (!id.isEmpty())
            Q_EMIT runActivated(id);
    });
    connect(view->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &RunsPanel::updateButtons);
    connect(view, &QWidget::customContextMenuRequested, this, [this, view](const QPoint &pos) {
        const QModelIndex index = view->indexAt(pos);
        if (index.isValid())
            view->setCurrentIndex(index);
        QMenu *menu = createContextMenu();
        menu->setAttribute(Qt::WA_DeleteOnClose);
        menu->popup(view->viewport()->mapToGlobal(pos));
    });
}

RunsPanel::View RunsPanel::currentView() const
{
    return m_tabs->currentIndex() == int(View::History) ? View::History : View::Active;
}

void RunsPanel::setCurrentView(View view)
{
    m_tabs->setCurrentIndex(int(view));
}

QTableView *RunsPanel::currentTable() const
{
    return currentView() == View::History ? m_historyView : m_activeView;
}

QString RunsPanel::currentRunId() const
{
    const QModelIndex current = currentTable()->currentIndex();
    if (!current.isValid() || !currentTable()->selectionModel()->isRowSelected(current.row(), current.parent()))
        return {};
    return current.data(RunTableModel::RunIdRole).toString();
}

bool RunsPanel::selectRun(const QString &id)
{
    QTableView *view = currentTable();
    QAbstractItemModel *model = view->model();
    for (int row = 0; row < model->rowCount(); ++row) {
        const QModelIndex index = model->index(row, 0);
        if (index.data(RunTableModel::RunIdRole).toString() == id) {
            view->setCurrentIndex(index);
            view->selectRow(row);
            view->scrollTo(index);
            return true;
        }
    }
    return false;
}

void RunsPanel::applyFilters()
{
    const int status = m_status->currentData().toInt();
    if (currentView() == View::Active) {
        static_cast<ActiveRunsFilter *>(m_activeProxy)->setFilter(status, m_task->text());
        updateButtons();
        return;
    }
    QDateTime since;
    const QDateTime now = QDateTime::currentDateTime();
    switch (m_time->currentData().toInt()) {
    case LastHour: since = now.addSecs(-3600); break;
    case Today: since = QDateTime(now.date(), QTime(0, 0)); break;
    case LastWeek: since = now.addDays(-7); break;
    default: break;
    }
    const std::optional<RunStatus> statusFilter =
        status < 0 ? std::nullopt : std::optional<RunStatus>(RunStatus(status));
    const QString task = m_task->text().trimmed();
    // Setting the filter reads the pages again: only when the choice changed.
    const QString choice = task + u'\n' + QString::number(status) + u'\n'
        + QString::number(m_time->currentData().toInt());
    if (choice != m_historyChoice) {
        m_historyChoice = choice;
        m_historyModel->setFilter(task, statusFilter, since.isValid() ? since.toUTC() : QDateTime());
    }
    updateButtons();
}

void RunsPanel::updateButtons()
{
    const QModelIndex current = currentTable()->currentIndex();
    const bool selected = current.isValid()
        && currentTable()->selectionModel()->isRowSelected(current.row(), current.parent());
    const auto status = RunStatus(current.data(RunTableModel::StatusRole).toInt());
    m_cancel->setEnabled(selected && !isTerminal(status));
    m_rerun->setEnabled(selected);
}

void RunsPanel::requestCancel()
{
    const QModelIndex current = currentTable()->currentIndex();
    const QString id = currentRunId();
    if (id.isEmpty() || isTerminal(RunStatus(current.data(RunTableModel::StatusRole).toInt())))
        return;
    Q_EMIT cancelRequested(id);
}

void RunsPanel::requestRerun()
{
    const QString id = currentRunId();
    if (!id.isEmpty())
        Q_EMIT rerunRequested(id);
}

QMenu *RunsPanel::createContextMenu()
{
    auto *menu = new QMenu(this);
    const QString id = currentRunId();
    QAction *open = menu->addAction(tr("Open Run"), this, [this, id] { Q_EMIT runActivated(id); });
    open->setEnabled(!id.isEmpty());
    QAction *cancel = menu->addAction(tr("Cancel"), this, &RunsPanel::requestCancel);
    cancel->setEnabled(m_cancel->isEnabled());
    QAction *rerun = menu->addAction(tr("Re-run"), this, &RunsPanel::requestRerun);
    rerun->setEnabled(m_rerun->isEnabled());
    menu->addSeparator();
    QAction *copy = menu->addAction(tr("Copy Run ID"), this, [id] {
        QGuiApplication::clipboard()->setText(id);
    });
    copy->setEnabled(!id.isEmpty());
    return menu;
}

QByteArray RunsPanel::saveState() const
{
    QByteArray state;
    QDataStream out(&state, QIODevice::WriteOnly);
    out.setVersion(QDataStream::Qt_6_4);
    out << kStateMagic << kStateVersion << qint32(m_tabs->currentIndex())
        << m_activeView->horizontalHeader()->saveState()
        << m_historyView->horizontalHeader()->saveState()
        << qint32(m_status->currentIndex()) << qint32(m_time->currentIndex());
    return state;
}

bool RunsPanel::restoreState(const QByteArray &state)
{
    QDataStream in(state);
    in.setVersion(QDataStream::Qt_6_4);
    quint32 magic = 0;
    quint32 version = 0;
    qint32 tab = 0;
    QByteArray activeHeader;
    QByteArray historyHeader;
    qint32 status = 0;
    qint32 time = 0;
    in >> magic >> version >> tab >> activeHeader >> historyHeader >> status >> time;
    if (in.status() != QDataStream::Ok || magic != kStateMagic || version != kStateVersion)
        return false;
    m_activeView->horizontalHeader()->restoreState(activeHeader);
    m_historyView->horizontalHeader()->restoreState(historyHeader);
    if (status >= 0 && status < m_status->count())
        m_status->setCurrentIndex(status);
    if (time >= 0 && time < m_time->count())
        m_time->setCurrentIndex(time);
    m_tabs->setCurrentIndex(qBound(0, int(tab), 1));
    applyFilters();
    return true;
}

} // namespace taskdeck::ui
