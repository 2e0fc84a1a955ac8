// SPDX-License-Identifier: MIT
// The history commands of the taskdeck command line (history, show, log, export, rerun) and
// the history wiring of run, against the real binary ($TASKDECK_BIN) and a real SQLite file.

#include <algorithm>
#include <csignal>
#include <memory>
#include <optional>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include "engineconfig.h"
#include "run.h"
#include "sqliterunstore.h"

#include "clitestsupport.h"
#include "testsupport.h"

using namespace Qt::StringLiterals;
using namespace clitest;
using namespace testsupport;

namespace {

struct CliResult
{
    bool finished = false;
    int exitCode = -1;
    QByteArray rawOut;
    QString out;
    QString err;
};

// Tasks whose output the tests know line by line.
const QByteArray TasksFile = R"(version: 1
tasks:
  greet:
    title: Greet Someone
    fields:
      - key: name
        type: text
        required: true
      - key: times
        type: integer
        default: 1
    command: ["printf", "Hello, %s (%s)\n", "{{name}}", "{{times}}"]
  count:
    title: Count
    fields:
      - key: n
        type: integer
        default: 5000
        min: 1
        max: 100000
    command: ["seq", "1", "{{n}}"]
  tricky:
    title: Awkward Output
    shell: |
      echo 'a,b,c'
      echo 'say "hi"'
      echo 'naïve ✓ 日本'
      echo 'oops, "bad"' >&2
      echo 'plain'
  sleeper:
    title: Sleeps
    fields:
      - key: seconds
        type: text
        default: "300"
    command: ["sleep", "{{seconds}}"]
  longline:
    title: One Long Line
    shell: |
      head -c 3000000 /dev/zero | tr '\0' a
      echo
      echo after
  secretive:
    title: Uses a Token
    fields:
      - key: label
        type: text
        default: first
      - key: token
        type: secret
        required: true
    env:
      TOKEN: "{{token}}"
    shell: |
      echo "label $TASK_ARG_LABEL, token length ${#TOKEN}"
)";

// What the tricky task writes, in its order; the stderr line marked as the CLI marks it.
const QStringList TrickyOut = {u"a,b,c"_s, u"say \"hi\""_s, u"naïve ✓ 日本"_s, u"plain"_s};
const QString TrickyErr = u"oops, \"bad\""_s;

QStringList idsOf(const QJsonArray &runs)
{
    QStringList ids;
    for (const QJsonValue &run : runs)
        ids.append(run.toObject().value(u"id"_s).toString());
    return ids;
}

/*
 * A strict RFC 4180 reader: records end in CRLF (the last one may not), fields are split by
 * commas, and a quoted field may hold commas, CR, LF and doubled quotes. Anything else (a
 * bare LF, a quote inside an unquoted field, text after a closing quote) is malformed.
 */
std::optional<QList<QStringList>> parseCsv(const QByteArray &data)
{
    QList<QStringList> records;
    if (data.isEmpty())
        return records;
    QStringList record;
    qsizetype i = 0;
    const qsizetype n = data.size();
    for (;;) {
        QByteArray field;
        if (i < n && data.at(i) == '"') {
            ++i;
            for (;;) {
                if (i >= n)
                    return std::nullopt;
                if (data.at(i) == '"') {
                    if (i + 1 < n && data.at(i + 1) == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += data.at(i++);
            }
        } else {
            while (i < n && data.at(i) != ',' && data.at(i) != '\r' && data.at(i) != '\n') {
                if (data.at(i) == '"')
                    return std::nullopt;
                field += data.at(i++);
            }
        }
        record.append(QString::fromUtf8(field));
        if (i >= n) {
            records.append(record);
            return records;
        }
        if (data.at(i) == ',') {
            ++i;
            continue;
        }
        if (data.at(i) == '\r' && i + 1 < n && data.at(i + 1) == '\n') {
            i += 2;
            records.append(record);
            record.clear();
            if (i >= n)
                return records;
            continue;
        }
        return std::nullopt;
    }
}

const QRegularExpression TraceIdPattern(u"^[0-9a-f]{32}$"_s);

} // namespace

class TestCliHistory : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();

    void runThenHistory();
    void historyFilters();
    void historyRejectsBadOptions();
    void historyEmpty();

    void showPlainAndJson();
    void showFailedRun();
    void unknownRunId_data();
    void unknownRunId();

    void logReproducesTheRun();
    void logFromLine();
    void logMarksStderr();

    void exportJson();
    void exportJsonToFile();
    void exportCsv();
    void exportToWhatIsNotAFile();
    void readOnlyHistoryIsRead();
    void writeErrorsOnStdout_data();
    void writeErrorsOnStdout();

    void rerunRepeatsArguments();
    void largeIntegersStayExact();
    void rerunDemandsSecrets();

    void historyUnavailable_data();
    void historyUnavailable();
    void concurrentProcesses();
    void cancelNamesTheProcessThatCan();
    void interruptedRunRecovered();
    void retentionPrunesOldRuns();
    void anotherPidNamespaceLeavesLiveRunsAlone();
    void summaryKeepsMessagesStartingWithTheStatus();
    void logMarksASplitLine();

private:
    QProcessEnvironment environment(const QMap<QString, QString> &extra = {}) const;
    // \a wrapper: a program (with its arguments) that runs taskdeck, such as setpriv.
    CliResult runCli(const QStringList &arguments, const QMap<QString, QString> &env = {},
                     const QString &stdoutFile = QString(), const QStringList &wrapper = {}) const;
    // Runs with --json and returns the new run's id (empty when there is none).
    QString runTask(const QStringList &arguments, int expectedExitCode = 0) const;
    std::optional<QJsonArray> history(const QStringList &options = {}) const;

    QString m_bin;
    QTemporaryDir m_dir;
    QString m_tasksFile;
    std::unique_ptr<QTemporaryDir> m_data; // a fresh history for every test
};

void TestCliHistory::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    m_bin = qEnvironmentVariable("TASKDECK_BIN");
    QVERIFY2(QFileInfo(m_bin).isExecutable(),
             "set TASKDECK_BIN to the taskdeck binary (ctest does)");
    QVERIFY(m_dir.isValid());
    QVERIFY(QDir().mkpath(m_dir.filePath(u"work"_s)));
    QVERIFY(QDir().mkpath(m_dir.filePath(u"config"_s)));
    m_tasksFile = m_dir.filePath(u"tasks.yml"_s);
    QFile file(m_tasksFile);
    QVERIFY(file.open(QIODevice::WriteOnly));
    QCOMPARE(file.write(TasksFile), TasksFile.size());
}

void TestCliHistory::init()
{
    m_data = std::make_unique<QTemporaryDir>();
    QVERIFY(m_data->isValid());
}

QProcessEnvironment TestCliHistory::environment(const QMap<QString, QString> &extra) const
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (const taskdeck::Settings::Option &option : taskdeck::Settings::options())
        env.remove(option.variable);
    env.insert(u"TASK_DATA_DIR"_s, m_data->filePath(u"data"_s));
    env.insert(u"TASK_FILE"_s, m_tasksFile);
    env.insert(u"XDG_CONFIG_HOME"_s, m_dir.filePath(u"config"_s));
    for (auto it = extra.cbegin(); it != extra.cend(); ++it)
        env.insert(it.key(), it.value());
    return env;
}

