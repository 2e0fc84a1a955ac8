// SPDX-License-Identifier: MIT
#include "command.h"
#include "testsupport.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QThreadPool>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace testsupport;
using namespace std::chrono_literals;

namespace {

struct CapturedLine
{
    LogStream stream;
    QString text;
};

struct Capture
{
    QList<CapturedLine> lines;
    QList<Progress> progress;

    QStringList texts(LogStream stream) const
    {
        QStringList out;
        for (const CapturedLine &l : lines) {
            if (l.stream == stream)
                out.append(l.text);
        }
        return out;
    }
    QStringList out() const { return texts(LogStream::Out); }
    QStringList err() const { return texts(LogStream::Err); }
    QStringList system() const { return texts(LogStream::System); }
};

Command command(const QStringList &argv)
{
    Command cmd;
    cmd.argv = argv;
    return cmd;
}

Command shell(const QString &script)
{
    return command({u"sh"_s, u"-c"_s, script});
}

// Runs cmd, recording everything the sink sees. cancelWhen is consulted on every poll of
// isCanceled with what has been captured so far.
CommandResult run(const Command &cmd, Capture *capture,
                  const std::function<bool(const Capture &)> &cancelWhen = {})
{
    CommandSink sink;
    sink.line = [capture](LogStream stream, const QString &text) { capture->lines.append({stream, text}); };
    sink.progress = [capture](const Progress &p) { capture->progress.append(p); };
    sink.isCanceled = [capture, &cancelWhen] { return cancelWhen && cancelWhen(*capture); };
    return runCommand(cmd, sink);
}

QString json(const QJsonValue &v)
{
    return QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact));
}

bool anyStartsWith(const QStringList &lines, const QString &prefix)
{
    return std::any_of(lines.cbegin(), lines.cend(), [&](const QString &l) { return l.startsWith(prefix); });
}

bool anyContains(const QStringList &lines, const QString &part)
{
    return std::any_of(lines.cbegin(), lines.cend(), [&](const QString &l) { return l.contains(part); });
}

QByteArray readProcField(const QByteArray &status, const QByteArray &name)
{
    for (const QByteArray &line : status.split('\n')) {
        if (line.startsWith(QByteArray(name + ':')))
            return line.mid(name.size() + 1).trimmed();
    }
    return {};
}

// Digits 1, 2, 3 ... concatenated and cut to size: like `seq | tr -d '\n' | head -c`.
QByteArray digitRun(qsizetype size)
{
    QByteArray out;
    for (int i = 1; out.size() < size; ++i)
        out += QByteArray::number(i);
    out.truncate(size);
    return out;
}

} // namespace

class TestCommand : public QObject
{
    Q_OBJECT

private slots:
    void initTestCase();

    // Output capture
    void separatesAndTagsStreams();
    void preservesEmptyLines();
    void finalLineWithoutNewline();
    void stripsCarriageReturn();
    void invalidUtf8IsReplaced();
    void longLineIsSplit_data();
    void longLineIsSplit();
    void fiftyMegabyteLine();
    void multibyteSplitOnCharBoundary_data();
    void multibyteSplitOnCharBoundary();
    void largeOutputInOrder();
    void stderrTail();
    void nullSinkCallbacks();

    // Ending
    void exitCode_data();
    void exitCode();
    void killedBySignal_data();
    void killedBySignal();
    void signalName_data();
    void signalName();

    // Starting
    void emptyCommand_data();
    void emptyCommand();
    void nulIsRefused_data();
    void nulIsRefused();
    void commandNotFound_data();
    void commandNotFound();
    void notExecutable();
    void notExecutableInPath();
    void laterExecutableInPathWins();
    void badWorkingDirectory();
    void workingDirectoryIsFile();
    void workingDirectoryHonoured();
    void relativeProgramResolvedInWorkingDirectory();
    void environmentMergedAndInherited();
    void pathLookupUsesMergedEnvironment();
    void stdinIsDevNull();
    void childLeadsNewProcessGroup();
    void childSignalStateIsReset();
    void canceledBeforeStart();

    // Control lines
    void progressLines_data();
    void progressLines();
    void resultLines_data();
    void resultLines();
    void resultErrorNamesOffset_data();
    void resultErrorNamesOffset();
    void scalarResultErrorNamesOffset_data();
    void scalarResultErrorNamesOffset();
    void controlLinesDisabled();
    void linesArriveInBatches();
    void controlLinesOnStderrAreLogged();
    void longResultLineIsNotSplit();

    // Stopping
    void cancelStopsWholeGroup();
    void leftoverGrandchildIsStopped_data();
    void leftoverGrandchildIsStopped();
    void termIgnoredGetsKill();
    void leftoverIgnoringTermGetsKill();
    void pipeHeldOutsideGroupDoesNotHang();
    void throwingSinkLeavesNothingBehind();
    void killAllCommandsStopsEveryGroup();

    // Threads
    void concurrentRunsKeepTheirOwnOutput();

    // splitCommandLine
    void splitCommandLine_data();
    void splitCommandLine();
    void splitCommandLineErrors_data();
    void splitCommandLineErrors();
};

void TestCommand::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(QFileInfo(u"/bin/sh"_s).isExecutable());
}

void TestCommand::separatesAndTagsStreams()
{
    Capture c;
    const CommandResult r = run(shell(u"echo o1; echo e1 >&2; echo o2; echo e2 >&2; echo o3"_s), &c);
    QVERIFY(r.started);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out(), (QStringList{u"o1"_s, u"o2"_s, u"o3"_s}));
    QCOMPARE(c.err(), (QStringList{u"e1"_s, u"e2"_s}));
    QCOMPARE(c.system(), QStringList());
    QCOMPARE(r.stdoutLines, 3);
    QCOMPARE(r.stderrLines, 2);
    QCOMPARE(r.stderrTail, (QStringList{u"e1"_s, u"e2"_s}));
    QVERIFY(!r.result.has_value());
}

void TestCommand::preservesEmptyLines()
{
    Capture c;
    const CommandResult r = run(command({u"printf"_s, u"a\\n\\n\\nb\\n"_s}), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out(), (QStringList{u"a"_s, QString(), QString(), u"b"_s}));
}

void TestCommand::finalLineWithoutNewline()
{
    Capture c;
    const CommandResult r = run(shell(u"printf 'one\\ntwo'; printf 'x\\ny' >&2"_s), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out(), (QStringList{u"one"_s, u"two"_s}));
    QCOMPARE(c.err(), (QStringList{u"x"_s, u"y"_s}));
}

void TestCommand::stripsCarriageReturn()
{
    Capture c;
    const CommandResult r = run(command({u"printf"_s, u"a\\r\\nb\\rc\\r\\n\\r\\n"_s}), &c);
    QVERIFY(r.succeeded());
    // Only the '\r' of a line ending goes; one inside a line is content.
    QCOMPARE(c.out(), (QStringList{u"a"_s, u"b\rc"_s, QString()}));
}

void TestCommand::invalidUtf8IsReplaced()
{
    Capture c;
    const CommandResult r = run(command({u"printf"_s, u"\\377abc\\n\\303(\\n"_s}), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out().size(), 2);
    QCOMPARE(c.out().at(0), QString(QChar(QChar::ReplacementCharacter)) + u"abc"_s);
    QVERIFY(c.out().at(1).contains(QChar(QChar::ReplacementCharacter)));
    QVERIFY(c.out().at(1).endsWith(u'('));
}

