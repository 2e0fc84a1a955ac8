// SPDX-License-Identifier: MIT
// The shared queue through real processes: taskdeck start queues, taskdeck worker processes
// claim and run, on a throwaway PostgreSQL server.

#include "pgqueue.h"
#include "pgrunstore.h"
#include "pgtestserver.h"
#include "runstorenotifier.h"
#include "testsupport.h"

#include <QDir>
#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QRegularExpression>
#include <QProcessEnvironment>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <signal.h>

#include <algorithm>
#include <memory>
#include <vector>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

QString taskdeckBin()
{
    return qEnvironmentVariable("TASKDECK_BIN");
}

} // namespace

class TestPgQueue : public QObject
{
    Q_OBJECT

private:
    struct Ran
    {
        int code = -1;
        QString out;
        QString err;
    };

    QProcessEnvironment env(const QString &url, const QString &tasksFile = QString()) const
    {
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(u"TASK_DATABASE_URL"_s, url);
        e.insert(u"TASK_DATA_DIR"_s, m_home.filePath(u"data"_s));
        e.insert(u"HOME"_s, m_home.path());
        // Without a file: none named, and none to find in the working directory (m_home).
        e.remove(u"TASK_FILE"_s);
        if (!tasksFile.isEmpty())
            e.insert(u"TASK_FILE"_s, tasksFile);
        return e;
    }

    Ran taskdeck(const QStringList &args, const QProcessEnvironment &e, const QByteArray &input = {})
    {
        QProcess process;
        process.setProcessEnvironment(e);
        process.setWorkingDirectory(m_home.path());
        process.start(taskdeckBin(), args);
        if (!input.isEmpty())
            process.write(input);
        process.closeWriteChannel();
        Ran ran;
        if (!process.waitForFinished(120000)) {
            process.kill();
            process.waitForFinished();
            return ran;
        }
        ran.code = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
        ran.out = QString::fromUtf8(process.readAllStandardOutput());
        ran.err = QString::fromUtf8(process.readAllStandardError());
        return ran;
    }

    QProcess *startWorker(const QProcessEnvironment &e, const QStringList &extra = {})
    {
        auto *process = new QProcess(this);
        process->setProcessEnvironment(e);
        process->setProcessChannelMode(QProcess::SeparateChannels);
        process->setWorkingDirectory(m_home.path());
        process->start(taskdeckBin(), QStringList{u"worker"_s} + extra);
        m_workers.push_back(process);
        return process;
    }

    // taskdeck with \a args, left running (stopped by cleanup() if the test does not end it).
    QProcess *startTaskdeck(const QProcessEnvironment &e, const QStringList &args)
    {
        auto *process = new QProcess(this);
        process->setProcessEnvironment(e);
        process->setWorkingDirectory(m_home.path());
        process->start(taskdeckBin(), args);
        m_workers.push_back(process);
        return process;
    }

    // Waits until \a process has written \a text on stderr; everything it wrote goes to \a seen.
    static bool waitForErr(QProcess *process, const QByteArray &text, QByteArray *seen, int timeoutMs = 60000)
    {
        QElapsedTimer timer;
        timer.start();
        while (!seen->contains(text)) {
            if (timer.elapsed() > timeoutMs || process->state() == QProcess::NotRunning)
                return seen->append(process->readAllStandardError()).contains(text);
            process->waitForReadyRead(200);
            seen->append(process->readAllStandardError());
        }
        return true;
    }

    // SIGTERM, then wait: a worker lets its runs finish and exits 0.
    bool stopWorker(QProcess *process)
    {
        if (process->state() == QProcess::NotRunning)
            return true;
        process->terminate();
        return process->waitForFinished(60000) && process->exitStatus() == QProcess::NormalExit
            && process->exitCode() == 0;
    }

    QString writeTasks(const QString &name, const QByteArray &yaml)
    {
        QFile file(m_home.filePath(name));
        if (!file.open(QIODevice::WriteOnly))
            return {};
        file.write(yaml);
        return file.fileName();
    }

    QVariant scalar(const QString &url, const QString &sql)
    {
        QVariant value;
        if (!m_pg.exec(url.section(u'/', -1), sql, &value))
            qWarning().noquote() << m_pg.error();
        return value;
    }

    // The stored start times (ms) of the runs of \a task (all runs when empty), in order.
    QList<qint64> startTimes(const QString &url, const QString &task = QString())
    {
        const QString where = task.isEmpty() ? QString() : u" WHERE task = '%1'"_s.arg(task);
        QList<qint64> starts;
        const QStringList stored =
            scalar(url, u"SELECT string_agg(started_at::text, ',') FROM taskdeck_runs"_s + where)
                .toString()
                .split(u',', Qt::SkipEmptyParts);
        for (const QString &start : stored)
            starts << start.toLongLong();
        std::sort(starts.begin(), starts.end());
        return starts;
    }

    // The most of the sorted times \a starts that fall within one second.
    static int mostWithinOneSecond(const QList<qint64> &starts)
    {
        int most = 0;
        for (qsizetype i = 0; i < starts.size(); ++i) {
            int inWindow = 0;
            for (qsizetype j = i; j < starts.size() && starts.at(j) < starts.at(i) + 1000; ++j)
                ++inWindow;
            most = std::max(most, inWindow);
        }
        return most;
    }

    PgTestServer m_pg;
    QTemporaryDir m_home;
    std::vector<QProcess *> m_workers;

private Q_SLOTS:
    void initTestCase();
    void cleanup();
    void workersDrainTheQueue_data();
    void workersDrainTheQueue();
    void startEachQueuesAChunkPerStatement();
    void startWithoutSharedDatabaseRunsHere();
    void workerWithoutTheTaskNeverClaimsIt();
    void perTaskLimitHoldsAcrossWorkers();
    void globalLimitHoldsAcrossWorkers();
    void killedWorkersRunIsReclaimed_data();
    void killedWorkersRunIsReclaimed();
    void followerSeesRunOfAnotherProcess();
    void notificationWakesAWorker();
    void stoppingWorkerHandsBackWhatItHasNotStarted();
    void serverRestartMidRun();
    void startRateHoldsAcrossWorkers();
    void taskStartRateHoldsAcrossWorkers();
    void runFollowsTheRunOnAWorker_data();
    void runFollowsTheRunOnAWorker();
    void runShowsTheProgressOfTheRunOnAWorker();
    void runSaysWhenNoWorkerTakesIt();
    void interruptedRunIsCanceledOnItsWorker();
    void interruptedRunNoWorkerTookEndsAtOnce();
    void cancelFromAnotherProcess();
    void workerFollowsItsTasksFile();
    void workerCutOffPastItsLeaseStops();
    void staleWritesAreRefusedByTheDatabase();
    void claimReadsTheHistoryByIndex();
};

