// SPDX-License-Identifier: MIT
// The built-in tasks, run in-process through the public engine API.

#include <algorithm>
#include <functional>
#include <memory>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QMutex>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include "builtintasks.h"
#include "runcontext.h"
#include "runrecorder.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

// Sees every progress report as the task makes it; the engine's signals coalesce them.
class ProgressRecorder final : public IRunRecorder
{
public:
    void recordQueued(const Run &) override {}
    void recordStarted(const Run &) override {}
    void recordRetrying(const Run &) override {}
    void recordProgress(const QString &, const Progress &progress) override
    {
        QMutexLocker locker(&m_mutex);
        m_progress.append(progress);
    }
    void recordLog(const QString &, const LogLines &) override {}
    void recordFinished(const Run &, std::function<void()> durable) override { durable(); }

    QList<Progress> progress() const
    {
        QMutexLocker locker(&m_mutex);
        return m_progress;
    }

private:
    mutable QMutex m_mutex;
    QList<Progress> m_progress; // guarded by m_mutex
};

RunOptions confirmed()
{
    RunOptions options;
    options.confirmed = true;
    return options;
}

QStringList logTexts(const LogLines &lines, LogStream stream)
{
    QStringList texts;
    for (const LogLine &line : lines) {
        if (line.stream == stream)
            texts.append(line.text);
    }
    return texts;
}

bool hasFieldError(const FieldErrors &errors, const QString &field)
{
    return std::any_of(errors.cbegin(), errors.cend(),
                       [&](const FieldError &e) { return e.field == field; });
}

} // namespace

class TestBuiltins : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void registration();
    void checksumDigest_data();
    void checksumDigest();
    void checksumDefaultsToSha256();
    void checksumResolvesRelativePath();
    void checksumReportsProgress();
    void checksumMissingFileRejected();
    void checksumBadAlgorithmRejected();
    void checksumUnreadableFile();
    void execEcho();
    void execNeedsConfirmation();
    void execQuotingError();
    void execFailingCommand();
    void execWorkingDirectory();
    void execCancel();

private:
    QString writeFile(const QString &name, const QByteArray &data);

    QTemporaryDir m_dir;
    ProgressRecorder m_recorder; // outlives every engine, as the engine requires
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
};

void TestBuiltins::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_dir.isValid());
}

void TestBuiltins::init()
{
    m_registry = std::make_unique<TaskRegistry>();
    registerBuiltinTasks(*m_registry);
    EngineConfig config;
    config.maxConcurrent = 2;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
}

void TestBuiltins::cleanup()
{
    m_engine.reset();
    m_registry.reset();
}

QString TestBuiltins::writeFile(const QString &name, const QByteArray &data)
{
    const QString path = m_dir.filePath(name);
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(data) != data.size())
        return QString();
    return path;
}

void TestBuiltins::registration()
{
    QCOMPARE(m_registry->size(), 2);

    const TaskPtr exec = m_registry->find(u"exec"_s);
    QVERIFY(exec);
    QCOMPARE(exec->title, u"Run Command"_s);
    QCOMPARE(exec->category, u"admin"_s);
    QCOMPARE(exec->icon, u"terminal"_s);
    QCOMPARE(exec->tags, QStringList({u"shell"_s, u"process"_s}));
    QVERIFY(exec->isDangerous());
    QCOMPARE(exec->fields.size(), 2);
    QCOMPARE(exec->fields.at(0).key, u"command"_s);
    QVERIFY(exec->fields.at(0).required);
    QCOMPARE(exec->fields.at(1).key, u"cwd"_s);
    QVERIFY(!exec->fields.at(1).required);

    const TaskPtr checksum = m_registry->find(u"checksum"_s);
    QVERIFY(checksum);
    QCOMPARE(checksum->title, u"File Checksum"_s);
    QCOMPARE(checksum->category, u"data"_s);
    QCOMPARE(checksum->icon, u"fingerprint"_s);
    QCOMPARE(checksum->tags, QStringList({u"file"_s, u"hash"_s}));
    QVERIFY(!checksum->isDangerous());
    QCOMPARE(checksum->fields.size(), 2);
    QCOMPARE(checksum->fields.at(0).type, FieldType::File);
    QVERIFY(checksum->fields.at(0).required);
    QCOMPARE(checksum->fields.at(1).type, FieldType::Select);
    QCOMPARE(checksum->fields.at(1).defaultValue, QJsonValue(u"sha256"_s));
    QCOMPARE(checksum->fields.at(1).choices.size(), 4);
}

