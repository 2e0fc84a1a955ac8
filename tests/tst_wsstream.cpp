// SPDX-License-Identifier: MIT
// The live run stream (/ws/task/{runId}) over real sockets: the log message format, a
// hundred clients on one run through the admin server, resume from the middle and after the
// end, a client slower than the run, and a client that takes nothing (told "behind"); tail
// mode: the lines skipped named exactly, resume after a skip, skipping again while a client
// is behind (never a progress report or a status), and every line for a client keeping up.

#include "adminserver.h"
#include "runcontext.h"
#include "runfollower.h"
#include "runstream.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "testsupport.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QMutex>
#include <QPointer>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QSemaphore>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>
#include <QUrlQuery>
#include <QWebSocket>
#include <QWebSocketServer>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

/*! What one client saw: the lines in the order they came, checked as they come. */
struct Received
{
    qint64 lastSeq = 0;  // the seq of the last event taken
    qint64 lastLine = 0; // the number of the last line taken
    qint64 lines = 0;
    QString problem;     // the first thing out of order, empty when none
    QStringList types;
    qint64 behindSeq = -1;
    bool sawSnapshot = false;
    qint64 skippedLines = 0; // lines named as not sent (tail mode)
    QList<QList<qint64>> skips; // each skipped message: from, to, seq
    qint64 others = 0;       // events neither log lines nor notes: status, progress, finish

    /*! Takes a note of lines not sent: they must be the very next ones. */
    void skip(const QJsonObject &m, qint64 seq)
    {
        const qint64 from = m.value(u"from"_s).toInteger(-1);
        const qint64 to = m.value(u"to"_s).toInteger(-1);
        if (from != lastLine + 1 || to < from || m.value(u"count"_s).toInteger(-1) != to - from + 1) {
            if (problem.isEmpty())
                problem = u"skipped %1..%2 (count %3) after line %4"_s.arg(from).arg(to)
                              .arg(m.value(u"count"_s).toInteger(-1)).arg(lastLine);
        }
        skips.append({from, to, seq});
        skippedLines += to - from + 1;
        lastLine = to;
    }

    /*! Takes one message; the stream's promises are checked here. */
    void take(const QString &text)
    {
        const QJsonObject m = QJsonDocument::fromJson(text.toUtf8()).object();
        const QString type = m.value(u"type"_s).toString();
        const qint64 seq = m.value(u"seq"_s).toInteger(-1);
        types.append(type);
        auto wrong = [this](const QString &what) {
            if (problem.isEmpty())
                problem = what;
        };
        if (type == u"snapshot") {
            sawSnapshot = true;
            if (m.contains(u"skipped"_s))
                skip(m.value(u"skipped"_s).toObject(), seq);
            const QJsonArray log = m.value(u"log"_s).toArray();
            for (const QJsonValue &line : log) {
                if (line[u"n"_s].toInteger() != lastLine + 1 && lastLine)
                    wrong(u"snapshot line %1 after %2"_s.arg(line[u"n"_s].toInteger()).arg(lastLine));
                lastLine = line[u"n"_s].toInteger();
                ++lines;
            }
            lastSeq = seq;
            return;
        }
        if (type == u"behind") {
            behindSeq = seq;
            if (seq != lastSeq)
                wrong(u"behind at %1, last event taken %2"_s.arg(seq).arg(lastSeq));
            return;
        }
        if (seq <= lastSeq)
            wrong(u"%1 with seq %2 after seq %3"_s.arg(type).arg(seq).arg(lastSeq));
        if (type == u"log") {
            const QJsonArray texts = m.value(u"lines"_s).toArray();
            const qint64 first = m.value(u"n"_s).toInteger();
            if (first != lastLine + 1)
                wrong(u"line %1 after line %2"_s.arg(first).arg(lastLine));
            if (m.value(u"ms"_s).toArray().size() != texts.size())
                wrong(u"%1 times for %2 lines"_s.arg(m.value(u"ms"_s).toArray().size()).arg(texts.size()));
            for (qsizetype i = 0; i < texts.size(); ++i) {
                // The task prints "line N" first on line N.
                if (!texts.at(i).toString().startsWith(u"line %1 "_s.arg(first + i)))
                    wrong(u"line %1 says %2"_s.arg(first + i).arg(texts.at(i).toString().left(40)));
            }
            // Each line's seq: the first one's and up, or listed where they skip numbers.
            const QJsonArray seqs = m.value(u"seqs"_s).toArray();
            if (!seqs.isEmpty()) {
                for (qsizetype i = 0; i < seqs.size(); ++i) {
                    if (seqs.at(i).toInteger() <= (i ? seqs.at(i - 1).toInteger() : lastSeq))
                        wrong(u"line %1 has seq %2"_s.arg(first + i).arg(seqs.at(i).toInteger()));
                }
                if (seqs.size() != texts.size() || seqs.first().toInteger() != seq)
                    wrong(u"%1 seqs for %2 lines"_s.arg(seqs.size()).arg(texts.size()));
            }
            lastLine = first + texts.size() - 1;
            lines += texts.size();
            lastSeq = seqs.isEmpty() ? seq + texts.size() - 1 : seqs.last().toInteger();
            return;
        }
        if (type == u"skipped")
            skip(m, seq);
        else
            ++others;
        lastSeq = seq;
    }
};

