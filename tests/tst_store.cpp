// SPDX-License-Identifier: MIT
#include "runcontext.h"
#include "taskengine.h"
#include "historytasks.h"
#include "logchunk.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "sqliterunstore.h"
#include "sqliteschema.h"
#include "taskregistry.h"
#include "storetestsupport.h"
#include "testsupport.h"

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QProcess>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

QByteArray fileHash(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    return QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256);
}

RunQuery byTask(const QString &task)
{
    RunQuery query;
    query.task = task;
    return query;
}

void compareLines(const LogLines &actual, const LogLines &expected)
{
    QCOMPARE(actual.size(), expected.size());
    for (qsizetype i = 0; i < actual.size(); ++i) {
        QCOMPARE(actual.at(i).number, expected.at(i).number);
        QCOMPARE(actual.at(i).timeMs, expected.at(i).timeMs);
        QCOMPARE(actual.at(i).stream, expected.at(i).stream);
        QCOMPARE(actual.at(i).text, expected.at(i).text);
    }
}

void compareRuns(const Run &actual, const Run &expected)
{
    QCOMPARE(actual.id, expected.id);
    QCOMPARE(actual.task, expected.task);
    QCOMPARE(actual.args, expected.args);
    QCOMPARE(actual.status, expected.status);
    QCOMPARE(actual.attempt, expected.attempt);
    QCOMPARE(actual.maxAttempts, expected.maxAttempts);
    QCOMPARE(actual.queuedAt, expected.queuedAt);
    QCOMPARE(actual.startedAt, expected.startedAt);
    QCOMPARE(actual.finishedAt, expected.finishedAt);
    QCOMPARE(actual.progress, expected.progress);
    QCOMPARE(actual.result, expected.result);
    QCOMPARE(actual.error.message, expected.error.message);
    QCOMPARE(actual.error.kind, expected.error.kind);
    QCOMPARE(actual.error.detail, expected.error.detail);
    QCOMPARE(actual.error.transient, expected.error.transient);
    QCOMPARE(actual.logLines, expected.logLines);
    QCOMPARE(actual.owner, expected.owner);
    // The duration of an unfinished run counts up to "now", which differs between the two.
    QJsonObject actualJson = actual.toJson();
    QJsonObject expectedJson = expected.toJson();
    actualJson.remove(u"durationMs"_s);
    expectedJson.remove(u"durationMs"_s);
    QCOMPARE(actualJson, expectedJson);
}

// Root ignores file permissions through CAP_DAC_OVERRIDE. Dropping it (and its relatives)
// from this thread's effective set makes permissions apply again; threads started meanwhile
// (the store's writer) inherit that. The destructor raises them again.
class PermissionsEnforced
{
public:
    PermissionsEnforced()
    {
        if (geteuid() != 0) {
            m_ok = true;
            return;
        }
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        if (syscall(SYS_capget, &header, m_saved) != 0)
            return;
        __user_cap_data_struct reduced[2] = {m_saved[0], m_saved[1]};
        for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER})
            reduced[cap / 32].effective &= ~(1u << (cap % 32));
        m_ok = syscall(SYS_capset, &header, reduced) == 0;
        m_restore = m_ok;
    }
    ~PermissionsEnforced()
    {
        if (m_restore) {
            __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
            syscall(SYS_capset, &header, m_saved);
        }
    }
    Q_DISABLE_COPY_MOVE(PermissionsEnforced)
    bool ok() const { return m_ok; }

private:
    __user_cap_data_struct m_saved[2] = {};
    bool m_ok = false;
    bool m_restore = false;
};

// The version 1 schema, written out here on purpose rather than taken from the store, so a
// change to the store's copy cannot hide a broken migration.
const char *const kVersion1Schema[] = {
    "CREATE TABLE runs (id TEXT PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 0, args TEXT NOT NULL DEFAULT '{}', queued_at INTEGER NOT NULL,"
    " started_at INTEGER, finished_at INTEGER, progress_done INTEGER NOT NULL DEFAULT 0,"
    " progress_total INTEGER NOT NULL DEFAULT 0, progress_message TEXT NOT NULL DEFAULT '',"
    " result TEXT, error_message TEXT NOT NULL DEFAULT '', error_kind TEXT NOT NULL DEFAULT '',"
    " error_detail TEXT NOT NULL DEFAULT '', error_transient INTEGER NOT NULL DEFAULT 0,"
    " log_lines INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX runs_queued_at ON runs(queued_at)",
    "CREATE INDEX runs_task_queued_at ON runs(task, queued_at)",
    "CREATE TABLE log_lines (run_id TEXT NOT NULL, line INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
    " stream TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (run_id, line)) WITHOUT ROWID",
    "PRAGMA user_version = 1",
};

} // namespace

class TestStore : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void logChunkRoundTrip();
    void logChunkRejectsDamage();
    void freshFileIsCurrentAndWal();
    void roundTripThroughEngine();
    void durableMeansCommitted();
    void unfinishedRunsReachTheFile();
    void queuedStateWaitsForTheRunsNextChange();
    void finishCallbacksComeInOrderAndAllByClose();
    void longLogThroughEngine();
    void lateLinesKeepOrder();
    void changesFoldBetweenBatches();
    void findRunsFilters_data();
    void findRunsFilters();
    void findRunsPages();
    void pruneKeepsActiveRuns();
    void pruneCutoffIsInclusive();
    void retentionPrunesInBackground();
    void migratesVersion1();
    void refusesNewerVersion();
    void refusesCorruptFile_data();
    void refusesCorruptFile();
    void refusesUnwritableLocation_data();
    void refusesUnwritableLocation();
    void readsAHistoryItCannotWrite_data();
    void readsAHistoryItCannotWrite();
    void namesAnUnwritableShm();
    void openFailsWhileLocked();
    void writesWaitOutALock();
    void sharedByTwoStores();
    void concurrentCreationOfNewHistory();
    void queriesFromOtherThreads();
    void logChunkCarriesSeq();
    void persistsSeqAndRetrying();
    void recoversRetryingRuns();
    void migratesVersion3();
    void migratesEarlyVersion4();
    void readLogAfterSeqResumes();
    void asyncQueriesNeverBlockTheCaller();
    void asyncQueriesEndWithTheStore();
    void notifiesOwnWrites();
    void notifiesChangesOfAnotherStore();
    void notifiesChangesOfAnotherProcess();
    void fullCheckOnlyAfterUncleanShutdown();
    void uncleanShutdownOfSoundHistory();
    void historyCheckCommand();
    void createsPrivateFiles();
    void repairsLooseModes();
    void backupsArePrivate();
};

void TestStore::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(QSqlDatabase::drivers().contains(u"QSQLITE"_s));
}

void TestStore::logChunkRoundTrip()
{
    LogLines lines = makeLines(5, 9);
    lines[1].text = u"grüße, 世界 🚀"_s;
    lines[2].text.clear();
    lines[3].stream = LogStream::System;
    lines[3].timeMs = lines[2].timeMs - 5000; // clocks may step back
    lines[4].number = 40;                     // numbers may jump
    const QByteArray data = LogChunk::encode(lines);
    LogLines decoded;
    QVERIFY(LogChunk::decode(data, 5, &decoded));
    compareLines(decoded, lines);

    LogLines tail;
    QVERIFY(LogChunk::decode(data, 5, &tail, 8));
    QCOMPARE(tail.size(), 2);
    QCOMPARE(tail.first().number, 8);
    QCOMPARE(tail.last().number, 40);

    LogChunk chunk;
    while (!chunk.isFull())
        chunk.append(makeLines(chunk.lineCount() + 1, chunk.lineCount() + 1).first());
    QCOMPARE(chunk.lineCount(), LogChunk::kMaxLines);
    LogChunk wide;
    LogLine big = makeLines(1, 1).first();
    big.text = QString(40 * 1024, u'x');
    wide.append(big);
    QVERIFY(!wide.isFull());
    big.number = 2;
    wide.append(big);
    QVERIFY(wide.isFull());
    QCOMPARE(wide.lineCount(), 2);
}

void TestStore::logChunkRejectsDamage()
{
    const QByteArray data = LogChunk::encode(makeLines(1, 20));
    LogLines out;
    QVERIFY(!LogChunk::decode(data.left(data.size() - 3), 1, &out));
    QVERIFY(!LogChunk::decode(data + "x", 1, &out));
    QByteArray wrongFormat = data;
    wrongFormat[0] = 9;
    QVERIFY(!LogChunk::decode(wrongFormat, 1, &out));
    QVERIFY(!LogChunk::decode(QByteArray(), 1, &out));
    QVERIFY(out.isEmpty());
}

void TestStore::freshFileIsCurrentAndWal()
{
    QTemporaryDir dir;
    const QString dataDir = dir.filePath(u"nested/data"_s);
    auto store = openStore(dataDir);
    QVERIFY(store);
    QVERIFY(store->isAvailable());
    QVERIFY(store->errorString().isEmpty());
    QCOMPARE(store->location(), QDir(dataDir).absoluteFilePath(u"history.sqlite3"_s));
    QVERIFY(QFileInfo::exists(store->location()));
    RawDb raw(store->location());
    QVERIFY(raw.isOpen());
    QCOMPARE(raw.scalar(u"PRAGMA user_version"_s).toInt(), SqliteSchema::kVersion);
    QCOMPARE(raw.scalar(u"PRAGMA journal_mode"_s).toString(), u"wal"_s);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM sqlite_master WHERE name = 'log_lines'"_s).toInt(), 0);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_status'"_s).toInt(), 0);
    QCOMPARE(raw.scalar(u"SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'runs_active'"_s).toString(),
             u"CREATE INDEX runs_active ON runs(status) WHERE (status = 'queued' OR status = 'running' OR "
             "status = 'retrying')"_s);
    // Recovery's look-up of unfinished runs is the query the partial index is for.
    QVERIFY(raw.scalar(u"EXPLAIN QUERY PLAN SELECT id FROM runs WHERE (status = 'queued' OR status = 'running' OR "
                       "status = 'retrying')"_s, 3).toString().contains(u"runs_active"_s));
    // Change tracking reads the change log by its key; resuming a log after a seq looks up
    // through an index.
    QVERIFY(raw.scalar(u"EXPLAIN QUERY PLAN SELECT run_ids FROM changes WHERE seq > 5"_s, 3)
                .toString().contains(u"INTEGER PRIMARY KEY"_s));
    QVERIFY(raw.scalar(u"EXPLAIN QUERY PLAN SELECT first_line FROM log_chunks WHERE run_id = 'x' AND last_seq > 5 "
                       "ORDER BY last_seq LIMIT 1"_s, 3).toString().contains(u"log_chunks_seq"_s));
    QVERIFY(!store->findRun(u"nope"_s));
    QVERIFY(store->readLog(u"nope"_s).isEmpty());
    QVERIFY(store->traceId(u"nope"_s).isEmpty());
    QVERIFY(store->flush(1s));
}

