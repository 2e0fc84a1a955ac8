// SPDX-License-Identifier: MIT
// Following runs: sequence numbers, snapshots, RunHandle, ordering and slow followers.
#include "runcontext.h"
#include "runfollower.h"
#include "runrecorder.h"
#include "runstorenotifier.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "testsupport.h"

#include <QScopeGuard>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <atomic>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

// Everything one follower saw, as "seq:type[:detail]" strings, in the order it saw them.
class Trace : public QObject
{
public:
    explicit Trace(RunHandle *handle)
    {
        connect(handle, &RunHandle::queued, this, [this](const Run &r) { add(r.seq, u"queued"_s); });
        connect(handle, &RunHandle::started, this, [this](const Run &r) {
            add(r.seq, u"started:%1"_s.arg(r.attempt));
        });
        connect(handle, &RunHandle::retrying, this, [this](const Run &r) {
            add(r.seq, u"retrying"_s);
            retryAt = r.nextAttemptAt;
            retryStatus = r.status;
        });
        connect(handle, &RunHandle::progressed, this, [this](const Progress &p, qint64 seq) {
            add(seq, u"progress:%1"_s.arg(p.done));
        });
        connect(handle, &RunHandle::log, this, [this](const LogLines &lines) {
            for (const LogLine &l : lines)
                add(l.seq, u"log:"_s + l.text);
        });
        connect(handle, &RunHandle::finished, this, [this](const Run &r) {
            add(r.seq, u"finished:"_s + runStatusName(r.status));
            done = true;
        });
        connect(handle, &RunHandle::fellBehind, this, [this](qint64 seq) { behindAt = seq; });
    }

    // The seqs seen, each once and one after another from \a first.
    bool contiguousFrom(qint64 first) const
    {
        for (qsizetype i = 0; i < seqs.size(); ++i) {
            if (seqs.at(i) != first + i)
                return false;
        }
        return true;
    }

    QList<qint64> seqs;
    QStringList events;
    bool done = false;
    qint64 behindAt = -1;
    QDateTime retryAt;
    RunStatus retryStatus = RunStatus::Queued;

private:
    void add(qint64 seq, const QString &what)
    {
        seqs << seq;
        events << what;
    }
};

// A task that logs \a before lines, waits for the test, then logs \a after lines.
struct Gate
{
    QSemaphore open;
};

Task gatedTask(const QString &key, Gate *gate, int before, int after)
{
    return makeTask(key, [gate, before, after](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= before; ++i)
            ctx.log(u"before %1"_s.arg(i));
        ctx.progress(1, 2, u"half"_s);
        gate->open.acquire();
        for (int i = 1; i <= after; ++i)
            ctx.log(u"after %1"_s.arg(i));
        return {};
    });
}

// Records what the engine hands its recorder, per run.
class Recorder final : public IRunRecorder
{
public:
    void recordQueued(const Run &run) override { add(run.id, u"queued"_s); }
    void recordStarted(const Run &run) override { add(run.id, u"started"_s); }
    void recordRetrying(const Run &run) override { add(run.id, u"retrying"_s); }
    void recordProgress(const QString &, const Progress &) override {}
    void recordLog(const QString &, const LogLines &) override {}
    void recordFinished(const Run &run, std::function<void()> durable) override
    {
        add(run.id, u"finished:"_s + runStatusName(run.status));
        durable();
    }
    QStringList of(const QString &id)
    {
        std::lock_guard lock(m_mutex);
        return m_events.value(id);
    }

private:
    void add(const QString &id, const QString &e)
    {
        std::lock_guard lock(m_mutex);
        m_events[id] << e;
    }
    std::mutex m_mutex;
    QHash<QString, QStringList> m_events; // guarded by m_mutex
};

} // namespace

class TestFollow : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void sequenceNumbersHaveNoGaps();
    void followFromStart();
    void followFromTheMiddle();
    void snapshotThenLiveEvents();
    void followAfterFinishReplaysWindow();
    void missingEventsAreHeldForTheCaller();
    void hundredFollowersEachSeeEverything();
    void slowFollowerFallsBehindAndResumes();
    void waitingForRetryIsAState();
    void waitingInASlotDoesNotReorder();
    void chattyRunDoesNotSlowOthers();
    void finishAfterEngineGoneTouchesNothing();
    void closingDoesNotWaitForStuckTask();
    void activeRunsKeepQueueOrder();
    void handleCancels();
    void forgottenRunComesFromHistory();
    void gapIsFilledFromHistory();
    void runOfAnotherProcessIsFollowed();
    void notifierCountsItsReceivers();
    void unknownRunHasNoHandle();
    void goneContextHearsNothing();
};

