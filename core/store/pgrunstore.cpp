// SPDX-License-Identifier: MIT
#include "pgrunstore.h"

#include "logchunk.h"
#include "pgconnection.h"
#include "pgqueue.h"
#include "pgschema.h"
#include "runcolumns.h"
#include "runid.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "../internal/tsan.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QPromise>
#include <QSet>
#include <QSqlDriver>
#include <QSqlError>
#include <QSqlQuery>
#include <QSqlRecord>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <QVariant>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using namespace Qt::StringLiterals;

namespace taskdeck {

Q_LOGGING_CATEGORY(lcPgStore, "taskdeck.store")

namespace {

using Clock = std::chrono::steady_clock;

// How long the writer gathers changes into one transaction; a finish is written at once,
// or, right after another commit, this much later, so finishes that come thick and fast
// share a commit.
constexpr std::chrono::milliseconds kBatchInterval{25};
constexpr std::chrono::milliseconds kGroupCommit{3};
// How long a query waits for what was recorded before it to be committed.
constexpr std::chrono::seconds kCatchUpWait{10};
// Waits between attempts to reach a server that is gone.
constexpr std::chrono::milliseconds kReconnectFirst{100};
constexpr std::chrono::milliseconds kReconnectMost{2000};
// How often the listener checks that its connection is alive.
constexpr std::chrono::milliseconds kListenerCheck{1000};
// How far back a reconnected listener looks for runs written while it was away, beyond the
// moment it lost the connection (clocks of machines differ a little).
constexpr qint64 kMissedMarginMs = 5000;
constexpr int kMaxRunsPerPage = 1000;
constexpr int kMaxLogPage = 100000;
// Run ids per NOTIFY: a payload must stay under 8000 bytes.
constexpr qsizetype kIdsPerNotify = 150;
constexpr int kPruneBatch = 500;
constexpr qsizetype kMaxProblemsShown = 20;

const QString kActive = u"('queued', 'running', 'retrying')"_s;

std::atomic<quint64> g_nextSerial{1};

// Stores open now, so a thread drops its connections of stores that are gone.
std::mutex g_liveMutex;
QSet<quint64> g_liveStores; // guarded by g_liveMutex

bool storeIsLive(quint64 serial)
{
    const std::lock_guard lock(g_liveMutex);
    return g_liveStores.contains(serial);
}

// QSqlDatabase connections belong to the thread that opened them: each thread keeps one per
// store, and closes them when it ends (or finds their store gone).
class ThreadConnections
{
public:
    ThreadConnections() = default;
    Q_DISABLE_COPY_MOVE(ThreadConnections)
    ~ThreadConnections()
    {
        // Threads Qt adopted (std::thread) emit finished() from their own thread-local data,
        // which may go after this object: the hook must not outlive it.
        QObject::disconnect(m_finishedHook);
        for (auto it = m_names.cbegin(); it != m_names.cend(); ++it)
            drop(it.value());
    }

    QSqlDatabase get(quint64 serial, const PgConnectionInfo &info, QString *error)
    {
        dropDeadStores();
        const auto found = m_names.constFind(serial);
        if (found != m_names.cend()) {
            if (QSqlDatabase db = QSqlDatabase::database(found.value(), false); db.isOpen())
                return db;
            release(serial);
        }
        const QString name = u"taskdeck-pg-%1-%2"_s.arg(serial).arg(++m_count) + u'-'
            + QString::number(quintptr(QThread::currentThreadId()), 16);
        QSqlDatabase db = info.open(name, error);
        if (db.isOpen()) {
            m_names.insert(serial, name);
            closeWhenThreadFinishes();
        }
        return db;
    }

    /*! Closes this thread's connection of store \a serial (after a failure, or at its end). */
    void release(quint64 serial)
    {
        const QString name = m_names.take(serial);
        if (!name.isEmpty())
            drop(name);
    }

private:
    // A QThread's wait() returns before its thread_local objects are destroyed: a process that
    // ends right after joining a reader thread could remove these connections while QtSql's
    // own globals are being destroyed (a crash at exit). They are closed on finished() instead,
    // which the ending thread emits before wait() returns.
    void closeWhenThreadFinishes()
    {
        QThread *thread = QThread::currentThread();
        const QCoreApplication *app = QCoreApplication::instance();
        if (m_hooked || !thread || (app && thread == app->thread()))
            return;
        m_hooked = true;
        m_finishedHook = QObject::connect(thread, &QThread::finished, thread, [this] {
            for (auto it = m_names.cbegin(); it != m_names.cend(); ++it)
                drop(it.value());
            m_names.clear();
        }, Qt::ConnectionType(Qt::DirectConnection | Qt::SingleShotConnection)); // a restarted thread has new ones
    }

    static void drop(const QString &name)
    {
        {
            QSqlDatabase db = QSqlDatabase::database(name, false);
            db.close();
        }
        QSqlDatabase::removeDatabase(name);
    }

    void dropDeadStores()
    {
        for (auto it = m_names.begin(); it != m_names.end();) {
            if (storeIsLive(it.key())) {
                ++it;
                continue;
            }
            drop(it.value());
            it = m_names.erase(it);
        }
    }

    QHash<quint64, QString> m_names;
    int m_count = 0;
    bool m_hooked = false; // closeWhenThreadFinishes() connected
    QMetaObject::Connection m_finishedHook;
};

ThreadConnections &threadConnections()
{
    thread_local ThreadConnections connections;
    return connections;
}

QVariant textOrNull(const QString &text)
{
    return text.isNull() ? QVariant(QMetaType::fromType<QString>()) : QVariant(text);
}

// A result as JSON text, or a null string for none (see SqliteRunStore: any JSON value, wrapped).
QString resultText(const QJsonValue &value)
{
    if (value.isUndefined())
        return QString();
    const QByteArray text = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(text.mid(1, text.size() - 2));
}

// What one batch writes for a run: its latest state (or progress) and its new lines.
struct PendingRun
{
    std::optional<Run> state;
    std::optional<Progress> progress;
    LogLines lines;

    void merge(PendingRun &&later)
    {
        if (later.state) {
            state = std::move(later.state);
            progress.reset();
        }
        if (later.progress) {
            if (state)
                state->progress = *later.progress;
            else
                progress = later.progress;
        }
        lines.append(std::move(later.lines));
    }
};

using PendingRuns = QHash<QString, PendingRun>;

// The states of one batch, column by column, written with one statement (unnest of arrays)
// instead of one statement per run: a round trip per run is what a busy server makes slow.
// Each column is the text of a PostgreSQL array literal, its elements appended in place.
class StateRows
{
public:
    static constexpr int kColumns = 23;

    // The cells of one row, appended in column order.
    class Row
    {
    public:
        explicit Row(StateRows &rows) : m_rows(rows) {}
        ~Row() { Q_ASSERT(m_column == kColumns); }
        Row(const Row &) = delete;
        Row &operator=(const Row &) = delete;

        Row &text(QStringView text)
        {
            appendArrayElement(next(), text);
            return *this;
        }
        // Null for a null string (none), the text otherwise.
        Row &textOrNull(const QString &value) { return value.isNull() ? null() : text(value); }
        Row &number(qint64 value)
        {
            next() += QString::number(value);
            return *this;
        }
        Row &time(const QDateTime &value) { return value.isValid() ? number(value.toMSecsSinceEpoch()) : null(); }
        Row &flag(bool value)
        {
            next() += value ? u't' : u'f';
            return *this;
        }
        Row &null()
        {
            next() += u"NULL"_s;
            return *this;
        }

    private:
        QString &next()
        {
            Q_ASSERT(m_column < kColumns);
            QString &out = m_rows.m_columns[size_t(m_column++)];
            if (m_rows.m_size > 1)
                out += u',';
            return out;
        }
        StateRows &m_rows;
        int m_column = 0;
    };

