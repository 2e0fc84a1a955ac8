// SPDX-License-Identifier: MIT
#pragma once

#include <optional>

#include <QJsonObject>
#include <QJsonValue>
#include <QList>
#include <QPair>
#include <QString>
#include <QStringList>

namespace taskdeck::bench {

/*! How big a benchmark is and how often it repeats. */
struct Scale
{
    int count = 0;
    int rounds = 0;
};

/*!
 * The scale from --count=N and --rounds=N in \a arguments (to profile a smaller case),
 * \a defaults otherwise. Exits with a message on anything else.
 */
Scale scaleFromArguments(const QStringList &arguments, Scale defaults);

/*! The median of \a samples (the mean of the middle two for an even count); 0 when empty. */
double median(QList<double> samples);

/*! The samples as "812, 790, 801" with one decimal, for the readable report lines. */
QString formatSamples(const QList<double> &samples);

/*! A value of /proc/self/status in KiB ("VmRSS", "VmHWM"); nullopt when unreadable. */
std::optional<qint64> procStatusKiB(const char *key);

/*! CPU time (user + system, all threads) this process has used so far, in milliseconds. */
double processCpuMs();

/*!
 * Resets the peak resident set size (VmHWM) to the current one by writing "5" to
 * /proc/self/clear_refs. False when the kernel or the sandbox does not allow it.
 */
bool resetPeakRss();

/*! Where the figures come from: CPU count and model, RAM, Qt version, build type. */
QJsonObject machineInfo();

/*!
 * The result line every benchmark ends with. value, baseline and ratio are rounded for
 * display only in the readable line; the JSON keeps three decimals.
 */
struct Result
{
    QString bench;
    double value = 0;
    double baseline = 0;
    QString unit;
    QList<QPair<QString, QJsonValue>> extra; //!< printed after the five required keys, in order

    double ratio() const { return baseline > 0 ? value / baseline : 0; }
};

/*!
 * One round of `xargs -P CONCURRENCY -n1 /bin/echo` fed the numbers 1..count on stdin, its
 * output to \a outputPath: the baseline of the command benchmarks. Checks that every number
 * came out once (count and sum) and exits with a message otherwise. Returns milliseconds.
 */
double xargsEchoRound(int count, int concurrency, const QString &outputPath);

/*! The sum of 1..count, what the echo benchmarks check their output against. */
qint64 sumUpTo(int count);

/*! Prints \a result as one compact JSON line on stdout (the benchmark's last line). */
void printJsonLine(const Result &result);

/*! Prints one readable line on stdout, without buffering surprises next to the JSON. */
void printLine(const QString &line);

/*!
 * The taskdeck program a benchmark runs: the first argument when it is not an option (taken
 * out of \a arguments), ../app/taskdeck next to the benchmark otherwise, as an absolute path.
 * Exits with a message when it is not an executable file.
 */
QString takeTaskdeckProgram(QStringList &arguments);

/*!
 * Ends a fan-out benchmark: prints the samples with one follower and with \a many followers
 * (\a who names them, e.g. "clients"), then the result line with the median of \a manySamples
 * as value and the median of \a oneSamples as baseline, in ms, followed by \a extra and the
 * machine.
 */
void reportFanout(const QString &bench, const QString &who, int many, const QList<double> &oneSamples,
                  const QList<double> &manySamples, QList<QPair<QString, QJsonValue>> extra);

} // namespace taskdeck::bench