/*! A WebSocket client on a thread of its own, so that the test can stop it reading. */
class ThreadClient final : public QObject
{
public:
    /*! Follows \a url, having lines up to \a lastLine (events up to \a lastSeq) already. */
    explicit ThreadClient(const QUrl &url, qint64 lastLine = 0, qint64 lastSeq = 0)
    {
        m_received.lastLine = lastLine;
        m_received.lastSeq = lastSeq;
        m_thread.start();
        moveToThread(&m_thread);
        taskdeck::detail::postTo(this, [this, url] {
            m_socket = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, this);
            connect(m_socket, &QWebSocket::textMessageReceived, this, [this](const QString &text) {
                QMutexLocker locker(&m_mutex);
                m_received.take(text);
            });
            connect(m_socket, &QWebSocket::connected, this, [this] {
                QMutexLocker locker(&m_mutex);
                m_connected = true;
            });
            connect(m_socket, &QWebSocket::disconnected, this, [this] {
                QMutexLocker locker(&m_mutex);
                m_closed = true;
                m_closeReason = m_socket->closeReason();
            });
            m_socket->open(url);
        });
    }

    ~ThreadClient() override
    {
        m_gate.release(1000); // never leave the thread blocked, whatever failed
        testsupport::callOnThread(this, [this] {
            delete m_socket;
            m_socket = nullptr;
        });
        m_thread.quit();
        m_thread.wait();
    }

    /*! Blocks the client's thread: it reads nothing until let go. */
    void hold()
    {
        taskdeck::detail::postTo(this, [this] { m_gate.acquire(); });
    }
    void letGo() { m_gate.release(); }

    /*! Reads slowly: a pause after each message. */
    void readSlowly()
    {
        taskdeck::detail::postTo(this, [this] {
            connect(m_socket, &QWebSocket::textMessageReceived, this, [] { QThread::msleep(2); });
        });
    }

    Received received() const
    {
        QMutexLocker locker(&m_mutex);
        return m_received;
    }
    bool connected() const
    {
        QMutexLocker locker(&m_mutex);
        return m_connected;
    }
    bool closed() const
    {
        QMutexLocker locker(&m_mutex);
        return m_closed;
    }
    QString closeReason() const
    {
        QMutexLocker locker(&m_mutex);
        return m_closeReason;
    }

private:
    QThread m_thread;
    QSemaphore m_gate;
    QWebSocket *m_socket = nullptr; // the client thread's
    mutable QMutex m_mutex;
    Received m_received;    // guarded by m_mutex
    bool m_connected = false; // guarded by m_mutex
    bool m_closed = false;  // guarded by m_mutex
    QString m_closeReason;  // guarded by m_mutex
};

/*! Lets the "progressing" task begin. */
QSemaphore s_gate;

} // namespace

