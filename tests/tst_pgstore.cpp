// SPDX-License-Identifier: MIT
// What only the PostgreSQL history has: URLs and connection errors, migrations under
// concurrency, a server restarted under a writing store, and the command line on --database.

#include "pgrunstore.h"
#include "pgschema.h"
#include "pgtestserver.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "testsupport.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QTest>

#include <atomic>
#include <thread>
#include <vector>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

Run makeRun(const QString &id, RunStatus status)
{
    Run run;
    run.id = id;
    run.task = u"pg"_s;
    run.status = status;
    run.queuedAt = QDateTime::currentDateTimeUtc();
    run.owner = u"1@tst-pgstore.invalid#1"_s;
    if (status != RunStatus::Queued) {
        run.attempt = 1;
        run.startedAt = run.queuedAt;
    }
    if (isTerminal(status))
        run.finishedAt = run.queuedAt;
    return run;
}

QString taskdeckBin()
{
    return qEnvironmentVariable("TASKDECK_BIN");
}

struct Result
{
    int code = -1;
    QString out;
    QString err;
};

Result runTaskdeck(const QStringList &args, const QProcessEnvironment &extra = {})
{
    QProcess process;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(extra);
    process.setProcessEnvironment(env);
    process.start(taskdeckBin(), args);
    Result result;
    if (!process.waitForFinished(60000)) {
        process.kill();
        process.waitForFinished();
        return result;
    }
    result.code = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    result.out = QString::fromUtf8(process.readAllStandardOutput());
    result.err = QString::fromUtf8(process.readAllStandardError());
    return result;
}

} // namespace

class TestPgStore : public QObject
{
    Q_OBJECT

private:
    PgTestServer m_pg;

private Q_SLOTS:
    void initTestCase();
    void refusesBadUrls_data();
    void refusesBadUrls();
    void unreachableServerIsAClearError();
    void passwordIsNeverShown();
    void refusesNewerSchema();
    void concurrentFirstOpensMigrateOnce();
    void survivesServerRestart();
    void commandLineOnDatabase();
    void commandLineRefusesUnreachableDatabase();
    void integrityCheckFindsQueueAndLogProblems();
};

void TestPgStore::initTestCase()
{
    QVERIFY2(m_pg.start(), qPrintable(m_pg.error()));
}

void TestPgStore::refusesBadUrls_data()
{
    QTest::addColumn<QString>("url");
    QTest::addColumn<QString>("expected");
    QTest::newRow("not a url") << u"just words"_s << u"is not a PostgreSQL URL"_s;
    QTest::newRow("other scheme") << u"mysql://u@h/db"_s << u"is not a PostgreSQL URL"_s;
    QTest::newRow("no database") << u"postgresql://u@127.0.0.1:5432/"_s << u"names no database"_s;
}

void TestPgStore::refusesBadUrls()
{
    QFETCH(QString, url);
    QFETCH(QString, expected);
    QString error;
    QVERIFY(!PgRunStore::open(url, &error));
    QVERIFY2(error.contains(expected), qPrintable(error));
}

void TestPgStore::unreachableServerIsAClearError()
{
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    const quint16 closedPort = probe.serverPort();
    probe.close();
    QString error;
    QVERIFY(!PgRunStore::open(u"postgresql://taskdeck@127.0.0.1:%1/nothing"_s.arg(closedPort), &error));
    QVERIFY2(error.contains(u"127.0.0.1:%1"_s.arg(closedPort)), qPrintable(error));
    QVERIFY2(error.contains(u"refused"_s, Qt::CaseInsensitive) || error.contains(u"connect"_s), qPrintable(error));

    // A database that does not exist on a server that does.
    QVERIFY(!PgRunStore::open(m_pg.url(u"no_such_database"_s), &error));
    QVERIFY2(error.contains(u"no_such_database"_s), qPrintable(error));
}