    qsizetype size() const { return m_size; }
    Row add()
    {
        ++m_size;
        return Row(*this);
    }
    QString array(int column) const { return u'{' + m_columns[size_t(column)] + u'}'; }

private:
    std::array<QString, kColumns> m_columns;
    qsizetype m_size = 0;
};

} // namespace

// Listens on the runs channel in a thread of its own and posts what it hears to the notifier.
class PgListener final : public QObject
{
public:
    PgListener(const PgConnectionInfo &info, quint64 serial, RunStoreNotifier *notifier)
        : m_info(info)
        , m_name(u"taskdeck-pg-listen-%1"_s.arg(serial))
        , m_notifier(notifier)
    {
    }

    ~PgListener() override
    {
        disconnectNow();
        // Deleted on its thread as it ends, before QThread::wait() returns (see ~PgRunStore).
        TASKDECK_HAPPENS_BEFORE(m_notifier);
    }

    void start()
    {
        m_check = new QTimer(this);
        m_check->setInterval(kListenerCheck);
        connect(m_check, &QTimer::timeout, this, &PgListener::check);
        m_check->start();
        connectNow();
    }

private:
    void connectNow()
    {
        QString error;
        QSqlDatabase db = m_info.open(m_name, &error);
        if (!db.isOpen()) {
            if (!m_warned) {
                qCWarning(lcPgStore).noquote() << error << u"; reconnecting to listen for changes"_s;
                m_warned = true;
            }
            return;
        }
        if (!db.driver()->subscribeToNotification(QString::fromLatin1(PgSchema::kRunsChannel))) {
            qCWarning(lcPgStore).noquote() << m_info.describe(db.driver()->lastError());
            disconnectNow();
            return;
        }
        connect(db.driver(), &QSqlDriver::notification, this,
                [this](const QString &, QSqlDriver::NotificationSource, const QVariant &payload) {
                    const QStringList ids = payload.toString().split(u',', Qt::SkipEmptyParts);
                    if (!ids.isEmpty())
                        m_notifier->post(ids);
                });
        m_connected = true;
        if (m_lostAtMs > 0) {
            // What was written while nobody listened: found by the time it was written.
            QSqlQuery q(db);
            q.prepare(u"SELECT id FROM taskdeck_runs WHERE changed_at >= ? ORDER BY changed_at LIMIT 10000"_s);
            q.addBindValue(m_lostAtMs - kMissedMarginMs);
            QStringList ids;
            if (q.exec()) {
                while (q.next())
                    ids << q.value(0).toString();
            }
            if (!ids.isEmpty())
                m_notifier->post(ids);
            qCInfo(lcPgStore).noquote() << u"listening to %1 again"_s.arg(m_info.displayUrl());
            m_lostAtMs = 0;
        }
        m_warned = false;
    }

    void disconnectNow()
    {
        if (!QSqlDatabase::contains(m_name))
            return;
        {
            QSqlDatabase db = QSqlDatabase::database(m_name, false);
            if (db.driver())
                db.driver()->disconnect(this);
            db.close();
        }
        QSqlDatabase::removeDatabase(m_name);
        m_connected = false;
    }

    void check()
    {
        if (m_connected) {
            {
                QSqlDatabase db = QSqlDatabase::database(m_name, false);
                QSqlQuery probe(db);
                if (probe.exec(u"SELECT 1"_s))
                    return;
            }
            qCWarning(lcPgStore).noquote()
                << u"lost the connection to %1; reconnecting"_s.arg(m_info.displayUrl());
            m_warned = true;
            m_lostAtMs = QDateTime::currentMSecsSinceEpoch();
            disconnectNow();
        }
        connectNow();
    }

    const PgConnectionInfo m_info;
    const QString m_name;
    RunStoreNotifier *const m_notifier;
    QTimer *m_check = nullptr;
    bool m_connected = false;
    bool m_warned = false;
    qint64 m_lostAtMs = 0;
};

struct PgRunStore::Private
{
    explicit Private(PgConnectionInfo connection)
        : info(std::move(connection))
        , serial(g_nextSerial++)
    {
    }

    const PgConnectionInfo info;
    const quint64 serial;
    std::unique_ptr<RunStoreNotifier> notifier;
    std::unique_ptr<QThread> listenerThread;
    std::unique_ptr<QThreadPool> readerPool;
    std::thread writer;

    mutable std::mutex mutex;
    std::condition_variable writerWake;   // waits on mutex
    std::condition_variable committed;    // waits on mutex
    PendingRuns incoming;                 // guarded by mutex
    std::vector<std::function<void()>> incomingDurables; // guarded by mutex
    quint64 enqueuedSeq = 0;              // guarded by mutex
    quint64 handledSeq = 0;               // guarded by mutex
    bool urgent = false;                  // guarded by mutex
    QString queueWorker;                  // guarded by mutex; see setQueueWorker()
    std::function<void(const QStringList &)> queueNotHeld; // guarded by mutex
    bool stopping = false;                // guarded by mutex
    bool available = true;                // guarded by mutex
    QString error;                        // guarded by mutex
    int retentionDays = 0;                // guarded by mutex
    std::chrono::milliseconds retentionInterval{0}; // guarded by mutex
    std::optional<Clock::time_point> nextPruneAt;   // guarded by mutex

    // Writer thread only.
    PendingRuns pending;
    std::vector<std::function<void()>> pendingDurables;
    quint64 pendingSeq = 0;
    std::optional<Clock::time_point> failingSince;
    Clock::time_point lastCommitAt;
    QHash<QString, qint64> lastWrittenLine;
    // Statements the writer runs in every batch, prepared once on its connection.
    std::optional<QSqlQuery> upsertStates;
    std::optional<QSqlQuery> dequeueEnded;
    std::optional<QSqlQuery> notifyWritten;
    std::optional<QSqlQuery> insertChunk;
    void dropStatements();
    QSqlQuery *statement(std::optional<QSqlQuery> &slot, QSqlDatabase &db, const QString &sql,
                         QSqlError *failure);

    template <typename Result, typename Work>
    Result query(const Work &work, Result none);
    template <typename Result, typename Work>
    QFuture<Result> queryAsync(Work work);

    void record(const QString &runId, PendingRun &&change, bool urgentNow,
                std::function<void()> durable = {});
    void catchUp();
    bool waitHandled(quint64 target, std::chrono::milliseconds timeout);
    void startListening();

    void writerMain();
    bool writeBatch(QSqlDatabase &db, QSqlError *failure, QStringList *written, QStringList *notHeld);
    bool writeRun(QSqlDatabase &db, const QString &runId, PendingRun &run, qint64 now, StateRows *states,
                  QSqlError *failure);
    bool writeStates(QSqlDatabase &db, const StateRows &states, QSqlError *failure);
    bool dequeue(QSqlDatabase &db, const QStringList &ended, const QString &worker, QStringList *notHeld,
                 QSqlError *failure);
    bool notifyIds(QSqlDatabase &db, const QStringList &ids, QSqlError *failure);
    bool writeLines(QSqlDatabase &db, const QString &runId, LogLines &lines, qint64 *maxSeq, qint64 *newest,
                    QSqlError *failure);
    void pruneNow(QSqlDatabase &db);
};

// Reading -----------------------------------------------------------------------------------

template <typename Result, typename Work>
Result PgRunStore::Private::query(const Work &work, Result none)
{
    catchUp();
    // A connection the server dropped (a restart) fails once; the second try reconnects.
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool lost = false;
        {
            QString problem;
            QSqlDatabase db = threadConnections().get(serial, info, &problem);
            if (!db.isOpen()) {
                qCWarning(lcPgStore).noquote() << problem;
                return none;
            }
            QSqlError failure;
            Result result = work(db, &failure);
            if (!failure.isValid())
                return result;
            lost = isConnectionLost(db, failure);
            if (attempt > 0 || !lost) {
                qCWarning(lcPgStore).noquote() << info.describe(failure);
                return none;
            }
        }
        // Every handle on the connection is gone now; the next attempt opens a new one.
        threadConnections().release(serial);
    }
    return none;
}

template <typename Result, typename Work>
QFuture<Result> PgRunStore::Private::queryAsync(Work work)
{
    return detail::computeOnPool(readerPool.get(), [this, work = std::move(work)]() mutable {
        return query(work, Result());
    });
}

