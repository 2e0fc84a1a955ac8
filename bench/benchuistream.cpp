// SPDX-License-Identifier: MIT
// The desktop log pane live: a run of a million log lines (some coloured) followed by a
// visible LogView, against the same run followed by a RunHandle with no view. Measures the
// time until the view holds the last line, the longest event-loop stall while the lines pour
// in (a 1 ms timer's longest gap), and the peak memory growth.

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QPlainTextEdit>
#include <QSemaphore>
#include <QTextBlock>
#include <QTextDocument>
#include <QTimer>

#include <cmath>

#include "benchsupport.h"
#include "logview.h"
#include "runcontext.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kLines = 1000000;
constexpr int kRounds = 3;
constexpr double kTargetRatio = 1.5;
constexpr double kTargetStallMs = 50;
constexpr double kTargetRssMiB = 150;

// The task waits here until its follower is attached, so it is followed from seq 1.
QSemaphore g_go;

QString lastLineText(int lines)
{
    return u"done: %1 lines"_s.arg(lines);
}

/*! The longest gap between the ticks of a 1 ms timer: how long the event loop was away. */
class StallMeter final
{
public:
    StallMeter()
    {
        m_timer.setInterval(1);
        m_timer.setTimerType(Qt::PreciseTimer);
        QObject::connect(&m_timer, &QTimer::timeout, [this] {
            const qint64 now = m_clock.nsecsElapsed();
            m_maxGapNs = std::max(m_maxGapNs, now - m_last);
            m_last = now;
        });
    }
    void start()
    {
        m_maxGapNs = 0;
        m_clock.start();
        m_last = 0;
        m_timer.start();
    }
    double stopMs()
    {
        m_timer.stop();
        return double(m_maxGapNs) / 1e6;
    }

private:
    QTimer m_timer;
    QElapsedTimer m_clock;
    qint64 m_last = 0;
    qint64 m_maxGapNs = 0;
};

struct Round
{
    double ms = 0;        //!< until the view holds the last line (or the run ended, without one)
    double settledMs = 0; //!< until every line the view holds is laid out
    double maxStallMs = 0;
    double rssGrowthMiB = 0;
};

/*!
 * One run of \a lines lines followed from its start; with \a view, every batch goes to the
 * view and the round ends when the view holds the last line, otherwise when the run ends.
 */
Round followRound(TaskEngine &engine, int lines, ui::LogView *view)
{
    if (view)
        view->clear();
    QCoreApplication::processEvents();
    const qint64 rssBefore = bench::procStatusKiB("VmRSS").value_or(0);
    bench::resetPeakRss();
    StallMeter stalls;

    QElapsedTimer clock;
    clock.start();
    stalls.start();
    const StartResult started = engine.start(u"million"_s, {{u"lines"_s, lines}});
    if (!started.ok())
        qFatal("cannot start: %s", qPrintable(started.error.message));
    Following following = engine.follow(started.runId, {.after = 0});
    if (!following.handle || following.missingTo != 0)
        qFatal("cannot follow the run from its start");
    qint64 received = 0;
    bool finished = false;
    QObject::connect(following.handle.get(), &RunHandle::log, following.handle.get(),
                     [&received, view](const LogLines &batch) {
        received += batch.size();
        if (view)
            view->appendLines(batch);
    });
    QObject::connect(following.handle.get(), &RunHandle::finished, following.handle.get(),
                     [&finished] { finished = true; });
    QObject::connect(following.handle.get(), &RunHandle::fellBehind, following.handle.get(),
                     [](qint64 seq) { qFatal("the follower fell behind at seq %lld", seq); });
    g_go.release();

    const QString last = lastLineText(lines);
    const auto holdsLast = [&] {
        return finished && (!view || view->textEdit()->document()->lastBlock().text() == last);
    };
    QEventLoop loop;
    while (!holdsLast())
        loop.processEvents(QEventLoop::WaitForMoreEvents);
    Round round;
    round.ms = double(clock.nsecsElapsed()) / 1e6;
    // The view shows the newest lines first and fills in the older ones above them after.
    while (view && view->pendingLineCount() > 0)
        loop.processEvents(QEventLoop::WaitForMoreEvents);
    round.settledMs = double(clock.nsecsElapsed()) / 1e6;
    round.maxStallMs = stalls.stopMs();
    round.rssGrowthMiB = double(bench::procStatusKiB("VmHWM").value_or(0) - rssBefore) / 1024.0;
    if (received != lines + 1)
        qFatal("the follower got %lld of %d lines", received, lines + 1);
    if (view && view->lineCount() != lines + 1)
        qFatal("the view got %lld of %d lines", view->lineCount(), lines + 1);
    return round;
}

} // namespace

