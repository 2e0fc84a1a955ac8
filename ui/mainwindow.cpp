// SPDX-License-Identifier: MIT
#include "mainwindow.h"

#include "ui_mainwindow.h"

#include "adminserver.h"
#include "cancelrun.h"
#include "logview.h"
#include "messagebanner.h"
#include "historymodel.h"
#include "runsmodel.h"
#include "runspanel.h"
#include "runview.h"
#include "settingsdialog.h"
#include "sqliterunstore.h"
#include "taskbrowser.h"
#include "taskform.h"
#include "taskmodel.h"
#include "taskpage.h"
#include "taskregistry.h"
#include "tasksfile.h"
#include "tasksfilewatcher.h"
#include "theme.h"
#include "usersettings.h"
#include "whendone.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QShortcut>
#include <QStatusBar>
#include <QSystemTrayIcon>
#include <QTimer>
#include <QToolButton>

#include <cstdio>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

QIcon applicationIcon()
{
    return QIcon::fromTheme(u"io.taskdeck.Taskdeck"_s,
                            QIcon(u":/icons/app/io.taskdeck.Taskdeck.svg"_s));
}

MainWindow::MainWindow(const DesktopServices &services, QWidget *parent)
    : QMainWindow(parent)
    , m_services(services)
    , m_ui(std::make_unique<Ui::MainWindow>())
{
    m_ui->setupUi(this);
    setWindowIcon(applicationIcon());

    m_taskModel = new TaskModel(services.registry, this);
    m_browser = new TaskBrowser(m_taskModel, m_ui->browserContainer);
    m_ui->browserLayout->addWidget(m_browser);

    m_historyBanner = new MessageBanner(m_ui->pageContainer);
    m_historyBanner->setMessageType(MessageBanner::Type::Warning);
    m_historyBanner->setVisible(false);
    m_ui->pageLayout->addWidget(m_historyBanner);
    if (!services.store) {
        m_historyBanner->setText(tr("The history is not available, so runs are not recorded: %1")
                                     .arg(services.historyError));
        m_historyBanner->setVisible(true);
    }
    m_page = new TaskPage(m_ui->pageContainer);
    m_ui->pageLayout->addWidget(m_page, 1);

    m_runView = new RunView(services, m_ui->runContainer);
    m_ui->runLayout->addWidget(m_runView);

    m_activeModel = new ActiveRunsModel(services.engine, this);
    m_historyModel = new HistoryModel(services.store, services.registry, this);
    m_runs = new RunsPanel(m_activeModel, m_historyModel, m_ui->runsContainer);
    m_ui->runsLayout->addWidget(m_runs);

    m_ui->mainSplitter->setStretchFactor(0, 0);
    m_ui->mainSplitter->setStretchFactor(1, 1);
    m_ui->mainSplitter->setSizes({300, 980});
    m_ui->centreSplitter->setSizes({420, 300});

    connect(m_browser, &TaskBrowser::taskActivated, this, &MainWindow::openTask);
    connect(m_browser, &TaskBrowser::currentTaskChanged, this, [this](const QString &key) {
        if (!key.isEmpty())
            openTask(key);
    });
    connect(m_page, &TaskPage::runRequested, this,
            [this](const QJsonObject &args, bool confirmed) { startTask(args, confirmed, true); });
    connect(m_page, &TaskPage::startRequested, this,
            [this](const QJsonObject &args, bool confirmed) { startTask(args, confirmed, false); });
    connect(m_runs, &RunsPanel::runActivated, this, &MainWindow::openRun);
    connect(m_runs, &RunsPanel::cancelRequested, this, [this](const QString &runId) {
        cancelRunAnywhere(m_services.engine, m_services.store, runId, this,
                          [this](const QString &text) { statusBar()->showMessage(text, 6000); });
    });
    connect(m_runs, &RunsPanel::rerunRequested, this, &MainWindow::rerunById);
    connect(m_runView, &RunView::rerunRequested, this, &MainWindow::rerun);
    connect(m_runView, &RunView::message, this,
            [this](const QString &text) { statusBar()->showMessage(text, 6000); });

    TaskEngine *engine = services.engine;
    connect(engine, &TaskEngine::runQueued, this, &MainWindow::updateCounts);
    connect(engine, &TaskEngine::runStarted, this, &MainWindow::updateCounts);
    connect(engine, &TaskEngine::runRetrying, this, &MainWindow::updateCounts);
    connect(engine, &TaskEngine::runFinished, this, &MainWindow::onRunFinished);

    if (services.tasksFile) {
        connect(services.tasksFile, &TasksFileWatcher::loadFailed, this,
                &MainWindow::showTasksFileErrors);
        connect(services.tasksFile, &TasksFileWatcher::loaded, this, [this](int count) {
            m_browser->setTasksFileErrors({});
            statusBar()->showMessage(tr("Tasks file read: %n task(s)", nullptr, count), 4000);
        });
        showTasksFileErrors(services.tasksFile->lastErrors());
    }

    setUpActions();
    setUpStatusBar();
    if (QSystemTrayIcon::isSystemTrayAvailable()) {
        m_tray = new QSystemTrayIcon(applicationIcon(), this);
        m_tray->setToolTip(tr("Taskdeck"));
        connect(m_tray, &QSystemTrayIcon::activated, this, [this] {
            showNormal();
            raise();
            activateWindow();
        });
        m_tray->show();
    }
    restoreState();
    updateCounts();

    // For start-up measurements: say when the window first paints, and quit.
    if (qEnvironmentVariableIsSet("TASKDECK_EXIT_AFTER_FIRST_PAINT"))
        installEventFilter(this);
}