void TestStore::roundTripThroughEngine()
{
    QTemporaryDir dir;
    QHash<QString, Run> finished;
    QHash<QString, LogLines> shown;
    {
        auto store = openStore(dir.path());
        QVERIFY(store);
        TaskRegistry registry;
        QVERIFY(registry.add(makeTask(u"greet"_s, [](RunContext &ctx) -> QJsonValue {
            ctx.log(u"hello "_s + ctx.arg(u"name"_s).toString());
            ctx.logError(u"a warning"_s);
            ctx.progress(3, 3, u"all done"_s);
            return QJsonObject{{u"greeted"_s, ctx.arg(u"name"_s)}, {u"count"_s, ctx.arg(u"count"_s)},
                               {u"nested"_s, QJsonArray{1, u"two"_s, QJsonValue::Null}}};
        }, {Field(u"name"_s, FieldType::Text).withRequired(), Field(u"token"_s, FieldType::Secret),
            Field(u"count"_s, FieldType::Integer)})));
        QVERIFY(registry.add(makeTask(u"scalar"_s, [](RunContext &) -> QJsonValue { return u"plain text"_s; })));
        QVERIFY(registry.add(makeTask(u"broken"_s, [](RunContext &ctx) -> QJsonValue {
            ctx.progress(1, 4, u"copying"_s);
            throw TaskError(u"disk full"_s, u"DiskError"_s, false, u"while writing /tmp/x"_s);
        })));
        Task flaky = makeTask(u"flaky"_s, [](RunContext &) -> QJsonValue {
            throw TransientError(u"network down"_s);
        });
        flaky.retry.maxAttempts = 2;
        flaky.retry.initialDelay = 10ms;
        QVERIFY(registry.add(flaky));
        QVERIFY(registry.add(makeTask(u"waiter"_s, [](RunContext &ctx) -> QJsonValue {
            ctx.log(u"waiting"_s);
            while (!ctx.isCanceled())
                ctx.sleep(20ms);
            return {};
        })));

        TaskEngine engine(&registry);
        engine.setRecorder(store.get());
        QObject::connect(&engine, &TaskEngine::runFinished, &engine, [&](const Run &r) { finished.insert(r.id, r); });
        QObject::connect(&engine, &TaskEngine::runLog, &engine, [&](const QString &id, const LogLines &lines) {
            shown[id] += lines;
        });

        const QStringList ids = {
            engine.start(u"greet"_s, {{u"name"_s, u"Ada"_s}, {u"token"_s, u"s3cret-value"_s}, {u"count"_s, 7}}).runId,
            engine.start(u"scalar"_s, {}).runId,
            engine.start(u"broken"_s, {}).runId,
            engine.start(u"flaky"_s, {}).runId,
        };
        for (const QString &id : ids)
            QVERIFY(!id.isEmpty());
        const QString waiter = engine.start(u"waiter"_s, {}).runId;
        QTRY_VERIFY_WITH_TIMEOUT(engine.status(waiter) == RunStatus::Running, 30000);
        QTRY_VERIFY_WITH_TIMEOUT(engine.snapshot(waiter)->logLines == 1, 30000);
        QVERIFY(engine.cancel(waiter));
        QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 5, 30000);
        // A line can follow the finish: the cancel notice is logged by the canceling thread
        // and may miss the finished snapshot's count. The store keeps the higher count, which
        // is what the log really holds.
        for (auto it = finished.begin(); it != finished.end(); ++it) {
            const qint64 total = engine.snapshot(it.key())->logLines;
            QVERIFY(total - it->logLines <= 1);
            it->logLines = total;
            QTRY_COMPARE_WITH_TIMEOUT(shown.value(it.key()).size(), total, 30000);
        }
        QVERIFY(store->flush(30s));
    }

    // A new store instance on the same directory reads everything back as it was.
    auto store = openStore(dir.path());
    QVERIFY(store);
    QSet<QString> traces;
    for (const Run &expected : std::as_const(finished)) {
        const std::optional<Run> stored = store->findRun(expected.id);
        QVERIFY2(stored, qPrintable(expected.id));
        compareRuns(*stored, expected);
        if (QTest::currentTestFailed())
            return;
        const LogLines log = readWholeLog(*store, expected.id);
        compareLines(log, shown.value(expected.id));
        if (QTest::currentTestFailed())
            return;
        const QString trace = store->traceId(expected.id);
        QVERIFY2(QRegularExpression(u"^[0-9a-f]{32}$"_s).match(trace).hasMatch(), qPrintable(trace));
        traces.insert(trace);
    }
    QCOMPARE(traces.size(), finished.size());

    const RunPage all = store->findRuns({});
    QCOMPARE(all.total, 5);
    const Run greet = store->findRuns(byTask(u"greet"_s)).runs.value(0);
    QCOMPARE(greet.status, RunStatus::Succeeded);
    QCOMPARE(greet.args.value(u"name"_s).toString(), u"Ada"_s);
    QVERIFY(greet.args.contains(u"token"_s));
    QVERIFY(greet.args.value(u"token"_s).toString() != u"s3cret-value"_s);
    QCOMPARE(greet.result.toObject().value(u"count"_s).toInt(), 7);
    QCOMPARE(greet.progress, (Progress{3, 3, u"all done"_s}));
    QCOMPARE(greet.logLines, 2);
    // Nothing in the file holds the secret, in any table.
    QFile file(store->location());
    QVERIFY(file.open(QIODevice::ReadOnly));
    QVERIFY(!file.readAll().contains("s3cret-value"));
    QFile wal(store->location() + u"-wal"_s);
    if (wal.open(QIODevice::ReadOnly))
        QVERIFY(!wal.readAll().contains("s3cret-value"));

    const Run scalar = store->findRuns(byTask(u"scalar"_s)).runs.value(0);
    QCOMPARE(scalar.result, QJsonValue(u"plain text"_s));
    const Run broken = store->findRuns(byTask(u"broken"_s)).runs.value(0);
    QCOMPARE(broken.status, RunStatus::Failed);
    QCOMPARE(broken.error.kind, u"DiskError"_s);
    QVERIFY(broken.error.detail.contains(u"while writing /tmp/x"_s));
    QVERIFY(broken.result.isUndefined());
    QCOMPARE(broken.progress, (Progress{1, 4, u"copying"_s}));
    const Run flaky = store->findRuns(byTask(u"flaky"_s)).runs.value(0);
    QCOMPARE(flaky.status, RunStatus::Failed);
    QCOMPARE(flaky.attempt, 2);
    QCOMPARE(flaky.maxAttempts, 2);
    QVERIFY(flaky.error.transient);
    const Run waiter = store->findRuns(byTask(u"waiter"_s)).runs.value(0);
    QCOMPARE(waiter.status, RunStatus::Canceled);
    QVERIFY(!waiter.owner.isEmpty());
}

void TestStore::unfinishedRunsReachTheFile()
{
    // The writer holds a run's running state back for one batch interval, a queued one up to
    // a second (most runs finish by then and are written once). A run that goes on must still reach
    // the file by itself soon after, without anybody flushing: that is what a crash leaves.
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"wait"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return {};
    })));
    TaskEngine engine(&registry);
    engine.setRecorder(store.get());
    const QString first = engine.start(u"wait"_s, {}).runId;
    RawDb raw(store->location());
    QVERIFY(raw.isOpen());
    // Read through a connection of its own: the store's queries would flush first.
    QTRY_COMPARE_WITH_TIMEOUT(raw.scalar(u"SELECT status FROM runs WHERE id = '%1'"_s.arg(first)).toString(),
                              u"running"_s, 5000);

    // A query through the store writes what is held back before it reads.
    const QString second = engine.start(u"wait"_s, {}).runId;
    const std::optional<Run> seen = store->findRun(second);
    QVERIFY(seen);
    QVERIFY(!seen->isFinished());
    QVERIFY(raw.scalar(u"SELECT count(*) FROM runs WHERE id = '%1'"_s.arg(second)).toInt() == 1);
    engine.cancelAll();
    QVERIFY(engine.shutdown(10s));
}

void TestStore::queuedStateWaitsForTheRunsNextChange()
{
    // A queued state waits up to a second for the run's next change, however busy the
    // writer is: a run queued behind others that starts and finishes by then is written
    // once, finished. (Held for only a batch interval, a writer that fell behind found such
    // states due and wrote each of those runs twice, which made it fall further behind.)
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    RawDb raw(store->location());
    QVERIFY(raw.isOpen());
    const QDateTime now = QDateTime::currentDateTimeUtc();
    int others = 0;
    QString id;
    // A try is conclusive only if the file was read within the second: on a machine too
    // busy for that, another run id tries again.
    bool conclusive = false;
    for (int attempt = 1; attempt <= 5 && !conclusive; ++attempt) {
        id = u"waits-queued-%1"_s.arg(attempt);
        QElapsedTimer sinceQueued;
        sinceQueued.start();
        store->recordQueued(makeRun(id, u"t"_s, RunStatus::Queued, now));
        // Other runs finish and are committed, batch after batch, for several batch
        // intervals: each commit is a chance for the queued state to be written with it.
        do {
            QVERIFY(recordFinishedAndWait(*store, makeRun(u"other-%1"_s.arg(++others), u"t"_s,
                                                          RunStatus::Succeeded, now)));
        } while (sinceQueued.elapsed() < 150);
        const int rows = raw.scalar(u"SELECT count(*) FROM runs WHERE id = '%1'"_s.arg(id)).toInt();
        conclusive = sinceQueued.elapsed() < 900;
        if (conclusive)
            QCOMPARE(rows, 0);
    }
    if (!conclusive)
        QSKIP("the machine was too busy to read the file within a second of queuing, five times");

    store->recordStarted(makeRun(id, u"t"_s, RunStatus::Running, now));
    QVERIFY(recordFinishedAndWait(*store, makeRun(id, u"t"_s, RunStatus::Succeeded, now)));
    QCOMPARE(raw.scalar(u"SELECT status FROM runs WHERE id = '%1'"_s.arg(id)).toString(), u"succeeded"_s);
    // Written in one transaction: the change log names the run once.
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM changes WHERE instr(run_ids, '%1') > 0"_s.arg(id)).toInt(), 1);

    // A run that stays queued still reaches the file by itself, without a flush.
    store->recordQueued(makeRun(u"stays-queued"_s, u"t"_s, RunStatus::Queued, now));
    QTRY_COMPARE_WITH_TIMEOUT(raw.scalar(u"SELECT status FROM runs WHERE id = 'stays-queued'"_s).toString(),
                              u"queued"_s, 10000);
}

void TestStore::finishCallbacksComeInOrderAndAllByClose()
{
    // The callbacks of committed finishes are called off the writer's thread, in the order
    // the finishes were recorded, and closing the store calls every one still waiting.
    constexpr int kFinishes = 5000;
    std::mutex mutex;
    std::vector<int> called;
    {
        QTemporaryDir dir;
        auto store = openStore(dir.path());
        QVERIFY(store);
        const QDateTime now = QDateTime::currentDateTimeUtc();
        for (int i = 0; i < kFinishes; ++i) {
            store->recordFinished(makeRun(u"in-order-%1"_s.arg(i), u"t"_s, RunStatus::Succeeded, now), [&, i] {
                std::lock_guard<std::mutex> lock(mutex);
                called.push_back(i);
            });
        }
        store.reset();
    }
    QCOMPARE(int(called.size()), kFinishes);
    for (int i = 0; i < kFinishes; ++i)
        QCOMPARE(called[size_t(i)], i);
}