void TestPgQueue::initTestCase()
{
    if (taskdeckBin().isEmpty())
        QSKIP("TASKDECK_BIN is not set (run through ctest)");
    QVERIFY2(m_pg.start(), qPrintable(m_pg.error()));
}

void TestPgQueue::cleanup()
{
    for (QProcess *process : m_workers) {
        if (process->state() != QProcess::NotRunning) {
            process->kill();
            process->waitForFinished();
        }
        delete process;
    }
    m_workers.clear();
}

void TestPgQueue::workersDrainTheQueue_data()
{
    QTest::addColumn<int>("workers");
    QTest::addColumn<int>("runs");
    QTest::newRow("2 workers, 10000 runs") << 2 << 10000;
    QTest::newRow("3 workers, 10000 runs") << 3 << 10000;
}

void TestPgQueue::workersDrainTheQueue()
{
    QFETCH(int, workers);
    QFETCH(int, runs);
    const QString url = m_pg.createDatabase();
    const QProcessEnvironment e = env(url);
    // checksum of a small file: a built-in task that starts no process, so the test measures
    // the queue and not fork().
    const QString input = m_home.filePath(u"input.txt"_s);
    {
        QFile file(input);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write("taskdeck\n");
    }
    QByteArray each;
    for (int i = 0; i < runs; ++i)
        each += QJsonDocument(QJsonObject{{u"file"_s, input}}).toJson(QJsonDocument::Compact) + '\n';
    const Ran started = taskdeck({u"start"_s, u"checksum"_s, u"--each"_s, u"-"_s}, e, each);
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QStringList ids = started.out.split(u'\n', Qt::SkipEmptyParts);
    QCOMPARE(ids.size(), runs);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), runs);

    for (int i = 0; i < workers; ++i)
        startWorker(e, {u"--concurrency"_s, u"8"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0, 240000);
    // A worker that claimed thousands of runs and then found the queue empty vacuumed it, so
    // that the next claims do not step over the burst's dead rows (autovacuum's own runs are
    // counted apart, in autovacuum_count).
    QTRY_VERIFY_WITH_TIMEOUT(scalar(url, u"SELECT vacuum_count FROM pg_stat_user_tables "
                                         "WHERE relname = 'taskdeck_queue'"_s).toInt() >= 1,
                             30000);
    for (QProcess *worker : m_workers)
        QVERIFY2(stopWorker(worker), worker->readAllStandardError().constData());

    // Each run exactly once: one attempt, succeeded, by one of the workers.
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs"_s).toInt(), runs);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded' AND attempt = 1"_s).toInt(),
             runs);
    QCOMPARE(scalar(url, u"SELECT count(DISTINCT owner) FROM taskdeck_runs"_s).toInt(), workers);
    // Spread over the workers: none was left idle while another drained the queue.
    const int fewest = scalar(url, u"SELECT min(n) FROM (SELECT count(*) AS n FROM taskdeck_runs GROUP BY owner) c"_s)
                           .toInt();
    QVERIFY2(fewest >= runs / (workers * 10), qPrintable(u"fewest runs of one worker: %1"_s.arg(fewest)));
    // The ids printed are the runs stored.
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE id IN ('%1', '%2')"_s.arg(ids.first(), ids.last()))
                 .toInt(),
             2);
}

void TestPgQueue::startEachQueuesAChunkPerStatement()
{
    const QString url = m_pg.createDatabase();
    const QProcessEnvironment e = env(url);
    // The first start creates the schema; the statements after it are counted by triggers.
    const Ran first = taskdeck({u"start"_s, u"checksum"_s, u"--arg"_s, u"file=/etc/hostname"_s}, e);
    QVERIFY2(first.code == 0, qPrintable(first.err));
    const QStringList counting = {
        u"CREATE TABLE statements (tbl text NOT NULL)"_s,
        u"CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO statements VALUES (TG_TABLE_NAME); RETURN NULL; END $$"_s,
        u"CREATE TRIGGER count_runs AFTER INSERT ON taskdeck_runs FOR EACH STATEMENT "
        "EXECUTE FUNCTION count_statement()"_s,
        u"CREATE TRIGGER count_queue AFTER INSERT ON taskdeck_queue FOR EACH STATEMENT "
        "EXECUTE FUNCTION count_statement()"_s,
    };
    for (const QString &sql : counting)
        QVERIFY2(m_pg.exec(url.section(u'/', -1), sql), qPrintable(m_pg.error()));

    // 2,500 lines of a file: batches of 1,000, 1,000 and 500 runs, one INSERT statement each.
    const QString each = m_home.filePath(u"each-2500.jsonl"_s);
    {
        QFile file(each);
        QVERIFY(file.open(QIODevice::WriteOnly));
        for (int i = 0; i < 2500; ++i)
            file.write(QJsonDocument(QJsonObject{{u"file"_s, u"/etc/hostname"_s}}).toJson(QJsonDocument::Compact)
                       + '\n');
    }
    const Ran started = taskdeck({u"start"_s, u"checksum"_s, u"--each"_s, each}, e);
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QStringList ids = started.out.split(u'\n', Qt::SkipEmptyParts);
    QCOMPARE(ids.size(), 2500);
    QCOMPARE(QSet<QString>(ids.cbegin(), ids.cend()).size(), 2500);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'queued'"_s).toInt(), 2501);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue q JOIN taskdeck_runs r USING (id) "
                         "WHERE r.task = 'checksum' AND q.task = 'checksum' AND q.max_attempts = r.max_attempts"_s)
                 .toInt(),
             2501);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM statements WHERE tbl = 'taskdeck_runs'"_s).toInt(), 3);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM statements WHERE tbl = 'taskdeck_queue'"_s).toInt(), 3);
    // Each run's arguments are stored with it.
    QVERIFY(scalar(url, u"SELECT args FROM taskdeck_runs WHERE id = '%1'"_s.arg(ids.at(1234)))
                .toString()
                .contains(u"/etc/hostname"_s));
}

void TestPgQueue::startWithoutSharedDatabaseRunsHere()
{
    QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
    e.remove(u"TASK_DATABASE_URL"_s);
    QTemporaryDir data;
    e.insert(u"TASK_DATA_DIR"_s, data.path());
    e.remove(u"TASK_FILE"_s);
    const Ran ran = taskdeck({u"start"_s, u"checksum"_s, u"--arg"_s, u"file=/etc/hostname"_s}, e);
    QCOMPARE(ran.code, 0);
    QVERIFY2(ran.err.contains(u"running here"_s), qPrintable(ran.err));
    const Ran worker = taskdeck({u"worker"_s}, e);
    QCOMPARE(worker.code, 2);
    QVERIFY2(worker.err.contains(u"shared database"_s), qPrintable(worker.err));
}

