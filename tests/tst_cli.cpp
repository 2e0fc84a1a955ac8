// SPDX-License-Identifier: MIT
// The taskdeck command line, run as a real child process ($TASKDECK_BIN).

#include <algorithm>
#include <csignal>
#include <optional>

#include <fcntl.h>
#include <sys/types.h>

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QSet>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include "engineconfig.h"
#include "run.h"

#include "clitestsupport.h"

using namespace Qt::StringLiterals;
using namespace clitest;

namespace {

struct CliResult
{
    bool finished = false;
    int exitCode = -1;
    QString out;
    QString err;
};

QString jsonLine(const QJsonObject &object)
{
    return QString::fromUtf8(QJsonDocument(object).toJson(QJsonDocument::Compact));
}

} // namespace

class TestCli : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void help();
    void version();
    void noArguments();
    void usageErrors_data();
    void usageErrors();
    void configurationErrors_data();
    void configurationErrors();

    void listTable();
    void listJson();

    void tasksFileByFlag();
    void tasksFileByVariable();
    void tasksFileInWorkingDirectory();
    void tasksFileNamedButInvalid();
    void tasksFileNamedButMissing();
    void tasksFileFoundButInvalid();
    void tasksFileClashesWithBuiltin();

    void runChecksumJson();
    void runChecksumPlain();
    void runNamesItsId();
    void unknownTask();
    void invalidArguments();
    void confirmationRequired();
    void failingCommand();
    void stderrLinesMarked();
    void whyAProgramDidNotStart();
    void jsonModeLogsToStderr();
    void timeout();
    void interrupt();
    void interruptTwice();

    void eachMixed();
    void eachJson();
    void eachFromStdin();
    void eachUsageErrors();
    void eachInterrupt();
    void eachManyRuns();
    void eachStreamsFromAPipe();
    void eachInterruptOnAPipe();
    void eachLeavesStdinAsItWas();
    void eachLineTooLong();
    void eachFollowsTheTasksFile();
    void eachInterruptSkipsUnstarted_data();
    void eachInterruptSkipsUnstarted();

    // One rule for text that is not UTF-8, and messages that name the problem.
    void argumentsMustBeUtf8();
    void eachLinesMustBeUtf8();
    void eachNamesJsonThatIsNotAnObject();
    void eachUnreadableFromTheFirstLine();
    void timeoutPastTheMaximum();

private:
    QProcessEnvironment environment(const QMap<QString, QString> &extra = {}) const;
    void startCli(QProcess &process, const QStringList &arguments) const;
    CliResult runCli(const QStringList &arguments, const QByteArray &input = QByteArray(),
                     const QMap<QString, QString> &env = {},
                     const QString &workingDirectory = QString()) const;
    QString writeFile(const QString &name, const QByteArray &data);
    QString marker(int n) const;
    void interruptWhileRunning(QProcess &process, const QString &mark, int signalNumber);

    QString m_bin;
    QTemporaryDir m_dir;
    QString m_dataDir;  // the history every test writes to, never the real one
    QString m_workDir;  // an empty working directory: no taskdeck.yml is found by accident
    QString m_configDir;
};

void TestCli::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    m_bin = qEnvironmentVariable("TASKDECK_BIN");
    QVERIFY2(QFileInfo(m_bin).isExecutable(),
             "set TASKDECK_BIN to the taskdeck binary (ctest does)");
    QVERIFY(m_dir.isValid());
    m_dataDir = m_dir.filePath(u"data"_s);
    m_workDir = m_dir.filePath(u"work"_s);
    m_configDir = m_dir.filePath(u"config"_s);
    QVERIFY(QDir().mkpath(m_workDir));
    QVERIFY(QDir().mkpath(m_configDir));
}

QProcessEnvironment TestCli::environment(const QMap<QString, QString> &extra) const
{
    // The caller's own TASK_* settings must not change what the tests see.
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (const taskdeck::Settings::Option &option : taskdeck::Settings::options())
        env.remove(option.variable);
    env.insert(u"TASK_DATA_DIR"_s, m_dataDir);
    // Nor may a taskdeck.yml in the caller's config directory.
    env.insert(u"XDG_CONFIG_HOME"_s, m_configDir);
    for (auto it = extra.cbegin(); it != extra.cend(); ++it)
        env.insert(it.key(), it.value());
    return env;
}

void TestCli::startCli(QProcess &process, const QStringList &arguments) const
{
    process.setProgram(m_bin);
    process.setArguments(arguments);
    process.setProcessEnvironment(environment());
    process.setWorkingDirectory(m_workDir);
    process.start();
}

CliResult TestCli::runCli(const QStringList &arguments, const QByteArray &input,
                          const QMap<QString, QString> &env,
                          const QString &workingDirectory) const
{
    QProcess process;
    process.setProgram(m_bin);
    process.setArguments(arguments);
    process.setProcessEnvironment(environment(env));
    process.setWorkingDirectory(workingDirectory.isEmpty() ? m_workDir : workingDirectory);
    process.start();
    CliResult result;
    if (!process.waitForStarted(30000))
        return result;
    if (!input.isEmpty())
        process.write(input);
    process.closeWriteChannel();
    result.finished = process.waitForFinished(120000) && process.exitStatus() == QProcess::NormalExit;
    result.exitCode = process.exitCode();
    result.out = QString::fromUtf8(process.readAllStandardOutput());
    result.err = QString::fromUtf8(process.readAllStandardError());
    return result;
}

QString TestCli::writeFile(const QString &name, const QByteArray &data)
{
    const QString path = m_dir.filePath(name);
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(data) != data.size())
        return QString();
    return path;
}

// A sleep duration no other process on the machine is likely to use.
QString TestCli::marker(int n) const
{
    return u"%1.%2"_s.arg(30 + n).arg(QCoreApplication::applicationPid());
}

// Once the command with \a mark runs (which proves the CLI's run started and its handler is
// in place), sends \a signalNumber and checks the CLI ended canceled, taking the command along.
void TestCli::interruptWhileRunning(QProcess &process, const QString &mark, int signalNumber)
{
    QTRY_VERIFY_WITH_TIMEOUT(!processesWithArgument(mark).isEmpty(), 30000);
    QCOMPARE(::kill(static_cast<pid_t>(process.processId()), signalNumber), 0);
    QVERIFY(process.waitForFinished(60000));
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(process.exitCode(), 1);
    QVERIFY2(processesWithArgument(mark).isEmpty(), "the command outlived the run");
}

void TestCli::help()
{
    for (const QString &form : {u"--help"_s, u"-h"_s, u"help"_s}) {
        const CliResult r = runCli({form});
        QVERIFY(r.finished);
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.contains(u"Usage: taskdeck"_s), qPrintable(r.out));
        QVERIFY(r.out.contains(u"list"_s));
        QVERIFY(r.out.contains(u"run KEY"_s));
        QVERIFY(r.out.contains(u"--each"_s));
        for (const QString &command : {u"history ["_s, u"show RUN_ID"_s, u"log RUN_ID"_s,
                                       u"export RUN_ID"_s, u"rerun RUN_ID"_s, u"--status"_s,
                                       u"--format json|csv"_s})
            QVERIFY2(r.out.contains(command), qPrintable(command));
        QVERIFY(r.out.contains(u"Exit codes"_s));
        for (const taskdeck::Settings::Option &option : taskdeck::Settings::options()) {
            QVERIFY2(r.out.contains(option.variable), qPrintable(option.variable));
            QVERIFY2(r.out.contains(option.flag), qPrintable(option.flag));
        }
    }
    // --help wins over whatever else is on the line.
    for (const QStringList &line : {QStringList{u"run"_s, u"nosuchtask"_s, u"--help"_s},
                                    QStringList{u"frobnicate"_s, u"--nope"_s, u"-h"_s}}) {
        const CliResult r = runCli(line);
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains(u"Usage: taskdeck"_s));
    }
}