void TestStore::durableMeansCommitted()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    Run run = makeRun(u"durable-1"_s, u"t"_s, RunStatus::Queued, t);
    store->recordQueued(run);
    store->recordLog(run.id, makeLines(1, 3));
    run = makeRun(run.id, u"t"_s, RunStatus::Succeeded, t);
    run.logLines = 3;
    std::atomic<bool> seenCommitted{false};
    std::atomic<bool> called{false};
    const QString path = store->location();
    // Looks from another connection, inside the callback itself: by then the finish must be
    // on disk for everyone.
    store->recordFinished(run, [&] {
        {
            const QString name = u"tst-durable-check"_s;
            {
                QSqlDatabase db = QSqlDatabase::addDatabase(u"QSQLITE"_s, name);
                db.setDatabaseName(path);
                db.setConnectOptions(u"QSQLITE_OPEN_READONLY"_s);
                if (db.open()) {
                    QSqlQuery q(db);
                    seenCommitted = q.exec(u"SELECT status FROM runs WHERE id = 'durable-1'"_s) && q.next()
                                    && q.value(0).toString() == u"succeeded"_s;
                }
                db.close();
            }
            QSqlDatabase::removeDatabase(name);
        }
        called = true;
    });
    QTRY_VERIFY_WITH_TIMEOUT(called.load(), 30000);
    QVERIFY(seenCommitted.load());
    QCOMPARE(store->readLog(run.id).size(), 3);
}

void TestStore::longLogThroughEngine()
{
    constexpr int kLines = 100000;
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= kLines; ++i)
            ctx.log(i % 10 == 0 ? LogStream::Err : LogStream::Out, u"line %1 of the log"_s.arg(i));
        return kLines;
    })));
    EngineConfig config;
    config.bufferSize = 100;
    TaskEngine engine(&registry, config);
    engine.setRecorder(store.get());
    const RunResult result = engine.run(u"chatty"_s, {});
    QVERIFY(result.ok());
    QCOMPARE(result.run.status, RunStatus::Succeeded);
    const QString id = result.run.id;
    QCOMPARE(engine.recentLog(id).size(), 100);

    const std::optional<Run> stored = store->findRun(id);
    QVERIFY(stored);
    QCOMPARE(stored->logLines, kLines);

    qint64 expected = 1;
    qint64 next = 1;
    int pages = 0;
    for (;;) {
        const LogLines page = store->readLog(id, next, 7000);
        if (page.isEmpty())
            break;
        ++pages;
        QVERIFY(page.size() <= 7000);
        for (const LogLine &line : page) {
            QCOMPARE(line.number, expected);
            QCOMPARE(line.stream, expected % 10 == 0 ? LogStream::Err : LogStream::Out);
            QCOMPARE(line.text, u"line %1 of the log"_s.arg(expected));
            ++expected;
        }
        next = page.last().number + 1;
    }
    QCOMPARE(expected, kLines + 1);
    QCOMPARE(pages, (kLines + 6999) / 7000);

    const LogLines middle = store->readLog(id, 54321, 10);
    QCOMPARE(middle.size(), 10);
    QCOMPARE(middle.first().number, 54321);
    QCOMPARE(middle.first().text, u"line 54321 of the log"_s);
    QCOMPARE(middle.last().number, 54330);
    QCOMPARE(store->readLog(id, 99995).size(), 6);
    QVERIFY(store->readLog(id, kLines + 1).isEmpty());
    QVERIFY(store->readLog(id, 1, 0).isEmpty());
    QCOMPARE(store->readLog(id, -5, 3).first().number, 1);
    // A default page is a thousand lines, however long the log.
    QCOMPARE(store->readLog(id).size(), 1000);
}

void TestStore::lateLinesKeepOrder()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const Run run = makeRun(u"late"_s, u"t"_s, RunStatus::Running, QDateTime::currentDateTimeUtc());
    store->recordStarted(run);
    const LogLines all = makeLines(1, 30);
    // Two threads logging to one run can hand over line numbers out of order, even across
    // batches; the history still reads in order.
    store->recordLog(run.id, all.mid(0, 5));   // 1-5
    QVERIFY(store->flush(30s));
    store->recordLog(run.id, all.mid(7, 3));   // 8-10, leaves a gap at 6-7
    store->recordLog(run.id, all.mid(11, 1));  // 12
    store->recordLog(run.id, all.mid(10, 1));  // 11, behind 12 in the same batch
    QVERIFY(store->flush(30s));
    store->recordLog(run.id, all.mid(6, 1));   // 7, into the first chunk's range end
    store->recordLog(run.id, all.mid(12, 18)); // 13-30
    QVERIFY(store->flush(30s));
    store->recordLog(run.id, all.mid(5, 1));   // 6
    QVERIFY(store->flush(30s));
    compareLines(store->readLog(run.id, 1, 100), all);
    if (QTest::currentTestFailed())
        return;
    compareLines(store->readLog(run.id, 6, 4), all.mid(5, 4));
    compareLines(store->readLog(run.id, 9, 2), all.mid(8, 2));
    QCOMPARE(store->findRun(run.id)->logLines, 30);
}

void TestStore::changesFoldBetweenBatches()
{
    // Changes of a run recorded between two batches fold into one entry; the rules hold
    // whether they arrive in one batch or across a held-back state and a later batch.
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime now = QDateTime::currentDateTimeUtc();

    // Text that is not ASCII is stored as it was, next to ASCII in the same row.
    Run text = makeRun(u"fold-text"_s, u"t"_s, RunStatus::Failed, now);
    text.error = RunError{u"grüße, 世界 🚀: disk full"_s, u"IOError"_s, u"détail\nline 2"_s, false};
    text.progress = Progress{1, 2, u"½ done"_s};
    text.args = QJsonObject{{u"path"_s, u"/tmp/naïve"_s}};
    QVERIFY(recordFinishedAndWait(*store, text));
    const std::optional<Run> textBack = store->findRun(text.id);
    QVERIFY(textBack);
    QCOMPARE(textBack->error.message, text.error.message);
    QCOMPARE(textBack->error.kind, u"IOError"_s);
    QCOMPARE(textBack->error.detail, text.error.detail);
    QCOMPARE(textBack->progress, text.progress);
    QCOMPARE(textBack->args, text.args);
    QCOMPARE(textBack->owner, text.owner);

    // Progress before any state, then the state: the progress is not lost.
    Run a = makeRun(u"fold-a"_s, u"t"_s, RunStatus::Running, now);
    store->recordProgress(a.id, Progress{1, 4, u"first"_s});
    store->recordStarted(a);
    store->recordProgress(a.id, Progress{2, 4, u"second"_s});
    store->recordLog(a.id, makeLines(1, 3));
    QVERIFY(store->flush(30s));
    QCOMPARE(store->findRun(a.id)->progress, (Progress{2, 4, u"second"_s}));

    // A finish is final: a late running state of the same run (another thread's, out of
    // order) does not take it back. To have both in one batch, another connection holds
    // the write lock for a moment: the writer waits in a batch of its own meanwhile. A full
    // queue of lines makes the next recordLog() wait until the writer has taken them, so
    // once it returns the writer is in that batch.
    {
        RawDb holder(store->location());
        QVERIFY(holder.exec(u"BEGIN IMMEDIATE"_s));
        store->recordLog(a.id, makeLines(4, 3 + SqliteRunStore::kMaxQueuedLines));
        store->recordLog(a.id, makeLines(4 + SqliteRunStore::kMaxQueuedLines, 4 + SqliteRunStore::kMaxQueuedLines));
        Run bRunning = makeRun(u"fold-b"_s, u"t"_s, RunStatus::Running, now);
        Run bDone = makeRun(u"fold-b"_s, u"t"_s, RunStatus::Succeeded, now);
        bDone.result = QJsonValue(true);
        store->recordQueued(makeRun(u"fold-b"_s, u"t"_s, RunStatus::Queued, now));
        store->recordFinished(bDone, [] {});
        store->recordStarted(bRunning);
        QVERIFY(holder.exec(u"ROLLBACK"_s));
    }
    QVERIFY(store->flush(30s));
    std::optional<Run> stored = store->findRun(u"fold-b"_s);
    QCOMPARE(stored->status, RunStatus::Succeeded);
    QCOMPARE(stored->result, QJsonValue(true));

    // Lines recorded after a state that was held back keep their order with the lines
    // before it, and the finish that follows wins.
    Run c = makeRun(u"fold-c"_s, u"t"_s, RunStatus::Running, now);
    store->recordStarted(c);
    store->recordLog(c.id, makeLines(1, 2));
    std::this_thread::sleep_for(5ms);
    store->recordLog(c.id, makeLines(3, 5));
    Run cDone = makeRun(c.id, u"t"_s, RunStatus::Failed, now);
    cDone.error = RunError{u"boom"_s, u"Test"_s, {}, false};
    cDone.logLines = 5;
    QVERIFY(recordFinishedAndWait(*store, cDone));
    stored = store->findRun(c.id);
    QCOMPARE(stored->status, RunStatus::Failed);
    QCOMPARE(stored->error.message, u"boom"_s);
    compareLines(store->readLog(c.id, 1, 100), makeLines(1, 5));
}

void TestStore::findRunsFilters_data()
{
    QTest::addColumn<QString>("task");
    QTest::addColumn<int>("status"); // -1: any
    QTest::addColumn<int>("fromMinute"); // -1: open
    QTest::addColumn<int>("toMinute");   // -1: open

    QTest::newRow("everything") << QString() << -1 << -1 << -1;
    QTest::newRow("task") << u"build"_s << -1 << -1 << -1;
    QTest::newRow("status") << QString() << int(RunStatus::Failed) << -1 << -1;
    QTest::newRow("task and status") << u"deploy"_s << int(RunStatus::Succeeded) << -1 << -1;
    QTest::newRow("from") << QString() << -1 << 20 << -1;
    QTest::newRow("to") << QString() << -1 << -1 << 9;
    QTest::newRow("range") << QString() << -1 << 5 << 15;
    QTest::newRow("everything at once") << u"build"_s << int(RunStatus::Succeeded) << 3 << 25;
    QTest::newRow("nothing matches") << u"nope"_s << -1 << -1 << -1;
    QTest::newRow("running") << QString() << int(RunStatus::Running) << -1 << -1;
}

void TestStore::findRunsFilters()
{
    QFETCH(QString, task);
    QFETCH(int, status);
    QFETCH(int, fromMinute);
    QFETCH(int, toMinute);

    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime base = QDateTime::fromMSecsSinceEpoch(1700000000000, Qt::UTC);
    const QStringList tasks = {u"build"_s, u"deploy"_s, u"backup"_s};
    const RunStatus statuses[] = {RunStatus::Succeeded, RunStatus::Failed, RunStatus::Canceled,
                                  RunStatus::Succeeded, RunStatus::Running};
    QList<Run> runs;
    // Recorded out of time order, so the answer's order must come from the query.
    for (int i : {7, 3, 29, 0, 12, 18, 25, 5, 9, 14, 21, 1, 27, 16, 10, 4, 23, 8, 19, 2,
                  28, 6, 11, 24, 15, 13, 26, 17, 20, 22}) {
        Run run = makeRun(u"run-%1"_s.arg(QString::number(i).rightJustified(2, u'0')), tasks.at(i % 3), statuses[i % 5], base.addSecs(60 * i));
        if (run.isFinished())
            QVERIFY(recordFinishedAndWait(*store, run));
        else
            store->recordStarted(run);
        runs << run;
    }

    QList<Run> expected;
    for (const Run &run : std::as_const(runs)) {
        const qint64 minute = base.secsTo(run.queuedAt) / 60;
        if ((task.isEmpty() || run.task == task) && (status < 0 || int(run.status) == status)
            && (fromMinute < 0 || minute >= fromMinute) && (toMinute < 0 || minute < toMinute)) {
            expected << run;
        }
    }
    std::sort(expected.begin(), expected.end(), [](const Run &a, const Run &b) { return a.queuedAt > b.queuedAt; });

    RunQuery query;
    query.task = task;
    if (status >= 0)
        query.status = RunStatus(status);
    if (fromMinute >= 0)
        query.from = base.addSecs(60 * fromMinute);
    if (toMinute >= 0)
        query.to = base.addSecs(60 * toMinute);
    query.limit = 100;
    const RunPage page = store->findRuns(query);
    QCOMPARE(page.total, expected.size());
    QStringList got;
    for (const Run &run : page.runs)
        got << run.id;
    QStringList want;
    for (const Run &run : std::as_const(expected))
        want << run.id;
    QCOMPARE(got, want);
    for (const Run &run : page.runs) {
        const auto match = std::find_if(runs.cbegin(), runs.cend(), [&](const Run &r) { return r.id == run.id; });
        compareRuns(run, *match);
    }
}