void TestBuiltins::checksumDigest_data()
{
    QTest::addColumn<QString>("algorithm");
    QTest::addColumn<QByteArray>("data");
    QTest::addColumn<QString>("digest");

    // Published test vectors (RFC 1321, FIPS 180).
    QTest::newRow("md5 abc") << u"md5"_s << QByteArray("abc")
                             << u"900150983cd24fb0d6963f7d28e17f72"_s;
    QTest::newRow("sha1 abc") << u"sha1"_s << QByteArray("abc")
                              << u"a9993e364706816aba3e25717850c26c9cd0d89d"_s;
    QTest::newRow("sha256 abc")
        << u"sha256"_s << QByteArray("abc")
        << u"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"_s;
    QTest::newRow("sha512 abc")
        << u"sha512"_s << QByteArray("abc")
        << u"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
           u"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"_s;
    // Longer than the smallest read buffer: read in several pieces, or in one sized to the file.
    QTest::newRow("sha256 million a")
        << u"sha256"_s << QByteArray(1000000, 'a')
        << u"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"_s;
    QTest::newRow("md5 million a") << u"md5"_s << QByteArray(1000000, 'a')
                                   << u"7707d6ae4e027c70eea2a935c2296f21"_s;
    QTest::newRow("md5 empty") << u"md5"_s << QByteArray()
                               << u"d41d8cd98f00b204e9800998ecf8427e"_s;
    QTest::newRow("sha256 empty")
        << u"sha256"_s << QByteArray()
        << u"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"_s;
}

