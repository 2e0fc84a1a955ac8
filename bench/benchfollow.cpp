// SPDX-License-Identifier: MIT
// Following: one run of a million log lines followed by 100 in-process followers, against
// the same run followed by one. Every follower checks that it got every line, in order.

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QSemaphore>

#include "benchsupport.h"
#include "runcontext.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kLines = 1000000;
constexpr int kRounds = 3;
constexpr int kManyFollowers = 100;
constexpr double kTarget = 3;

// The task waits here until every follower is attached, so all of them follow from seq 1.
QSemaphore g_go;

/*! One follower: counts the lines and checks each one's seq follows the previous one's. */
struct Follower
{
    explicit Follower(Following f)
        : following(std::move(f))
    {
        next = 1; // followed from the start: after = 0
        QObject::connect(following.handle.get(), &RunHandle::events, following.handle.get(),
                         [this](const RunEvents &events) {
            for (const RunEvent &event : events) {
                if (event.type == RunEvent::Type::Log) {
                    for (const LogLine &line : event.lines) {
                        inOrder = inOrder && line.seq == next;
                        next = line.seq + 1;
                    }
                    lines += event.lines.size();
                } else {
                    inOrder = inOrder && event.seq == next;
                    next = event.seq + 1;
                    done = done || event.type == RunEvent::Type::Finished;
                }
            }
        });
    }

    Following following;
    qint64 next = 0;
    qint64 lines = 0;
    bool inOrder = true;
    bool done = false;
};

/*! Runs the million-line task once with \a followers followers; milliseconds until all finished. */
double followRound(TaskEngine &engine, int followers, int lines)
{
    QElapsedTimer clock;
    clock.start();
    const StartResult started = engine.start(u"million"_s, {{u"lines"_s, lines}});
    if (!started.ok())
        qFatal("cannot start: %s", qPrintable(started.error.message));
    std::vector<std::unique_ptr<Follower>> all;
    for (int i = 0; i < followers; ++i) {
        all.push_back(std::make_unique<Follower>(engine.follow(started.runId, {.after = 0})));
        if (!all.back()->following.handle || all.back()->following.missingTo != 0)
            qFatal("cannot follow the run from its start");
    }
    g_go.release();
    QEventLoop loop;
    const auto allDone = [&all] {
        return std::all_of(all.cbegin(), all.cend(), [](const auto &f) { return f->done; });
    };
    while (!allDone())
        loop.processEvents(QEventLoop::WaitForMoreEvents);
    const double ms = double(clock.nsecsElapsed()) / 1e6;
    for (const auto &f : all) {
        if (!f->inOrder || f->lines != lines)
            qFatal("a follower got %lld of %d lines%s", f->lines, lines, f->inOrder ? "" : ", out of order");
    }
    return ms;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});

    TaskRegistry registry;
    Task task;
    task.key = u"million"_s;
    task.title = u"A million lines"_s;
    task.fields = {Field(u"lines"_s, FieldType::Integer)};
    task.fn = [](RunContext &ctx) -> QJsonValue {
        const int lines = ctx.arg(u"lines"_s).toInt();
        g_go.acquire();
        for (int i = 1; i <= lines; ++i)
            ctx.log(QString::number(i));
        return lines;
    };
    registry.add(task);
    TaskEngine engine(&registry);

    followRound(engine, 1, 1000); // warm-up
    QList<double> one;
    QList<double> many;
    for (int round = 0; round < scale.rounds; ++round) {
        one << followRound(engine, 1, scale.count);
        many << followRound(engine, kManyFollowers, scale.count);
    }
    bench::reportFanout(u"follow"_s, u"followers"_s, kManyFollowers, one, many,
                        {{u"target"_s, kTarget}, {u"lines"_s, scale.count}});
    return 0;
}
