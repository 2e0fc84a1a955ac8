// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QWidget>

class QComboBox;
class QLineEdit;
class QMenu;
class QPushButton;
class QSortFilterProxyModel;
class QStackedWidget;
class QTabBar;
class QTableView;

namespace taskdeck::ui {

class ActiveRunsModel;
class HistoryModel;
class ProgressDelegate;

/*!
 * The runs panel: the runs of this session ("Active") and the recorded ones ("History") in
 * two tables sharing a progress delegate, a filter row (status, task, and for the history a
 * time span), and Cancel / Re-run buttons and context menu.
 *
 * The panel acts on nothing itself: it says which run the user wants opened, cancelled or run
 * again (runActivated(), cancelRequested(), rerunRequested()) and the window decides.
 */
class RunsPanel final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunsPanel)

public:
    enum class View { Active, History };

    /*! Shows \a active and \a history (not owned; they must outlive the panel). */
    RunsPanel(ActiveRunsModel *active, HistoryModel *history, QWidget *parent = nullptr);
    ~RunsPanel() override;

    View currentView() const;
    void setCurrentView(View view);

    /*! The id of the run selected in the current view; empty when none. */
    QString currentRunId() const;
    /*! Selects the run with \a id in the current view; false when it is not shown. */
    bool selectRun(const QString &id);

    /*! The tabs, headers and filters, for QSettings. */
    QByteArray saveState() const;
    /*! Restores what saveState() gave; false (nothing changed) for data it cannot read. */
    bool restoreState(const QByteArray &state);

    QTabBar *tabBar() const { return m_tabs; }
    QTableView *activeView() const { return m_activeView; }
    QTableView *historyView() const { return m_historyView; }
    QComboBox *statusFilter() const { return m_status; }
    QLineEdit *taskFilter() const { return m_task; }
    QComboBox *timeFilter() const { return m_time; }
    QPushButton *cancelButton() const { return m_cancel; }
    QPushButton *rerunButton() const { return m_rerun; }
    /*! The context menu for the selected run, as shown on a right click (caller owns it). */
    QMenu *createContextMenu();

Q_SIGNALS:
    void runActivated(const QString &runId);
    void cancelRequested(const QString &runId);
    void rerunRequested(const QString &runId);

private:
    QTableView *currentTable() const;
    void setUpTable(QTableView *view);
    void applyFilters();
    void updateButtons();
    void requestCancel();
    void requestRerun();

    ActiveRunsModel *m_activeModel;
    HistoryModel *m_historyModel;
    QSortFilterProxyModel *m_activeProxy;
    ProgressDelegate *m_delegate;
    QTabBar *m_tabs;
    QStackedWidget *m_stack;
    QTableView *m_activeView;
    QTableView *m_historyView;
    QComboBox *m_status;
    QLineEdit *m_task;
    QComboBox *m_time;
    QPushButton *m_cancel;
    QPushButton *m_rerun;
    QString m_historyChoice = QStringLiteral("\n-1\n0");
};

} // namespace taskdeck::ui