void TestBuiltins::checksumDigest()
{
    QFETCH(QString, algorithm);
    QFETCH(QByteArray, data);
    QFETCH(QString, digest);

    const QString path = writeFile(u"vector-"_s + algorithm, data);
    QVERIFY(!path.isEmpty());
    const RunResult r = m_engine->run(u"checksum"_s,
                                      {{u"file"_s, path}, {u"algorithm"_s, algorithm}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(runStatusName(r.run.status), u"succeeded"_s);
    const QJsonObject result = r.run.result.toObject();
    QCOMPARE(result.value(u"digest"_s).toString(), digest);
    QCOMPARE(result.value(u"algorithm"_s).toString(), algorithm);
    QCOMPARE(result.value(u"size"_s).toInteger(), data.size());
    QCOMPARE(result.value(u"file"_s).toString(), QFileInfo(path).absoluteFilePath());
}

void TestBuiltins::checksumDefaultsToSha256()
{
    const QString path = writeFile(u"default.txt"_s, "abc");
    const RunResult r = m_engine->run(u"checksum"_s, {{u"file"_s, path}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(r.run.result.toObject().value(u"algorithm"_s).toString(), u"sha256"_s);
    QCOMPARE(r.run.result.toObject().value(u"digest"_s).toString(),
             u"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"_s);
}

void TestBuiltins::checksumResolvesRelativePath()
{
    const QString path = writeFile(u"relative.txt"_s, "abc");
    const QString previous = QDir::currentPath();
    QVERIFY(QDir::setCurrent(m_dir.path()));
    const RunResult r = m_engine->run(u"checksum"_s, {{u"file"_s, u"relative.txt"_s}});
    QDir::setCurrent(previous);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    const QString file = r.run.result.toObject().value(u"file"_s).toString();
    QVERIFY2(QFileInfo(file).isAbsolute(), qPrintable(file));
    QCOMPARE(QFileInfo(file).canonicalFilePath(), QFileInfo(path).canonicalFilePath());
}

void TestBuiltins::checksumReportsProgress()
{
    constexpr qint64 size = 8 * 1024 * 1024;
    const QString path = writeFile(u"big.bin"_s, QByteArray(size, 'x'));
    QVERIFY(!path.isEmpty());
    ProgressRecorder &recorder = m_recorder;
    m_engine->setRecorder(&recorder);

    const RunResult r = m_engine->run(u"checksum"_s, {{u"file"_s, path}, {u"algorithm"_s, u"md5"_s}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(r.run.result.toObject().value(u"size"_s).toInteger(), size);

    const QList<Progress> progress = recorder.progress();
    QVERIFY2(progress.size() > 1, qPrintable(QString::number(progress.size())));
    qint64 previous = -1;
    for (const Progress &p : progress) {
        QCOMPARE(p.total, size);
        QVERIFY(p.done >= previous);
        QCOMPARE(p.message, u"hashing big.bin"_s);
        previous = p.done;
    }
    QCOMPARE(progress.constLast().done, size);
    QCOMPARE(r.run.progress.done, size);
    QCOMPARE(r.run.progress.percent(), 100);
}

void TestBuiltins::checksumMissingFileRejected()
{
    const QString missing = m_dir.filePath(u"does-not-exist"_s);
    const StartResult started = m_engine->start(u"checksum"_s, {{u"file"_s, missing}});
    QVERIFY(!started.ok());
    QVERIFY(started.runId.isEmpty());
    QCOMPARE(started.error.code, StartError::Code::InvalidArguments);
    QVERIFY(hasFieldError(started.error.fields, u"file"_s));
    QVERIFY(m_engine->activeRuns().isEmpty());

    const StartResult noFile = m_engine->start(u"checksum"_s, {});
    QCOMPARE(noFile.error.code, StartError::Code::InvalidArguments);
    QVERIFY(hasFieldError(noFile.error.fields, u"file"_s));
}

void TestBuiltins::checksumBadAlgorithmRejected()
{
    const QString path = writeFile(u"algo.txt"_s, "abc");
    const StartResult started =
        m_engine->start(u"checksum"_s, {{u"file"_s, path}, {u"algorithm"_s, u"crc32"_s}});
    QCOMPARE(started.error.code, StartError::Code::InvalidArguments);
    QCOMPARE(started.error.fields.size(), 1);
    QCOMPARE(started.error.fields.constFirst().field, u"algorithm"_s);
    QVERIFY(m_engine->activeRuns().isEmpty());
}

void TestBuiltins::checksumUnreadableFile()
{
    // Validation already refuses missing and unreadable files, so lose the file between
    // validation and the read, the race the task itself has to handle.
    const QString path = writeFile(u"vanishing.txt"_s, "abc");
    QVERIFY(!path.isEmpty());
    Task vanishing = checksumTask();
    vanishing.key = u"vanishing-checksum"_s;
    vanishing.fn = [hash = vanishing.fn](RunContext &ctx) {
        QFile::remove(ctx.arg(u"file"_s).toString());
        return hash(ctx);
    };
    QVERIFY(m_registry->add(vanishing));

    const RunResult r = m_engine->run(u"vanishing-checksum"_s, {{u"file"_s, path}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QVERIFY2(r.run.error.message.contains(QFileInfo(path).absoluteFilePath()),
             qPrintable(r.run.error.message));
}

void TestBuiltins::execEcho()
{
    const RunResult r = m_engine->run(u"exec"_s, {{u"command"_s, u"echo hello"_s}}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(r.run.result.toObject().value(u"exitCode"_s).toInt(-1), 0);
    QCOMPARE(logTexts(m_engine->recentLog(r.run.id), LogStream::Out), QStringList{u"hello"_s});
}

void TestBuiltins::execNeedsConfirmation()
{
    const StartResult started = m_engine->start(u"exec"_s, {{u"command"_s, u"echo hello"_s}});
    QVERIFY(!started.ok());
    QVERIFY(started.runId.isEmpty());
    QCOMPARE(started.error.code, StartError::Code::ConfirmationRequired);
    QVERIFY(m_engine->activeRuns().isEmpty());
}

void TestBuiltins::execQuotingError()
{
    const RunResult r =
        m_engine->run(u"exec"_s, {{u"command"_s, u"echo \"unterminated"_s}}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"InvalidCommand"_s);

    const RunResult blank = m_engine->run(u"exec"_s, {{u"command"_s, u"   "_s}}, confirmed());
    QVERIFY(blank.ok());
    QCOMPARE(blank.run.status, RunStatus::Failed);
    QCOMPARE(blank.run.error.kind, u"InvalidCommand"_s);
}

void TestBuiltins::execFailingCommand()
{
    const RunResult r =
        m_engine->run(u"exec"_s, {{u"command"_s, u"sh -c 'echo oops >&2; exit 3'"_s}}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QVERIFY2(r.run.error.message.contains(u'3'), qPrintable(r.run.error.message));
    QCOMPARE(logTexts(m_engine->recentLog(r.run.id), LogStream::Err), QStringList{u"oops"_s});
}

void TestBuiltins::execWorkingDirectory()
{
    const RunResult r = m_engine->run(
        u"exec"_s, {{u"command"_s, u"pwd"_s}, {u"cwd"_s, m_dir.path()}}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    const QStringList out = logTexts(m_engine->recentLog(r.run.id), LogStream::Out);
    QCOMPARE(out.size(), 1);
    QCOMPARE(QFileInfo(out.constFirst()).canonicalFilePath(), QDir(m_dir.path()).canonicalPath());

    const RunResult missing = m_engine->run(
        u"exec"_s, {{u"command"_s, u"pwd"_s}, {u"cwd"_s, m_dir.filePath(u"nope"_s)}}, confirmed());
    QVERIFY(missing.ok());
    QCOMPARE(missing.run.status, RunStatus::Failed);
}

void TestBuiltins::execCancel()
{
    const StartResult started =
        m_engine->start(u"exec"_s, {{u"command"_s, u"sleep 30"_s}}, confirmed());
    QVERIFY2(started.ok(), qPrintable(started.error.message));
    QTRY_VERIFY_WITH_TIMEOUT(m_engine->status(started.runId) == RunStatus::Running, 30000);
    QVERIFY(m_engine->cancel(started.runId));
    const std::optional<Run> finished = m_engine->waitForFinished(started.runId, 60s);
    QVERIFY(finished);
    QCOMPARE(finished->status, RunStatus::Canceled);
}

QTEST_GUILESS_MAIN(TestBuiltins)
#include "tst_builtins.moc"
