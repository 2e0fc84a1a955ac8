// SPDX-License-Identifier: MIT
#include "runcontext.h"
#include "runrecorder.h"
#include "taskengine.h"
#include "testsupport.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QMutex>
#include <QScopeGuard>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTest>
#include <QThread>
#include <QUuid>

#include <csignal>

#include <atomic>
#include <stdexcept>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

// Records the engine's signals as one ordered list of strings, the way a person reads a run.
class EventLog : public QObject
{
public:
    explicit EventLog(TaskEngine *engine)
    {
        connect(engine, &TaskEngine::runQueued, this, [this](const Run &r) { add(r.id, u"queued"_s); });
        connect(engine, &TaskEngine::runStarted, this, [this](const Run &r) {
            add(r.id, u"started:%1"_s.arg(r.attempt));
        });
        connect(engine, &TaskEngine::runLog, this, [this](const QString &id, const LogLines &lines) {
            for (const LogLine &l : lines)
                add(id, u"log:%1:%2"_s.arg(logStreamName(l.stream), l.text));
            ++logBatches;
        });
        connect(engine, &TaskEngine::runProgress, this, [this](const QString &id, const Progress &p) {
            add(id, u"progress:%1/%2"_s.arg(p.done).arg(p.total));
        });
        connect(engine, &TaskEngine::runFinished, this, [this](const Run &r) {
            add(r.id, u"finished:"_s + runStatusName(r.status));
            finished << r;
        });
    }
    QStringList of(const QString &id) const { return events.value(id); }
    QHash<QString, QStringList> events;
    QList<Run> finished;
    int logBatches = 0;

private:
    void add(const QString &id, const QString &e) { events[id] << e; }
};

class Recorder final : public IRunRecorder
{
public:
    void recordQueued(const Run &run) override { add(run.id, u"queued"_s); }
    void recordStarted(const Run &run) override { add(run.id, u"started"_s); }
    void recordRetrying(const Run &run) override { add(run.id, u"retrying"_s); }
    void recordProgress(const QString &id, const Progress &) override { add(id, u"progress"_s); }
    void recordLog(const QString &id, const LogLines &lines) override
    {
        for (const auto &l : lines)
            add(id, u"log:"_s + l.text);
    }
    void recordFinished(const Run &run, std::function<void()> durable) override
    {
        add(run.id, u"finished:"_s + runStatusName(run.status));
        durable();
    }
    QStringList of(const QString &id)
    {
        QMutexLocker locker(&m_mutex);
        return m_events.value(id);
    }

private:
    void add(const QString &id, const QString &e)
    {
        QMutexLocker locker(&m_mutex);
        m_events[id] << e;
    }
    QMutex m_mutex;
    QHash<QString, QStringList> m_events; // guarded by m_mutex
};

} // namespace

class TestEngine : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void orderedEventLog();
    void synchronousRunEventsFollowInOrder();
    void invalidArgumentsCreateNoRun();
    void unknownTaskSuggestsKeys();
    void dangerNeedsConfirmation();
    void concurrencyLimitNeverExceeded_data();
    void concurrencyLimitNeverExceeded();
    void perTaskLimit();
    void fifoOrder();
    void rateLimitSpacesStarts();
    void timeoutEndsAsTimedOut();
    void timeoutStopsProcessGroup();
    void cancelQueued();
    void idOfTheSameMomentButAnotherRunIsUnknown();
    void cancelRunning();
    void retriesTransientFailures();
    void retriesExhausted();
    void permanentFailureNotRetried();
    void exceptionsAreCaptured_data();
    void exceptionsAreCaptured();
    void recentLogIsBounded();
    void logIsBatched();
    void secretsRedacted();
    void secretsMaskedInLogs();
    void statusAndProgressQueries();
    void recorderSeesEverythingInOrder();
    void scratchDirRemoved();
    void shutdownCancelsAndRefuses();
    void retryLinesStayBetweenStarts();
    void earlierDeadlineWakesScheduler();
    void burstOfRunsKeepsEveryRunInOrder();
    void linesBeforeFinishUnderCancel();
};

void TestEngine::orderedEventLog()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"steps"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"one"_s);
        ctx.logError(u"two"_s);
        ctx.progress(1, 2);
        return QJsonObject{{u"answer"_s, 42}};
    })));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    const StartResult started = engine.start(u"steps"_s, {});
    QVERIFY2(started.ok(), qPrintable(started.error.message));
    QTRY_COMPARE(log.finished.size(), 1);
    QCOMPARE(log.of(started.runId), (QStringList{u"queued"_s, u"started:1"_s, u"log:out:one"_s,
                                                 u"log:err:two"_s, u"progress:1/2"_s,
                                                 u"finished:succeeded"_s}));
    const Run run = log.finished.first();
    QCOMPARE(run.result.toObject().value(u"answer"_s).toInt(), 42);
    QCOMPARE(run.attempt, 1);
    QCOMPARE(run.logLines, 2);
    QVERIFY(run.startedAt.isValid() && run.finishedAt.isValid());
    QVERIFY(run.queuedAt <= run.startedAt && run.startedAt <= run.finishedAt);
    QVERIFY(run.error.isEmpty());
}

