// SPDX-License-Identifier: MIT
#include "runstream.h"

#include "runfollower.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QWebSocket>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

QString eventTypeName(RunEvent::Type type)
{
    switch (type) {
    case RunEvent::Type::Queued: return u"queued"_s;
    case RunEvent::Type::Started: return u"started"_s;
    case RunEvent::Type::Retrying: return u"retrying"_s;
    case RunEvent::Type::Progress: return u"progress"_s;
    case RunEvent::Type::Log: return u"log"_s;
    case RunEvent::Type::Finished: return u"finished"_s;
    }
    return QString();
}

QJsonArray linesJson(const LogLines &lines)
{
    QJsonArray array;
    for (const LogLine &line : lines) {
        QJsonObject o = line.toJson();
        o.insert(u"seq"_s, line.seq);
        array.append(o);
    }
    return array;
}

} // namespace

RunStream::RunStream(std::unique_ptr<QWebSocket> socket, qint64 maxPendingBytes, QObject *parent)
    : QObject(parent), m_socket(std::move(socket)), m_maxPendingBytes(maxPendingBytes)
{
    connect(m_socket.get(), &QWebSocket::disconnected, this, &QObject::deleteLater);
}

RunStream::~RunStream() = default;

void RunStream::start(RunFollower *follower, const QString &runId, qint64 after)
{
    follower->follow(runId, {.after = after}, this,
                     [this, after](Following following) { attach(std::move(following), after); });
}

void RunStream::attach(Following following, qint64 after)
{
    if (!following.handle) {
        m_closing = true;
        m_socket->close(QWebSocketProtocol::CloseCodeNormal, u"unknown run"_s);
        return;
    }
    m_handle = std::move(following.handle);
    if (after < 0) {
        m_sentSeq = following.run.seq;
        send({{u"type"_s, u"snapshot"_s},
              {u"seq"_s, following.run.seq},
              {u"run"_s, following.run.toJson()},
              {u"log"_s, linesJson(following.recentLog)}});
    } else {
        m_sentSeq = after;
    }
    connect(m_handle.get(), &RunHandle::events, this, &RunStream::sendEvents);
    connect(m_handle.get(), &RunHandle::fellBehind, this, [this](qint64) { behind(m_sentSeq); });
}

void RunStream::sendEvents(const RunEvents &events)
{
    for (const RunEvent &event : events) {
        if (m_closing)
            return;
        QJsonObject message{{u"type"_s, eventTypeName(event.type)}, {u"seq"_s, event.seq}};
        switch (event.type) {
        case RunEvent::Type::Log:
            message.insert(u"lines"_s, linesJson(event.lines));
            break;
        case RunEvent::Type::Progress:
            message.insert(u"progress"_s, event.progress.toJson());
            break;
        default:
            if (event.run)
                message.insert(u"run"_s, event.run->toJson());
            break;
        }
        send(message);
        m_sentSeq = event.lastSeq();
        if (event.type == RunEvent::Type::Finished) {
            m_closing = true;
            m_socket->close(QWebSocketProtocol::CloseCodeNormal, u"run finished"_s);
            return;
        }
        // The socket buffers what the client has not taken: past the limit it is told and
        // closed rather than holding the run's whole log in memory.
        if (m_socket->bytesToWrite() > m_maxPendingBytes)
            return behind(m_sentSeq);
    }
}

void RunStream::send(const QJsonObject &message)
{
    m_socket->sendTextMessage(QString::fromUtf8(QJsonDocument(message).toJson(QJsonDocument::Compact)));
}

void RunStream::behind(qint64 seq)
{
    if (m_closing)
        return;
    send({{u"type"_s, u"behind"_s}, {u"seq"_s, seq}});
    m_closing = true;
    // Called from the handle's own signals: it goes once they have returned.
    m_handle.release()->deleteLater();
    m_socket->close(QWebSocketProtocol::CloseCodePolicyViolated,
                    u"client too slow; reconnect with ?after=%1"_s.arg(seq));
}

} // namespace taskdeck
