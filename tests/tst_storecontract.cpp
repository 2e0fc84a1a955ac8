// SPDX-License-Identifier: MIT
// What every IRunStore promises, run against each store: SQLite (the default) and PostgreSQL
// (a throwaway server). Each case gets a fresh history of the store named by its data row.

#include "pgrunstore.h"
#include "pgtestserver.h"
#include "runcontext.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "storetestsupport.h"
#include "testsupport.h"

#include <QDir>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QProcess>
#include <QUuid>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <atomic>
#include <memory>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

QString uuid()
{
    return QUuid::createUuid().toString(QUuid::WithoutBraces);
}

} // namespace

class TestStoreContract : public QObject
{
    Q_OBJECT

private:
    // A fresh history of the row's store; where() opens another store on the same history.
    std::unique_ptr<IRunStore> fresh();
    std::unique_ptr<IRunStore> another();
    void addBackends();

    PgTestServer m_pg;
    bool m_pgUp = false;
    QString m_backend;
    std::unique_ptr<QTemporaryDir> m_dir;
    QString m_url;

private Q_SLOTS:
    void initTestCase();
    void init();
    void roundTrip_data() { addBackends(); }
    void roundTrip();
    void finishIsNotUndoneByLateUpdates_data() { addBackends(); }
    void finishIsNotUndoneByLateUpdates();
    void findRunsFiltersAndPages_data() { addBackends(); }
    void findRunsFiltersAndPages();
    void longLogPages_data() { addBackends(); }
    void longLogPages();
    void lateLinesKeepOrder_data() { addBackends(); }
    void lateLinesKeepOrder();
    void readLogAfterSeqResumes_data() { addBackends(); }
    void readLogAfterSeqResumes();
    void pruneKeepsActiveRuns_data() { addBackends(); }
    void pruneKeepsActiveRuns();
    void recoversRunsOfGoneProcesses_data() { addBackends(); }
    void recoversRunsOfGoneProcesses();
    void asyncQueriesAnswerOnTheCallersThread_data() { addBackends(); }
    void asyncQueriesAnswerOnTheCallersThread();
    void notifiesOwnAndOtherStoresWrites_data() { addBackends(); }
    void notifiesOwnAndOtherStoresWrites();
    void engineRoundTrip_data() { addBackends(); }
    void engineRoundTrip();
    void integrityOfASoundHistory_data() { addBackends(); }
    void integrityOfASoundHistory();
};

void TestStoreContract::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    m_pgUp = m_pg.start();
    if (!m_pgUp)
        qWarning().noquote() << "PostgreSQL cases cannot run:" << m_pg.error();
}

void TestStoreContract::addBackends()
{
    QTest::addColumn<QString>("backend");
    QTest::newRow("sqlite") << u"sqlite"_s;
    QTest::newRow("postgresql") << u"postgresql"_s;
}

void TestStoreContract::init()
{
    m_dir.reset();
    m_url.clear();
}

std::unique_ptr<IRunStore> TestStoreContract::fresh()
{
    m_backend = QString::fromLatin1(QTest::currentDataTag());
    QString error;
    if (m_backend == "sqlite"_L1) {
        m_dir = std::make_unique<QTemporaryDir>();
        auto store = SqliteRunStore::open(m_dir->path(), &error);
        if (!store)
            qWarning().noquote() << error;
        return store;
    }
    if (!m_pgUp)
        return nullptr;
    m_url = m_pg.createDatabase();
    auto store = PgRunStore::open(m_url, &error);
    if (!store)
        qWarning().noquote() << error;
    return store;
}

std::unique_ptr<IRunStore> TestStoreContract::another()
{
    QString error;
    if (m_backend == "sqlite"_L1)
        return SqliteRunStore::open(m_dir->path(), &error);
    return PgRunStore::open(m_url, &error);
}

#define FRESH_STORE(name)                                                                  \
    QFETCH(QString, backend);                                                              \
    if (backend == "postgresql"_L1 && !m_pgUp)                                             \
        QFAIL(qPrintable(u"no PostgreSQL server: "_s + m_pg.error()));                     \
    std::unique_ptr<IRunStore> name = fresh();                                             \
    QVERIFY(name);                                                                         \
    QVERIFY(name->isAvailable())

