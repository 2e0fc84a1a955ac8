// SPDX-License-Identifier: MIT
// The command line end to end: `taskdeck run exec --yes --each FILE --max-concurrent 2` over
// lines of /bin/echo N, with the history on (a fresh data directory per round) and off (a
// data directory that cannot be created), against `xargs -P2 -n1 /bin/echo` on the same
// numbers. The real binary runs as a child process, so start-up, the tasks file lookup, the
// history's opening and its last flush are all in the figure.
//
// Usage: bench_cli [--count=N] [--rounds=N] [--taskdeck=PATH] [--compare=PATH]
// --taskdeck defaults to app/taskdeck beside this bench's directory (the same build).
// --compare runs another taskdeck binary (say, an earlier build) the same way, alternating
// with the others in the same rounds.

#include <algorithm>

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>

#include "benchsupport.h"

#include <sys/resource.h>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kCommands = 3000;
constexpr int kWarmupCommands = 100;
constexpr int kConcurrency = 2;
constexpr int kRounds = 3;
constexpr double kTargetRatio = 1.1;

struct Options
{
    bench::Scale scale;
    QString taskdeck;
    QString compare; // empty: none
};

Options parseArguments(const QStringList &arguments)
{
    Options options;
    QStringList rest{arguments.value(0)};
    for (const QString &argument : arguments.mid(1)) {
        if (argument.startsWith(u"--taskdeck="_s))
            options.taskdeck = argument.mid(11);
        else if (argument.startsWith(u"--compare="_s))
            options.compare = argument.mid(10);
        else
            rest << argument;
    }
    options.scale = bench::scaleFromArguments(rest, {kCommands, kRounds});
    if (options.taskdeck.isEmpty())
        options.taskdeck = QDir(QCoreApplication::applicationDirPath()).filePath(u"../app/taskdeck"_s);
    for (const QString &binary : {options.taskdeck, options.compare}) {
        if (!binary.isEmpty() && !QFileInfo(binary).isExecutable())
            qFatal("%s is not an executable taskdeck (give one with --taskdeck=PATH)", qPrintable(binary));
    }
    return options;
}

/*!
 * The directory each round runs in: the input files, an empty config directory (so no
 * tasks file of the user's is found) and a file where the history's directory would have
 * to be created when the history is off.
 */
class Workspace
{
public:
    Workspace()
    {
        if (!m_dir.isValid())
            qFatal("cannot create a temporary directory");
        QDir(m_dir.path()).mkpath(u"config"_s);
        QFile blocker(path(u"not-a-directory"_s));
        if (!blocker.open(QIODevice::WriteOnly))
            qFatal("cannot create %s", qPrintable(blocker.fileName()));
    }

    QString path(const QString &name) const { return m_dir.filePath(name); }
    QString root() const { return m_dir.path(); }

    /*! The --each input for \a count numbers, written once per count. */
    QString eachInput(int count)
    {
        const QString file = path(u"each-%1.jsonl"_s.arg(count));
        if (QFileInfo::exists(file))
            return file;
        QByteArray data;
        for (int n = 1; n <= count; ++n)
            data += "{\"command\":\"/bin/echo " + QByteArray::number(n) + "\"}\n";
        QFile out(file);
        if (!out.open(QIODevice::WriteOnly) || out.write(data) != data.size())
            qFatal("cannot write %s", qPrintable(file));
        return file;
    }

    /*! A data directory no round has used. */
    QString freshDataDir() { return path(u"data-%1"_s.arg(++m_dataDirs)); }
    /*! A data directory below a regular file: it cannot be created. */
    QString impossibleDataDir() const { return path(u"not-a-directory/data"_s); }

private:
    QTemporaryDir m_dir;
    int m_dataDirs = 0;
};

QProcessEnvironment cleanEnvironment(const Workspace &workspace)
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    // Settings from the caller's environment would change what is measured.
    for (const QString &name : env.keys()) {
        if (name.startsWith(u"TASK_"_s))
            env.remove(name);
    }
    env.insert(u"XDG_CONFIG_HOME"_s, workspace.path(u"config"_s));
    return env;
}

/*!
 * One run of taskdeck over \a count lines, with its history in \a dataDir (which cannot be
 * created, for the history off); the time from starting the process until it exited. Its
 * report is checked: every line once, succeeded, and the summary.
 */
