// SPDX-License-Identifier: MIT
#include "runcontext.h"
#include "taskengine.h"
#include "runowner.h"
#include "sqliterunstore.h"
#include "testsupport.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QScopeGuard>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

QString childProgram()
{
    const QString fromEnv = qEnvironmentVariable("TASKDECK_RECOVERY_CHILD");
    return fromEnv.isEmpty() ? QDir(QCoreApplication::applicationDirPath()).filePath(u"recoverychild"_s) : fromEnv;
}

// One recoverychild process and what it said.
class Child
{
public:
    Child() = default;
    Q_DISABLE_COPY_MOVE(Child)
    ~Child()
    {
        if (m_process.state() != QProcess::NotRunning) {
            m_process.kill();
            m_process.waitForFinished(30000);
        }
    }

    bool start(const QString &dataDir, int quickRuns, int longRuns, int queuedRuns)
    {
        return startWith({dataDir, QString::number(quickRuns), QString::number(longRuns),
                          QString::number(queuedRuns)});
    }

    bool startWith(const QStringList &arguments)
    {
        m_process.start(childProgram(), arguments);
        if (!m_process.waitForStarted(30000)) {
            qWarning().noquote() << "cannot start" << childProgram() << m_process.errorString();
            return false;
        }
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < 120000) {
            while (m_process.canReadLine()) {
                const QStringList words = QString::fromUtf8(m_process.readLine()).trimmed().split(u' ');
                const QString what = words.value(0);
                if (what == u"ready"_s)
                    return true;
                if (what == u"owner"_s)
                    owner = words.value(1);
                else if (what == u"finished"_s)
                    finished.insert(words.value(1), words.value(2).toLongLong());
                else if (what == u"running"_s)
                    running.insert(words.value(1), words.value(2).toLongLong());
                else if (what == u"queued"_s)
                    queued << words.value(1);
            }
            if (m_process.state() == QProcess::NotRunning) {
                qWarning().noquote() << "child ended early:" << m_process.readAllStandardError();
                return false;
            }
            m_process.waitForReadyRead(1000);
        }
        qWarning() << "child did not get ready in time";
        return false;
    }

    qint64 pid() const { return m_process.processId(); }

    bool killHard()
    {
        if (::kill(pid_t(pid()), SIGKILL) != 0)
            return false;
        // Reaped, so no zombie with its pid and start time is left to look alive.
        return m_process.waitForFinished(30000) && m_process.exitStatus() == QProcess::CrashExit;
    }

    QString owner;
    QHash<QString, qint64> finished; // id -> log lines
    QHash<QString, qint64> running;  // id -> lines stored for certain
    QStringList queued;

private:
    QProcess m_process;
};

// Live (not zombie) processes whose environment holds TASKDECK_TEST_MARKER=marker.
QList<qint64> markedProcesses(const QString &marker)
{
    const QByteArray needle = "TASKDECK_TEST_MARKER=" + marker.toUtf8();
    QList<qint64> found;
    const QStringList entries = QDir(u"/proc"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &entry : entries) {
        bool isPid = false;
        const qint64 pid = entry.toLongLong(&isPid);
        if (!isPid)
            continue;
        QFile envFile(u"/proc/%1/environ"_s.arg(entry));
        if (!envFile.open(QIODevice::ReadOnly))
            continue;
        const QList<QByteArray> variables = envFile.readAll().split('\0');
        if (!variables.contains(needle))
            continue;
        // A zombie keeps no environment, but check its state anyway.
        QFile stat(u"/proc/%1/stat"_s.arg(entry));
        if (stat.open(QIODevice::ReadOnly) && stat.readAll().contains(") Z "))
            continue;
        found << pid;
    }
    return found;
}

// Children of \a parent (from /proc/PID/stat).
QList<qint64> childrenOf(qint64 parent)
{
    QList<qint64> children;
    const QStringList entries = QDir(u"/proc"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &entry : entries) {
        QFile stat(u"/proc/%1/stat"_s.arg(entry));
        if (!stat.open(QIODevice::ReadOnly))
            continue;
        const QByteArray text = stat.readAll();
        const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
        if (fields.size() > 1 && fields.at(1).toLongLong() == parent)
            children << entry.toLongLong();
    }
    return children;
}