void TestEngine::synchronousRunEventsFollowInOrder()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"sync"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"working"_s);
        return u"done"_s;
    })));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    const RunResult result = engine.run(u"sync"_s, {});
    QVERIFY(result.ok());
    QCOMPARE(result.run.status, RunStatus::Succeeded);
    QCOMPARE(result.run.result.toString(), u"done"_s);
    // run() delivers nothing itself: the event loop brings every event afterwards, in order.
    QVERIFY(log.of(result.run.id).isEmpty());
    QTRY_COMPARE(log.finished.size(), 1);
    QCOMPARE(log.of(result.run.id), (QStringList{u"queued"_s, u"started:1"_s, u"log:out:working"_s,
                                                 u"finished:succeeded"_s}));
}

void TestEngine::invalidArgumentsCreateNoRun()
{
    TaskRegistry registry;
    std::atomic<int> calls = 0;
    QVERIFY(registry.add(makeTask(u"typed"_s, [&](RunContext &) -> QJsonValue { ++calls; return {}; },
                                  {Field(u"count"_s, FieldType::Integer).withRequired(),
                                   Field(u"mode"_s, FieldType::Select).withChoices({{u"a"_s, u"A"_s}})})));
    TaskEngine engine(&registry);
    QSignalSpy queued(&engine, &TaskEngine::runQueued);
    const StartResult started = engine.start(u"typed"_s, {{u"mode"_s, u"z"_s}, {u"extra"_s, 1}});
    QVERIFY(!started.ok());
    QVERIFY(started.runId.isEmpty());
    QCOMPARE(started.error.code, StartError::Code::InvalidArguments);
    QStringList fields;
    for (const auto &e : started.error.fields)
        fields << e.field;
    QCOMPARE(fields, (QStringList{u"count"_s, u"mode"_s, u"extra"_s}));
    const RunResult ran = engine.run(u"typed"_s, {});
    QCOMPARE(ran.error.code, StartError::Code::InvalidArguments);
    QCoreApplication::processEvents();
    QCOMPARE(queued.size(), 0);
    QCOMPARE(engine.activeRuns().size(), 0);
    QCOMPARE(calls.load(), 0);
}

void TestEngine::unknownTaskSuggestsKeys()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"checksum"_s, [](RunContext &) -> QJsonValue { return {}; })));
    TaskEngine engine(&registry);
    const StartResult started = engine.start(u"chksum"_s, {});
    QCOMPARE(started.error.code, StartError::Code::UnknownTask);
    QCOMPARE(started.error.suggestions, QStringList{u"checksum"_s});
    QVERIFY(started.error.message.contains(u"chksum"_s));
}

void TestEngine::dangerNeedsConfirmation()
{
    TaskRegistry registry;
    Task t = makeTask(u"wipe"_s, [](RunContext &) -> QJsonValue { return true; });
    t.danger = u"Deletes everything"_s;
    QVERIFY(registry.add(t));
    TaskEngine engine(&registry);
    const StartResult refused = engine.start(u"wipe"_s, {});
    QCOMPARE(refused.error.code, StartError::Code::ConfirmationRequired);
    QVERIFY(refused.error.message.contains(u"Deletes everything"_s));
    RunOptions confirmed;
    confirmed.confirmed = true;
    const RunResult ran = engine.run(u"wipe"_s, {}, confirmed);
    QVERIFY(ran.ok());
    QCOMPARE(ran.run.status, RunStatus::Succeeded);
}

void TestEngine::concurrencyLimitNeverExceeded_data()
{
    QTest::addColumn<int>("maxConcurrent");
    QTest::addColumn<int>("limit");
    QTest::newRow("3") << 3 << 3;
    // 0 means one run per CPU this process may use.
    QTest::newRow("0: the CPU count") << 0 << std::max(1, QThread::idealThreadCount());
}

void TestEngine::concurrencyLimitNeverExceeded()
{
    QFETCH(int, maxConcurrent);
    QFETCH(int, limit);
    const int total = limit + 9;
    TaskRegistry registry;
    QSemaphore gate;
    std::atomic<int> inFlight = 0;
    std::atomic<int> maxInFlight = 0;
    QVERIFY(registry.add(makeTask(u"hold"_s, [&](RunContext &) -> QJsonValue {
        const int now = ++inFlight;
        int seen = maxInFlight.load();
        while (now > seen && !maxInFlight.compare_exchange_weak(seen, now)) {}
        gate.acquire();
        --inFlight;
        return {};
    })));
    EngineConfig config;
    config.maxConcurrent = maxConcurrent;
    TaskEngine engine(&registry, config);
    // A failed check must not leave the tasks blocked, or the engine could never shut down.
    const auto openGate = qScopeGuard([&gate, total] { gate.release(total); });
    EventLog log(&engine);
    for (int i = 0; i < total; ++i)
        QVERIFY(engine.start(u"hold"_s, {}).ok());
    QTRY_COMPARE(inFlight.load(), limit);
    QCOMPARE(engine.runningCount(), limit);
    QCOMPARE(engine.queuedCount(), 9);
    gate.release(total);
    QTRY_COMPARE(log.finished.size(), total);
    QCOMPARE(maxInFlight.load(), limit);
}

