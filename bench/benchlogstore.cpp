// SPDX-License-Identifier: MIT
// Persisting a long log: 1,000,000 lines handed to the SQLite run store one at a time (as the
// engine hands them over) until committed, against the same lines written to a plain file.
// Also reported: how long handing them over took, closing the store (with the WAL checkpoint
// it leaves to idle time) and opening the history again (its quick_check reads the file).

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>

#include "benchsupport.h"
#include "sqliterunstore.h"

#include <cmath>
#include <memory>
#include <optional>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

constexpr int kLines = 1000000;
constexpr int kRounds = 3;
constexpr double kTargetRatio = 3.0;

QString lineText(int n)
{
    // seq-like output with some width, as a build or a copy job prints.
    return u"line %1 of the output: processed item %2"_s.arg(n).arg(n * 7);
}

double toFile(const QString &path, int count)
{
    QElapsedTimer timer;
    timer.start();
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        qFatal("cannot write %s", qPrintable(path));
    const qint64 t0 = QDateTime::currentMSecsSinceEpoch();
    for (int n = 1; n <= count; ++n) {
        // The same content the store keeps: number, time, stream and text.
        const QByteArray row = QByteArray::number(n) + '\t' + QByteArray::number(t0) + "\tout\t"
                               + lineText(n).toUtf8() + '\n';
        file.write(row);
    }
    file.close();
    return double(timer.nsecsElapsed()) / 1e6;
}

struct StoreTimes
{
    double handOverMs = 0; //!< until the last recordLog() returned
    double committedMs = 0; //!< until flush() said all of it is committed
};

StoreTimes toStore(SqliteRunStore &store, const QString &runId, int count)
{
    StoreTimes times;
    QElapsedTimer timer;
    timer.start();
    const qint64 t0 = QDateTime::currentMSecsSinceEpoch();
    for (int n = 1; n <= count; ++n) {
        LogLine line;
        line.number = n;
        line.timeMs = t0;
        line.stream = LogStream::Out;
        line.text = lineText(n);
        store.recordLog(runId, LogLines{line});
    }
    times.handOverMs = double(timer.nsecsElapsed()) / 1e6;
    if (!store.flush(10min))
        qFatal("the store did not commit in time");
    times.committedMs = double(timer.nsecsElapsed()) / 1e6;
    return times;
}

std::unique_ptr<SqliteRunStore> openStore(const QString &dataDir)
{
    QString error;
    auto store = SqliteRunStore::open(dataDir, &error);
    if (!store)
        qFatal("cannot open the store: %s", qPrintable(error));
    return store;
}

// It is all there, at both ends and in the middle, and the run counts every line.
void checkStored(SqliteRunStore &store, const QString &runId, int count)
{
    for (qint64 at : {qint64(1), qint64(count / 2), qint64(count)}) {
        const LogLines back = store.readLog(runId, at, 1);
        if (back.size() != 1 || back.first().number != at || back.first().text != lineText(int(at)))
            qFatal("line %lld did not come back", at);
    }
    const std::optional<Run> run = store.findRun(runId);
    if (!run || run->logLines != count)
        qFatal("the run counts %lld lines, not %d", run ? qint64(run->logLines) : -1LL, count);
    const LogLines tail = store.readLog(runId, qMax(1, count - 1));
    if (tail.size() != qMin(2, count) || tail.last().text != lineText(count))
        qFatal("the log does not end with line %d", count);
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});

    QList<double> store;
    QList<double> file;
    QList<double> handOver;
    QList<double> close;
    QList<double> reopen;
    qint64 historyKiB = 0;
    for (int r = 0; r < scale.rounds; ++r) {
        QTemporaryDir dir;
        file << toFile(dir.filePath(u"log.txt"_s), scale.count);

        const QString dataDir = dir.filePath(u"data"_s);
        auto s = openStore(dataDir);
        Run run;
        run.id = u"bench-run-%1"_s.arg(r);
        run.task = u"bench"_s;
        run.status = RunStatus::Running;
        run.attempt = 1;
        run.queuedAt = QDateTime::currentDateTimeUtc();
        run.startedAt = run.queuedAt;
        s->recordStarted(run);
        const StoreTimes times = toStore(*s, run.id, scale.count);
        store << times.committedMs;
        handOver << times.handOverMs;

        // Checked only after reopening: a query before would open this thread's read
        // connection, which keeps the WAL from being checkpointed when the store closes.
        QElapsedTimer timer;
        timer.start();
        s.reset();
        close << double(timer.nsecsElapsed()) / 1e6;
        timer.restart();
        s = openStore(dataDir);
        reopen << double(timer.nsecsElapsed()) / 1e6;
        historyKiB = QFileInfo(s->location()).size() / 1024;
        // What was committed is what a later process finds.
        checkStored(*s, run.id, scale.count);
        s.reset();
    }

    bench::Result result;
    result.bench = u"logstore"_s;
    result.value = bench::median(store);
    result.baseline = bench::median(file);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"lines"_s, scale.count},
        {u"handOverMs"_s, bench::median(handOver)},
        {u"closeMs"_s, bench::median(close)},
        {u"reopenMs"_s, bench::median(reopen)},
        {u"historyKiB"_s, historyKiB},
        {u"rounds"_s, scale.rounds},
        {u"machine"_s, bench::machineInfo()},
    };
    bench::printLine(u"logstore: %1 lines, median of %2 rounds"_s.arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  store wall ms: %1"_s.arg(bench::formatSamples(store)));
    bench::printLine(u"  file  wall ms: %1"_s.arg(bench::formatSamples(file)));
    bench::printLine(u"  handing the lines over ms: %1"_s.arg(bench::formatSamples(handOver)));
    bench::printLine(u"  closing (with the WAL checkpoint) ms: %1"_s.arg(bench::formatSamples(close)));
    bench::printLine(u"  reopening the %1 KiB history ms: %2"_s.arg(historyKiB).arg(bench::formatSamples(reopen)));
    bench::printLine(u"logstore: store %1 ms, plain file %2 ms, ratio %3 (target <= %4)%5"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
