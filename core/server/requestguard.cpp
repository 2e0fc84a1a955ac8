// SPDX-License-Identifier: MIT
#include "requestguard.h"

#include "httpreply.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QTcpSocket>
#include <QTimer>

#include <algorithm>
#include <limits>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

const QString WatchName = u"taskdeck-request-guard"_s;

// The most a request head, a chunk-size line or a trailer line may hold.
constexpr qsizetype MaxHeadBytes = 64 * 1024;
constexpr qsizetype MaxLineBytes = 4 * 1024;

/*
 * One connection's requests, byte by byte, as the client sends them: where each head ends,
 * how long its body is, and whether an answer is still owed. Owned by the socket.
 */
class ConnectionWatch final : public QObject
{
public:
    ConnectionWatch(QTcpSocket *socket, const RequestGuard::Limits &limits)
        : QObject(socket), m_socket(socket), m_limits(limits)
    {
        setObjectName(WatchName);
        m_timer.setSingleShot(true);
        QObject::connect(&m_timer, &QTimer::timeout, this, [this] { timedOut(); });
        QObject::connect(socket, &QTcpSocket::readyRead, this, [this] { readyRead(); });
        rearm();
    }

    void answered()
    {
        m_owed = std::max(0, m_owed - 1);
        rearm();
    }

private:
    enum class Phase { Head, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailer, Upgraded, Closed };
    enum class Wait { None, Head, Body, Idle };

    void readyRead()
    {
        if (m_phase == Phase::Upgraded)
            return;
        if (m_phase == Phase::Closed) {
            m_socket->readAll(); // nothing more reaches the parser
            return;
        }
        // Every byte is seen here once: the parser reads what is here right after this.
        const QByteArray data = m_socket->peek(m_socket->bytesAvailable());
        qsizetype at = 0;
        while (at < data.size() && m_phase != Phase::Upgraded && m_phase != Phase::Closed)
            at += consume(QByteArrayView(data).sliced(at));
        // Refused: nothing more reaches the parser. (Whole requests pipelined before the
        // refused one in the same read are dropped too: Qt 6.4's parser loses a complete
        // request followed by an incomplete one in one read anyway.)
        if (m_phase == Phase::Closed)
            m_socket->readAll();
        rearm();
    }

    // Takes what belongs to the current phase from the front of \a data; returns how much.
    qsizetype consume(QByteArrayView data)
    {
        switch (m_phase) {
        case Phase::Head: {
            qsizetype taken = 0;
            if (m_head.isEmpty()) {
                // Blank lines between requests are allowed and ignored.
                while (taken < data.size() && (data.at(taken) == '\r' || data.at(taken) == '\n'))
                    ++taken;
                if (taken == data.size())
                    return taken;
                m_since.start();
            }
            const qsizetype before = m_head.size();
            m_head += data.sliced(taken);
            const qsizetype end = headEnd();
            if (end < 0) {
                if (m_head.size() > MaxHeadBytes)
                    refuse(431, "Request Header Fields Too Large",
                           {ApiError::Kind::BadRequest, u"the request head is too large"_s, {}, {}});
                return data.size();
            }
            const qsizetype used = end - before; // bytes of data up to the head's end
            m_head.truncate(end);
            headComplete();
            return taken + used;
        }
        case Phase::Body:
        case Phase::ChunkData: {
            const qsizetype taken = qsizetype(std::min<qint64>(m_left, data.size()));
            m_left -= taken;
            if (m_left == 0) {
                if (m_phase == Phase::Body)
                    requestComplete();
                else
                    m_phase = Phase::ChunkDataEnd;
            }
            return taken;
        }
        case Phase::ChunkSize:
        case Phase::ChunkDataEnd:
        case Phase::Trailer: {
            const qsizetype newline = data.indexOf('\n');
            const qsizetype taken = newline < 0 ? data.size() : newline + 1;
            m_line += data.first(taken);
            if (m_line.size() > MaxLineBytes) {
                refuse(400, "Bad Request", {ApiError::Kind::BadRequest, u"malformed chunked body"_s, {}, {}});
                return taken;
            }
            if (newline >= 0) {
                const QByteArray line = m_line.trimmed();
                m_line.clear();
                lineComplete(line);
            }
            return taken;
        }
        case Phase::Upgraded:
        case Phase::Closed:
            break;
        }
        return data.size();
    }

