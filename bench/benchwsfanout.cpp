// SPDX-License-Identifier: MIT
// WebSocket fan-out: the real `taskdeck serve` runs `seq` printing 100,000 lines while 100
// WebSocket clients follow the run from its start (/ws/task/ID?after=0). value: the time
// from the start request until every client has the finish; baseline: the same with one
// client. Every client checks that it gets every line, in order, once, with its text.
//
// Usage: bench_wsfanout [TASKDECK] [--count=LINES] [--rounds=N]
//   TASKDECK defaults to ../app/taskdeck next to this program.

#include "benchsupport.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QTemporaryDir>
#include <QTimer>
#include <QUrlQuery>
#include <QWebSocket>

#include <memory>
#include <vector>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kLines = 100000;
constexpr int kRounds = 3;
constexpr int kClients = 100;
constexpr double kTarget = 10;

/*! One client: checks each message as it comes, without building a JSON tree per message. */
struct Client
{
    QWebSocket socket;
    qint64 lastLine = 0;
    qint64 lastSeq = 0;
    QString problem;
    bool finished = false;
    bool closed = false;

    void fail(const QString &what)
    {
        if (problem.isEmpty())
            problem = what;
    }

    static qint64 numberAfter(const QString &text, QStringView key, qsizetype from)
    {
        const qsizetype at = text.indexOf(key, from);
        if (at < 0)
            return -1;
        qint64 value = 0;
        for (qsizetype i = at + key.size(); i < text.size() && text.at(i).isDigit(); ++i)
            value = value * 10 + text.at(i).digitValue();
        return value;
    }

    void take(const QString &text)
    {
        if (!text.endsWith(u"\"type\":\"log\"}")) {
            const QJsonObject m = QJsonDocument::fromJson(text.toUtf8()).object();
            const qint64 seq = m.value(u"seq"_s).toInteger();
            if (seq <= lastSeq)
                fail(u"event %1 after %2"_s.arg(seq).arg(lastSeq));
            lastSeq = seq;
            finished = m.value(u"type"_s).toString() == u"finished";
            return;
        }
        // {"lines":["line 1","line 2"],"ms":[...],"n":1,"seq":3,"time":"...","type":"log"}
        qsizetype i = text.indexOf(u"\"lines\":[") + 9;
        qint64 count = 0;
        while (i > 8 && i < text.size() && text.at(i) == u'"') {
            // "line N": the text seq printed for line N.
            qint64 number = 0;
            const qsizetype start = ++i;
            while (i < text.size() && text.at(i) != u'"') {
                if (text.at(i) == u'\\')
                    ++i;
                else if (text.at(i).isDigit())
                    number = number * 10 + text.at(i).digitValue();
                ++i;
            }
            if (QStringView(text).mid(start, 5) != u"line " || number != lastLine + count + 1)
                fail(u"line %1 reads %2"_s.arg(lastLine + count + 1).arg(QStringView(text).mid(start, i - start)));
            ++count;
            ++i; // the closing quote
            if (i < text.size() && text.at(i) == u',')
                ++i;
        }
        const qint64 n = numberAfter(text, u",\"n\":", i);
        const qint64 seq = numberAfter(text, u",\"seq\":", i);
        if (count == 0 || n != lastLine + 1 || seq <= lastSeq)
            fail(u"a batch of %1 from line %2 (seq %3) after line %4 (seq %5)"_s.arg(count).arg(n).arg(seq)
                     .arg(lastLine).arg(lastSeq));
        lastLine += count;
        lastSeq = seq + count - 1;
    }
};

class Server
{
public:
    bool start(const QString &taskdeck, QString *error)
    {
        if (!m_dir.isValid()) {
            *error = u"no temporary directory"_s;
            return false;
        }
        QFile tasks(m_dir.filePath(u"tasks.yml"_s));
        if (!tasks.open(QIODevice::WriteOnly)) {
            *error = tasks.errorString();
            return false;
        }
        tasks.write("version: 1\ntasks:\n  fanout:\n    title: Fan-out lines\n    fields:\n"
                    "      - key: lines\n        type: integer\n        min: 1\n        max: 100000000\n"
                    "    command: [\"seq\", \"-f\", \"line %.0f\", \"1\", \"{{lines}}\"]\n");
        tasks.close();
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(u"XDG_CONFIG_HOME"_s, m_dir.filePath(u"config"_s));
        m_process.setProcessEnvironment(env);
        m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        m_process.start(taskdeck, {u"serve"_s, u"--listen"_s, u"127.0.0.1:0"_s, u"--data-dir"_s,
                                   m_dir.filePath(u"data"_s), u"--tasks"_s, tasks.fileName()});
        QElapsedTimer clock;
        clock.start();
        QByteArray out;
        while (!out.contains("log in: ") || !out.endsWith('\n')) {
            if (clock.elapsed() > 30000 || m_process.state() == QProcess::NotRunning) {
                *error = u"taskdeck serve printed no login link: "_s + QString::fromUtf8(out);
                return false;
            }
            m_process.waitForReadyRead(1000);
            out += m_process.readAllStandardOutput();
        }
        for (const QByteArray &line : out.split('\n')) {
            if (line.startsWith("listening on "))
                m_base = QUrl(QString::fromUtf8(line.mid(13).trimmed()));
            if (line.startsWith("log in: "))
                m_token = QUrlQuery(QUrl(QString::fromUtf8(line.mid(8).trimmed()))).queryItemValue(u"token"_s).toUtf8();
        }
        if (!m_base.isValid() || m_token.isEmpty()) {
            *error = u"cannot read the address and token of: "_s + QString::fromUtf8(out);
            return false;
        }
        return true;
    }

