// SPDX-License-Identifier: MIT
// The desktop window on a shared PostgreSQL history, offscreen: a run another process queues
// and a worker process runs appears live in the window's history, and its log is shown.

#include "desktop.h"
#include "historymodel.h"
#include "logview.h"
#include "mainwindow.h"
#include "pgrunstore.h"
#include "pgtestserver.h"
#include "runsmodel.h"
#include "runview.h"
#include "taskengine.h"
#include "taskregistry.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSettings>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace taskdeck::ui;
using testsupport::PgTestServer;

// The window on a shared history with its own engine and no tasks: no run it shows is its own.
struct Desk
{
    std::unique_ptr<PgRunStore> store;
    TaskRegistry registry;
    std::unique_ptr<TaskEngine> engine;
    std::unique_ptr<MainWindow> window;

    // Opens the history at \a url and shows the window; false with \a error when it cannot.
    bool open(const QString &url, const QString &dataDir, QString *error)
    {
        store = PgRunStore::open(url, error);
        if (!store)
            return false;
        engine = std::make_unique<TaskEngine>(&registry, EngineConfig());
        engine->setRecorder(store.get());
        DesktopServices services;
        services.engine = engine.get();
        services.registry = &registry;
        services.store = store.get();
        services.dataDir = dataDir;
        window = std::make_unique<MainWindow>(services);
        window->resize(1280, 860);
        window->show();
        return QTest::qWaitForWindowExposed(window.get());
    }

    ~Desk()
    {
        window.reset();
        if (engine)
            engine->shutdown();
    }
};

class TestPgGui : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void cleanup();
    void runOfAWorkerAppearsLive();
    void runOfAWorkerIsCanceledFromTheWindow();

private:
    // A task file with one task, "remote", that prints a line and then waits until \a release exists.
    QString writeWaitingTask(const QString &release)
    {
        QFile tasks(m_home.filePath(u"tasks.yml"_s));
        if (!tasks.open(QIODevice::WriteOnly))
            return {};
        tasks.write(u"version: 1\ntasks:\n  remote:\n    title: Remote\n    shell: |\n      echo from-the-worker\n"
                    u"      while [ ! -e '%1' ]; do sleep 0.1; done\n      echo worker-done\n"_s.arg(release).toUtf8());
        return tasks.fileName();
    }

    // Starts a worker (m_worker) and queues one run of "remote" for it; its id, or empty.
    QString startRemoteRun(const QString &url, const QString &tasksFile)
    {
        const QString bin = qEnvironmentVariable("TASKDECK_BIN");
        m_worker = std::make_unique<QProcess>();
        m_worker->setProcessEnvironment(env(url, tasksFile));
        m_worker->setWorkingDirectory(m_home.path());
        m_worker->start(bin, {u"worker"_s});
        QProcess start;
        start.setProcessEnvironment(env(url, tasksFile));
        start.setWorkingDirectory(m_home.path());
        start.start(bin, {u"start"_s, u"remote"_s});
        if (!start.waitForFinished(60000) || start.exitCode() != 0)
            return {};
        return QString::fromUtf8(start.readAllStandardOutput()).trimmed();
    }

    // A new database, \a desk's window on it, and one run of "remote" queued for a worker
    // (m_worker) that holds it until \a release exists: the run's id, or empty with \a error.
    QString openWithRemoteRun(Desk &desk, const QString &release, QString *error)
    {
        const QString url = m_pg.createDatabase();
        const QString tasksFile = writeWaitingTask(release);
        if (tasksFile.isEmpty()) {
            *error = u"cannot write the tasks file"_s;
            return {};
        }
        if (!desk.open(url, m_home.path(), error))
            return {};
        const QString id = startRemoteRun(url, tasksFile);
        if (id.isEmpty())
            *error = u"taskdeck start did not queue the run"_s;
        return id;
    }

    // The status of run \a id in \a history's rows; -1 while it is not there.
    static int statusIn(const QAbstractItemModel *history, const QString &id)
    {
        for (int row = 0; row < history->rowCount(); ++row) {
            const QModelIndex index = history->index(row, 0);
            if (index.data(RunTableModel::RunIdRole).toString() == id)
                return index.data(RunTableModel::StatusRole).toInt();
        }
        return -1;
    }

    QProcessEnvironment env(const QString &url, const QString &tasksFile) const
    {
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(u"TASK_DATABASE_URL"_s, url);
        e.insert(u"TASK_DATA_DIR"_s, m_home.filePath(u"data"_s));
        e.insert(u"HOME"_s, m_home.path());
        e.insert(u"TASK_FILE"_s, tasksFile);
        return e;
    }

    PgTestServer m_pg;
    QTemporaryDir m_home;
    std::unique_ptr<QProcess> m_worker;
};

