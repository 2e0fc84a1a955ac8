// SPDX-License-Identifier: MIT
#pragma once

#include "apierror.h"
#include "requestguard.h"

#include <QByteArray>
#include <QHttpServerResponder>
#include <QJsonDocument>
#include <QJsonObject>
#include <QList>
#include <QPointer>
#include <QString>
#include <QTcpSocket>

#include <algorithm>
#include <functional>
#include <memory>
#include <utility>

namespace taskdeck {

using Headers = QList<std::pair<QByteArray, QByteArray>>;

/*! The headers every answer carries, errors included, as "Name: value\r\n" lines. */
inline QByteArray securityHeaders()
{
    return "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
           "X-Content-Type-Options: nosniff\r\n"
           "Referrer-Policy: no-referrer\r\n"
           "Cache-Control: no-store\r\n";
}

/*! The reason phrase of \a status for the status line ("Not Found"). */
inline QByteArrayView reasonPhrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: break;
    }
    return status < 400 ? "OK" : "Error";
}

/*!
 * The answer to one request, possibly given later (after a history query or a run's end).
 * Every answer goes through send() or beginStream(), which add the security headers; a
 * client that left before the answer is skipped (writing to its deleted socket would crash).
 * Each answer (or each chunk of a streamed one) goes to the socket in one write.
 */
class HttpReply final
{
public:
    using Sent = std::function<void(const QString &route, int status)>;
    /*! \a head: a HEAD request (no body is sent). \a close: the client asked for the
     *  connection to be closed after the answer (Connection: close). */
    HttpReply(QHttpServerResponder &&responder, bool head, bool close = false)
        : m_responder(std::move(responder)), m_socket(m_responder.socket()), m_head(head), m_close(close) {}
    /*! An answer never given (its client left, or the server stopped) is no longer owed. */
    ~HttpReply() { complete(); }
    Q_DISABLE_COPY_MOVE(HttpReply)

    /*! Called once with the route and status when the answer goes out. */
    void onSent(Sent sent) { m_onSent = std::move(sent); }

    /*! Names what the answer is counted under (the route's pattern). */
    void setRoute(const QString &route) { m_route = route; }
    QString route() const { return m_route; }

    bool isGone() const { return !m_socket || m_socket->state() != QAbstractSocket::ConnectedState; }

    void send(int status, const QByteArray &contentType, const QByteArray &body, const Headers &extra = {})
    {
        QByteArray out;
        if (!begin(status, contentType, extra, m_head ? 0 : body.size(), &out))
            return;
        out += "Content-Length: ";
        out += QByteArray::number(body.size());
        out += "\r\n\r\n";
        if (!m_head)
            out += body;
        write(out);
        complete();
    }
    void json(int status, const QJsonObject &object, const Headers &extra = {})
    {
        send(status, "application/json", QJsonDocument(object).toJson(QJsonDocument::Compact), extra);
    }
    void error(const ApiError &e)
    {
        Headers extra;
        if (!e.allow.isEmpty())
            extra.append({"Allow", e.allow});
        json(e.status(), e.toJson(), extra);
    }
    /*! A chunked answer: beginStream(), then chunk() as often as needed, then endStream(). */
    bool beginStream(const QByteArray &contentType, const Headers &extra = {})
    {
        QByteArray out;
        if (!begin(200, contentType, extra, 0, &out))
            return false;
        out += "Transfer-Encoding: chunked\r\n\r\n";
        write(out);
        if (m_head) {
            // The head says how the body would come; a HEAD answer has none, not even the
            // chunked end.
            complete();
            return false;
        }
        return true;
    }
    void chunk(const QByteArray &data)
    {
        if (!isGone() && !data.isEmpty())
            write(QByteArray::number(data.size(), 16) + "\r\n" + data + "\r\n");
    }
    void endStream()
    {
        if (!isGone())
            write(QByteArrayLiteral("0\r\n\r\n"));
        complete();
    }

private:
    // The status line and the headers but the length or framing, into \a out.
    bool begin(int status, const QByteArray &contentType, const Headers &extra, qsizetype bodySize, QByteArray *out)
    {
        if (isGone() || m_sent)
            return false;
        m_sent = true;
        if (m_onSent)
            m_onSent(m_route, status);
        // The security headers, with and without their Cache-Control (an answer may set its
        // own caching: static assets); the rest always stand.
        static const QByteArray security = securityHeaders();
        static const QByteArray securityButCaching = [] {
            QByteArray lines = securityHeaders();
            const qsizetype at = lines.indexOf("Cache-Control:");
            return lines.remove(at, lines.indexOf('\n', at) + 1 - at);
        }();
        const bool ownCaching = std::any_of(extra.cbegin(), extra.cend(),
                                            [](const auto &header) { return header.first == "Cache-Control"; });
        out->reserve(400 + bodySize);
        *out += "HTTP/1.1 ";
        *out += QByteArray::number(status);
        *out += ' ';
        *out += reasonPhrase(status);
        *out += "\r\nContent-Type: ";
        *out += contentType;
        *out += "\r\n";
        *out += ownCaching ? securityButCaching : security;
        for (const auto &[name, value] : extra) {
            *out += name;
            *out += ": ";
            *out += value;
            *out += "\r\n";
        }
        if (m_close)
            *out += "Connection: close\r\n";
        return true;
    }

    // The connection's guard counts answers owed, to tell a slow answer from an idle client;
    // a client that asked for it has the connection closed once its answer is out.
    void complete()
    {
        if (m_completed)
            return;
        m_completed = true;
        QTcpSocket *socket = m_socket.data();
        RequestGuard::answered(socket);
        if (m_close && m_sent && socket && socket->state() == QAbstractSocket::ConnectedState)
            socket->disconnectFromHost();
    }

    void write(const QByteArray &bytes)
    {
        if (QTcpSocket *socket = m_socket.data())
            socket->write(bytes);
    }

    QHttpServerResponder m_responder; // kept for its socket; the answer is written here
    QPointer<QTcpSocket> m_socket;
    const bool m_head;
    const bool m_close;
    Sent m_onSent;
    QString m_route = QStringLiteral("unmatched");
    bool m_sent = false;
    bool m_completed = false;
};
using HttpReplyPtr = std::shared_ptr<HttpReply>;

} // namespace taskdeck
