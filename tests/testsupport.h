// SPDX-License-Identifier: MIT
#pragma once
// Helpers shared by the tests of the engine, the command runner and the history store.

#include "sqliterunstore.h"
#include "task.h"
#include "../core/internal/tsan.h"

#include <QDebug>
#include <QFile>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QString>
#include <QVariant>

#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <csignal>
#include <memory>

namespace testsupport {

using namespace Qt::StringLiterals;

inline taskdeck::Task makeTask(const QString &key, taskdeck::TaskFunction fn, taskdeck::Fields fields = {})
{
    taskdeck::Task t;
    t.key = key;
    t.title = key;
    t.fields = std::move(fields);
    t.fn = std::move(fn);
    return t;
}

// Gone means no longer running: a leftover reparented to an init that does not reap stays
// a zombie, which is as dead as it gets.
inline bool processGone(qint64 pid)
{
    if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
        return true;
    QFile stat(u"/proc/%1/stat"_s.arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return true;
    const QByteArray text = stat.readAll();
    const qsizetype close = text.lastIndexOf(')');
    if (close < 0 || close + 2 >= text.size())
        return true;
    const char state = text.at(close + 2);
    return state == 'Z' || state == 'X';
}

inline std::unique_ptr<taskdeck::SqliteRunStore> openStore(const QString &dir)
{
    QString error;
    auto store = taskdeck::SqliteRunStore::open(dir, &error);
    if (!store)
        qWarning().noquote() << "open failed:" << error;
    return store;
}

// The whole log of a run, read a page at a time as a viewer would.
inline taskdeck::LogLines readWholeLog(taskdeck::IRunStore &store, const QString &runId, int page = 1000)
{
    taskdeck::LogLines all;
    for (qint64 next = 1;;) {
        const taskdeck::LogLines part = store.readLog(runId, next, page);
        if (part.isEmpty())
            return all;
        all += part;
        next = part.last().number + 1;
    }
}

// A connection of the test's own to an SQLite file, beside whatever the store has open.
class RawDb final
{
public:
    explicit RawDb(const QString &path) : m_name(u"tst-raw-%1"_s.arg(++s_count))
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(u"QSQLITE"_s, m_name);
        db.setDatabaseName(path);
        db.setConnectOptions(u"QSQLITE_BUSY_TIMEOUT=10000"_s);
        m_open = db.open();
    }
    ~RawDb()
    {
        QSqlDatabase::database(m_name, false).close();
        QSqlDatabase::removeDatabase(m_name);
    }
    Q_DISABLE_COPY_MOVE(RawDb)

    bool isOpen() const { return m_open; }
    QSqlDatabase db() const { return QSqlDatabase::database(m_name, false); }

    // Runs \a sql with \a values bound in order; returns the error text, empty on success.
    QString run(const QString &sql, const QVariantList &values = {}) const
    {
        QSqlQuery query(db());
        if (!query.prepare(sql))
            return query.lastError().text() + u" in: "_s + sql;
        for (const QVariant &value : values)
            query.addBindValue(value);
        return query.exec() ? QString() : query.lastError().text() + u" in: "_s + sql;
    }
    bool exec(const QString &sql, QString *error = nullptr) const
    {
        const QString problem = run(sql);
        if (error)
            *error = problem;
        return problem.isEmpty();
    }
    // The first row's \a column of \a sql; invalid when there is no row or an error.
    QVariant scalar(const QString &sql, int column = 0) const
    {
        QSqlQuery query(db());
        if (!query.exec(sql) || !query.next())
            return {};
        return query.value(column);
    }

private:
    static inline int s_count = 0;
    QString m_name;
    bool m_open = false;
};

// Calls \a fn in \a context's thread and waits until it returned (at most \a timeout): a
// Qt::BlockingQueuedConnection whose hand-over and wait ThreadSanitizer can see (the call goes
// through taskdeck::detail::postTo, the wait on a std::mutex). False when it timed out.
template <typename F>
bool callOnThread(QObject *context, F fn, std::chrono::milliseconds timeout = std::chrono::minutes(2))
{
    struct Done
    {
        std::mutex mutex;
        std::condition_variable returned;
        bool done = false; // guarded by mutex
    };
    const auto state = std::make_shared<Done>();
    taskdeck::detail::postTo(context, [state, fn = std::move(fn)]() mutable {
        fn();
        std::lock_guard lock(state->mutex);
        state->done = true;
        state->returned.notify_all();
    });
    std::unique_lock lock(state->mutex);
    return state->returned.wait_for(lock, timeout, [&state] { return state->done; });
}

} // namespace testsupport
