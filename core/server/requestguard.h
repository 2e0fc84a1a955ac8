// SPDX-License-Identifier: MIT
#pragma once

#include <QTcpServer>

QT_BEGIN_NAMESPACE
class QTcpSocket;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * Accepts connections and watches every byte of each request before the HTTP parser reads
 * it (its readyRead handler is connected before the parser's, so it runs first). It follows
 * the requests of a connection (heads, Content-Length and chunked bodies, keep-alive and
 * pipelining) to do what QHttpServer 6.4 does not:
 *
 * - a body announced over the limit is refused with 413 and the connection closed, so it is
 *   never read into memory, however the head was split into TCP segments;
 * - "Expect: 100-continue" is answered;
 * - a head that takes longer than Limits::headTimeoutMs from its first byte, a body that
 *   takes longer than Limits::bodyTimeoutMs after its head, and a connection idle (no
 *   request under way and no answer owed) longer than Limits::idleTimeoutMs are closed.
 *
 * The answers tell it when they are complete (answered()), so a request whose answer takes
 * long (a run that is waited for) does not count as idle. A connection upgraded to a
 * WebSocket is no longer watched. Bind it to the QAbstractHttpServer (which takes it over)
 * after listen(). Main thread.
 */
class RequestGuard final : public QTcpServer
{
public:
    /*! What a connection may do; a time of 0 is no limit. */
    struct Limits
    {
        qint64 maxBodyBytes = 1024 * 1024;
        qint64 maxUploadBytes = 0;   //!< the upload route's limit (at least maxBodyBytes)
        qint64 headTimeoutMs = 0;
        qint64 bodyTimeoutMs = 0;
        qint64 idleTimeoutMs = 0;
    };

    explicit RequestGuard(const Limits &limits);

    /*! Whether the request target \a target (path and query) is the upload route, whose
     *  bodies may be as large as the upload limit. */
    static bool isUploadTarget(QByteArrayView target);
    /*!
     * Whether a request for \a target with \a contentType carries files, and so has the
     * upload limit: an upload, or a multipart form posted to a task's start or run.
     */
    static bool carriesFiles(QByteArrayView target, QByteArrayView contentType);

    /*! Tells the guard of \a socket that the answer to its oldest unanswered request is
     *  complete (or abandoned). Harmless for a socket no guard watches, or a null one. */
    static void answered(QTcpSocket *socket);

protected:
    void incomingConnection(qintptr handle) override;

private:
    Limits m_limits;
};

} // namespace taskdeck