void TestFollow::sequenceNumbersHaveNoGaps()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"steps"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"one"_s);
        ctx.progress(1, 2);
        ctx.log(u"two\nthree"_s);
        return {};
    })));
    TaskEngine engine(&registry);
    QList<qint64> seqs;
    connect(&engine, &TaskEngine::runQueued, this, [&](const Run &r) { seqs << r.seq; });
    connect(&engine, &TaskEngine::runStarted, this, [&](const Run &r) { seqs << r.seq; });
    connect(&engine, &TaskEngine::runLog, this, [&](const QString &, const LogLines &lines) {
        for (const LogLine &l : lines)
            seqs << l.seq;
    });
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    QVERIFY(engine.start(u"steps"_s, {}).ok());
    QVERIFY(finished.wait(10000));
    const Run run = finished.first().first().value<Run>();
    seqs << run.seq;
    // queued 1, started 2, one 3, progress 4 or later (sealed per delivery), two, three, finish.
    QCOMPARE(seqs.first(), 1);
    QCOMPARE(seqs.at(1), 2);
    QCOMPARE(seqs.at(2), 3);
    for (qsizetype i = 1; i < seqs.size(); ++i)
        QVERIFY2(seqs.at(i) > seqs.at(i - 1), qPrintable(u"seq %1 after %2"_s.arg(seqs.at(i)).arg(seqs.at(i - 1))));
    // Lines and lifecycle events leave exactly one number for the one progress event.
    QCOMPARE(run.seq, 7);
    QCOMPARE(engine.snapshot(run.id)->seq, 7);
}

void TestFollow::followFromStart()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"gated"_s, &gate, 3, 3)));
    TaskEngine engine(&registry);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const StartResult started = engine.start(u"gated"_s, {});
    QVERIFY(started.ok());
    Following f = engine.follow(started.runId, {.after = 0});
    QVERIFY(f.handle);
    QCOMPARE(f.missingTo, 0);
    Trace trace(f.handle.get());
    gate.open.release();
    QTRY_VERIFY(trace.done);
    QVERIFY2(trace.contiguousFrom(1), qPrintable(trace.events.join(u", "_s)));
    QCOMPARE(trace.events.first(), u"queued"_s);
    QCOMPARE(trace.events.at(1), u"started:1"_s);
    QCOMPARE(trace.events.filter(u"log:"_s),
             (QStringList{u"log:before 1"_s, u"log:before 2"_s, u"log:before 3"_s, u"log:after 1"_s,
                          u"log:after 2"_s, u"log:after 3"_s}));
    QCOMPARE(trace.events.last(), u"finished:succeeded"_s);
    QCOMPARE(f.handle->seq(), trace.seqs.last());
    QVERIFY(f.handle->isDone());
}

void TestFollow::followFromTheMiddle()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"gated"_s, &gate, 100, 50)));
    TaskEngine engine(&registry);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const QString id = engine.start(u"gated"_s, {}).runId;
    QTRY_COMPARE(engine.snapshot(id)->logLines, 100);
    // Events 1..50 were seen elsewhere (a WebSocket before it dropped): resume after 50.
    Following f = engine.follow(id, {.after = 50});
    QVERIFY(f.handle);
    QCOMPARE(f.missingTo, 0);
    Trace trace(f.handle.get());
    gate.open.release();
    QTRY_VERIFY(trace.done);
    QVERIFY2(trace.contiguousFrom(51), qPrintable(trace.events.mid(0, 5).join(u", "_s)));
    // Seq 3 is the first line, so seq 51 is line 49.
    QCOMPARE(trace.events.first(), u"log:before 49"_s);
    QCOMPARE(trace.events.filter(u"log:after"_s).size(), 50);
    QCOMPARE(trace.events.last(), u"finished:succeeded"_s);
}