Run runningRun(const QString &id, const QString &owner)
{
    Run run;
    run.id = id;
    run.task = u"elsewhere"_s;
    run.status = RunStatus::Running;
    run.attempt = 1;
    run.queuedAt = QDateTime::currentDateTimeUtc();
    run.startedAt = run.queuedAt;
    run.owner = owner;
    return run;
}

} // namespace

class TestRecovery : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void ownerLiveness_data();
    void ownerLiveness();
    void ownerIdentity();
    void zombieCountsAsGone();
    void killedProcessRunsBecomeInterrupted();
    void commandsDieWithTheirTaskdeck();
    void recoveryEndsWhatADeadTaskdeckLeft();
};

void TestRecovery::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY2(QFileInfo(childProgram()).isExecutable(), qPrintable(childProgram()));
}

void TestRecovery::ownerLiveness_data()
{
    QTest::addColumn<QString>("owner");
    QTest::addColumn<bool>("parses");
    QTest::addColumn<bool>("onThisHost");
    QTest::addColumn<bool>("alive");

    const qint64 self = QCoreApplication::applicationPid();
    const QString host = RunOwner::localHost();
    QTest::newRow("this process") << RunOwner::current() << true << true << true;
    QTest::newRow("pid reused by a later process") << u"%1@%2#1"_s.arg(self).arg(host) << true << true << false;
    QTest::newRow("no such process") << u"999999999@%1#5"_s.arg(host) << true << true << false;
    QTest::newRow("another host") << u"%1@not-%2.invalid#1"_s.arg(self).arg(host) << true << false << false;
    // The boot id and the PID namespace: a pid of an earlier boot is gone whatever runs
    // under it now; one of another namespace cannot be looked up here, so it is not declared
    // dead.
    const QString start = RunOwner::processStartTime(self).value_or(u"0"_s);
    const QString boot = RunOwner::localBootId();
    const QString pidns = RunOwner::localPidNamespace();
    QTest::newRow("this process, this boot and namespace")
        << u"%1@%2#%3;boot=%4;pidns=%5"_s.arg(self).arg(host, start, boot, pidns) << true << true << true;
    QTest::newRow("this pid and start, an earlier boot")
        << u"%1@%2#%3;boot=00000000-0000-4000-8000-000000000000;pidns=%4"_s.arg(self).arg(host, start, pidns)
        << true << true << false;
    QTest::newRow("no such pid here, another namespace")
        << u"999999999@%1#5;boot=%2;pidns=1"_s.arg(host, boot) << true << true << true;
    QTest::newRow("unknown parts are ignored")
        << u"%1@%2#%3;boot=%4;pidns=%5;future=1"_s.arg(self).arg(host, start, boot, pidns) << true << true << true;
    QTest::newRow("empty") << QString() << false << false << false;
    QTest::newRow("no host") << u"12@#5"_s << false << false << false;
    QTest::newRow("no start") << u"12@host#"_s << false << false << false;
    QTest::newRow("not a pid") << u"x@host#5"_s << false << false << false;
    QTest::newRow("no pid") << u"@host#5"_s << false << false << false;
}

void TestRecovery::ownerLiveness()
{
    QFETCH(QString, owner);
    QFETCH(bool, parses);
    QFETCH(bool, onThisHost);
    QFETCH(bool, alive);
    const std::optional<RunOwner> parsed = RunOwner::parse(owner);
    QCOMPARE(bool(parsed), parses);
    if (!parsed)
        return;
    QCOMPARE(parsed->isOnThisHost(), onThisHost);
    QCOMPARE(parsed->isAlive(), alive);
}