CliResult TestCliHistory::runCli(const QStringList &arguments,
                                 const QMap<QString, QString> &env,
                                 const QString &stdoutFile, const QStringList &wrapper) const
{
    QProcess process;
    if (!stdoutFile.isEmpty())
        process.setStandardOutputFile(stdoutFile);
    if (wrapper.isEmpty()) {
        process.setProgram(m_bin);
        process.setArguments(arguments);
    } else {
        process.setProgram(wrapper.constFirst());
        process.setArguments(wrapper.mid(1) + QStringList{m_bin} + arguments);
    }
    process.setProcessEnvironment(environment(env));
    process.setWorkingDirectory(m_dir.filePath(u"work"_s));
    process.start();
    CliResult result;
    if (!process.waitForStarted(30000))
        return result;
    process.closeWriteChannel();
    result.finished = process.waitForFinished(120000) && process.exitStatus() == QProcess::NormalExit;
    result.exitCode = process.exitCode();
    result.rawOut = process.readAllStandardOutput();
    result.out = QString::fromUtf8(result.rawOut);
    result.err = QString::fromUtf8(process.readAllStandardError());
    return result;
}

QString TestCliHistory::runTask(const QStringList &arguments, int expectedExitCode) const
{
    const CliResult r = runCli(QStringList{u"run"_s} + arguments + QStringList{u"--json"_s});
    if (!r.finished || r.exitCode != expectedExitCode) {
        qWarning().noquote() << "run" << arguments << "exited with" << r.exitCode << r.err;
        return QString();
    }
    const std::optional<QJsonObject> run = parseObject(r.out);
    return run ? run->value(u"id"_s).toString() : QString();
}

std::optional<QJsonArray> TestCliHistory::history(const QStringList &options) const
{
    const CliResult r = runCli(QStringList{u"history"_s, u"--json"_s} + options);
    if (!r.finished || r.exitCode != 0) {
        qWarning().noquote() << "history" << options << "exited with" << r.exitCode << r.err;
        return std::nullopt;
    }
    return parseArray(r.out);
}

void TestCliHistory::runThenHistory()
{
    const QString id = runTask({u"greet"_s, u"--arg"_s, u"name=Ada"_s});
    QCOMPARE(id.size(), 36);

    const CliResult plain = runCli({u"history"_s});
    QVERIFY(plain.finished);
    QCOMPARE(plain.exitCode, 0);
    const QStringList lines = nonEmptyLines(plain.out);
    QCOMPARE(lines.size(), 3);
    for (const QString &column : {u"ID"_s, u"TASK"_s, u"STATUS"_s, u"STARTED"_s, u"DURATION"_s,
                                  u"ATTEMPT"_s})
        QVERIFY2(lines.at(0).contains(column), qPrintable(lines.at(0)));
    // The whole id, so that it can be copied into show, log, export or rerun.
    QVERIFY2(lines.at(1).startsWith(id + u' '), qPrintable(plain.out));
    const QStringList cells = lines.at(1).split(u' ', Qt::SkipEmptyParts);
    QCOMPARE(cells.value(1), u"greet"_s);
    QCOMPARE(cells.value(2), u"succeeded"_s);
    // Aligned: STATUS starts at the same column in the header and the row.
    QCOMPARE(lines.at(1).indexOf(u"succeeded"_s), lines.at(0).indexOf(u"STATUS"_s));
    QCOMPARE(lines.at(2), u"showing 1 of 1"_s);

    const std::optional<QJsonArray> runs = history();
    QVERIFY(runs);
    QCOMPARE(runs->size(), 1);
    const QJsonObject run = runs->at(0).toObject();
    QCOMPARE(run.value(u"id"_s).toString(), id);
    QCOMPARE(run.value(u"task"_s).toString(), u"greet"_s);
    QCOMPARE(run.value(u"status"_s).toString(), u"succeeded"_s);
    QCOMPARE(run.value(u"args"_s).toObject().value(u"name"_s).toString(), u"Ada"_s);
    QCOMPARE(run.value(u"logLines"_s).toInteger(), 1);
}

void TestCliHistory::historyFilters()
{
    const QString a = runTask({u"greet"_s, u"--arg"_s, u"name=A"_s});
    const QString b = runTask({u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=sh -c \"exit 3\""_s}, 1);
    const QString c = runTask({u"greet"_s, u"--arg"_s, u"name=C"_s});
    const QString d = runTask({u"count"_s, u"--arg"_s, u"n=3"_s});
    for (const QString &id : {a, b, c, d})
        QCOMPARE(id.size(), 36);

    const auto ids = [this](const QStringList &options) {
        const std::optional<QJsonArray> runs = history(options);
        return runs ? idsOf(*runs) : QStringList{u"(history failed)"_s};
    };
    QCOMPARE(ids({}), (QStringList{d, c, b, a}));
    QCOMPARE(ids({u"--task"_s, u"greet"_s}), (QStringList{c, a}));
    QCOMPARE(ids({u"--status"_s, u"failed"_s}), (QStringList{b}));
    QCOMPARE(ids({u"--status"_s, u"succeeded"_s}), (QStringList{d, c, a}));
    QCOMPARE(ids({u"--task"_s, u"greet"_s, u"--status"_s, u"failed"_s}), QStringList());
    QCOMPARE(ids({u"--limit"_s, u"2"_s}), (QStringList{d, c}));
    QCOMPARE(ids({u"--offset"_s, u"3"_s}), (QStringList{a}));
    QCOMPARE(ids({u"--limit=2"_s, u"--offset=1"_s}), (QStringList{c, b}));
    QCOMPARE(ids({u"--offset"_s, u"4"_s}), QStringList());
    QCOMPARE(ids({u"--since"_s, u"1d"_s}), (QStringList{d, c, b, a}));
    QCOMPARE(ids({u"--since"_s, u"2999-01-01"_s}), QStringList());
    QCOMPARE(ids({u"--since"_s, u"2000-01-01T00:00:00Z"_s}), (QStringList{d, c, b, a}));
    // The time of day counts, not only the date: an hour ahead finds nothing, an hour ago
    // everything, whichever way the zone is written.
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const auto utc = [&now](int hours) -> QString {
        return now.addSecs(hours * 3600).toString(u"yyyy-MM-ddTHH:mm"_s) + u'Z';
    };
    QCOMPARE(ids({u"--since"_s, utc(1)}), QStringList());
    QCOMPARE(ids({u"--since"_s, utc(-1)}), (QStringList{d, c, b, a}));
    const QString inTwoHoursAtPlusTwo =
        now.addSecs(4 * 3600).toString(u"yyyy-MM-ddTHH:mm:ss.zzz"_s) + u"+02:00"_s;
    QCOMPARE(ids({u"--since"_s, inTwoHoursAtPlusTwo}), QStringList());
    const QString inOneHourLocal =
        now.addSecs(3600).toLocalTime().toString(u"yyyy-MM-dd HH:mm"_s);
    QCOMPARE(ids({u"--since"_s, inOneHourLocal}), QStringList());

    // The plain table shows what a run came to and how many runs there are in all.
    const CliResult failed = runCli({u"history"_s, u"--status"_s, u"failed"_s});
    QCOMPARE(failed.exitCode, 0);
    const QStringList failedLines = nonEmptyLines(failed.out);
    QCOMPARE(failedLines.size(), 3);
    QVERIFY2(failedLines.at(1).startsWith(b + u' '), qPrintable(failed.out));
    QVERIFY2(failedLines.at(1).contains(u"[ExitCode]"_s), qPrintable(failed.out));
    QCOMPARE(failedLines.at(2), u"showing 1 of 1"_s);

    const CliResult page = runCli({u"history"_s, u"--limit"_s, u"2"_s});
    QCOMPARE(page.exitCode, 0);
    QVERIFY2(nonEmptyLines(page.out).constLast() == u"showing 2 of 4"_s, qPrintable(page.out));
    const CliResult beyond = runCli({u"history"_s, u"--offset"_s, u"10"_s});
    QCOMPARE(beyond.exitCode, 0);
    QVERIFY2(beyond.out.contains(u"showing 0 of 4"_s), qPrintable(beyond.out));
}