void PgRunStore::Private::catchUp()
{
    quint64 target = 0;
    {
        const std::lock_guard lock(mutex);
        target = enqueuedSeq;
    }
    waitHandled(target, kCatchUpWait);
}

bool PgRunStore::Private::waitHandled(quint64 target, std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex);
    urgent = urgent || handledSeq < target;
    writerWake.notify_one();
    return committed.wait_for(lock, timeout, [&] { return handledSeq >= target; });
}

namespace {

std::optional<Run> selectRun(QSqlDatabase &db, const QString &id, QSqlError *failure)
{
    QSqlQuery q(db);
    q.setForwardOnly(true);
    if (!q.prepare(u"SELECT "_s + runColumnList() + u" FROM taskdeck_runs WHERE id = ?"_s)) {
        *failure = q.lastError();
        return std::nullopt;
    }
    q.addBindValue(id);
    if (!q.exec()) {
        *failure = q.lastError();
        return std::nullopt;
    }
    if (!q.next())
        return std::nullopt;
    return runFromRecord(q);
}

RunPage selectRuns(QSqlDatabase &db, const RunQuery &query, QSqlError *failure)
{
    RunPage page;
    const RunFilter filter = runFilter(query);
    const QString &where = filter.where;
    const QVariantList &values = filter.values;
    const int limit = std::clamp(query.limit, 0, kMaxRunsPerPage);
    const int offset = std::max(0, query.offset);

    // One snapshot for the count and the page.
    QSqlQuery q(db);
    q.setForwardOnly(true);
    if (!q.exec(u"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"_s)) {
        *failure = q.lastError();
        return page;
    }
    auto end = [&db] { QSqlQuery(db).exec(u"COMMIT"_s); };
    if (!q.prepare(u"SELECT count(*) FROM taskdeck_runs"_s + where)) {
        *failure = q.lastError();
        end();
        return page;
    }
    for (const QVariant &v : std::as_const(values))
        q.addBindValue(v);
    if (!q.exec() || !q.next()) {
        *failure = q.lastError();
        end();
        return page;
    }
    page.total = q.value(0).toLongLong();
    q.finish();
    if (limit > 0 && offset < page.total) {
        QSqlQuery rows(db);
        rows.setForwardOnly(true);
        rows.prepare(u"SELECT "_s + runColumnList() + u" FROM taskdeck_runs"_s + where
                     + u" ORDER BY queued_at DESC, id DESC LIMIT ? OFFSET ?"_s);
        for (const QVariant &v : std::as_const(values))
            rows.addBindValue(v);
        rows.addBindValue(limit);
        rows.addBindValue(offset);
        if (!rows.exec()) {
            *failure = rows.lastError();
            end();
            return page;
        }
        const RunColumns columns(rows.record());
        while (rows.next())
            page.runs << columns.read(rows);
    }
    end();
    return page;
}

// Chunks read per round trip: a page of lines is a few chunks, so most reads take one.
constexpr int kChunksPerFetch = 8;

LogLines selectLog(QSqlDatabase &db, const PgConnectionInfo &info, const QString &runId, qint64 fromLine,
                   qint64 afterSeq, int maxLines, QSqlError *failure)
{
    LogLines lines;
    // Chunks do not overlap and are read in order: start with the one that may hold fromLine
    // (or, after a seq, the first whose highest seq is past it) and go on in pieces.
    QSqlQuery start(db);
    start.setForwardOnly(true);
    if (afterSeq >= 0) {
        start.prepare(u"SELECT min(first_line) FROM taskdeck_log_chunks WHERE run_id = ? AND last_seq > ?"_s);
        start.addBindValue(runId);
        start.addBindValue(afterSeq);
    } else {
        start.prepare(u"SELECT coalesce((SELECT max(first_line) FROM taskdeck_log_chunks WHERE run_id = ? AND "
                      "first_line <= ?), ?)"_s);
        start.addBindValue(runId);
        start.addBindValue(fromLine);
        start.addBindValue(fromLine);
    }
    if (!start.exec() || !start.next()) {
        *failure = start.lastError();
        return lines;
    }
    if (start.value(0).isNull())
        return lines;
    qint64 next = start.value(0).toLongLong();
    start.finish();

    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT first_line, data FROM taskdeck_log_chunks WHERE run_id = ? AND first_line >= ? "
              "ORDER BY first_line LIMIT %1"_s.arg(kChunksPerFetch));
    while (lines.size() < maxLines) {
        q.addBindValue(runId);
        q.addBindValue(next);
        if (!q.exec()) {
            *failure = q.lastError();
            return lines;
        }
        int rows = 0;
        qint64 lastFirst = next;
        // decodeChunks stops at maxLines; rows counts what it took.
        while (lines.size() < maxLines && q.next()) {
            ++rows;
            lastFirst = q.value(0).toLongLong();
            const qsizetype had = lines.size();
            if (!LogChunk::decode(q.value(1).toByteArray(), lastFirst, &lines, afterSeq >= 0 ? 0 : fromLine)) {
                qCWarning(lcPgStore).noquote() << u"database %1: log chunk %2 of run %3 is damaged; the log is "
                                                  "cut short there"_s.arg(info.displayUrl()).arg(lastFirst).arg(runId);
                return lines;
            }
            if (afterSeq >= 0) {
                lines.erase(std::remove_if(lines.begin() + had, lines.end(),
                                           [afterSeq](const LogLine &line) { return line.seq <= afterSeq; }),
                            lines.end());
            }
        }
        q.finish();
        if (rows < kChunksPerFetch)
            break;
        next = lastFirst + 1;
    }
    if (lines.size() > maxLines)
        lines.resize(maxLines);
    return lines;
}

} // namespace

// Recording ---------------------------------------------------------------------------------

void PgRunStore::Private::record(const QString &runId, PendingRun &&change, bool urgentNow,
                                 std::function<void()> durable)
{
    std::unique_lock lock(mutex);
    if (stopping) {
        lock.unlock();
        qCWarning(lcPgStore).noquote() << u"database %1 is closed; a change of run %2 was not stored"_s
                                              .arg(info.displayUrl(), runId);
        if (durable)
            durable();
        return;
    }
    const bool wasEmpty = incoming.isEmpty();
    incoming[runId].merge(std::move(change));
    if (durable)
        incomingDurables.push_back(std::move(durable));
    ++enqueuedSeq;
    if (urgentNow && !urgent) {
        urgent = true;
        writerWake.notify_one();
    } else if (wasEmpty) {
        writerWake.notify_one();
    }
}

void PgRunStore::recordQueued(const Run &run)
{
    PendingRun change;
    change.state = run;
    d->record(run.id, std::move(change), false);
}

void PgRunStore::recordStarted(const Run &run)
{
    PendingRun change;
    change.state = run;
    d->record(run.id, std::move(change), false);
}

void PgRunStore::recordRetrying(const Run &run)
{
    PendingRun change;
    change.state = run;
    d->record(run.id, std::move(change), false);
}

void PgRunStore::recordProgress(const QString &runId, const Progress &progress)
{
    PendingRun change;
    change.progress = progress;
    d->record(runId, std::move(change), false);
}

void PgRunStore::recordLog(const QString &runId, const LogLines &lines)
{
    if (lines.isEmpty())
        return;
    PendingRun change;
    change.lines = lines;
    d->record(runId, std::move(change), false);
}

void PgRunStore::recordFinished(const Run &run, std::function<void()> durable)
{
    PendingRun change;
    change.state = run;
    d->record(run.id, std::move(change), true, std::move(durable));
}

// Writer thread -----------------------------------------------------------------------------

