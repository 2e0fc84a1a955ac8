// SPDX-License-Identifier: MIT
#pragma once
// A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a
// free loopback port, run by an unprivileged user when the tests run as root (initdb and
// the server refuse root). A watchdog process removes it when the test process ends, however
// it ends (a failed assertion, a crash, SIGKILL): it waits on a pipe only this process holds.

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <QString>
#include <QTcpServer>
#include <QTemporaryDir>

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>

namespace testsupport {

class PgTestServer final
{
public:
    PgTestServer() = default;
    Q_DISABLE_COPY_MOVE(PgTestServer)
    ~PgTestServer() { destroy(); }

    static QString binDir() { return QStringLiteral("/usr/lib/postgresql/15/bin"); }
    static bool isInstalled() { return QFile::exists(binDir() + QStringLiteral("/initdb")); }

    /*! Creates and starts the cluster; false with error() set when it cannot. */
    bool start()
    {
        using namespace Qt::StringLiterals;
        if (!isInstalled())
            return fail(u"PostgreSQL 15 is not installed (packaging/install-deps --test)"_s);
        m_dir = std::make_unique<QTemporaryDir>(QDir::tempPath() + u"/taskdeck-pg-XXXXXX"_s);
        if (!m_dir->isValid())
            return fail(u"no temporary folder"_s);
        m_root = m_dir->path();
        m_dir->setAutoRemove(false); // the watchdog removes it, after the server is down
        if (geteuid() == 0) {
            const passwd *pw = getpwnam("postgres");
            if (!pw)
                pw = getpwnam("nobody");
            if (!pw)
                return fail(u"no unprivileged user to run PostgreSQL as"_s);
            m_user = QString::fromLocal8Bit(pw->pw_name);
            if (::chown(QFile::encodeName(m_root).constData(), pw->pw_uid, pw->pw_gid) != 0)
                return fail(u"cannot give %1 to %2"_s.arg(m_root, m_user));
        }
        startWatchdog();
        QString out;
        if (!runAsOwner({binDir() + u"/initdb"_s, u"-D"_s, dataDir(), u"-A"_s, u"trust"_s, u"-U"_s,
                         u"taskdeck"_s, u"-E"_s, u"UTF8"_s, u"--locale=C"_s, u"--no-sync"_s},
                        &out))
            return fail(u"initdb failed: "_s + out);
        m_port = freePort();
        return startServer();
    }

    /*! Starts the server again after stop(), on the same port. */
    bool startServer()
    {
        using namespace Qt::StringLiterals;
        const QString options =
            u"-p %1 -k %2 -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            u"-c full_page_writes=off -c max_connections=200"_s.arg(m_port).arg(m_root);
        QString out;
        if (!runAsOwner({binDir() + u"/pg_ctl"_s, u"-D"_s, dataDir(), u"-o"_s, options, u"-l"_s,
                         m_root + u"/server.log"_s, u"-w"_s, u"-t"_s, u"60"_s, u"start"_s},
                        &out))
            return fail(u"pg_ctl start failed: "_s + out + serverLog());
        m_running = true;
        return true;
    }

    /*! Stops the server: \a mode "fast" (clients are told) or "immediate" (as a crash). */
    bool stopServer(const QString &mode = QStringLiteral("fast"))
    {
        using namespace Qt::StringLiterals;
        QString out;
        const bool ok = runAsOwner({binDir() + u"/pg_ctl"_s, u"-D"_s, dataDir(), u"-m"_s, mode, u"-w"_s,
                                    u"stop"_s}, &out);
        m_running = !ok;
        return ok;
    }

    /*! A new, empty database; returns its URL. */
    QString createDatabase()
    {
        using namespace Qt::StringLiterals;
        const QString name = u"tdb%1"_s.arg(++m_databases);
        if (!exec(u"postgres"_s, u"CREATE DATABASE %1 TEMPLATE template0"_s.arg(name)))
            return {};
        return url(name);
    }

