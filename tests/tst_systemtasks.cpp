// SPDX-License-Identifier: MIT
// disk-usage on a real tree, http-check against a real HTTP server on 127.0.0.1.

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QJsonObject>
#include <QMutex>
#include <QScopeGuard>
#include <QSemaphore>
#include <QStandardPaths>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include "systemtasks.h"
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
    void recordProgress(const QString &runId, const Progress &progress) override
    {
        QMutexLocker locker(&m_mutex);
        m_progress[runId].append(progress);
    }
    void recordLog(const QString &, const LogLines &) override {}
    void recordFinished(const Run &, std::function<void()> durable) override { durable(); }

    QList<Progress> progress(const QString &runId) const
    {
        QMutexLocker locker(&m_mutex);
        return m_progress.value(runId);
    }

private:
    mutable QMutex m_mutex;
    QHash<QString, QList<Progress>> m_progress; // guarded by m_mutex
};

/*
 * A minimal HTTP/1.1 server on 127.0.0.1 with a few fixed routes. It runs on its own thread
 * so the test thread may block in TaskEngine::run() while the task talks to it.
 */
class LocalHttpServer final : public QThread
{
public:
    static constexpr qsizetype OkBodySize = 1234;
    static QByteArray okBody() { return QByteArray(OkBodySize, 'x'); }
    static QByteArray missingBody() { return QByteArrayLiteral("no such page\n"); }

    ~LocalHttpServer() override { stop(); }

    bool startListening()
    {
        start();
        m_ready.acquire();
        return m_port.load() != 0;
    }

    void stop()
    {
        quit();
        wait();
    }

    QUrl url(const QString &path) const
    {
        QUrl u;
        u.setScheme(u"http"_s);
        u.setHost(u"127.0.0.1"_s);
        u.setPort(m_port.load());
        u.setPath(path);
        return u;
    }

    int requests() const { return m_requests.load(); }
    int slowRequests() const { return m_slowRequests.load(); }

protected:
    void run() override
    {
        QTcpServer server;
        if (server.listen(QHostAddress::LocalHost, 0))
            m_port.store(server.serverPort());
        QObject::connect(&server, &QTcpServer::newConnection, &server, [&] {
            while (QTcpSocket *socket = server.nextPendingConnection())
                serve(socket);
        });
        m_ready.release();
        if (m_port.load() != 0)
            exec();
    }

private:
    void serve(QTcpSocket *socket)
    {
        auto buffer = std::make_shared<QByteArray>();
        QObject::connect(socket, &QTcpSocket::readyRead, socket, [this, socket, buffer] {
            buffer->append(socket->readAll());
            const qsizetype end = buffer->indexOf("\r\n\r\n");
            if (end < 0)
                return;
            const QList<QByteArray> requestLine = buffer->left(buffer->indexOf("\r\n")).split(' ');
            buffer->clear();
            if (requestLine.size() < 2)
                return;
            answer(socket, requestLine.at(0), requestLine.at(1));
        });
        QObject::connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    }

    void answer(QTcpSocket *socket, const QByteArray &method, const QByteArray &path)
    {
        ++m_requests;
        QByteArray status = "200 OK";
        QByteArray body;
        QByteArray extraHeaders;
        if (path == "/ok") {
            body = okBody();
        } else if (path == "/redirect") {
            status = "302 Found";
            extraHeaders = "Location: /ok\r\n";
        } else if (path == "/slow") {
            // Never answers: the client's transfer timeout or cancel has to end it.
            ++m_slowRequests;
            return;
        } else {
            status = "404 Not Found";
            body = missingBody();
        }
        QByteArray response = "HTTP/1.1 " + status + "\r\nContent-Type: text/plain\r\n"
                              "Content-Length: " + QByteArray::number(body.size()) + "\r\n"
                              "Connection: close\r\n" + extraHeaders + "\r\n";
        if (method != "HEAD")
            response += body;
        socket->write(response);
        socket->disconnectFromHost();
    }