void PgRunStore::Private::writerMain()
{
    const QString name = u"taskdeck-pg-write-%1"_s.arg(serial);
    QSqlDatabase db;
    auto backoff = kReconnectFirst;
    bool warned = false;
    for (;;) {
        bool stopNow = false;
        bool pruneDue = false;
        {
            std::unique_lock lock(mutex);
            if (incoming.isEmpty() && pending.isEmpty() && !stopping && !urgent) {
                // Idle: nothing to write until something is recorded (or pruning is due).
                const auto until = nextPruneAt.value_or(Clock::now() + std::chrono::hours(1));
                writerWake.wait_until(lock, until, [&] { return stopping || urgent || !incoming.isEmpty(); });
            }
            if (!stopping && !urgent) {
                // Gathers what follows into the same transaction.
                writerWake.wait_until(lock, Clock::now() + kBatchInterval, [&] { return stopping || urgent; });
            } else if (!stopping && Clock::now() < lastCommitAt + kGroupCommit) {
                writerWake.wait_until(lock, lastCommitAt + kGroupCommit, [&] { return stopping; });
            }
            if (nextPruneAt && Clock::now() >= *nextPruneAt) {
                pruneDue = true;
                nextPruneAt = Clock::now() + retentionInterval;
            }
            urgent = false;
            stopNow = stopping;
            for (auto it = incoming.begin(); it != incoming.end(); ++it)
                pending[it.key()].merge(std::move(it.value()));
            incoming.clear();
            for (auto &durable : incomingDurables)
                pendingDurables.push_back(std::move(durable));
            incomingDurables.clear();
            pendingSeq = enqueuedSeq;
        }
        if (pending.isEmpty() && !pruneDue) {
            {
                const std::lock_guard lock(mutex);
                handledSeq = std::max(handledSeq, pendingSeq);
            }
            committed.notify_all();
            for (auto &durable : pendingDurables)
                durable();
            pendingDurables.clear();
            if (stopNow)
                break;
            continue;
        }

        QString problem;
        if (!db.isOpen()) {
            if (QSqlDatabase::contains(name)) {
                db = QSqlDatabase();
                QSqlDatabase::removeDatabase(name);
            }
            db = info.open(name, &problem);
        }
        QSqlError failure;
        QStringList written;
        QStringList notHeld;
        bool ok = db.isOpen();
        if (ok && pruneDue)
            pruneNow(db);
        if (ok && !pending.isEmpty())
            ok = writeBatch(db, &failure, &written, &notHeld);
        if (ok) {
            if (warned)
                qCInfo(lcPgStore).noquote() << u"connected to %1 again; the history is written"_s.arg(info.displayUrl());
            warned = false;
            backoff = kReconnectFirst;
            failingSince.reset();
            pending.clear();
            lastCommitAt = Clock::now();
            {
                const std::lock_guard lock(mutex);
                handledSeq = std::max(handledSeq, pendingSeq);
                available = true;
                error.clear();
            }
            committed.notify_all();
            if (!notHeld.isEmpty()) {
                // Under the lock: once setQueueWorker() replaced it, the old one is never called.
                const std::lock_guard lock(mutex);
                if (queueNotHeld)
                    queueNotHeld(notHeld);
            }
            for (auto &durable : pendingDurables)
                durable();
            pendingDurables.clear();
            if (!written.isEmpty())
                notifier->post(written);
            if (stopNow)
                break;
            continue;
        }

        // The batch stays and is written again, in full, once the server answers.
        if (problem.isEmpty())
            problem = info.describe(failure);
        const bool lost = !db.isOpen() || isConnectionLost(db, failure);
        if (lost) {
            dropStatements();
            db.close();
            lastWrittenLine.clear();
        }
        if (!warned) {
            qCWarning(lcPgStore).noquote() << problem << (lost ? u"; reconnecting"_s : u"; trying again"_s);
            warned = true;
        }
        if (!failingSince)
            failingSince = Clock::now();
        {
            const std::lock_guard lock(mutex);
            available = false;
            error = problem + u" (reconnecting)"_s;
        }
        if (Clock::now() - *failingSince >= kDurableWait || stopNow) {
            // The engine must not hang on its history: what could not be stored is said.
            for (auto &durable : pendingDurables)
                durable();
            pendingDurables.clear();
        }
        if (stopNow) {
            qCWarning(lcPgStore).noquote()
                << u"database %1: changes of %2 runs were not stored"_s.arg(info.displayUrl()).arg(pending.size());
            pending.clear();
            {
                const std::lock_guard lock(mutex);
                handledSeq = std::max(handledSeq, pendingSeq);
            }
            committed.notify_all();
            break;
        }
        std::unique_lock lock(mutex);
        writerWake.wait_for(lock, backoff, [&] { return stopping; });
        backoff = std::min(backoff * 2, kReconnectMost);
    }
    dropStatements();
    db.close();
    db = QSqlDatabase();
    if (QSqlDatabase::contains(name))
        QSqlDatabase::removeDatabase(name);
}

void PgRunStore::Private::dropStatements()
{
    upsertStates.reset();
    dequeueEnded.reset();
    notifyWritten.reset();
    insertChunk.reset();
}

// A statement prepared on the writer's connection the first time it is used (a PREPARE is a
// round trip, and QPSQL deallocates it with another when the query goes).
QSqlQuery *PgRunStore::Private::statement(std::optional<QSqlQuery> &slot, QSqlDatabase &db, const QString &sql,
                                          QSqlError *failure)
{
    if (!slot) {
        slot.emplace(db);
        if (!slot->prepare(sql)) {
            *failure = slot->lastError();
            slot.reset();
            return nullptr;
        }
    }
    return &*slot;
}

bool PgRunStore::Private::writeBatch(QSqlDatabase &db, QSqlError *failure, QStringList *written,
                                     QStringList *notHeld)
{
    QString worker;
    {
        const std::lock_guard lock(mutex);
        worker = queueWorker;
    }
    QSqlQuery q(db);
    if (!q.exec(u"BEGIN"_s)) {
        *failure = q.lastError();
        return false;
    }
    auto rollback = [&] {
        QSqlQuery(db).exec(u"ROLLBACK"_s);
        written->clear();
        notHeld->clear();
        return false;
    };
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    // Copies: a failed batch is written again from pending, as it was.
    StateRows states;
    QStringList ended;
    for (auto it = pending.begin(); it != pending.end(); ++it) {
        PendingRun run = it.value();
        if (!writeRun(db, it.key(), run, now, &states, failure))
            return rollback();
        written->append(it.key());
        if (run.state && run.state->isFinished())
            ended << it.key();
    }
    if (states.size() > 0 && !writeStates(db, states, failure))
        return rollback();
    // The queue rows of the runs that ended go in the same commit as their ends, while this
    // worker still holds them (the guard trigger refused the ends of those it does not).
    if (!worker.isEmpty() && !ended.isEmpty() && !dequeue(db, ended, worker, notHeld, failure))
        return rollback();
    if (!notifyIds(db, *written, failure))
        return rollback();
    if (!q.exec(u"COMMIT"_s)) {
        *failure = q.lastError();
        lastWrittenLine.clear();
        return rollback();
    }
    // Runs that finished need no line cache any more.
    for (const QString &id : std::as_const(ended))
        lastWrittenLine.remove(id);
    return true;
}

bool PgRunStore::Private::dequeue(QSqlDatabase &db, const QStringList &ended, const QString &worker,
                                  QStringList *notHeld, QSqlError *failure)
{
    QSqlQuery *q = statement(dequeueEnded, db,
                             u"DELETE FROM taskdeck_queue WHERE id = ANY(?::text[]) AND locked_by = ? RETURNING id"_s,
                             failure);
    if (!q)
        return false;
    q->addBindValue(textArray(ended));
    q->addBindValue(worker);
    if (!q->exec()) {
        *failure = q->lastError();
        return false;
    }
    QSet<QString> removed;
    while (q->next())
        removed.insert(q->value(0).toString());
    q->finish();
    for (const QString &id : ended) {
        if (!removed.contains(id))
            notHeld->append(id);
    }
    return true;
}

