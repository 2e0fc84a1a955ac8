// SPDX-License-Identifier: MIT
#pragma once

#include "desktop.h"
#include "run.h"
#include "taskengine.h"

#include <QMainWindow>
#include <QSet>

#include <memory>

QT_BEGIN_NAMESPACE
class QLabel;
class QSystemTrayIcon;
class QToolButton;
namespace Ui { class MainWindow; }
QT_END_NAMESPACE

namespace taskdeck {
struct TasksFileError;
}

namespace taskdeck::ui {

class ActiveRunsModel;
class HistoryModel;
class MessageBanner;
class TaskModel;
class RunView;
class RunsPanel;
class TaskBrowser;
class TaskPage;

/*!
 * Taskdeck's main window: the task browser on the left, the task page over the run view in
 * the centre, the runs panel docked below and the admin server in the status bar. A window
 * onto the same engine, history and tasks as the command line.
 */
class MainWindow final : public QMainWindow
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(MainWindow)

public:
    explicit MainWindow(const DesktopServices &services, QWidget *parent = nullptr);
    ~MainWindow() override;

    TaskBrowser *taskBrowser() const { return m_browser; }
    TaskPage *taskPage() const { return m_page; }
    RunView *runView() const { return m_runView; }
    RunsPanel *runsPanel() const { return m_runs; }
    HistoryModel *historyModel() const { return m_historyModel; }
    ActiveRunsModel *activeRunsModel() const { return m_activeModel; }

    /*! Opens \a key's page; false for an unknown task. */
    bool openTask(const QString &key);
    /*! Shows \a runId in the run view. */
    void openRun(const QString &runId);
    /*! The run started by the last Run (wait) press, while it runs. */
    QString waitingRunId() const { return m_waitingRun; }

protected:
    void closeEvent(QCloseEvent *event) override;
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void setUpActions();
    void setUpStatusBar();
    void startTask(const QJsonObject &args, bool confirmed, bool wait);
    void rerun(const Run &run);
    void rerunById(const QString &runId);
    void onRunFinished(const Run &run);
    void updateCounts();
    void showTasksFileErrors(const QList<TasksFileError> &errors);
    void openSettings();
    void openInBrowser();
    void about();
    void restoreState();
    void saveState();

    DesktopServices m_services;
    std::unique_ptr<Ui::MainWindow> m_ui;
    TaskModel *m_taskModel = nullptr;
    ActiveRunsModel *m_activeModel = nullptr;
    HistoryModel *m_historyModel = nullptr;
    TaskBrowser *m_browser = nullptr;
    TaskPage *m_page = nullptr;
    RunView *m_runView = nullptr;
    RunsPanel *m_runs = nullptr;
    MessageBanner *m_historyBanner = nullptr;
    QLabel *m_serverLabel = nullptr;
    QToolButton *m_openBrowserButton = nullptr;
    QLabel *m_countsLabel = nullptr;
    QSystemTrayIcon *m_tray = nullptr;
    QString m_waitingRun;
    QSet<QString> m_startedHere; // runs started from this window, for notifications
};

} // namespace taskdeck::ui