    QSemaphore m_ready;
    std::atomic<quint16> m_port{0};
    std::atomic<int> m_requests{0};
    std::atomic<int> m_slowRequests{0};
};

QStringList logTexts(const LogLines &lines)
{
    QStringList texts;
    for (const LogLine &line : lines) {
        if (line.stream != LogStream::System)
            texts.append(line.text);
    }
    return texts;
}

// A local port nothing listens on: bound by us a moment ago, then released.
quint16 closedPort()
{
    QTcpServer probe;
    if (!probe.listen(QHostAddress::LocalHost, 0))
        return 0;
    const quint16 port = probe.serverPort();
    probe.close();
    return port;
}

bool writeFile(const QString &path, qsizetype size)
{
    QFile file(path);
    return QDir().mkpath(QFileInfo(path).absolutePath()) && file.open(QIODevice::WriteOnly)
        && file.write(QByteArray(size, 'a')) == size;
}

QJsonObject row(const QString &name, const QString &type, qint64 bytes, qint64 files)
{
    return QJsonObject{{u"name"_s, name}, {u"type"_s, type}, {u"bytes"_s, bytes}, {u"files"_s, files}};
}

} // namespace

class TestSystemTasks : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void registration();

    void diskUsageSizes();
    void diskUsageLimit();
    void diskUsageProgress();
    void diskUsageRejectsNonDirectory_data();
    void diskUsageRejectsNonDirectory();
    void diskUsageUnreadableIsNotFatal();
    void diskUsageFieldBounds();
    void diskUsageStopsWhenCanceled();

    void httpCheckRows();
    void httpCheckHead();
    void httpCheckProgressAndLog();
    void httpCheckInvalidLines();
    void httpCheckOnlyComments();
    void httpCheckAllFailed();
    void httpCheckCancel();

private:
    QString makeTree();
    RunResult runHttpCheck(const QStringList &lines, int timeout, const QString &method = u"GET"_s);

    QTemporaryDir m_dir;
    LocalHttpServer m_http;
    ProgressRecorder m_recorder; // outlives every engine, as the engine requires
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
};

void TestSystemTasks::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_dir.isValid());
    QVERIFY(m_http.startListening());
}

void TestSystemTasks::init()
{
    m_registry = std::make_unique<TaskRegistry>();
    registerSystemTasks(*m_registry);
    EngineConfig config;
    config.maxConcurrent = 2;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
    m_engine->setRecorder(&m_recorder);
}

void TestSystemTasks::cleanup()
{
    m_engine.reset();
    m_registry.reset();
}

/*
 * tree/
 *   big.bin          5000
 *   docs/            a.txt 100, sub/b.txt 2000, sub/deeper/c.txt 3000, loop -> tree/
 *   empty/
 *   fifo             (a FIFO)
 *   link -> big.bin
 *   small.txt        10
 *   .hidden          7
 */
QString TestSystemTasks::makeTree()
{
    static int counter = 0;
    const QString root = m_dir.filePath(u"tree%1"_s.arg(++counter));
    const bool ok = writeFile(root + u"/big.bin"_s, 5000)
        && writeFile(root + u"/docs/a.txt"_s, 100)
        && writeFile(root + u"/docs/sub/b.txt"_s, 2000)
        && writeFile(root + u"/docs/sub/deeper/c.txt"_s, 3000)
        && QFile::link(root, root + u"/docs/loop"_s)
        && QDir().mkpath(root + u"/empty"_s)
        && ::mkfifo(QFile::encodeName(root + u"/fifo"_s).constData(), 0600) == 0
        && QFile::link(u"big.bin"_s, root + u"/link"_s)
        && writeFile(root + u"/small.txt"_s, 10)
        && writeFile(root + u"/.hidden"_s, 7);
    return ok ? root : QString();
}