void TestFollow::snapshotThenLiveEvents()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"gated"_s, &gate, 20, 5)));
    EngineConfig config;
    config.bufferSize = 8;
    TaskEngine engine(&registry, config);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const QString id = engine.start(u"gated"_s, {}).runId;
    QTRY_COMPARE(engine.snapshot(id)->progress.done, 1);
    Following f = engine.follow(id);
    QVERIFY(f.handle);
    // The snapshot: the state, its progress, the last bufferSize lines, the seq it is at.
    QCOMPARE(f.run.status, RunStatus::Running);
    QCOMPARE(f.run.progress.message, u"half"_s);
    QCOMPARE(f.recentLog.size(), 8);
    QCOMPARE(f.recentLog.last().text, u"before 20"_s);
    QCOMPARE(f.recentLog.last().number, 20);
    QVERIFY(f.recentLog.last().seq <= f.run.seq);
    Trace trace(f.handle.get());
    gate.open.release();
    QTRY_VERIFY(trace.done);
    // Exactly the events after the snapshot, no earlier one, none twice.
    QVERIFY2(trace.contiguousFrom(f.run.seq + 1), qPrintable(trace.events.join(u", "_s)));
    QCOMPARE(trace.events, (QStringList{u"log:after 1"_s, u"log:after 2"_s, u"log:after 3"_s,
                                        u"log:after 4"_s, u"log:after 5"_s, u"finished:succeeded"_s}));
}

void TestFollow::followAfterFinishReplaysWindow()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"short"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"a"_s);
        ctx.log(u"b"_s);
        return 1;
    })));
    TaskEngine engine(&registry);
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    const QString id = engine.start(u"short"_s, {}).runId;
    QVERIFY(finished.wait(10000));
    Following f = engine.follow(id, {.after = 2});
    QVERIFY(f.handle);
    QCOMPARE(f.run.status, RunStatus::Succeeded);
    Trace trace(f.handle.get());
    QTRY_VERIFY(trace.done);
    QCOMPARE(trace.events, (QStringList{u"log:a"_s, u"log:b"_s, u"finished:succeeded"_s}));
    QVERIFY(trace.contiguousFrom(3));
}

void TestFollow::missingEventsAreHeldForTheCaller()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"gated"_s, &gate, 30, 2)));
    EngineConfig config;
    config.bufferSize = 10; // the window keeps the last 10 lines only
    TaskEngine engine(&registry, config);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    QSignalSpy progressed(&engine, &TaskEngine::runProgress);
    const QString id = engine.start(u"gated"_s, {}).runId;
    // The progress comes after the 30 lines: once it has been delivered, so have they, and
    // the window was trimmed to its last 10 (it keeps what was not delivered yet).
    QTRY_COMPARE(progressed.size(), 1);
    QCOMPARE(engine.snapshot(id)->logLines, 30);
    Following f = engine.follow(id, {.after = 5});
    QVERIFY(f.handle);
    // Lines 1..20 (seqs 3..22) are gone from the engine: seqs 6..22 must come from elsewhere.
    QCOMPARE(f.missingTo, 22);
    Trace trace(f.handle.get());
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    gate.open.release();
    QVERIFY(finished.wait(10000));
    // Every event reached the handle by now; held, it emitted none of them.
    QVERIFY(trace.events.isEmpty());
    // The history would serve these; here the test makes them.
    LogLines gap;
    for (qint64 seq = 6; seq <= 22; ++seq)
        gap.append(LogLine{seq - 2, 0, LogStream::Out, u"before %1"_s.arg(seq - 2), seq});
    f.handle->supply({RunEvent{RunEvent::Type::Log, 6, gap, {}, {}}});
    f.handle->release();
    QTRY_VERIFY(trace.done);
    QVERIFY2(trace.contiguousFrom(6), qPrintable(trace.events.join(u", "_s)));
    QCOMPARE(trace.events.first(), u"log:before 4"_s);
    QCOMPARE(trace.events.filter(u"log:before"_s).size(), 27);
    QCOMPARE(trace.events.last(), u"finished:succeeded"_s);
}

void TestFollow::hundredFollowersEachSeeEverything()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(makeTask(u"busy"_s, [&gate](RunContext &ctx) -> QJsonValue {
        gate.open.acquire();
        for (int i = 1; i <= 5000; ++i) {
            ctx.log(QString::number(i));
            if (i % 100 == 0)
                ctx.progress(i, 5000);
        }
        return {};
    })));
    TaskEngine engine(&registry);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const QString id = engine.start(u"busy"_s, {}).runId;
    std::vector<Following> followers;
    std::vector<std::unique_ptr<Trace>> traces;
    for (int i = 0; i < 100; ++i) {
        followers.push_back(engine.follow(id, {.after = 0}));
        QVERIFY(followers.back().handle);
        traces.push_back(std::make_unique<Trace>(followers.back().handle.get()));
    }
    gate.open.release();
    QTRY_VERIFY_WITH_TIMEOUT(std::all_of(traces.cbegin(), traces.cend(), [](const auto &t) { return t->done; }), 30000);
    const QStringList &first = traces.front()->events;
    QCOMPARE(first.filter(u"log:"_s).size(), 5000);
    for (const auto &trace : traces) {
        QVERIFY(trace->contiguousFrom(1));
        QCOMPARE(trace->events, first);
    }
}