void TestPgQueue::workerWithoutTheTaskNeverClaimsIt()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"only-here.yml"_s,
                                     "version: 1\ntasks:\n  only-here:\n    title: Only here\n"
                                     "    command: [\"echo\", \"ran\"]\n");
    const QString otherVersion = writeTasks(u"only-here-v2.yml"_s,
                                            "version: 1\ntasks:\n  only-here:\n    title: Only here, changed\n"
                                            "    command: [\"echo\", \"ran\"]\n");
    const Ran started = taskdeck({u"start"_s, u"only-here"_s}, env(url, tasks));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QString id = started.out.trimmed();

    // Without the task, and with another version of the tasks file: neither claims it.
    QProcess *without = startWorker(env(url));
    QProcess *other = startWorker(env(url, otherVersion));
    QTest::qWait(5000); // two polls and the LISTEN wake-up of the start
    QCOMPARE(without->state(), QProcess::Running);
    QCOMPARE(other->state(), QProcess::Running);
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(), u"queued"_s);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NULL"_s).toInt(), 1);

    QProcess *right = startWorker(env(url, tasks));
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"succeeded"_s, 60000);
    QCOMPARE(scalar(url, u"SELECT owner FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString().section(u'@', 0, 0),
             QString::number(right->processId()));
}

void TestPgQueue::perTaskLimitHoldsAcrossWorkers()
{
    const QString url = m_pg.createDatabase();
    const QString lockDir = m_home.filePath(u"limited.lock"_s);
    const QString overlaps = m_home.filePath(u"overlaps.txt"_s);
    QFile::remove(overlaps);
    const QString tasks = writeTasks(
        u"limited.yml"_s,
        u"version: 1\ntasks:\n  limited:\n    title: Limited\n    max_concurrent: 1\n"
        u"    shell: |\n      mkdir '%1' 2>/dev/null || echo overlap >> '%2'\n      sleep 0.3\n"
        u"      rmdir '%1' 2>/dev/null\n      exit 0\n"_s.arg(lockDir, overlaps).toUtf8());
    QByteArray each;
    for (int i = 0; i < 8; ++i)
        each += "{}\n";
    const Ran started = taskdeck({u"start"_s, u"limited"_s, u"--each"_s, u"-"_s}, env(url, tasks), each);
    QVERIFY2(started.code == 0, qPrintable(started.err));
    startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s});
    startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'"_s).toInt(),
                              8, 120000);
    QVERIFY2(!QFile::exists(overlaps), "two runs of a task limited to one ran at once");
}

void TestPgQueue::globalLimitHoldsAcrossWorkers()
{
    const QString url = m_pg.createDatabase();
    const QString counter = m_home.filePath(u"running"_s);
    const QString overlaps = m_home.filePath(u"global-overlaps.txt"_s);
    QDir().mkpath(counter);
    QFile::remove(overlaps);
    // Each run leaves a file while it runs; a third file at once is one run too many.
    const QString tasks = writeTasks(
        u"global.yml"_s,
        u"version: 1\ntasks:\n  one:\n    title: One\n    shell: |\n      f='%1'/$$; touch \"$f\"\n"
        u"      [ $(ls '%1' | wc -l) -gt 2 ] && echo overlap >> '%2'\n      sleep 0.3; rm -f \"$f\"\n"
        u"  two:\n    title: Two\n    shell: |\n      f='%1'/$$; touch \"$f\"\n"
        u"      [ $(ls '%1' | wc -l) -gt 2 ] && echo overlap >> '%2'\n      sleep 0.3; rm -f \"$f\"\n"_s
            .arg(counter, overlaps)
            .toUtf8());
    QByteArray each;
    for (int i = 0; i < 6; ++i)
        each += "{}\n";
    for (const QString &key : {u"one"_s, u"two"_s}) {
        const Ran started = taskdeck({u"start"_s, key, u"--each"_s, u"-"_s}, env(url, tasks), each);
        QVERIFY2(started.code == 0, qPrintable(started.err));
    }
    // The limit is the queue's: given to one worker, stored, obeyed by the others too.
    QProcess *first = startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s, u"--max-running"_s, u"2"_s});
    QByteArray said;
    QVERIFY2(waitForErr(first, "at most 2 running", &said), said.constData());
    QCOMPARE(scalar(url, u"SELECT value FROM taskdeck_limits WHERE name = 'max_running'"_s).toInt(), 2);
    for (int i = 0; i < 2; ++i)
        startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'"_s).toInt(),
                              12, 120000);
    QVERIFY2(!QFile::exists(overlaps), "more than two runs at once under --max-running 2");
}

void TestPgQueue::killedWorkersRunIsReclaimed_data()
{
    QTest::addColumn<int>("maxAttempts");
    QTest::addColumn<QString>("finalStatus");
    QTest::newRow("no retry: interrupted") << 1 << u"interrupted"_s;
    QTest::newRow("retry: second attempt") << 2 << u"succeeded"_s;
}

void TestPgQueue::killedWorkersRunIsReclaimed()
{
    QFETCH(int, maxAttempts);
    QFETCH(QString, finalStatus);
    const QString url = m_pg.createDatabase();
    const QString flag = m_home.filePath(u"attempt-%1.flag"_s.arg(maxAttempts));
    const QString starts = m_home.filePath(u"starts-%1.txt"_s.arg(maxAttempts));
    QFile::remove(flag);
    QFile::remove(starts);
    // The first attempt hangs (its worker is killed under it); a second one ends at once.
    const QString tasks = writeTasks(
        u"sticky-%1.yml"_s.arg(maxAttempts),
        u"version: 1\ntasks:\n  sticky:\n    title: Sticky\n%3"
        u"    shell: |\n      echo start >> '%2'\n      if [ -e '%1' ]; then exit 0; fi\n      touch '%1'\n"
        u"      sleep 8\n"_s.arg(flag, starts, maxAttempts > 1 ? u"    retries: %1\n"_s.arg(maxAttempts - 1) : QString())
            .toUtf8());
    const Ran started = taskdeck({u"start"_s, u"sticky"_s}, env(url, tasks));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QString id = started.out.trimmed();

    QProcess *first = startWorker(env(url, tasks), {u"--lease"_s, u"1500ms"_s});
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(flag), 60000);
    ::kill(pid_t(first->processId()), SIGKILL);
    QVERIFY(first->waitForFinished());

    // Another worker takes the run back once the lease is over, never before.
    startWorker(env(url, tasks), {u"--lease"_s, u"1500ms"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              finalStatus, 60000);
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0, 30000);
    QFile log(starts);
    QVERIFY(log.open(QIODevice::ReadOnly));
    // Each attempt started exactly once.
    QCOMPARE(log.readAll().count("start"), maxAttempts);
    if (maxAttempts == 1) {
        const QString error = scalar(url, u"SELECT error_message FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString();
        QVERIFY2(error.contains(u"lease expired"_s), qPrintable(error));
    } else {
        QCOMPARE(scalar(url, u"SELECT attempt FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toInt(), 2);
    }
}

void TestPgQueue::followerSeesRunOfAnotherProcess()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(
        u"chatty.yml"_s,
        "version: 1\ntasks:\n  chatty:\n    title: Chatty\n    shell: |\n"
        "      i=1\n      while [ $i -le 300 ]; do echo \"line $i\"; i=$((i+1));"
        " if [ $((i % 50)) -eq 0 ]; then sleep 0.3; fi; done\n");
    QString error;
    auto store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));
    QString runId;
    qint64 seen = 0;
    LogLines lines;
    int readsWhileRunning = 0;
    connect(store->notifier(), &RunStoreNotifier::runsChanged, this, [&](const QStringList &ids) {
        if (runId.isEmpty() || !ids.contains(runId))
            return;
        const std::optional<Run> run = store->findRun(runId);
        for (;;) {
            const LogLines part = store->readLogAfterSeq(runId, seen, 100);
            if (part.isEmpty())
                break;
            for (const LogLine &line : part) {
                QVERIFY(line.seq > seen); // in sequence order, each once
                seen = line.seq;
                lines.append(line);
            }
            if (run && run->status == RunStatus::Running)
                ++readsWhileRunning;
        }
    });
    startWorker(env(url, tasks));
    const Ran started = taskdeck({u"start"_s, u"chatty"_s}, env(url, tasks));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    runId = started.out.trimmed();
    QTRY_COMPARE_WITH_TIMEOUT(store->findRun(runId).value_or(Run()).status, RunStatus::Succeeded, 60000);
    QTRY_COMPARE_WITH_TIMEOUT(lines.size(), 300, 30000);
    for (qsizetype i = 0; i < lines.size(); ++i)
        QCOMPARE(lines.at(i).text, u"line %1"_s.arg(i + 1));
    QVERIFY2(readsWhileRunning > 0, "the log arrived only after the run had finished");
}

