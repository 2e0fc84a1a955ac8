// SPDX-License-Identifier: MIT
#include "pgconnection.h"

#include <QSqlQuery>
#include <QUrl>
#include <QUrlQuery>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// Without it libpq waits for the operating system's TCP timeout (minutes) on a server that
// does not answer.
constexpr int kDefaultConnectTimeoutSeconds = 5;

} // namespace

std::optional<PgConnectionInfo> PgConnectionInfo::parse(const QString &text, QString *error)
{
    const QUrl url(text.trimmed(), QUrl::StrictMode);
    const QString scheme = url.scheme();
    const bool hierarchical = text.trimmed().section(u':', 1).startsWith(u"//"_s);
    if (!url.isValid() || !hierarchical || (scheme != "postgresql"_L1 && scheme != "postgres"_L1)) {
        // The text may hold a password: only its start is shown, cut before any '@'.
        QString shown = text.trimmed().section(u'@', 0, 0).section(u':', 0, 0);
        *error = u"database URL \"%1...\" is not a PostgreSQL URL: expected "
                 u"postgresql://USER@HOST:PORT/DATABASE"_s.arg(shown.left(40));
        return std::nullopt;
    }
    PgConnectionInfo info;
    info.m_host = url.host();
    info.m_port = url.port(5432);
    info.m_user = url.userName();
    info.m_password = url.password();
    info.m_database = url.path().mid(1);
    if (info.m_database.isEmpty() || info.m_database.contains(u'/')) {
        *error = u"database URL %1 names no database: expected postgresql://USER@HOST:PORT/DATABASE"_s
                     .arg(url.toString(QUrl::RemovePassword));
        return std::nullopt;
    }
    QStringList options;
    bool timeoutGiven = false;
    const QUrlQuery query(url);
    for (const auto &[key, value] : query.queryItems(QUrl::FullyDecoded)) {
        if (key == "host"_L1) {
            info.m_host = value; // a socket directory
            continue;
        }
        if (key == "connect_timeout"_L1)
            timeoutGiven = true;
        if (key.contains(u';') || value.contains(u';') || key.contains(u' ')) {
            *error = u"database URL %1: option \"%2\" cannot be used"_s
                         .arg(url.toString(QUrl::RemovePassword), key);
            return std::nullopt;
        }
        options.append(key + u'=' + value);
    }
    if (!timeoutGiven)
        options.append(u"connect_timeout=%1"_s.arg(kDefaultConnectTimeoutSeconds));
    info.m_options = options.join(u';');
    info.m_display = url.toString(QUrl::RemovePassword);
    return info;
}

QSqlDatabase PgConnectionInfo::open(const QString &name, QString *error) const
{
    if (!QSqlDatabase::isDriverAvailable(u"QPSQL"_s)) {
        *error = u"cannot use the database %1: Qt's PostgreSQL driver (QPSQL) is not installed "
                 u"(Debian: apt install libqt6sql6-psql)"_s.arg(m_display);
        return {};
    }
    QSqlError failure;
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(u"QPSQL"_s, name);
        if (!m_host.isEmpty())
            db.setHostName(m_host);
        db.setPort(m_port);
        if (!m_user.isEmpty())
            db.setUserName(m_user);
        if (!m_password.isEmpty())
            db.setPassword(m_password);
        db.setDatabaseName(m_database);
        db.setConnectOptions(m_options);
        if (db.open()) {
            QSqlQuery q(db);
            // Notices ("already exists, skipping") would go to stderr through libpq.
            q.exec(u"SET client_min_messages = warning"_s);
            q.exec(u"SET application_name = 'taskdeck'"_s);
            return db;
        }
        failure = db.lastError();
    }
    QSqlDatabase::removeDatabase(name);
    *error = describe(failure);
    return {};
}

QString PgConnectionInfo::describe(const QSqlError &error) const
{
    QString text = error.databaseText().trimmed();
    if (text.isEmpty())
        text = error.driverText().trimmed();
    text.replace(u'\n', u' ');
    // libpq may quote the connection string in its messages; a password must not follow.
    if (!m_password.isEmpty())
        text.replace(m_password, u"***"_s);
    return u"database %1: %2"_s.arg(m_display, text);
}

bool isConnectionLost(const QSqlDatabase &db, const QSqlError &error)
{
    if (!db.isOpen() || error.type() == QSqlError::ConnectionError)
        return true;
    QSqlQuery probe(db);
    return !probe.exec(u"SELECT 1"_s);
}

void appendArrayElement(QString &out, QStringView text)
{
    out += u'"';
    if (!text.contains(u'\\') && !text.contains(u'"')) {
        out += text;
    } else {
        for (const QChar c : text) {
            if (c == u'\\' || c == u'"')
                out += u'\\';
            out += c;
        }
    }
    out += u'"';
}

QString textArray(const QStringList &values)
{
    QString out = u"{"_s;
    for (qsizetype i = 0; i < values.size(); ++i) {
        if (i > 0)
            out += u',';
        appendArrayElement(out, values.at(i));
    }
    out += u'}';
    return out;
}

} // namespace taskdeck