void TestStore::findRunsPages()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime base = QDateTime::fromMSecsSinceEpoch(1700000000000, Qt::UTC);
    for (int i = 0; i < 23; ++i)
        store->recordQueued(makeRun(u"q-%1"_s.arg(QString::number(i).rightJustified(2, u'0')), u"t"_s, RunStatus::Queued, base.addSecs(i)));
    // Nothing waits for a flush here: a query sees what was recorded before it.
    QStringList seen;
    for (int offset = 0; offset < 30; offset += 5) {
        RunQuery query;
        query.limit = 5;
        query.offset = offset;
        const RunPage page = store->findRuns(query);
        QCOMPARE(page.total, 23);
        QCOMPARE(page.runs.size(), std::clamp(23 - offset, 0, 5));
        for (const Run &run : page.runs)
            seen << run.id;
    }
    QStringList expected;
    for (int i = 22; i >= 0; --i)
        expected << u"q-%1"_s.arg(QString::number(i).rightJustified(2, u'0'));
    QCOMPARE(seen, expected);

    RunQuery countOnly;
    countOnly.limit = 0;
    const RunPage counted = store->findRuns(countOnly);
    QCOMPARE(counted.total, 23);
    QVERIFY(counted.runs.isEmpty());
    RunQuery huge;
    huge.limit = 1000000;
    QCOMPARE(store->findRuns(huge).runs.size(), 23);
}

void TestStore::pruneKeepsActiveRuns()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const QDateTime old = now.addDays(-10);
    const Run oldDone = makeRun(u"old-done"_s, u"t"_s, RunStatus::Succeeded, old);
    const Run oldFailed = makeRun(u"old-failed"_s, u"t"_s, RunStatus::Failed, old);
    const Run oldRunning = makeRun(u"old-running"_s, u"t"_s, RunStatus::Running, old);
    const Run oldQueued = makeRun(u"old-queued"_s, u"t"_s, RunStatus::Queued, old);
    const Run recent = makeRun(u"recent"_s, u"t"_s, RunStatus::Succeeded, now.addSecs(-60));
    for (const Run &run : {oldDone, oldFailed, oldRunning, oldQueued, recent}) {
        store->recordQueued(makeRun(run.id, run.task, RunStatus::Queued, run.queuedAt));
        store->recordLog(run.id, makeLines(1, 2500));
        if (run.isFinished())
            QVERIFY(recordFinishedAndWait(*store, run));
        else
            store->recordStarted(run);
    }
    QVERIFY(store->flush(30s));

    QCOMPARE(store->pruneFinishedBefore(now.addDays(-5)), 2);
    QVERIFY(!store->findRun(oldDone.id));
    QVERIFY(!store->findRun(oldFailed.id));
    QVERIFY(store->readLog(oldDone.id).isEmpty());
    {
        RawDb raw(store->location());
        QCOMPARE(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id IN ('old-done', 'old-failed')"_s).toInt(), 0);
        QVERIFY(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id = 'old-running'"_s).toInt() >= 3);
    }
    for (const Run &kept : {oldRunning, oldQueued, recent}) {
        QVERIFY2(store->findRun(kept.id), qPrintable(kept.id));
        QCOMPARE(readWholeLog(*store, kept.id).size(), 2500);
    }
    // Even a cutoff in the future never takes an unfinished run.
    QCOMPARE(store->pruneFinishedBefore(now.addDays(1)), 1);
    QVERIFY(store->findRun(oldRunning.id));
    QVERIFY(store->findRun(oldQueued.id));
    QCOMPARE(store->findRuns({}).total, 2);
    QCOMPARE(store->pruneFinishedBefore(QDateTime()), 0);
}

void TestStore::pruneCutoffIsInclusive()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime queued = QDateTime::currentDateTimeUtc().addSecs(-60);
    const Run atCutoff = makeRun(u"at-cutoff"_s, u"t"_s, RunStatus::Succeeded, queued);
    const Run justAfter = makeRun(u"just-after"_s, u"t"_s, RunStatus::Failed, queued.addMSecs(1));
    for (const Run &run : {atCutoff, justAfter}) {
        store->recordQueued(makeRun(run.id, run.task, RunStatus::Queued, run.queuedAt));
        QVERIFY(recordFinishedAndWait(*store, run));
    }
    QVERIFY(store->flush(30s));

    // A run that finished in the very millisecond of the cutoff goes; one a millisecond
    // later stays.
    QCOMPARE(store->pruneFinishedBefore(atCutoff.finishedAt), 1);
    QVERIFY(!store->findRun(atCutoff.id));
    QVERIFY(store->findRun(justAfter.id));
    QCOMPARE(store->pruneFinishedBefore(justAfter.finishedAt.addMSecs(-1)), 0);
    QCOMPARE(store->pruneFinishedBefore(justAfter.finishedAt), 1);
    QCOMPARE(store->findRuns({}).total, 0);
}

void TestStore::retentionPrunesInBackground()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    QVERIFY(recordFinishedAndWait(*store, makeRun(u"ancient"_s, u"t"_s, RunStatus::Succeeded, now.addDays(-40))));
    QVERIFY(recordFinishedAndWait(*store, makeRun(u"fresh"_s, u"t"_s, RunStatus::Succeeded, now.addDays(-2))));
    store->recordStarted(makeRun(u"forever"_s, u"t"_s, RunStatus::Running, now.addDays(-90)));

    store->startRetention(0);
    QVERIFY(store->flush(30s));
    QTest::qWait(100);
    QVERIFY(store->findRun(u"ancient"_s));

    store->startRetention(30, 200ms);
    QTRY_VERIFY_WITH_TIMEOUT(!store->findRun(u"ancient"_s), 30000);
    QVERIFY(store->findRun(u"fresh"_s));
    QVERIFY(store->findRun(u"forever"_s));
    // Later runs are pruned by the periodic pass, not only the first one.
    QVERIFY(recordFinishedAndWait(*store, makeRun(u"ancient-2"_s, u"t"_s, RunStatus::Failed, now.addDays(-31))));
    QTRY_VERIFY_WITH_TIMEOUT(!store->findRun(u"ancient-2"_s), 30000);
    QVERIFY(store->findRun(u"fresh"_s));
}

void TestStore::migratesVersion1()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    const qint64 t0 = 1600000000000;
    {
        RawDb raw(path);
        QVERIFY(raw.isOpen());
        for (const char *sql : kVersion1Schema) {
            QString error;
            QVERIFY2(raw.exec(QString::fromLatin1(sql), &error), qPrintable(error));
        }
        QVERIFY(raw.exec(u"INSERT INTO runs (id, task, status, attempt, args, queued_at, started_at, finished_at,"
                         " progress_done, progress_total, progress_message, result, log_lines) VALUES"
                         " ('v1-ok', 'backup', 'succeeded', 2, '{\"format\":\"sql\"}', %1, %2, %3, 5, 5, 'done',"
                         " '{\"file\":\"b.sql\"}', 2500)"_s.arg(t0).arg(t0 + 1000).arg(t0 + 9000)));
        QVERIFY(raw.exec(u"INSERT INTO runs (id, task, status, attempt, queued_at, started_at, finished_at,"
                         " error_message, error_kind, error_detail, error_transient, log_lines) VALUES"
                         " ('v1-failed', 'sync', 'failed', 1, %1, %2, %3, 'boom', 'IOError', 'stack', 1, 3)"_s
                             .arg(t0 + 60000).arg(t0 + 61000).arg(t0 + 62000)));
        QVERIFY(raw.exec(u"INSERT INTO runs (id, task, status, attempt, queued_at, started_at) VALUES"
                         " ('v1-running', 'sync', 'running', 1, %1, %2)"_s.arg(t0 + 120000).arg(t0 + 121000)));
        QVERIFY(raw.db().transaction());
        QSqlQuery insert(raw.db());
        QVERIFY(insert.prepare(u"INSERT INTO log_lines VALUES (?, ?, ?, ?, ?)"_s));
        auto add = [&](const QString &run, const LogLine &line) {
            insert.bindValue(0, run);
            insert.bindValue(1, line.number);
            insert.bindValue(2, line.timeMs);
            insert.bindValue(3, logStreamName(line.stream));
            insert.bindValue(4, line.text);
            return insert.exec();
        };
        for (const LogLine &line : makeLines(1, 2500, u"v1 line %1"_s))
            QVERIFY(add(u"v1-ok"_s, line));
        for (const LogLine &line : makeLines(1, 3, u"failure %1"_s))
            QVERIFY(add(u"v1-failed"_s, line));
        insert.finish();
        QVERIFY(raw.db().commit());
        QCOMPARE(raw.scalar(u"PRAGMA user_version"_s).toInt(), 1);
    }

    auto store = openStore(dir.path());
    QVERIFY(store);
    const std::optional<Run> ok = store->findRun(u"v1-ok"_s);
    QVERIFY(ok);
    QCOMPARE(ok->task, u"backup"_s);
    QCOMPARE(ok->status, RunStatus::Succeeded);
    QCOMPARE(ok->attempt, 2);
    QCOMPARE(ok->maxAttempts, 2);
    QCOMPARE(ok->args, (QJsonObject{{u"format"_s, u"sql"_s}}));
    QCOMPARE(ok->queuedAt.toMSecsSinceEpoch(), t0);
    QCOMPARE(ok->startedAt.toMSecsSinceEpoch(), t0 + 1000);
    QCOMPARE(ok->finishedAt.toMSecsSinceEpoch(), t0 + 9000);
    QCOMPARE(ok->progress, (Progress{5, 5, u"done"_s}));
    QCOMPARE(ok->result, QJsonValue(QJsonObject{{u"file"_s, u"b.sql"_s}}));
    QCOMPARE(ok->logLines, 2500);
    QVERIFY(ok->owner.isEmpty());
    compareLines(readWholeLog(*store, u"v1-ok"_s), makeLines(1, 2500, u"v1 line %1"_s));
    compareLines(store->readLog(u"v1-ok"_s, 1999, 3), makeLines(1999, 2001, u"v1 line %1"_s));

    const std::optional<Run> failed = store->findRun(u"v1-failed"_s);
    QVERIFY(failed);
    QCOMPARE(failed->error.message, u"boom"_s);
    QCOMPARE(failed->error.kind, u"IOError"_s);
    QCOMPARE(failed->error.detail, u"stack"_s);
    QVERIFY(failed->error.transient);
    QVERIFY(failed->result.isUndefined());
    QVERIFY(!failed->startedAt.isNull());
    compareLines(store->readLog(u"v1-failed"_s), makeLines(1, 3, u"failure %1"_s));
    QVERIFY(!store->findRun(u"v1-running"_s)->finishedAt.isValid());
    QVERIFY(store->traceId(u"v1-ok"_s) != store->traceId(u"v1-failed"_s));
    QCOMPARE(store->traceId(u"v1-ok"_s).size(), 32);

    RawDb raw(path);
    QCOMPARE(raw.scalar(u"PRAGMA user_version"_s).toInt(), SqliteSchema::kVersion);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_active'"_s).toInt(), 1);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM sqlite_master WHERE name = 'log_lines'"_s).toInt(), 0);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id = 'v1-ok'"_s).toInt(), 3);

    // A run from before owners were recorded cannot still be running anywhere.
    QCOMPARE(store->recoverInterrupted(), 1);
    const std::optional<Run> recovered = store->findRun(u"v1-running"_s);
    QCOMPARE(recovered->status, RunStatus::Interrupted);
    QVERIFY(recovered->finishedAt.isValid());
    QVERIFY(recovered->error.message.contains(u"interrupted on restart"_s));
}

