// SPDX-License-Identifier: MIT
#include "adminauth.h"

#include "privatefiles.h"

#include <QDir>
#include <QFile>
#include <QRandomGenerator>

using namespace Qt::StringLiterals;

namespace taskdeck {

bool AdminAuth::load(const QString &dataDir, QString *error)
{
    if (!PrivateFiles::makeDirectory(dataDir, error))
        return false;
    const QString path = QDir(dataDir).filePath(u"admin-token"_s);
    if (PrivateFiles::createFile(path)) {
        QFile file(path);
        if (!file.open(QIODevice::WriteOnly) || file.write(randomHex() + '\n') < 0) {
            *error = u"cannot write the admin token %1: %2"_s.arg(path, file.errorString());
            return false;
        }
    }
    PrivateFiles::tighten(path);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = u"cannot read the admin token %1: %2"_s.arg(path, file.errorString());
        return false;
    }
    m_token = file.readAll().trimmed();
    if (m_token.size() < 32) {
        *error = u"the admin token in %1 is too short (at least 32 characters); delete the "
                 u"file to have a new one made"_s.arg(path);
        return false;
    }
    return true;
}

bool AdminAuth::isToken(const QByteArray &candidate) const
{
    return !m_token.isEmpty() && constantTimeEquals(candidate, m_token);
}

AdminAuth::Session AdminAuth::openSession()
{
    if (!m_clock.isValid())
        m_clock.start();
    // Forgotten sessions are dropped here, so the table never grows past the live ones.
    for (auto it = m_sessions.begin(); it != m_sessions.end();)
        it = isExpired(it.value()) ? m_sessions.erase(it) : std::next(it);
    Session session{randomHex(), randomHex()};
    const qint64 now = m_clock.elapsed();
    m_sessions.insert(session.id, {session.csrf, now, now});
    return session;
}

void AdminAuth::setSessionLimits(qint64 idleMs, qint64 lifetimeMs)
{
    m_sessionIdleMs = idleMs;
    m_sessionLifetimeMs = lifetimeMs;
}

bool AdminAuth::isExpired(const SessionState &session) const
{
    const qint64 now = m_clock.elapsed();
    return (m_sessionIdleMs > 0 && now - session.usedAt > m_sessionIdleMs)
        || (m_sessionLifetimeMs > 0 && now - session.openedAt > m_sessionLifetimeMs);
}

QByteArray AdminAuth::useSession(const QByteArray &id)
{
    const auto found = m_sessions.find(id);
    if (found == m_sessions.end())
        return QByteArray();
    if (isExpired(found.value())) {
        m_sessions.erase(found);
        return QByteArray();
    }
    found->usedAt = m_clock.elapsed();
    return found->csrf;
}

void AdminAuth::closeSession(const QByteArray &id)
{
    m_sessions.remove(id);
}

qsizetype AdminAuth::sessionCount()
{
    for (auto it = m_sessions.begin(); it != m_sessions.end();)
        it = isExpired(it.value()) ? m_sessions.erase(it) : std::next(it);
    return m_sessions.size();
}

QByteArray AdminAuth::issueLoginCode()
{
    if (!m_clock.isValid())
        m_clock.start();
    const QByteArray code = randomHex();
    m_loginCodes.insert(code, m_clock.elapsed());
    return code;
}

bool AdminAuth::consumeLoginCode(const QByteArray &code)
{
    const auto found = m_loginCodes.constFind(code);
    if (found == m_loginCodes.cend())
        return false;
    const bool fresh = m_clock.elapsed() - found.value() <= kLoginCodeLifetimeMs;
    m_loginCodes.erase(found);
    return fresh;
}

bool AdminAuth::mayTryLogin(const QString &client)
{
    if (!m_clock.isValid())
        return true;
    auto found = m_failedLogins.find(client);
    if (found == m_failedLogins.end())
        return true;
    const qint64 now = m_clock.elapsed();
    while (!found->isEmpty() && now - found->constFirst() > kFailedLoginWindowMs)
        found->removeFirst();
    if (found->isEmpty()) {
        m_failedLogins.erase(found);
        return true;
    }
    return found->size() < kMaxFailedLogins;
}

void AdminAuth::loginFailed(const QString &client)
{
    if (!m_clock.isValid())
        m_clock.start();
    m_failedLogins[client].append(m_clock.elapsed());
}

bool AdminAuth::constantTimeEquals(const QByteArray &a, const QByteArray &b)
{
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (qsizetype i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a.at(i) ^ b.at(i));
    return diff == 0;
}

QByteArray AdminAuth::randomHex()
{
    quint32 words[8];
    QRandomGenerator::system()->fillRange(words);
    return QByteArray(reinterpret_cast<const char *>(words), sizeof(words)).toHex();
}

} // namespace taskdeck