void TestPgStore::passwordIsNeverShown()
{
    QString error;
    QVERIFY(!PgRunStore::open(u"postgresql://taskdeck:s3cr3t-pw@127.0.0.1:%1/no_such_db"_s.arg(m_pg.port()), &error));
    QVERIFY(!error.isEmpty());
    QVERIFY2(!error.contains(u"s3cr3t-pw"_s), qPrintable(error));
    QVERIFY(!PgRunStore::open(u"postgres:s3cr3t-pw@nowhere"_s, &error));
    QVERIFY2(!error.contains(u"s3cr3t-pw"_s), qPrintable(error));

    const QString url = m_pg.createDatabase();
    // trust authentication ignores the password; the store must not show it anywhere.
    QString withPassword = url;
    withPassword.replace(u"taskdeck@"_s, u"taskdeck:s3cr3t-pw@"_s);
    auto store = PgRunStore::open(withPassword, &error);
    QVERIFY2(store, qPrintable(error));
    QVERIFY(!store->location().contains(u"s3cr3t-pw"_s));
    QVERIFY(store->location().contains(u"127.0.0.1"_s));
}

void TestPgStore::refusesNewerSchema()
{
    const QString url = m_pg.createDatabase();
    QString error;
    {
        auto store = PgRunStore::open(url, &error);
        QVERIFY2(store, qPrintable(error));
    }
    const QString database = url.section(u'/', -1);
    QVERIFY2(m_pg.exec(database, u"UPDATE taskdeck_meta SET value = '99' WHERE key = 'schema_version'"_s),
             qPrintable(m_pg.error()));
    QVERIFY(!PgRunStore::open(url, &error));
    QVERIFY2(error.contains(u"newer Taskdeck"_s) && error.contains(u"99"_s), qPrintable(error));
}

void TestPgStore::concurrentFirstOpensMigrateOnce()
{
    const QString url = m_pg.createDatabase();
    constexpr int Openers = 6;
    std::atomic<int> opened{0};
    std::vector<std::thread> threads;
    QStringList errors;
    std::mutex errorsMutex;
    for (int i = 0; i < Openers; ++i) {
        threads.emplace_back([&] {
            QString error;
            auto store = PgRunStore::open(url, &error);
            if (store) {
                ++opened;
                store->recordFinished(makeRun(QUuid::createUuid().toString(QUuid::WithoutBraces),
                                              RunStatus::Succeeded), {});
                store->flush(30s);
            } else {
                const std::lock_guard lock(errorsMutex);
                errors << error;
            }
        });
    }
    for (std::thread &t : threads)
        t.join();
    QVERIFY2(errors.isEmpty(), qPrintable(errors.join(u'\n')));
    QCOMPARE(opened.load(), Openers);
    QVariant count;
    QVERIFY(m_pg.exec(url.section(u'/', -1), u"SELECT count(*) FROM taskdeck_runs"_s, &count));
    QCOMPARE(count.toInt(), Openers);
    // Every version's steps ran: the last one has autovacuum come to the queue table early.
    QVariant version;
    QVERIFY(m_pg.exec(url.section(u'/', -1), u"SELECT value FROM taskdeck_meta WHERE key = 'schema_version'"_s,
                      &version));
    QCOMPARE(version.toString(), QString::number(PgSchema::kVersion));
    QVariant options;
    QVERIFY(m_pg.exec(url.section(u'/', -1),
                      u"SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'taskdeck_queue'"_s,
                      &options));
    QVERIFY2(options.toString().contains(u"autovacuum_vacuum_threshold=1000"_s), qPrintable(options.toString()));
}