void TestEngine::perTaskLimit()
{
    TaskRegistry registry;
    QSemaphore gate;
    std::atomic<int> inFlightA = 0;
    std::atomic<int> maxA = 0;
    std::atomic<int> inFlightB = 0;
    Task a = makeTask(u"a"_s, [&](RunContext &) -> QJsonValue {
        maxA = std::max(maxA.load(), ++inFlightA);
        gate.acquire();
        --inFlightA;
        return {};
    });
    a.maxConcurrent = 1;
    QVERIFY(registry.add(a));
    QVERIFY(registry.add(makeTask(u"b"_s, [&](RunContext &) -> QJsonValue {
        ++inFlightB;
        gate.acquire();
        return {};
    })));
    EngineConfig config;
    config.maxConcurrent = 4;
    TaskEngine engine(&registry, config);
    // A failed check must not leave the tasks blocked, or the engine could never shut down.
    const auto openGate = qScopeGuard([&gate] { gate.release(100); });
    EventLog log(&engine);
    for (int i = 0; i < 3; ++i)
        QVERIFY(engine.start(u"a"_s, {}).ok());
    QVERIFY(engine.start(u"b"_s, {}).ok());
    QVERIFY(engine.start(u"b"_s, {}).ok());
    // The queued a's do not hold back the b's behind them. (Pool threads start in no
    // particular order: the first a may begin after the b's.)
    QTRY_COMPARE(inFlightB.load(), 2);
    QTRY_COMPARE(inFlightA.load(), 1);
    QCOMPARE(engine.queuedCount(), 2);
    gate.release(5);
    QTRY_COMPARE(log.finished.size(), 5);
    QCOMPARE(maxA.load(), 1);
}

void TestEngine::fifoOrder()
{
    TaskRegistry registry;
    QMutex mutex;
    QList<int> order;
    QVERIFY(registry.add(makeTask(u"n"_s, [&](RunContext &ctx) -> QJsonValue {
        QMutexLocker locker(&mutex);
        order << ctx.arg(u"i"_s).toInt();
        return {};
    }, {Field(u"i"_s, FieldType::Integer)})));
    EngineConfig config;
    config.maxConcurrent = 1;
    TaskEngine engine(&registry, config);
    EventLog log(&engine);
    QList<int> expected;
    for (int i = 0; i < 25; ++i) {
        QVERIFY(engine.start(u"n"_s, {{u"i"_s, i}}).ok());
        expected << i;
    }
    QTRY_COMPARE(log.finished.size(), 25);
    QCOMPARE(order, expected);
}

void TestEngine::rateLimitSpacesStarts()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"tick"_s, [](RunContext &) -> QJsonValue { return {}; })));
    EngineConfig config;
    config.maxConcurrent = 4;
    config.startRate = 20; // one start every 50 ms once the burst of 1 is spent
    config.startBurst = 1;
    TaskEngine engine(&registry, config);
    EventLog log(&engine);
    QElapsedTimer clock;
    clock.start();
    for (int i = 0; i < 6; ++i)
        QVERIFY(engine.start(u"tick"_s, {}).ok());
    QVERIFY(engine.queuedCount() >= 4);
    QTRY_COMPARE(log.finished.size(), 6);
    // Five waits of 50 ms each at least: a lower bound, so a slow machine cannot fail it.
    QVERIFY2(clock.elapsed() >= 240, qPrintable(QString::number(clock.elapsed())));
    QList<QDateTime> starts;
    for (const Run &r : log.finished)
        starts << r.startedAt;
    std::sort(starts.begin(), starts.end());
    QVERIFY(starts.first().msecsTo(starts.last()) >= 240);
}

void TestEngine::timeoutEndsAsTimedOut()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"slow"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return u"never"_s;
    })));
    Task perTask = makeTask(u"slow2"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return u"never"_s;
    });
    perTask.timeout = 150ms;
    QVERIFY(registry.add(perTask));
    TaskEngine engine(&registry);
    RunOptions options;
    options.timeout = 150ms;
    const RunResult r = engine.run(u"slow"_s, {}, options);
    QCOMPARE(r.run.status, RunStatus::TimedOut);
    QCOMPARE(r.run.error.kind, u"Timeout"_s);
    QVERIFY(r.run.error.message.contains(u"timed out"_s));
    QVERIFY(r.run.result.isUndefined());
    const RunResult r2 = engine.run(u"slow2"_s, {});
    QCOMPARE(r2.run.status, RunStatus::TimedOut);
    const LogLines lines = engine.recentLog(r2.run.id);
    QVERIFY(!lines.isEmpty());
    QCOMPARE(lines.last().stream, LogStream::System);
}

void TestEngine::timeoutStopsProcessGroup()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"tree"_s, [](RunContext &ctx) -> QJsonValue {
        Command cmd;
        cmd.argv = {u"sh"_s, u"-c"_s, u"sleep 1000 & echo $!; wait"_s};
        cmd.killGrace = 500ms;
        return ctx.runChecked(cmd);
    })));
    TaskEngine engine(&registry);
    RunOptions options;
    options.timeout = 400ms;
    const RunResult r = engine.run(u"tree"_s, {}, options);
    QCOMPARE(r.run.status, RunStatus::TimedOut);
    qint64 grandchild = 0;
    for (const LogLine &l : engine.recentLog(r.run.id)) {
        if (l.stream == LogStream::Out)
            grandchild = l.text.toLongLong();
    }
    QVERIFY(grandchild > 1);
    QTRY_VERIFY(processGone(grandchild));
}