void TestCommand::longLineIsSplit_data()
{
    QTest::addColumn<int>("lineBytes");
    QTest::addColumn<int>("maxLineBytes");

    QTest::newRow("100000 at default cap") << 100000 << Command().maxLineBytes;
    QTest::newRow("100000 at 1000") << 100000 << 1000;
    QTest::newRow("100000 at 99999") << 100000 << 99999;
    QTest::newRow("exactly the cap") << 100000 << 100000;
    QTest::newRow("one under the cap") << 100000 << 100001;
    QTest::newRow("small cap") << 5000 << 7;
}

void TestCommand::longLineIsSplit()
{
    QFETCH(int, lineBytes);
    QFETCH(int, maxLineBytes);

    Command cmd = shell(u"seq 1 40000 | tr -d '\\n' | head -c %1; echo; echo after"_s.arg(lineBytes));
    cmd.maxLineBytes = maxLineBytes;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());

    QStringList out = c.out();
    QVERIFY(!out.isEmpty());
    QCOMPARE(out.takeLast(), u"after"_s);
    const int expectedPieces = (lineBytes + maxLineBytes - 1) / maxLineBytes;
    QCOMPARE(out.size(), expectedPieces);
    for (const QString &piece : std::as_const(out))
        QVERIFY2(piece.size() <= maxLineBytes, qPrintable(QString::number(piece.size())));
    QCOMPARE(out.join(QString()).toLatin1(), digitRun(lineBytes));
    QCOMPARE(r.stdoutLines, qint64(expectedPieces + 1));
    // A line that had to be split is followed by a note saying so; a whole one is not.
    if (expectedPieces == 1) {
        QCOMPARE(c.system(), QStringList());
    } else {
        QCOMPARE(c.system(), QStringList{u"the last %1 lines of stdout were one line of %2 bytes, split at the "
                                         "limit of %3 bytes a line"_s.arg(expectedPieces).arg(lineBytes).arg(maxLineBytes)});
        // Right after the last piece, before the next line.
        qsizetype note = -1;
        for (qsizetype i = 0; i < c.lines.size(); ++i) {
            if (c.lines.at(i).stream == LogStream::System)
                note = i;
        }
        QCOMPARE(c.lines.at(note + 1).text, u"after"_s);
    }
}

void TestCommand::fiftyMegabyteLine()
{
    // Kept whole up to 1 MiB: a 50 MB line becomes 48 lines of at most 1 MiB, in order, and a
    // note; nothing is lost or added.
    constexpr qint64 Bytes = 50'000'000;
    Command cmd = shell(u"head -c %1 /dev/zero | tr '\\0' a; echo; echo after"_s.arg(Bytes));
    QCOMPARE(cmd.maxLineBytes, 1024 * 1024);
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());
    QStringList out = c.out();
    QCOMPARE(out.takeLast(), u"after"_s);
    const qsizetype pieces = (Bytes + cmd.maxLineBytes - 1) / cmd.maxLineBytes;
    QCOMPARE(out.size(), pieces);
    qint64 total = 0;
    for (qsizetype i = 0; i < out.size(); ++i) {
        const QString &piece = out.at(i);
        QCOMPARE(piece.size(), i + 1 < out.size() ? qsizetype(cmd.maxLineBytes) : qsizetype(Bytes % cmd.maxLineBytes));
        QVERIFY(std::all_of(piece.cbegin(), piece.cend(), [](QChar ch) { return ch == u'a'; }));
        total += piece.size();
    }
    QCOMPARE(total, Bytes);
    QCOMPARE(c.system(), QStringList{u"the last 48 lines of stdout were one line of 50000000 bytes, split at the "
                                     "limit of 1048576 bytes a line"_s});
    // A line just under the limit is kept whole.
    Capture whole;
    QVERIFY(run(shell(u"head -c 1048576 /dev/zero | tr '\\0' b; echo"_s), &whole).succeeded());
    QCOMPARE(whole.out().size(), 1);
    QCOMPARE(whole.out().constFirst().size(), 1048576);
    QCOMPARE(whole.system(), QStringList());
}

void TestCommand::multibyteSplitOnCharBoundary_data()
{
    QTest::addColumn<QString>("line");
    QTest::addColumn<int>("maxLineBytes");
    QTest::addColumn<QStringList>("expected"); // empty: only check the invariants

    const QString euros = u"ab\u20AC\u20AC"_s; // 1+1+3+3 bytes
    QTest::newRow("cap lands on a lead byte") << euros << 5 << QStringList{u"ab\u20AC"_s, u"\u20AC"_s};
    QTest::newRow("cap inside a sequence") << euros << 6 << QStringList{u"ab\u20AC"_s, u"\u20AC"_s};
    QTest::newRow("cap at the end of a sequence") << euros << 7 << QStringList{u"ab\u20AC"_s, u"\u20AC"_s};
    QTest::newRow("smallest cap") << euros << 4 << QStringList{u"ab"_s, u"\u20AC"_s, u"\u20AC"_s};

    const QString mixed = u"x\u00E9\u20AC\U0001F600y\U0001F600\u00E9\u00E9\u20AC\U0001F600zz\u20AC"_s;
    for (int cap = 4; cap <= 12; ++cap)
        QTest::addRow("mixed widths, cap %d", cap) << mixed << cap << QStringList();
    QTest::newRow("cap below a sequence is raised") << u"\U0001F600\U0001F600"_s << 1
                                                    << QStringList{u"\U0001F600"_s, u"\U0001F600"_s};
}

void TestCommand::multibyteSplitOnCharBoundary()
{
    QFETCH(QString, line);
    QFETCH(int, maxLineBytes);
    QFETCH(QStringList, expected);

    Command cmd = command({u"printf"_s, u"%s\\n"_s, line});
    cmd.maxLineBytes = maxLineBytes;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());

    const QStringList out = c.out();
    if (!expected.isEmpty())
        QCOMPARE(out, expected);
    QVERIFY(out.size() > 1);
    for (const QString &piece : out) {
        QVERIFY2(!piece.contains(QChar(QChar::ReplacementCharacter)), qPrintable(piece));
        QVERIFY(piece.toUtf8().size() <= std::max(maxLineBytes, 4));
        QVERIFY(!piece.isEmpty());
    }
    QCOMPARE(out.join(QString()), line);
}

