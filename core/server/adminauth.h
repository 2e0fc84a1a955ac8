// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QElapsedTimer>
#include <QHash>
#include <QList>
#include <QString>

namespace taskdeck {

/*!
 * The admin server's credentials: the token kept 0600 in the data directory (made on first
 * start) and the browser sessions opened with it. Main thread only.
 */
class AdminAuth final
{
public:
    /*! Reads DATA_DIR/admin-token, making it first when there is none. False with \a error. */
    bool load(const QString &dataDir, QString *error);

    QByteArray token() const { return m_token; }
    /*! Whether \a candidate is the token; takes the same time wherever they differ. */
    bool isToken(const QByteArray &candidate) const;

    /*! A code that opens one session, once, within kLoginCodeLifetimeMs. */
    QByteArray issueLoginCode();
    /*! True (and the code is gone) when \a code was issued, unused and is still fresh. */
    bool consumeLoginCode(const QByteArray &code);
    static constexpr qint64 kLoginCodeLifetimeMs = 5 * 60 * 1000;

    struct Session { QByteArray id; QByteArray csrf; };
    /*! A new session (random id and CSRF token). */
    Session openSession();
    /*! How long sessions last: \a idleMs without use, \a lifetimeMs after the log-in
     *  (0: no limit). Applies to sessions already open too. */
    void setSessionLimits(qint64 idleMs, qint64 lifetimeMs);
    /*! The CSRF token of session \a id, which counts as a use of it; empty when there is
     *  no such session or it has expired (and is then forgotten). */
    QByteArray useSession(const QByteArray &id);
    /*! Ends session \a id (log-out). */
    void closeSession(const QByteArray &id);
    /*! How many sessions are open (expired ones are dropped first). */
    qsizetype sessionCount();

    /*! False while \a client failed to log in too often lately (kMaxFailedLogins within
     *  kFailedLoginWindowMs). */
    bool mayTryLogin(const QString &client);
    void loginFailed(const QString &client);

    static constexpr int kMaxFailedLogins = 5;
    static constexpr qint64 kFailedLoginWindowMs = 60 * 1000;

    /*! Compares in time that depends only on the lengths. */
    static bool constantTimeEquals(const QByteArray &a, const QByteArray &b);
    /*! 32 random bytes from the system generator, hex. */
    static QByteArray randomHex();

private:
    struct SessionState { QByteArray csrf; qint64 openedAt = 0; qint64 usedAt = 0; }; // m_clock
    bool isExpired(const SessionState &session) const;

    QByteArray m_token;
    QHash<QByteArray, SessionState> m_sessions; // by session id
    qint64 m_sessionIdleMs = 0;
    qint64 m_sessionLifetimeMs = 0;
    QHash<QByteArray, qint64> m_loginCodes; // code -> issued at (m_clock)
    QHash<QString, QList<qint64>> m_failedLogins; // client -> when (m_clock), oldest first
    QElapsedTimer m_clock;
};

} // namespace taskdeck
