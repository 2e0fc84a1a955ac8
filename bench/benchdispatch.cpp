// SPDX-License-Identifier: MIT
// Scheduling overhead: no-op runs through TaskEngine::start against no-op lambdas on a raw
// QThreadPool with the same number of threads.

#include <algorithm>
#include <atomic>
#include <cmath>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QThread>
#include <QThreadPool>

#include "benchsupport.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kRuns = 100000;
constexpr int kRounds = 5;
constexpr double kTargetRatio = 10.0;

/*! Wall time, CPU time (all threads) and, for the engine, how long the start() calls took. */
struct Round
{
    double ms = 0;
    double cpuMs = 0;
    double startLoopMs = 0;
};

/*! One round through the engine: first start() until the last runFinished has arrived. */
Round engineRound(TaskEngine &engine, int count)
{
    int finished = 0;
    int failed = 0;
    QEventLoop loop;
    const auto connection = QObject::connect(&engine, &TaskEngine::runFinished, &loop,
                                             [&](const Run &run) {
        if (run.status != RunStatus::Succeeded)
            ++failed;
        if (++finished == count)
            loop.quit();
    });

    Round round;
    const double cpuBefore = bench::processCpuMs();
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < count; ++i) {
        const StartResult started = engine.start(u"noop"_s, {});
        if (!started.ok())
            qFatal("start failed: %s", qPrintable(started.error.message));
    }
    round.startLoopMs = double(timer.nsecsElapsed()) / 1e6;
    if (finished < count)
        loop.exec();
    round.ms = double(timer.nsecsElapsed()) / 1e6;
    round.cpuMs = bench::processCpuMs() - cpuBefore;

    QObject::disconnect(connection);
    if (finished != count || failed != 0)
        qFatal("engine: %d of %d runs finished, %d did not succeed", finished, count, failed);
    return round;
}

/*! One round on a raw pool: first start() until waitForDone() returns. */
Round poolRound(QThreadPool &pool, int count)
{
    std::atomic<int> done{0};
    Round round;
    const double cpuBefore = bench::processCpuMs();
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < count; ++i)
        pool.start([&done] { done.fetch_add(1, std::memory_order_relaxed); });
    round.startLoopMs = double(timer.nsecsElapsed()) / 1e6;
    pool.waitForDone();
    round.ms = double(timer.nsecsElapsed()) / 1e6;
    round.cpuMs = bench::processCpuMs() - cpuBefore;
    if (done.load() != count)
        qFatal("raw pool: %d of %d lambdas ran", done.load(), count);
    return round;
}

QList<double> pick(const QList<Round> &rounds, double Round::*field)
{
    QList<double> values;
    for (const Round &r : rounds)
        values << r.*field;
    return values;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kRuns, kRounds});
    const int threads = QThread::idealThreadCount();

    TaskRegistry registry;
    Task noop;
    noop.key = u"noop"_s;
    noop.title = u"No-op"_s;
    noop.fn = [](RunContext &) -> QJsonValue { return {}; };
    QString error;
    if (!registry.add(noop, &error))
        qFatal("cannot register the task: %s", qPrintable(error));

    // The raw pool goes first, before the engine exists: the engine's heap (runs it keeps,
    // events in flight) measurably slows the allocations of code that runs after it in the
    // same process, and the baseline should not pay for that.
    QList<Round> poolRounds;
    {
        QThreadPool pool;
        pool.setMaxThreadCount(threads);
        poolRound(pool, scale.count); // starts the threads, grows the heap
        for (int round = 0; round < scale.rounds; ++round)
            poolRounds << poolRound(pool, scale.count);
    }

    EngineConfig config;
    config.maxConcurrent = threads;
    config.startRate = 0;
    TaskEngine engine(&registry, config);
    QList<Round> engineRounds;
    // The first round grows the heap to hold every run whose events wait for the event loop
    // (the start() loop does not return to it); that costs page faults once, and is reported
    // on its own as the cold round.
    const Round cold = engineRound(engine, scale.count);
    for (int round = 0; round < scale.rounds; ++round)
        engineRounds << engineRound(engine, scale.count);

    const QList<double> engineMs = pick(engineRounds, &Round::ms);
    const QList<double> poolMs = pick(poolRounds, &Round::ms);
    const QList<double> engineCpuMs = pick(engineRounds, &Round::cpuMs);
    const QList<double> poolCpuMs = pick(poolRounds, &Round::cpuMs);
    const QList<double> startLoopMs = pick(engineRounds, &Round::startLoopMs);
    const auto tenth = [](double v) { return std::round(v * 10) / 10; };

    bench::Result result;
    result.bench = u"dispatch"_s;
    result.value = bench::median(engineMs);
    result.baseline = bench::median(poolMs);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"runs"_s, scale.count},
        {u"threads"_s, threads},
        {u"rounds"_s, scale.rounds},
        {u"engineCpuMs"_s, tenth(bench::median(engineCpuMs))},
        {u"baselineCpuMs"_s, tenth(bench::median(poolCpuMs))},
        {u"engineStartLoopMs"_s, tenth(bench::median(startLoopMs))},
        {u"engineColdMs"_s, tenth(cold.ms)},
        {u"rssAfterMiB"_s, tenth(double(bench::procStatusKiB("VmRSS").value_or(0)) / 1024.0)},
        {u"machine"_s, bench::machineInfo()},
    };

    bench::printLine(u"dispatch: %1 no-op runs on %2 threads, median of %3 rounds"_s
                         .arg(scale.count).arg(threads).arg(scale.rounds));
    bench::printLine(u"  engine   wall ms: %1"_s.arg(bench::formatSamples(engineMs)));
    bench::printLine(u"  engine   CPU ms:  %1 (start() loop alone: %2 ms wall)"_s
                         .arg(bench::formatSamples(engineCpuMs), bench::formatSamples(startLoopMs)));
    bench::printLine(u"  engine   cold round (first, heap growing): %1 ms"_s.arg(QString::number(cold.ms, 'f', 1)));
    bench::printLine(u"  raw pool wall ms: %1"_s.arg(bench::formatSamples(poolMs)));
    bench::printLine(u"  raw pool CPU ms:  %1"_s.arg(bench::formatSamples(poolCpuMs)));
    bench::printLine(u"  RSS after all rounds: %1 MiB"_s
                         .arg(QString::number(double(bench::procStatusKiB("VmRSS").value_or(0)) / 1024.0, 'f', 1)));
    bench::printLine(u"dispatch: engine %1 ms, raw pool %2 ms, ratio %3 (target <= %4)%5"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