void TestCommand::largeOutputInOrder()
{
    Capture c;
    const CommandResult r = run(command({u"seq"_s, u"1"_s, u"200000"_s}), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(r.stdoutLines, 200000);
    const QStringList out = c.out();
    QCOMPARE(out.size(), 200000);
    for (int i = 0; i < out.size(); ++i) {
        if (out.at(i) != QString::number(i + 1))
            QFAIL(qPrintable(u"line %1 is %2"_s.arg(i + 1).arg(out.at(i))));
    }
}

void TestCommand::stderrTail()
{
    Capture c;
    const CommandResult r = run(shell(u"seq 1 30 >&2; echo out"_s), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(r.stderrLines, 30);
    QCOMPARE(r.stdoutLines, 1);
    QStringList expected;
    for (int i = 11; i <= 30; ++i)
        expected.append(QString::number(i));
    QCOMPARE(r.stderrTail, expected);
}

void TestCommand::nullSinkCallbacks()
{
    const CommandResult r = runCommand(shell(u"seq 1 1000; echo '::progress::1/2'; echo '::result::7'; "
                                             "echo err >&2"_s),
                                       CommandSink());
    QVERIFY(r.succeeded());
    QCOMPARE(r.stdoutLines, 1000);
    QCOMPARE(r.stderrLines, 1);
    QVERIFY(r.result.has_value());
    QCOMPARE(r.result->toInt(), 7);
}

void TestCommand::exitCode_data()
{
    QTest::addColumn<int>("code");
    QTest::newRow("0") << 0;
    QTest::newRow("1") << 1;
    QTest::newRow("3") << 3;
    QTest::newRow("255") << 255;
}

void TestCommand::exitCode()
{
    QFETCH(int, code);
    Capture c;
    const CommandResult r = run(shell(u"exit %1"_s.arg(code)), &c);
    QVERIFY(r.started);
    QCOMPARE(r.exitCode, code);
    QCOMPARE(r.signal, 0);
    QVERIFY(!r.canceled);
    QCOMPARE(r.succeeded(), code == 0);
    QVERIFY(r.startError.isEmpty());
}

void TestCommand::killedBySignal_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<int>("number");
    QTest::newRow("KILL") << u"KILL"_s << int(SIGKILL);
    QTest::newRow("TERM") << u"TERM"_s << int(SIGTERM);
    QTest::newRow("SEGV") << u"SEGV"_s << int(SIGSEGV);
}

void TestCommand::killedBySignal()
{
    QFETCH(QString, name);
    QFETCH(int, number);
    Capture c;
    const CommandResult r = run(shell(u"kill -%1 $$"_s.arg(name)), &c);
    QVERIFY(r.started);
    QCOMPARE(r.signal, number);
    QVERIFY(r.exitCode != 0);
    QVERIFY(!r.succeeded());
    QVERIFY(!r.canceled);
    QCOMPARE(taskdeck::signalName(r.signal), u"SIG"_s + name);
}

void TestCommand::signalName_data()
{
    QTest::addColumn<int>("number");
    QTest::addColumn<QString>("name");
    QTest::newRow("HUP") << int(SIGHUP) << u"SIGHUP"_s;
    QTest::newRow("INT") << int(SIGINT) << u"SIGINT"_s;
    QTest::newRow("KILL") << int(SIGKILL) << u"SIGKILL"_s;
    QTest::newRow("PIPE") << int(SIGPIPE) << u"SIGPIPE"_s;
    QTest::newRow("TERM") << int(SIGTERM) << u"SIGTERM"_s;
    QTest::newRow("CHLD") << int(SIGCHLD) << u"SIGCHLD"_s;
    QTest::newRow("RTMIN") << int(SIGRTMIN) << u"SIGRTMIN"_s;
    QTest::newRow("RTMIN+3") << int(SIGRTMIN + 3) << u"SIGRTMIN+3"_s;
    QTest::newRow("zero") << 0 << u"signal 0"_s;
    QTest::newRow("negative") << -4 << u"signal -4"_s;
    QTest::newRow("too large") << 1000 << u"signal 1000"_s;
}

void TestCommand::signalName()
{
    QFETCH(int, number);
    QFETCH(QString, name);
    QCOMPARE(taskdeck::signalName(number), name);
}

void TestCommand::emptyCommand_data()
{
    QTest::addColumn<QStringList>("argv");
    QTest::newRow("no words") << QStringList();
    QTest::newRow("empty program") << QStringList{QString(), u"x"_s};
}

void TestCommand::emptyCommand()
{
    QFETCH(QStringList, argv);
    Capture c;
    const CommandResult r = run(command(argv), &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"empty command"_s);
    QVERIFY(!r.succeeded());
    QVERIFY(c.lines.isEmpty());
}

void TestCommand::nulIsRefused_data()
{
    QTest::addColumn<QStringList>("argv");
    QTest::addColumn<QString>("variable");
    QTest::addColumn<QString>("error");
    const QString nul(QChar::Null);
    QTest::newRow("in an argument") << QStringList{u"echo"_s, u"a"_s + nul + u"b"_s} << QString()
                                    << u"argument 1 contains a NUL character"_s;
    QTest::newRow("in the program") << QStringList{u"/bin/true"_s + nul + u"x"_s} << QString()
                                    << u"argument 0 contains a NUL character"_s;
    QTest::newRow("in a variable") << QStringList{u"env"_s} << QString(u"x"_s + nul + u"y"_s)
                                   << u"environment variable TASK_ARG_X contains a NUL character"_s;
}

void TestCommand::nulIsRefused()
{
    QFETCH(QStringList, argv);
    QFETCH(QString, variable);
    QFETCH(QString, error);
    Command cmd = command(argv);
    if (!variable.isNull())
        cmd.env.insert(u"TASK_ARG_X"_s, variable);
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, error);
    QVERIFY(c.lines.isEmpty());
}

void TestCommand::commandNotFound_data()
{
    QTest::addColumn<QString>("program");
    QTest::newRow("name") << u"taskdeck-no-such-command-4711"_s;
    QTest::newRow("absolute path") << u"/nonexistent/dir/tool"_s;
    QTest::newRow("relative path") << u"./taskdeck-no-such-command-4711"_s;
}

void TestCommand::commandNotFound()
{
    QFETCH(QString, program);
    Capture c;
    const CommandResult r = run(command({program, u"arg"_s}), &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"command not found: "_s + program);
    QVERIFY(!r.succeeded());
    QVERIFY(c.lines.isEmpty());
}

void TestCommand::notExecutable()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(u"script.sh"_s);
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("#!/bin/sh\necho hi\n");
    file.close();
    QVERIFY(file.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner));

    Capture c;
    CommandResult r = run(command({path}), &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"permission denied: "_s + path);

    // A directory cannot be executed either.
    r = run(command({dir.path()}), &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"permission denied: "_s + dir.path());
    QVERIFY(c.lines.isEmpty());
}

void TestCommand::notExecutableInPath()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QFile file(dir.filePath(u"tdk-plain"_s));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("#!/bin/sh\necho hi\n");
    file.close();
    QVERIFY(file.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner));

    Command cmd = command({u"tdk-plain"_s});
    cmd.env.insert(u"PATH"_s, dir.path() + u":/usr/bin:/bin"_s);
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"permission denied: "_s + dir.filePath(u"tdk-plain"_s));
}

void TestCommand::laterExecutableInPathWins()
{
    QTemporaryDir first;
    QTemporaryDir second;
    QVERIFY(first.isValid() && second.isValid());
    QFile plain(first.filePath(u"tdk-tool"_s));
    QVERIFY(plain.open(QIODevice::WriteOnly));
    plain.write("#!/bin/sh\necho wrong\n");
    plain.close();
    QVERIFY(plain.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner));
    QFile script(second.filePath(u"tdk-tool"_s));
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write("#!/bin/sh\necho right\n");
    script.close();
    QVERIFY(script.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));

    Command cmd = command({u"tdk-tool"_s});
    cmd.env.insert(u"PATH"_s, first.path() + u':' + second.path() + u":/usr/bin:/bin"_s);
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY2(r.started, qPrintable(r.startError));
    QCOMPARE(c.out(), QStringList{u"right"_s});
}

void TestCommand::badWorkingDirectory()
{
    Command cmd = command({u"pwd"_s});
    cmd.workingDirectory = u"/nonexistent/taskdeck/dir"_s;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"working directory does not exist: /nonexistent/taskdeck/dir"_s);
    QVERIFY(c.lines.isEmpty());
}

void TestCommand::workingDirectoryIsFile()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(u"file"_s);
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.close();
    Command cmd = command({u"pwd"_s});
    cmd.workingDirectory = path;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"working directory is not a directory: "_s + path);
}

void TestCommand::workingDirectoryHonoured()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    Command cmd = command({u"pwd"_s});
    cmd.workingDirectory = dir.path();
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY2(r.succeeded(), qPrintable(r.startError));
    QCOMPARE(c.out(), QStringList{QFileInfo(dir.path()).canonicalFilePath()});

    // Without one the child inherits ours.
    Capture inherited;
    QVERIFY(run(command({u"pwd"_s}), &inherited).succeeded());
    QCOMPARE(inherited.out(), QStringList{QDir::current().canonicalPath()});
}

