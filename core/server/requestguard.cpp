// SPDX-License-Identifier: MIT
#include "requestguard.h"

#include "httpreply.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QTcpSocket>
#include <QTimer>

#include <algorithm>
#include <cstring>
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
            if (m_head.isEmpty()) {
                // Blank lines between requests are allowed and ignored.
                qsizetype taken = 0;
                while (taken < data.size() && (data.at(taken) == '\r' || data.at(taken) == '\n'))
                    ++taken;
                if (taken == data.size())
                    return taken;
                m_since.start();
                // The usual case: the whole head in one read, looked at where it is.
                const QByteArrayView rest = data.sliced(taken);
                const qsizetype end = headEnd(rest, 0);
                if (end >= 0) {
                    headComplete(rest.first(end));
                    return taken + end;
                }
                m_head = rest.toByteArray();
                if (m_head.size() > MaxHeadBytes)
                    refuse(431, "Request Header Fields Too Large",
                           {ApiError::Kind::BadRequest, u"the request head is too large"_s, {}, {}});
                return data.size();
            }
            const qsizetype before = m_head.size();
            m_head += data;
            const qsizetype end = headEnd(m_head, std::max<qsizetype>(0, before - 3));
            if (end < 0) {
                if (m_head.size() > MaxHeadBytes)
                    refuse(431, "Request Header Fields Too Large",
                           {ApiError::Kind::BadRequest, u"the request head is too large"_s, {}, {}});
                return data.size();
            }
            const QByteArray head = m_head.first(end);
            m_head.clear();
            headComplete(head);
            return end - before; // the bytes of data up to the head's end
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

    // Where a head ends in \a text (just after its blank line), looking from \a from; -1.
    static qsizetype headEnd(QByteArrayView text, qsizetype from)
    {
        const char *begin = text.data();
        const qsizetype size = text.size();
        for (qsizetype at = from; at < size;) {
            const void *found = std::memchr(begin + at, '\n', size_t(size - at));
            if (!found)
                return -1;
            const qsizetype nl = static_cast<const char *>(found) - begin;
            if (nl + 1 < size && begin[nl + 1] == '\n')
                return nl + 2;
            if (nl + 2 < size && begin[nl + 1] == '\r' && begin[nl + 2] == '\n')
                return nl + 3;
            at = nl + 1;
        }
        return -1;
    }

    static QByteArrayView trimmed(QByteArrayView text)
    {
        while (!text.isEmpty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r'))
            text = text.sliced(1);
        while (!text.isEmpty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
            text.chop(1);
        return text;
    }

    // ASCII case-insensitive comparison with \a lower, which is lower case.
    static bool equalsLower(QByteArrayView text, QByteArrayView lower)
    {
        if (text.size() != lower.size())
            return false;
        for (qsizetype i = 0; i < text.size(); ++i) {
            const char c = text.at(i);
            if ((c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c) != lower.at(i))
                return false;
        }
        return true;
    }

    static bool containsLower(QByteArrayView text, QByteArrayView lower)
    {
        for (qsizetype i = 0; i + lower.size() <= text.size(); ++i) {
            if (equalsLower(text.sliced(i, lower.size()), lower))
                return true;
        }
        return false;
    }

    // Digits only; -1 for anything else (or a number too large to mean anything).
    static qint64 parseLength(QByteArrayView text)
    {
        if (text.isEmpty() || text.size() > 18)
            return -1;
        qint64 value = 0;
        for (const char c : text) {
            if (c < '0' || c > '9')
                return -1;
            value = value * 10 + (c - '0');
        }
        return value;
    }

    void headComplete(QByteArrayView head)
    {
        qsizetype lineEnd = head.indexOf('\n');
        const QByteArrayView requestLine = trimmed(head.first(lineEnd < 0 ? head.size() : lineEnd));
        const qsizetype space = requestLine.indexOf(' ');
        QByteArrayView target = space < 0 ? QByteArrayView() : requestLine.sliced(space + 1);
        if (const qsizetype end = target.indexOf(' '); end >= 0)
            target = target.first(end);
        qint64 length = 0;
        bool hasLength = false;
        bool chunked = false;
        bool expectContinue = false;
        bool upgrade = false;
        QByteArrayView contentType;
        while (lineEnd >= 0 && lineEnd + 1 < head.size()) {
            const qsizetype start = lineEnd + 1;
            lineEnd = head.indexOf('\n', start);
            const QByteArrayView line = head.sliced(start, (lineEnd < 0 ? head.size() : lineEnd) - start);
            const qsizetype colon = line.indexOf(':');
            if (colon <= 0)
                continue;
            const QByteArrayView name = trimmed(line.first(colon));
            const QByteArrayView value = trimmed(line.sliced(colon + 1));
            if (equalsLower(name, "content-length")) {
                const qint64 given = parseLength(value);
                if (given < 0 || (hasLength && given != length))
                    return refuse(400, "Bad Request", {ApiError::Kind::BadRequest, u"invalid Content-Length"_s, {}, {}});
                length = given;
                hasLength = true;
            } else if (equalsLower(name, "transfer-encoding")) {
                chunked = containsLower(value, "chunked");
            } else if (equalsLower(name, "expect")) {
                expectContinue = equalsLower(value, "100-continue");
            } else if (equalsLower(name, "upgrade")) {
                upgrade = equalsLower(value, "websocket");
            } else if (equalsLower(name, "content-type")) {
                contentType = value;
            }
        }
        // Files come as uploads, or in a form post to a task (multipart): those have the
        // upload limit, every other body the smaller one.
        const bool files = RequestGuard::carriesFiles(target, contentType);
        const qint64 limit = files ? std::max(m_limits.maxBodyBytes, m_limits.maxUploadBytes) : m_limits.maxBodyBytes;
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

bool RequestGuard::carriesFiles(QByteArrayView target, QByteArrayView contentType)
{
    if (isUploadTarget(target))
        return true;
    const qsizetype query = target.indexOf('?');
    const QByteArrayView path = query < 0 ? target : target.first(query);
    return QByteArray(contentType.data(), contentType.size()).toLower().contains("multipart/form-data")
        && path.startsWith("/admin/task/") && (path.endsWith("/start") || path.endsWith("/run"));
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
