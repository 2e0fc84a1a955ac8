// SPDX-License-Identifier: MIT
#include "benchsupport.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QStringList>
#include <QThread>

using namespace Qt::StringLiterals;

#ifndef TASKDECK_BENCH_BUILD_TYPE
#define TASKDECK_BENCH_BUILD_TYPE "unknown"
#endif

namespace taskdeck::bench {

namespace {

QString firstCpuInfo(const QByteArray &key)
{
    // Files in /proc report a size of 0, so read them whole instead of testing atEnd().
    QFile file(u"/proc/cpuinfo"_s);
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return {};
    const QList<QByteArray> lines = file.readAll().split('\n');
    for (const QByteArray &line : lines) {
        if (!line.startsWith(key))
            continue;
        const qsizetype colon = line.indexOf(':');
        if (colon >= 0)
            return QString::fromUtf8(line.mid(colon + 1).trimmed());
    }
    return {};
}

std::optional<qint64> memInfoKiB(const QByteArray &key)
{
    QFile file(u"/proc/meminfo"_s);
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return std::nullopt;
    const QList<QByteArray> lines = file.readAll().split('\n');
    for (const QByteArray &line : lines) {
        if (line.startsWith(QByteArray(key + ':'))) {
            bool ok = false;
            const qint64 kib = line.mid(key.size() + 1).trimmed().split(' ').value(0).toLongLong(&ok);
            if (ok)
                return kib;
        }
    }
    return std::nullopt;
}

QString scalarJson(const QJsonValue &value)
{
    // QJsonDocument only serializes containers; wrap the value and drop the brackets.
    QByteArray text = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(text.mid(1, text.size() - 2));
}

double rounded(double value)
{
    return std::round(value * 1000.0) / 1000.0;
}

} // namespace

Scale scaleFromArguments(const QStringList &arguments, Scale defaults)
{
    Scale scale = defaults;
    for (const QString &argument : arguments.mid(1)) {
        const qsizetype eq = argument.indexOf(u'=');
        const QString name = argument.left(eq);
        bool ok = false;
        const int value = eq > 0 ? argument.mid(eq + 1).toInt(&ok) : 0;
        if (ok && value > 0 && name == u"--count"_s) {
            scale.count = value;
        } else if (ok && value > 0 && name == u"--rounds"_s) {
            scale.rounds = value;
        } else {
            std::fprintf(stderr, "unknown or invalid argument: %s\nusage: %s [--count=N] [--rounds=N]\n",
                         qPrintable(argument), qPrintable(arguments.value(0)));
            std::exit(2);
        }
    }
    return scale;
}

double median(QList<double> samples)
{
    if (samples.isEmpty())
        return 0;
    std::sort(samples.begin(), samples.end());
    const qsizetype mid = samples.size() / 2;
    return samples.size() % 2 ? samples.at(mid) : (samples.at(mid - 1) + samples.at(mid)) / 2.0;
}

QString formatSamples(const QList<double> &samples)
{
    QStringList parts;
    for (double s : samples)
        parts << QString::number(s, 'f', 1);
    return parts.join(u", "_s);
}

std::optional<qint64> procStatusKiB(const char *key)
{
    // Read with plain stdio: this runs every millisecond in the stall timer, and QFile would
    // allocate far more than the figure it reports.
    std::FILE *file = std::fopen("/proc/self/status", "r");
    if (!file)
        return std::nullopt;
    const qsizetype keyLength = qsizetype(std::strlen(key));
    char line[256];
    std::optional<qint64> answer;
    while (std::fgets(line, sizeof line, file)) {
        if (std::strncmp(line, key, size_t(keyLength)) == 0 && line[keyLength] == ':') {
            answer = std::strtoll(line + keyLength + 1, nullptr, 10);
            break;
        }
    }
    std::fclose(file);
    return answer;
}

double processCpuMs()
{
    timespec ts{};
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

bool resetPeakRss()
{
    std::FILE *file = std::fopen("/proc/self/clear_refs", "w");
    if (!file)
        return false;
    const bool written = std::fputs("5", file) >= 0;
    // The kernel acts on the write, which stdio may defer to fclose: both must succeed.
    const bool closed = std::fclose(file) == 0;
    return written && closed;
}

QJsonObject machineInfo()
{
    QJsonObject info;
    info.insert(u"cpus"_s, QThread::idealThreadCount());
    info.insert(u"cpu"_s, firstCpuInfo("model name"));
    if (const auto kib = memInfoKiB("MemTotal"))
        info.insert(u"ramMiB"_s, double(*kib / 1024));
    info.insert(u"qt"_s, QString::fromLatin1(qVersion()));
    info.insert(u"build"_s, QString::fromLatin1(TASKDECK_BENCH_BUILD_TYPE));
    return info;
}

void printJsonLine(const Result &result)
{
    QList<QPair<QString, QJsonValue>> pairs{
        {u"bench"_s, result.bench},
        {u"value"_s, rounded(result.value)},
        {u"baseline"_s, rounded(result.baseline)},
        {u"ratio"_s, rounded(result.ratio())},
        {u"unit"_s, result.unit},
    };
    pairs += result.extra;
    QStringList members;
    for (const auto &[key, value] : std::as_const(pairs))
        members << scalarJson(key) + u':' + scalarJson(value);
    printLine(u'{' + members.join(u',') + u'}');
}

void printLine(const QString &line)
{
    std::fputs(line.toUtf8().constData(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

qint64 sumUpTo(int count)
{
    return qint64(count) * (count + 1) / 2;
}

double xargsEchoRound(int count, int concurrency, const QString &outputPath)
{
    QByteArray input;
    for (int n = 1; n <= count; ++n)
        input += QByteArray::number(n) + '\n';
    QProcess xargs;
    xargs.setProgram(u"xargs"_s);
    xargs.setArguments({u"-P"_s, QString::number(concurrency), u"-n1"_s, u"/bin/echo"_s});
    xargs.setStandardOutputFile(outputPath, QIODevice::Truncate);
    xargs.setProcessChannelMode(QProcess::ForwardedErrorChannel);

    QElapsedTimer timer;
    timer.start();
    xargs.start();
    if (!xargs.waitForStarted())
        qFatal("cannot start xargs: %s", qPrintable(xargs.errorString()));
    xargs.write(input);
    xargs.closeWriteChannel();
    if (!xargs.waitForFinished(-1))
        qFatal("xargs did not finish: %s", qPrintable(xargs.errorString()));
    const double ms = double(timer.nsecsElapsed()) / 1e6;

    if (xargs.exitStatus() != QProcess::NormalExit || xargs.exitCode() != 0)
        qFatal("xargs failed with exit code %d", xargs.exitCode());
    QFile result(outputPath);
    if (!result.open(QIODevice::ReadOnly))
        qFatal("cannot read the xargs output");
    qint64 lines = 0;
    qint64 sum = 0;
    while (!result.atEnd()) {
        sum += result.readLine().trimmed().toLongLong();
        ++lines;
    }
    if (lines != count || sum != sumUpTo(count))
        qFatal("xargs: expected %d lines summing to %lld, got %lld summing to %lld",
               count, sumUpTo(count), lines, sum);
    return ms;
}

QString takeTaskdeckProgram(QStringList &arguments)
{
    QString program = QDir(QCoreApplication::applicationDirPath()).filePath(u"../app/taskdeck"_s);
    if (arguments.size() > 1 && !arguments.at(1).startsWith(u"--"_s))
        program = arguments.takeAt(1);
    program = QFileInfo(program).absoluteFilePath();
    if (!QFileInfo(program).isExecutable())
        qFatal("no taskdeck program at %s (give its path as the first argument)", qPrintable(program));
    return program;
}

void reportFanout(const QString &bench, const QString &who, int many, const QList<double> &oneSamples,
                  const QList<double> &manySamples, QList<QPair<QString, QJsonValue>> extra)
{
    const QString manyLabel = u"%1 %2:"_s.arg(many).arg(who);
    const QString oneLabel = u"1 %1:"_s.arg(who.endsWith(u's') ? who.chopped(1) : who)
                                 .leftJustified(manyLabel.size());
    printLine(u"%1 %2 ms (median of %3)"_s.arg(oneLabel, formatSamples(oneSamples)).arg(oneSamples.size()));
    printLine(u"%1 %2 ms"_s.arg(manyLabel, formatSamples(manySamples)));
    Result result;
    result.bench = bench;
    result.value = median(manySamples);
    result.baseline = median(oneSamples);
    result.unit = u"ms"_s;
    result.extra = std::move(extra);
    result.extra.append({who, many});
    result.extra.append({u"machine"_s, machineInfo()});
    printJsonLine(result);
}

} // namespace taskdeck::bench