void TestCommand::relativeProgramResolvedInWorkingDirectory()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QFile script(dir.filePath(u"tool.sh"_s));
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write("#!/bin/sh\necho \"tool ran with $1\"\n");
    script.close();
    QVERIFY(script.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));

    Command cmd = command({u"./tool.sh"_s, u"x"_s});
    cmd.workingDirectory = dir.path();
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY2(r.succeeded(), qPrintable(r.startError));
    QCOMPARE(c.out(), QStringList{u"tool ran with x"_s});
}

void TestCommand::environmentMergedAndInherited()
{
    const QByteArray home = qgetenv("HOME");
    const QByteArray path = qgetenv("PATH");
    QVERIFY(!path.isEmpty());

    Command cmd = command({u"env"_s});
    cmd.env.insert(u"TASKDECK_TST_ADDED"_s, u"hello world \u00E9"_s);
    cmd.env.insert(u"TASKDECK_TST_EMPTY"_s, QString());
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());
    const QStringList out = c.out();
    QVERIFY(out.contains(u"TASKDECK_TST_ADDED=hello world \u00E9"_s));
    QVERIFY(out.contains(u"TASKDECK_TST_EMPTY="_s));
    QVERIFY(out.contains(u"PATH="_s + QString::fromLocal8Bit(path)));
    if (!home.isEmpty())
        QVERIFY(out.contains(u"HOME="_s + QString::fromLocal8Bit(home)));

    // Added variables override inherited ones.
    Command override = shell(u"echo \"$HOME\""_s);
    override.env.insert(u"HOME"_s, u"/taskdeck/home"_s);
    Capture o;
    QVERIFY(run(override, &o).succeeded());
    QCOMPARE(o.out(), QStringList{u"/taskdeck/home"_s});
}

void TestCommand::pathLookupUsesMergedEnvironment()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QFile script(dir.filePath(u"tdk-hello"_s));
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write("#!/bin/sh\necho \"hello from $0\"\n");
    script.close();
    QVERIFY(script.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));

    Capture missing;
    CommandResult r = run(command({u"tdk-hello"_s}), &missing);
    QVERIFY(!r.started);
    QCOMPARE(r.startError, u"command not found: tdk-hello"_s);

    Command cmd = command({u"tdk-hello"_s});
    cmd.env.insert(u"PATH"_s, u"/nonexistent:"_s + dir.path() + u":/usr/bin:/bin"_s);
    Capture c;
    r = run(cmd, &c);
    QVERIFY2(r.succeeded(), qPrintable(r.startError));
    QCOMPARE(c.out(), QStringList{u"hello from "_s + dir.filePath(u"tdk-hello"_s)});
}

void TestCommand::stdinIsDevNull()
{
    Capture c;
    CommandResult r = run(command({u"readlink"_s, u"/proc/self/fd/0"_s}), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out(), QStringList{u"/dev/null"_s});

    // A reader of stdin ends at once instead of waiting for input.
    Capture cat;
    r = run(command({u"cat"_s}), &cat);
    QVERIFY(r.succeeded());
    QVERIFY(cat.lines.isEmpty());
}

void TestCommand::childLeadsNewProcessGroup()
{
    Capture c;
    const CommandResult r = run(command({u"cat"_s, u"/proc/self/stat"_s}), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out().size(), 1);
    const QString stat = c.out().constFirst();
    const qint64 pid = stat.section(u' ', 0, 0).toLongLong();
    const QStringList after = stat.mid(stat.lastIndexOf(u')') + 2).split(u' ');
    QVERIFY(after.size() > 3);
    const qint64 pgrp = after.at(2).toLongLong();
    QVERIFY(pid > 0);
    QCOMPARE(pgrp, pid);
    QVERIFY(pgrp != ::getpgrp());
}

void TestCommand::childSignalStateIsReset()
{
    // Give the calling thread a blocked mask and the process ignored signals; the child
    // must see neither.
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigset_t oldMask;
    QCOMPARE(pthread_sigmask(SIG_BLOCK, &block, &oldMask), 0);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    struct sigaction oldPipe {};
    struct sigaction oldHup {};
    struct sigaction oldQuit {};
    sigaction(SIGPIPE, &ignore, &oldPipe);
    sigaction(SIGHUP, &ignore, &oldHup);
    sigaction(SIGQUIT, &ignore, &oldQuit);

    Capture c;
    const CommandResult r = run(command({u"cat"_s, u"/proc/self/status"_s}), &c);

    sigaction(SIGPIPE, &oldPipe, nullptr);
    sigaction(SIGHUP, &oldHup, nullptr);
    sigaction(SIGQUIT, &oldQuit, nullptr);
    pthread_sigmask(SIG_SETMASK, &oldMask, nullptr);

    QVERIFY(r.succeeded());
    const QByteArray status = c.out().join(u'\n').toLatin1();
    bool ok = false;
    const quint64 blocked = readProcField(status, "SigBlk").toULongLong(&ok, 16);
    QVERIFY(ok);
    QCOMPARE(blocked, quint64(0));
    const quint64 ignored = readProcField(status, "SigIgn").toULongLong(&ok, 16);
    QVERIFY(ok);
    for (int sig : {SIGPIPE, SIGHUP, SIGQUIT, SIGINT, SIGTERM, SIGCHLD})
        QVERIFY2((ignored & (quint64(1) << (sig - 1))) == 0, qPrintable(taskdeck::signalName(sig)));
}

void TestCommand::canceledBeforeStart()
{
    // Reported like any other cancel, so callers need only one path for it.
    Command cmd = command({u"sleep"_s, u"1000"_s});
    cmd.killGrace = 60s;
    Capture c;
    const CommandResult r = run(cmd, &c, [](const Capture &) { return true; });
    QVERIFY(r.started);
    QVERIFY(r.canceled);
    QCOMPARE(r.signal, int(SIGTERM));
    QVERIFY(!r.succeeded());
    QVERIFY(anyStartsWith(c.system(), u"canceled: sent SIGTERM to process group "_s));
}