void TestCliHistory::historyRejectsBadOptions()
{
    const CliResult status = runCli({u"history"_s, u"--status"_s, u"done"_s});
    QVERIFY(status.finished);
    QCOMPARE(status.exitCode, 2);
    QVERIFY(status.out.isEmpty());
    QVERIFY2(status.err.contains(u"\"done\""_s), qPrintable(status.err));
    for (const QString &name : taskdeck::runStatusNames())
        QVERIFY2(status.err.contains(name), qPrintable(name + u": "_s + status.err));

    for (const QString &limit : {u"0"_s, u"1001"_s, u"ten"_s}) {
        const CliResult r = runCli({u"history"_s, u"--limit"_s, limit});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains(u"--limit"_s), qPrintable(r.err));
    }
}

void TestCliHistory::historyEmpty()
{
    const CliResult plain = runCli({u"history"_s});
    QVERIFY(plain.finished);
    QCOMPARE(plain.exitCode, 0);
    QVERIFY2(plain.out.contains(u"no runs"_s), qPrintable(plain.out));
    QVERIFY2(plain.out.contains(u"showing 0 of 0"_s), qPrintable(plain.out));
    const std::optional<QJsonArray> runs = history();
    QVERIFY(runs);
    QVERIFY(runs->isEmpty());
}

void TestCliHistory::showPlainAndJson()
{
    const QString id = runTask({u"greet"_s, u"--arg"_s, u"name=Ada"_s, u"--arg"_s, u"times=2"_s});
    QCOMPARE(id.size(), 36);

    const CliResult json = runCli({u"show"_s, id, u"--json"_s});
    QVERIFY(json.finished);
    QCOMPARE(json.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(json.out);
    QVERIFY2(run, qPrintable(json.out));
    QCOMPARE(run->value(u"id"_s).toString(), id);
    QCOMPARE(run->value(u"task"_s).toString(), u"greet"_s);
    QCOMPARE(run->value(u"status"_s).toString(), u"succeeded"_s);
    QCOMPARE(run->value(u"attempt"_s).toInt(), 1);
    QCOMPARE(run->value(u"logLines"_s).toInteger(), 1);
    const QJsonObject args = run->value(u"args"_s).toObject();
    QCOMPARE(args.value(u"name"_s).toString(), u"Ada"_s);
    QCOMPARE(args.value(u"times"_s).toInteger(), 2);
    QVERIFY(!run->value(u"startedAt"_s).toString().isEmpty());
    QVERIFY(!run->value(u"finishedAt"_s).toString().isEmpty());
    QVERIFY(!run->value(u"owner"_s).toString().isEmpty());
    const QString traceId = run->value(u"traceId"_s).toString();
    QVERIFY2(TraceIdPattern.match(traceId).hasMatch(), qPrintable(json.out));

    const CliResult plain = runCli({u"show"_s, id});
    QCOMPARE(plain.exitCode, 0);
    const QStringList lines = plain.out.split(u'\n');
    const auto line = [&](const QString &name) {
        for (const QString &l : lines) {
            if (l.startsWith(name + u':'))
                return l.mid(name.size() + 1).trimmed();
        }
        return u"(missing)"_s;
    };
    QCOMPARE(line(u"id"_s), id);
    QCOMPARE(line(u"task"_s), u"greet"_s);
    QVERIFY2(line(u"status"_s).startsWith(u"succeeded"_s), qPrintable(plain.out));
    QCOMPARE(line(u"trace id"_s), traceId);
    QCOMPARE(line(u"log lines"_s), u"1"_s);
    QCOMPARE(line(u"attempt"_s), u"1 of 1"_s);
    QCOMPARE(line(u"  name"_s), u"Ada"_s);
    QCOMPARE(line(u"  times"_s), u"2"_s);
    QVERIFY2(plain.out.contains(u"\nresult:"_s), qPrintable(plain.out));
}

void TestCliHistory::showFailedRun()
{
    const QString id = runTask({u"exec"_s, u"--yes"_s, u"--arg"_s,
                                u"command=sh -c \"echo broken >&2; exit 3\""_s}, 1);
    QCOMPARE(id.size(), 36);

    const CliResult json = runCli({u"show"_s, id, u"--json"_s});
    QCOMPARE(json.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(json.out);
    QVERIFY2(run, qPrintable(json.out));
    QCOMPARE(run->value(u"status"_s).toString(), u"failed"_s);
    const QJsonObject error = run->value(u"error"_s).toObject();
    QCOMPARE(error.value(u"kind"_s).toString(), u"ExitCode"_s);
    QVERIFY(!error.value(u"message"_s).toString().isEmpty());

    const CliResult plain = runCli({u"show"_s, id});
    QCOMPARE(plain.exitCode, 0);
    QVERIFY2(plain.out.contains(u"\nerror:\n  message: "_s + error.value(u"message"_s).toString()),
             qPrintable(plain.out));
    QVERIFY2(plain.out.contains(u"\n  kind: ExitCode\n"_s), qPrintable(plain.out));
}

void TestCliHistory::unknownRunId_data()
{
    QTest::addColumn<QStringList>("arguments");
    const QString id = u"00000000-0000-4000-8000-000000000000"_s;
    QTest::newRow("show") << QStringList{u"show"_s, id};
    QTest::newRow("show --json") << QStringList{u"show"_s, id, u"--json"_s};
    QTest::newRow("log") << QStringList{u"log"_s, id};
    QTest::newRow("export") << QStringList{u"export"_s, id};
    QTest::newRow("export csv") << QStringList{u"export"_s, id, u"--format"_s, u"csv"_s};
    QTest::newRow("rerun") << QStringList{u"rerun"_s, id};
    QTest::newRow("cancel") << QStringList{u"cancel"_s, id};
}

void TestCliHistory::unknownRunId()
{
    QFETCH(QStringList, arguments);
    // A run exists, so the history is there; it just has no such id.
    QCOMPARE(runTask({u"greet"_s, u"--arg"_s, u"name=Ada"_s}).size(), 36);
    const CliResult r = runCli(arguments);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains(u"no run with id "_s + arguments.at(1)), qPrintable(r.err));
}

void TestCliHistory::logReproducesTheRun()
{
    // The plain run streams its log on stdout: log must print the same lines again.
    const CliResult run = runCli({u"run"_s, u"count"_s});
    QVERIFY(run.finished);
    QCOMPARE(run.exitCode, 0);
    QString id;
    for (const QString &line : nonEmptyLines(run.err)) {
        if (line.startsWith(u"run "_s))
            id = line.mid(4);
    }
    QCOMPARE(id.size(), 36);

    const CliResult log = runCli({u"log"_s, id});
    QVERIFY(log.finished);
    QCOMPARE(log.exitCode, 0);
    QStringList lines = log.out.split(u'\n');
    QCOMPARE(lines.takeLast(), QString());
    QCOMPARE(lines.size(), 5000);
    for (int i = 0; i < lines.size(); ++i)
        QCOMPARE(lines.at(i), QString::number(i + 1));
    QVERIFY(run.out.startsWith(log.out));
}

void TestCliHistory::logFromLine()
{
    const QString id = runTask({u"count"_s});
    QCOMPARE(id.size(), 36);
    const CliResult tail = runCli({u"log"_s, id, u"--from"_s, u"4990"_s});
    QCOMPARE(tail.exitCode, 0);
    QStringList expected;
    for (int n = 4990; n <= 5000; ++n)
        expected.append(QString::number(n));
    QCOMPARE(nonEmptyLines(tail.out), expected);

    const CliResult past = runCli({u"log"_s, id, u"--from=6000"_s});
    QCOMPARE(past.exitCode, 0);
    QVERIFY(past.out.isEmpty());
}

void TestCliHistory::logMarksStderr()
{
    const QString id = runTask({u"tricky"_s});
    QCOMPARE(id.size(), 36);
    const CliResult log = runCli({u"log"_s, id});
    QCOMPARE(log.exitCode, 0);
    QStringList lines = nonEmptyLines(log.out);
    QCOMPARE(lines.size(), 5);
    // stdout and stderr are read apart, so only each stream's own order is certain.
    QVERIFY2(lines.removeAll(u"! "_s + TrickyErr) == 1, qPrintable(log.out));
    QCOMPARE(lines, TrickyOut);
    QVERIFY(!log.out.contains(u'\x1b'));
}

void TestCliHistory::exportJson()
{
    const QString id = runTask({u"count"_s});
    QCOMPARE(id.size(), 36);
    const CliResult r = runCli({u"export"_s, id});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const std::optional<QJsonObject> exported = parseObject(r.out);
    QVERIFY2(exported, qPrintable(r.out.left(2000)));
    QCOMPARE(exported->value(u"id"_s).toString(), id);
    QCOMPARE(exported->value(u"task"_s).toString(), u"count"_s);
    QCOMPARE(exported->value(u"status"_s).toString(), u"succeeded"_s);
    QCOMPARE(exported->value(u"logLines"_s).toInteger(), 5000);
    QVERIFY(TraceIdPattern.match(exported->value(u"traceId"_s).toString()).hasMatch());

    const QJsonArray log = exported->value(u"log"_s).toArray();
    QCOMPARE(log.size(), 5000);
    for (qsizetype i = 0; i < log.size(); ++i) {
        const QJsonObject line = log.at(i).toObject();
        QCOMPARE(line.value(u"n"_s).toInteger(), i + 1);
        QCOMPARE(line.value(u"text"_s).toString(), QString::number(i + 1));
        QCOMPARE(line.value(u"stream"_s).toString(), u"out"_s);
        QVERIFY(QDateTime::fromString(line.value(u"time"_s).toString(), Qt::ISODateWithMs).isValid());
    }

    // Everything show --json says is in the export as well.
    const CliResult shown = runCli({u"show"_s, id, u"--json"_s});
    const std::optional<QJsonObject> run = parseObject(shown.out);
    QVERIFY(run);
    QJsonObject withoutLog = *exported;
    withoutLog.remove(u"log"_s);
    QCOMPARE(withoutLog, *run);
}

void TestCliHistory::exportJsonToFile()
{
    const QString id = runTask({u"tricky"_s});
    QCOMPARE(id.size(), 36);
    const QString path = m_data->filePath(u"export.json"_s);
    const CliResult r = runCli({u"export"_s, id, u"--format"_s, u"json"_s, u"--output"_s, path});
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.out.isEmpty());
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const std::optional<QJsonObject> exported = parseObject(QString::fromUtf8(file.readAll()));
    QVERIFY(exported);
    QCOMPARE(exported->value(u"id"_s).toString(), id);
    QCOMPARE(exported->value(u"log"_s).toArray().size(), 5);

    const QString nowhere = m_data->filePath(u"no/such/dir/export.json"_s);
    const CliResult unwritable = runCli({u"export"_s, id, u"--output"_s, nowhere});
    QCOMPARE(unwritable.exitCode, 2);
    QVERIFY2(unwritable.err.contains(nowhere), qPrintable(unwritable.err));
}