    // Where the head ends (just after its blank line) in m_head, or -1.
    qsizetype headEnd() const
    {
        const qsizetype crlf = m_head.indexOf("\n\r\n");
        const qsizetype lf = m_head.indexOf("\n\n");
        if (crlf >= 0 && (lf < 0 || crlf < lf))
            return crlf + 3;
        return lf >= 0 ? lf + 2 : -1;
    }

    void headComplete()
    {
        const QList<QByteArray> lines = m_head.split('\n');
        m_head.clear();
        const QByteArray requestLine = lines.constFirst().trimmed();
        const QList<QByteArray> parts = requestLine.split(' ');
        const QByteArray target = parts.size() > 1 ? parts.at(1) : QByteArray();
        const qint64 limit = RequestGuard::isUploadTarget(target)
            ? std::max(m_limits.maxBodyBytes, m_limits.maxUploadBytes) : m_limits.maxBodyBytes;
        qint64 length = 0;
        bool hasLength = false;
        bool chunked = false;
        bool expectContinue = false;
        bool upgrade = false;
        for (qsizetype i = 1; i < lines.size(); ++i) {
            const QByteArray &line = lines.at(i);
            const qsizetype colon = line.indexOf(':');
            if (colon <= 0)
                continue;
            const QByteArray name = line.left(colon).trimmed().toLower();
            const QByteArray value = line.mid(colon + 1).trimmed();
            if (name == "content-length") {
                bool ok = false;
                const qint64 given = value.toLongLong(&ok);
                if (!ok || given < 0 || (hasLength && given != length))
                    return refuse(400, "Bad Request", {ApiError::Kind::BadRequest, u"invalid Content-Length"_s, {}, {}});
                length = given;
                hasLength = true;
            } else if (name == "transfer-encoding") {
                chunked = value.toLower().contains("chunked");
            } else if (name == "expect") {
                expectContinue = value.toLower() == "100-continue";
            } else if (name == "upgrade") {
                upgrade = value.toLower() == "websocket";
            }
        }
        if (upgrade && (chunked || length > 0))
            return refuse(400, "Bad Request", {ApiError::Kind::BadRequest, u"a WebSocket upgrade has no body"_s, {}, {}});
        if (upgrade) {
            // The WebSocket server takes the connection over (or the refusal closes it).
            m_phase = Phase::Upgraded;
            return;
        }
        if (!chunked && length > limit)
            return refuse(413, "Payload Too Large", tooLarge(limit));
        if (expectContinue && (chunked || length > 0))
            m_socket->write("HTTP/1.1 100 Continue\r\n\r\n");
        m_chunkedLimit = limit;
        m_chunkedBytes = 0;
        if (chunked) {
            m_phase = Phase::ChunkSize;
            m_since.start();
        } else if (length > 0) {
            m_phase = Phase::Body;
            m_left = length;
            m_since.start();
        } else {
            requestComplete();
        }
    }

    void lineComplete(const QByteArray &line)
    {
        switch (m_phase) {
        case Phase::ChunkSize: {
            bool ok = false;
            const qint64 size = line.split(';').constFirst().trimmed().toLongLong(&ok, 16);
            if (!ok || size < 0)
                return refuse(400, "Bad Request", {ApiError::Kind::BadRequest, u"malformed chunked body"_s, {}, {}});
            if (size == 0) {
                m_phase = Phase::Trailer;
                return;
            }
            m_chunkedBytes += size;
            if (m_chunkedBytes > m_chunkedLimit)
                return refuse(413, "Payload Too Large", tooLarge(m_chunkedLimit));
            m_phase = Phase::ChunkData;
            m_left = size;
            return;
        }
        case Phase::ChunkDataEnd:
            m_phase = Phase::ChunkSize;
            return;
        case Phase::Trailer:
            if (line.isEmpty())
                requestComplete();
            return;
        default:
            return;
        }
    }

    void requestComplete()
    {
        m_phase = Phase::Head;
        m_left = 0;
        ++m_owed;
    }