int main(int argc, char *argv[])
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});

    TaskRegistry registry;
    Task task;
    task.key = u"million"_s;
    task.title = u"A million lines"_s;
    task.fields = {Field(u"lines"_s, FieldType::Integer)};
    task.fn = [](RunContext &ctx) -> QJsonValue {
        const int lines = ctx.arg(u"lines"_s).toInt();
        g_go.acquire();
        for (int i = 1; i <= lines; ++i) {
            if (i % 50 == 0)
                ctx.log(LogStream::Err, u"\x1b[1;33mwarning:\x1b[0m item %1 took \x1b[31m%2 ms\x1b[0m"_s.arg(i).arg(i % 997));
            else
                ctx.log(u"item %1: processed in %2 ms, status ok"_s.arg(i).arg(i % 89));
        }
        ctx.log(lastLineText(lines));
        return lines;
    };
    registry.add(task);
    TaskEngine engine(&registry);

    ui::LogView view;
    view.resize(1000, 700);
    view.show();
    QCoreApplication::processEvents();

    followRound(engine, 1000, nullptr); // warm-up
    followRound(engine, 1000, &view);
    QList<double> bare;
    QList<double> viewed;
    QList<double> settled;
    QList<double> bareStalls;
    double maxStallMs = 0;
    double rssGrowthMiB = 0;
    for (int round = 0; round < scale.rounds; ++round) {
        const Round b = followRound(engine, scale.count, nullptr);
        bare << b.ms;
        bareStalls << b.maxStallMs;
        const Round v = followRound(engine, scale.count, &view);
        viewed << v.ms;
        settled << v.settledMs;
        maxStallMs = std::max(maxStallMs, v.maxStallMs);
        rssGrowthMiB = std::max(rssGrowthMiB, v.rssGrowthMiB);
        bench::printLine(u"round %1: no view %2 ms, view %3 ms (all %4 ms), longest stall %5 ms, peak RSS +%6 MiB"_s
                             .arg(round + 1).arg(b.ms, 0, 'f', 1).arg(v.ms, 0, 'f', 1).arg(v.settledMs, 0, 'f', 1)
                             .arg(v.maxStallMs, 0, 'f', 1).arg(v.rssGrowthMiB, 0, 'f', 1));
    }
    bench::printLine(u"no view: %1 ms (median of %2)"_s.arg(bench::formatSamples(bare)).arg(bare.size()));
    bench::printLine(u"view:    %1 ms to the last line, %2 ms to every held line"_s
                         .arg(bench::formatSamples(viewed), bench::formatSamples(settled)));

    bench::Result result;
    result.bench = u"uistream"_s;
    result.value = bench::median(viewed);
    result.baseline = bench::median(bare);
    result.unit = u"ms"_s;
    result.extra = {{u"target"_s, kTargetRatio},
                    {u"settledMs"_s, std::round(bench::median(settled) * 10) / 10},
                    {u"maxStallMs"_s, std::round(maxStallMs * 10) / 10},
                    {u"targetStallMs"_s, kTargetStallMs},
                    {u"baselineMaxStallMs"_s, std::round(bench::median(bareStalls) * 10) / 10},
                    {u"rssGrowthMiB"_s, std::round(rssGrowthMiB * 10) / 10},
                    {u"targetRssMiB"_s, kTargetRssMiB},
                    {u"lines"_s, scale.count},
                    {u"maximumLines"_s, view.maximumLines()},
                    {u"machine"_s, bench::machineInfo()}};
    bench::printJsonLine(result);
    return 0;
}
