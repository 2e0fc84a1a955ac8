// SPDX-License-Identifier: MIT
// Log capture: one command printing a million lines through the engine, against the same
// command writing to a file; with the main thread's longest stall and the memory it took.

#include <algorithm>
#include <cmath>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QProcess>
#include <QTemporaryFile>
#include <QTimer>

#include "benchsupport.h"
#include "runcontext.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kLines = 1000000;
constexpr int kWarmupLines = 1000;
constexpr int kRounds = 3;
constexpr double kTargetStallMs = 50;
constexpr double kTargetRssMiB = 100;

/*!
 * Watches the main thread while it is active: a 1 ms timer notes the longest gap between
 * its ticks and, when the kernel's peak counter cannot be reset, the highest VmRSS seen.
 */
class MainThreadWatch final
{
public:
    explicit MainThreadWatch(bool sampleRss)
        : m_sampleRss(sampleRss)
    {
        m_timer.setTimerType(Qt::PreciseTimer);
        m_timer.setInterval(1);
        QObject::connect(&m_timer, &QTimer::timeout, &m_timer, [this] { tick(); });
    }

    void start()
    {
        m_maxGapNs = 0;
        m_peakRssKiB = bench::procStatusKiB("VmRSS").value_or(0);
        m_clock.start();
        m_lastNs = 0;
        m_timer.start();
    }

    void stop()
    {
        // The time since the last tick counts too: a stall can last until the very end.
        tick();
        m_timer.stop();
    }

    double maxStallMs() const { return double(m_maxGapNs) / 1e6; }
    qint64 peakRssKiB() const { return m_peakRssKiB; }

private:
    void tick()
    {
        const qint64 now = m_clock.nsecsElapsed();
        m_maxGapNs = std::max(m_maxGapNs, now - m_lastNs);
        m_lastNs = now;
        if (m_sampleRss)
            m_peakRssKiB = std::max(m_peakRssKiB, bench::procStatusKiB("VmRSS").value_or(0));
    }

    bool m_sampleRss;
    QTimer m_timer;
    QElapsedTimer m_clock;
    qint64 m_lastNs = 0;
    qint64 m_maxGapNs = 0;
    qint64 m_peakRssKiB = 0;
};

struct EngineRound
{
    double ms = 0;
    double maxStallMs = 0;
    double rssGrowthMiB = 0;
};

/*! One run of `seq 1 count` through the engine: start() until the last line arrived here. */
EngineRound engineRound(TaskEngine &engine, int count, bool canResetPeak)
{
    bool finished = false;
    RunStatus status = RunStatus::Queued;
    QString failure;
    qint64 outLines = 0;
    qint64 otherLines = 0;
    QString firstLine;
    QString lastLine;
    QEventLoop loop;
    const auto done = [&] { return finished && outLines >= count; };
    const auto onFinished = QObject::connect(&engine, &TaskEngine::runFinished, &loop, [&](const Run &run) {
        finished = true;
        status = run.status;
        failure = run.error.message;
        if (done() || status != RunStatus::Succeeded)
            loop.quit();
    });
    const auto onLog = QObject::connect(&engine, &TaskEngine::runLog, &loop,
                                        [&](const QString &, const LogLines &lines) {
        for (const LogLine &line : lines) {
            if (line.stream != LogStream::Out) {
                ++otherLines;
                continue;
            }
            if (outLines++ == 0)
                firstLine = line.text;
        }
        if (!lines.isEmpty() && lines.constLast().stream == LogStream::Out)
            lastLine = lines.constLast().text;
        if (done())
            loop.quit();
    });

    MainThreadWatch watch(!canResetPeak);
    const qint64 rssBeforeKiB = bench::procStatusKiB("VmRSS").value_or(0);
    if (canResetPeak)
        bench::resetPeakRss();
    watch.start();

    QElapsedTimer timer;
    timer.start();
    const StartResult started = engine.start(u"seq"_s, {{u"count"_s, count}});
    if (!started.ok())
        qFatal("start failed: %s", qPrintable(started.error.message));
    if (!done())
        loop.exec();
    EngineRound round;
    round.ms = double(timer.nsecsElapsed()) / 1e6;

    watch.stop();
    const qint64 peakKiB = canResetPeak ? bench::procStatusKiB("VmHWM").value_or(0) : watch.peakRssKiB();
    round.maxStallMs = watch.maxStallMs();
    round.rssGrowthMiB = double(peakKiB - rssBeforeKiB) / 1024.0;

    QObject::disconnect(onFinished);
    QObject::disconnect(onLog);
    if (status != RunStatus::Succeeded)
        qFatal("engine: the run ended %s: %s", qPrintable(runStatusName(status)), qPrintable(failure));
    if (outLines != count || otherLines != 0 || firstLine != u"1"_s || lastLine != QString::number(count)) {
        qFatal("engine: expected lines 1..%d, got %lld lines from %s to %s (and %lld other lines)",
               count, outLines, qPrintable(firstLine), qPrintable(lastLine), otherLines);
    }
    return round;
}

struct BaselineRound
{
    double ms = 0;
    double maxStallMs = 0;
};