void TestEngine::cancelQueued()
{
    TaskRegistry registry;
    QSemaphore gate;
    QVERIFY(registry.add(makeTask(u"hold"_s, [&](RunContext &) -> QJsonValue { gate.acquire(); return {}; })));
    EngineConfig config;
    config.maxConcurrent = 1;
    TaskEngine engine(&registry, config);
    const auto openGate = qScopeGuard([&gate] { gate.release(2); });
    EventLog log(&engine);
    const QString first = engine.start(u"hold"_s, {}).runId;
    const QString second = engine.start(u"hold"_s, {}).runId;
    QTRY_COMPARE(engine.runningCount(), 1);
    QCOMPARE(engine.status(second), RunStatus::Queued);
    QVERIFY(engine.cancel(second));
    QCOMPARE(engine.status(second), RunStatus::Canceled);
    QVERIFY(!engine.cancel(second));
    gate.release(1);
    QTRY_COMPARE(log.finished.size(), 2);
    QCOMPARE(log.of(second), (QStringList{u"queued"_s, u"finished:canceled"_s}));
    QCOMPARE(log.of(first).last(), u"finished:succeeded"_s);
    QVERIFY(!engine.snapshot(second)->startedAt.isValid());
}

void TestEngine::idOfTheSameMomentButAnotherRunIsUnknown()
{
    // The engine finds runs by the time and counter their ids begin with; an id that shares
    // them (another process's run made in the same millisecond) but not the rest is another
    // run, and so is a text that is no run id at all.
    TaskRegistry registry;
    QSemaphore gate;
    QVERIFY(registry.add(makeTask(u"hold"_s, [&](RunContext &) -> QJsonValue { gate.acquire(); return {}; })));
    TaskEngine engine(&registry);
    const auto openGate = qScopeGuard([&gate] { gate.release(1); });
    const QString id = engine.start(u"hold"_s, {}).runId;
    QTRY_COMPARE(engine.status(id), RunStatus::Running);
    QCOMPARE(id.size(), 36);
    QString other = id;
    other[35] = other.at(35) == u'0' ? u'1' : u'0';
    QStringList foreigners{other, id.left(35), id + u'0', u"not a run id"_s, QString()};
    if (id.toUpper() != id)
        foreigners << id.toUpper();
    for (const QString &foreign : std::as_const(foreigners)) {
        QVERIFY2(!engine.snapshot(foreign), qPrintable(foreign));
        QVERIFY2(!engine.status(foreign), qPrintable(foreign));
        QVERIFY2(!engine.progress(foreign), qPrintable(foreign));
        QVERIFY2(!engine.cancel(foreign), qPrintable(foreign));
    }
    QCOMPARE(engine.status(id), RunStatus::Running);
    QCOMPARE(engine.snapshot(id)->id, id);
    gate.release(1);
    QCOMPARE(engine.waitForFinished(id)->status, RunStatus::Succeeded);
}

void TestEngine::cancelRunning()
{
    TaskRegistry registry;
    std::atomic<bool> started = false;
    QVERIFY(registry.add(makeTask(u"loop"_s, [&](RunContext &ctx) -> QJsonValue {
        started = true;
        while (!ctx.isCanceled())
            ctx.sleep(10ms);
        return u"stopped"_s;
    })));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    const QString id = engine.start(u"loop"_s, {}).runId;
    QTRY_VERIFY(started.load());
    QCOMPARE(engine.status(id), RunStatus::Running);
    QVERIFY(engine.cancel(id));
    QTRY_COMPARE(log.finished.size(), 1);
    QCOMPARE(log.finished.first().status, RunStatus::Canceled);
    QCOMPARE(log.finished.first().error.kind, u"Canceled"_s);
    QVERIFY(log.finished.first().result.isUndefined());
}