    static ApiError tooLarge(qint64 limit)
    {
        return {ApiError::Kind::PayloadTooLarge, u"the body is over the limit of %1 bytes"_s.arg(limit), {}, {}};
    }

    // Answers \a status at once and closes: what the client sends after this is never parsed.
    void refuse(int status, const QByteArray &reason, const ApiError &error)
    {
        const QByteArray body = QJsonDocument(error.toJson()).toJson(QJsonDocument::Compact);
        m_socket->write("HTTP/1.1 " + QByteArray::number(status) + ' ' + reason + "\r\n"
                        "Content-Type: application/json\r\n" + securityHeaders()
                        + "Connection: close\r\nContent-Length: " + QByteArray::number(body.size())
                        + "\r\n\r\n" + body);
        m_socket->flush();
        m_socket->disconnectFromHost();
        m_phase = Phase::Closed;
    }

    // Which limit applies now, and (re)starts the timer when that changed.
    void rearm()
    {
        Wait wait = Wait::None;
        switch (m_phase) {
        case Phase::Head:
            wait = !m_head.isEmpty() ? Wait::Head : m_owed > 0 ? Wait::None : Wait::Idle;
            break;
        case Phase::Body:
        case Phase::ChunkSize:
        case Phase::ChunkData:
        case Phase::ChunkDataEnd:
        case Phase::Trailer:
            wait = Wait::Body;
            break;
        case Phase::Upgraded:
        case Phase::Closed:
            break;
        }
        if (wait == m_wait)
            return;
        m_wait = wait;
        m_timer.stop();
        qint64 limit = 0;
        switch (wait) {
        case Wait::Head: limit = m_limits.headTimeoutMs; break;
        case Wait::Body: limit = m_limits.bodyTimeoutMs; break;
        case Wait::Idle:
            limit = m_limits.idleTimeoutMs;
            m_since.start();
            break;
        case Wait::None: break;
        }
        if (limit > 0)
            m_timer.start(int(std::clamp<qint64>(limit - m_since.elapsed(), 0, std::numeric_limits<int>::max())));
    }

    void timedOut()
    {
        if (m_wait == Wait::Idle) {
            // Nothing under way: a plain close, as for any ended keep-alive.
            m_phase = Phase::Closed;
            m_socket->disconnectFromHost();
            return;
        }
        const bool head = m_wait == Wait::Head;
        refuse(408, "Request Timeout",
               {ApiError::Kind::BadRequest,
                head ? u"the request head took too long"_s : u"the request body took too long"_s, {}, {}});
        m_wait = Wait::None;
    }

    QTcpSocket *const m_socket;
    const RequestGuard::Limits m_limits;
    Phase m_phase = Phase::Head;
    Wait m_wait = Wait::None;
    QByteArray m_head;
    QByteArray m_line;
    qint64 m_left = 0;
    qint64 m_chunkedBytes = 0;
    qint64 m_chunkedLimit = 0;
    int m_owed = 0;
    QElapsedTimer m_since; // since the current head, body or idle time began
    QTimer m_timer;
};

} // namespace

RequestGuard::RequestGuard(const Limits &limits)
    : m_limits(limits)
{
    m_limits.maxUploadBytes = std::max(m_limits.maxUploadBytes, m_limits.maxBodyBytes);
}

void RequestGuard::incomingConnection(qintptr handle)
{
    auto *socket = new QTcpSocket(this);
    if (!socket->setSocketDescriptor(handle)) {
        delete socket;
        return;
    }
    // Connected before the parser's handler (which comes with addPendingConnection).
    new ConnectionWatch(socket, m_limits);
    addPendingConnection(socket);
}

bool RequestGuard::isUploadTarget(QByteArrayView target)
{
    return target == "/admin/upload" || target.startsWith("/admin/upload?");
}

void RequestGuard::answered(QTcpSocket *socket)
{
    if (!socket)
        return;
    if (auto *watch = socket->findChild<QObject *>(WatchName, Qt::FindDirectChildrenOnly))
        static_cast<ConnectionWatch *>(watch)->answered();
}

} // namespace taskdeck