void TestPgQueue::notificationWakesAWorker()
{
    const QString url = m_pg.createDatabase();
    // A worker that would look at the queue on its own only in an hour, started before the run.
    QProcess *worker = startWorker(env(url), {u"--poll"_s, u"1h"_s});
    QByteArray said;
    QTRY_VERIFY_WITH_TIMEOUT((said += worker->readAllStandardError()).contains("running queued runs"), 60000);
    QTest::qWait(500); // its LISTEN is in place once it has said so and claimed nothing
    const Ran started = taskdeck({u"start"_s, u"checksum"_s, u"--arg"_s, u"file=/etc/hostname"_s}, env(url));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QString id = started.out.trimmed();
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"succeeded"_s, 60000);
    QVERIFY(stopWorker(worker));
}

void TestPgQueue::stoppingWorkerHandsBackWhatItHasNotStarted()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"slowish.yml"_s,
                                     "version: 1\ntasks:\n  slowish:\n    title: Slowish\n"
                                     "    shell: sleep 2\n");
    const Ran started = taskdeck({u"start"_s, u"slowish"_s, u"--each"_s, u"-"_s}, env(url, tasks), "{}\n{}\n{}\n{}\n");
    QVERIFY2(started.code == 0, qPrintable(started.err));
    // One at a time, two held: one running, one waiting in the worker.
    QProcess *worker = startWorker(env(url, tasks), {u"--concurrency"_s, u"1"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'running'"_s).toInt(), 1,
                              60000);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NOT NULL"_s).toInt(), 2);
    QVERIFY(stopWorker(worker));
    // The running one finished; the other three wait for another worker, untouched.
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'"_s).toInt(), 1);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue WHERE locked_by IS NULL AND attempt = 0"_s).toInt(), 3);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'queued' AND attempt = 0"_s).toInt(), 3);
    const QString err = QString::fromUtf8(worker->readAllStandardError());
    QVERIFY2(err.contains(u"handed 1 runs back"_s), qPrintable(err));
}

void TestPgQueue::serverRestartMidRun()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(
        u"slow.yml"_s,
        "version: 1\ntasks:\n  slow:\n    title: Slow\n    shell: |\n      echo before\n      sleep 4\n      echo after\n");
    const Ran started = taskdeck({u"start"_s, u"slow"_s}, env(url, tasks));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QString id = started.out.trimmed();
    QProcess *worker = startWorker(env(url, tasks));
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"running"_s, 60000);
    QVERIFY(m_pg.stopServer(u"fast"_s));
    QTest::qWait(2500);
    QVERIFY2(m_pg.startServer(), qPrintable(m_pg.error()));
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"succeeded"_s, 60000);
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0, 30000);
    QCOMPARE(scalar(url, u"SELECT log_lines FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toInt(), 2);
    QVERIFY(stopWorker(worker));
    const QString err = QString::fromUtf8(worker->readAllStandardError());
    QVERIFY2(err.contains(u"reconnecting"_s), qPrintable(err));
}

void TestPgQueue::startRateHoldsAcrossWorkers()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"tick.yml"_s, "version: 1\ntasks:\n  tick:\n    title: Tick\n"
                                                    "    command: [\"true\"]\n");
    QByteArray each;
    for (int i = 0; i < 30; ++i)
        each += "{}\n";
    const Ran started = taskdeck({u"start"_s, u"tick"_s, u"--each"_s, u"-"_s}, env(url, tasks), each);
    QVERIFY2(started.code == 0, qPrintable(started.err));
    // 5 starts a second for the whole queue, in bursts of 5; each worker could start 4 at once
    // and, on its own, 5 a second.
    QProcess *first = startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s, u"--start-rate"_s, u"5/s"_s});
    QProcess *second = startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s, u"--start-rate"_s, u"5/s"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'"_s).toInt(),
                              30, 120000);
    QVERIFY(stopWorker(first));
    QVERIFY(stopWorker(second));
    QCOMPARE(scalar(url, u"SELECT value FROM taskdeck_limits WHERE name = 'start_rate'"_s).toDouble(), 5.0);
    // Both workers took part.
    QCOMPARE(scalar(url, u"SELECT count(DISTINCT owner) FROM taskdeck_runs"_s).toInt(), 2);

    // The stored start times: in any second, at most one burst (5) plus a second's worth (5) of
    // claims, and one more for a start's delay after its claim (the worker's clock, not the
    // server's). Each worker on its own would have started 10 at once and 10 a second.
    const QList<qint64> starts = startTimes(url);
    QCOMPARE(starts.size(), 30);
    const int most = mostWithinOneSecond(starts);
    const qint64 span = starts.last() - starts.first();
    qInfo().noquote() << u"30 starts over %1 ms, at most %2 within one second"_s.arg(span).arg(most);
    QVERIFY2(most <= 11, qPrintable(u"%1 starts within one second"_s.arg(most)));
    // 30 starts at 5 a second after a burst of 5 take 5 s; 4 s allows for a start's delay
    // after its claim. Each worker on its own would have taken half that.
    QVERIFY2(span >= 4000, qPrintable(u"30 starts within %1 ms"_s.arg(span)));
}