void TestStoreContract::roundTrip()
{
    FRESH_STORE(store);
    const QDateTime t0 = QDateTime::fromMSecsSinceEpoch(1760000000123, Qt::UTC);
    Run run = makeRun(uuid(), u"greet"_s, RunStatus::Queued, t0);
    run.args = QJsonObject{{u"name"_s, u"wörld"_s}, {u"n"_s, 3}};
    run.maxAttempts = 3;
    store->recordQueued(run);
    run.status = RunStatus::Running;
    run.attempt = 1;
    run.startedAt = t0.addMSecs(10);
    store->recordStarted(run);
    store->recordProgress(run.id, {5, 10, u"half"_s});
    store->recordLog(run.id, makeLines(1, 2500, u"line %1 ü"_s, 100));

    // Queries see what was recorded before them, finished or not.
    std::optional<Run> running = store->findRun(run.id);
    QVERIFY(running);
    QCOMPARE(running->status, RunStatus::Running);
    QCOMPARE(running->progress, (Progress{5, 10, u"half"_s}));
    QCOMPARE(running->logLines, 2500);
    QCOMPARE(running->args, run.args);
    QCOMPARE(running->seq, 2600);

    run.status = RunStatus::Succeeded;
    run.finishedAt = t0.addMSecs(900);
    run.progress = {10, 10, u"done"_s};
    run.result = QJsonValue(QJsonObject{{u"ok"_s, true}});
    run.logLines = 2500;
    QVERIFY(recordFinishedAndWait(*store, run));

    const std::optional<Run> stored = store->findRun(run.id);
    QVERIFY(stored);
    QCOMPARE(stored->status, RunStatus::Succeeded);
    QCOMPARE(stored->queuedAt, t0);
    QCOMPARE(stored->startedAt, t0.addMSecs(10));
    QCOMPARE(stored->finishedAt, t0.addMSecs(900));
    QCOMPARE(stored->result, run.result);
    QCOMPARE(stored->maxAttempts, 3);
    QCOMPARE(stored->progress, run.progress);
    QCOMPARE(stored->owner, run.owner);
    QVERIFY(!store->findRun(uuid()));

    const LogLines all = readWholeLog(*store, run.id, 700);
    QCOMPARE(all.size(), 2500);
    QCOMPARE(all.first().text, u"line 1 ü"_s);
    QCOMPARE(all.at(6).stream, LogStream::Err);
    QCOMPARE(all.last().number, 2500);
    QCOMPARE(all.last().seq, 2600);

    const QString trace = store->traceId(run.id);
    QVERIFY2(QRegularExpression(u"^[0-9a-f]{32}$"_s).match(trace).hasMatch(), qPrintable(trace));
    QCOMPARE(store->traceId(run.id), trace); // kept across updates
    QVERIFY(store->traceId(uuid()).isEmpty());

    // Results of every JSON kind survive.
    for (const QJsonValue &value : {QJsonValue(42), QJsonValue(u"text"_s), QJsonValue(QJsonValue::Null),
                                    QJsonValue(false), QJsonValue(QJsonArray{QJsonValue(1), QJsonValue(u"a"_s)})}) {
        Run other = makeRun(uuid(), u"kinds"_s, RunStatus::Succeeded, t0);
        other.result = value;
        QVERIFY(recordFinishedAndWait(*store, other));
        QCOMPARE(store->findRun(other.id)->result, value);
    }
    Run failed = makeRun(uuid(), u"kinds"_s, RunStatus::Failed, t0);
    // Text that means something in an array literal or a string comes back as it was.
    const QString tricky = u"boom \"quoted\", {braced} back\\slash\\\" NULL"_s;
    failed.error = {tricky, u"ExitCode"_s, u"detail\nmore"_s, true};
    failed.args = QJsonObject{{u"path"_s, u"C:\\dir\\\"x\""_s}};
    QVERIFY(recordFinishedAndWait(*store, failed));
    const std::optional<Run> failedStored = store->findRun(failed.id);
    QCOMPARE(failedStored->error.message, tricky);
    QCOMPARE(failedStored->args, failed.args);
    QCOMPARE(failedStored->error.kind, u"ExitCode"_s);
    QCOMPARE(failedStored->error.detail, u"detail\nmore"_s);
    QCOMPARE(failedStored->error.transient, true);
    QVERIFY(failedStored->result.isUndefined());
}