void TestFollow::slowFollowerFallsBehindAndResumes()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"flood"_s, &gate, 0, 20000)));
    EngineConfig config;
    config.bufferSize = 50000; // the engine still holds what the follower missed
    TaskEngine engine(&registry, config);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const QString id = engine.start(u"flood"_s, {}).runId;
    QTRY_COMPARE(engine.status(id), RunStatus::Running);

    // A follower on a thread that stops taking events: its thread is blocked.
    QThread slowThread;
    slowThread.start();
    const auto stopThread = qScopeGuard([&slowThread] {
        slowThread.quit();
        slowThread.wait();
    });
    Following slow = engine.follow(id, {.after = -1, .maxQueuedLines = 1000});
    QVERIFY(slow.handle);
    const qint64 followedAt = slow.run.seq;
    std::atomic<qint64> behindAt{-1};
    std::atomic<int> linesSeen{0};
    QSemaphore threadBlocked;
    QSemaphore unblock;
    const auto release = qScopeGuard([&unblock] { unblock.release(); });
    connect(slow.handle.get(), &RunHandle::fellBehind, slow.handle.get(),
            [&behindAt](qint64 seq) { behindAt = seq; }, Qt::DirectConnection);
    connect(slow.handle.get(), &RunHandle::log, slow.handle.get(),
            [&linesSeen](const LogLines &lines) { linesSeen += int(lines.size()); }, Qt::DirectConnection);
    slow.handle->moveToThread(&slowThread);
    // Posted through postTo(), not invokeMethod(), so that ThreadSanitizer sees the hand-over.
    taskdeck::detail::postTo(slow.handle.get(), [&] {
        threadBlocked.release();
        unblock.acquire();
    });
    QVERIFY(threadBlocked.tryAcquire(1, 10000));

    // A fast follower beside it sees everything, undisturbed.
    Following fast = engine.follow(id);
    Trace fastTrace(fast.handle.get());
    gate.open.release();
    QTRY_VERIFY_WITH_TIMEOUT(fastTrace.done, 30000);
    QVERIFY(fastTrace.contiguousFrom(fast.run.seq + 1));
    QCOMPARE(fastTrace.events.filter(u"log:"_s).size(), 20000);

    // Let the slow thread go: it learns it fell behind, at the last seq it emitted.
    unblock.release();
    QTRY_VERIFY(behindAt.load() >= 0);
    QCOMPARE(behindAt.load(), followedAt + linesSeen.load());
    QVERIFY(linesSeen.load() < 20000);
    QVERIFY(callOnThread(slow.handle.get(), [&slow] { slow.handle->moveToThread(qApp->thread()); }));

    // It resumes from that seq and gets the rest with no gap and nothing twice.
    Following resumed = engine.follow(id, {.after = behindAt.load()});
    QVERIFY(resumed.handle);
    QCOMPARE(resumed.missingTo, 0);
    Trace trace(resumed.handle.get());
    QTRY_VERIFY(trace.done);
    QVERIFY(trace.contiguousFrom(behindAt.load() + 1));
    QCOMPARE(linesSeen.load() + trace.events.filter(u"log:"_s).size(), 20000);
}

void TestFollow::waitingForRetryIsAState()
{
    TaskRegistry registry;
    std::atomic<int> calls = 0;
    Gate gate;
    Task flaky = makeTask(u"flaky"_s, [&](RunContext &ctx) -> QJsonValue {
        if (++calls == 1)
            throw TransientError(u"busy"_s);
        return ctx.attempt();
    });
    flaky.retry.maxAttempts = 2;
    flaky.retry.initialDelay = 20s; // long enough to look at the waiting run
    flaky.retry.jitter = 0;
    QVERIFY(registry.add(flaky));
    TaskEngine engine(&registry);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    const QString id = engine.start(u"flaky"_s, {}).runId;
    Following f = engine.follow(id, {.after = 0});
    Trace trace(f.handle.get());
    QTRY_COMPARE(trace.events.count(u"retrying"_s), 1);
    QCOMPARE(engine.status(id), RunStatus::Retrying);
    QCOMPARE(trace.retryStatus, RunStatus::Retrying);
    const qint64 inMs = QDateTime::currentDateTimeUtc().msecsTo(trace.retryAt);
    QVERIFY2(inMs > 10000 && inMs <= 20000, qPrintable(QString::number(inMs)));
    QCOMPARE(engine.activeRuns().size(), 1);
    QVERIFY(engine.cancel(id));
    QTRY_VERIFY(trace.done);
    QCOMPARE(trace.events.last(), u"finished:canceled"_s);
    QVERIFY(trace.contiguousFrom(1));
}