void TestRecovery::ownerIdentity()
{
    // What this process writes as owner names its boot and PID namespace.
    const std::optional<RunOwner> self = RunOwner::parse(RunOwner::current());
    QVERIFY(self);
    QCOMPARE(self->pid(), QCoreApplication::applicationPid());
    QVERIFY(!RunOwner::localBootId().isEmpty());
    QCOMPARE(self->bootId(), RunOwner::localBootId());
    QVERIFY(!RunOwner::localPidNamespace().isEmpty());
    QCOMPARE(self->pidNamespace(), RunOwner::localPidNamespace());
    QVERIFY(!self->isFromEarlierBoot());
    QVERIFY(!self->isInOtherPidNamespace());

    // A history shared with another PID namespace: its running run is left alone; a run of
    // an earlier boot is interrupted.
    QTemporaryDir dir;
    QString error;
    auto store = SqliteRunStore::open(dir.path(), &error);
    QVERIFY2(store, qPrintable(error));
    const QDateTime now = QDateTime::currentDateTimeUtc();
    Run elsewhere;
    elsewhere.id = u"in-a-container"_s;
    elsewhere.task = u"t"_s;
    elsewhere.status = RunStatus::Running;
    elsewhere.queuedAt = now;
    elsewhere.startedAt = now;
    elsewhere.owner = u"1@%1#5;boot=%2;pidns=1"_s.arg(RunOwner::localHost(), RunOwner::localBootId());
    Run before = elsewhere;
    before.id = u"before-the-reboot"_s;
    before.owner = u"%1@%2#%3;boot=00000000-0000-4000-8000-000000000000;pidns=%4"_s
                       .arg(QCoreApplication::applicationPid())
                       .arg(RunOwner::localHost(), self->startTime(), RunOwner::localPidNamespace());
    store->recordStarted(elsewhere);
    store->recordStarted(before);
    QVERIFY(store->flush(30s));
    QCOMPARE(store->recoverInterrupted(), 1);
    QCOMPARE(store->findRun(elsewhere.id)->status, RunStatus::Running);
    const std::optional<Run> interrupted = store->findRun(before.id);
    QCOMPARE(interrupted->status, RunStatus::Interrupted);
    QVERIFY2(interrupted->error.message.contains(u"when the machine restarted"_s), qPrintable(interrupted->error.message));
}

void TestRecovery::zombieCountsAsGone()
{
    const pid_t pid = fork();
    QVERIFY(pid >= 0);
    if (pid == 0)
        _exit(0);
    // Until it is reaped the dead child still has a /proc entry, with its start time.
    QElapsedTimer timer;
    timer.start();
    bool zombie = false;
    while (!zombie && timer.elapsed() < 30000) {
        QFile stat(u"/proc/%1/stat"_s.arg(pid));
        zombie = stat.open(QIODevice::ReadOnly) && stat.readAll().contains(") Z ");
        if (!zombie)
            QTest::qWait(10);
    }
    const std::optional<QString> start = RunOwner::processStartTime(pid);
    int status = 0;
    waitpid(pid, &status, 0);
    QVERIFY(zombie);
    QVERIFY(!start);
    QVERIFY(RunOwner::processStartTime(QCoreApplication::applicationPid()));
}

