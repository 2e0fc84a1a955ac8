// SPDX-License-Identifier: MIT
// Persisting a long log: 1,000,000 lines handed to the SQLite run store one at a time (as the
// engine hands them over) until committed, against the same lines written to a plain file.

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>

#include "benchsupport.h"
#include "sqliterunstore.h"

#include <cmath>

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

double toStore(SqliteRunStore &store, const QString &runId, int count)
{
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
    if (!store.flush(10min))
        qFatal("the store did not commit in time");
    return double(timer.nsecsElapsed()) / 1e6;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});

    QList<double> store;
    QList<double> file;
    for (int r = 0; r < scale.rounds; ++r) {
        QTemporaryDir dir;
        file << toFile(dir.filePath(u"log.txt"_s), scale.count);

        QString error;
        auto s = SqliteRunStore::open(dir.filePath(u"data"_s), &error);
        if (!s)
            qFatal("cannot open the store: %s", qPrintable(error));
        Run run;
        run.id = u"bench-run-%1"_s.arg(r);
        run.task = u"bench"_s;
        run.queuedAt = QDateTime::currentDateTimeUtc();
        s->recordQueued(run);
        store << toStore(*s, run.id, scale.count);
        // Check it is all there, at both ends and in the middle.
        for (qint64 at : {qint64(1), qint64(scale.count / 2), qint64(scale.count)}) {
            const LogLines back = s->readLog(run.id, at, 1);
            if (back.size() != 1 || back.first().text != lineText(int(at)))
                qFatal("line %lld did not come back", at);
        }
    }

    bench::Result result;
    result.bench = u"logstore"_s;
    result.value = bench::median(store);
    result.baseline = bench::median(file);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"lines"_s, scale.count},
        {u"rounds"_s, scale.rounds},
        {u"machine"_s, bench::machineInfo()},
    };
    bench::printLine(u"logstore: %1 lines, median of %2 rounds"_s.arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  store wall ms: %1"_s.arg(bench::formatSamples(store)));
    bench::printLine(u"  file  wall ms: %1"_s.arg(bench::formatSamples(file)));
    bench::printLine(u"logstore: store %1 ms, plain file %2 ms, ratio %3 (target <= %4)%5"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
