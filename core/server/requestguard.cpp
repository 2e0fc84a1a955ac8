// SPDX-License-Identifier: MIT
#include "requestguard.h"

#include "httpreply.h"

#include <QJsonDocument>
#include <QTcpSocket>
#include <QTimer>

using namespace Qt::StringLiterals;

namespace taskdeck {

void RequestGuard::incomingConnection(qintptr handle)
{
    auto *socket = new QTcpSocket(this);
    if (!socket->setSocketDescriptor(handle)) {
        delete socket;
        return;
    }
    if (m_headTimeoutMs > 0) {
        auto *timer = new QTimer(socket);
        timer->setSingleShot(true);
        timer->setInterval(int(m_headTimeoutMs));
        connect(timer, &QTimer::timeout, socket, [socket] { socket->abort(); });
    }
    connect(socket, &QTcpSocket::readyRead, socket, [this, socket] { inspect(socket); });
    addPendingConnection(socket);
}

bool RequestGuard::isUploadTarget(QByteArrayView target)
{
    return target == "/admin/upload" || target.startsWith("/admin/upload?");
}

void RequestGuard::inspect(QTcpSocket *socket) const
{
    // Only a head that starts here and is complete is looked at; anything else is left
    // to the parser, and the route's own size check.
    constexpr qint64 MaxHead = 64 * 1024;
    if (socket->property("taskdeckRefused").toBool()) {
        socket->readAll();
        return;
    }
    const QByteArray head = socket->peek(MaxHead);
    const qsizetype end = head.indexOf("\r\n\r\n");
    const qsizetype space = head.indexOf(' ');
    const bool startsRequest = space > 0 && space <= 8 && head.size() > space + 1 && head.at(space + 1) == '/';
    // A head sent a few bytes at a time holds the connection open for nothing (slowloris):
    // it has m_headTimeoutMs from its first bytes to its end.
    if (auto *timer = socket->findChild<QTimer *>(); timer) {
        if (end >= 0)
            timer->stop();
        else if (startsRequest && !timer->isActive())
            timer->start();
    }
    if (end < 0 || !startsRequest)
        return;
    qint64 length = 0;
    bool expectContinue = false;
    const QList<QByteArray> lines = head.left(end).split('\n');
    for (const QByteArray &line : lines) {
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0)
            continue;
        const QByteArray name = line.left(colon).trimmed().toLower();
        const QByteArray value = line.mid(colon + 1).trimmed();
        if (name == "content-length")
            length = value.toLongLong();
        else if (name == "expect" && value.toLower() == "100-continue")
            expectContinue = true;
    }
    const qsizetype targetEnd = head.indexOf(' ', space + 1);
    const qint64 limit = targetEnd > space && isUploadTarget(QByteArrayView(head).sliced(space + 1, targetEnd - space - 1))
        ? m_maxUploadBytes : m_maxBodyBytes;
    if (length > limit) {
        const ApiError error{ApiError::Kind::PayloadTooLarge,
                             u"the body is over the limit of %1 bytes"_s.arg(limit), {}, {}};
        const QByteArray body = QJsonDocument(error.toJson()).toJson(QJsonDocument::Compact);
        socket->write("HTTP/1.1 413 Payload Too Large\r\n"
                      "Content-Type: application/json\r\n" + securityHeaders()
                      + "Connection: close\r\nContent-Length: " + QByteArray::number(body.size())
                      + "\r\n\r\n" + body);
        socket->flush();
        socket->disconnectFromHost();
        // What the client sends before the close is not kept for the parser.
        socket->setProperty("taskdeckRefused", true);
        socket->readAll();
        return;
    }
    if (expectContinue)
        socket->write("HTTP/1.1 100 Continue\r\n\r\n");
}

} // namespace taskdeck