void TestCli::version()
{
    const CliResult r = runCli({u"--version"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    QVERIFY2(r.out.startsWith(u"taskdeck "_s), qPrintable(r.out));
}

// With no command taskdeck opens the window; with no display it says so and points to the
// command line and to serve, instead of Qt's abort.
void TestCli::noArguments()
{
    const QMap<QString, QString> noDisplay{
        {u"QT_QPA_PLATFORM"_s, QString()}, {u"DISPLAY"_s, QString()}, {u"WAYLAND_DISPLAY"_s, QString()}};
    const CliResult r = runCli({}, QByteArray(), noDisplay);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains(u"no display"_s), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"taskdeck help"_s) && r.err.contains(u"taskdeck serve"_s),
             qPrintable(r.err));
}

void TestCli::usageErrors_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QString>("expected");

    QTest::newRow("unknown command") << QStringList{u"frobnicate"_s} << u"\"frobnicate\""_s;
    QTest::newRow("unknown option") << QStringList{u"--frobnicate"_s} << u"\"--frobnicate\""_s;
    QTest::newRow("unknown list option") << QStringList{u"list"_s, u"--yes"_s} << u"--yes"_s;
    QTest::newRow("run option before command") << QStringList{u"--json"_s, u"list"_s} << u"--json"_s;
    QTest::newRow("run without key") << QStringList{u"run"_s} << u"task key"_s;
    QTest::newRow("extra argument")
        << QStringList{u"run"_s, u"checksum"_s, u"extra"_s} << u"\"extra\""_s;
    QTest::newRow("--arg without value")
        << QStringList{u"run"_s, u"checksum"_s, u"--arg"_s} << u"--arg"_s;
    QTest::newRow("--arg without =")
        << QStringList{u"run"_s, u"checksum"_s, u"--arg"_s, u"file"_s} << u"NAME=VALUE"_s;
    QTest::newRow("--arg with empty name")
        << QStringList{u"run"_s, u"checksum"_s, u"--arg"_s, u"=x"_s} << u"NAME=VALUE"_s;
    QTest::newRow("setting without value")
        << QStringList{u"list"_s, u"--max-concurrent"_s} << u"--max-concurrent"_s;
    QTest::newRow("bad run timeout")
        << QStringList{u"run"_s, u"exec"_s, u"--timeout"_s, u"soon"_s} << u"--timeout"_s;
    QTest::newRow("flag with a value") << QStringList{u"run"_s, u"exec"_s, u"--yes=1"_s}
                                       << u"--yes"_s;
    QTest::newRow("history with an argument")
        << QStringList{u"history"_s, u"exec"_s} << u"\"exec\""_s;
    QTest::newRow("history --status bogus")
        << QStringList{u"history"_s, u"--status"_s, u"bogus"_s}
        << u"queued, running, retrying, succeeded, failed, canceled, timedOut, interrupted"_s;
    QTest::newRow("history --limit 0")
        << QStringList{u"history"_s, u"--limit"_s, u"0"_s} << u"from 1 to 1000"_s;
    QTest::newRow("history --limit 1001")
        << QStringList{u"history"_s, u"--limit=1001"_s} << u"from 1 to 1000"_s;
    QTest::newRow("history --limit x")
        << QStringList{u"history"_s, u"--limit"_s, u"x"_s} << u"--limit"_s;
    QTest::newRow("history --offset -1")
        << QStringList{u"history"_s, u"--offset=-1"_s} << u"--offset"_s;
    QTest::newRow("history --since tomorrowish")
        << QStringList{u"history"_s, u"--since"_s, u"tomorrowish"_s} << u"--since"_s;
    QTest::newRow("history --since hour 25")
        << QStringList{u"history"_s, u"--since"_s, u"2026-11-29T25:00"_s} << u"--since"_s;
    QTest::newRow("history --since 99:99")
        << QStringList{u"history"_s, u"--since"_s, u"2026-11-29T99:99Z"_s} << u"--since"_s;
    QTest::newRow("history --since minute 60")
        << QStringList{u"history"_s, u"--since"_s, u"2026-11-29 10:60"_s} << u"--since"_s;
    QTest::newRow("history --since offset 25 hours")
        << QStringList{u"history"_s, u"--since"_s, u"2026-11-29T10:00+25:00"_s} << u"--since"_s;
    QTest::newRow("history --since trailing junk")
        << QStringList{u"history"_s, u"--since"_s, u"2026-11-29Tnoon"_s} << u"--since"_s;
    QTest::newRow("history --yes") << QStringList{u"history"_s, u"--yes"_s} << u"--yes"_s;
    QTest::newRow("show without id") << QStringList{u"show"_s} << u"run id"_s;
    QTest::newRow("show two ids") << QStringList{u"show"_s, u"a"_s, u"b"_s} << u"\"b\""_s;
    QTest::newRow("log --from 0")
        << QStringList{u"log"_s, u"abc"_s, u"--from"_s, u"0"_s} << u"--from"_s;
    QTest::newRow("export --format xml")
        << QStringList{u"export"_s, u"abc"_s, u"--format"_s, u"xml"_s} << u"json or csv"_s;
    QTest::newRow("rerun without id") << QStringList{u"rerun"_s} << u"run id"_s;
    QTest::newRow("rerun --each")
        << QStringList{u"rerun"_s, u"abc"_s, u"--each"_s, u"-"_s} << u"--each"_s;
    QTest::newRow("history option before command")
        << QStringList{u"--status"_s, u"failed"_s, u"history"_s} << u"after the command"_s;
}

void TestCli::usageErrors()
{
    QFETCH(QStringList, arguments);
    QFETCH(QString, expected);

    const CliResult r = runCli(arguments);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains(expected), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"see taskdeck --help"_s), qPrintable(r.err));
}

void TestCli::configurationErrors_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QString>("variable");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QStringList>("expected");

    QTest::newRow("TASK_TIMEOUT=abc") << QStringList{u"list"_s} << u"TASK_TIMEOUT"_s << u"abc"_s
                                      << QStringList{u"TASK_TIMEOUT"_s, u"\"abc\""_s, u"duration"_s};
    QTest::newRow("TASK_MAX_CONCURRENT=0")
        << QStringList{u"list"_s} << u"TASK_MAX_CONCURRENT"_s << u"0"_s
        << QStringList{u"TASK_MAX_CONCURRENT"_s, u"\"0\""_s};
    QTest::newRow("--max-concurrent 0")
        << QStringList{u"--max-concurrent"_s, u"0"_s, u"list"_s} << QString() << QString()
        << QStringList{u"--max-concurrent"_s, u"\"0\""_s};
    QTest::newRow("--max-concurrent -1 after the command")
        << QStringList{u"list"_s, u"--max-concurrent"_s, u"-1"_s} << QString() << QString()
        << QStringList{u"--max-concurrent"_s, u"\"-1\""_s};
    QTest::newRow("--max-concurrent=-1")
        << QStringList{u"list"_s, u"--max-concurrent=-1"_s} << QString() << QString()
        << QStringList{u"--max-concurrent"_s, u"\"-1\""_s};
    QTest::newRow("flag beats environment")
        << QStringList{u"--timeout"_s, u"never"_s, u"list"_s} << u"TASK_TIMEOUT"_s << u"5m"_s
        << QStringList{u"--timeout"_s, u"\"never\""_s};
}

void TestCli::configurationErrors()
{
    QFETCH(QStringList, arguments);
    QFETCH(QString, variable);
    QFETCH(QString, value);
    QFETCH(QStringList, expected);

    QMap<QString, QString> env;
    if (!variable.isEmpty())
        env.insert(variable, value);
    const CliResult r = runCli(arguments, QByteArray(), env);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.startsWith(u"taskdeck: "_s), qPrintable(r.err));
    for (const QString &text : expected)
        QVERIFY2(r.err.contains(text), qPrintable(r.err));
}

