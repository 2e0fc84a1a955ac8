// SPDX-License-Identifier: MIT
// The desktop window end to end, offscreen, through its real widgets: a form filled and run,
// bad input refused, a command canceled from the runs panel, a run of another process in the
// history, the window without a display, and screenshots of its main states.

#include "command.h"
#include "desktop.h"
#include "historymodel.h"
#include "runsmodel.h"
#include "logview.h"
#include "mainwindow.h"
#include "resultview.h"
#include "runspanel.h"
#include "runcontext.h"
#include "runview.h"
#include "settingsdialog.h"
#include "tasksfilewatcher.h"
#include "usersettings.h"
#include "sqliterunstore.h"
#include "taskbrowser.h"
#include "taskengine.h"
#include "taskform.h"
#include "taskpage.h"
#include "taskregistry.h"
#include "testsupport.h"
#include "theme.h"

#include <QAbstractItemView>
#include <QApplication>
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QSpinBox>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace taskdeck::ui;

namespace {

const QString kColours =
    u"\x1b[1;32mok\x1b[0m compiled \x1b[38;5;208morange\x1b[0m and \x1b[38;2;10;120;250mblue\x1b[0m"_s;

Task colourTask()
{
    Task t = testsupport::makeTask(u"colours"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 40; ++i) {
            ctx.log(u"%1 line %2"_s.arg(kColours).arg(i));
            ctx.progress(i, 40, u"line %1"_s.arg(i));
        }
        ctx.logError(u"\x1b[31mwarning:\x1b[0m something on stderr"_s);
        return QJsonObject{{u"summary"_s, QJsonObject{{u"lines"_s, 40}, {u"ok"_s, true}}},
                           {u"files"_s, QJsonArray{QJsonObject{{u"name"_s, u"a.txt"_s}, {u"size"_s, 12}},
                                                  QJsonObject{{u"name"_s, u"b.txt"_s}, {u"size"_s, 34}}}}};
    });
    t.title = u"Colour Report"_s;
    t.category = u"reports"_s;
    t.icon = u"utilities-terminal"_s;
    t.tags = {u"demo"_s};
    return t;
}

Task formTask()
{
    Task t = testsupport::makeTask(
        u"greet"_s,
        [](RunContext &ctx) -> QJsonValue {
            ctx.log(u"hello"_s);
            return QJsonObject{{u"greeted"_s, u"done"_s}};
        },
        {Field(u"name"_s, FieldType::Text).withTitle(u"Name"_s).withRequired().withPattern(u"[a-z]+"_s)
             .withDescription(u"Lower-case letters only"_s),
         Field(u"count"_s, FieldType::Integer).withTitle(u"Count"_s).withMin(1).withMax(10).withDefault(3)});
    t.title = u"Greet"_s;
    t.category = u"demo"_s;
    t.description = u"Says hello to someone."_s;
    return t;
}

Task sleeperTask(const QString &pidFile)
{
    Task t = testsupport::makeTask(u"sleeper"_s, [pidFile](RunContext &ctx) -> QJsonValue {
        Command command;
        // The shell starts a child of its own: canceling must end both.
        command.argv = {u"sh"_s, u"-c"_s, u"sleep 300 & echo $! > '%1'; echo started; wait"_s.arg(pidFile)};
        return ctx.runChecked(command);
    });
    t.title = u"Sleeper"_s;
    t.category = u"demo"_s;
    return t;
}

Task dangerTask()
{
    Task t = testsupport::makeTask(u"wipe"_s, [](RunContext &) -> QJsonValue { return true; });
    t.title = u"Wipe Everything"_s;
    t.category = u"admin"_s;
    t.danger = u"This deletes every file in the scratch area."_s;
    return t;
}

} // namespace

class TestMainWindow : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void formRunsAndResultAppears();
    void invalidFormStartsNothing();
    void exportWritesRunAndLog();
    void cancelFromRunsPanelEndsCommandAndChild();
    void runOfAnotherProcessAppearsInHistory();
    void rerunOfAStoredRunFillsTheForm();
    void noDisplayExitsWithAdvice();
    void tasksFileMistakesShowInWindow();
    void settingsFixedByEnvironmentCannotChange();
    void windowShortcutsReachTheirParts();
    void screenshots();