// The ids a batch wrote, on the runs channel: as many notifications as the payload limit
// needs, sent with one statement.
bool PgRunStore::Private::notifyIds(QSqlDatabase &db, const QStringList &ids, QSqlError *failure)
{
    if (ids.isEmpty())
        return true;
    QSqlQuery *q = statement(notifyWritten, db, u"SELECT pg_notify(?, payload) FROM unnest(?::text[]) AS payload"_s,
                             failure);
    if (!q)
        return false;
    QStringList payloads;
    for (qsizetype i = 0; i < ids.size(); i += kIdsPerNotify)
        payloads << ids.mid(i, kIdsPerNotify).join(u',');
    q->addBindValue(QString::fromLatin1(PgSchema::kRunsChannel));
    q->addBindValue(textArray(payloads));
    if (!q->exec()) {
        *failure = q->lastError();
        return false;
    }
    q->finish();
    return true;
}

bool PgRunStore::Private::writeRun(QSqlDatabase &db, const QString &runId, PendingRun &run, qint64 now,
                                   StateRows *states, QSqlError *failure)
{
    qint64 linesSeq = 0;
    qint64 newest = 0;
    if (!run.lines.isEmpty() && !writeLines(db, runId, run.lines, &linesSeq, &newest, failure))
        return false;
    if (run.state) {
        const Run &r = *run.state;
        const QString args = r.args.isEmpty() ? u"{}"_s
                                              : QString::fromUtf8(QJsonDocument(r.args).toJson(QJsonDocument::Compact));
        states->add()
            .text(r.id)
            .text(r.task)
            .text(runStatusName(r.status))
            .number(r.attempt)
            .number(r.maxAttempts)
            .text(args)
            .time(r.queuedAt)
            .time(r.startedAt)
            .time(r.finishedAt)
            .number(r.progress.done)
            .number(r.progress.total)
            .textOrNull(r.progress.message)
            .textOrNull(resultText(r.result))
            .textOrNull(r.error.message)
            .textOrNull(r.error.kind)
            .textOrNull(r.error.detail)
            .flag(r.error.transient)
            .number(std::max(r.logLines, newest))
            .textOrNull(r.owner)
            .number(std::max(r.seq, linesSeq))
            .time(r.status == RunStatus::Retrying ? r.nextAttemptAt : QDateTime())
            .text(r.traceId.isEmpty() ? newTraceId() : r.traceId) // kept only by the row's insert
            .number(now);
        return true;
    }
    if (run.progress) {
        QSqlQuery q(db);
        q.prepare(u"UPDATE taskdeck_runs SET progress_done = ?, progress_total = ?, progress_message = "
                  "coalesce(?, ''), changed_at = ? WHERE id = ? AND status IN "_s + kActive);
        q.addBindValue(run.progress->done);
        q.addBindValue(run.progress->total);
        q.addBindValue(textOrNull(run.progress->message));
        q.addBindValue(now);
        q.addBindValue(runId);
        if (!q.exec()) {
            *failure = q.lastError();
            return false;
        }
    }
    if (newest > 0) {
        // Keeps the count of a running run current for history views.
        QSqlQuery q(db);
        q.prepare(u"UPDATE taskdeck_runs SET log_lines = GREATEST(log_lines, ?), seq = GREATEST(seq, ?), "
                  "changed_at = ? WHERE id = ?"_s);
        q.addBindValue(newest);
        q.addBindValue(linesSeq);
        q.addBindValue(now);
        q.addBindValue(runId);
        if (!q.exec()) {
            *failure = q.lastError();
            return false;
        }
    }
    return true;
}

bool PgRunStore::Private::writeStates(QSqlDatabase &db, const StateRows &states, QSqlError *failure)
{
    static const QString sql =
        u"INSERT INTO taskdeck_runs (id, task, status, attempt, max_attempts, args, queued_at, started_at, "
        "finished_at, progress_done, progress_total, progress_message, result, error_message, error_kind, "
        "error_detail, error_transient, log_lines, owner, seq, next_attempt_at, trace_id, changed_at) "
        "SELECT id, task, status, attempt, max_attempts, args, queued_at, started_at, finished_at, progress_done, "
        "progress_total, coalesce(progress_message, ''), result, coalesce(error_message, ''), "
        "coalesce(error_kind, ''), coalesce(error_detail, ''), error_transient, log_lines, coalesce(owner, ''), "
        "seq, next_attempt_at, trace_id, changed_at FROM unnest(?::text[], ?::text[], ?::text[], ?::integer[], "
        "?::integer[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], "
        "?::text[], ?::text[], ?::text[], ?::text[], ?::boolean[], ?::bigint[], ?::text[], ?::bigint[], "
        "?::bigint[], ?::text[], ?::bigint[]) AS u(id, task, status, attempt, max_attempts, args, queued_at, "
        "started_at, finished_at, progress_done, progress_total, progress_message, result, error_message, "
        "error_kind, error_detail, error_transient, log_lines, owner, seq, next_attempt_at, trace_id, changed_at) "
        "ON CONFLICT (id) DO UPDATE SET task = EXCLUDED.task, status = EXCLUDED.status, "
        "attempt = EXCLUDED.attempt, max_attempts = EXCLUDED.max_attempts, args = EXCLUDED.args, "
        "queued_at = EXCLUDED.queued_at, started_at = EXCLUDED.started_at, "
        "finished_at = EXCLUDED.finished_at, progress_done = EXCLUDED.progress_done, "
        "progress_total = EXCLUDED.progress_total, progress_message = EXCLUDED.progress_message, "
        "result = EXCLUDED.result, error_message = EXCLUDED.error_message, "
        "error_kind = EXCLUDED.error_kind, error_detail = EXCLUDED.error_detail, "
        "error_transient = EXCLUDED.error_transient, "
        "log_lines = GREATEST(taskdeck_runs.log_lines, EXCLUDED.log_lines), owner = EXCLUDED.owner, "
        "seq = GREATEST(taskdeck_runs.seq, EXCLUDED.seq), next_attempt_at = EXCLUDED.next_attempt_at, "
        "changed_at = EXCLUDED.changed_at "
        // A late update never takes a finished run back to queued or running.
        "WHERE taskdeck_runs.status IN "_s + kActive + u" OR EXCLUDED.status NOT IN "_s + kActive;
    QSqlQuery *q = statement(upsertStates, db, sql, failure);
    if (!q)
        return false;
    for (int column = 0; column < StateRows::kColumns; ++column)
        q->addBindValue(states.array(column));
    if (!q->exec()) {
        *failure = q->lastError();
        return false;
    }
    q->finish();
    return true;
}