/*! One run of sh -c 'seq 1 count > FILE': start() until finished() arrives here. */
BaselineRound shellRound(int count)
{
    QTemporaryFile output;
    if (!output.open())
        qFatal("cannot create a temporary file");
    output.close();
    const QString path = output.fileName();
    // QTemporaryFile names contain no quote; quoting keeps spaces in TMPDIR harmless.
    const QString script = u"seq 1 %1 > '%2'"_s.arg(QString::number(count), path);

    QProcess shell;
    shell.setProgram(u"sh"_s);
    shell.setArguments({u"-c"_s, script});
    shell.setProcessChannelMode(QProcess::ForwardedChannels);
    QEventLoop loop;
    QObject::connect(&shell, &QProcess::finished, &loop, &QEventLoop::quit);
    QObject::connect(&shell, &QProcess::errorOccurred, &loop, &QEventLoop::quit);

    MainThreadWatch watch(false);
    watch.start();
    QElapsedTimer timer;
    timer.start();
    shell.start();
    loop.exec();
    BaselineRound round;
    round.ms = double(timer.nsecsElapsed()) / 1e6;
    watch.stop();
    round.maxStallMs = watch.maxStallMs();

    if (shell.exitStatus() != QProcess::NormalExit || shell.exitCode() != 0 || shell.error() != QProcess::UnknownError)
        qFatal("sh -c '%s' failed: %s", qPrintable(script), qPrintable(shell.errorString()));
    QFile result(path);
    if (!result.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", qPrintable(path));
    const QByteArray text = result.readAll();
    if (text.count('\n') != count || !text.endsWith(QByteArray('\n' + QByteArray::number(count) + '\n')))
        qFatal("sh: expected %d lines in %s", count, qPrintable(path));
    return round;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});

    TaskRegistry registry;
    Task seq;
    seq.key = u"seq"_s;
    seq.title = u"Count lines"_s;
    seq.fields = {Field(u"count"_s, FieldType::Integer).withRequired().withMin(1)};
    seq.fn = [](RunContext &ctx) -> QJsonValue {
        const qint64 count = ctx.arg(u"count"_s).toInteger();
        Command countLines;
        countLines.argv = QStringList{u"seq"_s, u"1"_s, QString::number(count)};
        return ctx.runChecked(countLines);
    };
    QString error;
    if (!registry.add(seq, &error))
        qFatal("cannot register the task: %s", qPrintable(error));

    TaskEngine engine(&registry);

    const bool canResetPeak = bench::resetPeakRss();

    // A small warm-up starts the pool thread and loads the code; a big one would leave the
    // heap grown and hide the memory the first measured run needs.
    engineRound(engine, std::min(kWarmupLines, scale.count), canResetPeak);
    shellRound(std::min(kWarmupLines, scale.count));

    QList<double> engineMs;
    QList<double> shellMs;
    QList<double> stallMs;
    QList<double> growthMiB;
    double baselineStallMs = 0;
    for (int round = 0; round < scale.rounds; ++round) {
        const EngineRound e = engineRound(engine, scale.count, canResetPeak);
        engineMs << e.ms;
        stallMs << e.maxStallMs;
        growthMiB << e.rssGrowthMiB;
        const BaselineRound b = shellRound(scale.count);
        shellMs << b.ms;
        baselineStallMs = std::max(baselineStallMs, b.maxStallMs);
    }
    // The worst round is the honest figure for limits that must hold every time.
    const double maxStall = *std::max_element(stallMs.cbegin(), stallMs.cend());
    const double maxGrowth = *std::max_element(growthMiB.cbegin(), growthMiB.cend());
    const QString rssMethod = canResetPeak ? u"VmHWM after clear_refs"_s : u"sampled VmRSS"_s;

    bench::Result result;
    result.bench = u"loglines"_s;
    result.value = bench::median(engineMs);
    result.baseline = bench::median(shellMs);
    result.unit = u"ms"_s;
    result.extra = {
        {u"lines"_s, scale.count},
        {u"maxStallMs"_s, std::round(maxStall * 10) / 10},
        {u"maxStallTargetMs"_s, kTargetStallMs},
        {u"peakRssGrowthMiB"_s, std::round(maxGrowth * 10) / 10},
        {u"peakRssGrowthTargetMiB"_s, kTargetRssMiB},
        {u"rssMethod"_s, rssMethod},
        {u"baselineMaxStallMs"_s, std::round(baselineStallMs * 10) / 10},
        {u"rounds"_s, scale.rounds},
        {u"machine"_s, bench::machineInfo()},
    };

    const auto mark = [](bool met) { return met ? u""_s : u"  MISSED"_s; };
    bench::printLine(u"loglines: seq 1 %1 captured through the engine vs sh -c 'seq > file', median of %2 rounds"_s
                         .arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  engine ms: %1"_s.arg(bench::formatSamples(engineMs)));
    bench::printLine(u"  shell  ms: %1"_s.arg(bench::formatSamples(shellMs)));
    bench::printLine(u"  main-thread max stall ms: %1 (idle loop during the shell runs: %2)"_s
                         .arg(bench::formatSamples(stallMs), QString::number(baselineStallMs, 'f', 1)));
    bench::printLine(u"  peak RSS growth MiB: %1 (%2)"_s.arg(bench::formatSamples(growthMiB), rssMethod));
    bench::printLine(u"loglines: engine %1 ms, shell %2 ms, ratio %3; max stall %4 ms (target < %5)%6; "
                     "peak RSS growth %7 MiB (target < %8)%9"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(maxStall, 'f', 1),
                              QString::number(kTargetStallMs), mark(maxStall < kTargetStallMs),
                              QString::number(maxGrowth, 'f', 1), QString::number(kTargetRssMiB),
                              mark(maxGrowth < kTargetRssMiB)));
    bench::printJsonLine(result);
    return 0;
}