bool MainWindow::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == this && event->type() == QEvent::Paint) {
        removeEventFilter(this);
        std::fputs("first paint\n", stdout);
        std::fflush(stdout);
        QTimer::singleShot(0, qApp, &QCoreApplication::quit);
    }
    return QMainWindow::eventFilter(watched, event);
}

MainWindow::~MainWindow() = default;

void MainWindow::setUpActions()
{
    auto *runsToggle = m_ui->runsDock->toggleViewAction();
    runsToggle->setText(tr("Runs &Panel"));
    runsToggle->setShortcut(QKeySequence(tr("Ctrl+J")));
    m_ui->menuView->addAction(runsToggle);

    connect(m_ui->actionQuit, &QAction::triggered, this, &QWidget::close);
    connect(m_ui->actionSettings, &QAction::triggered, this, &MainWindow::openSettings);
    connect(m_ui->actionOpenInBrowser, &QAction::triggered, this, &MainWindow::openInBrowser);
    m_ui->actionOpenInBrowser->setEnabled(m_services.server != nullptr);
    connect(m_ui->actionExportRun, &QAction::triggered, this,
            [this] { m_runView->exportRun(RunView::ExportFormat::Json); });
    connect(m_ui->actionExportLog, &QAction::triggered, this,
            [this] { m_runView->exportRun(RunView::ExportFormat::Text); });
    connect(m_ui->actionRun, &QAction::triggered, m_page->runButton(), &QPushButton::click);
    connect(m_ui->actionStart, &QAction::triggered, m_page->startButton(), &QPushButton::click);
    connect(m_ui->actionCancel, &QAction::triggered, m_runView, &RunView::cancelRun);
    connect(m_ui->actionRerun, &QAction::triggered, this, [this] {
        if (const auto run = m_runView->run())
            rerun(*run);
    });
    connect(m_ui->actionFindTask, &QAction::triggered, m_browser, &TaskBrowser::focusSearch);
    connect(m_ui->actionFindInLog, &QAction::triggered, this, [this] {
        m_runView->tabs()->setCurrentIndex(0);
        m_runView->logView()->openFind();
    });
    connect(m_ui->actionTimestamps, &QAction::toggled, this,
            [this](bool on) { m_runView->logView()->setShowTimestamps(on); });
    connect(m_ui->actionAbout, &QAction::triggered, this, &MainWindow::about);
    connect(m_ui->actionAboutQt, &QAction::triggered, qApp, &QApplication::aboutQt);
    // The window's actions own their keys wherever the focus is: a part's own shortcut for
    // the same keys (the page's Ctrl+Return, the browser's Ctrl+F) would make both ambiguous,
    // so it gives way to the action, which does the same.
    QList<QKeySequence> windowKeys;
    for (QAction *action : findChildren<QAction *>()) {
        action->setShortcutContext(Qt::WindowShortcut);
        if (!action->shortcut().isEmpty())
            windowKeys.append(action->shortcut());
    }
    for (QWidget *part : {static_cast<QWidget *>(m_page), static_cast<QWidget *>(m_browser)}) {
        for (QShortcut *shortcut : part->findChildren<QShortcut *>()) {
            if (windowKeys.contains(shortcut->key()))
                shortcut->setEnabled(false);
        }
        for (QAction *action : part->findChildren<QAction *>()) {
            if (windowKeys.contains(action->shortcut()))
                action->setShortcut(QKeySequence());
        }
    }
}