void TestRecovery::killedProcessRunsBecomeInterrupted()
{
    QTemporaryDir dir;
    Child doomed;
    QVERIFY(doomed.start(dir.path(), 3, 2, 1));
    QCOMPARE(doomed.finished.size(), 3);
    QCOMPARE(doomed.running.size(), 2);
    QCOMPARE(doomed.queued.size(), 1);
    Child survivor;
    QVERIFY(survivor.start(dir.path(), 0, 1, 0));
    QCOMPARE(survivor.running.size(), 1);

    // This process runs something too, through its own engine on the same history.
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    Task hold;
    hold.key = u"hold"_s;
    hold.fn = [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"holding"_s);
        while (!ctx.isCanceled())
            ctx.sleep(10ms);
        return {};
    };
    QVERIFY(registry.add(hold));
    TaskEngine engine(&registry);
    engine.setRecorder(store.get());
    const QString own = engine.start(u"hold"_s, {}).runId;
    QTRY_VERIFY_WITH_TIMEOUT(engine.status(own) == RunStatus::Running, 30000);

    // A run of another machine, whose process cannot be checked from here, and one whose
    // pid is alive but now belongs to a different process (another start time).
    const qint64 self = QCoreApplication::applicationPid();
    QVERIFY(RunOwner::processStartTime(self) != u"1"_s);
    store->recordStarted(runningRun(u"foreign-host"_s, u"4242@elsewhere.invalid#777"_s));
    store->recordStarted(runningRun(u"reused-pid"_s, u"%1@%2#1"_s.arg(self).arg(RunOwner::localHost())));
    QVERIFY(store->flush(30s));

    const QDateTime beforeKill = QDateTime::currentDateTimeUtc();
    const qint64 doomedPid = doomed.pid();
    QVERIFY(doomed.killHard());

    // Nothing is interrupted by merely opening the history.
    auto restarted = openStore(dir.path());
    QVERIFY(restarted);
    for (auto it = doomed.running.cbegin(); it != doomed.running.cend(); ++it)
        QCOMPARE(restarted->findRun(it.key())->status, RunStatus::Running);

    QCOMPARE(restarted->recoverInterrupted(), 2 + 1 + 1);

    // Finished runs are complete, logs and all.
    for (auto it = doomed.finished.cbegin(); it != doomed.finished.cend(); ++it) {
        const std::optional<Run> run = restarted->findRun(it.key());
        QVERIFY(run);
        QCOMPARE(run->status, RunStatus::Succeeded);
        QCOMPARE(run->owner, doomed.owner);
        QCOMPARE(run->logLines, it.value());
        QCOMPARE(run->result, QJsonValue(QJsonObject{{u"lines"_s, 300}}));
        const LogLines log = readWholeLog(*restarted, it.key());
        QCOMPARE(log.size(), 300);
        for (qsizetype i = 0; i < log.size(); ++i) {
            QCOMPARE(log.at(i).number, i + 1);
            QCOMPARE(log.at(i).text, u"quick %1"_s.arg(i + 1));
        }
    }

    // Running runs of the dead process are interrupted, and keep a prefix of their log at
    // least as long as what was stored for certain before the kill.
    const QString doomedSays = u"Taskdeck process %1 on host %2 stopped while this run was "_s.arg(doomedPid).arg(RunOwner::localHost());
    for (auto it = doomed.running.cbegin(); it != doomed.running.cend(); ++it) {
        const std::optional<Run> run = restarted->findRun(it.key());
        QVERIFY(run);
        QCOMPARE(run->status, RunStatus::Interrupted);
        QCOMPARE(run->error.kind, u"Interrupted"_s);
        QVERIFY2(run->error.message.startsWith(doomedSays + u"running"_s), qPrintable(run->error.message));
        QVERIFY(run->error.message.contains(u"marked interrupted on restart"_s));
        QVERIFY(run->finishedAt.isValid());
        QVERIFY(run->finishedAt >= beforeKill);
        QVERIFY(run->startedAt.isValid());
        const LogLines log = readWholeLog(*restarted, it.key());
        QVERIFY2(log.size() >= it.value(), qPrintable(u"%1 < %2"_s.arg(log.size()).arg(it.value())));
        for (qsizetype i = 0; i < log.size(); ++i) {
            QCOMPARE(log.at(i).number, i + 1);
            QCOMPARE(log.at(i).text, u"tick %1"_s.arg(i + 1));
        }
        QCOMPARE(run->logLines, log.size());
    }
    for (const QString &id : std::as_const(doomed.queued)) {
        const std::optional<Run> run = restarted->findRun(id);
        QVERIFY(run);
        QCOMPARE(run->status, RunStatus::Interrupted);
        QVERIFY2(run->error.message.startsWith(doomedSays + u"queued"_s), qPrintable(run->error.message));
        QVERIFY(!run->startedAt.isValid());
    }

    // Live owners and other hosts are left alone; a reused pid is not mistaken for its owner.
    for (auto it = survivor.running.cbegin(); it != survivor.running.cend(); ++it)
        QCOMPARE(restarted->findRun(it.key())->status, RunStatus::Running);
    QCOMPARE(restarted->findRun(own)->status, RunStatus::Running);
    QCOMPARE(restarted->findRun(u"foreign-host"_s)->status, RunStatus::Running);
    const std::optional<Run> reused = restarted->findRun(u"reused-pid"_s);
    QCOMPARE(reused->status, RunStatus::Interrupted);
    QVERIFY(reused->error.message.contains(u"process %1 "_s.arg(self)));

    // Recovery is idempotent, and every store on the history sees its outcome.
    QCOMPARE(restarted->recoverInterrupted(), 0);
    QCOMPARE(store->findRun(doomed.running.cbegin().key())->status, RunStatus::Interrupted);

    // The live run goes on to a normal end.
    QVERIFY(engine.cancel(own));
    const std::optional<Run> ended = engine.waitForFinished(own, 60s);
    QVERIFY(ended);
    QCOMPARE(ended->status, RunStatus::Canceled);
    QCOMPARE(restarted->findRun(own)->status, RunStatus::Canceled);
}