void TestCli::listTable()
{
    const CliResult r = runCli({u"list"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const QStringList lines = nonEmptyLines(r.out);
    // exec, checksum, disk-usage, http-check, backup and purge-history, and the header.
    QCOMPARE(lines.size(), 7);
    for (const QString &column : {u"KEY"_s, u"TITLE"_s, u"CATEGORY"_s, u"TAGS"_s, u"FLAGS"_s,
                                  u"FIELDS"_s})
        QVERIFY2(lines.at(0).contains(column), qPrintable(lines.at(0)));

    const auto row = [&](const QString &key) {
        for (const QString &line : lines) {
            if (line.startsWith(key + u' '))
                return line;
        }
        return QString();
    };
    const QString exec = row(u"exec"_s);
    QVERIFY2(exec.contains(u"Run Command"_s), qPrintable(r.out));
    QVERIFY(exec.contains(u"admin"_s));
    QVERIFY(exec.contains(u"danger"_s));
    QVERIFY(exec.contains(u"command*:text"_s));
    QVERIFY(exec.contains(u"cwd:text"_s));
    const QString checksum = row(u"checksum"_s);
    QVERIFY2(checksum.contains(u"File Checksum"_s), qPrintable(r.out));
    QVERIFY(checksum.contains(u"file,hash"_s));
    QVERIFY(!checksum.contains(u"danger"_s));
    QVERIFY(checksum.contains(u"file*:file"_s));
    QVERIFY(checksum.contains(u"algorithm:select"_s));

    // Aligned: the TITLE column starts at the same offset on every line.
    const qsizetype titleColumn = lines.at(0).indexOf(u"TITLE"_s);
    QCOMPARE(exec.indexOf(u"Run Command"_s), titleColumn);
    QCOMPARE(checksum.indexOf(u"File Checksum"_s), titleColumn);
}

void TestCli::listJson()
{
    const CliResult r = runCli({u"list"_s, u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(r.out.toUtf8(), &error);
    QCOMPARE(error.error, QJsonParseError::NoError);
    QVERIFY(document.isArray());
    QHash<QString, QJsonObject> tasks;
    for (const QJsonValue &value : document.array())
        tasks.insert(value.toObject().value(u"key"_s).toString(), value.toObject());
    QCOMPARE(tasks.size(), 6);
    for (const QString &key : {u"exec"_s, u"checksum"_s, u"disk-usage"_s, u"http-check"_s,
                               u"backup"_s, u"purge-history"_s})
        QVERIFY2(tasks.contains(key), qPrintable(key));
    QCOMPARE(tasks.value(u"checksum"_s).value(u"title"_s).toString(), u"File Checksum"_s);
    const QJsonArray fields = tasks.value(u"checksum"_s).value(u"fields"_s).toArray();
    QCOMPARE(fields.size(), 2);
    QCOMPARE(fields.at(0).toObject().value(u"key"_s).toString(), u"file"_s);
    QCOMPARE(fields.at(1).toObject().value(u"key"_s).toString(), u"algorithm"_s);
    QVERIFY(!tasks.value(u"exec"_s).value(u"danger"_s).toString().isEmpty());
}

namespace {

// A task with a templated argument, and the greeting it prints for "Ada".
const QByteArray GreetingTasks = R"(version: 1
tasks:
  greet:
    title: Greet Someone
    category: examples
    fields:
      - key: name
        type: text
        required: true
    command: ["printf", "Hello, %s!\n", "{{name}}"]
)";
const QString Greeting = u"Hello, Ada!"_s;

// Two mistakes, each at a known line and column.
const QByteArray InvalidTasks = R"(version: 1
tasks:
  greet:
    title: Greet
    fields:
      - key: name
        type: colour
    command: ["echo", "{{name}}"]
  other:
    titel: x
    command: echo
)";

bool listsTask(const QString &listOutput, const QString &key)
{
    const QStringList lines = listOutput.split(u'\n');
    return std::any_of(lines.cbegin(), lines.cend(),
                       [&](const QString &line) { return line.startsWith(key + u' '); });
}

} // namespace

void TestCli::tasksFileByFlag()
{
    const QString path = writeFile(u"flag-tasks.yml"_s, GreetingTasks);
    const CliResult list = runCli({u"--tasks"_s, path, u"list"_s});
    QVERIFY(list.finished);
    QCOMPARE(list.exitCode, 0);
    QVERIFY2(listsTask(list.out, u"greet"_s), qPrintable(list.out));
    QVERIFY2(list.out.contains(u"Greet Someone"_s), qPrintable(list.out));
    QVERIFY2(listsTask(list.out, u"exec"_s), qPrintable(list.out));

    // The flag works after the command as well.
    const CliResult run = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s, u"--tasks"_s,
                                  path});
    QCOMPARE(run.exitCode, 0);
    QVERIFY2(nonEmptyLines(run.out).contains(Greeting), qPrintable(run.out + run.err));
}

void TestCli::tasksFileByVariable()
{
    const QString path = writeFile(u"variable-tasks.yml"_s, GreetingTasks);
    const QMap<QString, QString> env{{u"TASK_FILE"_s, path}};
    const CliResult list = runCli({u"list"_s, u"--json"_s}, QByteArray(), env);
    QCOMPARE(list.exitCode, 0);
    QJsonParseError error;
    const QJsonArray tasks = QJsonDocument::fromJson(list.out.toUtf8(), &error).array();
    QCOMPARE(error.error, QJsonParseError::NoError);
    QCOMPARE(tasks.size(), 7);
    QVERIFY(std::any_of(tasks.cbegin(), tasks.cend(), [](const QJsonValue &task) {
        return task.toObject().value(u"key"_s).toString() == u"greet"_s;
    }));

    const CliResult run = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s, u"--json"_s},
                                 QByteArray(), env);
    QCOMPARE(run.exitCode, 0);
    const std::optional<QJsonObject> finished = parseObject(run.out);
    QVERIFY2(finished, qPrintable(run.out));
    QCOMPARE(finished->value(u"task"_s).toString(), u"greet"_s);
    QVERIFY2(run.err.contains(Greeting), qPrintable(run.err));
}

void TestCli::tasksFileInWorkingDirectory()
{
    const QString directory = m_dir.filePath(u"project"_s);
    QVERIFY(QDir().mkpath(directory));
    QVERIFY(!writeFile(u"project/taskdeck.yml"_s, GreetingTasks).isEmpty());

    const CliResult list = runCli({u"list"_s}, QByteArray(), {}, directory);
    QCOMPARE(list.exitCode, 0);
    QVERIFY2(listsTask(list.out, u"greet"_s), qPrintable(list.out));
    const CliResult run = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s}, QByteArray(),
                                 {}, directory);
    QCOMPARE(run.exitCode, 0);
    QVERIFY2(nonEmptyLines(run.out).contains(Greeting), qPrintable(run.out + run.err));

    // Elsewhere the file is not found.
    const CliResult elsewhere = runCli({u"list"_s});
    QVERIFY(!listsTask(elsewhere.out, u"greet"_s));
}

void TestCli::tasksFileNamedButInvalid()
{
    const QString path = writeFile(u"invalid-tasks.yml"_s, InvalidTasks);
    for (const QStringList &arguments :
         {QStringList{u"--tasks"_s, path, u"list"_s},
          QStringList{u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=true"_s,
                      u"--tasks"_s, path}}) {
        const CliResult r = runCli(arguments);
        QVERIFY(r.finished);
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.out.isEmpty());
        QVERIFY2(r.err.contains(path + u":7:15: "_s), qPrintable(r.err));
        QVERIFY2(r.err.contains(u"colour"_s), qPrintable(r.err));
        QVERIFY2(r.err.contains(path + u":10:5: "_s), qPrintable(r.err));
        QVERIFY2(r.err.contains(u"titel"_s), qPrintable(r.err));
    }

    const CliResult byVariable = runCli({u"list"_s}, QByteArray(), {{u"TASK_FILE"_s, path}});
    QCOMPARE(byVariable.exitCode, 2);
    QVERIFY2(byVariable.err.contains(path + u":7:15: "_s), qPrintable(byVariable.err));
}

void TestCli::tasksFileNamedButMissing()
{
    const QString path = m_dir.filePath(u"no-such-tasks.yml"_s);
    const CliResult r = runCli({u"list"_s, u"--tasks"_s, path});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains(path), qPrintable(r.err));
}