void TestEngine::retriesTransientFailures()
{
    TaskRegistry registry;
    std::atomic<int> calls = 0;
    // When each attempt began, taken in the task itself: the runStarted signals arrive on
    // this thread in batches, long after the attempts they tell of.
    QMutex startsMutex;
    QList<std::chrono::steady_clock::time_point> attemptStarts; // guarded by startsMutex
    Task flaky = makeTask(u"flaky"_s, [&](RunContext &ctx) -> QJsonValue {
        {
            QMutexLocker locker(&startsMutex);
            attemptStarts << std::chrono::steady_clock::now();
        }
        if (++calls < 3)
            throw TransientError(u"busy, attempt %1"_s.arg(ctx.attempt()));
        return ctx.attempt();
    });
    flaky.retry.maxAttempts = 4;
    flaky.retry.initialDelay = 40ms;
    flaky.retry.multiplier = 3;
    flaky.retry.jitter = 0.25;
    QVERIFY(registry.add(flaky));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    const RunResult r = engine.run(u"flaky"_s, {});
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(r.run.attempt, 3);
    QCOMPARE(r.run.result.toInt(), 3);
    QCOMPARE(r.run.maxAttempts, 4);
    QTRY_COMPARE(log.finished.size(), 1);
    QStringList starts = log.of(r.run.id).filter(u"started"_s);
    QCOMPARE(starts, (QStringList{u"started:1"_s, u"started:2"_s, u"started:3"_s}));
    QCOMPARE(log.of(r.run.id).filter(u"retrying in"_s).size(), 2);
    QCOMPARE(flaky.retry.baseDelay(1), 40ms);
    QCOMPARE(flaky.retry.baseDelay(2), 120ms);
    QCOMPARE(flaky.retry.baseDelay(3), 360ms);

    // Each attempt began no sooner than its delay at the low end of the jitter allowed
    // (less a millisecond: the delay is cut to whole ones). Only lower bounds: a busy
    // machine may start an attempt any time later. With these figures the second delay's
    // lowest (90 ms) is more than the first one's highest (50 ms): they grow.
    QMutexLocker locker(&startsMutex);
    QCOMPARE(attemptStarts.size(), 3);
    const auto lowest = [&flaky](int failedAttempt) {
        const double ms = double(flaky.retry.baseDelay(failedAttempt).count()) * (1.0 - flaky.retry.jitter);
        return std::chrono::milliseconds(qint64(ms) - 1);
    };
    QVERIFY(lowest(2) > flaky.retry.baseDelay(1) * (1.0 + flaky.retry.jitter));
    for (int failed = 1; failed < attemptStarts.size(); ++failed) {
        const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(
            attemptStarts.at(failed) - attemptStarts.at(failed - 1));
        QVERIFY2(gap >= lowest(failed), qPrintable(u"attempt %1 began %2 ms after attempt %3, before its "
                                                   u"delay of at least %4 ms"_s
                                                       .arg(failed + 1).arg(gap.count()).arg(failed)
                                                       .arg(lowest(failed).count())));
    }
}

void TestEngine::retriesExhausted()
{
    TaskRegistry registry;
    Task flaky = makeTask(u"down"_s, [](RunContext &) -> QJsonValue { throw TransientError(u"still down"_s); });
    flaky.retry.maxAttempts = 2;
    flaky.retry.initialDelay = 10ms;
    QVERIFY(registry.add(flaky));
    TaskEngine engine(&registry);
    const RunResult r = engine.run(u"down"_s, {});
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.attempt, 2);
    QVERIFY(r.run.error.transient);
    QVERIFY(r.run.error.detail.contains(u"attempt 1: still down"_s));
    QVERIFY(r.run.error.detail.contains(u"attempt 2: still down"_s));
}

void TestEngine::permanentFailureNotRetried()
{
    TaskRegistry registry;
    std::atomic<int> calls = 0;
    Task t = makeTask(u"broken"_s, [&](RunContext &) -> QJsonValue {
        ++calls;
        throw TaskError(u"bad input file"_s, u"BadInput"_s);
    });
    t.retry.maxAttempts = 5;
    t.retry.initialDelay = 10ms;
    QVERIFY(registry.add(t));
    TaskEngine engine(&registry);
    const RunResult r = engine.run(u"broken"_s, {});
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(calls.load(), 1);
    QCOMPARE(r.run.error.kind, u"BadInput"_s);
    QCOMPARE(r.run.error.message, u"bad input file"_s);
    // TaskError records where it was thrown from.
    QVERIFY2(r.run.error.detail.contains(u"stack:"_s), qPrintable(r.run.error.detail));
    QVERIFY(r.run.error.detail.contains(u"task: broken"_s));
}

void TestEngine::exceptionsAreCaptured_data()
{
    QTest::addColumn<int>("kind");
    QTest::addColumn<QString>("expectedKind");
    QTest::addColumn<QString>("expectedMessage");
    QTest::newRow("runtime_error") << 0 << u"std::runtime_error"_s << u"disk on fire"_s;
    QTest::newRow("out_of_range") << 1 << u"std::out_of_range"_s << u"index 7"_s;
    QTest::newRow("not an exception") << 2 << u"unknown"_s << u"the task threw something that is not an exception"_s;
}

void TestEngine::exceptionsAreCaptured()
{
    QFETCH(int, kind);
    QFETCH(QString, expectedKind);
    QFETCH(QString, expectedMessage);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"throws"_s, [kind](RunContext &) -> QJsonValue {
        if (kind == 0)
            throw std::runtime_error("disk on fire");
        if (kind == 1)
            throw std::out_of_range("index 7");
        throw 42;
    })));
    QVERIFY(registry.add(makeTask(u"fine"_s, [](RunContext &) -> QJsonValue { return 1; })));
    TaskEngine engine(&registry);
    const RunResult r = engine.run(u"throws"_s, {});
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, expectedKind);
    QCOMPARE(r.run.error.message, expectedMessage);
    // The engine goes on working after a task threw.
    QCOMPARE(engine.run(u"fine"_s, {}).run.status, RunStatus::Succeeded);
}