void TestCommand::progressLines_data()
{
    QTest::addColumn<QStringList>("lines");
    QTest::addColumn<QList<Progress>>("progress");
    QTest::addColumn<QStringList>("out");
    QTest::addColumn<QStringList>("system");

    const QString bad = u"ignored ::progress:: line: expected DONE/TOTAL"_s;
    const auto p = [](qint64 done, qint64 total, const QString &message = {}) {
        Progress progress;
        progress.done = done;
        progress.total = total;
        progress.message = message;
        return progress;
    };

    QTest::newRow("done/total message") << QStringList{u"::progress::3/10 copying files"_s}
                                        << QList<Progress>{p(3, 10, u"copying files"_s)} << QStringList()
                                        << QStringList();
    QTest::newRow("done/total") << QStringList{u"::progress::3/10"_s} << QList<Progress>{p(3, 10)}
                                << QStringList() << QStringList();
    QTest::newRow("done only") << QStringList{u"::progress::7"_s} << QList<Progress>{p(7, 0)} << QStringList()
                               << QStringList();
    QTest::newRow("done message") << QStringList{u"::progress::7 half way"_s}
                                  << QList<Progress>{p(7, 0, u"half way"_s)} << QStringList() << QStringList();
    QTest::newRow("zeros") << QStringList{u"::progress::0/0"_s} << QList<Progress>{p(0, 0)} << QStringList()
                           << QStringList();
    QTest::newRow("blanks around") << QStringList{u"::progress::  5/6   spaced out  "_s}
                                   << QList<Progress>{p(5, 6, u"spaced out"_s)} << QStringList() << QStringList();
    QTest::newRow("unicode message") << QStringList{u"::progress::1/2 caf\u00E9 \u2713"_s}
                                     << QList<Progress>{p(1, 2, u"caf\u00E9 \u2713"_s)} << QStringList()
                                     << QStringList();
    QTest::newRow("large numbers") << QStringList{u"::progress::5000000000/9000000000"_s}
                                   << QList<Progress>{p(5000000000LL, 9000000000LL)} << QStringList()
                                   << QStringList();
    QTest::newRow("between output") << QStringList{u"::progress::1/3"_s, u"hello"_s, u"::progress::2/3 b"_s}
                                    << QList<Progress>{p(1, 3), p(2, 3, u"b"_s)} << QStringList{u"hello"_s}
                                    << QStringList();

    const QStringList malformed{u""_s, u"abc"_s, u"-1/5"_s, u"+1/5"_s, u"3/x"_s, u"3/"_s, u"/5"_s,
                                u"3/10msg"_s, u"1.5/3"_s, u"1/2/3"_s, u"99999999999999999999/1"_s};
    for (const QString &m : malformed) {
        QTest::addRow("malformed '%s'", qPrintable(m)) << QStringList{u"::progress::"_s + m} << QList<Progress>()
                                                       << QStringList() << QStringList{bad};
    }

    QTest::newRow("no trailing colons") << QStringList{u"::progress 1/2"_s} << QList<Progress>()
                                        << QStringList{u"::progress 1/2"_s} << QStringList();
    QTest::newRow("not at line start") << QStringList{u" ::progress::1/2"_s} << QList<Progress>()
                                       << QStringList{u" ::progress::1/2"_s} << QStringList();
    QTest::newRow("case matters") << QStringList{u"::PROGRESS::1/2"_s} << QList<Progress>()
                                  << QStringList{u"::PROGRESS::1/2"_s} << QStringList();
}

void TestCommand::progressLines()
{
    QFETCH(QStringList, lines);
    QFETCH(QList<Progress>, progress);
    QFETCH(QStringList, out);
    QFETCH(QStringList, system);

    Capture c;
    const CommandResult r = run(command(QStringList{u"printf"_s, u"%s\\n"_s} + lines), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(c.out(), out);
    QCOMPARE(c.system(), system);
    QCOMPARE(c.progress.size(), progress.size());
    for (qsizetype i = 0; i < progress.size(); ++i) {
        QCOMPARE(c.progress.at(i).done, progress.at(i).done);
        QCOMPARE(c.progress.at(i).total, progress.at(i).total);
        QCOMPARE(c.progress.at(i).message, progress.at(i).message);
    }
    QCOMPARE(r.stdoutLines, qint64(out.size()));
    QVERIFY(!r.result.has_value());
}

void TestCommand::resultLines_data()
{
    QTest::addColumn<QStringList>("lines");
    QTest::addColumn<bool>("hasResult");
    QTest::addColumn<QJsonValue>("result");
    QTest::addColumn<QStringList>("systemPrefixes");
    QTest::addColumn<QStringList>("out");

    const QString invalid = u"ignored ::result:: line: invalid JSON ("_s;

    QTest::newRow("object") << QStringList{u"::result::{\"a\":1,\"b\":[true,null]}"_s} << true
                            << QJsonValue(QJsonObject{{u"a"_s, 1}, {u"b"_s, QJsonArray{true, QJsonValue()}}})
                            << QStringList() << QStringList();
    QTest::newRow("array") << QStringList{u"::result::[1,\"two\",3.5]"_s} << true
                           << QJsonValue(QJsonArray{1, u"two"_s, 3.5}) << QStringList() << QStringList();
    QTest::newRow("integer") << QStringList{u"::result::42"_s} << true << QJsonValue(42) << QStringList()
                             << QStringList();
    QTest::newRow("float") << QStringList{u"::result::-1.5e3"_s} << true << QJsonValue(-1500.0) << QStringList()
                           << QStringList();
    QTest::newRow("string") << QStringList{u"::result::\"hi \\u00e9 there\""_s} << true
                            << QJsonValue(u"hi \u00E9 there"_s) << QStringList() << QStringList();
    QTest::newRow("true") << QStringList{u"::result::true"_s} << true << QJsonValue(true) << QStringList()
                          << QStringList();
    QTest::newRow("false") << QStringList{u"::result::false"_s} << true << QJsonValue(false) << QStringList()
                           << QStringList();
    QTest::newRow("null") << QStringList{u"::result::null"_s} << true << QJsonValue(QJsonValue::Null)
                          << QStringList() << QStringList();
    QTest::newRow("blanks around") << QStringList{u"::result::  {\"a\":1}  "_s} << true
                                   << QJsonValue(QJsonObject{{u"a"_s, 1}}) << QStringList() << QStringList();
    QTest::newRow("last wins") << QStringList{u"::result::1"_s, u"text"_s, u"::result::{\"n\":2}"_s} << true
                               << QJsonValue(QJsonObject{{u"n"_s, 2}}) << QStringList()
                               << QStringList{u"text"_s};
    QTest::newRow("invalid after valid keeps valid")
            << QStringList{u"::result::{\"ok\":true}"_s, u"::result::{\"a\":"_s} << true
            << QJsonValue(QJsonObject{{u"ok"_s, true}}) << QStringList{invalid} << QStringList();
    QTest::newRow("unterminated object") << QStringList{u"::result::{\"a\":"_s} << false << QJsonValue()
                                         << QStringList{invalid} << QStringList();
    QTest::newRow("unterminated string") << QStringList{u"::result::{\"name\": \"abc"_s} << false << QJsonValue()
                                         << QStringList{invalid} << QStringList();
    QTest::newRow("bare word") << QStringList{u"::result::done"_s} << false << QJsonValue()
                               << QStringList{invalid} << QStringList();
    QTest::newRow("two values") << QStringList{u"::result::1 2"_s} << false << QJsonValue()
                                << QStringList{invalid} << QStringList();
    QTest::newRow("comma list") << QStringList{u"::result::1,2"_s} << false << QJsonValue()
                                << QStringList{u"ignored ::result:: line: expected one JSON value"_s}
                                << QStringList();
    QTest::newRow("breaking out of the wrapper") << QStringList{u"::result::1],[2"_s} << false << QJsonValue()
                                                 << QStringList{invalid} << QStringList();
    QTest::newRow("empty") << QStringList{u"::result::"_s} << false << QJsonValue()
                           << QStringList{u"ignored ::result:: line: no JSON value"_s} << QStringList();
    QTest::newRow("no trailing colons") << QStringList{u"::result 1"_s} << false << QJsonValue() << QStringList()
                                        << QStringList{u"::result 1"_s};
}

void TestCommand::resultLines()
{
    QFETCH(QStringList, lines);
    QFETCH(bool, hasResult);
    QFETCH(QJsonValue, result);
    QFETCH(QStringList, systemPrefixes);
    QFETCH(QStringList, out);

    Capture c;
    const CommandResult r = run(command(QStringList{u"printf"_s, u"%s\\n"_s} + lines), &c);
    QVERIFY(r.succeeded());
    QCOMPARE(r.result.has_value(), hasResult);
    if (hasResult)
        QCOMPARE(json(*r.result), json(result));
    QCOMPARE(c.out(), out);
    const QStringList system = c.system();
    QCOMPARE(system.size(), systemPrefixes.size());
    for (qsizetype i = 0; i < system.size(); ++i)
        QVERIFY2(system.at(i).startsWith(systemPrefixes.at(i)), qPrintable(system.at(i)));
    QVERIFY(c.progress.isEmpty());
}

void TestCommand::resultErrorNamesOffset_data()
{
    QTest::addColumn<QString>("text");
    QTest::newRow("unterminated string") << u"{\"name\": \"abc"_s;
    QTest::newRow("missing colon") << u"{\"a\" 1}"_s;
    QTest::newRow("missing comma") << u"[1 2]"_s;
    QTest::newRow("bad literal") << u"{\"a\": tru}"_s;
    QTest::newRow("trailing garbage") << u"{\"a\": 1} x"_s;
    QTest::newRow("unterminated object") << u"{\"a\": [1, 2]"_s;
    QTest::newRow("unterminated array") << u"[1, {}"_s;
}

void TestCommand::resultErrorNamesOffset()
{
    QFETCH(QString, text);
    // Objects and arrays parse directly, so Qt's own report is what the line must repeat:
    // the offset counts from the start of the JSON text, whatever is done to parse scalars.
    QJsonParseError direct{};
    QVERIFY(QJsonDocument::fromJson(text.toUtf8(), &direct).isNull());
    QVERIFY(direct.error != QJsonParseError::NoError);

    Capture c;
    const CommandResult r = run(command({u"printf"_s, u"%s\\n"_s, u"::result::"_s + text}), &c);
    QVERIFY(r.succeeded());
    QVERIFY(!r.result.has_value());
    QCOMPARE(c.system(), QStringList{u"ignored ::result:: line: invalid JSON (%1 at offset %2)"_s.arg(
                                 direct.errorString()).arg(direct.offset)});
}

void TestCommand::scalarResultErrorNamesOffset_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("message");
    // Offsets follow Qt's convention (it points just past where it noticed the problem), as
    // if Qt could parse the scalar on its own.
    QTest::newRow("unterminated string") << u"\"abc"_s << u"unterminated string at offset 4"_s;
    QTest::newRow("bad literal") << u"nul"_s << u"illegal value at offset 1"_s;
    QTest::newRow("second value") << u"12 34"_s << u"missing value separator at offset 4"_s;
}

