// SPDX-License-Identifier: MIT
// The cost of keeping history: no-op runs through TaskEngine::start with the SQLite run
// store as the engine's recorder, against the same runs with no recorder at all.

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QThread>

#include "benchsupport.h"
#include "store/sqliterunstore.h"
#include "taskengine.h"
#include "taskregistry.h"

#include <cmath>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

constexpr int kRuns = 100000;
constexpr int kWarmupRuns = 2000;
constexpr int kRounds = 3;
constexpr double kTargetRatio = 1.5;

/*! First start() until the last runFinished has arrived (and, with a store, is committed:
 *  the engine shows a finish only once the store made it durable). */
double round(TaskEngine &engine, int count)
{
    int finished = 0;
    QEventLoop loop;
    const auto connection = QObject::connect(&engine, &TaskEngine::runFinished, &loop, [&](const Run &run) {
        if (run.status != RunStatus::Succeeded)
            qFatal("a run did not succeed: %s", qPrintable(run.error.message));
        if (++finished == count)
            loop.quit();
    });
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < count; ++i) {
        if (!engine.start(u"noop"_s, {}).ok())
            qFatal("start failed");
    }
    if (finished < count)
        loop.exec();
    const double ms = double(timer.nsecsElapsed()) / 1e6;
    QObject::disconnect(connection);
    return ms;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kRuns, kRounds});

    TaskRegistry registry;
    Task noop;
    noop.key = u"noop"_s;
    noop.fn = [](RunContext &) -> QJsonValue { return {}; };
    if (!registry.add(noop))
        qFatal("cannot register the task");
    EngineConfig config;
    config.maxConcurrent = QThread::idealThreadCount();

    // One untimed round first: the process heap grows once to hold every run whose events
    // wait for the event loop (see bench_dispatch), and no measured round pays for that.
    {
        TaskEngine engine(&registry, config);
        round(engine, scale.count);
    }

    // Rounds alternate between the two sides so that neither gets the quieter machine.
    QList<double> withStore;
    QList<double> without;
    qint64 stored = 0;
    qint64 databaseBytes = 0;
    for (int r = 0; r < scale.rounds; ++r) {
        {
            TaskEngine engine(&registry, config);
            round(engine, std::min(kWarmupRuns, scale.count));
            without << round(engine, scale.count);
        }
        QTemporaryDir dir;
        QString error;
        auto store = SqliteRunStore::open(dir.path(), &error);
        if (!store)
            qFatal("cannot open the store: %s", qPrintable(error));
        {
            TaskEngine engine(&registry, config);
            engine.setRecorder(store.get());
            round(engine, std::min(kWarmupRuns, scale.count));
            withStore << round(engine, scale.count);
        }
        RunQuery everything;
        everything.limit = 0;
        stored = store->findRuns(everything).total;
        if (stored != scale.count + std::min(kWarmupRuns, scale.count))
            qFatal("the store holds %lld runs, expected %d", stored, scale.count + std::min(kWarmupRuns, scale.count));
        const QString file = store->location();
        store.reset();
        // Pages not yet checkpointed are still in the write-ahead log.
        databaseBytes = QFileInfo(file).size() + QFileInfo(file + u"-wal"_s).size();
    }

    bench::Result result;
    result.bench = u"history"_s;
    result.value = bench::median(withStore);
    result.baseline = bench::median(without);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"runs"_s, scale.count},
        {u"rounds"_s, scale.rounds},
        {u"storedRuns"_s, stored},
        {u"databaseMiB"_s, std::round(double(databaseBytes) / 1048576.0 * 10) / 10},
        {u"machine"_s, bench::machineInfo()},
    };
    bench::printLine(u"history: %1 no-op runs, median of %2 rounds"_s.arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  store on  wall ms: %1"_s.arg(bench::formatSamples(withStore)));
    bench::printLine(u"  store off wall ms: %1"_s.arg(bench::formatSamples(without)));
    bench::printLine(u"history: store on %1 ms, off %2 ms, ratio %3 (target <= %4)%5"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