bool PgRunStore::Private::writeLines(QSqlDatabase &db, const QString &runId, LogLines &lines, qint64 *maxSeq,
                                     qint64 *newestOut, QSqlError *failure)
{
    // Two threads may log to one run, so numbers can arrive slightly out of order.
    std::stable_sort(lines.begin(), lines.end(),
                     [](const LogLine &a, const LogLine &b) { return a.number < b.number; });
    qint64 last = 0;
    const auto known = lastWrittenLine.constFind(runId);
    if (known != lastWrittenLine.cend()) {
        last = known.value();
    } else {
        QSqlQuery q(db);
        q.prepare(u"SELECT coalesce(max(last_line), 0) FROM taskdeck_log_chunks WHERE run_id = ?"_s);
        q.addBindValue(runId);
        if (!q.exec() || !q.next()) {
            *failure = q.lastError();
            return false;
        }
        last = q.value(0).toLongLong();
    }

    QSqlQuery *insert = statement(insertChunk, db,
                                  u"INSERT INTO taskdeck_log_chunks (run_id, first_line, last_line, data, last_seq) "
                                  "VALUES (?, ?, ?, ?, ?)"_s,
                                  failure);
    if (!insert)
        return false;
    LogChunk chunk;
    auto writeChunk = [&]() -> bool {
        if (chunk.isEmpty())
            return true;
        insert->addBindValue(runId);
        insert->addBindValue(chunk.firstLine());
        insert->addBindValue(chunk.lastLine());
        insert->addBindValue(chunk.data());
        insert->addBindValue(chunk.maxSeq());
        *maxSeq = std::max(*maxSeq, chunk.maxSeq());
        chunk.clear();
        if (!insert->exec()) {
            *failure = insert->lastError();
            return false;
        }
        return true;
    };
    LogLines late;
    qint64 newest = last;
    for (const LogLine &line : std::as_const(lines)) {
        if (line.number <= newest) {
            late.append(line);
            continue;
        }
        chunk.append(line);
        newest = line.number;
        if (chunk.isFull() && !writeChunk())
            return false;
    }
    if (!writeChunk())
        return false;

    // Chunks never overlap: a straggler joins the chunk whose range holds it, or stands alone.
    for (const LogLine &line : std::as_const(late)) {
        QSqlQuery find(db);
        find.prepare(u"SELECT first_line, last_line, data FROM taskdeck_log_chunks WHERE run_id = ? AND "
                     "first_line <= ? ORDER BY first_line DESC LIMIT 1"_s);
        find.addBindValue(runId);
        find.addBindValue(line.number);
        if (!find.exec()) {
            *failure = find.lastError();
            return false;
        }
        *maxSeq = std::max(*maxSeq, line.seq);
        if (!find.next() || find.value(1).toLongLong() < line.number) {
            // In a gap (or before every chunk): a chunk of its own, unless one starts right at it.
            QSqlQuery alone(db);
            alone.prepare(u"INSERT INTO taskdeck_log_chunks (run_id, first_line, last_line, data, last_seq) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, first_line) DO NOTHING"_s);
            alone.addBindValue(runId);
            alone.addBindValue(line.number);
            alone.addBindValue(line.number);
            alone.addBindValue(LogChunk::encode({line}));
            alone.addBindValue(line.seq);
            if (!alone.exec()) {
                *failure = alone.lastError();
                return false;
            }
            continue;
        }
        const qint64 first = find.value(0).toLongLong();
        const qint64 lastInChunk = find.value(1).toLongLong();
        LogLines merged;
        if (!LogChunk::decode(find.value(2).toByteArray(), first, &merged)) {
            qCWarning(lcPgStore).noquote() << u"database %1: log chunk %2 of run %3 is damaged; line %4 was not "
                                              "stored"_s.arg(info.displayUrl()).arg(first).arg(runId).arg(line.number);
            continue;
        }
        const auto at = std::lower_bound(merged.begin(), merged.end(), line.number,
                                         [](const LogLine &l, qint64 n) { return l.number < n; });
        if (at != merged.end() && at->number == line.number)
            *at = line;
        else
            merged.insert(at, line);
        QSqlQuery update(db);
        update.prepare(u"UPDATE taskdeck_log_chunks SET last_line = ?, data = ?, last_seq = GREATEST(last_seq, ?) "
                       "WHERE run_id = ? AND first_line = ?"_s);
        update.addBindValue(std::max(lastInChunk, line.number));
        update.addBindValue(LogChunk::encode(merged));
        update.addBindValue(line.seq);
        update.addBindValue(runId);
        update.addBindValue(first);
        if (!update.exec()) {
            *failure = update.lastError();
            return false;
        }
    }
    lastWrittenLine.insert(runId, newest);
    *newestOut = newest;
    return true;
}

namespace {

int pruneRuns(QSqlDatabase &db, const QDateTime &cutoff, QSqlError *failure)
{
    // Small batches, each its own transaction: no lock is held for long, and autovacuum
    // reuses the space as it goes.
    int total = 0;
    for (;;) {
        QSqlQuery q(db);
        q.prepare(u"WITH gone AS (DELETE FROM taskdeck_runs WHERE id IN (SELECT id FROM taskdeck_runs "
                  "WHERE finished_at IS NOT NULL AND finished_at <= ? AND status NOT IN "_s + kActive
                  + u" LIMIT %1) RETURNING id), "
                    "chunks AS (DELETE FROM taskdeck_log_chunks WHERE run_id IN (SELECT id FROM gone)) "
                    "SELECT count(*) FROM gone"_s.arg(kPruneBatch));
        q.addBindValue(cutoff.toMSecsSinceEpoch());
        if (!q.exec() || !q.next()) {
            *failure = q.lastError();
            return total > 0 ? total : -1;
        }
        const int removed = q.value(0).toInt();
        total += removed;
        if (removed < kPruneBatch)
            return total;
    }
}

} // namespace

void PgRunStore::Private::pruneNow(QSqlDatabase &db)
{
    int days = 0;
    {
        const std::lock_guard lock(mutex);
        days = retentionDays;
    }
    if (days <= 0)
        return;
    QSqlError failure;
    const int removed = pruneRuns(db, QDateTime::currentDateTimeUtc().addDays(-days), &failure);
    if (failure.isValid())
        qCWarning(lcPgStore).noquote() << info.describe(failure) << u"; old runs were not pruned"_s;
    else if (removed > 0)
        qCInfo(lcPgStore).noquote() << u"pruned %1 runs older than %2 days from %3"_s.arg(removed).arg(days).arg(
            info.displayUrl());
}

// PgRunStore --------------------------------------------------------------------------------

std::unique_ptr<PgRunStore> PgRunStore::open(const QString &url, QString *error)
{
    const std::optional<PgConnectionInfo> info = PgConnectionInfo::parse(url, error);
    if (!info)
        return nullptr;
    auto d = std::make_unique<Private>(*info);
    {
        const std::lock_guard lock(g_liveMutex);
        g_liveStores.insert(d->serial);
    }
    auto forget = [serial = d->serial] {
        const std::lock_guard lock(g_liveMutex);
        g_liveStores.remove(serial);
    };
    {
        QString problem;
        QSqlDatabase db = threadConnections().get(d->serial, d->info, &problem);
        if (!db.isOpen()) {
            *error = problem;
            threadConnections().release(d->serial);
            forget();
            return nullptr;
        }
        if (!PgSchema::migrate(db, d->info.displayUrl(), error)) {
            db = QSqlDatabase();
            threadConnections().release(d->serial);
            forget();
            return nullptr;
        }
    }
    d->notifier = std::make_unique<RunStoreNotifier>();
    d->readerPool = std::make_unique<QThreadPool>();
    d->readerPool->setMaxThreadCount(2);
    d->readerPool->setExpiryTimeout(-1);
    Private *p = d.get();
    d->notifier->setWatchedCallback([p] { p->startListening(); });
    d->writer = std::thread([p] { p->writerMain(); });
    return std::unique_ptr<PgRunStore>(new PgRunStore(std::move(d)));
}

void PgRunStore::Private::startListening()
{
    if (listenerThread)
        return;
    listenerThread = std::make_unique<QThread>();
    listenerThread->setObjectName(u"taskdeck-pg-listen"_s);
    auto *listener = new PgListener(info, serial, notifier.get());
    listener->moveToThread(listenerThread.get());
    QObject::connect(listenerThread.get(), &QThread::started, listener, &PgListener::start);
    QObject::connect(listenerThread.get(), &QThread::finished, listener, &QObject::deleteLater);
    listenerThread->start();
}

PgRunStore::PgRunStore(std::unique_ptr<Private> dd)
    : d(std::move(dd))
{
}

PgRunStore::~PgRunStore()
{
    flush(std::chrono::seconds(10));
    {
        const std::lock_guard lock(d->mutex);
        d->stopping = true;
    }
    d->writerWake.notify_all();
    if (d->writer.joinable())
        d->writer.join();
    if (d->listenerThread) {
        d->listenerThread->quit();
        d->listenerThread->wait();
        TASKDECK_HAPPENS_AFTER(d->notifier.get()); // what the listener did to the notifier
        d->listenerThread.reset();
    }
    detail::waitForPool(d->readerPool.get()); // what the readers read of d comes before its end
    d->readerPool.reset();
    {
        const std::lock_guard lock(g_liveMutex);
        g_liveStores.remove(d->serial);
    }
    threadConnections().release(d->serial);
}

const PgConnectionInfo &PgRunStore::connectionInfo() const
{
    return d->info;
}

void PgRunStore::setQueueWorker(const QString &worker, std::function<void(const QStringList &notHeld)> notHeld)
{
    const std::lock_guard lock(d->mutex);
    d->queueWorker = worker;
    d->queueNotHeld = std::move(notHeld);
}