void TestStore::refusesNewerVersion()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    {
        RawDb raw(path);
        QVERIFY(raw.exec(u"CREATE TABLE future (x)"_s));
        QVERIFY(raw.exec(u"PRAGMA user_version = 99"_s));
    }
    const QByteArray before = fileHash(path);
    QString error;
    QVERIFY(!SqliteRunStore::open(dir.path(), &error));
    qInfo().noquote() << error;
    QVERIFY2(error.contains(path), qPrintable(error));
    QVERIFY2(error.contains(u"newer"_s) && error.contains(u"99"_s), qPrintable(error));
    QCOMPARE(fileHash(path), before);
}

void TestStore::refusesCorruptFile_data()
{
    QTest::addColumn<QString>("damage");
    QTest::newRow("garbage") << u"garbage"_s;
    QTest::newRow("header wiped") << u"header"_s;
    QTest::newRow("table page overwritten") << u"page"_s;
}

void TestStore::refusesCorruptFile()
{
    QFETCH(QString, damage);
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    if (damage == u"garbage"_s) {
        QFile file(path);
        QVERIFY(file.open(QIODevice::WriteOnly));
        QByteArray noise;
        for (int i = 0; i < 16384; ++i)
            noise.append(char((i * 7919 + 13) % 251));
        file.write(noise);
    } else {
        {
            auto store = openStore(dir.path());
            QVERIFY(store);
            for (int i = 0; i < 200; ++i) {
                Run run = makeRun(u"run-%1"_s.arg(i), u"t"_s, RunStatus::Queued, QDateTime::currentDateTimeUtc());
                run.args = QJsonObject{{u"padding"_s, QString(200, u'p')}};
                store->recordQueued(run);
            }
            QVERIFY(store->flush(30s));
        }
        QVERIFY(!QFileInfo::exists(path + u"-wal"_s) || QFileInfo(path + u"-wal"_s).size() == 0);
        QFile file(path);
        QVERIFY(file.open(QIODevice::ReadWrite));
        if (damage == u"header"_s) {
            file.write(QByteArray(100, '\0'));
        } else {
            const QByteArray header = file.read(100);
            int pageSize = (quint8(header.at(16)) << 8) | quint8(header.at(17));
            if (pageSize == 1)
                pageSize = 65536;
            QVERIFY(file.size() >= 3 * pageSize);
            // Page 2 is the root of the first table created (runs): a b-tree page no more.
            file.seek(pageSize);
            file.write(QByteArray(pageSize, char(0xA5)));
        }
    }
    const QByteArray before = fileHash(path);
    QString error;
    const auto store = SqliteRunStore::open(dir.path(), &error);
    QVERIFY(!store);
    qInfo().noquote() << error;
    QVERIFY2(error.contains(path), qPrintable(error));
    QVERIFY2(error.contains(u"corrupt"_s), qPrintable(error));
    QVERIFY2(error.contains(u"move it aside"_s), qPrintable(error));
    QCOMPARE(fileHash(path), before);
    QVERIFY(QFileInfo::exists(path));
}

void TestStore::refusesUnwritableLocation_data()
{
    QTest::addColumn<QString>("shape");
    QTest::addColumn<QString>("expected");
    QTest::newRow("read-only directory, no history yet") << u"dir"_s << u"cannot be opened"_s;
    QTest::newRow("read-only history file and directory") << u"file"_s << u"cannot be written"_s;
    QTest::newRow("history path is a directory") << u"isdir"_s << u"is a directory"_s;
    QTest::newRow("data directory cannot be created") << u"proc"_s << u"cannot create data directory"_s;
}

void TestStore::refusesUnwritableLocation()
{
    QFETCH(QString, shape);
    QFETCH(QString, expected);
    QTemporaryDir tmp;
    QString dataDir = tmp.filePath(u"data"_s);
    QVERIFY(QDir().mkpath(dataDir));
    const QString path = QDir(dataDir).filePath(u"history.sqlite3"_s);
    if (shape == u"file"_s) {
        auto store = openStore(dataDir);
        QVERIFY(store);
        store->recordQueued(makeRun(u"kept"_s, u"t"_s, RunStatus::Queued, QDateTime::currentDateTimeUtc()));
        QVERIFY(store->flush(30s));
        store.reset();
        QVERIFY(QFile::setPermissions(path, QFile::ReadOwner | QFile::ReadUser));
    } else if (shape == u"isdir"_s) {
        QVERIFY(QDir().mkpath(path));
    } else if (shape == u"proc"_s) {
        dataDir = u"/proc/self/taskdeck-history"_s;
    }
    if (shape == u"dir"_s || shape == u"file"_s)
        QVERIFY(QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::ExeOwner | QFile::ReadUser | QFile::ExeUser));
    const auto restore = qScopeGuard([&] {
        QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner);
    });
    const QByteArray before = fileHash(path);

    QString error;
    std::unique_ptr<SqliteRunStore> store;
    {
        PermissionsEnforced enforced;
        if (!enforced.ok())
            QSKIP("running as root and cannot drop CAP_DAC_OVERRIDE, so permissions cannot be tested");
        store = SqliteRunStore::open(dataDir, &error);
    }
    QVERIFY(!store);
    qInfo().noquote() << error;
    QVERIFY2(error.contains(shape == u"proc"_s ? dataDir : path), qPrintable(error));
    QVERIFY2(error.contains(expected), qPrintable(error));
    QCOMPARE(fileHash(path), before);
}

void TestStore::readsAHistoryItCannotWrite_data()
{
    QTest::addColumn<bool>("folderWritable");
    QTest::addColumn<QString>("reason");
    QTest::newRow("read-only file and folder") << false << u"is not writable (mode 0500)"_s;
    QTest::newRow("read-only file") << true << u"history.sqlite3 is not writable (mode 0400)"_s;
}

void TestStore::readsAHistoryItCannotWrite()
{
    QFETCH(bool, folderWritable);
    QFETCH(QString, reason);
    QTemporaryDir tmp;
    const QString dataDir = tmp.filePath(u"data"_s);
    const QString path = QDir(dataDir).filePath(u"history.sqlite3"_s);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    {
        auto store = openStore(dataDir);
        QVERIFY(store);
        store->recordQueued(makeRun(u"kept"_s, u"t"_s, RunStatus::Running, t));
        store->recordLog(u"kept"_s, makeLines(1, 30));
        store->recordFinished(makeRun(u"kept"_s, u"t"_s, RunStatus::Succeeded, t), {});
        QVERIFY(store->flush(30s));
    }
    QVERIFY(QFile::setPermissions(path, QFile::ReadOwner));
    if (!folderWritable)
        QVERIFY(QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::ExeOwner));
    const auto restore = qScopeGuard([&] {
        QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner);
    });
    PermissionsEnforced enforced;
    if (!enforced.ok())
        QSKIP("running as root and cannot drop CAP_DAC_OVERRIDE, so permissions cannot be tested");
    QString error;
    // A store that would record runs is still refused.
    QVERIFY(!SqliteRunStore::open(dataDir, &error));
    QVERIFY2(error.contains(u"history.sqlite3"_s), qPrintable(error));
    const QStringList before = QDir(dataDir).entryList(QDir::Files | QDir::Hidden);
    const QByteArray hash = fileHash(path);

    auto store = SqliteRunStore::open(dataDir, &error, SqliteRunStore::OpenMode::ReadOnlyWhenUnwritable);
    QVERIFY2(store, qPrintable(error));
    QVERIFY(store->isReadOnly());
    QVERIFY2(store->readOnlyReason().contains(reason), qPrintable(store->readOnlyReason()));
    const std::optional<Run> run = store->findRun(u"kept"_s);
    QVERIFY(run);
    QCOMPARE(run->status, RunStatus::Succeeded);
    QCOMPARE(store->findRuns(RunQuery{}).total, 1);
    const LogLines log = store->readLog(u"kept"_s, 1, 100);
    QCOMPARE(log.size(), 30);
    QCOMPARE(log.constLast().number, 30);
    QCOMPARE(store->recoverInterrupted(), 0);
    QVERIFY(store->checkIntegrity().isEmpty());
    store.reset();
    QCOMPARE(fileHash(path), hash);
    QCOMPARE(QDir(dataDir).entryList(QDir::Files | QDir::Hidden), before);
}

void TestStore::namesAnUnwritableShm()
{
    QTemporaryDir tmp;
    const QString dataDir = tmp.filePath(u"data"_s);
    const QString path = QDir(dataDir).filePath(u"history.sqlite3"_s);
    {
        auto store = openStore(dataDir);
        QVERIFY(store);
        store->recordQueued(makeRun(u"kept"_s, u"t"_s, RunStatus::Succeeded, QDateTime::currentDateTimeUtc()));
        QVERIFY(store->flush(30s));
    }
    // A -shm left behind read-only (by another user, or a restore from a backup).
    const QString shm = path + u"-shm"_s;
    const auto leaveShm = [&shm] {
        QFile leftover(shm);
        return leftover.open(QIODevice::WriteOnly)
               && leftover.setPermissions(QFile::ReadOwner | QFile::ReadUser | QFile::ReadGroup | QFile::ReadOther);
    };
    const auto restore = qScopeGuard([&] { QFile::setPermissions(shm, QFile::ReadOwner | QFile::WriteOwner); });

    PermissionsEnforced enforced;
    if (!enforced.ok())
        QSKIP("running as root and cannot drop CAP_DAC_OVERRIDE, so permissions cannot be tested");
    QVERIFY(leaveShm());
    QString error;
    const auto writable = SqliteRunStore::open(dataDir, &error);
    QVERIFY(!writable);
    QVERIFY2(error.contains(shm + u" is not writable (mode 0444)"_s), qPrintable(error));

    // SQLite removed the file it could not use as it closed; left behind again, a command
    // that only reads reads through it.
    QFile::remove(shm);
    QVERIFY(leaveShm());
    auto store = SqliteRunStore::open(dataDir, &error, SqliteRunStore::OpenMode::ReadOnlyWhenUnwritable);
    QVERIFY2(store, qPrintable(error));
    QVERIFY(store->isReadOnly());
    QVERIFY2(store->readOnlyReason().contains(shm + u" is not writable (mode 0444)"_s),
             qPrintable(store->readOnlyReason()));
    QVERIFY(store->findRun(u"kept"_s));
}