void TestCommand::scalarResultErrorNamesOffset()
{
    QFETCH(QString, text);
    QFETCH(QString, message);
    Capture c;
    const CommandResult r = run(command({u"printf"_s, u"%s\\n"_s, u"::result::"_s + text}), &c);
    QVERIFY(r.succeeded());
    QVERIFY(!r.result.has_value());
    QCOMPARE(c.system(), QStringList{u"ignored ::result:: line: invalid JSON ("_s + message + u')'});
}

void TestCommand::linesArriveInBatches()
{
    // With CommandSink::lines set, the lines of one read come in one call: the same lines,
    // streams and order as one call per line, with progress after the lines before it.
    QList<OutputLines> calls;
    QList<std::pair<qsizetype, Progress>> progressAfter; // (lines seen before, progress)
    qsizetype seen = 0;
    CommandSink sink;
    sink.lines = [&](const OutputLines &lines) {
        calls.append(lines);
        seen += lines.size();
    };
    sink.line = [](LogStream, const QString &) { QFAIL("line() is not used when lines() is set"); };
    sink.progress = [&](const Progress &p) { progressAfter.append({seen, p}); };
    const CommandResult r = runCommand(shell(u"seq 1 20000; echo oops >&2; echo '::progress::1/2 half'; "
                                             "seq 20001 20003; printf tail"_s), sink);
    QVERIFY(r.succeeded());
    QStringList out;
    QStringList err;
    for (const OutputLines &call : std::as_const(calls)) {
        QVERIFY(!call.isEmpty());
        for (const OutputLine &line : call)
            (line.stream == LogStream::Err ? err : out) << line.text;
    }
    QStringList expected;
    for (int n = 1; n <= 20003; ++n)
        expected << QString::number(n);
    expected << u"tail"_s;
    QCOMPARE(out, expected);
    QCOMPARE(err, QStringList{u"oops"_s});
    // seq writes through a full stdio buffer: thousands of lines per read, so far fewer
    // calls than lines.
    QVERIFY2(calls.size() < 20004 / 10, qPrintable(QString::number(calls.size())));
    QCOMPARE(progressAfter.size(), 1);
    QCOMPARE(progressAfter.first().second, (Progress{1, 2, u"half"_s}));
    // Every stdout line before the control line came first (stderr may interleave).
    QVERIFY(progressAfter.first().first >= 20000);
    QVERIFY(progressAfter.first().first <= 20001);
    QCOMPARE(r.stdoutLines, 20004);
}

void TestCommand::controlLinesDisabled()
{
    Command cmd = command({u"printf"_s, u"%s\\n"_s, u"::progress::1/2"_s, u"::result::42"_s, u"::result::{"_s});
    cmd.parseControlLines = false;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());
    QVERIFY(!r.result.has_value());
    QVERIFY(c.progress.isEmpty());
    QCOMPARE(c.out(), (QStringList{u"::progress::1/2"_s, u"::result::42"_s, u"::result::{"_s}));
    QCOMPARE(c.system(), QStringList());
    QCOMPARE(r.stdoutLines, 3);
}

void TestCommand::controlLinesOnStderrAreLogged()
{
    Capture c;
    const CommandResult r = run(shell(u"echo '::result::42' >&2; echo '::progress::1/2' >&2"_s), &c);
    QVERIFY(r.succeeded());
    QVERIFY(!r.result.has_value());
    QVERIFY(c.progress.isEmpty());
    QCOMPARE(c.err(), (QStringList{u"::result::42"_s, u"::progress::1/2"_s}));
}

void TestCommand::longResultLineIsNotSplit()
{
    QJsonArray items;
    for (int i = 0; i < 500; ++i)
        items.append(u"item-%1"_s.arg(i));
    const QString text = QString::fromUtf8(QJsonDocument(items).toJson(QJsonDocument::Compact));
    const QString plain(text.size(), u'x');

    Command cmd = command({u"printf"_s, u"%s\\n"_s, u"::result::"_s + text, plain});
    cmd.maxLineBytes = 64;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.succeeded());
    QVERIFY(r.result.has_value());
    QCOMPARE(json(*r.result), json(items));
    // An ordinary line of the same length is still cut at the cap, and said to be.
    QCOMPARE(c.out().join(QString()), plain);
    QCOMPARE(c.out().size(), int((plain.size() + 63) / 64));
    QCOMPARE(c.system(), QStringList{u"the last %1 lines of stdout were one line of %2 bytes, split at the limit "
                                     "of 64 bytes a line"_s.arg((plain.size() + 63) / 64).arg(plain.size())});
}

void TestCommand::cancelStopsWholeGroup()
{
    pid_t grandchild = 0;
    Command cmd = shell(u"sleep 1000 & echo $!; wait"_s);
    // Long enough that SIGKILL can only mean SIGTERM did not work.
    cmd.killGrace = 60s;
    Capture c;
    const CommandResult r = run(cmd, &c, [&](const Capture &seen) {
        if (seen.out().isEmpty())
            return false;
        grandchild = pid_t(seen.out().constFirst().toInt());
        return true;
    });
    QVERIFY(r.started);
    QVERIFY(r.canceled);
    QVERIFY(!r.succeeded());
    QVERIFY(grandchild > 0);
    QVERIFY2(processGone(grandchild), "the grandchild outlived the run");
    QVERIFY(r.signal != 0 || r.exitCode != 0);
    QVERIFY2(anyStartsWith(c.system(), u"canceled: sent SIGTERM to process group "_s),
             qPrintable(c.system().join(u" | "_s)));
    QVERIFY(!anyContains(c.system(), u"SIGKILL"_s));
}