void TestPgQueue::taskStartRateHoldsAcrossWorkers()
{
    const QString url = m_pg.createDatabase();
    // A start rate that is not N/s or N/m is an error of the tasks file, like any other field.
    const QString wrong = writeTasks(u"wrong-rate.yml"_s, "version: 1\ntasks:\n  rated:\n    title: Rated\n"
                                                          "    start_rate: fast\n    command: [\"true\"]\n");
    const Ran refused = taskdeck({u"worker"_s}, env(url, wrong));
    QCOMPARE(refused.code, 2);
    QVERIFY2(refused.err.contains(u"start_rate"_s) && refused.err.contains(u"N/s or N/m"_s), qPrintable(refused.err));

    // One task with a start rate of its own, one without: the rate holds the one back, for both
    // workers together, and not the other.
    const QString tasks = writeTasks(u"rated.yml"_s, "version: 1\ntasks:\n"
                                                     "  rated:\n    title: Rated\n    start_rate: 5/s\n"
                                                     "    command: [\"true\"]\n"
                                                     "  free:\n    title: Free\n    command: [\"true\"]\n");
    QByteArray each;
    for (int i = 0; i < 25; ++i)
        each += "{}\n";
    for (const QString &task : {u"rated"_s, u"free"_s}) {
        const Ran started = taskdeck({u"start"_s, task, u"--each"_s, u"-"_s}, env(url, tasks), each);
        QVERIFY2(started.code == 0, qPrintable(started.err));
    }
    QProcess *first = startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s});
    QProcess *second = startWorker(env(url, tasks), {u"--concurrency"_s, u"4"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'"_s).toInt(),
                              50, 120000);
    QVERIFY(stopWorker(first));
    QVERIFY(stopWorker(second));
    QCOMPARE(scalar(url, u"SELECT value FROM taskdeck_limits WHERE name = 'task_rate:rated'"_s).toDouble(), 5.0);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_limits WHERE name <> 'task_rate:rated'"_s).toInt(), 0);
    QCOMPARE(scalar(url, u"SELECT count(DISTINCT owner) FROM taskdeck_runs"_s).toInt(), 2);

    const QList<qint64> rated = startTimes(url, u"rated"_s);
    const QList<qint64> free = startTimes(url, u"free"_s);
    QCOMPARE(rated.size(), 25);
    QCOMPARE(free.size(), 25);
    const int most = mostWithinOneSecond(rated);
    const qint64 span = rated.last() - rated.first();
    qInfo().noquote() << u"25 rated starts over %1 ms, at most %2 within one second; 25 free ones over %3 ms"_s
                             .arg(span)
                             .arg(most)
                             .arg(free.last() - free.first());
    // In any second at most one burst (5) plus a second's worth (5), and one more for a start's
    // delay after its claim; 25 starts after a burst of 5 take 4 s at 5 a second (3 s allows
    // for that delay). The task without a rate is not held back: it is done before.
    QVERIFY2(most <= 11, qPrintable(u"%1 rated starts within one second"_s.arg(most)));
    QVERIFY2(span >= 3000, qPrintable(u"25 rated starts within %1 ms"_s.arg(span)));
    QVERIFY2(free.last() < rated.last(), "the task without a start rate waited for the rated one");
}

void TestPgQueue::runFollowsTheRunOnAWorker_data()
{
    QTest::addColumn<QString>("script");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QString>("status");
    QTest::newRow("succeeds") << u"echo first line; sleep 0.5; echo second line"_s << 0 << u"succeeded"_s;
    QTest::newRow("fails") << u"echo first line; sleep 0.5; echo second line; exit 3"_s << 1 << u"failed"_s;
}

void TestPgQueue::runFollowsTheRunOnAWorker()
{
    QFETCH(QString, script);
    QFETCH(int, exitCode);
    QFETCH(QString, status);
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"follow-%1.yml"_s.arg(exitCode),
                                     u"version: 1\ntasks:\n  talk:\n    title: Talk\n    shell: %1\n"_s.arg(script)
                                         .toUtf8());
    QProcess *worker = startWorker(env(url, tasks));
    const Ran ran = taskdeck({u"run"_s, u"talk"_s}, env(url, tasks));
    QCOMPARE(ran.code, exitCode);
    QVERIFY2(ran.out.startsWith(u"first line\nsecond line\n"_s), qPrintable(ran.out));
    QVERIFY2(ran.err.contains(u"queued for a worker"_s), qPrintable(ran.err));
    const QString id = ran.err.section(u"run "_s, 1).section(u' ', 0, 0);
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(), status);
    // It ran on the worker, not in the process that followed it.
    QCOMPARE(scalar(url, u"SELECT owner FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString().section(u'@', 0, 0),
             QString::number(worker->processId()));

    // --local runs it here.
    const Ran local = taskdeck({u"run"_s, u"talk"_s, u"--local"_s}, env(url, tasks));
    QCOMPARE(local.code, exitCode);
    QVERIFY2(!local.err.contains(u"queued for a worker"_s), qPrintable(local.err));
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs"_s).toInt(), 2);
    QVERIFY(stopWorker(worker));
}

void TestPgQueue::runShowsTheProgressOfTheRunOnAWorker()
{
    const QString url = m_pg.createDatabase();
    // Each report stays long enough for the follower to read the row the worker wrote.
    const QString tasks = writeTasks(
        u"progress.yml"_s,
        "version: 1\ntasks:\n  steps:\n    title: Steps\n    shell: |\n"
        "      echo '::progress::1/4 first step'; sleep 0.8\n"
        "      echo '::progress::2/4'; sleep 0.8\n"
        "      echo '::progress::3/4 third step'; sleep 0.8\n"
        "      echo done\n");
    QProcess *worker = startWorker(env(url, tasks));
    const Ran ran = taskdeck({u"run"_s, u"steps"_s}, env(url, tasks));
    QCOMPARE(ran.code, 0);
    QVERIFY2(ran.err.contains(u"queued for a worker"_s), qPrintable(ran.err));
    // As a local run shows it on a stderr that is not a terminal: one line per change.
    QVERIFY2(ran.err.contains(u"progress: 25% first step\n"_s), qPrintable(ran.err));
    QVERIFY2(ran.err.contains(u"progress: 50%\n"_s), qPrintable(ran.err));
    QVERIFY2(ran.err.contains(u"progress: 75% third step\n"_s), qPrintable(ran.err));
    QCOMPARE(ran.err.count(u"progress: 75% third step"_s), 1);
    QVERIFY2(ran.err.indexOf(u"progress: 25%"_s) < ran.err.indexOf(u"progress: 75%"_s), qPrintable(ran.err));
    QVERIFY2(ran.out.contains(u"done\n"_s), qPrintable(ran.out));
    QVERIFY(stopWorker(worker));
}