void TestEngine::recentLogIsBounded()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 100; ++i)
            ctx.log(QString::number(i));
        ctx.log(u"a\nb"_s);
        return {};
    })));
    EngineConfig config;
    config.bufferSize = 10;
    TaskEngine engine(&registry, config);
    const RunResult r = engine.run(u"chatty"_s, {});
    QCOMPARE(r.run.logLines, 102);
    const LogLines recent = engine.recentLog(r.run.id);
    QCOMPARE(recent.size(), 10);
    QCOMPARE(recent.first().number, 93);
    QCOMPARE(recent.first().text, u"93"_s);
    QCOMPARE(recent.at(8).text, u"a"_s);
    QCOMPARE(recent.last().text, u"b"_s);
    QCOMPARE(recent.last().number, 102);
}

void TestEngine::logIsBatched()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"flood"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 0; i < 20000; ++i) {
            ctx.log(QString::number(i));
            ctx.progress(i + 1, 20000);
        }
        return {};
    })));
    TaskEngine engine(&registry);
    qint64 expected = 0;
    bool inOrder = true;
    int logSignals = 0;
    int progressSignals = 0;
    connect(&engine, &TaskEngine::runLog, this, [&](const QString &, const LogLines &lines) {
        ++logSignals;
        for (const LogLine &l : lines) {
            inOrder = inOrder && l.text == QString::number(expected) && l.number == expected + 1;
            ++expected;
        }
    });
    connect(&engine, &TaskEngine::runProgress, this, [&](const QString &, const Progress &) { ++progressSignals; });
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    QVERIFY(engine.start(u"flood"_s, {}).ok());
    QVERIFY(finished.wait(30000));
    QCOMPARE(expected, 20000);
    QVERIFY(inOrder);
    // 40,000 updates reach the receivers as a small number of batches.
    QVERIFY2(logSignals < 2000, qPrintable(QString::number(logSignals)));
    QVERIFY2(progressSignals < 2000, qPrintable(QString::number(progressSignals)));
    QCOMPARE(engine.progress(finished.first().first().value<Run>().id)->done, 20000);
}

void TestEngine::secretsRedacted()
{
    TaskRegistry registry;
    QString seen;
    QVERIFY(registry.add(makeTask(u"login"_s, [&](RunContext &ctx) -> QJsonValue {
        seen = ctx.arg(u"password"_s).toString();
        return {};
    }, {Field(u"user"_s, FieldType::Text), Field(u"password"_s, FieldType::Secret)})));
    TaskEngine engine(&registry);
    const RunResult r = engine.run(u"login"_s, {{u"user"_s, u"ann"_s}, {u"password"_s, u"hunter2"_s}});
    QCOMPARE(seen, u"hunter2"_s);
    QCOMPARE(r.run.args.value(u"user"_s).toString(), u"ann"_s);
    QVERIFY(r.run.args.value(u"password"_s).toString() != u"hunter2"_s);
    QVERIFY(!QJsonDocument(r.run.toJson()).toJson().contains("hunter2"));
}

void TestEngine::secretsMaskedInLogs()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"leaky"_s, [&](RunContext &ctx) -> QJsonValue {
        ctx.log(u"token is "_s + ctx.arg(u"token"_s).toString());
        ctx.log(u"pin is "_s + ctx.arg(u"pin"_s).toString());
        ctx.progress(1, 2, u"using "_s + ctx.arg(u"token"_s).toString());
        Command cmd;
        cmd.argv = QStringList{u"sh"_s, u"-c"_s,
                               u"echo \"out:$TASK_ARG_TOKEN\"; echo \"err:$TASK_ARG_TOKEN$TASK_ARG_TOKEN\" >&2"_s};
        cmd.env.insert(u"TASK_ARG_TOKEN"_s, ctx.arg(u"token"_s).toString());
        const CommandResult r = ctx.run(cmd);
        if (!r.succeeded())
            throw TaskError(u"command failed"_s);
        throw TaskError(u"failed with "_s + ctx.arg(u"token"_s).toString(), u"Leak"_s, false,
                        r.stderrTail.join(u'\n'));
    }, {Field(u"token"_s, FieldType::Secret), Field(u"pin"_s, FieldType::Secret)})));
    TaskEngine engine(&registry);
    const QString token = u"s3cr3t-T0ken"_s;
    const RunResult r = engine.run(u"leaky"_s, {{u"token"_s, token}, {u"pin"_s, u"123"_s}});
    QVERIFY(r.ok());
    QCOMPARE(r.run.status, RunStatus::Failed);
    const LogLines log = engine.recentLog(r.run.id);
    QStringList texts;
    for (const LogLine &line : log)
        texts << line.text;
    QVERIFY2(texts.contains(u"token is ********"_s), qPrintable(texts.join(u'|')));
    QVERIFY2(texts.contains(u"out:********"_s), qPrintable(texts.join(u'|')));
    QVERIFY2(texts.contains(u"err:****************"_s), qPrintable(texts.join(u'|')));
    // Values shorter than four characters are not masked (documented limit).
    QVERIFY2(texts.contains(u"pin is 123"_s), qPrintable(texts.join(u'|')));
    QCOMPARE(r.run.progress.message, u"using ********"_s);
    QCOMPARE(r.run.error.message, u"failed with ********"_s);
    QVERIFY2(!r.run.error.detail.contains(token), qPrintable(r.run.error.detail));
    QVERIFY(!QJsonDocument(r.run.toJson()).toJson().contains(token.toUtf8()));

    // A result (a command's ::result:: line, or a task's return value) is masked too, at any
    // depth, keys included; the rest of it is kept as it was.
    QVERIFY(registry.add(makeTask(u"echoes"_s, [&](RunContext &ctx) -> QJsonValue {
        Command cmd;
        cmd.argv = QStringList{u"sh"_s, u"-c"_s,
                               u"printf '::result::{\"auth\":\"Bearer %s\",\"n\":7,\"list\":[\"%s\",true],"
                               "\"%s\":null}\\n' \"$T\" \"$T\" \"$T\""_s};
        cmd.env.insert(u"T"_s, ctx.arg(u"token"_s).toString());
        const CommandResult ran = ctx.run(cmd);
        if (!ran.succeeded())
            throw TaskError(u"command failed"_s);
        return ran.result.value_or(QJsonValue());
    }, {Field(u"token"_s, FieldType::Secret)})));
    const RunResult echoed = engine.run(u"echoes"_s, {{u"token"_s, token}});
    QVERIFY(echoed.ok());
    QCOMPARE(echoed.run.status, RunStatus::Succeeded);
    const QJsonObject result = echoed.run.result.toObject();
    QCOMPARE(result.value(u"auth"_s).toString(), u"Bearer ********"_s);
    QCOMPARE(result.value(u"n"_s).toInt(), 7);
    QCOMPARE(result.value(u"list"_s).toArray(), QJsonArray({u"********"_s, true}));
    QVERIFY(result.contains(u"********"_s));
    QVERIFY(!QJsonDocument(echoed.run.toJson()).toJson().contains(token.toUtf8()));
}