void TestCliHistory::exportToWhatIsNotAFile()
{
    const QString id = runTask({u"tricky"_s});
    QCOMPARE(id.size(), 36);

    // A device is written to, never replaced (or, without root, failed on).
    const CliResult toNull = runCli({u"export"_s, id, u"--output"_s, u"/dev/null"_s});
    QCOMPARE(toNull.exitCode, 0);
    QVERIFY2(toNull.err.isEmpty(), qPrintable(toNull.err));
    struct stat st {};
    QCOMPARE(::stat("/dev/null", &st), 0);
    QVERIFY(S_ISCHR(st.st_mode));

    // A FIFO stays a FIFO and its reader gets the whole export.
    const QString fifo = m_data->filePath(u"export.fifo"_s);
    QCOMPARE(::mkfifo(QFile::encodeName(fifo).constData(), 0600), 0);
    QProcess reader;
    reader.start(u"cat"_s, {fifo});
    QVERIFY(reader.waitForStarted(30000));
    const CliResult toFifo = runCli({u"export"_s, id, u"--output"_s, fifo});
    QCOMPARE(toFifo.exitCode, 0);
    QVERIFY(reader.waitForFinished(30000));
    const std::optional<QJsonObject> exported = parseObject(QString::fromUtf8(reader.readAllStandardOutput()));
    QVERIFY(exported);
    QCOMPARE(exported->value(u"id"_s).toString(), id);
    QCOMPARE(::lstat(QFile::encodeName(fifo).constData(), &st), 0);
    QVERIFY(S_ISFIFO(st.st_mode));

    // A directory is refused, and left as it was.
    const QString dir = m_data->filePath(u"export-dir"_s);
    QVERIFY(QDir().mkdir(dir));
    const CliResult toDir = runCli({u"export"_s, id, u"--output"_s, dir});
    QCOMPARE(toDir.exitCode, 2);
    QVERIFY2(toDir.err.contains(u"cannot write %1: it is a directory"_s.arg(dir)), qPrintable(toDir.err));
    QVERIFY(QFileInfo(dir).isDir());
    QVERIFY(QDir(dir).isEmpty());
}