void TestStoreContract::finishIsNotUndoneByLateUpdates()
{
    FRESH_STORE(store);
    const QDateTime t0 = QDateTime::currentDateTimeUtc();
    Run run = makeRun(uuid(), u"late"_s, RunStatus::Canceled, t0);
    QVERIFY(recordFinishedAndWait(*store, run));
    Run stale = run;
    stale.status = RunStatus::Running;
    stale.finishedAt = QDateTime();
    store->recordStarted(stale);
    store->recordProgress(run.id, {1, 2, u"stale"_s});
    QVERIFY(store->flush(30s));
    const std::optional<Run> stored = store->findRun(run.id);
    QCOMPARE(stored->status, RunStatus::Canceled);
    QCOMPARE(stored->progress, Progress());

    Run retrying = makeRun(uuid(), u"late"_s, RunStatus::Retrying, t0);
    retrying.nextAttemptAt = t0.addSecs(30);
    retrying.error = {u"first attempt failed"_s, u"Transient"_s, QString(), true};
    store->recordRetrying(retrying);
    const std::optional<Run> waiting = store->findRun(retrying.id);
    QCOMPARE(waiting->status, RunStatus::Retrying);
    QCOMPARE(waiting->nextAttemptAt.toMSecsSinceEpoch(), t0.addSecs(30).toMSecsSinceEpoch());
}

void TestStoreContract::findRunsFiltersAndPages()
{
    FRESH_STORE(store);
    const QDateTime base = QDateTime::fromMSecsSinceEpoch(1750000000000, Qt::UTC);
    QStringList ids;
    for (int i = 0; i < 30; ++i) {
        const RunStatus status = i % 3 == 0 ? RunStatus::Failed : RunStatus::Succeeded;
        Run run = makeRun(u"run-%1"_s.arg(i, 3, 10, QChar(u'0')), i % 2 ? u"odd"_s : u"even"_s, status,
                          base.addSecs(i * 60));
        ids << run.id;
        store->recordFinished(run, {});
    }
    Run active = makeRun(u"run-active"_s, u"odd"_s, RunStatus::Running, base.addSecs(3600));
    store->recordStarted(active);

    RunQuery all;
    all.limit = 10;
    RunPage page = store->findRuns(all);
    QCOMPARE(page.total, 31);
    QCOMPARE(page.runs.size(), 10);
    QCOMPARE(page.runs.first().id, u"run-active"_s); // newest first
    QCOMPARE(page.runs.at(1).id, u"run-029"_s);
    all.offset = 28;
    page = store->findRuns(all);
    QCOMPARE(page.runs.size(), 3);
    QCOMPARE(page.runs.last().id, u"run-000"_s);
    all.offset = 31;
    QVERIFY(store->findRuns(all).runs.isEmpty());

    RunQuery byTask;
    byTask.task = u"odd"_s;
    byTask.limit = 100;
    QCOMPARE(store->findRuns(byTask).total, 16);
    RunQuery failed;
    failed.status = RunStatus::Failed;
    failed.limit = 100;
    page = store->findRuns(failed);
    QCOMPARE(page.total, 10);
    for (const Run &run : std::as_const(page.runs))
        QCOMPARE(run.status, RunStatus::Failed);
    RunQuery window;
    window.from = base.addSecs(60 * 10);
    window.to = base.addSecs(60 * 20);
    window.limit = 100;
    page = store->findRuns(window);
    QCOMPARE(page.total, 10);
    QCOMPARE(page.runs.first().id, u"run-019"_s);
    QCOMPARE(page.runs.last().id, u"run-010"_s);
    RunQuery countOnly;
    countOnly.limit = 0;
    page = store->findRuns(countOnly);
    QCOMPARE(page.total, 31);
    QVERIFY(page.runs.isEmpty());
}