class tst_WsStream : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanupTestCase();
    void logMessageIsCompactJson();
    void hundredClientsGetEveryLineInOrder();
    void resumeFromTheMiddleAndAfterTheEnd();
    void clientSlowerThanTheRunMissesNothing();
    void stalledClientIsToldBehindAndResumes();
    void tailSkipsToTheNewestLinesOfAFinishedRun();
    void tailResumesAfterASkip();
    void tailSkipsAgainWhileBehindButNeverOtherEvents();
    void tailClientKeepingUpGetsEveryLine();
    void tailMustBeANumberOfLines();

private:
    /*! Starts "lines" printing \a count lines; returns its id. */
    QString startLines(int count);
    bool waitFinished(const QString &id);
    /*! A WebSocket server of the test's own whose clients get a RunStream with these limits. */
    quint16 listenStreams(qint64 maxPendingBytes, std::chrono::milliseconds stall);
    /*! Follows \a query ("after=0&tail=100") of run \a id through the admin server until the
     *  stream closes, as a client having lines up to \a lastLine and events up to \a lastSeq. */
    Received follow(const QString &id, const QString &query, qint64 lastLine = 0, qint64 lastSeq = 0,
                    QString *closeReason = nullptr);

    QTemporaryDir m_dir;
    std::unique_ptr<SqliteRunStore> m_store;
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
    std::unique_ptr<RunFollower> m_follower;
    std::unique_ptr<AdminServer> m_server;
    std::unique_ptr<QWebSocketServer> m_streams;
    QList<QPointer<QWebSocket>> m_serverSockets; // the server ends of m_streams' clients
};

void tst_WsStream::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(m_dir.isValid());
    m_store = testsupport::openStore(m_dir.filePath(u"data"_s));
    QVERIFY(m_store);
    m_registry = std::make_unique<TaskRegistry>();
    // "lines" logs COUNT lines, "line N" and WIDTH characters more.
    m_registry->add(testsupport::makeTask(u"lines"_s, [](RunContext &ctx) {
        const int count = ctx.arg(u"count"_s).toInt();
        const QString padding(ctx.arg(u"width"_s).toInt(), u'x');
        for (int i = 1; i <= count; ++i)
            ctx.log(u"line %1 %2"_s.arg(i).arg(padding));
        return QJsonValue(count);
    }, {Field(u"count"_s, FieldType::Integer).withRequired(), Field(u"width"_s, FieldType::Integer)}));
    // "progressing" waits for the test (s_gate), then logs COUNT lines as "lines" does,
    // reporting progress every 1,000.
    m_registry->add(testsupport::makeTask(u"progressing"_s, [](RunContext &ctx) {
        const int count = ctx.arg(u"count"_s).toInt();
        if (!s_gate.tryAcquire(1, 120000))
            return QJsonValue(-1);
        const QString padding(60, u'x');
        for (int i = 1; i <= count; ++i) {
            ctx.log(u"line %1 %2"_s.arg(i).arg(padding));
            if (i % 1000 == 0)
                ctx.progress(i, count);
        }
        return QJsonValue(count);
    }, {Field(u"count"_s, FieldType::Integer).withRequired()}));
    // "paced" logs COUNT lines at a pace any client keeps up with: 10 lines a millisecond.
    m_registry->add(testsupport::makeTask(u"paced"_s, [](RunContext &ctx) {
        const int count = ctx.arg(u"count"_s).toInt();
        for (int i = 1; i <= count; ++i) {
            ctx.log(u"line %1 paced"_s.arg(i));
            if (i % 10 == 0)
                ctx.sleep(std::chrono::milliseconds(1));
        }
        return QJsonValue(count);
    }, {Field(u"count"_s, FieldType::Integer).withRequired()}));
    m_engine = std::make_unique<TaskEngine>(m_registry.get());
    m_engine->setRecorder(m_store.get());
    m_follower = std::make_unique<RunFollower>(m_engine.get(), m_store.get());

    ServerSettings settings;
    settings.port = 0;
    settings.dataDir = m_dir.filePath(u"data"_s);
    m_server = std::make_unique<AdminServer>(m_engine.get(), m_store.get(), settings);
    QString error;
    QVERIFY2(m_server->listen(&error), qPrintable(error));
}

void tst_WsStream::init()
{
    // A socket closed while QtWebSockets still has a queued read of it (during the hand-over
    // from the HTTP server) warns so; the streams and the server close from the event loop.
    QTest::failOnWarning(QRegularExpression(u"QIODevice::peek.*device not open"_s));
}