RunResult TestSystemTasks::runHttpCheck(const QStringList &lines, int timeout, const QString &method)
{
    return m_engine->run(u"http-check"_s, {{u"urls"_s, lines.join(u'\n')},
                                           {u"timeout"_s, timeout},
                                           {u"method"_s, method}});
}

void TestSystemTasks::registration()
{
    QCOMPARE(m_registry->size(), 2);

    const TaskPtr du = m_registry->find(u"disk-usage"_s);
    QVERIFY(du);
    QCOMPARE(du->title, u"Disk Usage"_s);
    QCOMPARE(du->category, u"report"_s);
    QCOMPARE(du->icon, u"pie-chart"_s);
    QVERIFY(!du->tags.isEmpty());
    QVERIFY(!du->description.isEmpty());
    QVERIFY(!du->isDangerous());
    QCOMPARE(du->fields.size(), 2);
    QCOMPARE(du->fields.at(0).key, u"path"_s);
    QCOMPARE(du->fields.at(0).type, FieldType::Text);
    QVERIFY(du->fields.at(0).required);
    QCOMPARE(du->fields.at(1).key, u"limit"_s);
    QCOMPARE(du->fields.at(1).type, FieldType::Integer);
    QCOMPARE(du->fields.at(1).defaultValue.toInteger(), 50);
    QCOMPARE(du->fields.at(1).min, 1.0);
    QCOMPARE(du->fields.at(1).max, 10000.0);

    const TaskPtr http = m_registry->find(u"http-check"_s);
    QVERIFY(http);
    QCOMPARE(http->title, u"HTTP Check"_s);
    QCOMPARE(http->category, u"admin"_s);
    QCOMPARE(http->icon, u"globe"_s);
    QVERIFY(!http->tags.isEmpty());
    QVERIFY(!http->description.isEmpty());
    QCOMPARE(http->fields.size(), 3);
    QCOMPARE(http->fields.at(0).key, u"urls"_s);
    QCOMPARE(http->fields.at(0).type, FieldType::Textarea);
    QVERIFY(http->fields.at(0).required);
    QCOMPARE(http->fields.at(1).key, u"timeout"_s);
    QCOMPARE(http->fields.at(1).defaultValue.toInteger(), 10);
    QCOMPARE(http->fields.at(1).min, 1.0);
    QCOMPARE(http->fields.at(1).max, 300.0);
    QCOMPARE(http->fields.at(2).key, u"method"_s);
    QCOMPARE(http->fields.at(2).type, FieldType::Select);
    QCOMPARE(http->fields.at(2).defaultValue.toString(), u"GET"_s);
    QCOMPARE(http->fields.at(2).choices.size(), 2);

    for (const TaskPtr &task : {du, http}) {
        for (const Field &field : task->fields) {
            QVERIFY2(!field.title.isEmpty(), qPrintable(field.key));
            QVERIFY2(!field.description.isEmpty(), qPrintable(field.key));
        }
    }
}

void TestSystemTasks::diskUsageSizes()
{
    const QString root = makeTree();
    QVERIFY(!root.isEmpty());

    const RunResult r = m_engine->run(u"disk-usage"_s, {{u"path"_s, root}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));

    // The link inside docs points back at the root: following it would never end or count
    // everything twice.
    const QJsonArray expected = {
        row(u"docs"_s, u"dir"_s, 5100, 3),
        row(u"big.bin"_s, u"file"_s, 5000, 1),
        row(u"small.txt"_s, u"file"_s, 10, 1),
        row(u".hidden"_s, u"file"_s, 7, 1),
        row(u"empty"_s, u"dir"_s, 0, 0),
        row(u"fifo"_s, u"other"_s, 0, 0),
        row(u"link"_s, u"link"_s, 0, 0),
    };
    QCOMPARE(r.run.result.toArray(), expected);

    const QStringList log = logTexts(m_engine->recentLog(r.run.id));
    QVERIFY2(log.contains(u"7 entries, total 9.88 KiB (10117 bytes) in 6 files"_s),
             qPrintable(log.join(u'\n')));
}