void TestCliHistory::readOnlyHistoryIsRead()
{
    const QString dataDir = m_data->filePath(u"read-only-data"_s);
    const QMap<QString, QString> env{{u"TASK_DATA_DIR"_s, dataDir}};
    const CliResult ran = runCli({u"run"_s, u"tricky"_s, u"--json"_s}, env);
    QCOMPARE(ran.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(ran.out);
    QVERIFY(run);
    const QString id = run->value(u"id"_s).toString();
    QCOMPARE(id.size(), 36);

    const QString path = QDir(dataDir).filePath(u"history.sqlite3"_s);
    QVERIFY(QFile::setPermissions(path, QFile::ReadOwner));
    QVERIFY(QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::ExeOwner));
    const auto restore = qScopeGuard([&] {
        QFile::setPermissions(dataDir, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner);
    });
    // Root passes every permission check: taskdeck runs without the capabilities for that.
    QStringList wrapper;
    if (::geteuid() == 0) {
        const QString setpriv = QStandardPaths::findExecutable(u"setpriv"_s);
        if (setpriv.isEmpty())
            QSKIP("running as root without setpriv, so permissions cannot be tested");
        const QString dropped = u"-dac_override,-dac_read_search,-fowner"_s;
        wrapper = QStringList{setpriv, u"--bounding-set"_s, dropped, u"--inh-caps"_s, dropped, u"--"_s};
    }

    const CliResult history = runCli({u"history"_s, u"--json"_s}, env, QString(), wrapper);
    QVERIFY2(history.exitCode == 0, qPrintable(history.err));
    const std::optional<QJsonArray> runs = parseArray(history.out);
    QVERIFY2(runs, qPrintable(history.out));
    QCOMPARE(runs->size(), 1);
    QCOMPARE(runs->at(0).toObject().value(u"id"_s).toString(), id);
    // Why it is only read is said, naming what cannot be written.
    QVERIFY2(history.err.contains(dataDir + u" is not writable"_s), qPrintable(history.err));

    const CliResult show = runCli({u"show"_s, id}, env, QString(), wrapper);
    QVERIFY2(show.exitCode == 0, qPrintable(show.err));
    QVERIFY2(show.out.contains(id), qPrintable(show.out));

    // Still refused by a command that would record runs: nothing can be kept.
    const CliResult rerun = runCli({u"rerun"_s, id}, env, QString(), wrapper);
    QCOMPARE(rerun.exitCode, 2);
    QVERIFY2(rerun.err.contains(u"cannot be written"_s), qPrintable(rerun.err));
}

void TestCliHistory::exportCsv()
{
    const QString id = runTask({u"tricky"_s});
    QCOMPARE(id.size(), 36);
    const CliResult csv = runCli({u"export"_s, id, u"--format"_s, u"csv"_s});
    QVERIFY(csv.finished);
    QCOMPARE(csv.exitCode, 0);
    // Quotes inside a quoted field are doubled; records end in CRLF.
    QVERIFY2(csv.rawOut.contains("\"say \"\"hi\"\"\"\r\n"), csv.rawOut.constData());
    QVERIFY2(csv.rawOut.startsWith("n,time,stream,text\r\n"), csv.rawOut.constData());

    const std::optional<QList<QStringList>> records = parseCsv(csv.rawOut);
    QVERIFY2(records, csv.rawOut.constData());
    QCOMPARE(records->size(), 6);
    QCOMPARE(records->at(0), (QStringList{u"n"_s, u"time"_s, u"stream"_s, u"text"_s}));

    // Field for field what the JSON export says about the same lines.
    const CliResult json = runCli({u"export"_s, id});
    const std::optional<QJsonObject> exported = parseObject(json.out);
    QVERIFY(exported);
    const QJsonArray log = exported->value(u"log"_s).toArray();
    QCOMPARE(log.size(), 5);
    QStringList outTexts;
    QStringList errTexts;
    for (qsizetype i = 0; i < log.size(); ++i) {
        const QJsonObject line = log.at(i).toObject();
        const QStringList &record = records->at(i + 1);
        QCOMPARE(record.size(), 4);
        QCOMPARE(record.at(0), QString::number(line.value(u"n"_s).toInteger()));
        QCOMPARE(record.at(1), line.value(u"time"_s).toString());
        QCOMPARE(record.at(2), line.value(u"stream"_s).toString());
        QCOMPARE(record.at(3), line.value(u"text"_s).toString());
        (record.at(2) == u"err" ? errTexts : outTexts).append(record.at(3));
    }
    QCOMPARE(outTexts, TrickyOut);
    QCOMPARE(errTexts, QStringList{TrickyErr});
}

void TestCliHistory::writeErrorsOnStdout_data()
{
    // "ID" stands for the id of a run made first.
    QTest::addColumn<QStringList>("arguments");
    QTest::newRow("log") << QStringList{u"log"_s, u"ID"_s};
    QTest::newRow("history") << QStringList{u"history"_s};
    QTest::newRow("history --json") << QStringList{u"history"_s, u"--json"_s};
    QTest::newRow("show") << QStringList{u"show"_s, u"ID"_s};
    QTest::newRow("export") << QStringList{u"export"_s, u"ID"_s};
    QTest::newRow("run") << QStringList{u"run"_s, u"count"_s, u"--arg"_s, u"n=3"_s};
    QTest::newRow("run --json") << QStringList{u"run"_s, u"greet"_s, u"--arg"_s, u"name=A"_s,
                                               u"--json"_s};
    QTest::newRow("list") << QStringList{u"list"_s};
}

void TestCliHistory::writeErrorsOnStdout()
{
    QFETCH(QStringList, arguments);
    if (!QFileInfo(u"/dev/full"_s).isWritable())
        QSKIP("no /dev/full here");
    const QString id = runTask({u"count"_s, u"--arg"_s, u"n=3"_s});
    QCOMPARE(id.size(), 36);
    arguments.replaceInStrings(u"ID"_s, id);

    // A full disk: what was printed is incomplete, and saying so once is enough.
    const CliResult r = runCli(arguments, {}, u"/dev/full"_s);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QCOMPARE(r.err.count(u"cannot write to stdout"_s), 1);
    QVERIFY2(r.err.contains(u"taskdeck: cannot write to stdout: "_s), qPrintable(r.err));
}

void TestCliHistory::largeIntegersStayExact()
{
    // qint64's largest value passes validation, reaches the command, the history and the
    // JSON output unchanged, and a rerun accepts what the history kept.
    const QString big = u"9223372036854775807"_s;
    const CliResult first = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s,
                                    u"--arg"_s, u"times="_s + big, u"--json"_s});
    QCOMPARE(first.exitCode, 0);
    QVERIFY2(first.err.contains(u"Hello, Ada ("_s + big + u')'), qPrintable(first.err));
    QVERIFY2(first.out.contains(u"\"times\": "_s + big), qPrintable(first.out));
    const std::optional<QJsonObject> run = parseObject(first.out);
    QVERIFY2(run, qPrintable(first.out));

    const CliResult again = runCli({u"rerun"_s, run->value(u"id"_s).toString(), u"--json"_s});
    QCOMPARE(again.exitCode, 0);
    QVERIFY2(again.err.contains(u"Hello, Ada ("_s + big + u')'), qPrintable(again.err));
    const CliResult listed = runCli({u"history"_s, u"--json"_s});
    QCOMPARE(listed.out.count(u"\"times\": "_s + big), 2);
}