void TestFollow::waitingInASlotDoesNotReorder()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"quick"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"line"_s);
        return {};
    })));
    TaskEngine engine(&registry);
    QHash<QString, QStringList> seen;
    QHash<QString, QList<qint64>> seqs;
    QString first;
    auto add = [&](const QString &id, qint64 seq, const QString &what) {
        seen[id] << what;
        seqs[id] << seq;
    };
    connect(&engine, &TaskEngine::runQueued, this, [&](const Run &r) {
        add(r.id, r.seq, u"queued"_s);
        if (r.id == first)
            QVERIFY(engine.waitForFinished(r.id, 10s)); // blocks the engine's thread
    });
    connect(&engine, &TaskEngine::runStarted, this, [&](const Run &r) { add(r.id, r.seq, u"started"_s); });
    connect(&engine, &TaskEngine::runLog, this, [&](const QString &id, const LogLines &lines) {
        for (const LogLine &l : lines)
            add(id, l.seq, u"log"_s);
    });
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    connect(&engine, &TaskEngine::runFinished, this, [&](const Run &r) { add(r.id, r.seq, u"finished"_s); });
    first = engine.start(u"quick"_s, {}).runId;
    const QString second = engine.start(u"quick"_s, {}).runId;
    QTRY_COMPARE(finished.size(), 2);
    const QStringList expected{u"queued"_s, u"started"_s, u"log"_s, u"finished"_s};
    QCOMPARE(seen.value(first), expected);
    QCOMPARE(seen.value(second), expected);
    QCOMPARE(seqs.value(second), (QList<qint64>{1, 2, 3, 4}));
}

void TestFollow::chattyRunDoesNotSlowOthers()
{
    // The engine's thread takes no events while the test blocks it: a run that prints far
    // more than the engine holds for delivery is made to wait, another run must not be.
    TaskRegistry registry;
    QSemaphore floodDone;
    QSemaphore quietDone;
    QVERIFY(registry.add(makeTask(u"chatty"_s, [&floodDone](RunContext &ctx) -> QJsonValue {
        for (int i = 0; i < 120000; ++i)
            ctx.log(u"x"_s);
        floodDone.release();
        return {};
    })));
    QVERIFY(registry.add(makeTask(u"quiet"_s, [&floodDone, &quietDone](RunContext &ctx) -> QJsonValue {
        const auto done = qScopeGuard([&quietDone] { quietDone.release(); });
        floodDone.acquire();
        floodDone.release();
        // Each of these lines waited for the engine's thread while the chatty run's lines
        // were pending: 100 lines, at least 25 s.
        for (int i = 0; i < 100; ++i)
            ctx.log(u"quiet %1"_s.arg(i));
        return {};
    })));
    EngineConfig config;
    config.maxConcurrent = 2;
    TaskEngine engine(&registry, config);
    QVERIFY(engine.start(u"chatty"_s, {}).ok());
    QVERIFY(engine.start(u"quiet"_s, {}).ok());
    // Blocks the engine's thread without running its event loop. The chatty run's lines take
    // their time (many seconds under ThreadSanitizer); the quiet run's wait starts after them.
    QVERIFY(floodDone.tryAcquire(1, 240000));
    floodDone.release();
    QVERIFY2(quietDone.tryAcquire(1, 10000), "the quiet run's log() waited for the chatty run's lines");
}

