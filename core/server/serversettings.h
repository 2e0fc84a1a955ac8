// SPDX-License-Identifier: MIT
#pragma once

#include <QHostAddress>
#include <QString>

#include <optional>

namespace taskdeck {

/*! Where and how the admin server listens. Plain value. */
struct ServerSettings
{
    QHostAddress address = QHostAddress(QHostAddress::LocalHost);
    quint16 port = 8470;          //!< 0 picks a free port (tests)
    QString dataDir;              //!< where admin-token lives; must be set
    qint64 maxBodyBytes = 1024 * 1024;
    qint64 maxUploadBytes = 16 * 1024 * 1024; //!< a file posted to /admin/upload
    /*! A request head still incomplete this long after its first bytes: 408, closed. */
    qint64 requestHeadTimeoutMs = 10 * 1000;
    /*! A request body still incomplete this long after its head: 408, closed. */
    qint64 requestBodyTimeoutMs = 60 * 1000;
    /*! A connection with no request under way and no answer owed (a new one that sends
     *  nothing, or a keep-alive one between requests) is closed after this long. */
    qint64 idleTimeoutMs = 30 * 1000;
    /*! A browser session unused this long is over (401, or the log-in page). */
    qint64 sessionIdleTimeoutMs = 30 * 60 * 1000;
    /*! A browser session is over this long after the log-in, however much it is used. */
    qint64 sessionLifetimeMs = 12 * 60 * 60 * 1000;
    /*! A WebSocket client with more than this many bytes waiting to be sent is too slow. */
    qint64 maxPendingSocketBytes = 4 * 1024 * 1024;
    /*! TASK_WEBSOCKET_ENABLED: false answers /ws/task/... with 404. */
    bool webSocketEnabled = true;

    /*! "127.0.0.1:8470", "[::1]:8470" */
    QString listenText() const;
};

/*!
 * Parses "ADDRESS:PORT", "[IPv6]:PORT" or a bare "ADDRESS" (port 8470). Returns nullopt with
 * \a error saying what is wrong ("not an address").
 */
std::optional<std::pair<QHostAddress, quint16>> parseListenAddress(const QString &text, QString *error);

/*! "127.0.0.1:8470", "[::1]:8470". */
QString formatListenAddress(const QHostAddress &address, quint16 port);

} // namespace taskdeck