private:
    void makeWindow();
    QString shotPath(const QString &name) const;
    void saveShot(QWidget *widget, const QString &name);

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<SqliteRunStore> m_store;
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
    std::unique_ptr<MainWindow> m_window;
    QString m_pidFile;
};

void TestMainWindow::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(u"taskdeck-tests"_s);
    QCoreApplication::setApplicationName(u"tst_mainwindow"_s);
    QSettings().clear();
    QDir().mkpath(QStringLiteral(TASKDECK_SCREENSHOT_DIR));
}

void TestMainWindow::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    m_store = testsupport::openStore(m_dir->path());
    QVERIFY(m_store);
    m_pidFile = m_dir->filePath(u"child.pid"_s);
    m_registry = std::make_unique<TaskRegistry>();
    QString error;
    for (const Task &task : {colourTask(), formTask(), sleeperTask(m_pidFile), dangerTask()})
        QVERIFY2(m_registry->add(task, &error), qPrintable(error));
    EngineConfig config;
    config.maxConcurrent = 2;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
    m_engine->setRecorder(m_store.get());
    makeWindow();
}

void TestMainWindow::makeWindow()
{
    DesktopServices services;
    services.engine = m_engine.get();
    services.registry = m_registry.get();
    services.store = m_store.get();
    services.dataDir = m_dir->path();
    m_window = std::make_unique<MainWindow>(services);
    m_window->resize(1280, 860);
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
}

void TestMainWindow::cleanup()
{
    m_window.reset();
    if (m_engine)
        m_engine->shutdown();
    m_engine.reset();
    m_store.reset();
    m_registry.reset();
    m_dir.reset();
    QSettings().clear();
}

QString TestMainWindow::shotPath(const QString &name) const
{
    return QDir(QStringLiteral(TASKDECK_SCREENSHOT_DIR)).filePath(name + u".png"_s);
}

void TestMainWindow::saveShot(QWidget *widget, const QString &name)
{
    const QPixmap pixmap = widget->grab();
    QVERIFY(!pixmap.isNull());
    QVERIFY2(pixmap.save(shotPath(name)), qPrintable(shotPath(name)));
}

void TestMainWindow::formRunsAndResultAppears()
{
    QVERIFY(m_window->openTask(u"greet"_s));
    TaskPage *page = m_window->taskPage();
    QCOMPARE(page->task()->key, u"greet"_s);
    auto *name = qobject_cast<QLineEdit *>(page->form()->editor(u"name"_s));
    QVERIFY(name);
    name->setFocus();
    QTest::keyClicks(name, u"ada"_s);

    QSignalSpy queued(m_engine.get(), &TaskEngine::runQueued);
    QTest::keyClick(m_window.get(), Qt::Key_Return, Qt::ControlModifier); // Run and wait
    QTRY_COMPARE(queued.size(), 1);
    const Run run = queued.constFirst().constFirst().value<Run>();
    QCOMPARE(run.task, u"greet"_s);
    QCOMPARE(run.args.value(u"name"_s).toString(), u"ada"_s);
    QCOMPARE(run.args.value(u"count"_s).toInteger(), 3); // the default, filled in
    QCOMPARE(m_window->runView()->runId(), run.id);

    QTRY_VERIFY_WITH_TIMEOUT(m_window->runView()->run()
                                 && m_window->runView()->run()->status == RunStatus::Succeeded,
                             10000);
    QTRY_VERIFY(m_window->waitingRunId().isEmpty());
    // The result appears in place.
    QCOMPARE(m_window->runView()->tabs()->currentIndex(), 1);
    QCOMPARE(m_window->runView()->run()->result.toObject().value(u"greeted"_s).toString(), u"done"_s);
    // Finished, the progress bar goes; the title stays next to its status icon.
    auto *icon = m_window->runView()->findChild<QLabel *>(u"statusIcon"_s);
    auto *title = m_window->runView()->findChild<QLabel *>(u"titleLabel"_s);
    auto *progress = m_window->runView()->findChild<QProgressBar *>(u"progressBar"_s);
    QVERIFY(icon && title && progress && title->isVisible());
    QTRY_VERIFY(!progress->isVisible());
    QTest::qWait(50); // the posted layout requests
    // (A label given more room than it needs leaves a gap after its text or picture.)
    QVERIFY2(title->x() - icon->x() < icon->sizeHint().width() + 16,
             qPrintable(u"title at %1, icon at %2"_s.arg(title->x()).arg(icon->x())));
}