void TestFollow::finishAfterEngineGoneTouchesNothing()
{
    // A recorder whose commits arrive late: it keeps the durable callbacks and calls them
    // after the engine is destroyed (a history waiting behind another process's lock).
    class LateRecorder final : public IRunRecorder
    {
    public:
        void recordQueued(const Run &) override {}
        void recordStarted(const Run &) override {}
        void recordRetrying(const Run &) override {}
        void recordProgress(const QString &, const Progress &) override {}
        void recordLog(const QString &, const LogLines &) override {}
        void recordFinished(const Run &run, std::function<void()> durable) override
        {
            std::lock_guard lock(mutex);
            finishedSeq = run.seq;
            late.push_back(std::move(durable));
        }
        std::mutex mutex;
        std::vector<std::function<void()>> late; // guarded by mutex
        qint64 finishedSeq = 0;                  // guarded by mutex
    } recorder;

    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"noop"_s, [](RunContext &) -> QJsonValue { return {}; })));
    {
        EngineConfig config;
        config.shutdownGrace = 100ms;
        TaskEngine engine(&registry, config);
        engine.setRecorder(&recorder);
        const QString id = engine.start(u"noop"_s, {}).runId;
        QTRY_VERIFY([&recorder] {
            std::lock_guard lock(recorder.mutex);
            return !recorder.late.empty();
        }());
        // Not durable yet: nobody is shown the finish.
        QCOMPARE(engine.status(id), RunStatus::Running);
    }
    // The engine is gone; the commit lands now. Under AddressSanitizer a touch of the freed
    // engine fails this test.
    std::vector<std::function<void()>> late;
    {
        std::lock_guard lock(recorder.mutex);
        late.swap(recorder.late);
        QCOMPARE(recorder.finishedSeq, 3);
    }
    QCOMPARE(late.size(), size_t(1));
    late.front()();
}

void TestFollow::closingDoesNotWaitForStuckTask()
{
    Recorder recorder;
    std::atomic<bool> stop{false};
    std::atomic<bool> running{false};
    TaskRegistry registry;
    // Never polls isCanceled(): only the test (or 20 s) ends it.
    QVERIFY(registry.add(makeTask(u"stubborn"_s, [&](RunContext &) -> QJsonValue {
        running = true;
        QElapsedTimer clock;
        clock.start();
        while (!stop.load() && clock.elapsed() < 20000)
            QThread::msleep(5);
        running = false;
        return {};
    })));
    const auto end = qScopeGuard([&] {
        stop = true;
        QTRY_VERIFY(!running.load());
    });
    QString id;
    {
        EngineConfig config;
        config.shutdownGrace = 200ms;
        TaskEngine engine(&registry, config);
        engine.setRecorder(&recorder);
        id = engine.start(u"stubborn"_s, {}).runId;
        QTRY_VERIFY(running.load());
    }
    // The engine closed while the task still runs, and recorded the run as interrupted.
    QVERIFY(running.load());
    const QStringList events = recorder.of(id);
    QVERIFY2(!events.isEmpty() && events.last() == u"finished:interrupted"_s, qPrintable(events.join(u", "_s)));
}

void TestFollow::activeRunsKeepQueueOrder()
{
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(makeTask(u"hold"_s, [&gate](RunContext &) -> QJsonValue {
        gate.open.acquire();
        return {};
    })));
    EngineConfig config;
    config.maxConcurrent = 1;
    TaskEngine engine(&registry, config);
    // Opens the gate before the engine closes, so a failed check never leaves it waiting.
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    QStringList ids;
    for (int i = 0; i < 300; ++i)
        ids << engine.start(u"hold"_s, {}).runId;
    QStringList active;
    for (const Run &run : engine.activeRuns())
        active << run.id;
    QCOMPARE(active, ids);
}

void TestFollow::handleCancels()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"wait"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.sleep(60s);
        return {};
    })));
    TaskEngine engine(&registry);
    const QString id = engine.start(u"wait"_s, {}).runId;
    Following f = engine.follow(id);
    Trace trace(f.handle.get());
    QTRY_COMPARE(engine.status(id), RunStatus::Running);
    QVERIFY(f.handle->cancel());
    QTRY_VERIFY(trace.done);
    QCOMPARE(trace.events.last(), u"finished:canceled"_s);
    QVERIFY(trace.events.contains(u"log:cancel requested; stopping"_s));
    QVERIFY(!f.handle->cancel());
}