void TestCliHistory::rerunRepeatsArguments()
{
    const QString first = runTask({u"greet"_s, u"--arg"_s, u"name=Ada"_s, u"--arg"_s, u"times=3"_s});
    QCOMPARE(first.size(), 36);

    const CliResult again = runCli({u"rerun"_s, first, u"--json"_s});
    QVERIFY(again.finished);
    QCOMPARE(again.exitCode, 0);
    const std::optional<QJsonObject> second = parseObject(again.out);
    QVERIFY2(second, qPrintable(again.out + again.err));
    const QString secondId = second->value(u"id"_s).toString();
    QCOMPARE(secondId.size(), 36);
    QVERIFY(secondId != first);
    QCOMPARE(second->value(u"task"_s).toString(), u"greet"_s);
    QCOMPARE(second->value(u"status"_s).toString(), u"succeeded"_s);
    QVERIFY2(again.err.contains(u"Hello, Ada (3)"_s), qPrintable(again.err));

    const std::optional<QJsonArray> runs = history();
    QVERIFY(runs);
    QCOMPARE(idsOf(*runs), (QStringList{secondId, first}));
    QCOMPARE(runs->at(0).toObject().value(u"args"_s), runs->at(1).toObject().value(u"args"_s));

    // Plain mode streams like run and names the new run; --arg replaces a stored argument.
    const CliResult changed = runCli({u"rerun"_s, first, u"--arg"_s, u"times=4"_s});
    QCOMPARE(changed.exitCode, 0);
    QVERIFY2(nonEmptyLines(changed.out).contains(u"Hello, Ada (4)"_s), qPrintable(changed.out));
    QString thirdId;
    for (const QString &line : nonEmptyLines(changed.err)) {
        if (line.startsWith(u"run "_s))
            thirdId = line.mid(4);
    }
    QCOMPARE(thirdId.size(), 36);
    const std::optional<QJsonArray> after = history();
    QVERIFY(after);
    QCOMPARE(idsOf(*after), (QStringList{thirdId, secondId, first}));
    QCOMPARE(after->at(0).toObject().value(u"args"_s).toObject().value(u"times"_s).toInteger(), 4);

    // A run that fails makes rerun exit like run.
    const QString failing = runTask({u"exec"_s, u"--yes"_s, u"--arg"_s,
                                     u"command=sh -c \"exit 3\""_s}, 1);
    QCOMPARE(failing.size(), 36);
    const CliResult failedAgain = runCli({u"rerun"_s, failing, u"--yes"_s});
    QCOMPARE(failedAgain.exitCode, 1);
    const CliResult unconfirmed = runCli({u"rerun"_s, failing});
    QCOMPARE(unconfirmed.exitCode, 2);
    QVERIFY2(unconfirmed.err.contains(u"--yes"_s), qPrintable(unconfirmed.err));
}

void TestCliHistory::rerunDemandsSecrets()
{
    const QString secret = u"s3cret-value"_s;
    const QString first = runTask({u"secretive"_s, u"--arg"_s, u"token="_s + secret, u"--arg"_s,
                                   u"label=kept"_s});
    QCOMPARE(first.size(), 36);

    // The history never had the secret.
    const CliResult exported = runCli({u"export"_s, first});
    QCOMPARE(exported.exitCode, 0);
    QVERIFY(!exported.out.contains(secret));
    QVERIFY2(exported.out.contains(u"token length 12"_s), qPrintable(exported.out));

    const CliResult refused = runCli({u"rerun"_s, first});
    QVERIFY(refused.finished);
    QCOMPARE(refused.exitCode, 2);
    QVERIFY(refused.out.isEmpty());
    QVERIFY2(refused.err.contains(u"token"_s), qPrintable(refused.err));
    QVERIFY2(refused.err.contains(u"--arg token="_s), qPrintable(refused.err));

    const CliResult refusedJson = runCli({u"rerun"_s, first, u"--json"_s});
    QCOMPARE(refusedJson.exitCode, 2);
    const std::optional<QJsonObject> error = parseObject(refusedJson.out);
    QVERIFY2(error, qPrintable(refusedJson.out));
    const QJsonArray fields = error->value(u"error"_s).toObject().value(u"fields"_s).toArray();
    QCOMPARE(fields.size(), 1);
    QCOMPARE(fields.at(0).toObject().value(u"field"_s).toString(), u"token"_s);

    const std::optional<QJsonArray> refusedRuns = history();
    QVERIFY(refusedRuns);
    QCOMPARE(refusedRuns->size(), 1);

    const CliResult given = runCli({u"rerun"_s, first, u"--arg"_s, u"token=abc"_s, u"--json"_s});
    QCOMPARE(given.exitCode, 0);
    QVERIFY2(given.err.contains(u"label kept, token length 3"_s), qPrintable(given.err));
    const std::optional<QJsonObject> second = parseObject(given.out);
    QVERIFY(second);
    QCOMPARE(second->value(u"args"_s).toObject().value(u"token"_s).toString(), u"********"_s);
}

void TestCliHistory::historyUnavailable_data()
{
    QTest::addColumn<bool>("corrupt");
    QTest::newRow("data directory is a file") << false;
    QTest::newRow("corrupt database") << true;
}

void TestCliHistory::historyUnavailable()
{
    QFETCH(bool, corrupt);
    QString dataDir;
    QString damaged;
    const QByteArray garbage = QByteArray("this is not an SQLite database\n").repeated(200);
    if (corrupt) {
        dataDir = m_data->filePath(u"broken"_s);
        QVERIFY(QDir().mkpath(dataDir));
        damaged = QDir(dataDir).filePath(u"history.sqlite3"_s);
    } else {
        dataDir = m_data->filePath(u"a-file"_s);
        damaged = dataDir;
    }
    {
        QFile file(damaged);
        QVERIFY(file.open(QIODevice::WriteOnly));
        QCOMPARE(file.write(garbage), garbage.size());
    }
    const QMap<QString, QString> env{{u"TASK_DATA_DIR"_s, dataDir}};
    const QString warning = u"taskdeck: history unavailable: "_s;

    // Running goes on without a history, saying so once.
    const CliResult run = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s, u"--json"_s}, env);
    QVERIFY(run.finished);
    QCOMPARE(run.exitCode, 0);
    QVERIFY(parseObject(run.out));
    QCOMPARE(run.err.count(warning), 1);
    QVERIFY2(run.err.contains(QFileInfo(damaged).fileName()), qPrintable(run.err));
    const CliResult plain = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s}, env);
    QCOMPARE(plain.exitCode, 0);
    QVERIFY(nonEmptyLines(plain.out).contains(u"Hello, Ada (1)"_s));
    QVERIFY2(plain.err.contains(warning), qPrintable(plain.err));

    // The history tasks are not offered without a history.
    const CliResult list = runCli({u"list"_s}, env);
    QCOMPARE(list.exitCode, 0);
    QVERIFY(list.out.contains(u"\nexec "_s));
    QVERIFY(!list.out.contains(u"\nbackup "_s));
    QVERIFY(!list.out.contains(u"\npurge-history "_s));

    const QString id = u"00000000-0000-4000-8000-000000000000"_s;
    for (const QStringList &arguments : {QStringList{u"history"_s}, QStringList{u"show"_s, id},
                                         QStringList{u"log"_s, id}, QStringList{u"export"_s, id},
                                         QStringList{u"rerun"_s, id}}) {
        const CliResult r = runCli(arguments, env);
        QVERIFY(r.finished);
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.out.isEmpty());
        QCOMPARE(r.err.count(warning), 1);
    }

    // Nothing was rewritten or removed.
    QFile file(damaged);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(), garbage);
}