void TestEngine::statusAndProgressQueries()
{
    TaskRegistry registry;
    QSemaphore reached;
    QSemaphore proceed;
    QVERIFY(registry.add(makeTask(u"half"_s, [&](RunContext &ctx) -> QJsonValue {
        ctx.progress(5, 10, u"halfway"_s);
        reached.release();
        proceed.acquire();
        return {};
    })));
    TaskEngine engine(&registry);
    const auto letFinish = qScopeGuard([&proceed] { proceed.release(); });
    const QString id = engine.start(u"half"_s, {}).runId;
    QVERIFY(reached.tryAcquire(1, 30000));
    QCOMPARE(engine.status(id), RunStatus::Running);
    QCOMPARE(engine.progress(id)->done, 5);
    QCOMPARE(engine.progress(id)->percent(), 50);
    QCOMPARE(engine.progress(id)->message, u"halfway"_s);
    QCOMPARE(engine.activeRuns().size(), 1);
    proceed.release();
    const auto final = engine.waitForFinished(id, 30s);
    QVERIFY(final);
    QCOMPARE(final->status, RunStatus::Succeeded);
    QVERIFY(!engine.status(u"no-such-run"_s));
}

void TestEngine::recorderSeesEverythingInOrder()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"rec"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"x"_s);
        ctx.progress(1, 1);
        return {};
    })));
    Recorder recorder;
    TaskEngine engine(&registry);
    engine.setRecorder(&recorder);
    const RunResult r = engine.run(u"rec"_s, {});
    QCOMPARE(recorder.of(r.run.id), (QStringList{u"queued"_s, u"started"_s, u"log:x"_s, u"progress"_s,
                                                 u"finished:succeeded"_s}));
}

void TestEngine::scratchDirRemoved()
{
    TaskRegistry registry;
    QString dir;
    QVERIFY(registry.add(makeTask(u"scratch"_s, [&](RunContext &ctx) -> QJsonValue {
        dir = ctx.scratchDir();
        QFile f(dir + u"/file.txt"_s);
        if (!f.open(QIODevice::WriteOnly))
            throw TaskError(u"cannot write"_s);
        f.write("data");
        return QDir(dir).exists();
    })));
    TaskEngine engine(&registry);
    const RunResult r = engine.run(u"scratch"_s, {});
    QCOMPARE(r.run.result.toBool(), true);
    QVERIFY(!dir.isEmpty());
    QVERIFY(!QDir(dir).exists());
}

void TestEngine::shutdownCancelsAndRefuses()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"wait"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return {};
    })));
    EngineConfig config;
    config.maxConcurrent = 1;
    TaskEngine engine(&registry, config);
    EventLog log(&engine);
    const QString running = engine.start(u"wait"_s, {}).runId;
    const QString queued = engine.start(u"wait"_s, {}).runId;
    QTRY_COMPARE(engine.runningCount(), 1);
    QVERIFY(engine.shutdown(10s));
    QCOMPARE(engine.status(running), RunStatus::Canceled);
    QCOMPARE(engine.status(queued), RunStatus::Canceled);
    const StartResult refused = engine.start(u"wait"_s, {});
    QCOMPARE(refused.error.code, StartError::Code::ShuttingDown);
    QTRY_COMPARE(log.finished.size(), 2);
}