void TestPgQueue::runSaysWhenNoWorkerTakesIt()
{
    const QString url = m_pg.createDatabase();
    QProcess *run = startTaskdeck(env(url), {u"run"_s, u"checksum"_s, u"--arg"_s, u"file=/etc/hostname"_s});
    QByteArray err;
    QVERIFY2(waitForErr(run, "waiting for a worker", &err), err.constData());
    QCOMPARE(run->state(), QProcess::Running);
    QCOMPARE(err.count("waiting for a worker"), 1);
    startWorker(env(url));
    QVERIFY(run->waitForFinished(60000));
    QCOMPARE(run->exitCode(), 0);
    err += run->readAllStandardError();
    QCOMPARE(err.count("waiting for a worker"), 1); // said once
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs"_s).toString(), u"succeeded"_s);
}

void TestPgQueue::interruptedRunIsCanceledOnItsWorker()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"long.yml"_s, "version: 1\ntasks:\n  long:\n    title: Long\n"
                                                    "    shell: echo started; sleep 300\n");
    QProcess *worker = startWorker(env(url, tasks));
    QProcess *run = startTaskdeck(env(url, tasks), {u"run"_s, u"long"_s});
    QTRY_VERIFY_WITH_TIMEOUT(run->readAllStandardOutput().contains("started")
                                 || scalar(url, u"SELECT log_lines FROM taskdeck_runs"_s).toInt() > 0,
                             60000);
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs"_s).toString(), u"running"_s);
    ::kill(pid_t(run->processId()), SIGINT);
    QVERIFY(run->waitForFinished(60000));
    QCOMPARE(run->exitStatus(), QProcess::NormalExit);
    QCOMPARE(run->exitCode(), 1);
    const QString err = QString::fromUtf8(run->readAllStandardError());
    QVERIFY2(err.contains(u"canceling on its worker"_s), qPrintable(err));
    // Canceled on the worker, which goes on.
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs"_s).toString(), u"canceled"_s);
    QCOMPARE(scalar(url, u"SELECT owner FROM taskdeck_runs"_s).toString().section(u'@', 0, 0),
             QString::number(worker->processId()));
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0, 30000);
    QCOMPARE(worker->state(), QProcess::Running);
    QVERIFY(stopWorker(worker));
}