void TestStore::openFailsWhileLocked()
{
    QTemporaryDir dir;
    {
        auto store = openStore(dir.path());
        QVERIFY(store);
    }
    RawDb holder(dir.filePath(u"history.sqlite3"_s));
    QVERIFY(holder.exec(u"BEGIN EXCLUSIVE"_s));
    QString error;
    const auto store = SqliteRunStore::open(dir.path(), &error);
    QVERIFY(!store);
    qInfo().noquote() << error;
    QVERIFY2(error.contains(dir.filePath(u"history.sqlite3"_s)), qPrintable(error));
    QVERIFY2(error.contains(u"locked"_s), qPrintable(error));
    QVERIFY(holder.exec(u"ROLLBACK"_s));
    QVERIFY(openStore(dir.path()));
}

void TestStore::writesWaitOutALock()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    RawDb holder(store->location());
    QVERIFY(holder.exec(u"BEGIN EXCLUSIVE"_s));

    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"history database .* is locked by another process.*will try again"_s));
    const QDateTime t = QDateTime::currentDateTimeUtc();
    store->recordQueued(makeRun(u"patient"_s, u"t"_s, RunStatus::Queued, t));
    store->recordLog(u"patient"_s, makeLines(1, 10));
    auto called = std::make_shared<std::atomic<bool>>(false);
    // The engine must not hang on a locked history: durable comes even though the commit
    // could not happen yet.
    store->recordFinished(makeRun(u"patient"_s, u"t"_s, RunStatus::Succeeded, t), [called] { called->store(true); });
    QTRY_VERIFY_WITH_TIMEOUT(called->load(), 60000);
    QVERIFY(!store->isAvailable());
    QVERIFY2(store->errorString().contains(u"locked"_s), qPrintable(store->errorString()));
    QVERIFY(store->errorString().contains(store->location()));
    QVERIFY(!store->flush(10ms));

    QVERIFY(holder.exec(u"ROLLBACK"_s));
    // Kept and written once the lock is gone.
    QVERIFY(store->flush(60s));
    QTRY_VERIFY_WITH_TIMEOUT(store->isAvailable(), 30000);
    const std::optional<Run> run = store->findRun(u"patient"_s);
    QVERIFY(run);
    QCOMPARE(run->status, RunStatus::Succeeded);
    QCOMPARE(store->readLog(u"patient"_s).size(), 10);
    QVERIFY(store->errorString().isEmpty());
}

void TestStore::sharedByTwoStores()
{
    QTemporaryDir dir;
    auto storeA = openStore(dir.path());
    auto storeB = openStore(dir.path());
    QVERIFY(storeA && storeB);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"work"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 2000; ++i)
            ctx.log(u"%1 %2"_s.arg(ctx.runId()).arg(i));
        return ctx.runId();
    })));
    TaskEngine engineA(&registry);
    TaskEngine engineB(&registry);
    engineA.setRecorder(storeA.get());
    engineB.setRecorder(storeB.get());
    QStringList ids;
    for (int i = 0; i < 6; ++i) {
        ids << engineA.start(u"work"_s, {}).runId;
        ids << engineB.start(u"work"_s, {}).runId;
    }
    for (const QString &id : std::as_const(ids)) {
        TaskEngine &engine = ids.indexOf(id) % 2 == 0 ? engineA : engineB;
        const std::optional<Run> done = engine.waitForFinished(id, 60s);
        QVERIFY(done);
        QCOMPARE(done->status, RunStatus::Succeeded);
    }
    for (SqliteRunStore *store : {storeA.get(), storeB.get()}) {
        QCOMPARE(store->findRuns({}).total, ids.size());
        for (const QString &id : std::as_const(ids)) {
            const std::optional<Run> run = store->findRun(id);
            QVERIFY(run);
            QCOMPARE(run->result, QJsonValue(id));
            const LogLines log = readWholeLog(*store, id);
            QCOMPARE(log.size(), 2000);
            QCOMPARE(log.last().text, u"%1 2000"_s.arg(id));
        }
    }
}

void TestStore::concurrentCreationOfNewHistory()
{
    // Several processes starting together on an empty data directory all get the history.
    for (int round = 0; round < 8; ++round) {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        constexpr int kOpeners = 4;
        std::atomic<int> ready = 0;
        QString errors[kOpeners];
        bool opened[kOpeners] = {};
        std::vector<std::thread> threads;
        for (int i = 0; i < kOpeners; ++i) {
            threads.emplace_back([&, i] {
                ++ready;
                while (ready.load() < kOpeners) {}
                auto store = SqliteRunStore::open(dir.path(), &errors[i]);
                opened[i] = store != nullptr;
            });
        }
        for (auto &t : threads)
            t.join();
        for (int i = 0; i < kOpeners; ++i)
            QVERIFY2(opened[i], qPrintable(errors[i]));
    }
}

void TestStore::queriesFromOtherThreads()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    std::atomic<int> failures{0};
    std::atomic<bool> writing{true};
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
        readers.emplace_back([&] {
            qint64 lastTotal = 0;
            while (writing.load()) {
                const RunPage page = store->findRuns({});
                // What a reader saw once never disappears.
                if (page.total < lastTotal)
                    ++failures;
                lastTotal = page.total;
                for (const Run &run : page.runs) {
                    const LogLines lines = store->readLog(run.id, 1, 50);
                    for (qsizetype i = 0; i < lines.size(); ++i) {
                        if (lines.at(i).number != i + 1)
                            ++failures;
                    }
                }
            }
        });
    }
    for (int i = 0; i < 40; ++i) {
        const QString id = u"threaded-%1"_s.arg(i);
        store->recordQueued(makeRun(id, u"t"_s, RunStatus::Queued, t.addSecs(i)));
        store->recordLog(id, makeLines(1, 100));
        QVERIFY(recordFinishedAndWait(*store, makeRun(id, u"t"_s, RunStatus::Succeeded, t.addSecs(i))));
    }
    writing = false;
    for (std::thread &reader : readers)
        reader.join();
    QCOMPARE(failures.load(), 0);
    QCOMPARE(store->findRuns({}).total, 40);
}

void TestStore::logChunkCarriesSeq()
{
    LogLines lines = makeLines(1, 5);
    const qint64 seqs[] = {3, 5, 6, 200, 201};
    for (qsizetype i = 0; i < lines.size(); ++i)
        lines[i].seq = seqs[i];
    LogLines decoded;
    QVERIFY(LogChunk::decode(LogChunk::encode(lines), 1, &decoded));
    compareLines(decoded, lines);
    for (qsizetype i = 0; i < lines.size(); ++i)
        QCOMPARE(decoded.at(i).seq, seqs[i]);
    LogChunk chunk;
    for (const LogLine &line : std::as_const(lines))
        chunk.append(line);
    QCOMPARE(chunk.maxSeq(), 201);

    // A chunk written before lines carried their seq (format 1): lines 1 "a" (out, time 10)
    // and 2 "bc" (err, time 12). It still reads, every line with seq 0.
    const QByteArray format1("\x01\x02\x14" "\x00\x00\x00\x01" "a" "\x01\x04\x01\x02" "bc", 14);
    LogLines old;
    QVERIFY(LogChunk::decode(format1, 1, &old));
    QCOMPARE(old.size(), 2);
    QCOMPARE(old.at(0).text, u"a"_s);
    QCOMPARE(old.at(0).timeMs, 10);
    QCOMPARE(old.at(1).number, 2);
    QCOMPARE(old.at(1).text, u"bc"_s);
    QCOMPARE(old.at(1).stream, LogStream::Err);
    QCOMPARE(old.at(1).timeMs, 12);
    QCOMPARE(old.at(0).seq, 0);
    QCOMPARE(old.at(1).seq, 0);
}

void TestStore::persistsSeqAndRetrying()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    const QString id = u"flaky"_s;

    // Events 1 (queued), 2 (start), 3..7 (lines), 8 (waiting for a retry).
    LogLines lines = makeLines(1, 5);
    for (LogLine &line : lines)
        line.seq = line.number + 2;
    Run waiting = makeRun(id, u"t"_s, RunStatus::Retrying, t);
    waiting.maxAttempts = 3;
    waiting.seq = 8;
    waiting.nextAttemptAt = t.addSecs(30);
    waiting.error = RunError{u"connection reset"_s, u"IOError"_s, {}, true};
    store->recordLog(id, lines);
    store->recordRetrying(waiting);
    QVERIFY(store->flush(30s));

    std::optional<Run> found = store->findRun(id);
    QVERIFY(found);
    QCOMPARE(found->status, RunStatus::Retrying);
    QCOMPARE(found->seq, 8);
    QCOMPARE(found->nextAttemptAt, t.addSecs(30));
    const RunPage page = store->findRuns(byTask(u"t"_s));
    QCOMPARE(page.runs.size(), 1);
    QCOMPARE(page.runs.first().seq, 8);
    QCOMPARE(page.runs.first().status, RunStatus::Retrying);
    QCOMPARE(page.runs.first().nextAttemptAt, t.addSecs(30));
    const LogLines stored = store->readLog(id);
    compareLines(stored, lines);
    for (qsizetype i = 0; i < stored.size(); ++i)
        QCOMPARE(stored.at(i).seq, lines.at(i).seq);

    // The next attempt starts (event 9): a retrying run is not finished, so it runs again.
    Run again = makeRun(id, u"t"_s, RunStatus::Running, t);
    again.attempt = 2;
    again.maxAttempts = 3;
    again.seq = 9;
    store->recordStarted(again);
    QVERIFY(store->flush(30s));
    found = store->findRun(id);
    QCOMPARE(found->status, RunStatus::Running);
    QCOMPARE(found->attempt, 2);
    QCOMPARE(found->seq, 9);
    QVERIFY(!found->nextAttemptAt.isValid());

    // Lines alone (events 10..12) move the run's seq on: the row and its log stand for them.
    LogLines more = makeLines(6, 8);
    for (LogLine &line : more)
        line.seq = line.number + 4;
    store->recordLog(id, more);
    QVERIFY(store->flush(30s));
    QCOMPARE(store->findRun(id)->seq, 12);
    QCOMPARE(store->findRun(id)->logLines, 8);
}

void TestStore::recoversRetryingRuns()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    Run waiting = makeRun(u"orphan"_s, u"t"_s, RunStatus::Retrying, QDateTime::currentDateTimeUtc());
    // Pid 1 never started at that time: the owner is gone.
    waiting.owner = u"1@%1#999999999999"_s.arg(RunOwner::localHost());
    waiting.nextAttemptAt = waiting.queuedAt.addSecs(60);
    store->recordRetrying(waiting);
    QVERIFY(store->flush(30s));

    QCOMPARE(store->recoverInterrupted(), 1);
    const std::optional<Run> recovered = store->findRun(u"orphan"_s);
    QVERIFY(recovered);
    QCOMPARE(recovered->status, RunStatus::Interrupted);
    QVERIFY2(recovered->error.message.contains(u"retrying"_s), qPrintable(recovered->error.message));
}

// Builds a history's tables as the given schema version made them, without the version mark.
static bool buildSchemaUpTo(QSqlDatabase db, int version)
{
    using Step = bool (*)(QSqlDatabase &, QSqlError *);
    const Step steps[] = {&SqliteSchema::createVersion1, &SqliteSchema::migrateToVersion2,
                          &SqliteSchema::migrateToVersion3, &SqliteSchema::migrateToVersion4};
    QSqlError error;
    for (int i = 0; i < version; ++i) {
        if (!steps[i](db, &error)) {
            qWarning() << error;
            return false;
        }
    }
    return true;
}