void MainWindow::setUpStatusBar()
{
    m_serverLabel = new QLabel(this);
    m_serverLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_openBrowserButton = new QToolButton(this);
    m_openBrowserButton->setDefaultAction(m_ui->actionOpenInBrowser);
    m_openBrowserButton->setAutoRaise(true);
    m_countsLabel = new QLabel(this);
    if (m_services.server) {
        m_serverLabel->setText(tr("Server %1").arg(m_services.server->baseUrl().toString()));
    } else if (!m_services.serverError.isEmpty()) {
        m_serverLabel->setText(tr("Web admin off: %1").arg(m_services.serverError));
    } else {
        m_serverLabel->setText(tr("Web admin off"));
    }
    statusBar()->addWidget(m_serverLabel);
    statusBar()->addWidget(m_openBrowserButton);
    m_openBrowserButton->setVisible(m_services.server != nullptr);
    statusBar()->addPermanentWidget(m_countsLabel);
}

bool MainWindow::openTask(const QString &key)
{
    const TaskPtr task = m_services.registry->find(key);
    if (!task)
        return false;
    if (m_page->task() && m_page->task()->key == key && m_page->task() == task)
        return true;
    m_page->setTask(task);
    m_browser->selectTask(key);
    QSettings().setValue(u"window/lastTask"_s, key);
    return true;
}

void MainWindow::openRun(const QString &runId)
{
    m_runView->showRun(runId);
}

void MainWindow::startTask(const QJsonObject &args, bool confirmed, bool wait)
{
    const TaskPtr task = m_page->task();
    if (!task)
        return;
    RunOptions options;
    options.confirmed = confirmed;
    const StartResult started = m_services.engine->start(task->key, args, options);
    if (!started.ok()) {
        m_page->setStartErrors(started.error);
        return;
    }
    m_page->clearMessages();
    m_startedHere.insert(started.runId);
    m_runView->showRun(started.runId);
    if (wait) {
        m_waitingRun = started.runId;
        m_page->setBusy(true);
    } else {
        statusBar()->showMessage(tr("Started %1 (run %2)").arg(task->title, started.runId.left(8)),
                                 4000);
    }
}

void MainWindow::onRunFinished(const Run &run)
{
    updateCounts();
    if (run.id == m_waitingRun) {
        m_waitingRun.clear();
        m_page->setBusy(false);
        // The result appears in place: the tab that says how it ended.
        if (run.status == RunStatus::Succeeded && !run.result.isUndefined())
            m_runView->tabs()->setCurrentIndex(1);
        else if (!run.error.isEmpty())
            m_runView->tabs()->setCurrentIndex(2);
    }
    if (m_startedHere.remove(run.id) && m_tray && !isActiveWindow()) {
        QString title = run.task;
        if (const TaskPtr task = m_services.registry->find(run.task))
            title = task->title;
        m_tray->showMessage(tr("%1: %2").arg(title, runStatusText(run.status)),
                            run.error.isEmpty() ? tr("Run %1 finished in %2")
                                                      .arg(run.id.left(8), formatElapsed(run.durationMs()))
                                                : run.error.message,
                            run.status == RunStatus::Succeeded ? QSystemTrayIcon::Information
                                                               : QSystemTrayIcon::Warning);
    }
}

void MainWindow::rerunById(const QString &runId)
{
    if (const auto run = m_services.engine->snapshot(runId)) {
        rerun(*run);
        return;
    }
    if (!m_services.store)
        return;
    // Not then(this): Qt 6.4's continuations with a context do not survive the context going
    // first. whenDone() watches with an object the window owns, and hands the result over in
    // an order ThreadSanitizer sees.
    detail::whenDone(this, m_services.store->findRunAsync(runId), [this](const std::optional<Run> &run) {
        if (run)
            rerun(*run);
    });
}

