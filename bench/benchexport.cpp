// SPDX-License-Identifier: MIT
// Exporting a long log: 1,000,000 lines through the run export (JSON and CSV) into a file,
// against the same lines written to a plain file, and against encoding each line through a
// QJsonDocument of its own (how the export encoded lines before LogLineEncoder).

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QTemporaryDir>

#include "benchsupport.h"
#include "runexport.h"

#include <algorithm>
#include <cmath>
#include <functional>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kLines = 1000000;
constexpr int kRounds = 3;
constexpr qsizetype kPageLines = 1000; // what the CLI reads from the store at a time

LogLines makeLines(int count)
{
    LogLines lines;
    lines.reserve(count);
    const qint64 t0 = QDateTime::currentMSecsSinceEpoch();
    for (int n = 1; n <= count; ++n) {
        // About a thousand lines a second, as a busy command prints them.
        lines.append(LogLine{n, t0 + n, n % 50 == 0 ? LogStream::Err : LogStream::Out,
                             u"line %1 of the output: processed item %2"_s.arg(n).arg(n * 7)});
    }
    return lines;
}

// Pages copied out of \a lines, as the store hands out pages it read.
LogPageReader pagesOf(const LogLines &lines)
{
    return [&lines](qint64 fromLine) {
        const qsizetype from = qsizetype(fromLine - 1);
        if (from < 0 || from >= lines.size())
            return LogLines();
        return lines.mid(from, kPageLines);
    };
}

// Milliseconds \a write takes to fill the file at \a path, closing included.
double timedToFile(const QString &path, const std::function<void(QFile &)> &write)
{
    QElapsedTimer timer;
    timer.start();
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        qFatal("cannot write %s", qPrintable(path));
    write(file);
    file.close();
    return double(timer.nsecsElapsed()) / 1e6;
}

double plainFile(const QString &path, const LogLines &lines)
{
    return timedToFile(path, [&lines](QFile &file) {
        for (const LogLine &line : lines) {
            file.write(QByteArray::number(line.number) + '\t' + QByteArray::number(line.timeMs) + '\t'
                       + logStreamName(line.stream).toUtf8() + '\t' + line.text.toUtf8() + '\n');
        }
    });
}

double exported(const QString &path, const LogLines &lines, bool csv)
{
    return timedToFile(path, [&lines, csv](QFile &file) {
        QString error;
        const bool ok = csv ? writeLogCsv(&file, pagesOf(lines), &error)
                            : writeRunJson(&file, QJsonObject{{u"id"_s, u"bench"_s}}, pagesOf(lines), &error);
        if (!ok)
            qFatal("export failed: %s", qPrintable(error));
    });
}

double documentPerLine(const QString &path, const LogLines &lines)
{
    return timedToFile(path, [&lines](QFile &file) {
        for (const LogLine &line : lines)
            file.write(QJsonDocument(line.toJson()).toJson(QJsonDocument::Compact) + ",\n");
    });
}

void checkEndsWith(const QString &path, const QByteArray &tail)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly) || file.size() < tail.size())
        qFatal("%s is missing or short", qPrintable(path));
    file.seek(std::max<qint64>(0, file.size() - 200));
    if (!file.readAll().contains(tail))
        qFatal("%s does not end with the last line", qPrintable(path));
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kLines, kRounds});
    const LogLines lines = makeLines(scale.count);
    const QByteArray lastText = u"line %1 of the output"_s.arg(scale.count).toUtf8();

    QList<double> plain;
    QList<double> json;
    QList<double> csv;
    QList<double> perLine;
    for (int r = 0; r < scale.rounds; ++r) {
        QTemporaryDir dir;
        plain << plainFile(dir.filePath(u"log.txt"_s), lines);
        json << exported(dir.filePath(u"run.json"_s), lines, false);
        checkEndsWith(dir.filePath(u"run.json"_s), lastText);
        csv << exported(dir.filePath(u"log.csv"_s), lines, true);
        checkEndsWith(dir.filePath(u"log.csv"_s), lastText);
        perLine << documentPerLine(dir.filePath(u"lines.json"_s), lines);
    }

    bench::Result result;
    result.bench = u"export"_s;
    result.value = bench::median(json);
    result.baseline = bench::median(plain);
    result.unit = u"ms"_s;
    const double csvMs = bench::median(csv);
    const double perLineMs = bench::median(perLine);
    result.extra = {
        {u"csvMs"_s, std::round(csvMs * 10) / 10},
        {u"documentPerLineMs"_s, std::round(perLineMs * 10) / 10},
        {u"lines"_s, scale.count},
        {u"rounds"_s, scale.rounds},
        {u"machine"_s, bench::machineInfo()},
    };
    bench::printLine(u"export: %1 lines, median of %2 rounds"_s.arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  JSON export ms:         %1"_s.arg(bench::formatSamples(json)));
    bench::printLine(u"  CSV export ms:          %1"_s.arg(bench::formatSamples(csv)));
    bench::printLine(u"  QJsonDocument per line: %1"_s.arg(bench::formatSamples(perLine)));
    bench::printLine(u"  plain file ms:          %1"_s.arg(bench::formatSamples(plain)));
    bench::printLine(u"export: JSON %1 ms, CSV %2 ms, a QJsonDocument per line %3 ms, plain file %4 ms; "
                     u"JSON/plain %5, CSV/plain %6"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(csvMs, 'f', 1),
                              QString::number(perLineMs, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2),
                              QString::number(csvMs / result.baseline, 'f', 2)));
    bench::printJsonLine(result);
    return 0;
}