void TestPgGui::initTestCase()
{
    if (qEnvironmentVariable("TASKDECK_BIN").isEmpty())
        QSKIP("TASKDECK_BIN is not set (run through ctest)");
    QVERIFY2(m_pg.start(), qPrintable(m_pg.error()));
}

void TestPgGui::cleanup()
{
    if (m_worker && m_worker->state() != QProcess::NotRunning) {
        m_worker->kill();
        m_worker->waitForFinished();
    }
    m_worker.reset();
    QSettings().clear();
}

void TestPgGui::runOfAWorkerAppearsLive()
{
    const QString release = m_home.filePath(u"release"_s);
    Desk desk;
    QString error;
    const QString id = openWithRemoteRun(desk, release, &error);
    QVERIFY2(!id.isEmpty(), qPrintable(error));
    MainWindow *window = desk.window.get();

    QAbstractItemModel *history = window->historyModel();
    QVERIFY(history);
    const auto statusOf = [history, &id]() { return statusIn(history, id); };
    // Live: the window shows it running, before it ended.
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(), int(RunStatus::Running), 60000);
    window->openRun(id);
    QTRY_VERIFY_WITH_TIMEOUT(window->runView()->logView()->textEdit()->toPlainText().contains(u"from-the-worker"_s),
                             30000);

    QVERIFY(QFile(release).open(QIODevice::WriteOnly));
    QTRY_COMPARE_WITH_TIMEOUT(statusOf(), int(RunStatus::Succeeded), 60000);
    // The open run follows it to its end: the last line and the final state.
    QTRY_VERIFY_WITH_TIMEOUT(window->runView()->logView()->textEdit()->toPlainText().contains(u"worker-done"_s),
                             30000);
    QTRY_VERIFY_WITH_TIMEOUT(window->runView()->run() && window->runView()->run()->status == RunStatus::Succeeded,
                             30000);
}

// The window's Cancel reaches a run of a worker in another process: its worker cancels it.
void TestPgGui::runOfAWorkerIsCanceledFromTheWindow()
{
    Desk desk;
    QString error;
    const QString id = openWithRemoteRun(desk, m_home.filePath(u"never"_s), &error);
    QVERIFY2(!id.isEmpty(), qPrintable(error));
    MainWindow *window = desk.window.get();
    QAbstractItemModel *history = window->historyModel();
    QTRY_COMPARE_WITH_TIMEOUT(statusIn(history, id), int(RunStatus::Running), 60000);
    window->openRun(id);
    auto *cancel = window->runView()->findChild<QPushButton *>(u"cancelButton"_s);
    QVERIFY(cancel);
    QTRY_VERIFY_WITH_TIMEOUT(cancel->isEnabled(), 30000);
    QTest::mouseClick(cancel, Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(window->statusBar()->currentMessage().contains(u"on its worker"_s), 30000);
    QTRY_COMPARE_WITH_TIMEOUT(statusIn(history, id), int(RunStatus::Canceled), 60000);
    QTRY_VERIFY_WITH_TIMEOUT(window->runView()->run() && window->runView()->run()->status == RunStatus::Canceled,
                             30000);
    QVERIFY(!cancel->isEnabled());
    // What a person sees: the run canceled (and the status bar's word, while it lasts).
    QVERIFY(QDir().mkpath(QStringLiteral(TASKDECK_SCREENSHOT_DIR)));
    QVERIFY(window->grab().save(QDir(QStringLiteral(TASKDECK_SCREENSHOT_DIR)).filePath(u"pggui-canceled-on-worker.png"_s)));
    // Canceled by the worker, which goes on.
    QCOMPARE(m_worker->state(), QProcess::Running);
}

QTEST_MAIN(TestPgGui)
#include "tst_pggui.moc"