void TestCli::tasksFileFoundButInvalid()
{
    // Nobody asked for this file: its mistakes are reported, the built-ins stay usable.
    const QString directory = m_dir.filePath(u"broken-project"_s);
    QVERIFY(QDir().mkpath(directory));
    const QString path = writeFile(u"broken-project/taskdeck.yml"_s, InvalidTasks);
    QVERIFY(!path.isEmpty());

    const CliResult list = runCli({u"list"_s}, QByteArray(), {}, directory);
    QVERIFY(list.finished);
    QCOMPARE(list.exitCode, 0);
    QVERIFY2(listsTask(list.out, u"exec"_s), qPrintable(list.out));
    QVERIFY(!listsTask(list.out, u"greet"_s));
    QVERIFY2(list.err.contains(u"taskdeck.yml:7:15: "_s), qPrintable(list.err));
    QVERIFY2(list.err.contains(u"taskdeck.yml:10:5: "_s), qPrintable(list.err));

    const CliResult run = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=true"_s},
                                 QByteArray(), {}, directory);
    QCOMPARE(run.exitCode, 0);
    QVERIFY2(run.err.contains(u"taskdeck.yml:7:15: "_s), qPrintable(run.err));

    const CliResult greet = runCli({u"run"_s, u"greet"_s, u"--arg"_s, u"name=Ada"_s},
                                   QByteArray(), {}, directory);
    QCOMPARE(greet.exitCode, 2);
    QVERIFY2(greet.err.contains(u"unknown task \"greet\""_s), qPrintable(greet.err));
}

void TestCli::tasksFileClashesWithBuiltin()
{
    const QString path = writeFile(u"clash-tasks.yml"_s, "tasks:\n  greet:\n    command: echo hi\n"
                                                         "  exec:\n    command: echo mine\n");
    const CliResult r = runCli({u"list"_s, u"--tasks"_s, path});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains(path + u":4:3: "_s), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"\"exec\""_s), qPrintable(r.err));
}

void TestCli::runChecksumJson()
{
    const QString path = writeFile(u"abc.txt"_s, "abc");
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--arg"_s, u"file="_s + path,
                                u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(r.out);
    QVERIFY2(run, qPrintable(r.out));
    QCOMPARE(run->value(u"status"_s).toString(), u"succeeded"_s);
    QCOMPARE(run->value(u"task"_s).toString(), u"checksum"_s);
    const QJsonObject result = run->value(u"result"_s).toObject();
    QCOMPARE(result.value(u"digest"_s).toString(),
             u"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"_s);
    QCOMPARE(result.value(u"algorithm"_s).toString(), u"sha256"_s);
    QCOMPARE(result.value(u"size"_s).toInteger(), 3);
    QVERIFY(run->value(u"durationMs"_s).isDouble());
    QVERIFY(run->value(u"durationMs"_s).toInteger(-1) >= 0);
    QVERIFY2(r.err.contains(u"succeeded"_s), qPrintable(r.err));
}

void TestCli::runChecksumPlain()
{
    const QString path = writeFile(u"plain.txt"_s, "abc");
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--arg"_s, u"file="_s + path,
                                u"--arg"_s, u"algorithm=md5"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    // The result, and nothing but it, on stdout.
    const std::optional<QJsonObject> result = parseObject(r.out);
    QVERIFY2(result, qPrintable(r.out));
    QCOMPARE(result->value(u"digest"_s).toString(), u"900150983cd24fb0d6963f7d28e17f72"_s);
    QVERIFY2(r.err.contains(u"succeeded in "_s), qPrintable(r.err));
    // Not a terminal: progress comes as plain lines.
    QVERIFY2(r.err.contains(u"progress: 100% hashing plain.txt"_s), qPrintable(r.err));
    QVERIFY(!r.err.contains(u'\r'));
}

void TestCli::runNamesItsId()
{
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=true"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    QString id;
    for (const QString &line : nonEmptyLines(r.err)) {
        if (line.startsWith(u"run "_s))
            id = line.mid(4);
    }
    QCOMPARE(id.size(), 36);

    // The id is the one the history knows.
    const CliResult shown = runCli({u"show"_s, id, u"--json"_s});
    QCOMPARE(shown.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(shown.out);
    QVERIFY2(run, qPrintable(shown.out + shown.err));
    QCOMPARE(run->value(u"id"_s).toString(), id);
    QCOMPARE(run->value(u"status"_s).toString(), u"succeeded"_s);
}

void TestCli::unknownTask()
{
    const CliResult r = runCli({u"run"_s, u"chksum"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains(u"unknown task \"chksum\""_s), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"did you mean: checksum?"_s), qPrintable(r.err));

    const CliResult json = runCli({u"run"_s, u"chksum"_s, u"--json"_s});
    QCOMPARE(json.exitCode, 2);
    const std::optional<QJsonObject> error = parseObject(json.out);
    QVERIFY2(error, qPrintable(json.out));
    QCOMPARE(error->value(u"error"_s).toObject().value(u"kind"_s).toString(), u"UnknownTask"_s);
}

void TestCli::invalidArguments()
{
    // No file at all and an algorithm that does not exist: both reported, one per line.
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--arg"_s, u"algorithm=crc32"_s,
                                u"--arg"_s, u"colour=blue"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    const QStringList lines = r.err.split(u'\n');
    const auto hasLine = [&](const QString &prefix) {
        return std::any_of(lines.cbegin(), lines.cend(),
                           [&](const QString &line) { return line.startsWith(prefix); });
    };
    QVERIFY2(hasLine(u"  file: "_s), qPrintable(r.err));
    QVERIFY2(hasLine(u"  algorithm: "_s), qPrintable(r.err));
    QVERIFY2(hasLine(u"  colour: "_s), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"crc32"_s), qPrintable(r.err));

    const CliResult missing = runCli({u"run"_s, u"checksum"_s, u"--arg"_s,
                                      u"file="_s + m_dir.filePath(u"absent"_s)});
    QCOMPARE(missing.exitCode, 2);
    QVERIFY2(missing.err.contains(u"  file: "_s), qPrintable(missing.err));
}

void TestCli::confirmationRequired()
{
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--arg"_s, u"command=true"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.err.contains(u"Runs any command on this machine"_s), qPrintable(r.err));
    QVERIFY2(r.err.contains(u"re-run with --yes to confirm"_s), qPrintable(r.err));

    const CliResult confirmed = runCli({u"run"_s, u"exec"_s, u"-y"_s, u"--arg"_s, u"command=true"_s});
    QCOMPARE(confirmed.exitCode, 0);
}

void TestCli::failingCommand()
{
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s,
                                u"command=sh -c \"exit 3\""_s, u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    const std::optional<QJsonObject> run = parseObject(r.out);
    QVERIFY2(run, qPrintable(r.out));
    QCOMPARE(run->value(u"status"_s).toString(), u"failed"_s);
    const QJsonObject error = run->value(u"error"_s).toObject();
    QVERIFY2(error.value(u"message"_s).toString().contains(u'3'), qPrintable(r.out));
    QVERIFY2(r.err.contains(u"failed after "_s), qPrintable(r.err));

    // Plain mode: no result on stdout, the error on stderr.
    const CliResult plain = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s,
                                    u"command=sh -c \"exit 3\""_s});
    QCOMPARE(plain.exitCode, 1);
    QVERIFY(plain.out.isEmpty());
    QVERIFY2(plain.err.contains(u"failed after "_s), qPrintable(plain.err));
    QVERIFY2(plain.err.contains(u"[ExitCode]"_s), qPrintable(plain.err));
}

void TestCli::whyAProgramDidNotStart()
{
    // An environment variable longer than the kernel takes (128 KiB): exec fails with E2BIG.
    const QByteArray blob(200000, 'a');
    const QString path = writeFile(u"toolong.yml"_s,
                                   "tasks:\n"
                                   "  toolong:\n"
                                   "    fields:\n"
                                   "      - key: blob\n"
                                   "        default: " + blob + "\n"
                                   "    shell: 'echo \"$TASK_ARG_BLOB\" | wc -c'\n");
    QVERIFY(!path.isEmpty());
    const QString reason = u"Argument list too long"_s;
    const CliResult run = runCli({u"--tasks"_s, path, u"run"_s, u"toolong"_s});
    QVERIFY(run.finished);
    QCOMPARE(run.exitCode, 1);
    QVERIFY2(run.err.contains(reason), qPrintable(run.err.left(2000)));
    QVERIFY2(run.err.contains(u"[StartFailed]"_s), qPrintable(run.err.left(2000)));

    const CliResult each = runCli({u"--tasks"_s, path, u"run"_s, u"toolong"_s, u"--each"_s, u"-"_s}, "{}\n");
    QVERIFY(each.finished);
    QCOMPARE(each.exitCode, 1);
    QVERIFY2(each.out.contains(u"[line 1] failed after "_s), qPrintable(each.out.left(2000)));
    const QStringList lines = each.out.split(u'\n');
    const auto mentions = [&](const QString &prefix) {
        return std::any_of(lines.cbegin(), lines.cend(), [&](const QString &line) {
            return line.trimmed().startsWith(prefix) && line.contains(reason);
        });
    };
    QVERIFY2(mentions(u"[line 1]"_s), qPrintable(each.out.left(2000)));
    QVERIFY2(mentions(u"line 1:"_s), qPrintable(each.out.left(2000)));
}