void PgRunStore::startRetention(int days, std::chrono::milliseconds interval)
{
    const std::lock_guard lock(d->mutex);
    d->retentionDays = days;
    d->retentionInterval = interval;
    if (days > 0)
        d->nextPruneAt = Clock::now();
    else
        d->nextPruneAt.reset();
}

bool PgRunStore::isAvailable() const
{
    const std::lock_guard lock(d->mutex);
    return d->available;
}

QString PgRunStore::errorString() const
{
    const std::lock_guard lock(d->mutex);
    return d->error;
}

QString PgRunStore::location() const
{
    return d->info.displayUrl();
}

std::optional<Run> PgRunStore::findRun(const QString &id)
{
    return d->query([&](QSqlDatabase &db, QSqlError *f) { return selectRun(db, id, f); }, std::optional<Run>());
}

RunPage PgRunStore::findRuns(const RunQuery &query)
{
    return d->query([&](QSqlDatabase &db, QSqlError *f) { return selectRuns(db, query, f); }, RunPage());
}

LogLines PgRunStore::readLog(const QString &runId, qint64 fromLine, int maxLines)
{
    if (maxLines <= 0)
        return {};
    maxLines = std::min(maxLines, kMaxLogPage);
    fromLine = std::max<qint64>(1, fromLine);
    const PgConnectionInfo &info = d->info;
    return d->query([&](QSqlDatabase &db, QSqlError *f) { return selectLog(db, info, runId, fromLine, -1, maxLines, f); },
                    LogLines());
}

LogLines PgRunStore::readLogAfterSeq(const QString &runId, qint64 afterSeq, int maxLines)
{
    if (maxLines <= 0)
        return {};
    maxLines = std::min(maxLines, kMaxLogPage);
    afterSeq = std::max<qint64>(0, afterSeq);
    const PgConnectionInfo &info = d->info;
    return d->query([&](QSqlDatabase &db, QSqlError *f) { return selectLog(db, info, runId, 0, afterSeq, maxLines, f); },
                    LogLines());
}

QFuture<std::optional<Run>> PgRunStore::findRunAsync(const QString &id)
{
    return d->queryAsync<std::optional<Run>>([id](QSqlDatabase &db, QSqlError *f) { return selectRun(db, id, f); });
}

QFuture<RunPage> PgRunStore::findRunsAsync(const RunQuery &query)
{
    return d->queryAsync<RunPage>([query](QSqlDatabase &db, QSqlError *f) { return selectRuns(db, query, f); });
}

QFuture<CancelRequest> PgRunStore::requestCancelAsync(const QString &runId)
{
    return detail::computeOnPool(d->readerPool.get(), [p = d.get(), runId] {
        QString problem;
        const CancelRequest none = CancelRequest::failed(u"database %1 did not answer"_s.arg(p->info.displayUrl()));
        CancelRequest answer = p->query(
            [&](QSqlDatabase &db, QSqlError *failure) {
                const std::optional<CancelOutcome> outcome = requestQueuedCancel(db, runId, failure);
                if (!outcome) {
                    problem = p->info.describe(*failure);
                    return none;
                }
                CancelRequest done;
                done.sharedQueue = true;
                switch (*outcome) {
                case CancelOutcome::Canceled:
                    done.outcome = CancelRequest::Outcome::Canceled;
                    return done;
                case CancelOutcome::Requested:
                    done.outcome = CancelRequest::Outcome::Requested;
                    return done;
                case CancelOutcome::NotQueued:
                    break;
                }
                const std::optional<Run> run = selectRun(db, runId, failure);
                return failure->isValid() ? none : CancelRequest::outsideQueue(run, true);
            },
            none);
        if (answer.outcome == CancelRequest::Outcome::Failed && !problem.isEmpty())
            answer.error = problem;
        return answer;
    });
}

QFuture<LogLines> PgRunStore::readLogAsync(const QString &runId, qint64 fromLine, int maxLines)
{
    maxLines = std::clamp(maxLines, 0, kMaxLogPage);
    fromLine = std::max<qint64>(1, fromLine);
    return d->queryAsync<LogLines>([p = d.get(), runId, fromLine, maxLines](QSqlDatabase &db, QSqlError *f) {
        return maxLines > 0 ? selectLog(db, p->info, runId, fromLine, -1, maxLines, f) : LogLines();
    });
}

QFuture<LogLines> PgRunStore::readLogAfterSeqAsync(const QString &runId, qint64 afterSeq, int maxLines)
{
    maxLines = std::clamp(maxLines, 0, kMaxLogPage);
    afterSeq = std::max<qint64>(0, afterSeq);
    return d->queryAsync<LogLines>([p = d.get(), runId, afterSeq, maxLines](QSqlDatabase &db, QSqlError *f) {
        return maxLines > 0 ? selectLog(db, p->info, runId, 0, afterSeq, maxLines, f) : LogLines();
    });
}

RunStoreNotifier *PgRunStore::notifier()
{
    return d->notifier.get();
}

QString PgRunStore::traceId(const QString &runId)
{
    return d->query(
        [&](QSqlDatabase &db, QSqlError *f) -> QString {
            QSqlQuery q(db);
            q.prepare(u"SELECT trace_id FROM taskdeck_runs WHERE id = ?"_s);
            q.addBindValue(runId);
            if (!q.exec()) {
                *f = q.lastError();
                return {};
            }
            return q.next() ? q.value(0).toString() : QString();
        },
        QString());
}

int PgRunStore::recoverInterrupted()
{
    QStringList marked;
    const int count = d->query(
        [&](QSqlDatabase &db, QSqlError *f) -> int {
            QSqlQuery select(db);
            select.setForwardOnly(true);
            // Runs of the shared queue are the queue's: their leases say when they are lost.
            if (!select.exec(u"SELECT r.id, r.status, r.owner FROM taskdeck_runs r WHERE r.status IN "_s + kActive
                             + u" AND NOT EXISTS (SELECT 1 FROM taskdeck_queue q WHERE q.id = r.id)"_s)) {
                *f = select.lastError();
                return -1;
            }
            struct Orphan { QString id, status, owner, message; };
            std::vector<Orphan> orphans;
            QStringList deadOwners;
            while (select.next()) {
                Orphan o{select.value(0).toString(), select.value(1).toString(), select.value(2).toString(), {}};
                const std::optional<RunOwner> owner = RunOwner::parse(o.owner);
                if (!owner) {
                    o.message = u"the Taskdeck process that ran it is unknown and gone; this run was %1 and "
                                "was marked interrupted on restart"_s.arg(o.status);
                } else if (!owner->isOnThisHost() || owner->isAlive()) {
                    continue;
                } else {
                    o.message = u"Taskdeck process %1 on host %2 stopped while this run was %3; it was marked "
                                "interrupted on restart"_s.arg(QString::number(owner->pid()), owner->host(), o.status);
                    if (!deadOwners.contains(o.owner)) {
                        deadOwners << o.owner;
                        RunOwner::endLeftovers(o.owner);
                    }
                }
                orphans.push_back(std::move(o));
            }
            select.finish();
            int n = 0;
            const qint64 now = QDateTime::currentMSecsSinceEpoch();
            for (const Orphan &o : orphans) {
                QSqlQuery update(db);
                update.prepare(u"UPDATE taskdeck_runs SET status = 'interrupted', finished_at = ?, error_message = ?, "
                               "error_kind = 'Interrupted', error_detail = ?, error_transient = false, changed_at = ?, "
                               "log_lines = GREATEST(log_lines, coalesce((SELECT max(last_line) FROM "
                               "taskdeck_log_chunks WHERE run_id = ?), 0)) "
                               "WHERE id = ? AND owner = ? AND status IN "_s + kActive);
                update.addBindValue(now);
                update.addBindValue(o.message);
                update.addBindValue(u"owner: %1\nstatus when found: %2"_s.arg(
                    o.owner.isEmpty() ? u"(none)"_s : o.owner, o.status));
                update.addBindValue(now);
                update.addBindValue(o.id);
                update.addBindValue(o.id);
                update.addBindValue(o.owner);
                if (!update.exec()) {
                    *f = update.lastError();
                    return -1;
                }
                if (update.numRowsAffected() > 0) {
                    ++n;
                    marked << o.id;
                }
            }
            if (!marked.isEmpty()) {
                QSqlQuery notify(db);
                notify.prepare(u"SELECT pg_notify(?, ?)"_s);
                for (qsizetype i = 0; i < marked.size(); i += kIdsPerNotify) {
                    notify.addBindValue(QString::fromLatin1(PgSchema::kRunsChannel));
                    notify.addBindValue(marked.mid(i, kIdsPerNotify).join(u','));
                    notify.exec();
                }
            }
            return n;
        },
        -1);
    if (count > 0) {
        qCInfo(lcPgStore).noquote() << u"marked %1 runs of stopped processes interrupted in %2"_s.arg(count).arg(
            d->info.displayUrl());
        d->notifier->post(marked);
    }
    return count;
}

