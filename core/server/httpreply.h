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

/*!
 * The answer to one request, possibly given later (after a history query or a run's end).
 * Every answer goes through send(), which adds the security headers; a client that left
 * before the answer is skipped (writing to its deleted socket would crash).
 */
class HttpReply final
{
public:
    using Sent = std::function<void(const QString &route, int status)>;
    HttpReply(QHttpServerResponder &&responder, bool head)
        : m_responder(std::move(responder)), m_socket(m_responder.socket()), m_head(head) {}
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
        if (!begin(status, contentType, extra))
            return;
        m_responder.writeHeader("Content-Length", QByteArray::number(body.size()));
        m_responder.writeBody(m_head ? QByteArray() : body);
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
        if (!begin(200, contentType, extra))
            return false;
        if (m_head) {
            m_responder.writeBody(QByteArray());
            complete();
            return false;
        }
        m_responder.writeHeader("Transfer-Encoding", "chunked");
        m_responder.writeBody(QByteArray());
        return true;
    }
    void chunk(const QByteArray &data)
    {
        if (!isGone() && !data.isEmpty())
            m_responder.writeBody(QByteArray::number(data.size(), 16) + "\r\n" + data + "\r\n");
    }
    void endStream()
    {
        if (!isGone())
            m_responder.writeBody(QByteArrayLiteral("0\r\n\r\n"));
        complete();
    }

private:
    // The connection's guard counts answers owed, to tell a slow answer from an idle client.
    void complete()
    {
        if (m_completed)
            return;
        m_completed = true;
        RequestGuard::answered(m_socket.data());
    }

    bool begin(int status, const QByteArray &contentType, const Headers &extra)
    {
        if (isGone() || m_sent)
            return false;
        m_sent = true;
        if (m_onSent)
            m_onSent(m_route, status);
        m_responder.writeStatusLine(static_cast<QHttpServerResponder::StatusCode>(status));
        m_responder.writeHeader("Content-Type", contentType);
        static const Headers security = [] {
            Headers headers;
            const QList<QByteArray> lines = securityHeaders().trimmed().split('\n');
            for (const QByteArray &line : lines) {
                const qsizetype colon = line.indexOf(':');
                headers.append({line.left(colon), line.mid(colon + 2).trimmed()});
            }
            return headers;
        }();
        for (const auto &[name, value] : security) {
            // An answer may set its own caching (static assets); the rest always stand.
            const bool overridden = name == "Cache-Control"
                && std::any_of(extra.cbegin(), extra.cend(),
                               [&name](const auto &header) { return header.first == name; });
            if (!overridden)
                m_responder.writeHeader(name, value);
        }
        for (const auto &[name, value] : extra)
            m_responder.writeHeader(name, value);
        return true;
    }

    QHttpServerResponder m_responder;
    QPointer<QTcpSocket> m_socket;
    const bool m_head;
    Sent m_onSent;
    QString m_route = QStringLiteral("unmatched");
    bool m_sent = false;
    bool m_completed = false;
};
using HttpReplyPtr = std::shared_ptr<HttpReply>;

} // namespace taskdeck