void TestCli::stderrLinesMarked()
{
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s,
                                u"command=sh -c \"echo first; echo oops >&2; echo last\""_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const QStringList lines = nonEmptyLines(r.out);
    QVERIFY2(lines.contains(u"first"_s), qPrintable(r.out));
    QVERIFY2(lines.contains(u"! oops"_s), qPrintable(r.out));
    QVERIFY2(lines.contains(u"last"_s), qPrintable(r.out));
    // Not a terminal: no colour codes.
    QVERIFY(!r.out.contains(u'\x1b'));
}

void TestCli::jsonModeLogsToStderr()
{
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--json"_s, u"--arg"_s,
                                u"command=sh -c \"echo first; echo oops >&2\""_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(r.out);
    QVERIFY2(run, qPrintable(r.out));
    QCOMPARE(run->value(u"status"_s).toString(), u"succeeded"_s);
    const QStringList errLines = r.err.split(u'\n');
    QVERIFY2(errLines.contains(u"first"_s), qPrintable(r.err));
    QVERIFY2(errLines.contains(u"! oops"_s), qPrintable(r.err));
}

void TestCli::timeout()
{
    const QString mark = marker(1);
    const CliResult r = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s,
                                u"command=sleep "_s + mark, u"--timeout"_s, u"1s"_s, u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    const std::optional<QJsonObject> run = parseObject(r.out);
    QVERIFY2(run, qPrintable(r.out));
    QCOMPARE(run->value(u"status"_s).toString(), taskdeck::runStatusName(taskdeck::RunStatus::TimedOut));
    QCOMPARE(run->value(u"status"_s).toString(), u"timedOut"_s);
    QVERIFY(processesWithArgument(mark).isEmpty());
}

void TestCli::interrupt()
{
    const QString mark = marker(2);
    QProcess process;
    startCli(process, {u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s, u"command=sleep "_s + mark,
                       u"--json"_s});
    QVERIFY(process.waitForStarted(30000));
    interruptWhileRunning(process, mark, SIGINT);
    if (QTest::currentTestFailed())
        return;
    const QString out = QString::fromUtf8(process.readAllStandardOutput());
    const QString err = QString::fromUtf8(process.readAllStandardError());
    const std::optional<QJsonObject> run = parseObject(out);
    QVERIFY2(run, qPrintable(out));
    QCOMPARE(run->value(u"status"_s).toString(), u"canceled"_s);
    QVERIFY2(err.contains(u"canceling..."_s), qPrintable(err));
}

void TestCli::interruptTwice()
{
    // The command ignores SIGTERM, so the first interrupt leaves it running for the kill grace
    // period; the second must not wait for that.
    const QString mark = marker(3);
    QProcess process;
    startCli(process, {u"run"_s, u"exec"_s, u"--yes"_s, u"--arg"_s,
                       u"command=sh -c 'trap \"\" TERM; sleep "_s + mark + u"'"_s});
    QVERIFY(process.waitForStarted(30000));
    QTRY_VERIFY_WITH_TIMEOUT(!processesWithArgument(mark).isEmpty(), 30000);

    const auto pid = static_cast<pid_t>(process.processId());
    QCOMPARE(::kill(pid, SIGINT), 0);
    QByteArray err;
    QTRY_VERIFY_WITH_TIMEOUT((err += process.readAllStandardError()).contains("canceling"), 30000);
    QCOMPARE(::kill(pid, SIGINT), 0);
    QVERIFY(process.waitForFinished(60000));
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    const int code = process.exitCode();

    // The command that ignored SIGTERM went down with the CLI (SIGKILL is delivered apart
    // from the exit, hence the wait).
    bool gone = processesWithArgument(mark).isEmpty();
    for (int i = 0; i < 300 && !gone; ++i) {
        QTest::qWait(100);
        gone = processesWithArgument(mark).isEmpty();
    }
    // Leave nothing behind whatever happened above.
    for (qint64 leftover : processesWithArgument(mark))
        ::kill(static_cast<pid_t>(leftover), SIGKILL);
    QCOMPARE(code, 130);
    QVERIFY2(gone, "the command outlived the CLI");

    // The run is recorded as canceled before the CLI quits, not left running for the next
    // process to call interrupted.
    err += process.readAllStandardError();
    const QRegularExpression started(u"^run ([0-9a-f-]{36})$"_s, QRegularExpression::MultilineOption);
    const QString id = started.match(QString::fromUtf8(err)).captured(1);
    QVERIFY2(!id.isEmpty(), err.constData());
    QVERIFY2(err.contains("recorded 1 run as canceled"), err.constData());
    const CliResult shown = runCli({u"show"_s, id, u"--json"_s});
    QCOMPARE(shown.exitCode, 0);
    const std::optional<QJsonObject> run = parseObject(shown.out);
    QVERIFY2(run, qPrintable(shown.out));
    // Canceled either way: by the record made before quitting ("interrupted twice"), or by
    // the engine's own finish of the run once its command was killed, whichever the history
    // committed last (both are final states; neither is left running).
    QCOMPARE(run->value(u"status"_s).toString(), u"canceled"_s);
    const QString message = run->value(u"error"_s).toObject().value(u"message"_s).toString();
    QVERIFY2(message.contains(u"interrupted twice"_s) || message == u"canceled"_s, qPrintable(shown.out));
}

void TestCli::eachMixed()
{
    const QString a = writeFile(u"each-a.txt"_s, "abc");
    const QString b = writeFile(u"each-b.txt"_s, "");
    const QStringList lines = {
        jsonLine({{u"file"_s, a}}),
        jsonLine({{u"file"_s, b}, {u"algorithm"_s, u"md5"_s}}),
        QString(),
        u"this is not json"_s,
        jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"sha1"_s}}),
        jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"crc32"_s}}),
    };
    const QString input = writeFile(u"each-mixed.jsonl"_s, lines.join(u'\n').toUtf8() + '\n');

    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.out.contains(u"succeeded 3, invalid 2"_s), qPrintable(r.out));
    for (const QString &expected : {u"[line 1] succeeded"_s, u"[line 2] succeeded"_s,
                                    u"[line 5] succeeded"_s, u"[line 4] invalid"_s,
                                    u"[line 6] invalid"_s, u"line 4: invalid"_s,
                                    u"line 6: invalid"_s, u"crc32"_s,
                                    u"input: \"this is not json\""_s})
        QVERIFY2(r.out.contains(expected), qPrintable(expected + u"\n---\n"_s + r.out));
    QVERIFY(!r.out.contains(u"line 3"_s));
    // Each run names its id, to be found in the history.
    const QStringList lines1 = nonEmptyLines(r.out).filter(u"[line 1] succeeded"_s);
    QCOMPARE(lines1.size(), 1);
    QVERIFY2(lines1.constFirst().contains(QRegularExpression(u"\\(run [0-9a-f-]{36}\\)$"_s)),
             qPrintable(lines1.constFirst()));
}

