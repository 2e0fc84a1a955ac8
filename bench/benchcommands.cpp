// SPDX-License-Identifier: MIT
// Command throughput: many short /bin/echo runs through the engine, with their output
// captured, against xargs -P2 running the same commands.

#include <algorithm>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QProcess>
#include <QTemporaryFile>

#include "benchsupport.h"
#include "runcontext.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kCommands = 5000;
constexpr int kWarmupCommands = 200;
constexpr int kConcurrency = 2;
constexpr int kRounds = 3;
constexpr double kTargetRatio = 1.1;

/*! One round through the engine: first start() until every run finished and every line
 *  arrived on this thread. */
double engineRound(TaskEngine &engine, int count)
{
    int finished = 0;
    int failed = 0;
    QString firstFailure;
    qint64 outLines = 0;
    qint64 otherLines = 0;
    qint64 sum = 0;
    QEventLoop loop;
    const auto done = [&] { return finished == count && outLines >= count; };
    const auto onFinished = QObject::connect(&engine, &TaskEngine::runFinished, &loop, [&](const Run &run) {
        if (run.status != RunStatus::Succeeded && failed++ == 0)
            firstFailure = run.error.message;
        ++finished;
        if (done())
            loop.quit();
    });
    const auto onLog = QObject::connect(&engine, &TaskEngine::runLog, &loop,
                                        [&](const QString &, const LogLines &lines) {
        for (const LogLine &line : lines) {
            if (line.stream != LogStream::Out) {
                ++otherLines;
                continue;
            }
            ++outLines;
            sum += line.text.toLongLong();
        }
        if (done())
            loop.quit();
    });

    QElapsedTimer timer;
    timer.start();
    for (int n = 1; n <= count; ++n) {
        const StartResult started = engine.start(u"echo"_s, {{u"n"_s, n}});
        if (!started.ok())
            qFatal("start failed: %s", qPrintable(started.error.message));
    }
    if (!done())
        loop.exec();
    const double ms = double(timer.nsecsElapsed()) / 1e6;

    QObject::disconnect(onFinished);
    QObject::disconnect(onLog);
    if (failed != 0)
        qFatal("engine: %d runs failed, the first with: %s", failed, qPrintable(firstFailure));
    if (outLines != count || sum != bench::sumUpTo(count) || otherLines != 0) {
        qFatal("engine: expected %d output lines summing to %lld, got %lld summing to %lld (and %lld other lines)",
               count, bench::sumUpTo(count), outLines, sum, otherLines);
    }
    return ms;
}

/*! One round of xargs -P2 -n1 /bin/echo, fed the numbers on stdin, output to a file. */
double xargsRound(int count)
{
    QTemporaryFile output;
    if (!output.open())
        qFatal("cannot create a temporary file");
    output.close();
    return bench::xargsEchoRound(count, kConcurrency, output.fileName());
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kCommands, kRounds});

    TaskRegistry registry;
    Task echo;
    echo.key = u"echo"_s;
    echo.title = u"Echo a number"_s;
    echo.fields = {Field(u"n"_s, FieldType::Integer).withRequired()};
    echo.fn = [](RunContext &ctx) -> QJsonValue {
        const qint64 n = ctx.arg(u"n"_s).toInteger();
        Command echoNumber;
        echoNumber.argv = QStringList{u"/bin/echo"_s, QString::number(n)};
        return ctx.runChecked(echoNumber);
    };
    QString error;
    if (!registry.add(echo, &error))
        qFatal("cannot register the task: %s", qPrintable(error));

    EngineConfig config;
    config.maxConcurrent = kConcurrency;
    config.startRate = 0;
    TaskEngine engine(&registry, config);

    engineRound(engine, std::min(kWarmupCommands, scale.count));
    xargsRound(std::min(kWarmupCommands, scale.count));

    QList<double> engineMs;
    QList<double> xargsMs;
    for (int round = 0; round < scale.rounds; ++round) {
        engineMs << engineRound(engine, scale.count);
        xargsMs << xargsRound(scale.count);
    }

    bench::Result result;
    result.bench = u"commands"_s;
    result.value = bench::median(engineMs);
    result.baseline = bench::median(xargsMs);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"commands"_s, scale.count},
        {u"concurrency"_s, kConcurrency},
        {u"rounds"_s, scale.rounds},
        {u"machine"_s, bench::machineInfo()},
    };

    bench::printLine(u"commands: %1 x /bin/echo N, concurrency %2, median of %3 rounds"_s
                         .arg(scale.count).arg(kConcurrency).arg(scale.rounds));
    bench::printLine(u"  engine ms: %1"_s.arg(bench::formatSamples(engineMs)));
    bench::printLine(u"  xargs  ms: %1"_s.arg(bench::formatSamples(xargsMs)));
    bench::printLine(u"commands: engine %1 ms (%2 ms per command), xargs -P%3 %4 ms, ratio %5 (target <= %6)%7"_s
                         .arg(QString::number(result.value, 'f', 1),
                              QString::number(result.value / scale.count, 'f', 3),
                              QString::number(kConcurrency),
                              QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