void TestStore::migratesVersion3()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    const qint64 t0 = 1600000000000;
    {
        RawDb raw(path);
        QVERIFY(raw.isOpen());
        QVERIFY(buildSchemaUpTo(raw.db(), 3));
        QVERIFY(raw.exec(u"PRAGMA user_version = 3"_s));
        QVERIFY(raw.exec(u"INSERT INTO runs (id, task, status, attempt, queued_at, started_at, owner, trace_id) "
                         "VALUES ('v3-running', 'sync', 'running', 1, %1, %2, '', 'abc')"_s.arg(t0).arg(t0 + 1)));
        // The two-line chunk of format 1 from logChunkCarriesSeq().
        const QString rawChunk = QString::fromLatin1(QByteArray("\x01\x02\x14\x00\x00\x00\x01" "a"
                                                                 "\x01\x04\x01\x02" "bc", 14).toHex());
        QVERIFY(raw.exec(u"INSERT INTO log_chunks (run_id, first_line, last_line, data) "
                         "VALUES ('v3-running', 1, 2, X'%1')"_s.arg(rawChunk)));
    }
    auto store = openStore(dir.path());
    QVERIFY(store);
    RawDb raw(path);
    QCOMPARE(raw.scalar(u"PRAGMA user_version"_s).toInt(), SqliteSchema::kVersion);
    const std::optional<Run> run = store->findRun(u"v3-running"_s);
    QVERIFY(run);
    QCOMPARE(run->seq, 0);
    QVERIFY(!run->nextAttemptAt.isValid());
    const LogLines old = store->readLog(u"v3-running"_s);
    QCOMPARE(old.size(), 2);
    QCOMPARE(old.at(1).text, u"bc"_s);
    QCOMPARE(old.at(1).seq, 0);
    // Lines of unknown seq are never "after" anything.
    QVERIFY(store->readLogAfterSeq(u"v3-running"_s, 0).isEmpty());

    // New lines of the same run carry their seq, next to the old chunk.
    LogLines more = makeLines(3, 4);
    more[0].seq = 10;
    more[1].seq = 11;
    store->recordLog(u"v3-running"_s, more);
    QVERIFY(store->flush(30s));
    const LogLines all = store->readLog(u"v3-running"_s);
    QCOMPARE(all.size(), 4);
    QCOMPARE(all.at(3).seq, 11);
    const LogLines after = store->readLogAfterSeq(u"v3-running"_s, 10);
    QCOMPARE(after.size(), 1);
    QCOMPARE(after.first().number, 4);
}

void TestStore::readLogAfterSeqResumes()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QString id = u"long"_s;
    // 2,500 lines over three chunks; every tenth event is a progress report, not a line.
    LogLines lines = makeLines(1, 2500);
    qint64 seq = 2;
    for (LogLine &line : lines) {
        if (line.number % 10 == 0)
            ++seq;
        line.seq = ++seq;
    }
    store->recordStarted(makeRun(id, u"t"_s, RunStatus::Running, QDateTime::currentDateTimeUtc()));
    // One line arrives late and goes into a chunk already stored.
    LogLines late{lines.at(1499)};
    lines.removeAt(1499);
    store->recordLog(id, lines);
    QVERIFY(store->flush(30s));
    store->recordLog(id, late);
    QVERIFY(store->flush(30s));
    lines.insert(1499, late.first());

    for (const qint64 afterSeq : {qint64(0), qint64(2), lines.at(0).seq, lines.at(1498).seq, lines.at(1499).seq,
                                  lines.at(999).seq + 1, lines.last().seq - 1, lines.last().seq}) {
        LogLines expected;
        for (const LogLine &line : std::as_const(lines)) {
            if (line.seq > afterSeq)
                expected << line;
        }
        LogLines actual;
        // Pages of 700 lines, each read on after the last seq seen.
        for (qint64 next = afterSeq;;) {
            const LogLines page = store->readLogAfterSeq(id, next, 700);
            QVERIFY(page.size() <= 700);
            if (page.isEmpty())
                break;
            actual += page;
            next = page.last().seq;
        }
        compareLines(actual, expected);
        for (qsizetype i = 0; i < actual.size(); ++i)
            QCOMPARE(actual.at(i).seq, expected.at(i).seq);
    }
}

// --- asynchronous queries ----------------------------------------------------------------

void TestStore::asyncQueriesNeverBlockTheCaller()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    store->recordQueued(makeRun(u"early"_s, u"t"_s, RunStatus::Queued, t));
    QVERIFY(store->flush(30s));

    // Another connection takes the write lock: the store's writer cannot commit until it
    // is released, and a query that waits for it would hang its caller.
    RawDb holder(store->location());
    QVERIFY(holder.exec(u"BEGIN IMMEDIATE"_s));
    auto release = qScopeGuard([&holder] { holder.exec(u"ROLLBACK"_s); });
    Run late = makeRun(u"late"_s, u"t"_s, RunStatus::Running, t.addSecs(1));
    LogLines lines = makeLines(1, 3);
    for (LogLine &line : lines)
        line.seq = line.number + 2;
    store->recordStarted(late);
    store->recordLog(late.id, lines);

    struct Answers
    {
        std::optional<Run> run;
        RunPage page;
        LogLines log;
        LogLines afterSeq;
        int arrived = 0;
        bool allOnCaller = true;
    };
    auto answers = std::make_shared<Answers>();
    QThread *const caller = QThread::currentThread();
    auto arrived = [answers, caller] {
        ++answers->arrived;
        answers->allOnCaller = answers->allOnCaller && QThread::currentThread() == caller;
    };
    QFuture<std::optional<Run>> run = store->findRunAsync(late.id);
    run.then(this, [answers, arrived](const std::optional<Run> &value) { answers->run = value; arrived(); });
    QFuture<RunPage> page = store->findRunsAsync(byTask(u"t"_s));
    page.then(this, [answers, arrived](const RunPage &value) { answers->page = value; arrived(); });
    QFuture<LogLines> log = store->readLogAsync(late.id, 2, 10);
    log.then(this, [answers, arrived](const LogLines &value) { answers->log = value; arrived(); });
    QFuture<LogLines> afterSeq = store->readLogAfterSeqAsync(late.id, 3, 10);
    afterSeq.then(this, [answers, arrived](const LogLines &value) { answers->afterSeq = value; arrived(); });

    // Every call came back at once, while what they wait for is still blocked.
    QVERIFY(!run.isFinished());
    QVERIFY(!page.isFinished());
    QVERIFY(!log.isFinished());
    QVERIFY(!afterSeq.isFinished());
    QCOMPARE(answers->arrived, 0);

    QVERIFY(holder.exec(u"ROLLBACK"_s));
    release.dismiss();
    QTRY_COMPARE_WITH_TIMEOUT(answers->arrived, 4, 30000);
    QVERIFY(answers->allOnCaller);
    QVERIFY(answers->run);
    QCOMPARE(answers->run->status, RunStatus::Running);
    QCOMPARE(answers->page.total, 2);
    QCOMPARE(answers->page.runs.first().id, late.id);
    compareLines(answers->log, lines.mid(1));
    compareLines(answers->afterSeq, lines.mid(1));
}

void TestStore::asyncQueriesEndWithTheStore()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    QList<QFuture<RunPage>> futures;
    for (int i = 0; i < 50; ++i)
        futures << store->findRunsAsync({});
    store.reset();
    // Answered or canceled, never left pending.
    for (QFuture<RunPage> &future : futures) {
        QVERIFY(future.isFinished());
        if (!future.isCanceled())
            QCOMPARE(future.result().total, 0);
    }
}

// --- change notifications ----------------------------------------------------------------

namespace {

QSet<QString> announced(const QSignalSpy &spy)
{
    QSet<QString> ids;
    for (const QList<QVariant> &arguments : spy) {
        for (const QString &id : arguments.at(0).toStringList())
            ids.insert(id);
    }
    return ids;
}

} // namespace

void TestStore::notifiesOwnWrites()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    QSignalSpy spy(store->notifier(), &RunStoreNotifier::runsChanged);
    bool allOnMain = true;
    connect(store->notifier(), &RunStoreNotifier::runsChanged, this,
            [&allOnMain] { allOnMain = allOnMain && QThread::currentThread() == qApp->thread(); });
    const QDateTime t = QDateTime::currentDateTimeUtc();
    store->recordQueued(makeRun(u"a"_s, u"t"_s, RunStatus::Queued, t));
    QVERIFY(recordFinishedAndWait(*store, makeRun(u"b"_s, u"t"_s, RunStatus::Succeeded, t)));
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(u"a"_s) && announced(spy).contains(u"b"_s), 30000);
    QVERIFY(allOnMain);
    // Log lines alone change the run too.
    spy.clear();
    store->recordLog(u"a"_s, makeLines(1, 5));
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(u"a"_s), 30000);
}

void TestStore::notifiesChangesOfAnotherStore()
{
    // Two stores on one file have two connections, as two processes would.
    QTemporaryDir dir;
    auto watcher = openStore(dir.path());
    auto other = openStore(dir.path());
    QVERIFY(watcher && other);
    QSignalSpy spy(watcher->notifier(), &RunStoreNotifier::runsChanged);
    const QDateTime t = QDateTime::currentDateTimeUtc();
    QVERIFY(recordFinishedAndWait(*other, makeRun(u"elsewhere"_s, u"t"_s, RunStatus::Succeeded, t)));
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(u"elsewhere"_s), 30000);

    // Its own write and another one close together: each announced.
    spy.clear();
    watcher->recordQueued(makeRun(u"here"_s, u"t"_s, RunStatus::Queued, t));
    other->recordLog(u"elsewhere"_s, makeLines(1, 3));
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(u"here"_s) && announced(spy).contains(u"elsewhere"_s), 30000);

    // A run another store interrupts is a change too.
    spy.clear();
    Run orphan = makeRun(u"orphan"_s, u"t"_s, RunStatus::Running, t);
    orphan.owner = u"1@%1#999999999999"_s.arg(RunOwner::localHost());
    watcher->recordStarted(orphan);
    QVERIFY(watcher->flush(30s));
    QCOMPARE(other->recoverInterrupted(), 1);
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(u"orphan"_s), 30000);
}

