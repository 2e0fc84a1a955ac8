// SPDX-License-Identifier: MIT
// A Taskdeck process for tst_recovery to kill. It records runs into the history in the given
// data directory and says on stdout what the history holds for certain:
//   owner <pid@host#start>
//   finished <run id> <log lines>     a quick run finished (and is durable)
//   running <run id> <lines stored>   a long run is running; at least that many lines are stored
//   queued <run id>                   a run waits in the queue (and is stored as queued)
//   ready                             everything above is said; now it waits to be killed
// Usage: recoverychild <data dir> <quick runs> <long runs> <queued runs>
//    or: recoverychild command <data dir> <marker>
//        runs `sh -c 'sleep 100 & sleep 100 & wait'` with TASKDECK_TEST_MARKER=<marker> in its
//        environment, says "ready" once the run has started, and waits to be killed.
#include "runcontext.h"
#include "taskengine.h"
#include "runowner.h"
#include "sqliterunstore.h"

#include <QCoreApplication>
#include <QSet>
#include <QTimer>

#include <cstdio>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

void say(const QString &line)
{
    const QByteArray bytes = (line + u'\n').toUtf8();
    std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stdout);
    std::fflush(stdout);
}

constexpr int kQuickLines = 300;
constexpr int kLinesBeforeReport = 20;

int runCommandMode(QCoreApplication &app, const QString &dataDir, const QString &marker)
{
    QString error;
    const std::unique_ptr<SqliteRunStore> store = SqliteRunStore::open(dataDir, &error);
    if (!store) {
        std::fprintf(stderr, "%s\n", error.toLocal8Bit().constData());
        return 3;
    }
    TaskRegistry registry;
    Task shell;
    shell.key = u"shell"_s;
    shell.fn = [marker](RunContext &ctx) -> QJsonValue {
        Command cmd;
        cmd.argv = QStringList{u"sh"_s, u"-c"_s, u"sleep 100 & sleep 100 & wait"_s};
        cmd.env.insert(u"TASKDECK_TEST_MARKER"_s, marker);
        ctx.run(cmd);
        return {};
    };
    if (!registry.add(shell, &error)) {
        std::fprintf(stderr, "%s\n", error.toLocal8Bit().constData());
        return 4;
    }
    TaskEngine engine(&registry);
    engine.setRecorder(store.get());
    const QString id = engine.start(u"shell"_s, {}).runId;
    QTimer poll;
    poll.setInterval(20);
    QObject::connect(&poll, &QTimer::timeout, &app, [&] {
        if (engine.status(id) != RunStatus::Running)
            return;
        poll.stop();
        say(u"ready"_s);
    });
    poll.start();
    return app.exec();
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() == 4 && args.at(1) == u"command"_s)
        return runCommandMode(app, args.at(2), args.at(3));
    if (args.size() != 5) {
        std::fputs("usage: recoverychild <data dir> <quick runs> <long runs> <queued runs>\n", stderr);
        return 2;
    }
    const QString dataDir = args.at(1);
    const int quickRuns = args.at(2).toInt();
    const int longRuns = args.at(3).toInt();
    const int queuedRuns = args.at(4).toInt();

    QString error;
    const std::unique_ptr<SqliteRunStore> store = SqliteRunStore::open(dataDir, &error);
    if (!store) {
        std::fprintf(stderr, "%s\n", error.toLocal8Bit().constData());
        return 3;
    }

    TaskRegistry registry;
    Task quick;
    quick.key = u"quick"_s;
    quick.fn = [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= kQuickLines; ++i)
            ctx.log(u"quick %1"_s.arg(i));
        return QJsonObject{{u"lines"_s, kQuickLines}};
    };
    Task ticking;
    ticking.key = u"long"_s;
    // Only the long runs asked for run at once; the rest wait in the queue.
    ticking.maxConcurrent = std::max(1, longRuns);
    ticking.fn = [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; !ctx.isCanceled(); ++i) {
            ctx.log(u"tick %1"_s.arg(i));
            ctx.sleep(2ms);
        }
        return {};
    };
    if (!registry.add(quick, &error) || !registry.add(ticking, &error)) {
        std::fprintf(stderr, "%s\n", error.toLocal8Bit().constData());
        return 4;
    }

    EngineConfig config;
    config.maxConcurrent = quickRuns + longRuns + queuedRuns + 1;
    TaskEngine engine(&registry, config);
    engine.setRecorder(store.get());
    say(u"owner "_s + RunOwner::current());

    QSet<QString> quickIds;
    int quickFinished = 0;
    QStringList longIds;
    QStringList queuedIds;
    QSet<QString> reported;
    QTimer poll;
    poll.setInterval(20);

    auto startLong = [&] {
        for (int i = 0; i < longRuns; ++i)
            longIds << engine.start(u"long"_s, {}).runId;
        for (int i = 0; i < queuedRuns; ++i)
            queuedIds << engine.start(u"long"_s, {}).runId;
        poll.start();
    };
    QObject::connect(&poll, &QTimer::timeout, &app, [&] {
        for (const QString &id : std::as_const(longIds)) {
            if (reported.contains(id))
                continue;
            const std::optional<Run> run = engine.snapshot(id);
            if (!run || run->logLines < kLinesBeforeReport)
                continue;
            // The line with the highest number may still be on its way to the store; every
            // line before it was handed over already, so the flush covers it.
            const qint64 handedOver = run->logLines - 1;
            if (!store->flush(60s))
                continue;
            say(u"running %1 %2"_s.arg(id).arg(handedOver));
            reported.insert(id);
        }
        if (reported.size() < longIds.size())
            return;
        poll.stop();
        for (const QString &id : std::as_const(queuedIds)) {
            if (engine.status(id) == RunStatus::Queued && store->flush(60s))
                say(u"queued "_s + id);
        }
        say(u"ready"_s);
    });
    QObject::connect(&engine, &TaskEngine::runFinished, &app, [&](const Run &run) {
        if (!quickIds.contains(run.id))
            return;
        say(u"finished %1 %2"_s.arg(run.id).arg(run.logLines));
        if (++quickFinished == quickRuns)
            startLong();
    });
    for (int i = 0; i < quickRuns; ++i)
        quickIds.insert(engine.start(u"quick"_s, {}).runId);
    if (quickRuns == 0)
        QTimer::singleShot(0, &app, startLong);
    return app.exec();
}
