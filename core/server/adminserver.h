// SPDX-License-Identifier: MIT
#pragma once

#include "serversettings.h"

#include <QObject>
#include <QUrl>

#include <memory>

namespace taskdeck {

class IRunStore;
class TaskEngine;

/*!
 * The embedded admin server: the JSON API over the engine and the history, and live run
 * streams over WebSocket, on one port. GUI-free; used by `taskdeck serve` and the desktop.
 *
 * Security is on by default: every route but /healthz and /login needs the token (made on
 * first start, kept 0600 as DATA_DIR/admin-token) as `Authorization: Bearer TOKEN`, or the
 * session cookie /login?token=TOKEN sets; requests made with the cookie that change state
 * carry the session's `X-CSRF-Token`; a foreign Origin and a Host other than the listen
 * address or localhost are refused; every answer carries CSP, nosniff and Referrer-Policy.
 *
 * Threading: create and use it on the engine's thread (the main thread); its handlers run
 * there and never block it (history queries are asynchronous).
 *
 * \code
 * AdminServer server(&engine, store.get(), settings);
 * QString error;
 * if (!server.listen(&error))
 *     return fail(error); // "address 127.0.0.1:8470 is in use"
 * qInfo() << "login:" << server.loginUrl().toString();
 * \endcode
 */
class AdminServer final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(AdminServer)

public:
    /*! \a engine must outlive the server; \a store may be null (no history routes). */
    AdminServer(TaskEngine *engine, IRunStore *store, const ServerSettings &settings,
                QObject *parent = nullptr);
    ~AdminServer() override;

    /*! Loads (or makes) the token and starts listening. False with \a error saying why. */
    bool listen(QString *error);
    /*! The port listened on (the one chosen when the settings asked for 0). */
    quint16 port() const;
    /*! http://ADDRESS:PORT */
    QUrl baseUrl() const;
    /*! The link that opens a browser session: /login?token=TOKEN. */
    QUrl loginUrl() const;
    /*! A link that opens one browser session, once, within five minutes ("Open in
     *  browser" of the desktop): /login?code=CODE. */
    QUrl oneTimeLoginUrl();
    QByteArray token() const;

private:
    class Private;
    std::unique_ptr<Private> d;
};

} // namespace taskdeck