void TestPgStore::survivesServerRestart()
{
    const QString url = m_pg.createDatabase();
    QString error;
    auto store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));
    QSet<QString> seen;
    connect(store->notifier(), &RunStoreNotifier::runsChanged, this, [&seen](const QStringList &ids) {
        for (const QString &id : ids)
            seen.insert(id);
    });
    Run run = makeRun(u"through-restart"_s, RunStatus::Running);
    store->recordStarted(run);
    LogLines lines;
    for (int i = 1; i <= 100; ++i)
        lines.append({i, 1700000000000 + i, LogStream::Out, u"before %1"_s.arg(i), i + 1});
    store->recordLog(run.id, lines);
    QVERIFY(store->flush(30s));
    QTRY_VERIFY_WITH_TIMEOUT(seen.contains(run.id), 30000);

    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u".*(reconnecting|lost the connection).*"_s));
    QVERIFY(m_pg.stopServer(u"fast"_s));
    // Recorded while the server is down: kept and written once it is back.
    LogLines more;
    for (int i = 101; i <= 200; ++i)
        more.append({i, 1700000000000 + i, LogStream::Out, u"during %1"_s.arg(i), i + 1});
    store->recordLog(run.id, more);
    auto durable = std::make_shared<std::atomic<bool>>(false);
    run.status = RunStatus::Succeeded;
    run.finishedAt = QDateTime::currentDateTimeUtc();
    run.logLines = 200;
    store->recordFinished(run, [durable] { durable->store(true); });
    QTest::qWait(1500);
    QVERIFY(!durable->load()); // not durable while nothing could be committed
    QTRY_VERIFY_WITH_TIMEOUT(!store->isAvailable(), 10000);
    QVERIFY(store->errorString().contains(u"reconnecting"_s));
    seen.clear();

    QVERIFY2(m_pg.startServer(), qPrintable(m_pg.error()));
    QTRY_VERIFY_WITH_TIMEOUT(durable->load(), 30000);
    QVERIFY(store->isAvailable());
    const std::optional<Run> stored = store->findRun(run.id);
    QVERIFY(stored);
    QCOMPARE(stored->status, RunStatus::Succeeded);
    const LogLines all = readWholeLog(*store, run.id);
    QCOMPARE(all.size(), 200);
    QCOMPARE(all.last().text, u"during 200"_s);
    // The listener is back too, and hears what it missed.
    QTRY_VERIFY_WITH_TIMEOUT(seen.contains(run.id), 30000);
}

void TestPgStore::commandLineOnDatabase()
{
    if (taskdeckBin().isEmpty())
        QSKIP("TASKDECK_BIN is not set (run through ctest)");
    const QString url = m_pg.createDatabase();
    QTemporaryDir home;
    QFile tasks(home.filePath(u"tasks.yml"_s));
    QVERIFY(tasks.open(QIODevice::WriteOnly));
    tasks.write("version: 1\ntasks:\n  say:\n    title: Say\n    fields:\n      - key: message\n"
                "        type: text\n    command: [\"echo\", \"{{message}}\"]\n");
    tasks.close();
    QProcessEnvironment env;
    env.insert(u"TASK_DATA_DIR"_s, home.filePath(u"data"_s));
    env.insert(u"TASK_FILE"_s, tasks.fileName());
    env.insert(u"HOME"_s, home.path());
    // --local: here, not queued for a worker (tst_pgqueue has run through the queue).
    const Result ran = runTaskdeck({u"--database"_s, url, u"run"_s, u"say"_s, u"--arg"_s, u"message=hello pg"_s,
                                    u"--json"_s, u"--local"_s}, env);
    QVERIFY2(ran.code == 0, qPrintable(ran.err));
    const QJsonObject run = QJsonDocument::fromJson(ran.out.toUtf8()).object();
    const QString id = run.value(u"id"_s).toString();
    QVERIFY2(!id.isEmpty(), qPrintable(ran.out));

    // Another process, the URL in the environment this time: it sees the run.
    QProcessEnvironment viaEnv = env;
    viaEnv.insert(u"TASK_DATABASE_URL"_s, url);
    const Result history = runTaskdeck({u"history"_s, u"--json"_s}, viaEnv);
    QVERIFY2(history.code == 0, qPrintable(history.err));
    QVERIFY2(history.out.contains(id), qPrintable(history.out));
    const Result log = runTaskdeck({u"log"_s, id}, viaEnv);
    QVERIFY2(log.code == 0, qPrintable(log.err));
    QVERIFY2(log.out.contains(u"hello pg"_s), qPrintable(log.out));
    const Result show = runTaskdeck({u"show"_s, id, u"--json"_s}, viaEnv);
    QVERIFY2(show.code == 0, qPrintable(show.err));
    QCOMPARE(QJsonDocument::fromJson(show.out.toUtf8()).object().value(u"status"_s).toString(), u"succeeded"_s);
    // Nothing went to an SQLite file on the way.
    QVERIFY(!QFile::exists(home.filePath(u"data/history.sqlite3"_s)));
}