void TestCli::eachJson()
{
    const QString a = writeFile(u"json-a.txt"_s, "abc");
    const QStringList lines = {
        jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"md5"_s}}),
        jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"sha1"_s}}),
        u"[1, 2]"_s,
        jsonLine({{u"algorithm"_s, u"sha256"_s}}),
        jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"sha256"_s}}),
    };
    const QString input = writeFile(u"each-json.jsonl"_s, lines.join(u'\n').toUtf8());

    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input, u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    const QStringList outLines = nonEmptyLines(r.out);
    QCOMPARE(outLines.size(), 5);
    const QHash<int, QString> digests = {
        {1, u"900150983cd24fb0d6963f7d28e17f72"_s},
        {2, u"a9993e364706816aba3e25717850c26c9cd0d89d"_s},
        {5, u"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"_s},
    };
    QSet<int> seen;
    for (const QString &line : outLines) {
        const std::optional<QJsonObject> object = parseObject(line);
        QVERIFY2(object, qPrintable(line));
        const int n = object->value(u"line"_s).toInt();
        QVERIFY2(!seen.contains(n), qPrintable(line));
        seen.insert(n);
        if (digests.contains(n)) {
            QCOMPARE(object->value(u"status"_s).toString(), u"succeeded"_s);
            QCOMPARE(object->value(u"result"_s).toObject().value(u"digest"_s).toString(),
                     digests.value(n));
        } else {
            QCOMPARE(object->value(u"status"_s).toString(), u"invalid"_s);
            QVERIFY(object->contains(u"input"_s));
            QVERIFY(!object->value(u"error"_s).toObject().value(u"message"_s).toString().isEmpty());
        }
    }
    QCOMPARE(seen, QSet<int>({1, 2, 3, 4, 5}));
    QVERIFY2(r.err.contains(u"succeeded 3, invalid 2"_s), qPrintable(r.err));
}

void TestCli::eachFromStdin()
{
    const QString a = writeFile(u"stdin-a.txt"_s, "abc");
    const QByteArray input = (jsonLine({{u"file"_s, a}}) + u'\n'
                              + jsonLine({{u"algorithm"_s, u"md5"_s}}) + u'\n').toUtf8();
    // --arg values are the base every line adds to.
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--arg"_s, u"file="_s + a,
                                u"--each"_s, u"-"_s, u"--json"_s},
                               input);
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const QStringList outLines = nonEmptyLines(r.out);
    QCOMPARE(outLines.size(), 2);
    for (const QString &line : outLines) {
        const std::optional<QJsonObject> object = parseObject(line);
        QVERIFY2(object, qPrintable(line));
        QCOMPARE(object->value(u"status"_s).toString(), u"succeeded"_s);
    }
    QVERIFY2(r.err.contains(u"succeeded 2"_s), qPrintable(r.err));
}

void TestCli::argumentsMustBeUtf8()
{
    // QProcess would encode a QString argument as UTF-8: the bytes go through a shell.
    const QString a = writeFile(u"utf8-a.txt"_s, "abc");
    QProcess process;
    process.setProgram(u"sh"_s);
    process.setArguments({u"-c"_s, u"exec \"$0\" run checksum --arg \"$(printf 'file=caf\\351.txt')\""_s, m_bin});
    process.setProcessEnvironment(environment());
    process.setWorkingDirectory(m_workDir);
    process.start();
    QVERIFY(process.waitForFinished(60000));
    QCOMPARE(process.exitCode(), 2);
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QCOMPARE(err, u"taskdeck: argument 4 (file=caf\\xE9.txt) is not valid UTF-8: byte 0xE9 at offset 8; "
                  "Taskdeck takes arguments as UTF-8 text only and never changes them (a file whose name is "
                  "not UTF-8 can be renamed, with convmv for instance)\n"_s);
    QCOMPARE(process.readAllStandardOutput(), QByteArray());

    // The same argument as UTF-8 is taken as it is.
    const CliResult ok = runCli({u"run"_s, u"checksum"_s, u"--arg"_s, u"file="_s + a});
    QCOMPARE(ok.exitCode, 0);
}

void TestCli::eachLinesMustBeUtf8()
{
    const QString a = writeFile(u"each-utf8-a.txt"_s, "abc");
    QByteArray text = jsonLine({{u"file"_s, a}}).toUtf8() + '\n';
    text += "{\"file\": \"caf\xE9.txt\"}\n";
    const QString input = writeFile(u"each-latin1.jsonl"_s, text);
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.out.contains(u"[line 1] succeeded"_s), qPrintable(r.out));
    QVERIFY2(r.out.contains(u"[line 2] invalid: not valid UTF-8 (byte 0xE9 at offset 13); input lines must be UTF-8 text"_s),
             qPrintable(r.out));
    QVERIFY2(r.out.contains(u"succeeded 1, invalid 1"_s), qPrintable(r.out));
}

void TestCli::eachNamesJsonThatIsNotAnObject()
{
    const QString input = writeFile(u"each-scalars.jsonl"_s, "42\nnull\n\"str\"\ntrue\n[1]\n{\"a\": 1\n");
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    for (const QString &expected : {u"[line 1] invalid: expected a JSON object of arguments, got a number"_s,
                                    u"[line 2] invalid: expected a JSON object of arguments, got null"_s,
                                    u"[line 3] invalid: expected a JSON object of arguments, got a string"_s,
                                    u"[line 4] invalid: expected a JSON object of arguments, got true"_s,
                                    u"[line 5] invalid: expected a JSON object of arguments, got an array"_s,
                                    u"[line 6] invalid: not valid JSON"_s})
        QVERIFY2(r.out.contains(expected), qPrintable(expected + u"\n---\n"_s + r.out));
}

void TestCli::eachUnreadableFromTheFirstLine()
{
    // The first line is past the limit: nothing ran, and the summary says why, not "no input
    // lines".
    const QString input = writeFile(u"each-long-first.jsonl"_s,
                                    "{\"file\": \"" + QByteArray(9 * 1024 * 1024, 'x') + "\"}\n");
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(!r.out.contains(u"no input lines"_s), qPrintable(r.out));
    QVERIFY2(r.out.contains(u"no lines run: line 1 is longer than 8 MiB"_s), qPrintable(r.out));
}

void TestCli::timeoutPastTheMaximum()
{
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--timeout"_s, u"99999999999d"_s});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains(u"invalid value \"99999999999d\" for --timeout: expected a duration of at most "
                            "277777h 46m 40s"_s), qPrintable(r.err));
    const CliResult env = runCli({u"list"_s}, {}, {{u"TASK_TIMEOUT"_s, u"2000000000"_s}});
    QCOMPARE(env.exitCode, 2);
    QVERIFY2(env.err.contains(u"TASK_TIMEOUT=\"2000000000\" is invalid: expected a duration of at most 277777h 46m 40s"_s),
             qPrintable(env.err));
}

void TestCli::eachUsageErrors()
{
    const CliResult unreadable = runCli({u"run"_s, u"checksum"_s, u"--each"_s,
                                         m_dir.filePath(u"no-such-input"_s)});
    QVERIFY(unreadable.finished);
    QCOMPARE(unreadable.exitCode, 2);
    QVERIFY2(unreadable.err.contains(u"no-such-input"_s), qPrintable(unreadable.err));

    const QString input = writeFile(u"each-unknown.jsonl"_s, "{}\n");
    const CliResult unknown = runCli({u"run"_s, u"chksum"_s, u"--each"_s, input});
    QCOMPARE(unknown.exitCode, 2);
    QVERIFY2(unknown.err.contains(u"did you mean: checksum?"_s), qPrintable(unknown.err));

    const QString commands = writeFile(u"each-exec.jsonl"_s, "{\"command\":\"true\"}\n");
    const CliResult unconfirmed = runCli({u"run"_s, u"exec"_s, u"--each"_s, commands});
    QCOMPARE(unconfirmed.exitCode, 2);
    QVERIFY2(unconfirmed.err.contains(u"--yes"_s), qPrintable(unconfirmed.err));
    const CliResult confirmed = runCli({u"run"_s, u"exec"_s, u"--yes"_s, u"--each"_s, commands});
    QCOMPARE(confirmed.exitCode, 0);
}