void TestStoreContract::longLogPages()
{
    FRESH_STORE(store);
    Run run = makeRun(uuid(), u"long"_s, RunStatus::Running, QDateTime::currentDateTimeUtc());
    store->recordStarted(run);
    for (qint64 from = 1; from <= 20000; from += 1000)
        store->recordLog(run.id, makeLines(from, from + 999, u"line %1 ü"_s, 10));
    run.status = RunStatus::Succeeded;
    run.finishedAt = run.startedAt.addSecs(5);
    run.logLines = 20000;
    QVERIFY(recordFinishedAndWait(*store, run));
    QCOMPARE(store->findRun(run.id)->logLines, 20000);

    const LogLines middle = store->readLog(run.id, 12345, 77);
    QCOMPARE(middle.size(), 77);
    QCOMPARE(middle.first().number, 12345);
    QCOMPARE(middle.last().number, 12421);
    const LogLines tail = store->readLog(run.id, 19990, 1000);
    QCOMPARE(tail.size(), 11);
    QVERIFY(store->readLog(run.id, 20001, 10).isEmpty());
    QCOMPARE(readWholeLog(*store, run.id, 4096).size(), 20000);
    QVERIFY(store->readLog(uuid(), 1, 10).isEmpty());
}

void TestStoreContract::lateLinesKeepOrder()
{
    FRESH_STORE(store);
    Run run = makeRun(uuid(), u"late"_s, RunStatus::Running, QDateTime::currentDateTimeUtc());
    store->recordStarted(run);
    store->recordLog(run.id, makeLines(1, 10));
    store->recordLog(run.id, makeLines(20, 30));
    QVERIFY(store->flush(30s));
    // Stragglers of an earlier batch, one repeated (it replaces the first).
    LogLines late = makeLines(12, 14);
    late.append(makeLines(5, 5));
    late.last().text = u"again"_s;
    store->recordLog(run.id, late);
    store->recordLog(run.id, makeLines(31, 35));
    QVERIFY(store->flush(30s));
    const LogLines all = readWholeLog(*store, run.id, 4);
    QList<qint64> numbers;
    for (const LogLine &line : all)
        numbers << line.number;
    QList<qint64> expected;
    for (qint64 n = 1; n <= 35; ++n) {
        if (n <= 10 || (n >= 12 && n <= 14) || n >= 20)
            expected << n;
    }
    QCOMPARE(numbers, expected);
    QCOMPARE(all.at(4).text, u"again"_s);
    QCOMPARE(store->checkIntegrity(), QStringList());
}

void TestStoreContract::readLogAfterSeqResumes()
{
    FRESH_STORE(store);
    Run run = makeRun(uuid(), u"seq"_s, RunStatus::Running, QDateTime::currentDateTimeUtc());
    run.seq = 2;
    store->recordStarted(run);
    store->recordLog(run.id, makeLines(1, 3000, u"line %1 ü"_s, 2)); // seqs 3..3002
    QVERIFY(store->flush(30s));
    LogLines after = store->readLogAfterSeq(run.id, 1500, 100);
    QCOMPARE(after.size(), 100);
    QCOMPARE(after.first().seq, 1501);
    QCOMPARE(after.first().number, 1499);
    after = store->readLogAfterSeq(run.id, 0, 5);
    QCOMPARE(after.first().seq, 3);
    QVERIFY(store->readLogAfterSeq(run.id, 3002, 10).isEmpty());
    // Read on from the last line's seq: every line once, in order (the start was seq 2).
    qint64 seen = 2;
    qint64 count = 0;
    for (;;) {
        const LogLines part = store->readLogAfterSeq(run.id, seen, 333);
        if (part.isEmpty())
            break;
        for (const LogLine &line : part) {
            QCOMPARE(line.seq, seen + 1);
            seen = line.seq;
            ++count;
        }
    }
    QCOMPARE(count, 3000);
    QCOMPARE(store->findRun(run.id)->seq, 3002);
}

