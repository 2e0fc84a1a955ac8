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
#include <QFile>
#include <QPlainTextEdit>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSettings>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace taskdeck::ui;
using testsupport::PgTestServer;

class TestPgGui : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void cleanup();
    void runOfAWorkerAppearsLive();

private:
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
    const QString bin = qEnvironmentVariable("TASKDECK_BIN");
    const QString url = m_pg.createDatabase();
    const QString release = m_home.filePath(u"release"_s);
    QFile tasks(m_home.filePath(u"tasks.yml"_s));
    QVERIFY(tasks.open(QIODevice::WriteOnly));
    // It runs until the test lets it end, so that the window sees it running first.
    tasks.write(u"version: 1\ntasks:\n  remote:\n    title: Remote\n    shell: |\n      echo from-the-worker\n"
                u"      while [ ! -e '%1' ]; do sleep 0.1; done\n      echo worker-done\n"_s.arg(release).toUtf8());
    tasks.close();

    // The window's own history, engine and (empty) tasks: the run is not its own.
    QString error;
    std::unique_ptr<PgRunStore> store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));
    TaskRegistry registry;
    TaskEngine engine(&registry, EngineConfig());
    engine.setRecorder(store.get());
    DesktopServices services;
    services.engine = &engine;
    services.registry = &registry;
    services.store = store.get();
    services.dataDir = m_home.path();
    auto window = std::make_unique<MainWindow>(services);
    window->resize(1280, 860);
    window->show();
    QVERIFY(QTest::qWaitForWindowExposed(window.get()));

    m_worker = std::make_unique<QProcess>();
    m_worker->setProcessEnvironment(env(url, tasks.fileName()));
    m_worker->setWorkingDirectory(m_home.path());
    m_worker->start(bin, {u"worker"_s});
    QProcess start;
    start.setProcessEnvironment(env(url, tasks.fileName()));
    start.setWorkingDirectory(m_home.path());
    start.start(bin, {u"start"_s, u"remote"_s});
    QVERIFY(start.waitForFinished(60000));
    QCOMPARE(start.exitCode(), 0);
    const QString id = QString::fromUtf8(start.readAllStandardOutput()).trimmed();
    QVERIFY(!id.isEmpty());

    QAbstractItemModel *history = window->historyModel();
    QVERIFY(history);
    const auto statusOf = [history, &id]() {
        for (int row = 0; row < history->rowCount(); ++row) {
            const QModelIndex index = history->index(row, 0);
            if (index.data(RunTableModel::RunIdRole).toString() == id)
                return index.data(RunTableModel::StatusRole).toInt();
        }
        return -1;
    };
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

    window.reset();
    engine.shutdown();
}

QTEST_MAIN(TestPgGui)
#include "tst_pggui.moc"