void TestCli::eachInterrupt()
{
    // One run at a time: the first is running, the others queued; an interrupt ends all three.
    const QString mark = marker(4);
    const QByteArray line = jsonLine({{u"command"_s, QString(u"sleep "_s + mark)}}).toUtf8() + '\n';
    const QString input = writeFile(u"each-sleep.jsonl"_s, line + line + line);
    QProcess process;
    startCli(process, {u"--max-concurrent"_s, u"1"_s, u"run"_s, u"exec"_s, u"--yes"_s,
                       u"--each"_s, input, u"--json"_s});
    QVERIFY(process.waitForStarted(30000));
    interruptWhileRunning(process, mark, SIGINT);
    if (QTest::currentTestFailed())
        return;
    const QStringList outLines = nonEmptyLines(QString::fromUtf8(process.readAllStandardOutput()));
    QCOMPARE(outLines.size(), 3);
    for (const QString &text : outLines) {
        const std::optional<QJsonObject> object = parseObject(text);
        QVERIFY2(object, qPrintable(text));
        QCOMPARE(object->value(u"status"_s).toString(), u"canceled"_s);
    }
}

void TestCli::eachManyRuns()
{
    // More inputs than run --each keeps in the engine at once: each is started as earlier
    // ones end, and every one is reported once.
    constexpr int kLines = 3000;
    const QString a = writeFile(u"many-a.txt"_s, "abc");
    QByteArray text;
    for (int i = 0; i < kLines; ++i)
        text += jsonLine({{u"file"_s, a}, {u"algorithm"_s, i % 2 ? u"md5"_s : u"sha1"_s}}).toUtf8() + '\n';
    const QString input = writeFile(u"each-many.jsonl"_s, text);

    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input, u"--json"_s});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 0);
    const QStringList outLines = nonEmptyLines(r.out);
    QCOMPARE(outLines.size(), kLines);
    QSet<int> seen;
    for (const QString &line : outLines) {
        const std::optional<QJsonObject> object = parseObject(line);
        QVERIFY2(object, qPrintable(line));
        const int n = object->value(u"line"_s).toInt();
        QVERIFY2(n >= 1 && n <= kLines && !seen.contains(n), qPrintable(line));
        seen.insert(n);
        QCOMPARE(object->value(u"status"_s).toString(), u"succeeded"_s);
        QCOMPARE(object->value(u"result"_s).toObject().value(u"digest"_s).toString(),
                 n % 2 == 0 ? u"900150983cd24fb0d6963f7d28e17f72"_s
                            : u"a9993e364706816aba3e25717850c26c9cd0d89d"_s);
    }
    QVERIFY2(r.err.contains(u"succeeded %1"_s.arg(kLines)), qPrintable(r.err));
}

void TestCli::eachStreamsFromAPipe()
{
    // Lines from a pipe run as they arrive: the first result comes while the pipe is open.
    const QString a = writeFile(u"pipe-a.txt"_s, "abc");
    QProcess process;
    startCli(process, {u"run"_s, u"checksum"_s, u"--each"_s, u"-"_s, u"--json"_s});
    QVERIFY(process.waitForStarted(30000));
    QByteArray out;
    auto outLines = [&]() {
        out += process.readAllStandardOutput();
        return nonEmptyLines(QString::fromUtf8(out));
    };
    process.write(jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"md5"_s}}).toUtf8() + '\n');
    QTRY_COMPARE_WITH_TIMEOUT(outLines().size(), 1, 30000);
    const std::optional<QJsonObject> first = parseObject(outLines().constFirst());
    QVERIFY(first);
    QCOMPARE(first->value(u"line"_s).toInt(), 1);
    QCOMPARE(first->value(u"result"_s).toObject().value(u"digest"_s).toString(), u"900150983cd24fb0d6963f7d28e17f72"_s);
    QCOMPARE(process.state(), QProcess::Running);

    // A line that arrives in pieces, and a last one without a line break.
    const QByteArray second = jsonLine({{u"file"_s, a}, {u"algorithm"_s, u"sha1"_s}}).toUtf8();
    process.write(second.left(10));
    QVERIFY(process.waitForBytesWritten(30000));
    process.write(second.mid(10) + "\n\n   \n");
    QTRY_COMPARE_WITH_TIMEOUT(outLines().size(), 2, 30000);
    process.write("[1]\n" + jsonLine({{u"file"_s, a}}).toUtf8());
    process.closeWriteChannel();
    QVERIFY(process.waitForFinished(30000));
    QCOMPARE(process.exitCode(), 1);
    const QStringList lines = outLines();
    QCOMPARE(lines.size(), 4);
    QHash<int, QString> status;
    for (const QString &line : lines) {
        const std::optional<QJsonObject> object = parseObject(line);
        QVERIFY2(object, qPrintable(line));
        status.insert(object->value(u"line"_s).toInt(), object->value(u"status"_s).toString());
    }
    QCOMPARE(status, (QHash<int, QString>{{1, u"succeeded"_s}, {2, u"succeeded"_s},
                                           {5, u"invalid"_s}, {6, u"succeeded"_s}}));
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QVERIFY2(err.contains(u"succeeded 3, invalid 1"_s), qPrintable(err));
}

void TestCli::eachInterruptOnAPipe()
{
    // An interrupt (SIGTERM here; SIGINT in the tests above) stops reading a pipe: the run
    // in flight is canceled, and the command says where it stopped, so that the rest can be
    // given again.
    const QString mark = marker(6);
    QProcess process;
    startCli(process, {u"run"_s, u"exec"_s, u"--yes"_s, u"--each"_s, u"-"_s});
    QVERIFY(process.waitForStarted(30000));
    process.write(jsonLine({{u"command"_s, QString(u"sleep "_s + mark)}}).toUtf8() + '\n');
    interruptWhileRunning(process, mark, SIGTERM);
    if (QTest::currentTestFailed())
        return;
    const QString out = QString::fromUtf8(process.readAllStandardOutput());
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QVERIFY2(out.contains(u"[line 1] canceled"_s), qPrintable(out));
    QVERIFY2(out.contains(u"canceled 1"_s), qPrintable(out));
    QVERIFY2(err.contains(u"stopped reading --each input - after line 1"_s), qPrintable(err));
}

void TestCli::eachLeavesStdinAsItWas()
{
    // Standard input is shared with whoever started taskdeck (a terminal's shell): reading it
    // must not leave it changed, non-blocking above all, for the next program that reads it.
    const QString a = writeFile(u"stdin-flags.txt"_s, "abc");
    QProcess process;
    process.setProgram(u"/bin/sh"_s);
    process.setArguments({u"-c"_s, u"\"$1\" run checksum --each - > /dev/null && cat /proc/self/fdinfo/0"_s,
                          u"sh"_s, m_bin});
    process.setProcessEnvironment(environment());
    process.setWorkingDirectory(m_workDir);
    process.start();
    QVERIFY(process.waitForStarted(30000));
    process.write(jsonLine({{u"file"_s, a}}).toUtf8() + '\n');
    process.closeWriteChannel();
    QVERIFY(process.waitForFinished(30000));
    QCOMPARE(process.exitCode(), 0);
    const QString info = QString::fromUtf8(process.readAllStandardOutput());
    const QRegularExpressionMatch flags = QRegularExpression(u"^flags:\\s*([0-7]+)$"_s, QRegularExpression::MultilineOption)
                                              .match(info);
    QVERIFY2(flags.hasMatch(), qPrintable(info));
    bool ok = false;
    const int value = flags.captured(1).toInt(&ok, 8);
    QVERIFY(ok);
    QCOMPARE(value & O_NONBLOCK, 0);
}

void TestCli::eachLineTooLong()
{
    // A line past the limit ends the input with an error naming it; what came before runs.
    const QString a = writeFile(u"long-a.txt"_s, "abc");
    QByteArray text = jsonLine({{u"file"_s, a}}).toUtf8() + "\n\n";
    text += "{\"file\": \"" + QByteArray(9 * 1024 * 1024, 'x') + "\"}\n";
    text += jsonLine({{u"file"_s, a}}).toUtf8() + '\n';
    const QString input = writeFile(u"each-long-line.jsonl"_s, text);
    const CliResult r = runCli({u"run"_s, u"checksum"_s, u"--each"_s, input});
    QVERIFY(r.finished);
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.out.contains(u"[line 1] succeeded"_s), qPrintable(r.out));
    QVERIFY2(!r.out.contains(u"[line 4]"_s), qPrintable(r.out));
    QVERIFY2(r.err.contains(u"cannot read --each input %1: line 3 is longer than 8 MiB; the input after it was not read"_s.arg(input)),
             qPrintable(r.err));
}