void TestPgStore::commandLineRefusesUnreachableDatabase()
{
    if (taskdeckBin().isEmpty())
        QSKIP("TASKDECK_BIN is not set (run through ctest)");
    QTemporaryDir home;
    QProcessEnvironment env;
    env.insert(u"TASK_DATA_DIR"_s, home.filePath(u"data"_s));
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    const quint16 closedPort = probe.serverPort();
    probe.close();
    for (const QStringList &args : {QStringList{u"history"_s}, QStringList{u"list"_s}}) {
        env.insert(u"TASK_DATABASE_URL"_s, u"postgresql://taskdeck:pw-not-shown@127.0.0.1:%1/x"_s.arg(closedPort));
        const Result result = runTaskdeck(args, env);
        QCOMPARE(result.code, 2);
        QVERIFY2(result.err.contains(u"127.0.0.1:%1"_s.arg(closedPort)), qPrintable(result.err));
        QVERIFY(!result.err.contains(u"pw-not-shown"_s));
    }
    env.insert(u"TASK_DATABASE_URL"_s, u"not a url"_s);
    const Result bad = runTaskdeck({u"history"_s}, env);
    QCOMPARE(bad.code, 2);
    QVERIFY2(bad.err.contains(u"PostgreSQL URL"_s), qPrintable(bad.err));
}