void TestCliHistory::concurrentProcesses()
{
    // The history file exists, as after any first use: this is about two processes writing
    // runs at once, not about two creating the file at the same moment.
    QCOMPARE(runCli({u"history"_s}).exitCode, 0);

    // Each run waits until the other has started too, so both write at the same time.
    const QString flags = m_data->path();
    const auto script = [&](const QString &mine, const QString &theirs) {
        return u"command=sh -c 'touch %1/%2; i=0; while [ ! -e %1/%3 ] && [ $i -lt 1200 ]; "
               u"do sleep 0.05; i=$((i+1)); done; seq 1 300; [ -e %1/%3 ]'"_s
            .arg(flags, mine, theirs);
    };
    QProcess first;
    QProcess second;
    const QList<std::pair<QProcess *, QString>> processes = {{&first, script(u"a"_s, u"b"_s)},
                                                             {&second, script(u"b"_s, u"a"_s)}};
    for (const auto &[process, command] : processes) {
        process->setProgram(m_bin);
        process->setArguments({u"run"_s, u"exec"_s, u"--yes"_s, u"--json"_s, u"--arg"_s, command});
        process->setProcessEnvironment(environment());
        process->start();
    }
    QStringList ids;
    for (const auto &[process, command] : processes) {
        QVERIFY(process->waitForFinished(120000));
        const QString err = QString::fromUtf8(process->readAllStandardError());
        QCOMPARE(process->exitCode(), 0);
        const QString out = QString::fromUtf8(process->readAllStandardOutput());
        const std::optional<QJsonObject> run = parseObject(out);
        QVERIFY2(run, qPrintable(err));
        ids.append(run->value(u"id"_s).toString());
    }

    const std::optional<QJsonArray> runs = history();
    QVERIFY(runs);
    QCOMPARE(runs->size(), 2);
    for (const QJsonValue &value : *runs) {
        const QJsonObject run = value.toObject();
        QVERIFY(ids.contains(run.value(u"id"_s).toString()));
        QCOMPARE(run.value(u"status"_s).toString(), u"succeeded"_s);
        QCOMPARE(run.value(u"logLines"_s).toInteger(), 300);
    }
    for (const QString &id : std::as_const(ids)) {
        const CliResult log = runCli({u"log"_s, id});
        QCOMPARE(log.exitCode, 0);
        QCOMPARE(nonEmptyLines(log.out).size(), 300);
    }
}

// Without a shared database only the process that runs a run can cancel it: cancel says which
// process that is, and changes nothing.
void TestCliHistory::cancelNamesTheProcessThatCan()
{
    QProcess running;
    running.setProgram(m_bin);
    running.setArguments({u"run"_s, u"exec"_s, u"--yes"_s, u"--json"_s, u"--arg"_s, u"command=sleep 60"_s});
    running.setProcessEnvironment(environment());
    running.start();
    QVERIFY(running.waitForStarted());
    QString id;
    QTRY_VERIFY_WITH_TIMEOUT(
        [&] {
            const std::optional<QJsonArray> runs = history({u"--status"_s, u"running"_s});
            id = runs && !runs->isEmpty() ? runs->first().toObject().value(u"id"_s).toString() : QString();
            return !id.isEmpty();
        }(),
        60000);
    const CliResult asked = runCli({u"cancel"_s, id});
    QVERIFY(asked.finished);
    QCOMPARE(asked.exitCode, 1);
    QVERIFY2(asked.err.contains(u"runs in process %1 on "_s.arg(running.processId())), qPrintable(asked.err));
    QVERIFY2(asked.err.contains(u"shared database"_s), qPrintable(asked.err));
    QCOMPARE(running.state(), QProcess::Running);
    QCOMPARE(history({u"--status"_s, u"running"_s}).value_or(QJsonArray()).size(), 1);

    // Its own process cancels it (Ctrl+C); then cancel says it has finished.
    ::kill(pid_t(running.processId()), SIGINT);
    QVERIFY(running.waitForFinished(60000));
    const CliResult again = runCli({u"cancel"_s, id});
    QCOMPARE(again.exitCode, 1);
    QVERIFY2(again.err.contains(u"has finished already (canceled)"_s), qPrintable(again.err));
}