void TestFollow::forgottenRunComesFromHistory()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"lines"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 2500; ++i)
            ctx.log(u"line %1"_s.arg(i));
        return 7;
    })));
    EngineConfig config;
    config.finishedRunsKept = 0; // the engine forgets every finished run at once
    TaskEngine engine(&registry, config);
    engine.setRecorder(store.get());
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    const QString id = engine.start(u"lines"_s, {}).runId;
    QVERIFY(finished.wait(20000));
    const Run done = finished.first().first().value<Run>();
    QVERIFY(!engine.follow(id).handle);

    RunFollower follower(&engine, store.get());
    std::optional<Following> got;
    std::unique_ptr<Trace> trace;
    // Connected in the callback: events may follow right after it.
    follower.follow(id, {.after = 12}, this, [&](Following f) {
        got = std::move(f);
        if (got->handle)
            trace = std::make_unique<Trace>(got->handle.get());
    });
    QTRY_VERIFY(got.has_value());
    QVERIFY(got->handle);
    QCOMPARE(got->run.status, RunStatus::Succeeded);
    QCOMPARE(got->run.seq, done.seq);
    QCOMPARE(got->recentLog.size(), 1000);
    QCOMPARE(got->recentLog.last().text, u"line 2500"_s);
    QTRY_VERIFY(trace->done);
    // Seq 3 is line 1, so the lines after seq 12 start at line 11; then the finish.
    const QStringList lines = trace->events.filter(u"log:"_s);
    QCOMPARE(lines.size(), 2490);
    QCOMPARE(lines.first(), u"log:line 11"_s);
    QCOMPARE(lines.last(), u"log:line 2500"_s);
    QVERIFY(trace->contiguousFrom(13));
    QCOMPARE(trace->events.last(), u"finished:succeeded"_s);
}

void TestFollow::gapIsFilledFromHistory()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    Gate gate;
    QVERIFY(registry.add(gatedTask(u"gated"_s, &gate, 3000, 20)));
    EngineConfig config;
    config.bufferSize = 10;
    TaskEngine engine(&registry, config);
    const auto openGate = qScopeGuard([&gate] { gate.open.release(1000); });
    engine.setRecorder(store.get());
    QSignalSpy progressed(&engine, &TaskEngine::runProgress);
    const QString id = engine.start(u"gated"_s, {}).runId;
    // Delivered up to the progress after the 3,000 lines, so the window holds the last 10.
    QTRY_COMPARE(progressed.size(), 1);
    QCOMPARE(engine.snapshot(id)->logLines, 3000);
    RunFollower follower(&engine, store.get());
    std::optional<Following> got;
    follower.follow(id, {.after = 5}, this, [&got](Following f) { got = std::move(f); });
    QVERIFY(got.has_value()); // the engine holds the run: answered at once
    QVERIFY(got->missingTo > 5);
    Trace trace(got->handle.get());
    gate.open.release();
    QTRY_VERIFY_WITH_TIMEOUT(trace.done, 20000);
    QVERIFY2(trace.contiguousFrom(6), qPrintable(trace.events.mid(0, 3).join(u", "_s)));
    QCOMPARE(trace.events.first(), u"log:before 4"_s);
    QCOMPARE(trace.events.filter(u"log:before"_s).size(), 2997);
    QCOMPARE(trace.events.filter(u"log:after"_s).size(), 20);
}

void TestFollow::runOfAnotherProcessIsFollowed()
{
    // Two stores on one history are two processes to SQLite: the other one runs the run.
    QTemporaryDir dir;
    auto mine = openStore(dir.path());
    auto theirs = openStore(dir.path());
    QVERIFY(mine && theirs);
    Run run;
    run.id = u"01a00000-0000-7000-8000-00000000beef"_s;
    run.task = u"elsewhere"_s;
    run.queuedAt = QDateTime::currentDateTimeUtc();
    run.startedAt = run.queuedAt;
    run.status = RunStatus::Running;
    run.attempt = 1;
    run.seq = 2;
    theirs->recordStarted(run);
    auto lines = [](qint64 from, qint64 to) {
        LogLines out;
        for (qint64 n = from; n <= to; ++n)
            out.append(LogLine{n, 0, LogStream::Out, u"remote %1"_s.arg(n), n + 2});
        return out;
    };
    theirs->recordLog(run.id, lines(1, 5));
    QVERIFY(theirs->flush(10s));

    TaskRegistry registry;
    TaskEngine engine(&registry);
    RunFollower follower(&engine, mine.get());
    std::optional<Following> got;
    std::unique_ptr<Trace> trace;
    follower.follow(run.id, {.after = 0}, this, [&](Following f) {
        got = std::move(f);
        if (got->handle)
            trace = std::make_unique<Trace>(got->handle.get());
    });
    QTRY_VERIFY(got.has_value());
    QVERIFY(got->handle);
    QCOMPARE(got->run.status, RunStatus::Running);
    QTRY_COMPARE(trace->events.size(), 5);

    // The other process goes on writing; this one sees it without asking.
    theirs->recordLog(run.id, lines(6, 8));
    run.status = RunStatus::Succeeded;
    run.finishedAt = QDateTime::currentDateTimeUtc();
    run.logLines = 8;
    run.seq = 11;
    std::atomic<bool> durable = false; // set on the history's writer thread
    theirs->recordFinished(run, [&durable] { durable = true; });
    QTRY_VERIFY(durable);
    QTRY_VERIFY_WITH_TIMEOUT(trace->done, 10000);
    QCOMPARE(trace->events.filter(u"log:"_s).size(), 8);
    QCOMPARE(trace->events.last(), u"finished:succeeded"_s);
    QCOMPARE(trace->seqs.last(), 11);
}