void TestPgQueue::interruptedRunNoWorkerTookEndsAtOnce()
{
    const QString url = m_pg.createDatabase();
    QProcess *run = startTaskdeck(env(url), {u"run"_s, u"checksum"_s, u"--arg"_s, u"file=/etc/hostname"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 1, 60000);
    QTest::qWait(500); // its signal handler is in place once it queued and follows
    ::kill(pid_t(run->processId()), SIGINT);
    QVERIFY(run->waitForFinished(60000));
    QCOMPARE(run->exitCode(), 1);
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs"_s).toString(), u"canceled"_s);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0);
}

// Runs queued with a shared database can be canceled from any process: taskdeck cancel, and
// the admin server of a process that does not run them (what its pages' Cancel button sends).
void TestPgQueue::cancelFromAnotherProcess()
{
    const QString url = m_pg.createDatabase();
    const QString tasks = writeTasks(u"cancel.yml"_s, "version: 1\ntasks:\n  long:\n    title: Long\n"
                                                      "    shell: echo started; sleep 300\n");
    const QProcessEnvironment e = env(url, tasks);
    auto status = [&](const QString &id) {
        return scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString();
    };
    auto startLong = [&]() {
        const Ran started = taskdeck({u"start"_s, u"long"_s}, e);
        return started.code == 0 ? started.out.trimmed() : QString();
    };

    // The admin server: it runs nothing of the queue's, it only serves.
    QProcess *serve = startTaskdeck(e, {u"serve"_s, u"--listen"_s, u"127.0.0.1:0"_s});
    QByteArray printed;
    const QRegularExpression loginLine(u"log in: (http://127\\.0\\.0\\.1:\\d+)/login\\?token=([0-9a-f]+)"_s);
    QRegularExpressionMatch login;
    QTRY_VERIFY_WITH_TIMEOUT((printed += serve->readAllStandardOutput(),
                              (login = loginLine.match(QString::fromUtf8(printed))).hasMatch()),
                             60000);
    const QString base = login.captured(1);
    const QByteArray token = login.captured(2).toLatin1();
    QNetworkAccessManager network;
    auto post = [&](const QString &path, QByteArray *body) {
        QNetworkRequest request(QUrl(base + path));
        request.setRawHeader("Authorization", "Bearer " + token);
        QNetworkReply *reply = network.post(request, QByteArray());
        QSignalSpy done(reply, &QNetworkReply::finished);
        if (!reply->isFinished() && !done.wait(30000))
            return -1;
        *body = reply->readAll();
        reply->deleteLater();
        return reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    };

    // Waiting in the queue, no worker running: canceled at once, from the command line.
    const QString waiting = startLong();
    QVERIFY(!waiting.isEmpty());
    Ran ran = taskdeck({u"cancel"_s, waiting}, e);
    QVERIFY2(ran.code == 0 && ran.out.contains(u"no worker had started it"_s), qPrintable(ran.out + ran.err));
    QCOMPARE(status(waiting), u"canceled"_s);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0);
    // A second time: it has finished, which is said, and nothing changes.
    ran = taskdeck({u"cancel"_s, waiting}, e);
    QCOMPARE(ran.code, 1);
    QVERIFY2(ran.err.contains(u"has finished already (canceled)"_s), qPrintable(ran.err));
    ran = taskdeck({u"cancel"_s, u"01a22ecd-a23d-7000-b4f9-f2084916b0ff"_s}, e);
    QCOMPARE(ran.code, 2);
    QVERIFY2(ran.err.contains(u"no run with id"_s), qPrintable(ran.err));

    // On a worker: taskdeck cancel asks the worker, which cancels it and goes on.
    QProcess *worker = startWorker(e);
    const QString onWorker = startLong();
    QVERIFY(!onWorker.isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(status(onWorker), u"running"_s, 60000);
    ran = taskdeck({u"cancel"_s, onWorker}, e);
    QVERIFY2(ran.code == 0 && ran.out.contains(u"its worker was asked"_s), qPrintable(ran.out + ran.err));
    QTRY_COMPARE_WITH_TIMEOUT(status(onWorker), u"canceled"_s, 60000);

    // On a worker, from the admin server: 202, then canceled by the worker; then 409.
    const QString fromWeb = startLong();
    QVERIFY(!fromWeb.isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(status(fromWeb), u"running"_s, 60000);
    QByteArray body;
    QCOMPARE(post(u"/admin/run/%1/cancel"_s.arg(fromWeb), &body), 202);
    QCOMPARE(QJsonDocument::fromJson(body).object().value(u"canceling"_s).toBool(), true);
    QTRY_COMPARE_WITH_TIMEOUT(status(fromWeb), u"canceled"_s, 60000);
    QCOMPARE(scalar(url, u"SELECT owner FROM taskdeck_runs WHERE id = '%1'"_s.arg(fromWeb)).toString().section(u'@', 0, 0),
             QString::number(worker->processId()));
    QCOMPARE(post(u"/admin/run/%1/cancel"_s.arg(fromWeb), &body), 409);
    QVERIFY2(body.contains("has finished already"), body.constData());
    QCOMPARE(post(u"/admin/run/01a22ecd-a23d-7000-b4f9-f2084916b0ff/cancel"_s, &body), 404);

    // The worker went on through all of it.
    QCOMPARE(worker->state(), QProcess::Running);
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0, 30000);
    QVERIFY(stopWorker(worker));
    QVERIFY(stopWorker(serve));
}

// A worker follows its tasks file: once it changes, runs queued with the new file are its to
// take, and they run the new definition; a run it had claimed at the earlier version and not
// started goes back to the queue, for a worker that still has that version.
void TestPgQueue::workerFollowsItsTasksFile()
{
    const QString url = m_pg.createDatabase();
    const QString release = m_home.filePath(u"follow.release"_s);
    QFile::remove(release);
    const auto tasksYaml = [&](const char *word) {
        return u"version: 1\ntasks:\n  say:\n    title: Say\n    shell: echo %1\n"
               u"  hold:\n    title: Hold\n    shell: while [ ! -e '%2' ]; do sleep 0.05; done\n"_s
            .arg(QLatin1String(word), release)
            .toUtf8();
    };
    const QString tasks = writeTasks(u"follow.yml"_s, tasksYaml("first-version"));
    const QProcessEnvironment e = env(url, tasks);
    auto column = [&](const QString &sql, const QString &id) { return scalar(url, sql.arg(id)).toString(); };
    auto startOne = [&](const QString &key) {
        const Ran started = taskdeck({u"start"_s, key}, e);
        return started.code == 0 ? started.out.trimmed() : QString();
    };
    auto runOnce = [&](const QByteArray &expected) {
        const QString id = startOne(u"say"_s);
        if (id.isEmpty())
            return u"start failed"_s;
        QElapsedTimer waited;
        waited.start();
        while (column(u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s, id) != u"succeeded") {
            if (waited.elapsed() > 60000)
                return u"run %1 did not succeed"_s.arg(id);
            QTest::qWait(50);
        }
        const Ran log = taskdeck({u"log"_s, id}, e);
        return log.out.contains(QString::fromLatin1(expected)) ? QString() : u"its log: "_s + log.out;
    };
    QProcess *worker = startWorker(e, {u"--concurrency"_s, u"1"_s});
    QString problem = runOnce("first-version");
    QVERIFY2(problem.isEmpty(), qPrintable(problem));

    // One run holds the worker's only slot; the next is claimed and waits there.
    const QString holding = startOne(u"hold"_s);
    QTRY_COMPARE_WITH_TIMEOUT(column(u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s, holding), u"running"_s,
                              60000);
    const QString earlier = startOne(u"say"_s);
    QVERIFY(!earlier.isEmpty());
    QTRY_VERIFY_WITH_TIMEOUT(!column(u"SELECT locked_by FROM taskdeck_queue WHERE id = '%1'"_s, earlier).isEmpty(),
                             60000);

    QVERIFY(!writeTasks(u"follow.yml"_s, tasksYaml("second-version")).isEmpty());
    QByteArray said;
    QVERIFY2(waitForErr(worker, "follow.yml changed", &said), said.constData());
    // Claimed at the earlier version, not started: back in the queue, as it was.
    QTRY_VERIFY_WITH_TIMEOUT(column(u"SELECT locked_by FROM taskdeck_queue WHERE id = '%1'"_s, earlier).isEmpty(),
                             30000);
    QCOMPARE(column(u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s, earlier), u"queued"_s);
    // The running one goes on as it began.
    QVERIFY(QFile(release).open(QIODevice::WriteOnly));
    QTRY_COMPARE_WITH_TIMEOUT(column(u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s, holding),
                              u"succeeded"_s, 60000);

    problem = runOnce("second-version");
    QVERIFY2(problem.isEmpty(), qPrintable(problem));
    // No worker has the earlier file any more: that run still waits.
    QCOMPARE(column(u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s, earlier), u"queued"_s);
    QCOMPARE(worker->state(), QProcess::Running);
    QVERIFY(stopWorker(worker));
}

void TestPgQueue::workerCutOffPastItsLeaseStops()
{
    const QString url = m_pg.createDatabase();
    const QString done = m_home.filePath(u"cut-off.done"_s);
    QFile::remove(done);
    const QString tasks = writeTasks(
        u"cut-off.yml"_s,
        u"version: 1\ntasks:\n  cut:\n    title: Cut off\n    shell: |\n      echo start\n      sleep 3\n"
        u"      touch '%1'\n      echo done\n"_s.arg(done).toUtf8());
    const Ran started = taskdeck({u"start"_s, u"cut"_s}, env(url, tasks));
    QVERIFY2(started.code == 0, qPrintable(started.err));
    const QString id = started.out.trimmed();
    QProcess *stale = startWorker(env(url, tasks), {u"--lease"_s, u"1500ms"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"running"_s, 60000);
    // Frozen past its lease: another worker takes the run back (no retries: interrupted).
    ::kill(pid_t(stale->processId()), SIGSTOP);
    QProcess *other = startWorker(env(url, tasks), {u"--lease"_s, u"1500ms"_s});
    QTRY_COMPARE_WITH_TIMEOUT(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(),
                              u"interrupted"_s, 60000);
    const qint64 finishedAt = scalar(url, u"SELECT finished_at FROM taskdeck_runs WHERE id = '%1'"_s.arg(id))
                                  .toLongLong();
    // The command ran on meanwhile and ended; then the frozen worker goes on.
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(done), 60000);
    ::kill(pid_t(stale->processId()), SIGCONT);
    QByteArray err;
    QVERIFY2(waitForErr(stale, "lost the claim", &err, 30000) || err.contains("was no longer held"), err.constData());
    QTest::qWait(1500); // what it might still write has had the time to arrive
    err += stale->readAllStandardError();
    qInfo().noquote() << u"the worker cut off said:\n"_s + QString::fromUtf8(err).trimmed();
    // Ended once, as the recovery wrote it: the stale worker's end was not stored.
    QCOMPARE(scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString(), u"interrupted"_s);
    QCOMPARE(scalar(url, u"SELECT finished_at FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toLongLong(), finishedAt);
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_queue"_s).toInt(), 0);
    QVERIFY(stopWorker(stale));
    QVERIFY(stopWorker(other));
}

void TestPgQueue::staleWritesAreRefusedByTheDatabase()
{
    const QString url = m_pg.createDatabase();
    QString error;
    auto store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));
    auto status = [&](const QString &id) {
        return scalar(url, u"SELECT status FROM taskdeck_runs WHERE id = '%1'"_s.arg(id)).toString();
    };
    PgQueue producer(store->connectionInfo(), QString());
    QVERIFY2(producer.open(&error), qPrintable(error));
    const std::optional<QStringList> ids = producer.enqueue({{u"t"_s, QJsonObject(), u"v1"_s, 2}}, &error);
    QVERIFY2(ids && ids->size() == 1, qPrintable(error));
    const QString id = ids->constFirst();
    const QList<ClaimScope> scopes{{u"v1"_s, {{u"t"_s, 0}}}};

    // Worker a claims it under a short lease and stores its start.
    PgQueue a(store->connectionInfo(), u"worker-a"_s);
    QVERIFY2(a.open(&error), qPrintable(error));
    QCOMPARE(a.claim(scopes, 1, 50ms, &error).value_or(QList<ClaimedRun>()).size(), 1);
    Run run;
    run.id = id;
    run.task = u"t"_s;
    run.status = RunStatus::Running;
    run.owner = u"worker-a"_s;
    run.attempt = 1;
    run.maxAttempts = 2;
    run.queuedAt = QDateTime::currentDateTimeUtc();
    run.startedAt = run.queuedAt;
    run.seq = 2;
    store->recordStarted(run);
    QVERIFY(store->flush(10s));
    QCOMPARE(status(id), u"running"_s);

    // Its lease runs out; worker b takes the run back and claims the second attempt.
    QTest::qWait(200);
    PgQueue b(store->connectionInfo(), u"worker-b"_s);
    QVERIFY2(b.open(&error), qPrintable(error));
    QCOMPARE(b.reclaimExpired(&error), 1);
    QCOMPARE(status(id), u"queued"_s);
    QCOMPARE(b.claim(scopes, 1, 30000ms, &error).value_or(QList<ClaimedRun>()).size(), 1);
    // Worker a renews: the run is not its own any more.
    QCOMPARE(a.renewHeld({id}, 30000ms, &error).value_or(QStringList{u"?"_s}), QStringList());

    // a's end arrives late: the database refuses it.
    run.status = RunStatus::Succeeded;
    run.finishedAt = QDateTime::currentDateTimeUtc();
    run.seq = 3;
    store->recordFinished(run, {});
    QVERIFY(store->flush(10s));
    QCOMPARE(status(id), u"queued"_s);
    QVERIFY2(m_pg.serverLog().contains(u"refused a write of run %1 by worker-a"_s.arg(id)), qPrintable(m_pg.serverLog()));

    // b's writes pass, and its end is the one that stands.
    Run second = run;
    second.owner = u"worker-b"_s;
    second.status = RunStatus::Running;
    second.attempt = 2;
    second.finishedAt = QDateTime();
    second.seq = 4;
    store->recordStarted(second);
    second.status = RunStatus::Failed;
    second.finishedAt = QDateTime::currentDateTimeUtc();
    second.seq = 5;
    store->recordFinished(second, {});
    QVERIFY(store->flush(10s));
    QCOMPARE(status(id), u"failed"_s);
    // A second end, even by the claim's holder, is refused: a run ends once.
    Run again = second;
    again.status = RunStatus::Succeeded;
    again.finishedAt = second.finishedAt.addSecs(5);
    again.seq = 6;
    store->recordFinished(again, {});
    QVERIFY(store->flush(10s));
    QCOMPARE(status(id), u"failed"_s);
    QVERIFY2(m_pg.serverLog().contains(u"refused a second end of run %1"_s.arg(id)), qPrintable(m_pg.serverLog()));

    // Only the holder takes it off the queue.
    QCOMPARE(a.finishHeld({id}, &error).value_or(QStringList{u"?"_s}), QStringList());
    QCOMPARE(b.finishHeld({id}, &error).value_or(QStringList()), QStringList{id});
}

// A claim reads the history rows of the runs it takes by their key, however large the history:
// a plan that scans the whole history (a hash join, which the planner picks for a large batch)
// would make every claim slower as the history grows.
void TestPgQueue::claimReadsTheHistoryByIndex()
{
    const QString url = m_pg.createDatabase();
    QString error;
    auto store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));
    PgQueue producer(store->connectionInfo(), QString());
    QVERIFY2(producer.open(&error), qPrintable(error));
    // A queue of a burst (with a short one, the planner picks the lookups anyway).
    QList<NewQueuedRun> batch;
    for (int i = 0; i < 20000; ++i)
        batch.append({u"t"_s, QJsonObject{{u"i"_s, i}}, u"v1"_s, 1});
    const std::optional<QStringList> ids = producer.enqueue(batch, &error);
    QVERIFY2(ids && ids->size() == 20000, qPrintable(error));
    // Queued in order, their ids sort in that order (time-ordered UUIDs), each with a trace id.
    QStringList sorted = *ids;
    sorted.sort();
    QVERIFY(sorted == *ids);
    QVERIFY(QRegularExpression(u"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"_s)
                .match(ids->constLast())
                .hasMatch());
    QCOMPARE(scalar(url, u"SELECT count(*) FROM taskdeck_runs WHERE trace_id !~ '^[0-9a-f]{32}$'"_s).toInt(), 0);
    // A long history of finished runs beside them, known to the planner.
    QVERIFY2(m_pg.exec(url.section(u'/', -1),
                       u"INSERT INTO taskdeck_runs (id, task, status, queued_at, finished_at, changed_at) "
                       "SELECT 'old-' || i, 't', 'succeeded', i, i, i FROM generate_series(1, 40000) i; "
                       "ANALYZE taskdeck_runs; ANALYZE taskdeck_queue"_s),
             qPrintable(m_pg.error()));
    const QString counters =
        u"SELECT coalesce(seq_scan, 0) || ' ' || coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = '%1'"_s;
    auto scans = [&](const QString &table, int which) {
        return scalar(url, counters.arg(table)).toString().section(u' ', which, which).toLongLong();
    };
    const qint64 historySeqScans = scans(u"taskdeck_runs"_s, 0);
    const qint64 queueIndexScans = scans(u"taskdeck_queue"_s, 1);

    {
        PgQueue worker(store->connectionInfo(), u"worker-a"_s);
        QVERIFY2(worker.open(&error), qPrintable(error));
        const std::optional<QList<ClaimedRun>> claimed =
            worker.claim({{u"v1"_s, {{u"t"_s, 0}}}}, 512, 30000ms, &error);
        QVERIFY2(claimed, qPrintable(error));
        QCOMPARE(claimed->size(), 512);
        for (const ClaimedRun &run : *claimed)
            QVERIFY2(run.args.contains(u"i"_s), qPrintable(run.id)); // read from its history row
    }
    // The claim's counters reach the statistics once its connection reported them (at the latest
    // when it closed).
    QTRY_VERIFY_WITH_TIMEOUT(scans(u"taskdeck_queue"_s, 1) > queueIndexScans, 30000);
    QCOMPARE(scans(u"taskdeck_runs"_s, 0), historySeqScans);
}

QTEST_GUILESS_MAIN(TestPgQueue)
#include "tst_pgqueue.moc"