void TestStore::notifiesChangesOfAnotherProcess()
{
    const QString child = QCoreApplication::applicationDirPath() + u"/recoverychild"_s;
    if (!QFileInfo(child).isExecutable())
        QSKIP("recoverychild is not built next to the test");
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    QSignalSpy spy(store->notifier(), &RunStoreNotifier::runsChanged);
    QProcess process;
    process.start(child, {dir.path(), u"1"_s, u"0"_s, u"0"_s});
    auto stop = qScopeGuard([&process] {
        process.kill();
        process.waitForFinished(30000);
    });
    QVERIFY(process.waitForStarted(30000));
    // The child says "finished ID" once its run is durable in the history.
    QString finished;
    QByteArray said;
    const auto readFinished = [&] {
        said += process.readAllStandardOutput();
        for (const QByteArray &line : said.split('\n')) {
            if (line.startsWith("finished "))
                finished = QString::fromUtf8(line.split(' ').value(1));
        }
        return !finished.isEmpty();
    };
    QTRY_VERIFY2_WITH_TIMEOUT(readFinished(), said.constData(), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(announced(spy).contains(finished), 30000);
    QCOMPARE(store->findRun(finished)->status, RunStatus::Succeeded);
}

// --- start-up and integrity ----------------------------------------------------------------

namespace {

// Fills a history with runs big enough to take many pages, and closes it cleanly.
bool fillHistory(const QString &dataDir)
{
    auto store = openStore(dataDir);
    if (!store)
        return false;
    const QDateTime t = QDateTime::currentDateTimeUtc();
    for (int i = 0; i < 300; ++i) {
        Run run = makeRun(u"run-%1"_s.arg(i, 4, 10, QChar(u'0')), u"t"_s, RunStatus::Succeeded, t.addSecs(i));
        run.args = QJsonObject{{u"padding"_s, QString(2000, u'p')}};
        store->recordFinished(run, [] {});
    }
    return store->flush(30s);
}

// Overwrites the rightmost leaf page of the runs table, which opening never reads.
bool damageDeepPage(const QString &path)
{
    qint64 page = 0;
    int pageSize = 0;
    {
        RawDb raw(path);
        page = raw.scalar(u"SELECT pageno FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf' "
                          "ORDER BY path DESC LIMIT 1"_s).toLongLong();
        pageSize = raw.scalar(u"PRAGMA page_size"_s).toInt();
        // Everything into the main file, so the damage is not undone from the WAL.
        raw.scalar(u"PRAGMA wal_checkpoint(TRUNCATE)"_s);
    }
    if (page <= 2 || pageSize <= 0)
        return false;
    QFile file(path);
    if (!file.open(QIODevice::ReadWrite) || !file.seek((page - 1) * pageSize))
        return false;
    return file.write(QByteArray(pageSize, char(0xA5))) == pageSize;
}

} // namespace

void TestStore::fullCheckOnlyAfterUncleanShutdown()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    const QString owners = dir.filePath(u"history.owners"_s);
    QVERIFY(fillHistory(dir.path()));
    // A clean close leaves no entry behind.
    QFile ownersFile(owners);
    QVERIFY(ownersFile.open(QIODevice::ReadOnly));
    QCOMPARE(ownersFile.readAll().trimmed(), QByteArray());
    ownersFile.close();
    QVERIFY(damageDeepPage(path));

    // Closed cleanly last time: opening does not read the whole file, so it opens ...
    {
        auto store = openStore(dir.path());
        QVERIFY(store);
        QFile open(owners);
        QVERIFY(open.open(QIODevice::ReadOnly));
        QVERIFY(QString::fromUtf8(open.readAll()).startsWith(RunOwner::current() + u' '));
        // ... and the check on request finds the damage.
        const QStringList problems = store->checkIntegrity();
        QVERIFY(!problems.isEmpty());
        qInfo().noquote() << problems.join(u'\n');
        QVERIFY2(problems.first().contains(path), qPrintable(problems.first()));
    }

    // A process that had it open died (pid 1 never started at that time): opening checks.
    QVERIFY(ownersFile.open(QIODevice::WriteOnly | QIODevice::Append));
    const QByteArray gone = (u"1@%1#999999999999 7\n"_s.arg(RunOwner::localHost())).toUtf8();
    ownersFile.write(gone);
    ownersFile.close();
    const QByteArray before = fileHash(path);
    QString error;
    QVERIFY(!SqliteRunStore::open(dir.path(), &error));
    qInfo().noquote() << error;
    QVERIFY2(error.contains(path) && error.contains(u"corrupt"_s) && error.contains(u"move it aside"_s),
             qPrintable(error));
    QCOMPARE(fileHash(path), before);
    // The entry stays, so the next start checks again.
    QVERIFY(ownersFile.open(QIODevice::ReadOnly));
    QCOMPARE(ownersFile.readAll(), gone);
}

void TestStore::uncleanShutdownOfSoundHistory()
{
    QTemporaryDir dir;
    QVERIFY(fillHistory(dir.path()));
    QFile owners(dir.filePath(u"history.owners"_s));
    QVERIFY(owners.open(QIODevice::WriteOnly));
    owners.write((u"1@%1#999999999999 7\nnot an owner\n5@elsewhere.invalid#5 1\n"_s.arg(RunOwner::localHost())).toUtf8());
    owners.close();
    QTest::ignoreMessage(QtInfoMsg, QRegularExpression(u"may not have been closed cleanly.*checking it"_s));
    auto store = openStore(dir.path());
    QVERIFY(store);
    QVERIFY(store->checkIntegrity().isEmpty());
    // The dead entries went; the other host's stays, beside this store's own.
    QVERIFY(owners.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(owners.readAll()).split(u'\n', Qt::SkipEmptyParts);
    QVERIFY2(lines.size() == 2, qPrintable(lines.join(u" | "_s)));
    QCOMPARE(lines.at(0), u"5@elsewhere.invalid#5 1"_s);
    QVERIFY(lines.at(1).startsWith(RunOwner::current()));
}

void TestStore::historyCheckCommand()
{
    const QString taskdeck = qEnvironmentVariable("TASKDECK_BIN");
    if (taskdeck.isEmpty())
        QSKIP("TASKDECK_BIN is not set");
    QTemporaryDir dir;
    QVERIFY(fillHistory(dir.path()));
    auto check = [&](QByteArray *out) {
        QProcess process;
        process.start(taskdeck, {u"--data-dir"_s, dir.path(), u"history"_s, u"--check"_s});
        if (!process.waitForFinished(120000))
            return -1;
        *out = process.readAllStandardOutput() + process.readAllStandardError();
        return process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    };
    QByteArray out;
    QCOMPARE(check(&out), 0);
    QVERIFY2(out.contains("ok"), out.constData());
    QVERIFY(damageDeepPage(dir.filePath(u"history.sqlite3"_s)));
    QCOMPARE(check(&out), 1);
    qInfo().noquote() << out;
    QVERIFY2(out.contains(dir.filePath(u"history.sqlite3"_s).toUtf8()), out.constData());
}

// --- private files -------------------------------------------------------------------------

namespace {

// Sets the umask for a scope.
class Umask
{
public:
    explicit Umask(mode_t mask) : m_saved(::umask(mask)) {}
    ~Umask() { ::umask(m_saved); }
    Q_DISABLE_COPY_MOVE(Umask)

private:
    mode_t m_saved;
};

QString modeOf(const QString &path)
{
    struct stat info = {};
    if (::stat(QFile::encodeName(path).constData(), &info) != 0)
        return u"missing"_s;
    return u"%1"_s.arg(info.st_mode & 07777, 4, 8, QChar(u'0'));
}

} // namespace

void TestStore::createsPrivateFiles()
{
    const Umask usual(022);
    QTemporaryDir tmp;
    const QString dataDir = tmp.filePath(u"nested/data"_s);
    auto store = openStore(dataDir);
    QVERIFY(store);
    store->recordQueued(makeRun(u"r"_s, u"t"_s, RunStatus::Queued, QDateTime::currentDateTimeUtc()));
    QVERIFY(store->flush(30s));
    const QString path = store->location();
    QCOMPARE(modeOf(dataDir), u"0700"_s);
    QCOMPARE(modeOf(path), u"0600"_s);
    QCOMPARE(modeOf(path + u"-wal"_s), u"0600"_s);
    QCOMPARE(modeOf(path + u"-shm"_s), u"0600"_s);
    QCOMPARE(modeOf(QDir(dataDir).filePath(u"history.owners"_s)), u"0600"_s);
}

void TestStore::repairsLooseModes()
{
    const Umask usual(022);
    QTemporaryDir tmp;
    const QString dataDir = tmp.filePath(u"data"_s);
    QVERIFY(openStore(dataDir));
    const QString path = QDir(dataDir).filePath(u"history.sqlite3"_s);
    const QString backups = QDir(dataDir).filePath(u"backups"_s);
    const QString backup = QDir(backups).filePath(u"taskdeck-history-20260101-000000.sql"_s);
    QVERIFY(QDir().mkpath(backups));
    QFile file(backup);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.close();
    const auto loose = QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup | QFile::ReadOther;
    QVERIFY(QFile::setPermissions(dataDir, loose | QFile::ExeOwner | QFile::ExeGroup | QFile::ExeOther));
    QVERIFY(QFile::setPermissions(backups, loose | QFile::ExeOwner | QFile::ExeGroup | QFile::ExeOther));
    QVERIFY(QFile::setPermissions(path, loose));
    QVERIFY(QFile::setPermissions(backup, loose | QFile::WriteGroup));

    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(
        u"made them private.*/data 0755 -> 0700.*history.sqlite3 0644 -> 0600.*backups 0755 -> 0700.*"
        "taskdeck-history-20260101-000000.sql 0664 -> 0600"_s));
    QVERIFY(openStore(dataDir));
    QCOMPARE(modeOf(dataDir), u"0700"_s);
    QCOMPARE(modeOf(path), u"0600"_s);
    QCOMPARE(modeOf(backups), u"0700"_s);
    QCOMPARE(modeOf(backup), u"0600"_s);
}

void TestStore::backupsArePrivate()
{
    const Umask usual(022);
    QTemporaryDir tmp;
    const QString dataDir = tmp.filePath(u"data"_s);
    auto store = openStore(dataDir);
    QVERIFY(store);
    const QString backups = QDir(dataDir).filePath(u"backups"_s);
    TaskRegistry registry;
    registerHistoryTasks(registry, store.get(), backups);
    TaskEngine engine(&registry);
    engine.setRecorder(store.get());
    for (const QString &format : {u"sql"_s, u"tar"_s}) {
        const RunResult r = engine.run(u"backup"_s, {{u"format"_s, format}});
        QVERIFY2(r.ok(), qPrintable(r.error.message));
        QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
        QCOMPARE(modeOf(r.run.result.toObject().value(u"file"_s).toString()), u"0600"_s);
    }
    QCOMPARE(modeOf(backups), u"0700"_s);
    const QStringList files = QDir(backups).entryList(QDir::Files | QDir::Hidden);
    QCOMPARE(files.size(), 2);
    for (const QString &name : files)
        QCOMPARE(modeOf(QDir(backups).filePath(name)), u"0600"_s);
}

void TestStore::migratesEarlyVersion4()
{
    // Development builds of version 4 tracked changes with an indexed runs.change_seq and had
    // no change log: such a file opens, gains the log and loses the index.
    QTemporaryDir dir;
    const QString path = dir.filePath(u"history.sqlite3"_s);
    {
        RawDb raw(path);
        QVERIFY(raw.isOpen());
        QVERIFY(buildSchemaUpTo(raw.db(), 4));
        QVERIFY(raw.exec(u"DROP TABLE changes"_s));
        QVERIFY(raw.exec(u"ALTER TABLE runs ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0"_s));
        QVERIFY(raw.exec(u"CREATE INDEX runs_changed ON runs(change_seq)"_s));
        QVERIFY(raw.exec(u"PRAGMA user_version = 4"_s));
    }
    auto store = openStore(dir.path());
    QVERIFY2(store, "a history of the early version 4 must open");
    const Run run = makeRun(u"after-early-4"_s, u"t"_s, RunStatus::Succeeded, QDateTime::currentDateTimeUtc());
    std::atomic<bool> durable = false; // set on the history's writer thread
    store->recordFinished(run, [&durable] { durable = true; });
    QTRY_VERIFY(durable);
    QVERIFY(store->findRun(run.id));
    RawDb raw(path);
    QCOMPARE(raw.scalar(u"PRAGMA user_version"_s).toInt(), SqliteSchema::kVersion);
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM sqlite_master WHERE name = 'runs_changed'"_s).toInt(), 0);
    QVERIFY(raw.scalar(u"SELECT count(*) FROM changes WHERE instr(run_ids, 'after-early-4') > 0"_s).toInt() >= 1);
}

QTEST_GUILESS_MAIN(TestStore)
#include "tst_store.moc"