void TestFollow::unknownRunHasNoHandle()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    TaskEngine engine(&registry);
    RunFollower follower(&engine, store.get());
    bool answered = false;
    follower.follow(u"01a00000-0000-7000-8000-000000000000"_s, {}, this, [&answered](Following f) {
        answered = true;
        QVERIFY(!f.handle);
    });
    QTRY_VERIFY(answered);
}

// A caller that goes away while the history is still being asked (a window closed, a client
// gone) is never called back, and nothing asserts on its dead context.
void TestFollow::goneContextHearsNothing()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"lines"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 50; ++i)
            ctx.log(u"line %1"_s.arg(i));
        return 1;
    })));
    EngineConfig config;
    config.finishedRunsKept = 0;
    TaskEngine engine(&registry, config);
    engine.setRecorder(store.get());
    QSignalSpy finished(&engine, &TaskEngine::runFinished);
    const QString id = engine.start(u"lines"_s, {}).runId;
    QVERIFY(finished.wait(20000));
    QVERIFY(!engine.follow(id).handle);

    RunFollower follower(&engine, store.get());
    int goneAnswers = 0;
    for (int i = 0; i < 20; ++i) {
        auto *context = new QObject;
        follower.follow(id, {}, context, [&goneAnswers](Following) { ++goneAnswers; });
        delete context;
    }
    // Asked after them, answered after them: once this one has its answer, so had they.
    std::optional<Following> got;
    follower.follow(id, {}, this, [&got](Following f) { got = std::move(f); });
    QTRY_VERIFY(got.has_value());
    QVERIFY(got->handle);
    QCOMPARE(got->run.logLines, 50);
    QCoreApplication::processEvents();
    QCOMPARE(goneAnswers, 0);
}

// The notifier knows whether anyone listens from its connect and disconnect notifications
// alone: receivers destroyed in numbers, on this thread and on another, leave it unwatched
// (asking Qt from inside disconnectNotify() could hang here).
void TestFollow::notifierCountsItsReceivers()
{
    RunStoreNotifier notifier;
    QVERIFY(!notifier.isWatched());
    std::vector<std::unique_ptr<QObject>> receivers;
    for (int i = 0; i < 300; ++i) {
        receivers.push_back(std::make_unique<QObject>());
        connect(&notifier, &RunStoreNotifier::runsChanged, receivers.back().get(), [] {});
    }
    QVERIFY(notifier.isWatched());
    receivers.erase(receivers.begin(), receivers.begin() + 299);
    QVERIFY(notifier.isWatched()); // one is left
    receivers.clear();
    QVERIFY(!notifier.isWatched());

    // Receivers living in another thread, destroyed there.
    QThread thread;
    thread.start();
    std::vector<QObject *> remote;
    for (int i = 0; i < 100; ++i) {
        auto *receiver = new QObject;
        receiver->moveToThread(&thread);
        connect(&notifier, &RunStoreNotifier::runsChanged, receiver, [] {});
        remote.push_back(receiver);
    }
    QVERIFY(notifier.isWatched());
    for (QObject *receiver : remote)
        receiver->deleteLater();
    QTRY_VERIFY_WITH_TIMEOUT(!notifier.isWatched(), 10000);
    thread.quit();
    QVERIFY(thread.wait(10000));

    // A disconnect of everything counts every receiver out at once.
    QObject last;
    connect(&notifier, &RunStoreNotifier::runsChanged, &last, [] {});
    connect(&notifier, &RunStoreNotifier::runsChanged, &last, [] {});
    QVERIFY(notifier.isWatched());
    notifier.disconnect();
    QVERIFY(!notifier.isWatched());
}

QTEST_GUILESS_MAIN(TestFollow)
#include "tst_follow.moc"