void tst_WsStream::cleanupTestCase()
{
    m_streams.reset();
    m_server.reset();
    m_engine.reset();
}

QString tst_WsStream::startLines(int count)
{
    const StartResult started = m_engine->start(u"lines"_s, {{u"count"_s, count}, {u"width"_s, 60}});
    return started.ok() ? started.runId : QString();
}

bool tst_WsStream::waitFinished(const QString &id)
{
    // 300,000 lines take over two minutes under ThreadSanitizer on a busy two-core machine.
    return QTest::qWaitFor([&] { return m_engine->snapshot(id) && m_engine->snapshot(id)->isFinished(); }, 360000)
        && m_store->flush(std::chrono::seconds(60));
}

quint16 tst_WsStream::listenStreams(qint64 maxPendingBytes, std::chrono::milliseconds stall)
{
    m_streams = std::make_unique<QWebSocketServer>(u"test"_s, QWebSocketServer::NonSecureMode);
    if (!m_streams->listen(QHostAddress::LocalHost, 0))
        return 0;
    connect(m_streams.get(), &QWebSocketServer::newConnection, this, [this, maxPendingBytes, stall] {
        while (QWebSocket *raw = m_streams->nextPendingConnection()) {
            raw->setParent(nullptr);
            m_serverSockets.append(raw);
            const QUrl url = raw->requestUrl();
            const QUrlQuery query(url);
            const qint64 after = query.hasQueryItem(u"after"_s) ? query.queryItemValue(u"after"_s).toLongLong() : -1;
            const qint64 tail = query.queryItemValue(u"tail"_s).toLongLong();
            auto *stream = new RunStream(std::unique_ptr<QWebSocket>(raw), maxPendingBytes, this, stall);
            stream->start(m_follower.get(), url.path().section(u'/', -1), after, m_store.get(), tail);
        }
    });
    return m_streams->serverPort();
}

void tst_WsStream::logMessageIsCompactJson()
{
    const QStringList texts{u"plain"_s, u"quote \" backslash \\ tab\t"_s, u"bell \u0001 \u001b[31mred\u001b[0m \b\f\r"_s,
                            u"accents \u00e9 \u4e2d emoji \U0001F600"_s, QString(), u"slash / <b>&amp;</b>"_s};
    LogLines lines;
    const qint64 t0 = 1764465600123;
    for (qsizetype i = 0; i < texts.size(); ++i) {
        const LogStream stream = i == 2 ? LogStream::Err : (i == 4 ? LogStream::System : LogStream::Out);
        lines.append(LogLine{41 + i, t0 + i * 7, stream, texts.at(i), 100 + i});
    }
    const QString message = RunStream::logMessage(lines);
    QJsonParseError error{};
    const QJsonDocument parsed = QJsonDocument::fromJson(message.toUtf8(), &error);
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString() + u": "_s + message));
    // Exactly what QJsonDocument writes for the same object: valid, compact, nothing extra.
    QCOMPARE(message.toUtf8(), parsed.toJson(QJsonDocument::Compact));
    const QJsonObject o = parsed.object();
    QCOMPARE(o.value(u"type"_s).toString(), u"log"_s);
    QCOMPARE(o.value(u"seq"_s).toInteger(), 100);
    QCOMPARE(o.value(u"n"_s).toInteger(), 41);
    QCOMPARE(o.value(u"time"_s).toString(), u"2025-11-30T01:20:00.123Z"_s);
    QCOMPARE(o.value(u"ms"_s).toArray(), QJsonArray({0, 7, 14, 21, 28, 35}));
    QCOMPARE(o.value(u"err"_s).toArray(), QJsonArray({2}));
    QCOMPARE(o.value(u"system"_s).toArray(), QJsonArray({4}));
    QStringList back;
    for (const QJsonValue &text : o.value(u"lines"_s).toArray())
        back.append(text.toString());
    QCOMPARE(back, texts);
    // Seqs with gaps (progress reports between the lines) are listed.
    LogLines gapped = lines.mid(0, 3);
    gapped[1].seq = 102;
    gapped[2].seq = 105;
    const QJsonObject listed = QJsonDocument::fromJson(RunStream::logMessage(gapped).toUtf8()).object();
    QCOMPARE(listed.value(u"seqs"_s).toArray(), QJsonArray({100, 102, 105}));
    QVERIFY(!o.contains(u"seqs"_s));
    // Only stdout: no stream lists at all.
    const QJsonObject plain = QJsonDocument::fromJson(RunStream::logMessage(lines.mid(0, 2)).toUtf8()).object();
    QVERIFY(!plain.contains(u"err"_s) && !plain.contains(u"system"_s));
}