    ~Server()
    {
        if (m_process.state() != QProcess::NotRunning) {
            m_process.terminate();
            if (!m_process.waitForFinished(30000))
                m_process.kill();
        }
    }

    /*! Starts a run of \a lines lines; its id, or empty. */
    QString startRun(int lines)
    {
        QNetworkRequest req(m_base.resolved(QUrl(u"/admin/task/fanout/start"_s)));
        req.setRawHeader("Authorization", "Bearer " + m_token);
        req.setHeader(QNetworkRequest::ContentTypeHeader, u"application/json"_s);
        QNetworkReply *reply = m_network.post(req, "{\"lines\":" + QByteArray::number(lines) + '}');
        QEventLoop loop;
        QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
        loop.exec();
        reply->deleteLater();
        return QJsonDocument::fromJson(reply->readAll()).object().value(u"id"_s).toString();
    }

    QNetworkRequest streamRequest(const QString &id) const
    {
        QUrl url = m_base.resolved(QUrl(u"/ws/task/"_s + id));
        url.setScheme(u"ws"_s);
        url.setQuery(u"after=0"_s);
        QNetworkRequest req(url);
        req.setRawHeader("Authorization", "Bearer " + m_token);
        return req;
    }

private:
    QTemporaryDir m_dir;
    QProcess m_process;
    QNetworkAccessManager m_network;
    QUrl m_base;
    QByteArray m_token;
};

/*! One round: a run of \a lines followed by \a clients clients; milliseconds. */
double fanoutRound(Server &server, int clients, int lines)
{
    std::vector<std::unique_ptr<Client>> all;
    int closed = 0;
    QElapsedTimer clock;
    clock.start();
    const QString id = server.startRun(lines);
    if (id.isEmpty())
        qFatal("the run did not start");
    for (int i = 0; i < clients; ++i) {
        auto client = std::make_unique<Client>();
        Client *c = client.get();
        QObject::connect(&c->socket, &QWebSocket::textMessageReceived, &c->socket,
                         [c](const QString &text) { c->take(text); });
        QObject::connect(&c->socket, &QWebSocket::disconnected, &c->socket, [c, &closed] {
            c->closed = true;
            ++closed;
        });
        c->socket.open(server.streamRequest(id));
        all.push_back(std::move(client));
    }
    QEventLoop loop;
    QTimer giveUp;
    giveUp.setSingleShot(true);
    giveUp.start(600000);
    while (closed < clients && giveUp.isActive())
        loop.processEvents(QEventLoop::WaitForMoreEvents);
    const double ms = double(clock.nsecsElapsed()) / 1e6;
    for (const auto &c : all) {
        if (!c->problem.isEmpty() || c->lastLine != lines || !c->finished)
            qFatal("a client got %lld of %d lines%s, %s (closed: %s)", c->lastLine, lines,
                   c->finished ? " and the finish" : " and no finish", qPrintable(c->problem),
                   qPrintable(c->socket.closeReason()));
    }
    return ms;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QStringList arguments = app.arguments();
    const QString taskdeck = bench::takeTaskdeckProgram(arguments);
    const bench::Scale scale = bench::scaleFromArguments(arguments, {kLines, kRounds});

    Server server;
    QString error;
    if (!server.start(taskdeck, &error))
        qFatal("%s", qPrintable(error));

    fanoutRound(server, kClients, 1000); // warm-up: connections, pages of the history
    QList<double> one;
    QList<double> many;
    for (int round = 0; round < scale.rounds; ++round) {
        one << fanoutRound(server, 1, scale.count);
        many << fanoutRound(server, kClients, scale.count);
    }
    bench::reportFanout(u"wsfanout"_s, u"clients"_s, kClients, one, many,
                        {{u"target"_s, kTarget}, {u"lines"_s, scale.count}});
    return 0;
}