void TestEngine::retryLinesStayBetweenStarts()
{
    // No delay between attempts: the lines of one attempt and the start of the next are
    // produced back to back, and must still arrive in that order.
    TaskRegistry registry;
    Task flaky = makeTask(u"flaky"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"try %1"_s.arg(ctx.attempt()));
        if (ctx.attempt() < 3)
            throw TransientError(u"busy"_s);
        return ctx.attempt();
    });
    flaky.retry.maxAttempts = 3;
    flaky.retry.initialDelay = 0ms;
    flaky.retry.jitter = 0;
    QVERIFY(registry.add(flaky));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    QStringList ids;
    for (int i = 0; i < 20; ++i)
        ids << engine.start(u"flaky"_s, {}).runId;
    QTRY_COMPARE(log.finished.size(), 20);
    for (const QString &id : std::as_const(ids)) {
        QStringList events = log.of(id);
        // The retry notice names the delay, which is not the point here.
        for (QString &e : events) {
            if (e.startsWith(u"log:system:attempt"_s))
                e = e.left(e.indexOf(u" failed"_s));
        }
        QCOMPARE(events, (QStringList{u"queued"_s,
                                      u"started:1"_s, u"log:out:try 1"_s, u"log:system:attempt 1 of 3"_s,
                                      u"started:2"_s, u"log:out:try 2"_s, u"log:system:attempt 2 of 3"_s,
                                      u"started:3"_s, u"log:out:try 3"_s,
                                      u"finished:succeeded"_s}));
    }
}

void TestEngine::earlierDeadlineWakesScheduler()
{
    // The scheduler sleeps until the earliest deadline it knows: a run with a shorter
    // timeout started later must wake it, or it would run for the long one's hour.
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"wait"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return {};
    })));
    TaskEngine engine(&registry);
    RunOptions longTimeout;
    longTimeout.timeout = 1h;
    const QString longRun = engine.start(u"wait"_s, {}, longTimeout).runId;
    QTRY_COMPARE(engine.status(longRun), RunStatus::Running);
    RunOptions shortTimeout;
    shortTimeout.timeout = 100ms;
    const QString shortRun = engine.start(u"wait"_s, {}, shortTimeout).runId;
    const std::optional<Run> finished = engine.waitForFinished(shortRun, 30s);
    QVERIFY2(finished, "the short timeout waited for the long one");
    QCOMPARE(finished->status, RunStatus::TimedOut);
    QCOMPARE(engine.status(longRun), RunStatus::Running);
    QVERIFY(engine.cancel(longRun));
    QCOMPARE(engine.waitForFinished(longRun, 30s)->status, RunStatus::Canceled);
}

void TestEngine::burstOfRunsKeepsEveryRunInOrder()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"noop"_s, [](RunContext &) -> QJsonValue { return {}; })));
    EngineConfig config;
    config.maxConcurrent = 2;
    TaskEngine engine(&registry, config);
    EventLog log(&engine);
    constexpr int kRuns = 3000;
    QStringList ids;
    for (int i = 0; i < kRuns; ++i)
        ids << engine.start(u"noop"_s, {}).runId;
    QTRY_COMPARE_WITH_TIMEOUT(log.finished.size(), kRuns, 60000);
    QCOMPARE(QSet<QString>(ids.cbegin(), ids.cend()).size(), kRuns);
    const qint64 before = QDateTime::currentMSecsSinceEpoch();
    QString previous;
    for (const QString &id : std::as_const(ids)) {
        QCOMPARE(log.of(id), (QStringList{u"queued"_s, u"started:1"_s, u"finished:succeeded"_s}));
        // Time-ordered UUIDs (version 7): valid, in the order the runs were made, and
        // carrying the time they were made.
        const QUuid uuid = QUuid::fromString(id);
        // (QUuid::version() of Qt 6.4 knows versions up to 5 only.)
        QVERIFY2(!uuid.isNull() && uuid.data3 >> 12 == 7 && uuid.variant() == QUuid::DCE, qPrintable(id));
        QCOMPARE(uuid.toString(QUuid::WithoutBraces), id);
        QVERIFY2(previous < id, qPrintable(previous + u" then "_s + id));
        previous = id;
        const qint64 ms = qint64(uuid.data1) << 16 | uuid.data2;
        QVERIFY(ms <= before + 1000 && ms > before - 600000);
    }
    QCOMPARE(engine.runningCount(), 0);
    QCOMPARE(engine.queuedCount(), 0);
}

void TestEngine::linesBeforeFinishUnderCancel()
{
    // A task that logs without pause while it is canceled from this thread: every line it
    // numbered arrives, and none after the finish.
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 0; !ctx.isCanceled(); ++i)
            ctx.log(QString::number(i));
        return {};
    })));
    TaskEngine engine(&registry);
    EventLog log(&engine);
    for (int round = 0; round < 10; ++round) {
        const QString id = engine.start(u"chatty"_s, {}).runId;
        QTRY_VERIFY(engine.recentLog(id).size() > 10);
        QVERIFY(engine.cancel(id));
        QTRY_VERIFY(!log.of(id).isEmpty() && log.of(id).last().startsWith(u"finished:"_s));
        const QStringList events = log.of(id);
        const Run run = log.finished.last();
        QCOMPARE(run.id, id);
        QCOMPARE(events.filter(u"log:"_s).size(), run.logLines);
        QCOMPARE(events.filter(u"finished:"_s).size(), 1);
        QVERIFY(events.contains(u"log:system:cancel requested; stopping"_s));
    }
}

QTEST_GUILESS_MAIN(TestEngine)
#include "tst_engine.moc"