void tst_WsStream::hundredClientsGetEveryLineInOrder()
{
    constexpr int Clients = 100;
    constexpr int Lines = 20000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    struct Client
    {
        QWebSocket socket;
        Received received;
        bool closed = false;
    };
    std::vector<std::unique_ptr<Client>> clients;
    int closed = 0;
    for (int i = 0; i < Clients; ++i) {
        auto client = std::make_unique<Client>();
        Client *c = client.get();
        connect(&c->socket, &QWebSocket::textMessageReceived, &c->socket,
                [c](const QString &text) { c->received.take(text); });
        connect(&c->socket, &QWebSocket::disconnected, &c->socket, [c, &closed] {
            c->closed = true;
            ++closed;
        });
        // Half from the start (after 0: every event however far the run got), half from a
        // snapshot; through the admin server, authenticated like any API client.
        const QString after = i % 2 ? u"?after=0"_s : QString();
        QNetworkRequest req(QUrl(u"ws://127.0.0.1:%1/ws/task/%2%3"_s.arg(m_server->port()).arg(id, after)));
        req.setRawHeader("Authorization", "Bearer " + m_server->token());
        c->socket.open(req);
        clients.push_back(std::move(client));
    }
    QTRY_COMPARE_WITH_TIMEOUT(closed, Clients, 240000);
    for (qsizetype i = 0; i < qsizetype(clients.size()); ++i) {
        const Received &r = clients.at(i)->received;
        QVERIFY2(r.problem.isEmpty(), qPrintable(u"client %1: %2"_s.arg(i).arg(r.problem)));
        // A client that connected after the finish has it in its snapshot.
        if (!(i % 2) && r.types.size() == 1)
            QCOMPARE(r.types.last(), u"snapshot"_s);
        else
            QCOMPARE(r.types.last(), u"finished"_s);
        QCOMPARE(r.lastLine, Lines);
        if (i % 2)
            QCOMPARE(r.lines, Lines); // from the start: every line, each once
        QCOMPARE(clients.at(i)->socket.closeReason(), u"run finished"_s);
    }
}

