// SPDX-License-Identifier: MIT
#pragma once

#include <QSqlDatabase>
#include <QSqlError>
#include <QString>

#include <optional>

namespace taskdeck {

/*!
 * Where a PostgreSQL database is, parsed from a URL of the form
 * \c {postgresql://user[:password]@host[:port]/database[?option=value&...]} (scheme
 * \c postgres too). Options are libpq's (\c sslmode, \c connect_timeout, \c host=/socket/dir,
 * ...). A password missing from the URL comes from \c PGPASSWORD or \c ~/.pgpass, through
 * libpq. No part of this class ever prints the password.
 */
class PgConnectionInfo final
{
public:
    /*! Parses \a url; nullopt with \a error saying what is wrong (without the password). */
    static std::optional<PgConnectionInfo> parse(const QString &url, QString *error);

    /*! The URL without its password, for messages and IRunStore::location(). */
    QString displayUrl() const { return m_display; }
    QString database() const { return m_database; }

    /*!
     * Adds a QPSQL connection named \a name on the calling thread and opens it. Returns the
     * open connection, or an invalid one with \a error set (naming the server, never the
     * password); nothing stays registered under \a name then.
     */
    QSqlDatabase open(const QString &name, QString *error) const;

    /*! One sentence about \a error for a user, naming displayUrl(). */
    QString describe(const QSqlError &error) const;

private:
    QString m_host;
    int m_port = 5432;
    QString m_user;
    QString m_password;
    QString m_database;
    QString m_options;  // "key=value;key=value", as QPSQL takes them
    QString m_display;
};

/*! True when \a error says the connection to the server is gone (not a refused statement). */
bool isConnectionLost(const QSqlDatabase &db, const QSqlError &error);

/*! Appends \a text to \a out as one quoted element of a PostgreSQL array literal. */
void appendArrayElement(QString &out, QStringView text);

/*! The PostgreSQL array literal of \a values, each quoted: bound as text, cast to text[]. */
QString textArray(const QStringList &values);

} // namespace taskdeck