int PgRunStore::pruneFinishedBefore(const QDateTime &cutoff)
{
    if (!cutoff.isValid())
        return 0;
    return d->query([&](QSqlDatabase &db, QSqlError *f) { return pruneRuns(db, cutoff, f); }, -1);
}

namespace {

// What can go wrong between the history and the shared queue, and in the schema; each
// problem goes to \a note. False with \a failure when a query failed.
bool checkQueueIntegrity(QSqlDatabase &db, const std::function<void(const QString &)> &note, QSqlError *failure)
{
    QSqlQuery q(db);
    q.setForwardOnly(true);
    if (!q.exec(u"SELECT value FROM taskdeck_meta WHERE key = 'schema_version'"_s)) {
        *failure = q.lastError();
        return false;
    }
    const QString version = q.next() ? q.value(0).toString() : QString();
    if (version != QString::number(PgSchema::kVersion)) {
        note(u"schema version is %1, but this Taskdeck writes version %2"_s
                 .arg(version.isEmpty() ? u"missing"_s : version)
                 .arg(PgSchema::kVersion));
    }
    q.finish();

    // A queue row outlives its run only while its worker removes it (its lease is live then).
    const QString now = u"(extract(epoch from clock_timestamp()) * 1000)::bigint"_s;
    if (!q.exec(u"SELECT q.id, r.status, q.locked_by FROM taskdeck_queue q LEFT JOIN taskdeck_runs r ON r.id = q.id "
                "WHERE (r.id IS NULL OR r.status NOT IN "_s + kActive + u") AND (q.locked_by IS NULL OR q.lease_until < "_s
                + now + u") ORDER BY q.id"_s)) {
        *failure = q.lastError();
        return false;
    }
    while (q.next()) {
        const QString holder = q.value(2).isNull() ? u"waiting for a worker"_s
                                                   : u"held by %1 under an expired lease"_s.arg(q.value(2).toString());
        if (q.value(1).isNull())
            note(u"run %1 is in the queue (%2) but has no history row"_s.arg(q.value(0).toString(), holder));
        else
            note(u"run %1 is in the queue (%2) but its history says it ended (%3)"_s
                     .arg(q.value(0).toString(), holder, q.value(1).toString()));
    }
    q.finish();

    // Unfinished runs must be alive somewhere: under a live lease, or in a live process.
    if (!q.exec(u"SELECT r.id, r.status, r.owner, q.id IS NOT NULL, q.locked_by, q.lease_until < "_s + now
                + u", ("_s + now + u" - q.lease_until) FROM taskdeck_runs r LEFT JOIN taskdeck_queue q ON q.id = r.id "
                "WHERE r.status IN "_s + kActive + u" ORDER BY r.id"_s)) {
        *failure = q.lastError();
        return false;
    }
    while (q.next()) {
        const QString id = q.value(0).toString();
        const QString status = q.value(1).toString();
        const QString owner = q.value(2).toString();
        const bool queued = q.value(3).toBool();
        if (queued) {
            if (status != u"queued" && q.value(4).isNull())
                note(u"run %1 is %2 in the history, but no worker holds it in the queue"_s.arg(id, status));
            else if (!q.value(4).isNull() && q.value(5).toBool())
                note(u"run %1 is %2, held by %3, whose lease expired %4 ms ago (a worker takes it back)"_s
                         .arg(id, status, q.value(4).toString())
                         .arg(q.value(6).toLongLong()));
            continue;
        }
        const std::optional<RunOwner> parsed = RunOwner::parse(owner);
        if (!parsed) {
            note(u"run %1 is %2 in the history but not in the queue, and no process owns it: no one will run it"_s
                     .arg(id, status));
        } else if (parsed->isOnThisHost() && !parsed->isAlive()) {
            note(u"run %1 is %2, but its process (%3) is gone (the next taskdeck on this machine marks it "
                 u"interrupted)"_s.arg(id, status, owner));
        }
        // A process on another machine: its liveness cannot be told from here.
    }
    q.finish();

    // The end of a finished run's log: the lines it counted are all stored.
    if (!q.exec(u"SELECT r.id, r.log_lines, coalesce(max(c.last_line), 0) FROM taskdeck_runs r "
                "LEFT JOIN taskdeck_log_chunks c ON c.run_id = r.id WHERE r.status NOT IN "_s + kActive
                + u" AND r.log_lines > 0 GROUP BY r.id, r.log_lines HAVING coalesce(max(c.last_line), 0) < r.log_lines "
                  "ORDER BY r.id"_s)) {
        *failure = q.lastError();
        return false;
    }
    while (q.next()) {
        note(u"log of run %1 has no lines %2 to %3 (it counted %3 lines)"_s.arg(q.value(0).toString())
                 .arg(q.value(2).toLongLong() + 1)
                 .arg(q.value(1).toLongLong()));
    }
    return true;
}

} // namespace

QStringList PgRunStore::checkIntegrity()
{
    return d->query(
        [&](QSqlDatabase &db, QSqlError *f) -> QStringList {
            QStringList problems;
            qsizetype count = 0;
            auto note = [&](const QString &problem) {
                if (++count <= kMaxProblemsShown)
                    problems << u"database %1: %2"_s.arg(d->info.displayUrl(), problem);
            };
            QSqlQuery q(db);
            q.setForwardOnly(true);
            if (!q.exec(u"SELECT run_id, first_line, last_line, data FROM taskdeck_log_chunks "
                        "ORDER BY run_id, first_line"_s)) {
                *f = q.lastError();
                return {};
            }
            QString previousRun;
            qint64 previousLast = 0;
            while (q.next()) {
                const QString runId = q.value(0).toString();
                const qint64 first = q.value(1).toLongLong();
                const qint64 last = q.value(2).toLongLong();
                LogLines lines;
                if (!LogChunk::decode(q.value(3).toByteArray(), first, &lines) || lines.isEmpty()
                    || lines.last().number != last) {
                    note(u"log chunk %1 of run %2 is damaged"_s.arg(first).arg(runId));
                }
                if (runId == previousRun && first <= previousLast)
                    note(u"log chunks of run %1 overlap at line %2"_s.arg(runId).arg(first));
                // Lines are numbered from 1 without gaps: a missing range is a lost chunk.
                const qint64 expected = runId == previousRun ? previousLast + 1 : 1;
                if (first > expected) {
                    note(u"log of run %1 has no lines %2 to %3 (the chunk holding them is missing)"_s
                             .arg(runId).arg(expected).arg(first - 1));
                }
                previousRun = runId;
                previousLast = last;
            }
            q.finish();
            if (!checkQueueIntegrity(db, note, f))
                return {};
            if (count > kMaxProblemsShown)
                problems << u"database %1: %2 more problems"_s.arg(d->info.displayUrl()).arg(count - kMaxProblemsShown);
            return problems;
        },
        QStringList{u"database %1 cannot be read"_s.arg(d->info.displayUrl())});
}

bool PgRunStore::flush(std::chrono::milliseconds timeout)
{
    quint64 target = 0;
    {
        const std::lock_guard lock(d->mutex);
        target = d->enqueuedSeq;
    }
    return d->waitHandled(target, timeout);
}

} // namespace taskdeck