void TestCommand::leftoverGrandchildIsStopped_data()
{
    QTest::addColumn<QString>("script");
    QTest::newRow("still holding the pipes") << u"sleep 1000 & echo $!"_s;
    QTest::newRow("detached from the pipes") << u"sleep 1000 >/dev/null 2>&1 & echo $!"_s;
}

void TestCommand::leftoverGrandchildIsStopped()
{
    QFETCH(QString, script);
    Command cmd = shell(script);
    cmd.killGrace = 60s;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.started);
    QCOMPARE(r.exitCode, 0);
    QCOMPARE(r.signal, 0);
    QVERIFY(!r.canceled);
    QCOMPARE(c.out().size(), 1);
    const pid_t grandchild = pid_t(c.out().constFirst().toInt());
    QVERIFY(grandchild > 0);
    QVERIFY2(processGone(grandchild), "the grandchild outlived the run");
    const QStringList system = c.system();
    QVERIFY2(anyContains(system, u"left processes running"_s), qPrintable(system.join(u" | "_s)));
    QVERIFY2(anyContains(system, u"sent SIGTERM to process group"_s), qPrintable(system.join(u" | "_s)));
    QVERIFY(!anyContains(system, u"SIGKILL"_s));
}

void TestCommand::killAllCommandsStopsEveryGroup()
{
    // Two commands that ignore SIGTERM and keep a background child, on their own threads.
    std::atomic<int> ready = 0;
    CommandResult results[2];
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            CommandSink sink;
            sink.line = [&](LogStream stream, const QString &text) {
                if (stream == LogStream::Out && text == u"ready"_s)
                    ++ready;
            };
            results[i] = runCommand(shell(u"trap '' TERM; sleep 1000 & echo ready; wait"_s), sink);
        });
    }
    QTRY_COMPARE_WITH_TIMEOUT(ready.load(), 2, 30000);
    killAllCommands();
    for (auto &t : threads)
        t.join();
    for (const CommandResult &r : results) {
        QVERIFY(r.started);
        QVERIFY(!r.canceled);
        QCOMPARE(r.signal, int(SIGKILL));
    }
    // Nothing is tracked any more once the runs returned: a second call reaches no one.
    killAllCommands();
}

void TestCommand::termIgnoredGetsKill()
{
    Command cmd = shell(u"trap '' TERM; echo ready; while :; do sleep 1; done"_s);
    cmd.killGrace = 200ms;
    Capture c;
    const CommandResult r = run(cmd, &c, [](const Capture &seen) { return !seen.out().isEmpty(); });
    QVERIFY(r.started);
    QVERIFY(r.canceled);
    QCOMPARE(r.signal, int(SIGKILL));
    const QStringList system = c.system();
    QVERIFY2(anyStartsWith(system, u"canceled: sent SIGTERM to process group"_s), qPrintable(system.join(u" | "_s)));
    QVERIFY2(anyContains(system, u"SIGKILL"_s) && anyContains(system, u"after 200ms grace"_s),
             qPrintable(system.join(u" | "_s)));
}

void TestCommand::leftoverIgnoringTermGetsKill()
{
    // The main shell waits until the leftover has set up its trap, so SIGTERM cannot beat it.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    Command cmd = shell(u"(trap '' TERM; echo ready > \"$TDK_FLAG\"; exec sleep 1000) & "
                        "while [ ! -s \"$TDK_FLAG\" ]; do sleep 0.01; done; echo $!"_s);
    cmd.env.insert(u"TDK_FLAG"_s, dir.filePath(u"flag"_s));
    cmd.killGrace = 200ms;
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.started);
    QCOMPARE(r.exitCode, 0);
    QVERIFY(!r.canceled);
    QCOMPARE(c.out().size(), 1);
    const pid_t grandchild = pid_t(c.out().constFirst().toInt());
    QVERIFY(grandchild > 0);
    QVERIFY2(processGone(grandchild), "the grandchild outlived the run");
    QVERIFY2(anyContains(c.system(), u"sent SIGKILL to process group"_s), qPrintable(c.system().join(u" | "_s)));
}

void TestCommand::pipeHeldOutsideGroupDoesNotHang()
{
    if (!QFileInfo::exists(u"/usr/bin/setsid"_s) && !QFileInfo::exists(u"/bin/setsid"_s))
        QSKIP("setsid is not installed");
    // setsid moves the sleeper out of the group, where the group kill cannot reach it, yet
    // it holds stdout open: the run must still end. The main shell exits only once the
    // sleeper has left the group.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    Command cmd = shell(u"setsid sh -c 'echo $$ > \"$TDK_FLAG.tmp\"; mv \"$TDK_FLAG.tmp\" \"$TDK_FLAG\"; "
                        "exec sleep 1000' & while [ ! -s \"$TDK_FLAG\" ]; do sleep 0.01; done; cat \"$TDK_FLAG\""_s);
    cmd.env.insert(u"TDK_FLAG"_s, dir.filePath(u"flag"_s));
    Capture c;
    const CommandResult r = run(cmd, &c);
    QVERIFY(r.started);
    QCOMPARE(r.exitCode, 0);
    QCOMPARE(c.out().size(), 1);
    const pid_t outsider = pid_t(c.out().constFirst().toInt());
    QVERIFY(outsider > 0);
    const bool stillThere = !processGone(outsider);
    ::kill(outsider, SIGKILL);
    QVERIFY(stillThere); // out of reach, as intended
    QVERIFY2(anyContains(c.system(), u"stopped reading output"_s), qPrintable(c.system().join(u" | "_s)));
    QVERIFY(!anyContains(c.system(), u"SIGTERM"_s));
}

void TestCommand::throwingSinkLeavesNothingBehind()
{
    pid_t grandchild = 0;
    CommandSink sink;
    sink.line = [&](LogStream, const QString &text) {
        grandchild = pid_t(text.toInt());
        throw std::runtime_error("sink failed");
    };
    CommandResult r;
    try {
        r = runCommand(shell(u"sleep 1000 & echo $!; wait"_s), sink);
    } catch (...) {
        QFAIL("runCommand threw");
    }
    QVERIFY(grandchild > 0);
    QVERIFY(!r.succeeded());
    QVERIFY(r.startError.contains(u"sink failed"_s));
    QVERIFY2(processGone(grandchild), "the grandchild outlived the run");
}

void TestCommand::concurrentRunsKeepTheirOwnOutput()
{
    constexpr int Runs = 8;
    constexpr int Lines = 300;
    struct Outcome
    {
        Capture capture;
        CommandResult result;
    };
    std::vector<Outcome> outcomes(Runs);

    const auto job = [&outcomes](int id) {
        Command cmd = shell(u"i=0; while [ $i -lt %1 ]; do echo \"$TDK_ID:$i\"; echo \"$TDK_ID:e$i\" >&2; "
                            "i=$((i+1)); done; echo \"::result::\\\"$TDK_ID\\\"\""_s.arg(Lines));
        cmd.env.insert(u"TDK_ID"_s, u"run%1"_s.arg(id));
        outcomes[size_t(id)].result = run(cmd, &outcomes[size_t(id)].capture);
    };

    // Half on std::threads, half on a QThreadPool: both are how runs get their threads.
    QThreadPool pool;
    pool.setMaxThreadCount(Runs / 2);
    std::vector<std::thread> threads;
    for (int id = 0; id < Runs; ++id) {
        if (id % 2 == 0)
            threads.emplace_back(job, id);
        else
            pool.start([job, id] { job(id); });
    }
    for (std::thread &t : threads)
        t.join();
    QVERIFY(pool.waitForDone(300000));

    for (int id = 0; id < Runs; ++id) {
        const Outcome &o = outcomes[size_t(id)];
        const QString tag = u"run%1:"_s.arg(id);
        QVERIFY2(o.result.succeeded(), qPrintable(tag + o.result.startError));
        QVERIFY(o.result.result.has_value());
        QCOMPARE(o.result.result->toString(), u"run%1"_s.arg(id));
        const QStringList out = o.capture.out();
        const QStringList err = o.capture.err();
        QCOMPARE(out.size(), Lines);
        QCOMPARE(err.size(), Lines);
        for (int i = 0; i < Lines; ++i) {
            QCOMPARE(out.at(i), tag + QString::number(i));
            QCOMPARE(err.at(i), tag + u'e' + QString::number(i));
        }
    }
}