void tst_WsStream::resumeFromTheMiddleAndAfterTheEnd()
{
    // More lines than the engine keeps for followers: the middle comes from the history.
    constexpr int Lines = 5000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    QVERIFY(waitFinished(id));
    const qint64 endSeq = m_engine->snapshot(id)->seq;
    const LogLines whole = testsupport::readWholeLog(*m_store, id);
    QCOMPARE(whole.size(), Lines);
    const LogLine &middle = whole.at(Lines / 2 - 1);

    auto followFrom = [this, &id](qint64 after, qint64 lastLine, QString *reason) {
        QWebSocket socket;
        Received received;
        received.lastSeq = after;
        received.lastLine = lastLine;
        connect(&socket, &QWebSocket::textMessageReceived, &socket,
                [&received](const QString &text) { received.take(text); });
        QSignalSpy closed(&socket, &QWebSocket::disconnected);
        QNetworkRequest req(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?after=%3"_s.arg(m_server->port()).arg(id).arg(after)));
        req.setRawHeader("Authorization", "Bearer " + m_server->token());
        socket.open(req);
        if (!closed.wait(60000))
            received.problem = u"the stream did not close"_s;
        *reason = socket.closeReason();
        return received;
    };

    // From the middle: the line after the middle one comes first, no snapshot, no repeat,
    // no gap, up to the finish.
    QString reason;
    const Received r = followFrom(middle.seq, middle.number, &reason);
    QVERIFY2(r.problem.isEmpty(), qPrintable(r.problem));
    QVERIFY(!r.sawSnapshot);
    QCOMPARE(r.lines, Lines - middle.number);
    QCOMPARE(r.lastLine, Lines);
    QCOMPARE(r.types.last(), u"finished"_s);
    QCOMPARE(r.lastSeq, endSeq);
    QCOMPARE(reason, u"run finished"_s);

    // After the end: nothing more to send, and the stream says the run is over.
    const Received after = followFrom(endSeq, Lines, &reason);
    QVERIFY2(after.problem.isEmpty(), qPrintable(after.problem));
    QVERIFY2(after.types.isEmpty(), qPrintable(after.types.join(u',')));
    QCOMPARE(reason, u"run finished"_s);
}

void tst_WsStream::clientSlowerThanTheRunMissesNothing()
{
    // 16 KiB may wait for the client: a run this size outruns it many times over, and the
    // stream waits for it each time rather than dropping it.
    const quint16 port = listenStreams(16 * 1024, std::chrono::seconds(60));
    QVERIFY(port);
    constexpr int Lines = 30000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    ThreadClient client(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?after=0"_s.arg(port).arg(id)));
    client.readSlowly();
    QTRY_VERIFY_WITH_TIMEOUT(client.closed(), 240000);
    const Received r = client.received();
    QVERIFY2(r.problem.isEmpty(), qPrintable(r.problem));
    QCOMPARE(r.behindSeq, -1);
    QCOMPARE(r.lines, Lines);
    QCOMPARE(r.types.last(), u"finished"_s);
    QCOMPARE(client.closeReason(), u"run finished"_s);
}

void tst_WsStream::stalledClientIsToldBehindAndResumes()
{
    const quint16 port = listenStreams(16 * 1024, std::chrono::milliseconds(300));
    QVERIFY(port);
    // Enough to fill the socket buffers of both ends many times (about 25 MB of messages).
    constexpr int Lines = 300000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    auto first = std::make_unique<ThreadClient>(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?after=0"_s.arg(port).arg(id)));
    // It stops reading at once: the socket buffers fill while the window is still small.
    QTRY_VERIFY_WITH_TIMEOUT(first->connected(), 60000);
    first->hold();
    QVERIFY(waitFinished(id));
    // The server end gives up on the client that takes nothing, and closes.
    QTRY_VERIFY_WITH_TIMEOUT(!m_serverSockets.isEmpty() && (!m_serverSockets.constLast()
                                 || m_serverSockets.constLast()->closeCode()
                                        == QWebSocketProtocol::CloseCodePolicyViolated),
                             60000);
    first->letGo();
    QTRY_VERIFY_WITH_TIMEOUT(first->closed(), 60000);
    const Received before = first->received();
    QVERIFY2(before.problem.isEmpty(), qPrintable(before.problem));
    QVERIFY(before.behindSeq >= 0);
    QVERIFY(before.lastLine < Lines);
    QCOMPARE(before.types.last(), u"behind"_s);
    QVERIFY2(first->closeReason().contains(u"?after=%1"_s.arg(before.behindSeq)), qPrintable(first->closeReason()));

    // It resumes from the seq it was given: the rest, no gap, no line twice.
    ThreadClient second(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?after=%3"_s.arg(port).arg(id).arg(before.behindSeq)),
                        before.lastLine, before.behindSeq);
    QTRY_VERIFY_WITH_TIMEOUT(second.closed(), 240000);
    const Received rest = second.received();
    QVERIFY2(rest.problem.isEmpty(), qPrintable(rest.problem));
    QVERIFY(!rest.sawSnapshot);
    QCOMPARE(before.lines + rest.lines, qint64(Lines));
    QCOMPARE(rest.lastLine, qint64(Lines));
    QCOMPARE(rest.types.last(), u"finished"_s);
    QCOMPARE(second.closeReason(), u"run finished"_s);
}

Received tst_WsStream::follow(const QString &id, const QString &query, qint64 lastLine, qint64 lastSeq,
                              QString *closeReason)
{
    QWebSocket socket;
    Received received;
    received.lastLine = lastLine;
    received.lastSeq = lastSeq;
    connect(&socket, &QWebSocket::textMessageReceived, &socket,
            [&received](const QString &text) { received.take(text); });
    QSignalSpy closed(&socket, &QWebSocket::disconnected);
    QNetworkRequest req(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?%3"_s.arg(m_server->port()).arg(id, query)));
    req.setRawHeader("Authorization", "Bearer " + m_server->token());
    socket.open(req);
    if (!closed.wait(120000))
        received.problem = u"the stream did not close"_s;
    if (closeReason)
        *closeReason = socket.closeReason();
    return received;
}

void tst_WsStream::tailSkipsToTheNewestLinesOfAFinishedRun()
{
    constexpr int Lines = 20000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    QVERIFY(waitFinished(id));
    const qint64 endSeq = m_engine->snapshot(id)->seq;
    const LogLines lastSkipped = m_store->readLog(id, Lines - 100, 1);
    QCOMPARE(lastSkipped.size(), 1);

    // From the start, wanting the last 100 lines: a note of lines 1 to 19,900 (up to that
    // line's seq), then exactly the last 100 lines, then the finish.
    QString reason;
    const Received r = follow(id, u"after=0&tail=100"_s, 0, 0, &reason);
    QVERIFY2(r.problem.isEmpty(), qPrintable(r.problem));
    QCOMPARE(r.types.first(), u"skipped"_s);
    QCOMPARE(r.types.count(u"skipped"_s), 1);
    QCOMPARE(r.skips.first(), (QList<qint64>{1, Lines - 100, lastSkipped.first().seq}));
    QCOMPARE(r.lines, 100);
    QCOMPARE(r.lastLine, Lines);
    QCOMPARE(r.types.last(), u"finished"_s);
    QCOMPARE(r.lastSeq, endSeq);
    QCOMPARE(reason, u"run finished"_s);

    // With a snapshot: it names the lines before its own as not sent, from line 1.
    const Received s = follow(id, u"tail=300"_s, 0, 0, &reason);
    QVERIFY2(s.problem.isEmpty(), qPrintable(s.problem));
    QVERIFY(s.sawSnapshot);
    QCOMPARE(s.types, QStringList{u"snapshot"_s});
    QCOMPARE(s.lines, 300);
    QCOMPARE(s.skips.size(), 1);
    QCOMPARE(s.skips.first().mid(0, 2), (QList<qint64>{1, Lines - 300}));
    QCOMPARE(s.lastLine, Lines);
    QCOMPARE(reason, u"run finished"_s);

    // Without tail: every line, as before.
    const Received all = follow(id, u"after=0"_s, 0, 0, &reason);
    QVERIFY2(all.problem.isEmpty(), qPrintable(all.problem));
    QCOMPARE(all.lines, Lines);
    QCOMPARE(all.skippedLines, 0);
}

void tst_WsStream::tailResumesAfterASkip()
{
    constexpr int Lines = 12000;
    const QString id = startLines(Lines);
    QVERIFY(!id.isEmpty());
    QVERIFY(waitFinished(id));
    QString reason;
    const Received first = follow(id, u"after=0&tail=2000"_s, 0, 0, &reason);
    QVERIFY2(first.problem.isEmpty(), qPrintable(first.problem));
    QCOMPARE(first.skips.size(), 1);
    const qint64 skipSeq = first.skips.first().at(2);
    QCOMPARE(first.skips.first().at(1), Lines - 2000);

    // A client that got the note and nothing more resumes after its seq: the next line
    // comes first, nothing is skipped again (it is not behind by more than it asks for).
    const Received resumed = follow(id, u"after=%1&tail=2000"_s.arg(skipSeq), Lines - 2000, skipSeq, &reason);
    QVERIFY2(resumed.problem.isEmpty(), qPrintable(resumed.problem));
    QCOMPARE(resumed.skippedLines, 0);
    QCOMPARE(resumed.lines, 2000);
    QCOMPARE(resumed.lastLine, Lines);
    QCOMPARE(resumed.types.last(), u"finished"_s);

    // Asking for fewer: the next skip starts right after the line the client has.
    const Received again = follow(id, u"after=%1&tail=500"_s.arg(skipSeq), Lines - 2000, skipSeq, &reason);
    QVERIFY2(again.problem.isEmpty(), qPrintable(again.problem));
    QCOMPARE(again.skips.size(), 1);
    QCOMPARE(again.skips.first().mid(0, 2), (QList<qint64>{Lines - 2000 + 1, Lines - 500}));
    QCOMPARE(again.lines, 500);
    QCOMPARE(again.lastLine, Lines);

    // Resuming after the end: nothing.
    const Received done = follow(id, u"after=%1&tail=500"_s.arg(again.lastSeq), Lines, again.lastSeq, &reason);
    QVERIFY2(done.types.isEmpty(), qPrintable(done.types.join(u',')));
    QCOMPARE(reason, u"run finished"_s);
}

void tst_WsStream::tailSkipsAgainWhileBehindButNeverOtherEvents()
{
    const quint16 port = listenStreams(4 * 1024 * 1024, std::chrono::seconds(120));
    QVERIFY(port);
    constexpr int Lines = 300000; // about 25 MB of messages: far more than the socket buffers
    const StartResult started = m_engine->start(u"progressing"_s, {{u"count"_s, Lines}});
    QVERIFY(started.ok());
    const QString id = started.runId;
    ThreadClient client(QUrl(u"ws://127.0.0.1:%1/ws/task/%2?after=0&tail=200"_s.arg(port).arg(id)));
    // The run waits until the client has its start; then the client stops reading.
    QTRY_VERIFY_WITH_TIMEOUT(client.received().types.contains(u"started"_s), 60000);
    client.hold();
    s_gate.release();
    QVERIFY(waitFinished(id));
    const qint64 endSeq = m_engine->snapshot(id)->seq;
    client.letGo();
    QTRY_VERIFY_WITH_TIMEOUT(client.closed(), 120000);
    const Received r = client.received();
    QVERIFY2(r.problem.isEmpty(), qPrintable(r.problem));
    QCOMPARE(r.behindSeq, -1);
    QVERIFY2(!r.skips.isEmpty(), "no line was skipped");
    QVERIFY(r.lines < Lines);
    QCOMPARE(r.lines + r.skippedLines, qint64(Lines));
    QCOMPARE(r.lastLine, qint64(Lines));
    // Every event that is not a line came: queued, started, each progress report (the
    // engine numbers one per delivery at most), the finish. Lines shown, lines skipped and
    // those make up every seq of the run: none went missing.
    QVERIFY(r.types.count(u"progress"_s) >= 1);
    QCOMPARE(r.others + r.lines + r.skippedLines, endSeq);
    QCOMPARE(r.lastSeq, endSeq);
    QCOMPARE(r.types.last(), u"finished"_s);
    QCOMPARE(client.closeReason(), u"run finished"_s);
}

void tst_WsStream::tailClientKeepingUpGetsEveryLine()
{
    // A client that takes what comes as it comes is never behind: in tail mode it still
    // gets every line after the snapshot, however many more than its tail.
    constexpr int Lines = 20000;
    const StartResult started = m_engine->start(u"paced"_s, {{u"count"_s, Lines}});
    QVERIFY(started.ok());
    QString reason;
    const Received r = follow(started.runId, u"tail=50"_s, 0, 0, &reason);
    QVERIFY2(r.problem.isEmpty(), qPrintable(r.problem));
    QVERIFY(r.sawSnapshot);
    QVERIFY2(!r.types.contains(u"skipped"_s), qPrintable(r.types.join(u',')));
    QCOMPARE(r.lastLine, Lines);
    QVERIFY2(r.lines > Lines / 2, qPrintable(QString::number(r.lines)));
    QCOMPARE(r.lines + r.skippedLines, qint64(Lines));
    QCOMPARE(reason, u"run finished"_s);
}

void tst_WsStream::tailMustBeANumberOfLines()
{
    const QString id = startLines(10);
    QVERIFY(waitFinished(id));
    for (const QString &bad : {u"tail=-1"_s, u"tail=many"_s, u"tail=100001"_s}) {
        QString reason;
        const Received r = follow(id, bad, 0, 0, &reason);
        QVERIFY2(r.types.isEmpty(), qPrintable(bad));
        QVERIFY2(reason.startsWith(u"tail must be"_s), qPrintable(bad + u": "_s + reason));
    }
}

QTEST_GUILESS_MAIN(tst_WsStream)
#include "tst_wsstream.moc"