void MainWindow::rerun(const Run &run)
{
    if (!openTask(run.task)) {
        statusBar()->showMessage(tr("Task %1 no longer exists").arg(run.task), 6000);
        return;
    }
    m_page->form()->setValues(run.args);
    m_page->form()->setFocus();
    statusBar()->showMessage(tr("The form holds the arguments of run %1; secrets must be typed "
                                "again")
                                 .arg(run.id.left(8)),
                             6000);
}

void MainWindow::updateCounts()
{
    const int running = m_services.engine->runningCount();
    const int queued = m_services.engine->queuedCount();
    m_countsLabel->setText(tr("%n running", nullptr, running) + u" · "_s
                           + tr("%n queued", nullptr, queued));
}

void MainWindow::showTasksFileErrors(const QList<TasksFileError> &errors)
{
    QStringList lines;
    for (const TasksFileError &error : errors)
        lines.append(error.toString());
    m_browser->setTasksFileErrors(lines);
}

void MainWindow::openSettings()
{
    SettingsDialog dialog(m_services.settings, m_services.fixedSettings, UserSettings::theme(), this);
    if (dialog.exec() != QDialog::Accepted)
        return;
    const Settings chosen = dialog.settings();
    UserSettings::save(chosen, m_services.fixedSettings);
    if (dialog.theme() != UserSettings::theme()) {
        UserSettings::setTheme(dialog.theme());
        applyTheme(*qApp, dialog.theme());
    }
    if (chosen.retentionDays != m_services.settings.retentionDays && m_services.store)
        m_services.store->startRetention(chosen.retentionDays, std::chrono::hours(1));
    m_services.settings.retentionDays = chosen.retentionDays;
}

void MainWindow::openInBrowser()
{
    if (!m_services.server)
        return;
    QDesktopServices::openUrl(m_services.server->oneTimeLoginUrl());
}

void MainWindow::about()
{
    QMessageBox::about(
        this, tr("About Taskdeck"),
        tr("<h3>Taskdeck %1</h3>"
           "<p>Run tasks from forms and watch them live, on the desktop and in the browser.</p>"
           "<p>Taskdeck is free software under the MIT licence.</p>"
           "<p>It is built on Qt %2, used under the GNU LGPL version 3, and on SQLite, which "
           "is in the public domain.</p>")
            .arg(QCoreApplication::applicationVersion(), QString::fromLatin1(qVersion())));
}

void MainWindow::restoreState()
{
    const QSettings settings;
    restoreGeometry(settings.value(u"window/geometry"_s).toByteArray());
    QMainWindow::restoreState(settings.value(u"window/state"_s).toByteArray());
    m_ui->mainSplitter->restoreState(settings.value(u"window/mainSplitter"_s).toByteArray());
    m_ui->centreSplitter->restoreState(settings.value(u"window/centreSplitter"_s).toByteArray());
    m_runs->restoreState(settings.value(u"window/runsPanel"_s).toByteArray());
    m_ui->actionTimestamps->setChecked(settings.value(u"log/timestamps"_s, false).toBool());
    const QString lastTask = settings.value(u"window/lastTask"_s).toString();
    if (!lastTask.isEmpty())
        openTask(lastTask);
}

void MainWindow::saveState()
{
    QSettings settings;
    settings.setValue(u"window/geometry"_s, saveGeometry());
    settings.setValue(u"window/state"_s, QMainWindow::saveState());
    settings.setValue(u"window/mainSplitter"_s, m_ui->mainSplitter->saveState());
    settings.setValue(u"window/centreSplitter"_s, m_ui->centreSplitter->saveState());
    settings.setValue(u"window/runsPanel"_s, m_runs->saveState());
    settings.setValue(u"log/timestamps"_s, m_ui->actionTimestamps->isChecked());
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    const int active = m_services.engine->runningCount() + m_services.engine->queuedCount();
    if (active > 0) {
        const auto answer = QMessageBox::question(
            this, tr("Quit Taskdeck"),
            tr("Quit anyway? %n run(s) are still queued or running and would be canceled.",
               nullptr, active),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
        if (answer != QMessageBox::Yes) {
            event->ignore();
            return;
        }
    }
    saveState();
    event->accept();
}

} // namespace taskdeck::ui