void TestMainWindow::invalidFormStartsNothing()
{
    QVERIFY(m_window->openTask(u"greet"_s));
    TaskPage *page = m_window->taskPage();
    auto *name = qobject_cast<QLineEdit *>(page->form()->editor(u"name"_s));
    QVERIFY(name);
    QTest::keyClicks(name, u"Ada 99"_s); // against the pattern [a-z]+
    QSignalSpy queued(m_engine.get(), &TaskEngine::runQueued);
    QTest::mouseClick(page->runButton(), Qt::LeftButton);
    QTest::mouseClick(page->startButton(), Qt::LeftButton);
    QTest::qWait(200);
    QCOMPARE(queued.size(), 0);
    QVERIFY(!page->form()->errorText(u"name"_s).isEmpty());
    QVERIFY(m_engine->activeRuns().isEmpty());
    saveShot(m_window.get(), u"window-form-errors"_s);
}

void TestMainWindow::exportWritesRunAndLog()
{
    QVERIFY(m_window->openTask(u"colours"_s));
    QSignalSpy finished(m_engine.get(), &TaskEngine::runFinished);
    QTest::mouseClick(m_window->taskPage()->runButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10000);
    const QString runId = finished.constFirst().constFirst().value<Run>().id;
    QTRY_VERIFY(m_window->runView()->run() && m_window->runView()->run()->isFinished());
    QVERIFY(m_store->flush(std::chrono::seconds(10)));

    RunView *view = m_window->runView();
    QSignalSpy exported(view, &RunView::exportFinished);
    const QString json = m_dir->filePath(u"run.json"_s);
    const QString csv = m_dir->filePath(u"log.csv"_s);
    const QString text = m_dir->filePath(u"log.txt"_s);
    view->exportRunTo(RunView::ExportFormat::Json, json);
    view->exportRunTo(RunView::ExportFormat::Csv, csv);
    view->exportRunTo(RunView::ExportFormat::Text, text);
    QTRY_COMPARE_WITH_TIMEOUT(exported.size(), 3, 10000);
    for (const QList<QVariant> &args : exported)
        QVERIFY2(args.at(1).toString().isEmpty(), qPrintable(args.at(1).toString()));

    QFile jsonFile(json);
    QVERIFY(jsonFile.open(QIODevice::ReadOnly));
    const QJsonObject object = QJsonDocument::fromJson(jsonFile.readAll()).object();
    QCOMPARE(object.value(u"id"_s).toString(), runId);
    QCOMPARE(object.value(u"status"_s).toString(), u"succeeded"_s);
    const QJsonArray log = object.value(u"log"_s).toArray();
    QCOMPARE(log.size(), 41);
    QCOMPARE(log.at(40).toObject().value(u"stream"_s).toString(), u"err"_s);
    QVERIFY(object.value(u"result"_s).toObject().contains(u"files"_s));

    QFile csvFile(csv);
    QVERIFY(csvFile.open(QIODevice::ReadOnly));
    const QList<QByteArray> records = csvFile.readAll().split('\n');
    QCOMPARE(records.constFirst().trimmed(), QByteArray("n,time,stream,text"));
    QCOMPARE(records.size(), 1 + 41 + 1); // header, lines, the empty rest after the last CRLF

    QFile textFile(text);
    QVERIFY(textFile.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = textFile.readAll().split('\n');
    QVERIFY(lines.at(0).endsWith("line 1"));
    QVERIFY(lines.at(40).startsWith("! ")); // stderr marked
}

void TestMainWindow::cancelFromRunsPanelEndsCommandAndChild()
{
    QVERIFY(m_window->openTask(u"sleeper"_s));
    QSignalSpy queued(m_engine.get(), &TaskEngine::runQueued);
    QTest::mouseClick(m_window->taskPage()->startButton(), Qt::LeftButton);
    QTRY_COMPARE(queued.size(), 1);
    const QString runId = queued.constFirst().constFirst().value<Run>().id;
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(m_pidFile) && QFile(m_pidFile).size() > 0, 10000);
    QFile pidFile(m_pidFile);
    QVERIFY(pidFile.open(QIODevice::ReadOnly));
    const qint64 childPid = pidFile.readAll().trimmed().toLongLong();
    QVERIFY(childPid > 0);
    QVERIFY(!testsupport::processGone(childPid));

    // The runs panel's Cancel, with the run selected in its Active view.
    RunsPanel *panel = m_window->runsPanel();
    QVERIFY(panel->selectRun(runId));
    QPushButton *cancel = panel->cancelButton();
    QTRY_VERIFY(cancel->isEnabled());
    QTest::mouseClick(cancel, Qt::LeftButton);

    QTRY_VERIFY_WITH_TIMEOUT(m_engine->status(runId) == RunStatus::Canceled, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(testsupport::processGone(childPid), 10000);
}

void TestMainWindow::runOfAnotherProcessAppearsInHistory()
{
    const QString bin = qEnvironmentVariable("TASKDECK_BIN");
    QVERIFY2(!bin.isEmpty(), "TASKDECK_BIN names the taskdeck program");
    QProcess other;
    other.start(bin, {u"--data-dir"_s, m_dir->path(), u"run"_s, u"exec"_s, u"--yes"_s,
                      u"--arg"_s, u"command=echo from-another-process"_s, u"--json"_s});
    QVERIFY(other.waitForFinished(30000));
    QCOMPARE(other.exitCode(), 0);
    const QString otherId = QJsonDocument::fromJson(other.readAllStandardOutput())
                                .object().value(u"id"_s).toString();
    QVERIFY(!otherId.isEmpty());

    QAbstractItemModel *history = m_window->historyModel();
    QVERIFY(history);
    const auto rowOf = [history](const QString &id) {
        for (int row = 0; row < history->rowCount(); ++row) {
            if (history->index(row, 0).data(RunTableModel::RunIdRole).toString() == id)
                return row;
        }
        return -1;
    };
    QTRY_VERIFY_WITH_TIMEOUT(rowOf(otherId) >= 0, 15000);

    // Opening it shows its stored log like a live one.
    m_window->openRun(otherId);
    QTRY_VERIFY_WITH_TIMEOUT(m_window->runView()->logView()->textEdit()->toPlainText()
                                 .contains(u"from-another-process"_s),
                             10000);
    QCOMPARE(m_window->runView()->run()->status, RunStatus::Succeeded);
}

void TestMainWindow::rerunOfAStoredRunFillsTheForm()
{
    // A run the engine no longer has: the window reads it from the history, off its thread.
    const QJsonObject args{{u"name"_s, u"zoe"_s}, {u"count"_s, 7}};
    const StartResult started = m_engine->start(u"greet"_s, args);
    QVERIFY(started.ok());
    QVERIFY(m_engine->waitForFinished(started.runId, std::chrono::seconds(10)));
    QVERIFY(m_store->flush(std::chrono::seconds(10)));
    m_window.reset();
    m_engine->shutdown();
    EngineConfig config;
    config.maxConcurrent = 2;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
    m_engine->setRecorder(m_store.get());
    makeWindow();
    QVERIFY(!m_engine->snapshot(started.runId));

    auto *panel = m_window->findChild<RunsPanel *>();
    QVERIFY(panel);
    Q_EMIT panel->rerunRequested(started.runId);
    TaskForm *form = m_window->taskPage()->form();
    QTRY_COMPARE_WITH_TIMEOUT(form->values().value(u"name"_s).toString(), u"zoe"_s, 10000);
    QCOMPARE(form->values().value(u"count"_s).toInteger(), 7);
    // Nothing ran again: the form waits for the user.
    QCOMPARE(m_engine->activeRuns().size(), 0);
    // The page's new form is shown and laid out by events it posted, as a user sees it.
    QWidget *nameEditor = form->editor(u"name"_s);
    QVERIFY(nameEditor);
    QTRY_VERIFY(nameEditor->isVisible() && !nameEditor->geometry().isEmpty());
    saveShot(m_window.get(), u"window-rerun-from-history"_s);
}

void TestMainWindow::noDisplayExitsWithAdvice()
{
    const QString bin = qEnvironmentVariable("TASKDECK_BIN");
    QVERIFY(!bin.isEmpty());
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (const auto *name : {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"})
        env.remove(QString::fromLatin1(name));
    env.insert(u"TASK_DATA_DIR"_s, m_dir->path());
    for (const QStringList &arguments : {QStringList(), QStringList{u"gui"_s}}) {
        QProcess process;
        process.setProcessEnvironment(env);
        process.start(bin, arguments);
        QVERIFY(process.waitForFinished(30000));
        QCOMPARE(process.exitStatus(), QProcess::NormalExit);
        QCOMPARE(process.exitCode(), 2);
        const QString err = QString::fromUtf8(process.readAllStandardError());
        QVERIFY2(err.contains(u"no display"_s), qPrintable(err));
        QVERIFY2(err.contains(u"taskdeck serve"_s), qPrintable(err));
    }
}

void TestMainWindow::tasksFileMistakesShowInWindow()
{
    const QString path = m_dir->filePath(u"taskdeck.yml"_s);
    const auto write = [&path](const QByteArray &text) {
        QFile file(path);
        QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
        file.write(text);
    };
    write("version: 1\ntasks:\n  hello:\n    title: Hello\n    command: echo hi\n");
    TasksFileWatcher watcher(path, m_registry.get());
    QVERIFY(watcher.load());

    m_window.reset();
    DesktopServices services;
    services.engine = m_engine.get();
    services.registry = m_registry.get();
    services.store = m_store.get();
    services.tasksFile = &watcher;
    m_window = std::make_unique<MainWindow>(services);
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    QVERIFY(m_window->openTask(u"hello"_s));
    QLabel *errors = m_window->taskBrowser()->errorArea();
    QVERIFY(!errors->isVisible());
    watcher.startWatching();

    // A mistake: its file:line:column shows in the window, and the task stays.
    write("version: 1\ntasks:\n  hello:\n    title: Hello\n    command: echo hi\n    fields:\n      - key: n\n        type: integr\n");
    QTRY_VERIFY_WITH_TIMEOUT(errors->isVisible(), 10000);
    QVERIFY2(errors->text().contains(path + u":8:"_s), qPrintable(errors->text()));
    QVERIFY(m_registry->find(u"hello"_s));

    // Fixed, with a new task: it appears in the browser without a restart.
    write("version: 1\ntasks:\n  hello:\n    title: Hello\n    command: echo hi\n  bye:\n    title: Bye\n    command: echo bye\n");
    QTRY_VERIFY_WITH_TIMEOUT(!errors->isVisible(), 10000);
    QTRY_VERIFY(m_window->openTask(u"bye"_s));
    QCOMPARE(m_window->taskPage()->task()->title, u"Bye"_s);
    m_window.reset(); // before the watcher
}

void TestMainWindow::settingsFixedByEnvironmentCannotChange()
{
    Settings settings;
    SettingsDialog dialog(settings, {u"TASK_MAX_CONCURRENT"_s}, Theme::System);
    auto *maxConcurrent = dialog.findChild<QSpinBox *>(u"maxConcurrent"_s);
    auto *bufferSize = dialog.findChild<QSpinBox *>(u"bufferSize"_s);
    auto *timeout = dialog.findChild<QLineEdit *>(u"timeout"_s);
    QVERIFY(maxConcurrent && bufferSize && timeout);
    QVERIFY(!maxConcurrent->isEnabled());
    QVERIFY(maxConcurrent->toolTip().contains(u"TASK_MAX_CONCURRENT"_s));
    QVERIFY(dialog.findChild<QLabel *>(u"fixedNote_TASK_MAX_CONCURRENT"_s));
    QVERIFY(bufferSize->isEnabled());

    // A bad duration is refused, naming the field and what is accepted.
    timeout->setText(u"soon"_s);
    dialog.accept();
    QCOMPARE(dialog.result(), int(QDialog::Rejected));
    QVERIFY2(dialog.error().contains(u"Default time limit"_s) && dialog.error().contains(u"5m"_s),
             qPrintable(dialog.error()));
    timeout->setText(u"90s"_s);
    bufferSize->setValue(4242);
    dialog.accept();
    QCOMPARE(dialog.result(), int(QDialog::Accepted));
    QCOMPARE(dialog.settings().engine.defaultTimeout, std::chrono::milliseconds(90000));
    QCOMPARE(dialog.settings().engine.bufferSize, 4242);

    // Saved values come back at the next start, except the fixed one.
    Settings chosen = dialog.settings();
    chosen.engine.maxConcurrent = 7;
    UserSettings::save(chosen, {u"TASK_MAX_CONCURRENT"_s});
    Settings next;
    next.engine.maxConcurrent = 3; // as the environment set it
    UserSettings::applySaved(next, {u"TASK_MAX_CONCURRENT"_s});
    QCOMPARE(next.engine.maxConcurrent, 3);
    QCOMPARE(next.engine.bufferSize, 4242);
    QCOMPARE(next.engine.defaultTimeout, std::chrono::milliseconds(90000));
}

void TestMainWindow::windowShortcutsReachTheirParts()
{
    QVERIFY(m_window->openTask(u"greet"_s));
    m_window->activateWindow();
    auto *name = qobject_cast<QLineEdit *>(m_window->taskPage()->form()->editor(u"name"_s));
    name->setFocus();
    // Ctrl+F from inside the form: the task search takes the focus.
    QTest::keyClick(name, Qt::Key_F, Qt::ControlModifier);
    QTRY_VERIFY(m_window->taskBrowser()->searchField()->hasFocus());
    // Ctrl+Return with the focus in the browser still runs the task on the page (no
    // ambiguity between the window's action and the page's own shortcut).
    QTest::keyClicks(name, QString()); // no-op: keeps the editor alive
    name->setText(u"bob"_s);
    QSignalSpy queued(m_engine.get(), &TaskEngine::runQueued);
    QTest::keyClick(m_window->taskBrowser()->searchField(), Qt::Key_Return, Qt::ControlModifier);
    QTRY_COMPARE(queued.size(), 1);
    QCOMPARE(queued.constFirst().constFirst().value<Run>().args.value(u"name"_s).toString(), u"bob"_s);
}

void TestMainWindow::screenshots()
{
    // Running, with colours: the colour task streams while the window shows it.
    QVERIFY(m_window->openTask(u"colours"_s));
    QSignalSpy finished(m_engine.get(), &TaskEngine::runFinished);
    QTest::mouseClick(m_window->taskPage()->runButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10000);
    QTRY_VERIFY(m_window->runView()->logView()->textEdit()->toPlainText().contains(u"line 40"_s));
    m_window->runView()->tabs()->setCurrentIndex(0);
    QTest::qWait(100);
    saveShot(m_window.get(), u"window-log-colours"_s);

    m_window->runView()->tabs()->setCurrentIndex(1);
    QTest::qWait(50);
    saveShot(m_window.get(), u"window-result"_s);

    RunsPanel *panel = m_window->runsPanel();
    panel->setCurrentView(RunsPanel::View::History);
    QTRY_VERIFY(m_window->historyModel()->rowCount() >= 1);
    saveShot(m_window.get(), u"window-history"_s);

    QVERIFY(m_window->openTask(u"wipe"_s));
    applyTheme(*qApp, Theme::Dark);
    QTest::qWait(100);
    QVERIFY(paletteIsDark());
    saveShot(m_window.get(), u"window-dark"_s);
    applyTheme(*qApp, Theme::System);
    QVERIFY(!paletteIsDark());

    for (const QString &name : {u"window-log-colours"_s, u"window-result"_s, u"window-history"_s,
                               u"window-dark"_s}) {
        const QImage image(shotPath(name));
        QVERIFY2(!image.isNull() && image.width() >= 1000, qPrintable(name));
    }
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