void TestCli::eachFollowsTheTasksFile()
{
    // While run --each reads a pipe, a saved tasks file applies to the lines after it; a
    // file with a mistake is logged and leaves the previous tasks in place.
    auto tasksFile = [](const QByteArray &program) -> QByteArray {
        return "tasks:\n"
               "  probe:\n"
               "    title: Probe\n"
               "    command: [" + program + "]\n"
               "    fields:\n"
               "      - key: note\n"
               "        type: text\n";
    };
    const QString file = writeFile(u"follow.yml"_s, tasksFile("true"));
    QProcess process;
    startCli(process, {u"--tasks"_s, file, u"run"_s, u"probe"_s, u"--each"_s, u"-"_s, u"--json"_s});
    QVERIFY(process.waitForStarted(30000));
    QByteArray out;
    QByteArray err;
    auto outLines = [&]() {
        out += process.readAllStandardOutput();
        return nonEmptyLines(QString::fromUtf8(out));
    };
    auto errText = [&]() {
        err += process.readAllStandardError();
        return QString::fromUtf8(err);
    };
    auto statusOfLine = [&](int index) {
        const std::optional<QJsonObject> object = parseObject(outLines().value(index));
        return object ? object->value(u"status"_s).toString() : QString();
    };

    process.write(jsonLine({{u"note"_s, u"one"_s}}).toUtf8() + '\n');
    QTRY_COMPARE_WITH_TIMEOUT(outLines().size(), 1, 30000);
    QCOMPARE(statusOfLine(0), u"succeeded"_s);

    // Saved the way editors do: a new file renamed over the old one.
    const QString replacement = writeFile(u"follow.yml.new"_s, tasksFile("false"));
    QVERIFY(QFile::remove(file));
    QVERIFY(QFile::rename(replacement, file));
    QTRY_VERIFY2_WITH_TIMEOUT(errText().contains(u"loaded 1 tasks from %1"_s.arg(file)),
                              qPrintable(errText()), 30000);
    process.write(jsonLine({{u"note"_s, u"two"_s}}).toUtf8() + '\n');
    QTRY_COMPARE_WITH_TIMEOUT(outLines().size(), 2, 30000);
    QCOMPARE(statusOfLine(1), u"failed"_s);

    // A mistake: logged with its place, and the last good tasks stay.
    writeFile(u"follow.yml"_s, tasksFile("true") + "    colour: red\n");
    QTRY_VERIFY2_WITH_TIMEOUT(errText().contains(u"follow.yml:8:5: unknown key \"colour\""_s),
                              qPrintable(errText()), 30000);
    QVERIFY2(errText().contains(u"was not loaded; tasks registered from it before, if any, stay in use"_s),
             qPrintable(errText()));
    process.write(jsonLine({{u"note"_s, u"three"_s}}).toUtf8() + '\n');
    process.closeWriteChannel();
    QVERIFY(process.waitForFinished(30000));
    QCOMPARE(process.exitCode(), 1);
    QCOMPARE(outLines().size(), 3);
    QCOMPARE(statusOfLine(2), u"failed"_s);
    // Loaded once at the start (not logged) and once more after the first save.
    QCOMPARE(errText().count(u"loaded 1 tasks from"_s), 1);
}

void TestCli::eachInterruptSkipsUnstarted_data()
{
    QTest::addColumn<bool>("json");
    QTest::newRow("plain") << false;
    QTest::newRow("json") << true;
}

void TestCli::eachInterruptSkipsUnstarted()
{
    QFETCH(bool, json);
    // One run at a time and a long input: the first run holds, the engine has its share of
    // the rest queued, and the lines after those were never started when the interrupt
    // comes. They are reported as skipped and leave nothing in the history.
    constexpr int kLines = 2500;
    const QString mark = marker(5);
    const QByteArray line = jsonLine({{u"command"_s, QString(u"sleep "_s + mark)}}).toUtf8() + '\n';
    const QString input = writeFile(u"each-long.jsonl"_s, line.repeated(kLines));
    // A history of its own, to count exactly this test's runs in it.
    const QString dataDir = m_dir.filePath(json ? u"skip-data-json"_s : u"skip-data-plain"_s);
    QStringList arguments = {u"--data-dir"_s, dataDir, u"--max-concurrent"_s, u"1"_s,
                             u"run"_s, u"exec"_s, u"--yes"_s, u"--each"_s, input};
    if (json)
        arguments << u"--json"_s;
    QProcess process;
    startCli(process, arguments);
    QVERIFY(process.waitForStarted(30000));
    interruptWhileRunning(process, mark, SIGTERM);
    if (QTest::currentTestFailed())
        return;
    const QString out = QString::fromUtf8(process.readAllStandardOutput());
    const QString err = QString::fromUtf8(process.readAllStandardError());

    int canceled = 0;
    int skipped = 0;
    if (json) {
        const QStringList outLines = nonEmptyLines(out);
        QCOMPARE(outLines.size(), kLines);
        int lastCanceled = 0;
        int firstSkipped = kLines + 1;
        QSet<int> seen;
        for (const QString &text : outLines) {
            const std::optional<QJsonObject> object = parseObject(text);
            QVERIFY2(object, qPrintable(text));
            const int n = object->value(u"line"_s).toInt();
            QVERIFY2(n >= 1 && n <= kLines && !seen.contains(n), qPrintable(text));
            seen.insert(n);
            const QString status = object->value(u"status"_s).toString();
            if (status == u"canceled") {
                ++canceled;
                lastCanceled = std::max(lastCanceled, n);
            } else {
                QCOMPARE(status, u"skipped"_s);
                QCOMPARE(object->value(u"input"_s).toObject().value(u"command"_s).toString(),
                         QString(u"sleep "_s + mark));
                QCOMPARE(object->value(u"error"_s).toObject().value(u"kind"_s).toString(), u"Canceled"_s);
                ++skipped;
                firstSkipped = std::min(firstSkipped, n);
            }
        }
        QCOMPARE(canceled + skipped, kLines);
        // What was started came first in the input; the rest was never started.
        QCOMPARE(firstSkipped, lastCanceled + 1);
        QVERIFY2(err.contains(u"canceled %1, skipped %2"_s.arg(canceled).arg(skipped)), qPrintable(err));
    } else {
        const QRegularExpression range(u"^  lines (\\d+) to (\\d+): (\\d+) inputs skipped, not started: interrupted$"_s,
                                       QRegularExpression::MultilineOption);
        const QRegularExpressionMatch match = range.match(out);
        QVERIFY2(match.hasMatch(), qPrintable(out.right(2000)));
        QCOMPARE(match.captured(2).toInt(), kLines);
        skipped = match.captured(3).toInt();
        canceled = kLines - skipped;
        QCOMPARE(match.captured(1).toInt(), canceled + 1);
        QVERIFY2(out.contains(u"canceled %1, skipped %2"_s.arg(canceled).arg(skipped)), qPrintable(out.right(2000)));
        // Skipped lines are not listed one by one.
        QCOMPARE(out.count(u"skipped"_s), 2);
        QCOMPARE(nonEmptyLines(out).filter(u"] canceled"_s).size(), canceled);
    }
    QVERIFY2(skipped > 0 && canceled > 0, qPrintable(u"canceled %1, skipped %2"_s.arg(canceled).arg(skipped)));

    // Only the runs that were started are in the history, all canceled.
    const CliResult history = runCli({u"--data-dir"_s, dataDir, u"history"_s, u"--limit"_s, u"1"_s});
    QVERIFY(history.finished);
    QCOMPARE(history.exitCode, 0);
    QVERIFY2(history.out.contains(u"showing 1 of %1"_s.arg(canceled)), qPrintable(history.out));
    const CliResult canceledRuns = runCli({u"--data-dir"_s, dataDir, u"history"_s, u"--status"_s, u"canceled"_s,
                                           u"--limit"_s, u"1"_s});
    QVERIFY2(canceledRuns.out.contains(u"showing 1 of %1"_s.arg(canceled)), qPrintable(canceledRuns.out));
}

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