void TestRecovery::commandsDieWithTheirTaskdeck()
{
    QTemporaryDir dir;
    const QString marker = u"%1-%2"_s.arg(QCoreApplication::applicationPid()).arg(QDateTime::currentMSecsSinceEpoch());
    Child doomed;
    QVERIFY(doomed.startWith({u"command"_s, dir.path(), marker}));
    // The shell and its two sleeps.
    QTRY_COMPARE_WITH_TIMEOUT(markedProcesses(marker).size(), 3, 30000);
    const QList<qint64> commands = markedProcesses(marker);

    QVERIFY(doomed.killHard());
    QTRY_VERIFY2_WITH_TIMEOUT(markedProcesses(marker).isEmpty(),
                              qPrintable(u"still alive: %1"_s.arg(QString::number(markedProcesses(marker).size()))),
                              30000);
    for (qint64 pid : commands)
        QTRY_VERIFY_WITH_TIMEOUT(!RunOwner::processStartTime(pid), 30000);
}

void TestRecovery::recoveryEndsWhatADeadTaskdeckLeft()
{
    QTemporaryDir dir;
    const QString marker = u"left-%1-%2"_s.arg(QCoreApplication::applicationPid()).arg(QDateTime::currentMSecsSinceEpoch());
    Child doomed;
    QVERIFY(doomed.startWith({u"command"_s, dir.path(), marker}));
    QTRY_COMPARE_WITH_TIMEOUT(markedProcesses(marker).size(), 3, 30000);
    const QList<qint64> commands = markedProcesses(marker);
    // The run must be in the history before its Taskdeck dies, or there is nothing to
    // recover: the child's writer commits on its own schedule.
    {
        testsupport::RawDb db(QDir(dir.path()).filePath(SqliteRunStore::fileName()));
        QTRY_COMPARE_WITH_TIMEOUT(
            db.scalar(u"SELECT count(*) FROM runs WHERE status IN ('queued', 'running')"_s).toInt(),
            1, 30000);
    }
    const auto cleanup = qScopeGuard([&] {
        for (qint64 pid : markedProcesses(marker))
            ::kill(pid_t(pid), SIGKILL);
    });

    // The guard (the child's other child) dies first, as with an OOM kill of both, or a
    // kill -9 of their process group: then nothing ends the command with its Taskdeck.
    const QList<qint64> children = childrenOf(doomed.pid());
    int guards = 0;
    for (qint64 pid : children) {
        if (!commands.contains(pid)) {
            QCOMPARE(::kill(pid_t(pid), SIGKILL), 0);
            ++guards;
        }
    }
    QCOMPARE(guards, 1);
    const qint64 doomedPid = doomed.pid();
    QVERIFY(doomed.killHard());
    QTest::qWait(300);
    QCOMPARE(markedProcesses(marker).size(), 3);

    // The next Taskdeck on this history marks the run interrupted and ends them.
    auto store = openStore(dir.path());
    QVERIFY(store);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"ended 3 processes left running by Taskdeck process %1 "_s.arg(doomedPid)));
    QCOMPARE(store->recoverInterrupted(), 1);
    QTRY_VERIFY_WITH_TIMEOUT(markedProcesses(marker).isEmpty(), 30000);
}

QTEST_GUILESS_MAIN(TestRecovery)
#include "tst_recovery.moc"