double taskdeckRound(const QString &binary, Workspace &workspace, int count, const QString &dataDir,
                     bool history)
{
    const QString input = workspace.eachInput(count);
    const QString output = workspace.path(u"taskdeck.out"_s);

    QProcess taskdeck;
    taskdeck.setProgram(binary);
    taskdeck.setArguments({u"run"_s, u"exec"_s, u"--yes"_s, u"--each"_s, input,
                           u"--max-concurrent"_s, QString::number(kConcurrency), u"--data-dir"_s, dataDir});
    taskdeck.setWorkingDirectory(workspace.root());
    taskdeck.setProcessEnvironment(cleanEnvironment(workspace));
    taskdeck.setStandardOutputFile(output, QIODevice::Truncate);
    taskdeck.setStandardInputFile(QProcess::nullDevice());

    QElapsedTimer timer;
    timer.start();
    taskdeck.start();
    if (!taskdeck.waitForStarted())
        qFatal("cannot start %s: %s", qPrintable(binary), qPrintable(taskdeck.errorString()));
    if (!taskdeck.waitForFinished(-1))
        qFatal("%s did not finish: %s", qPrintable(binary), qPrintable(taskdeck.errorString()));
    const double ms = double(timer.nsecsElapsed()) / 1e6;

    const QByteArray errors = taskdeck.readAllStandardError();
    if (taskdeck.exitStatus() != QProcess::NormalExit || taskdeck.exitCode() != 0)
        qFatal("%s exited with %d:\n%s", qPrintable(binary), taskdeck.exitCode(), errors.constData());
    if (errors.contains("history unavailable") == history)
        qFatal("the history was %s, not %s:\n%s", history ? "unavailable" : "available",
               history ? "available" : "unavailable", errors.constData());

    QFile result(output);
    if (!result.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", qPrintable(output));
    // "[line 12] succeeded in 3ms (run ...)" per line, then "succeeded 3000".
    static const QRegularExpression report(u"^\\[line (\\d+)\\] succeeded in "_s);
    QList<bool> seen(count + 1, false);
    int lines = 0;
    QByteArray last;
    while (!result.atEnd()) {
        const QByteArray text = result.readLine().trimmed();
        if (text.isEmpty())
            continue;
        last = text;
        const QRegularExpressionMatch match = report.match(QString::fromUtf8(text));
        if (!match.hasMatch())
            continue;
        const int line = match.captured(1).toInt();
        if (line < 1 || line > count || seen.at(line))
            qFatal("unexpected report: %s", text.constData());
        seen[line] = true;
        ++lines;
    }
    if (lines != count || last != QByteArray("succeeded ") + QByteArray::number(count))
        qFatal("expected %d lines reported succeeded, got %d; the report ends with: %s", count, lines,
               last.constData());
    return ms;
}

/*! The history of the last round with it on holds every run. */
void checkHistory(const QString &binary, Workspace &workspace, const QString &dataDir, int count)
{
    QProcess history;
    history.setProgram(binary);
    history.setArguments({u"history"_s, u"--task"_s, u"exec"_s, u"--limit"_s, u"1"_s, u"--data-dir"_s, dataDir});
    history.setWorkingDirectory(workspace.root());
    history.setProcessEnvironment(cleanEnvironment(workspace));
    history.start();
    if (!history.waitForFinished(-1) || history.exitCode() != 0)
        qFatal("taskdeck history failed: %s", history.readAllStandardError().constData());
    const QByteArray out = history.readAllStandardOutput();
    if (!out.contains(QByteArray(QByteArray("showing 1 of ") + QByteArray::number(count))))
        qFatal("the history does not hold %d runs:\n%s", count, out.constData());
}

/*! One round of xargs -P2 -n1 /bin/echo, fed the numbers on stdin, output to a file. */
double xargsRound(const Workspace &workspace, int count)
{
    return bench::xargsEchoRound(count, kConcurrency, workspace.path(u"xargs.out"_s));
}

QString ms(double value)
{
    return QString::number(value, 'f', 1);
}

/*!
 * CPU time (user + system) of this process's children that have ended and been waited for,
 * with their own children: a round's difference is the CPU its whole process tree used, a
 * figure that other users' load on the machine changes much less than the wall time.
 */
double childrenCpuMs()
{
    rusage usage{};
    getrusage(RUSAGE_CHILDREN, &usage);
    const auto ms = [](const timeval &t) { return double(t.tv_sec) * 1e3 + double(t.tv_usec) / 1e3; };
    return ms(usage.ru_utime) + ms(usage.ru_stime);
}

/*! Runs \a side and adds the CPU time of the processes it started to \a cpuMs. */
template <typename Side>
double withCpu(QList<double> *cpuMs, Side side)
{
    const double before = childrenCpuMs();
    const double wall = side();
    *cpuMs << childrenCpuMs() - before;
    return wall;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const Options options = parseArguments(app.arguments());
    const int count = options.scale.count;
    Workspace workspace;

    // Warm the page cache and the dynamic loader for every binary before timing.
    const int warmup = std::min(kWarmupCommands, count);
    for (const QString &binary : {options.taskdeck, options.compare}) {
        if (binary.isEmpty())
            continue;
        taskdeckRound(binary, workspace, warmup, workspace.freshDataDir(), true);
        taskdeckRound(binary, workspace, warmup, workspace.impossibleDataDir(), false);
    }
    xargsRound(workspace, warmup);

    QList<double> historyOn;
    QList<double> historyOff;
    QList<double> xargs;
    QList<double> compareOn;
    QList<double> compareOff;
    QList<double> historyOnCpu;
    QList<double> historyOffCpu;
    QList<double> xargsCpu;
    for (int round = 0; round < options.scale.rounds; ++round) {
        // The sides in turn, each starting the round in a different place, so a slow
        // stretch of the machine does not fall on one side only.
        const int sides = options.compare.isEmpty() ? 3 : 5;
        for (int i = 0; i < sides; ++i) {
            switch ((i + round) % sides) {
            case 0: {
                const QString dataDir = workspace.freshDataDir();
                historyOn << withCpu(&historyOnCpu, [&] {
                    return taskdeckRound(options.taskdeck, workspace, count, dataDir, true);
                });
                checkHistory(options.taskdeck, workspace, dataDir, count);
                break;
            }
            case 1:
                historyOff << withCpu(&historyOffCpu, [&] {
                    return taskdeckRound(options.taskdeck, workspace, count, workspace.impossibleDataDir(), false);
                });
                break;
            case 2:
                xargs << withCpu(&xargsCpu, [&] { return xargsRound(workspace, count); });
                break;
            case 3:
                compareOn << taskdeckRound(options.compare, workspace, count, workspace.freshDataDir(), true);
                break;
            case 4:
                compareOff << taskdeckRound(options.compare, workspace, count, workspace.impossibleDataDir(), false);
                break;
            }
        }
    }

    bench::Result result;
    result.bench = u"cli"_s;
    result.value = bench::median(historyOn);
    result.baseline = bench::median(xargs);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"historyOffMs"_s, bench::median(historyOff)},
        {u"historyOffRatio"_s, bench::median(historyOff) / std::max(1e-9, result.baseline)},
        // The same sides in CPU time of their whole process trees (children's rusage).
        {u"historyOnCpuMs"_s, bench::median(historyOnCpu)},
        {u"historyOffCpuMs"_s, bench::median(historyOffCpu)},
        {u"xargsCpuMs"_s, bench::median(xargsCpu)},
        {u"cpuRatio"_s, bench::median(historyOnCpu) / std::max(1e-9, bench::median(xargsCpu))},
        {u"commands"_s, count},
        {u"concurrency"_s, kConcurrency},
        {u"rounds"_s, options.scale.rounds},
    };
    if (!options.compare.isEmpty()) {
        result.extra.append({u"compareHistoryOnMs"_s, bench::median(compareOn)});
        result.extra.append({u"compareHistoryOffMs"_s, bench::median(compareOff)});
    }
    result.extra.append({u"machine"_s, bench::machineInfo()});

    bench::printLine(u"cli: taskdeck run exec --each of %1 x /bin/echo N, --max-concurrent %2, median of %3 rounds"_s
                         .arg(count).arg(kConcurrency).arg(options.scale.rounds));
    bench::printLine(u"  history on  ms: %1"_s.arg(bench::formatSamples(historyOn)));
    bench::printLine(u"  history off ms: %1"_s.arg(bench::formatSamples(historyOff)));
    bench::printLine(u"  xargs -P%1   ms: %2"_s.arg(kConcurrency).arg(bench::formatSamples(xargs)));
    bench::printLine(u"  CPU ms of each side's processes: history on %1; off %2; xargs %3"_s
                         .arg(bench::formatSamples(historyOnCpu), bench::formatSamples(historyOffCpu),
                              bench::formatSamples(xargsCpu)));
    if (!options.compare.isEmpty()) {
        bench::printLine(u"  %1, history on  ms: %2"_s.arg(options.compare, bench::formatSamples(compareOn)));
        bench::printLine(u"  %1, history off ms: %2"_s.arg(options.compare, bench::formatSamples(compareOff)));
    }
    bench::printLine(u"cli: history on %1 ms, off %2 ms, xargs -P%3 %4 ms, ratio %5 (target <= %6)%7"_s
                         .arg(ms(result.value), ms(bench::median(historyOff)), QString::number(kConcurrency),
                              ms(result.baseline), QString::number(result.ratio(), 'f', 2),
                              QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