void TestStoreContract::pruneKeepsActiveRuns()
{
    FRESH_STORE(store);
    const QDateTime cutoff = QDateTime::fromMSecsSinceEpoch(1750000000000, Qt::UTC);
    Run old = makeRun(u"old"_s, u"p"_s, RunStatus::Succeeded, cutoff.addSecs(-10));
    old.finishedAt = cutoff; // inclusive
    store->recordLog(old.id, makeLines(1, 50));
    store->recordFinished(old, {});
    Run newer = makeRun(u"newer"_s, u"p"_s, RunStatus::Succeeded, cutoff.addSecs(-10));
    newer.finishedAt = cutoff.addMSecs(1);
    store->recordFinished(newer, {});
    Run active = makeRun(u"active"_s, u"p"_s, RunStatus::Running, cutoff.addSecs(-1000));
    store->recordStarted(active);
    Run waiting = makeRun(u"waiting"_s, u"p"_s, RunStatus::Queued, cutoff.addSecs(-1000));
    store->recordQueued(waiting);
    QVERIFY(store->flush(30s));
    QCOMPARE(store->pruneFinishedBefore(cutoff), 1);
    QVERIFY(!store->findRun(u"old"_s));
    QVERIFY(store->readLog(u"old"_s).isEmpty());
    QVERIFY(store->findRun(u"newer"_s));
    QVERIFY(store->findRun(u"active"_s));
    QVERIFY(store->findRun(u"waiting"_s));
    QCOMPARE(store->pruneFinishedBefore(cutoff), 0);
}

void TestStoreContract::recoversRunsOfGoneProcesses()
{
    FRESH_STORE(store);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    // A process that is gone: a child that has exited and been reaped.
    QProcess child;
    child.start(u"/bin/true"_s, {});
    QVERIFY(child.waitForFinished());
    const QString goneOwner = u"%1@%2#1"_s.arg(child.processId()).arg(RunOwner::localHost());
    Run orphan = makeRun(u"orphan"_s, u"r"_s, RunStatus::Running, now);
    orphan.owner = goneOwner;
    store->recordStarted(orphan);
    store->recordLog(orphan.id, makeLines(1, 7));
    Run mine = makeRun(u"mine"_s, u"r"_s, RunStatus::Running, now);
    mine.owner = RunOwner::current();
    store->recordStarted(mine);
    Run elsewhere = makeRun(u"elsewhere"_s, u"r"_s, RunStatus::Running, now);
    elsewhere.owner = u"1@another-host.invalid#1"_s;
    store->recordStarted(elsewhere);
    QVERIFY(store->flush(30s));

    QCOMPARE(store->recoverInterrupted(), 1);
    const std::optional<Run> recovered = store->findRun(u"orphan"_s);
    QCOMPARE(recovered->status, RunStatus::Interrupted);
    QVERIFY(recovered->finishedAt.isValid());
    QCOMPARE(recovered->error.kind, u"Interrupted"_s);
    QVERIFY(recovered->error.message.contains(u"interrupted"_s));
    QCOMPARE(recovered->logLines, 7);
    QCOMPARE(store->findRun(u"mine"_s)->status, RunStatus::Running);
    QCOMPARE(store->findRun(u"elsewhere"_s)->status, RunStatus::Running);
    QCOMPARE(store->recoverInterrupted(), 0);
}

void TestStoreContract::asyncQueriesAnswerOnTheCallersThread()
{
    FRESH_STORE(store);
    Run run = makeRun(uuid(), u"async"_s, RunStatus::Succeeded, QDateTime::currentDateTimeUtc());
    store->recordLog(run.id, makeLines(1, 30, u"line %1 ü"_s, 1));
    store->recordFinished(run, {});

    QObject context;
    std::optional<Run> found;
    RunPage page;
    LogLines lines;
    LogLines afterSeq;
    QThread *answeredOn = nullptr;
    int answers = 0;
    store->findRunAsync(run.id).then(&context, [&](const std::optional<Run> &r) {
        found = r;
        answeredOn = QThread::currentThread();
        ++answers;
    });
    RunQuery query;
    query.task = u"async"_s;
    store->findRunsAsync(query).then(&context, [&](const RunPage &p) { page = p; ++answers; });
    store->readLogAsync(run.id, 10, 5).then(&context, [&](const LogLines &l) { lines = l; ++answers; });
    store->readLogAfterSeqAsync(run.id, 20, 100).then(&context, [&](const LogLines &l) { afterSeq = l; ++answers; });
    QTRY_COMPARE_WITH_TIMEOUT(answers, 4, 30000);
    QVERIFY(found);
    QCOMPARE(found->id, run.id);
    QCOMPARE(answeredOn, QThread::currentThread());
    QCOMPARE(page.total, 1);
    QCOMPARE(lines.size(), 5);
    QCOMPARE(lines.first().number, 10);
    QCOMPARE(afterSeq.size(), 11); // seqs 21 to 31
    QCOMPARE(afterSeq.first().seq, 21);
}