    QString url(const QString &database) const
    {
        return QStringLiteral("postgresql://taskdeck@127.0.0.1:%1/%2").arg(m_port).arg(database);
    }

    /*! Runs \a sql on \a database with a connection of the test's own. */
    bool exec(const QString &database, const QString &sql, QVariant *firstValue = nullptr)
    {
        using namespace Qt::StringLiterals;
        const QString name = u"pgtest-%1"_s.arg(++m_connections);
        bool ok = false;
        {
            QSqlDatabase db = QSqlDatabase::addDatabase(u"QPSQL"_s, name);
            db.setHostName(u"127.0.0.1"_s);
            db.setPort(m_port);
            db.setUserName(u"taskdeck"_s);
            db.setDatabaseName(database);
            if (db.open()) {
                QSqlQuery q(db);
                ok = q.exec(sql);
                if (!ok)
                    m_error = q.lastError().text();
                else if (firstValue)
                    *firstValue = q.next() ? q.value(0) : QVariant();
            } else {
                m_error = db.lastError().text();
            }
            db.close();
        }
        QSqlDatabase::removeDatabase(name);
        return ok;
    }

    int port() const { return m_port; }
    QString error() const { return m_error; }
    QString serverLog() const
    {
        QFile log(m_root + QStringLiteral("/server.log"));
        return log.open(QIODevice::ReadOnly) ? QString::fromLocal8Bit(log.readAll().right(2000)) : QString();
    }

private:
    QString dataDir() const { return m_root + QStringLiteral("/data"); }

    bool fail(const QString &why)
    {
        m_error = why;
        return false;
    }

    static int freePort()
    {
        QTcpServer probe;
        probe.listen(QHostAddress::LocalHost, 0);
        return probe.serverPort();
    }

    QStringList asOwner(const QStringList &command) const
    {
        if (m_user.isEmpty())
            return command;
        return QStringList{QStringLiteral("runuser"), QStringLiteral("-u"), m_user, QStringLiteral("--")} + command;
    }

    bool runAsOwner(const QStringList &command, QString *output) const
    {
        const QStringList full = asOwner(command);
        QProcess process;
        process.setProcessChannelMode(QProcess::MergedChannels);
        process.setWorkingDirectory(m_root);
        process.start(full.first(), full.mid(1));
        if (!process.waitForFinished(120000)) {
            process.kill();
            process.waitForFinished();
        }
        *output = QString::fromLocal8Bit(process.readAll());
        return process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
    }

    // The watchdog reads a pipe until this process closes it (or dies), then stops the server
    // and removes the folder.
    void startWatchdog()
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            return;
        const QString stop = asOwner({binDir() + QStringLiteral("/pg_ctl"), QStringLiteral("-D"), dataDir(),
                                      QStringLiteral("-m"), QStringLiteral("immediate"), QStringLiteral("-w"),
                                      QStringLiteral("stop")}).join(u' ');
        const QByteArray script = (QStringLiteral("cat >/dev/null; ") + stop
                                   + QStringLiteral(" >/dev/null 2>&1; rm -rf '") + m_root + QStringLiteral("'"))
                                      .toLocal8Bit();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::setsid();
            ::dup2(fds[0], 0);
            const int devnull = ::open("/dev/null", O_WRONLY);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            ::execl("/bin/sh", "sh", "-c", script.constData(), static_cast<char *>(nullptr));
            ::_exit(127);
        }
        ::close(fds[0]);
        m_watchdogPipe = fds[1];
        m_watchdog = pid;
    }

    void destroy()
    {
        if (m_watchdogPipe >= 0) {
            ::close(m_watchdogPipe);
            m_watchdogPipe = -1;
            int status = 0;
            ::waitpid(m_watchdog, &status, 0);
        }
    }

    std::unique_ptr<QTemporaryDir> m_dir;
    QString m_root;
    QString m_user;
    QString m_error;
    int m_port = 0;
    int m_databases = 0;
    int m_connections = 0;
    int m_watchdogPipe = -1;
    pid_t m_watchdog = -1;
    bool m_running = false;
};

} // namespace testsupport