void TestCommand::splitCommandLine_data()
{
    QTest::addColumn<QString>("line");
    QTest::addColumn<QStringList>("words");

    QTest::newRow("empty") << QString() << QStringList();
    QTest::newRow("blanks only") << u" \t \n "_s << QStringList();
    QTest::newRow("simple") << u"ls -la /tmp"_s << QStringList{u"ls"_s, u"-la"_s, u"/tmp"_s};
    QTest::newRow("runs of blanks") << u"  a \t b\n\nc  "_s << QStringList{u"a"_s, u"b"_s, u"c"_s};
    QTest::newRow("single quotes") << u"echo 'a  b' c"_s << QStringList{u"echo"_s, u"a  b"_s, u"c"_s};
    QTest::newRow("double quotes") << u"echo \"a  b\" c"_s << QStringList{u"echo"_s, u"a  b"_s, u"c"_s};
    QTest::newRow("parts join") << u"a'b'\"c\"d"_s << QStringList{u"abcd"_s};
    QTest::newRow("quoted blank joins") << u"pre' 'post"_s << QStringList{u"pre post"_s};
    QTest::newRow("empty single") << u"''"_s << QStringList{QString()};
    QTest::newRow("empty double") << u"\"\""_s << QStringList{QString()};
    QTest::newRow("empty between") << u"a '' b \"\" c"_s
                                   << QStringList{u"a"_s, QString(), u"b"_s, QString(), u"c"_s};
    QTest::newRow("single keeps backslash") << u"'a\\b\\'"_s << QStringList{u"a\\b\\"_s};
    QTest::newRow("single keeps double") << u"'say \"hi\"'"_s << QStringList{u"say \"hi\""_s};
    QTest::newRow("double keeps single") << u"\"it's\""_s << QStringList{u"it's"_s};
    QTest::newRow("double escapes") << u"\"\\$x \\` \\\" \\\\\""_s << QStringList{u"$x ` \" \\"_s};
    QTest::newRow("double keeps other backslashes") << u"\"a\\nb\\tc\\'\""_s << QStringList{u"a\\nb\\tc\\'"_s};
    QTest::newRow("double line continuation") << u"\"ab\\\ncd\""_s << QStringList{u"abcd"_s};
    QTest::newRow("double keeps newline") << u"\"a\nb\""_s << QStringList{u"a\nb"_s};
    QTest::newRow("escaped blank") << u"a\\ b c"_s << QStringList{u"a b"_s, u"c"_s};
    QTest::newRow("escaped quotes") << u"\\'\\\""_s << QStringList{u"'\""_s};
    QTest::newRow("escaped letter") << u"\\n"_s << QStringList{u"n"_s};
    QTest::newRow("escaped backslash") << u"a\\\\b"_s << QStringList{u"a\\b"_s};
    QTest::newRow("line continuation") << u"ab\\\ncd ef"_s << QStringList{u"abcd"_s, u"ef"_s};
    QTest::newRow("continuation between words") << u"a \\\n b"_s << QStringList{u"a"_s, u"b"_s};
    QTest::newRow("no expansion") << u"echo $HOME ~ *.txt '$HOME' \"$HOME\" ${X:-y}"_s
                                  << QStringList{u"echo"_s, u"$HOME"_s, u"~"_s, u"*.txt"_s, u"$HOME"_s,
                                                 u"$HOME"_s, u"${X:-y}"_s};
    QTest::newRow("separator is a word") << u"x; rm -rf ~"_s << QStringList{u"x;"_s, u"rm"_s, u"-rf"_s, u"~"_s};
    QTest::newRow("operators are words") << u"a && b || c | d > e < f & g"_s
                                         << QStringList{u"a"_s, u"&&"_s, u"b"_s, u"||"_s, u"c"_s, u"|"_s, u"d"_s,
                                                        u">"_s, u"e"_s, u"<"_s, u"f"_s, u"&"_s, u"g"_s};
    QTest::newRow("substitutions are words") << u"echo $(id) `id` \"$(id)\""_s
                                             << QStringList{u"echo"_s, u"$(id)"_s, u"`id`"_s, u"$(id)"_s};
    QTest::newRow("comment is a word") << u"a #b c"_s << QStringList{u"a"_s, u"#b"_s, u"c"_s};
    QTest::newRow("unicode") << u"caf\u00E9 'na\u00EFve \U0001F600'"_s
                             << QStringList{u"caf\u00E9"_s, u"na\u00EFve \U0001F600"_s};
    QTest::newRow("documented example") << u"tar -czf 'my backup.tgz' \"$HOME\"/docs"_s
                                        << QStringList{u"tar"_s, u"-czf"_s, u"my backup.tgz"_s, u"$HOME/docs"_s};
    QTest::newRow("carriage return separates") << u"a\r\nb"_s << QStringList{u"a"_s, u"b"_s};
}

void TestCommand::splitCommandLine()
{
    QFETCH(QString, line);
    QFETCH(QStringList, words);
    QString error = u"stale"_s;
    const std::optional<QStringList> result = taskdeck::splitCommandLine(line, &error);
    QVERIFY2(result.has_value(), qPrintable(error));
    QCOMPARE(*result, words);
    QVERIFY(error.isEmpty());
    // The error out-parameter is optional.
    QCOMPARE(taskdeck::splitCommandLine(line).value_or(QStringList{u"<failed>"_s}), words);
}

void TestCommand::splitCommandLineErrors_data()
{
    QTest::addColumn<QString>("line");
    QTest::addColumn<QString>("error");

    QTest::newRow("single") << u"echo 'abc"_s << u"unterminated single quote"_s;
    QTest::newRow("lone single") << u"'"_s << u"unterminated single quote"_s;
    QTest::newRow("single after double") << u"\"ok\" 'no"_s << u"unterminated single quote"_s;
    QTest::newRow("double") << u"echo \"abc"_s << u"unterminated double quote"_s;
    QTest::newRow("lone double") << u"\""_s << u"unterminated double quote"_s;
    QTest::newRow("escaped closing double") << u"\"abc\\\""_s << u"unterminated double quote"_s;
    QTest::newRow("backslash ends double") << u"\"abc\\"_s << u"unterminated double quote"_s;
    QTest::newRow("double inside single is literal") << u"'\"' \""_s << u"unterminated double quote"_s;
    QTest::newRow("trailing backslash") << u"echo abc\\"_s << u"trailing backslash"_s;
    QTest::newRow("only backslash") << u"\\"_s << u"trailing backslash"_s;
}

void TestCommand::splitCommandLineErrors()
{
    QFETCH(QString, line);
    QFETCH(QString, error);
    QString actual;
    QVERIFY(!taskdeck::splitCommandLine(line, &actual).has_value());
    QCOMPARE(actual, error);
    QVERIFY(!taskdeck::splitCommandLine(line).has_value());
}

QTEST_GUILESS_MAIN(TestCommand)
#include "tst_command.moc"