void TestPgStore::integrityCheckFindsQueueAndLogProblems()
{
    const QString url = m_pg.createDatabase();
    const QString database = url.section(u'/', -1);
    QString error;
    auto store = PgRunStore::open(url, &error);
    QVERIFY2(store, qPrintable(error));

    // A finished run whose log went in three chunks (one per commit).
    Run logged = makeRun(u"logged"_s, RunStatus::Running);
    store->recordStarted(logged);
    qint64 seq = 1;
    for (int part = 0; part < 3; ++part) {
        LogLines lines;
        for (int i = 1; i <= 10; ++i) {
            LogLine line;
            line.number = part * 10 + i;
            line.seq = ++seq;
            line.text = u"line %1"_s.arg(line.number);
            lines.append(line);
        }
        store->recordLog(logged.id, lines);
        QVERIFY(store->flush(10s));
    }
    logged.status = RunStatus::Succeeded;
    logged.finishedAt = QDateTime::currentDateTimeUtc();
    logged.logLines = 30;
    logged.seq = ++seq;
    store->recordFinished(logged, {});
    QVERIFY(store->flush(10s));
    QCOMPARE(store->checkIntegrity(), QStringList());
    QVariant chunks;
    QVERIFY(m_pg.exec(database, u"SELECT count(*) FROM taskdeck_log_chunks WHERE run_id = 'logged'"_s, &chunks));
    QVERIFY2(chunks.toInt() >= 2, qPrintable(chunks.toString()));

    // Broken by hand, one of each.
    const QString deadOwner = RunOwner::current().replace(QRegularExpression(u"^\\d+"_s), u"4194000"_s);
    const QStringList breakage = {
        // a chunk after the first one lost
        u"DELETE FROM taskdeck_log_chunks WHERE run_id = 'logged' AND first_line = (SELECT min(first_line) "
        "FROM taskdeck_log_chunks WHERE run_id = 'logged' AND first_line > 1)"_s,
        // a run still in the queue after it ended
        u"INSERT INTO taskdeck_queue (id, task, run_at) VALUES ('logged', 'pg', 0)"_s,
        // running, in no queue, owned by no process
        u"INSERT INTO taskdeck_runs (id, task, status, queued_at, owner) VALUES ('orphan', 'pg', 'running', 0, '')"_s,
        // running under a lease that expired
        u"INSERT INTO taskdeck_runs (id, task, status, queued_at, owner) VALUES ('leased', 'pg', 'running', 0, 'w1')"_s,
        u"INSERT INTO taskdeck_queue (id, task, run_at, locked_by, lease_until) VALUES ('leased', 'pg', 0, 'w1', 1)"_s,
        // running, owned by a process of this machine that is gone
        u"INSERT INTO taskdeck_runs (id, task, status, queued_at, owner) VALUES ('gone', 'pg', 'running', 0, '%1')"_s
            .arg(deadOwner),
        // and an older schema version
        u"UPDATE taskdeck_meta SET value = '1' WHERE key = 'schema_version'"_s,
    };
    for (const QString &sql : breakage)
        QVERIFY2(m_pg.exec(database, sql), qPrintable(m_pg.error()));

    const QStringList problems = store->checkIntegrity();
    const QString all = problems.join(u'\n');
    QVERIFY2(all.contains(u"log of run logged has no lines 11 to"_s), qPrintable(all));
    QVERIFY2(all.contains(u"run logged is in the queue (waiting for a worker) but its history says it ended "
                          u"(succeeded)"_s), qPrintable(all));
    QVERIFY2(all.contains(u"run orphan is running in the history but not in the queue, and no process owns it"_s),
             qPrintable(all));
    QVERIFY2(all.contains(u"run leased is running, held by w1, whose lease expired"_s), qPrintable(all));
    QVERIFY2(all.contains(u"run gone is running, but its process"_s) && all.contains(u"is gone"_s), qPrintable(all));
    QVERIFY2(all.contains(u"schema version is 1, but this Taskdeck writes version"_s), qPrintable(all));
    QCOMPARE(problems.size(), 6);

    // The command line says the same, and fails.
    if (taskdeckBin().isEmpty())
        QSKIP("TASKDECK_BIN is not set (run through ctest)");
    QTemporaryDir home;
    QProcessEnvironment env;
    env.insert(u"TASK_DATA_DIR"_s, home.filePath(u"data"_s));
    env.insert(u"TASK_DATABASE_URL"_s, url);
    store.reset();
    // Opening the store migrates the version back up, and marks the runs of processes that are
    // gone interrupted (the orphan too); the rest stays broken.
    const Result check = runTaskdeck({u"history"_s, u"--check"_s}, env);
    QCOMPARE(check.code, 1);
    // The findings have their own heading: no file is damaged, nothing is to be moved aside.
    QVERIFY2(check.err.contains(u"history and queue in postgresql://"_s), qPrintable(check.err));
    QVERIFY2(check.err.contains(u"runs, logs or queue rows that do not agree"_s), qPrintable(check.err));
    QVERIFY2(!check.err.contains(u"damaged;"_s), qPrintable(check.err));
    QVERIFY2(!check.err.contains(u"move it aside"_s), qPrintable(check.err));
    QVERIFY2(!check.err.contains(u"schema version"_s), qPrintable(check.err));
    QVERIFY2(check.err.contains(u"run logged is in the queue"_s), qPrintable(check.err));
    QVERIFY2(check.err.contains(u"log of run logged has no lines"_s), qPrintable(check.err));
    QVERIFY2(check.err.contains(u"lease expired"_s), qPrintable(check.err));
}

QTEST_GUILESS_MAIN(TestPgStore)
#include "tst_pgstore.moc"