void TestCliHistory::interruptedRunRecovered()
{
    const QString mark = u"%1.%2"_s.arg(40).arg(QCoreApplication::applicationPid());
    QProcess process;
    process.setProgram(m_bin);
    process.setArguments({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=sleep "_s + mark});
    process.setProcessEnvironment(environment());
    process.start();
    QVERIFY(process.waitForStarted(30000));

    // Leave nothing behind whatever happens below.
    const auto cleanup = qScopeGuard([&] {
        process.kill();
        process.waitForFinished(30000);
        for (qint64 leftover : processesWithArgument(mark))
            ::kill(static_cast<pid_t>(leftover), SIGKILL);
    });

    QString err;
    QString id;
    const auto idSeen = [&]() {
        err += QString::fromUtf8(process.readAllStandardError());
        for (const QString &line : err.split(u'\n')) {
            if (line.startsWith(u"run "_s) && line.size() == 40)
                id = line.mid(4);
        }
        return !id.isEmpty();
    };
    QTRY_VERIFY_WITH_TIMEOUT(idSeen(), 30000);

    // Wait until another process sees it running: then the history has it as running.
    const auto status = [&]() {
        const std::optional<QJsonObject> run = parseObject(runCli({u"show"_s, id, u"--json"_s}).out);
        return run ? run->value(u"status"_s).toString() : QString();
    };
    QTRY_COMPARE_WITH_TIMEOUT(status(), u"running"_s, 60000);

    // A crash: no chance to record anything.
    process.kill();
    QVERIFY(process.waitForFinished(30000));

    const std::optional<QJsonArray> runs = history();
    QVERIFY(runs);
    QCOMPARE(runs->size(), 1);
    const QJsonObject run = runs->at(0).toObject();
    QCOMPARE(run.value(u"id"_s).toString(), id);
    QCOMPARE(run.value(u"status"_s).toString(), u"interrupted"_s);
    QVERIFY(!run.value(u"error"_s).toObject().value(u"message"_s).toString().isEmpty());
}

void TestCliHistory::anotherPidNamespaceLeavesLiveRunsAlone()
{
    // taskdeck history in another PID namespace (unshare, as root) sees a history whose live
    // run's pid means nothing there: it must not mark the run interrupted.
    QProcess probe;
    probe.start(u"unshare"_s, {u"--pid"_s, u"--fork"_s, u"--mount-proc"_s, u"true"_s});
    if (!probe.waitForFinished(30000) || probe.exitStatus() != QProcess::NormalExit || probe.exitCode() != 0)
        QSKIP("unshare --pid --fork --mount-proc is not permitted here (it needs root)");

    const QString mark = u"301.%1"_s.arg(QCoreApplication::applicationPid());
    QProcess live;
    live.setProgram(m_bin);
    live.setArguments({u"run"_s, u"sleeper"_s, u"--arg"_s, u"seconds="_s + mark});
    live.setProcessEnvironment(environment());
    live.setWorkingDirectory(m_dir.filePath(u"work"_s));
    live.start();
    auto stop = qScopeGuard([&live] {
        ::kill(pid_t(live.processId()), SIGTERM);
        if (!live.waitForFinished(30000)) {
            live.kill();
            live.waitForFinished(30000);
        }
    });
    QVERIFY(live.waitForStarted(30000));
    QTRY_VERIFY_WITH_TIMEOUT(!processesWithArgument(mark).isEmpty(), 30000);
    QString id;
    QTRY_VERIFY_WITH_TIMEOUT((id = idsOf(history({u"--status"_s, u"running"_s}).value_or(QJsonArray())).value(0),
                              !id.isEmpty()), 30000);

    const CliResult inside = runCli({u"history"_s, u"--json"_s}, {}, QString(),
                                    {u"unshare"_s, u"--pid"_s, u"--fork"_s, u"--mount-proc"_s});
    QVERIFY2(inside.finished && inside.exitCode == 0, qPrintable(inside.err));
    const std::optional<QJsonArray> seen = parseArray(inside.out);
    QVERIFY(seen);
    QCOMPARE(seen->first().toObject().value(u"id"_s).toString(), id);
    QCOMPARE(seen->first().toObject().value(u"status"_s).toString(), u"running"_s);
    // And it stays so for this namespace too.
    const std::optional<QJsonArray> after = history();
    QVERIFY(after);
    QCOMPARE(after->first().toObject().value(u"status"_s).toString(), u"running"_s);
    QVERIFY(!processesWithArgument(mark).isEmpty());
}

void TestCliHistory::summaryKeepsMessagesStartingWithTheStatus()
{
    // Runs stored as another front end would store them, with messages of their own.
    {
        QString error;
        auto store = taskdeck::SqliteRunStore::open(m_data->filePath(u"data"_s), &error);
        QVERIFY2(store, qPrintable(error));
        const QDateTime start = QDateTime::currentDateTimeUtc().addSecs(-2);
        auto record = [&](const QString &id, taskdeck::RunStatus status, const QString &message, const QString &kind) {
            taskdeck::Run run;
            run.id = id;
            run.task = u"greet"_s;
            run.status = status;
            run.attempt = 1;
            run.queuedAt = start;
            run.startedAt = start;
            run.finishedAt = start.addSecs(1);
            run.error = {message, kind, QString(), false};
            store->recordFinished(run, {});
        };
        record(u"00000000-0000-4000-8000-000000000001"_s, taskdeck::RunStatus::Failed, u"failed to connect to db"_s, u"Db"_s);
        record(u"00000000-0000-4000-8000-000000000002"_s, taskdeck::RunStatus::Canceled,
               u"canceled: the engine shut down before it started"_s, u"Canceled"_s);
        record(u"00000000-0000-4000-8000-000000000003"_s, taskdeck::RunStatus::TimedOut, u"timed out after 1s"_s, u"Timeout"_s);
        QVERIFY(store->flush(std::chrono::seconds(30)));
    }
    const auto statusLine = [this](const QString &id) {
        const CliResult r = runCli({u"show"_s, id});
        return nonEmptyLines(r.out).filter(u"status:"_s).value(0).section(u':', 1).trimmed();
    };
    QCOMPARE(statusLine(u"00000000-0000-4000-8000-000000000001"_s), u"failed after 1s: failed to connect to db [Db]"_s);
    QCOMPARE(statusLine(u"00000000-0000-4000-8000-000000000002"_s),
             u"canceled after 1s: the engine shut down before it started [Canceled]"_s);
    QCOMPARE(statusLine(u"00000000-0000-4000-8000-000000000003"_s), u"timed out after 1s [Timeout]"_s);
}

void TestCliHistory::logMarksASplitLine()
{
    // A 3,000,000-byte line: three stored lines of at most 1 MiB, the note after them.
    const QString id = runTask({u"longline"_s});
    QCOMPARE(id.size(), 36);
    const CliResult log = runCli({u"log"_s, id});
    QCOMPARE(log.exitCode, 0);
    QStringList lines = log.out.split(u'\n');
    QCOMPARE(lines.takeLast(), QString());
    QCOMPARE(lines.size(), 5);
    QCOMPARE(lines.at(0).size(), 1048576);
    QCOMPARE(lines.at(1).size(), 1048576);
    QCOMPARE(lines.at(2).size(), 3000000 - 2 * 1048576);
    QCOMPARE((lines.at(0) + lines.at(1) + lines.at(2)), QString(3000000, u'a'));
    QCOMPARE(lines.at(3), u"# the last 3 lines of stdout were one line of 3000000 bytes, split at the limit of "
                          "1048576 bytes a line"_s);
    QCOMPARE(lines.at(4), u"after"_s);
}

QTEST_GUILESS_MAIN(TestCliHistory)
void TestCliHistory::retentionPrunesOldRuns()
{
    const QString old = runTask({u"greet"_s, u"--arg"_s, u"name=Old"_s});
    const QString recent = runTask({u"greet"_s, u"--arg"_s, u"name=New"_s});
    QVERIFY(!old.isEmpty() && !recent.isEmpty());
    const RawDb raw(m_data->filePath(u"data/history.sqlite3"_s));
    QVERIFY(raw.isOpen());
    // One run is 40 days old: past the default of 30 days.
    const qint64 past = QDateTime::currentMSecsSinceEpoch() - 40LL * 24 * 3600 * 1000;
    QCOMPARE(raw.run(u"UPDATE runs SET queued_at = ?, started_at = ?, finished_at = ? WHERE id = ?"_s,
                     {past, past, past, old}), QString());
    QCOMPARE(raw.scalar(u"SELECT changes()"_s).toInt(), 1);
    QVERIFY(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id = '%1'"_s.arg(old)).toInt() > 0);
    const auto storedIds = [&] {
        // Retention off for the look itself, so that only the command before it prunes.
        const CliResult listed = runCli({u"history"_s, u"--json"_s}, {{u"TASK_RETENTION_DAYS"_s, u"0"_s}});
        QStringList ids = idsOf(parseArray(listed.out).value_or(QJsonArray()));
        ids.sort();
        return ids;
    };
    QStringList both = {old, recent};
    both.sort();

    // 0 keeps everything, however old.
    QCOMPARE(runCli({u"list"_s}, {{u"TASK_RETENTION_DAYS"_s, u"0"_s}}).exitCode, 0);
    QCOMPARE(storedIds(), both);
    // A limit longer than its age keeps it too.
    QCOMPARE(runCli({u"list"_s}, {{u"TASK_RETENTION_DAYS"_s, u"45"_s}}).exitCode, 0);
    QCOMPARE(storedIds(), both);
    // The default prunes it when any command starts, with its log; the recent run stays.
    QCOMPARE(runCli({u"list"_s}).exitCode, 0);
    QCOMPARE(storedIds(), QStringList{recent});
    QCOMPARE(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id = '%1'"_s.arg(old)).toInt(), 0);
    QVERIFY(raw.scalar(u"SELECT count(*) FROM log_chunks WHERE run_id = '%1'"_s.arg(recent)).toInt() > 0);
    QCOMPARE(runCli({u"show"_s, old}, {{u"TASK_RETENTION_DAYS"_s, u"0"_s}}).exitCode, 2);
}

#include "tst_clihistory.moc"
