// SPDX-License-Identifier: MIT
#pragma once

#include <QTcpServer>

#include <algorithm>

QT_BEGIN_NAMESPACE
class QTcpSocket;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * Accepts connections and looks at each request's head before the HTTP parser reads it: a
 * body announced over the limit is refused with 413 and the connection dropped, so it is
 * never read into memory, and "Expect: 100-continue" is answered (QHttpServer 6.4 does
 * neither). Its readyRead handler is connected before the parser's, so it runs first.
 * Bind it to the QAbstractHttpServer (which takes it over) after listen(). Main thread.
 */
class RequestGuard final : public QTcpServer
{
public:
    /*! \a headTimeoutMs: how long a request head may take from its first bytes to its
     *  end before the connection is dropped (0: no limit). */
    RequestGuard(qint64 maxBodyBytes, qint64 headTimeoutMs, qint64 maxUploadBytes = 0)
        : m_maxBodyBytes(maxBodyBytes), m_maxUploadBytes(std::max(maxBodyBytes, maxUploadBytes)),
          m_headTimeoutMs(headTimeoutMs) {}

    /*! Whether the request target \a target (path and query) is the upload route, whose
     *  bodies may be as large as the upload limit. */
    static bool isUploadTarget(QByteArrayView target);

protected:
    void incomingConnection(qintptr handle) override;

private:
    void inspect(QTcpSocket *socket) const;

    const qint64 m_maxBodyBytes;
    const qint64 m_maxUploadBytes;
    const qint64 m_headTimeoutMs;
};

} // namespace taskdeck