void TestSystemTasks::diskUsageLimit()
{
    const QString root = makeTree();
    QVERIFY(!root.isEmpty());

    const RunResult r = m_engine->run(u"disk-usage"_s, {{u"path"_s, root}, {u"limit"_s, 2}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    const QJsonArray rows = r.run.result.toArray();
    QCOMPARE(rows.size(), 2);
    QCOMPARE(rows.at(0).toObject(), row(u"docs"_s, u"dir"_s, 5100, 3));
    QCOMPARE(rows.at(1).toObject(), row(u"big.bin"_s, u"file"_s, 5000, 1));

    // The summary still covers every entry, not only the rows shown.
    const QStringList log = logTexts(m_engine->recentLog(r.run.id));
    QCOMPARE(log.size(), 1);
    QVERIFY2(log.constFirst().startsWith(u"7 entries, total 9.88 KiB (10117 bytes)"_s),
             qPrintable(log.constFirst()));
    QVERIFY2(log.constFirst().contains(u"showing the largest 2"_s), qPrintable(log.constFirst()));
}

void TestSystemTasks::diskUsageProgress()
{
    const QString root = makeTree();
    QVERIFY(!root.isEmpty());

    const RunResult r = m_engine->run(u"disk-usage"_s, {{u"path"_s, root}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Succeeded);

    const QList<Progress> progress = m_recorder.progress(r.run.id);
    QCOMPARE(progress.size(), 7);
    QStringList names;
    for (qsizetype i = 0; i < progress.size(); ++i) {
        QCOMPARE(progress.at(i).done, i + 1);
        QCOMPARE(progress.at(i).total, 7);
        names.append(progress.at(i).message);
    }
    names.sort();
    QCOMPARE(names, QStringList({u".hidden"_s, u"big.bin"_s, u"docs"_s, u"empty"_s, u"fifo"_s,
                                 u"link"_s, u"small.txt"_s}));
    QCOMPARE(r.run.progress.percent(), 100);
}

void TestSystemTasks::diskUsageRejectsNonDirectory_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("reason");
    QTest::newRow("file") << u"plain.txt"_s << u"is not a directory"_s;
    QTest::newRow("missing") << u"no-such-dir"_s << u"does not exist"_s;
}

void TestSystemTasks::diskUsageRejectsNonDirectory()
{
    QFETCH(QString, name);
    QFETCH(QString, reason);
    QVERIFY(writeFile(m_dir.filePath(u"plain.txt"_s), 3));
    const QString path = m_dir.filePath(name);

    const RunResult r = m_engine->run(u"disk-usage"_s, {{u"path"_s, path}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"NotADirectory"_s);
    QVERIFY2(r.run.error.message.contains(QFileInfo(path).absoluteFilePath()),
             qPrintable(r.run.error.message));
    QVERIFY2(r.run.error.message.contains(reason), qPrintable(r.run.error.message));
}

void TestSystemTasks::diskUsageUnreadableIsNotFatal()
{
    const QString root = makeTree();
    QVERIFY(!root.isEmpty());
    const QString locked = root + u"/docs/sub"_s;
    QVERIFY(QFile::setPermissions(locked, QFileDevice::Permissions()));
    auto restore = qScopeGuard([&] {
        QFile::setPermissions(locked, QFileDevice::ReadOwner | QFileDevice::WriteOwner
                                          | QFileDevice::ExeOwner);
    });
    if (QDir(locked).isReadable() && !QDir(locked).entryList(QDir::Files | QDir::Dirs).isEmpty())
        QSKIP("permissions do not stop this user (root?), so nothing is unreadable");

    const RunResult r = m_engine->run(u"disk-usage"_s, {{u"path"_s, root}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
    const QJsonArray rows = r.run.result.toArray();
    QCOMPARE(rows.at(0).toObject(), row(u"big.bin"_s, u"file"_s, 5000, 1));
    QCOMPARE(rows.at(1).toObject(), row(u"docs"_s, u"dir"_s, 100, 1));

    const LogLines lines = m_engine->recentLog(r.run.id);
    QStringList errors;
    QString summary;
    for (const LogLine &line : lines) {
        if (line.stream == LogStream::Err)
            errors.append(line.text);
        else if (line.stream == LogStream::Out)
            summary = line.text;
    }
    QCOMPARE(errors.size(), 1);
    QVERIFY2(errors.constFirst().contains(locked), qPrintable(errors.constFirst()));
    QVERIFY2(summary.contains(u"1 unreadable"_s), qPrintable(summary));
}

void TestSystemTasks::diskUsageFieldBounds()
{
    const StartResult zero =
        m_engine->start(u"disk-usage"_s, {{u"path"_s, m_dir.path()}, {u"limit"_s, 0}});
    QCOMPARE(zero.error.code, StartError::Code::InvalidArguments);
    const StartResult tooMany =
        m_engine->start(u"disk-usage"_s, {{u"path"_s, m_dir.path()}, {u"limit"_s, 10001}});
    QCOMPARE(tooMany.error.code, StartError::Code::InvalidArguments);
    const StartResult noPath = m_engine->start(u"disk-usage"_s, {});
    QCOMPARE(noPath.error.code, StartError::Code::InvalidArguments);
    QCOMPARE(noPath.error.fields.constFirst().field, u"path"_s);
    QVERIFY(m_engine->activeRuns().isEmpty());
}

void TestSystemTasks::diskUsageStopsWhenCanceled()
{
    const QString root = makeTree();
    QVERIFY(!root.isEmpty());
    // The run is canceled before the walk starts; the walk has to notice and stop instead
    // of returning a table. (The engine reports Canceled either way, so look at what the
    // task function itself did.)
    auto outcome = std::make_shared<QString>();
    Task canceled = diskUsageTask();
    canceled.key = u"canceled-disk-usage"_s;
    TaskEngine *engine = m_engine.get();
    canceled.fn = [walk = canceled.fn, engine, outcome](RunContext &ctx) -> QJsonValue {
        engine->cancel(ctx.runId());
        try {
            const QJsonValue result = walk(ctx);
            *outcome = u"returned %1 rows"_s.arg(result.toArray().size());
            return result;
        } catch (const TaskError &e) {
            *outcome = u"threw "_s + e.kind();
            throw;
        }
    };
    QVERIFY(m_registry->add(canceled));

    const RunResult r = m_engine->run(u"canceled-disk-usage"_s, {{u"path"_s, root}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Canceled);
    QCOMPARE(*outcome, u"threw Canceled"_s);
    QVERIFY(m_recorder.progress(r.run.id).size() < 7);
}

void TestSystemTasks::httpCheckRows()
{
    const quint16 refused = closedPort();
    QVERIFY(refused != 0);
    QUrl refusedUrl = m_http.url(u"/"_s);
    refusedUrl.setPort(refused);

    const QList<QUrl> urls = {m_http.url(u"/ok"_s), m_http.url(u"/missing"_s),
                              m_http.url(u"/slow"_s), refusedUrl, m_http.url(u"/redirect"_s)};
    QStringList lines;
    for (const QUrl &url : urls)
        lines.append(url.toString());
    const RunResult r = runHttpCheck(lines, 1);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));

    const QJsonArray rows = r.run.result.toArray();
    QCOMPARE(rows.size(), urls.size());
    for (qsizetype i = 0; i < rows.size(); ++i) {
        const QJsonObject o = rows.at(i).toObject();
        QCOMPARE(o.value(u"url"_s).toString(), urls.at(i).toString());
        QVERIFY(o.value(u"latencyMs"_s).isDouble());
        QVERIFY(o.value(u"latencyMs"_s).toInteger() >= 0);
    }

    const QJsonObject ok = rows.at(0).toObject();
    QCOMPARE(ok.value(u"status"_s).toInt(), 200);
    QCOMPARE(ok.value(u"ok"_s).toBool(), true);
    QCOMPARE(ok.value(u"bytes"_s).toInteger(), LocalHttpServer::OkBodySize);
    QVERIFY(ok.value(u"error"_s).isNull());

    const QJsonObject missing = rows.at(1).toObject();
    QCOMPARE(missing.value(u"status"_s).toInt(), 404);
    QCOMPARE(missing.value(u"ok"_s).toBool(), false);
    QCOMPARE(missing.value(u"bytes"_s).toInteger(), LocalHttpServer::missingBody().size());
    QCOMPARE(missing.value(u"error"_s).toString(), u"HTTP 404 Not Found"_s);

    const QJsonObject slow = rows.at(2).toObject();
    QCOMPARE(slow.value(u"status"_s).toInt(), 0);
    QCOMPARE(slow.value(u"ok"_s).toBool(), false);
    QCOMPARE(slow.value(u"bytes"_s).toInteger(), 0);
    QVERIFY2(slow.value(u"error"_s).toString().contains(u"timed out"_s),
             qPrintable(slow.value(u"error"_s).toString()));

    const QJsonObject closed = rows.at(3).toObject();
    QCOMPARE(closed.value(u"status"_s).toInt(), 0);
    QCOMPARE(closed.value(u"ok"_s).toBool(), false);
    QCOMPARE(closed.value(u"bytes"_s).toInteger(), 0);
    QVERIFY2(closed.value(u"error"_s).toString().contains(u"refused"_s, Qt::CaseInsensitive),
             qPrintable(closed.value(u"error"_s).toString()));

    // Same-scheme redirects are followed; the row shows where they led.
    const QJsonObject redirect = rows.at(4).toObject();
    QCOMPARE(redirect.value(u"status"_s).toInt(), 200);
    QCOMPARE(redirect.value(u"ok"_s).toBool(), true);
    QCOMPARE(redirect.value(u"bytes"_s).toInteger(), LocalHttpServer::OkBodySize);
    QVERIFY(redirect.value(u"error"_s).isNull());
}

void TestSystemTasks::httpCheckHead()
{
    const RunResult r = runHttpCheck({m_http.url(u"/ok"_s).toString()}, 10, u"HEAD"_s);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
    const QJsonObject o = r.run.result.toArray().at(0).toObject();
    QCOMPARE(o.value(u"status"_s).toInt(), 200);
    QCOMPARE(o.value(u"ok"_s).toBool(), true);
    QCOMPARE(o.value(u"bytes"_s).toInteger(), 0);
}

void TestSystemTasks::httpCheckProgressAndLog()
{
    const QStringList lines = {
        u"# the service and its health page"_s,
        m_http.url(u"/ok"_s).toString(),
        QString(),
        u"   "_s + m_http.url(u"/missing"_s).toString() + u"   "_s,
        m_http.url(u"/redirect"_s).toString(),
    };
    const RunResult r = runHttpCheck(lines, 10);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
    QCOMPARE(r.run.result.toArray().size(), 3);

    const QList<Progress> progress = m_recorder.progress(r.run.id);
    QCOMPARE(progress.size(), 3);
    const QStringList expected = {m_http.url(u"/ok"_s).toString(),
                                  m_http.url(u"/missing"_s).toString(),
                                  m_http.url(u"/redirect"_s).toString()};
    for (qsizetype i = 0; i < progress.size(); ++i) {
        QCOMPARE(progress.at(i).done, i + 1);
        QCOMPARE(progress.at(i).total, 3);
        QCOMPARE(progress.at(i).message, expected.at(i));
    }

    const LogLines log = m_engine->recentLog(r.run.id);
    QStringList out;
    QStringList err;
    for (const LogLine &line : log) {
        if (line.stream == LogStream::Out)
            out.append(line.text);
        else if (line.stream == LogStream::Err)
            err.append(line.text);
    }
    QCOMPARE(out.size(), 2);
    QCOMPARE(err.size(), 1);
    QVERIFY2(out.at(0).startsWith(u"GET "_s + expected.at(0) + u": 200"_s), qPrintable(out.at(0)));
    QVERIFY2(err.at(0).contains(expected.at(1)), qPrintable(err.at(0)));
    QVERIFY2(err.at(0).contains(u"404"_s), qPrintable(err.at(0)));
}

void TestSystemTasks::httpCheckInvalidLines()
{
    const int before = m_http.requests();
    const QStringList lines = {
        m_http.url(u"/ok"_s).toString(),
        u"ftp://127.0.0.1/file"_s,
        u"# a comment stays a comment: ftp://ignored"_s,
        u"just words"_s,
        u"http://"_s,
        u"https://127.0.0.1:99999/"_s,
    };
    const RunResult r = runHttpCheck(lines, 10);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"InvalidUrl"_s);
    const QString message = r.run.error.message;
    QVERIFY2(message.contains(u"line 2: ftp://127.0.0.1/file"_s), qPrintable(message));
    QVERIFY2(message.contains(u"line 4: just words"_s), qPrintable(message));
    QVERIFY2(message.contains(u"line 5: http://"_s), qPrintable(message));
    QVERIFY2(message.contains(u"line 6: https://127.0.0.1:99999/"_s), qPrintable(message));
    QVERIFY2(!message.contains(u"line 1"_s), qPrintable(message));
    QVERIFY2(!message.contains(u"line 3"_s), qPrintable(message));
    // Nothing is fetched when any line is bad.
    QCOMPARE(m_http.requests(), before);
}

void TestSystemTasks::httpCheckOnlyComments()
{
    const RunResult r = runHttpCheck({u"# nothing yet"_s, QString()}, 10);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"InvalidUrl"_s);
}

void TestSystemTasks::httpCheckAllFailed()
{
    const quint16 refused = closedPort();
    QVERIFY(refused != 0);
    QUrl refusedUrl = m_http.url(u"/"_s);
    refusedUrl.setPort(refused);
    const QStringList lines = {m_http.url(u"/missing"_s).toString(), refusedUrl.toString()};

    const RunResult r = runHttpCheck(lines, 5);
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"HttpCheckFailed"_s);
    QVERIFY2(r.run.error.message.contains(u"all 2 URLs failed"_s), qPrintable(r.run.error.message));
    QVERIFY2(r.run.error.detail.contains(lines.at(0)), qPrintable(r.run.error.detail));
    QVERIFY2(r.run.error.detail.contains(lines.at(1)), qPrintable(r.run.error.detail));
    QVERIFY2(r.run.error.detail.contains(u"HTTP 404 Not Found"_s), qPrintable(r.run.error.detail));
    QCOMPARE(m_recorder.progress(r.run.id).size(), 2);
}

void TestSystemTasks::httpCheckCancel()
{
    const int before = m_http.slowRequests();
    const StartResult started = m_engine->start(
        u"http-check"_s, {{u"urls"_s, m_http.url(u"/slow"_s).toString()}, {u"timeout"_s, 300}});
    QVERIFY2(started.ok(), qPrintable(started.error.message));
    QTRY_VERIFY_WITH_TIMEOUT(m_http.slowRequests() > before, 30000);

    QVERIFY(m_engine->cancel(started.runId));
    // Far below the 300 s transfer timeout: only the cancel can end the run in time.
    const std::optional<Run> finished = m_engine->waitForFinished(started.runId, 60s);
    QVERIFY(finished);
    QCOMPARE(finished->status, RunStatus::Canceled);
    QCOMPARE(finished->error.kind, u"Canceled"_s);
}

QTEST_GUILESS_MAIN(TestSystemTasks)
#include "tst_systemtasks.moc"