void TestStoreContract::notifiesOwnAndOtherStoresWrites()
{
    FRESH_STORE(store);
    std::unique_ptr<IRunStore> other = another();
    QVERIFY(other);
    QSet<QString> seen;
    QObject::connect(store->notifier(), &RunStoreNotifier::runsChanged, store->notifier(),
                     [&seen](const QStringList &ids) {
                         for (const QString &id : ids)
                             seen.insert(id);
                     });
    // The listener may take a moment to start: write until its first change arrives.
    const QDateTime now = QDateTime::currentDateTimeUtc();
    Run own = makeRun(u"own"_s, u"n"_s, RunStatus::Running, now);
    store->recordStarted(own);
    QTRY_VERIFY_WITH_TIMEOUT(seen.contains(u"own"_s), 30000);
    int round = 0;
    QTRY_VERIFY_WITH_TIMEOUT(
        [&] {
            Run theirs = makeRun(u"theirs-%1"_s.arg(++round), u"n"_s, RunStatus::Running, now);
            other->recordStarted(theirs);
            other->flush(10s);
            QTest::qWait(100);
            for (const QString &id : std::as_const(seen)) {
                if (id.startsWith(u"theirs-"_s))
                    return true;
            }
            return false;
        }(),
        60000);
    // Once listening, every later write of the other store is announced.
    Run last = makeRun(u"theirs-last"_s, u"n"_s, RunStatus::Succeeded, now);
    QVERIFY(recordFinishedAndWait(*other, last));
    QTRY_VERIFY_WITH_TIMEOUT(seen.contains(u"theirs-last"_s), 30000);
}

void TestStoreContract::engineRoundTrip()
{
    FRESH_STORE(store);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 3000; ++i)
            ctx.log(u"chat %1"_s.arg(i));
        return QJsonValue(u"said"_s);
    })));
    {
        TaskEngine engine(&registry);
        engine.setRecorder(store.get());
        const StartResult started = engine.start(u"chatty"_s, {});
        QVERIFY(started.ok());
        const std::optional<Run> done = engine.waitForFinished(started.runId, 60s);
        QVERIFY(done);
        QCOMPARE(done->status, RunStatus::Succeeded);
        // Durable: the finish is in the history the moment the engine shows it.
        const std::optional<Run> stored = store->findRun(started.runId);
        QVERIFY(stored);
        QCOMPARE(stored->status, RunStatus::Succeeded);
        QCOMPARE(stored->result, QJsonValue(u"said"_s));
        const LogLines lines = readWholeLog(*store, started.runId);
        QCOMPARE(lines.size(), 3000);
        QCOMPARE(lines.last().text, u"chat 3000"_s);
        QCOMPARE(stored->logLines, 3000);
        engine.shutdown();
    }
}

void TestStoreContract::integrityOfASoundHistory()
{
    FRESH_STORE(store);
    Run run = makeRun(uuid(), u"i"_s, RunStatus::Succeeded, QDateTime::currentDateTimeUtc());
    store->recordLog(run.id, makeLines(1, 1500));
    QVERIFY(recordFinishedAndWait(*store, run));
    QCOMPARE(store->checkIntegrity(), QStringList());
}

QTEST_GUILESS_MAIN(TestStoreContract)
#include "tst_storecontract.moc"
