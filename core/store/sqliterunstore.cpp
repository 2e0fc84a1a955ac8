// SPDX-License-Identifier: MIT
#include "sqliterunstore.h"

#include "historyowners.h"
#include "logchunk.h"
#include "privatefiles.h"
#include "runcolumns.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "sqliteschema.h"
#include "../internal/tsan.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QScopeGuard>
#include <QElapsedTimer>
#include <QPromise>
#include <QRandomGenerator>
#include <QSet>
#include <QSqlDatabase>
#include <QSqlDriver>
#include <QSqlError>
#include <QSqlQuery>
#include <QSqlRecord>
#include <QThreadPool>
#include <QUrl>
#include <QVariant>

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <condition_variable>
#include <deque>
#include <queue>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

Q_LOGGING_CATEGORY(lcStore, "taskdeck.store")

namespace taskdeck {

namespace {

using Clock = std::chrono::steady_clock;

// Long enough to gather many log lines into one transaction, short enough that a history
// view trails a live run by no more than the engine's own event batching does.
constexpr auto kBatchInterval = 25ms;
// How long a queued state waits for the run's next one before it is written. A run queued
// behind others (a burst of starts, run --each) usually starts and finishes within this,
// and is then written once; one that really waits shows in other processes' views this much
// later. Only a batch interval, as running states wait, made the writer's own lag decide:
// a writer behind by more than 25 ms found every queued state due and wrote it, then the
// run again when it finished, which made it fall further behind (bench_history's slow
// rounds wrote a queued row for up to 57,000 of 102,000 runs; see bench/README.md).
constexpr auto kQueuedHold = 1s;
// A finish is committed at once when the writer has been quiet this long, else this long after
// its last commit: finishes that come thick and fast share commits (group commit), and one that
// comes alone is shown at once. While finishes keep coming (the last commit carried some too)
// they wait up to a batch interval after it: every commit rewrites the pages it touches in the
// WAL (16 KiB each, several per commit), which cost more than the runs' rows when a run
// finished every few hundred microseconds (run --each of short commands). A stream that
// stops (no finish for kFinishQuiet) is committed at once: its last finish, which a caller
// may be waiting for, does not wait out the interval. With this many finishes waiting the
// writer does not wait: it is the bottleneck then, and a pause would only slow it.
constexpr auto kFinishGap = 5ms;
constexpr auto kFinishStreamGap = kBatchInterval;
constexpr auto kFinishQuiet = 3ms;
constexpr int kFinishBatch = 64;
constexpr auto kBusyTimeoutMs = 5000;
// Checkpoints (copying the WAL into the database file, with fsyncs) are the writer's most
// expensive step, so it does them when it has been idle for a moment rather than in the
// middle of a burst of log lines; past kCheckpointBytes it does them anyway, to bound the WAL.
constexpr auto kCheckpointIdle = 200ms;
constexpr qint64 kCheckpointBytes = 64LL * 1024 * 1024;
// The WAL itself (whole pages, as SQLite counts them after each commit) is checkpointed once
// it takes a quarter of the space the disk had free when the history was opened, between
// these bounds: on a small disk a WAL left to grow until an idle moment would take all of it,
// and a checkpoint that cannot grow the database file never frees it again.
constexpr qint64 kSmallestWalBudget = 64 * 1024;
constexpr qint64 kLargestWalBudget = 256LL * 1024 * 1024;
// What a run's row costs in the WAL, roughly, for the checkpoint estimate.
constexpr qint64 kRowBytes = 512;
constexpr auto kRetryDelay = 1s;
constexpr int kMaxAttemptsPerBatch = 3;
constexpr auto kBackpressureWait = 10s;
constexpr auto kQueryFlushTimeout = 10s;
// Recovery and pruning wait behind the batch queued before them, which may itself wait
// for a busy database.
constexpr auto kJobTimeout = 60s;
// How often the writer asks SQLite whether another connection committed (PRAGMA
// data_version, which reads no page), while somebody watches the notifier.
constexpr auto kChangePollInterval = 250ms;
// Reader threads for the asynchronous queries: one may wait for the writer while the other
// answers what needs no waiting.
constexpr int kReaderThreads = 2;
// Problems an integrity check lists at most; the rest are counted.
constexpr int kMaxProblemsShown = 20;
constexpr int kMaxRunsPerPage = 1000;
constexpr int kMaxLogPage = 100000;
// Disk space the history keeps aside in a file next to it (fileName() + "-reserve") and gives
// back when the disk is full, so that the runs' states, and the marks saying where their logs
// stop, still fit: a run's row and the change log take a few 16 KiB pages, and a checkpoint
// may have to grow the file by as much again.
constexpr qint64 kReserveBytes = 256 * 1024;
// Runs whose lost log lines are remembered at most (writer thread): past this, a run that
// finished long ago is forgotten first.
constexpr qsizetype kMaxMissingRuns = 10000;
constexpr auto kFullDiskCheckpointInterval = 60s;

// How describe() says that the disk is full, which open() looks for.
const QString kDiskFullWords = u"the disk is full"_s;

// Whether SQLite failed because the disk (or the user's quota) is full.
bool isDiskFull(const QSqlError &error)
{
    return (error.nativeErrorCode().toInt() & 0xff) == 13; // SQLITE_FULL
}

// "The run is not finished", about column \a column: the condition of the partial index
// runs_active, which recovery repeats word for word so that SQLite uses the index.
QString active(const QString &column = u"status"_s)
{
    return SqliteSchema::activeCondition(column);
}

// The columns every store has, and where this one's stored log stops (see RunColumns).
const QString &runColumns()
{
    static const QString columns =
        runColumnList() + u", "_s + RunColumns::name(RunColumns::LogMissingFrom);
    return columns;
}

// The JSON text of a result, or a null string for none. QJsonDocument holds only objects and
// arrays, while a result may be any JSON value: wrap it in an array and keep the text between
// the brackets. The results most tasks return (nothing, a flag) need no document at all.
QString jsonValueText(const QJsonValue &value)
{
    static const QString null = u"null"_s;
    static const QString yes = u"true"_s;
    static const QString no = u"false"_s;
    switch (value.type()) {
    case QJsonValue::Undefined:
        return {};
    case QJsonValue::Null:
        return null;
    case QJsonValue::Bool:
        return value.toBool() ? yes : no;
    default:
        break;
    }
    const QByteArray text = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(text.mid(1, text.size() - 2));
}

QString errorText(const QSqlError &error)
{
    return error.databaseText().isEmpty() ? error.driverText() : error.databaseText();
}

// Turns an SQLite failure into one sentence that names the file and says what to do.
QString describe(const QString &path, const QSqlError &error)
{
    const QString text = errorText(error);
    // SQLite's primary result codes; QSQLITE reports them as the native error code.
    switch (error.nativeErrorCode().toInt() & 0xff) {
    case 11: // SQLITE_CORRUPT
    case 26: // SQLITE_NOTADB
        return u"history database %1 is corrupt (%2); move it aside to start a new history"_s.arg(path, text);
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
        return u"history database %1 is locked by another process (%2); close the program holding it "
               "or try again"_s.arg(path, text);
    case 3:  // SQLITE_PERM
    case 8:  // SQLITE_READONLY
    case 23: // SQLITE_AUTH
        return u"history database %1 cannot be written (%2); check the permissions of the file and "
               "its directory"_s.arg(path, text);
    case 14: // SQLITE_CANTOPEN
        return u"history database %1 cannot be opened (%2); check that it is a file and that its "
               "directory is writable"_s.arg(path, text);
    case 13: // SQLITE_FULL
        return u"history database %1 cannot grow: %2 (%3)"_s.arg(path, kDiskFullWords, text);
    case 10: // SQLITE_IOERR
        return u"history database %1 could not be read or written (%2)"_s.arg(path, text);
    default:
        return u"history database %1 failed (%2)"_s.arg(path, text);
    }
}

// Stores that are open now, so a thread can drop read connections of stores that are gone.
std::mutex g_liveMutex;
std::unordered_set<quint64> g_liveStores; // guarded by g_liveMutex
std::atomic<quint64> g_nextSerial{1};
std::atomic<quint64> g_nextConnection{1};

// QSqlDatabase connections belong to the thread that opened them, so each thread keeps its
// own read connection per store and removes them when it ends.
class ReadConnections
{
public:
    ReadConnections() = default;
    Q_DISABLE_COPY_MOVE(ReadConnections)
    ~ReadConnections()
    {
        for (const auto &entry : m_names)
            QSqlDatabase::removeDatabase(entry.second);
    }

    // \a openName is what SQLite opens (a file: URI for a history that cannot be written),
    // \a path what messages name.
    QSqlDatabase get(quint64 serial, const QString &path, const QString &openName, QString *error)
    {
        dropDeadStores();
        auto it = m_names.find(serial);
        if (it == m_names.end()) {
            const QString name = u"taskdeck-store-read-%1"_s.arg(g_nextConnection++);
            QSqlDatabase db = QSqlDatabase::addDatabase(u"QSQLITE"_s, name);
            db.setDatabaseName(openName);
            db.setConnectOptions(u"QSQLITE_BUSY_TIMEOUT=%1;QSQLITE_OPEN_READONLY"_s.arg(kBusyTimeoutMs)
                                 + (openName == path ? QString() : u";QSQLITE_OPEN_URI"_s));
            it = m_names.emplace(serial, name).first;
        }
        QSqlDatabase db = QSqlDatabase::database(it->second, false);
        if (!db.isOpen() && !db.open())
            *error = describe(path, db.lastError());
        return db;
    }

    void release(quint64 serial)
    {
        const auto it = m_names.find(serial);
        if (it == m_names.end())
            return;
        QSqlDatabase::removeDatabase(it->second);
        m_names.erase(it);
    }

private:
    void dropDeadStores()
    {
        std::vector<quint64> dead;
        {
            std::lock_guard<std::mutex> lock(g_liveMutex);
            for (const auto &entry : m_names) {
                if (!g_liveStores.count(entry.first))
                    dead.push_back(entry.first);
            }
        }
        for (quint64 serial : dead)
            release(serial);
    }

    std::unordered_map<quint64, QString> m_names;
};

ReadConnections &readConnections()
{
    static thread_local ReadConnections connections;
    return connections;
}

// One change waiting for the writer.
// Lines one batch of a run's log takes before the next starts: batches allocated once at
// this size are cheaper than one list that keeps growing (and moving) while a run floods
// its log.
constexpr qsizetype kLinesPerEntry = 1024;

// What a batch writes for one run: its latest state (or only its latest progress) and its
// new log lines. Changes of a run are folded in here as they are recorded, so a run that is
// queued, started and finished between two batches costs one entry and one write.
struct PendingRun
{
    Clock::time_point stateAt = Clock::now(); // when the latest state (or, before one, the entry) was recorded
    std::optional<Run> state;
    std::optional<Progress> progress;       // only while there is no state
    // Batches as they were recorded: joining them into one list would copy every line again.
    std::vector<LogLines> lines;

    void setState(Run run)
    {
        // A first state counts from when the entry was made (usually for it, a moment ago):
        // the callers hold the store's lock here, and this spares them a second clock read.
        setState(std::move(run), state ? Clock::now() : stateAt);
    }

    void setState(Run run, Clock::time_point at)
    {
        // Changes of one run arrive in order; still, a finish is final.
        if (state && isTerminal(state->status) && !isTerminal(run.status))
            return;
        state = std::move(run);
        stateAt = at;
        progress.reset();
    }

    /*! Until when a queued or running state may wait for the run's next change. */
    Clock::time_point holdUntil() const
    {
        return stateAt + (state && state->status == RunStatus::Queued ? Clock::duration(kQueuedHold)
                                                                        : Clock::duration(kBatchInterval));
    }

    void setProgress(const Progress &value)
    {
        if (state)
            state->progress = value;
        else
            progress = value;
    }

    void addLines(const LogLines &more)
    {
        // A run's first lines are kept as the engine's own list, shared, not copied: most
        // runs log a line or two, and a batch of 1,024 lines allocated for them (57 KiB, freed
        // on the writer's thread) cost the writer page faults on every run. A second batch
        // means a run that goes on logging: from then on batches are made at full size.
        if (lines.empty()) {
            lines.push_back(more);
            return;
        }
        if (lines.back().capacity() >= kLinesPerEntry && lines.back().size() + more.size() <= kLinesPerEntry) {
            lines.back().append(more);
            return;
        }
        LogLines batch;
        if (more.size() < kLinesPerEntry)
            batch.reserve(kLinesPerEntry);
        batch.append(more);
        lines.push_back(std::move(batch));
    }

    /*! Folds in changes recorded after these. */
    void merge(PendingRun &&later)
    {
        if (later.state)
            setState(std::move(*later.state), later.stateAt);
        else if (later.progress)
            setProgress(*later.progress);
        for (LogLines &batch : later.lines)
            lines.push_back(std::move(batch));
    }
};

// A run id with its hash, computed once: the engine's threads hash before they take the
// store's mutex, and a lookup compares hashes before it compares ids (time-ordered ids share
// their first characters) or reads another entry's string to find its bucket.
struct RunKey
{
    RunKey() = default;
    explicit RunKey(const QString &runId)
        : id(runId)
        , hash(qHash(runId))
    {
    }
    bool operator==(const RunKey &other) const { return hash == other.hash && id == other.id; }

    QString id;
    size_t hash = 0;
};

struct RunKeyHasher
{
    size_t operator()(const RunKey &key) const noexcept { return key.hash; }
};
// Node-based: taking, merging and erasing entries never moves the others.
using PendingRuns = std::unordered_map<RunKey, PendingRun, RunKeyHasher>;
using HeldEntry = std::pair<Clock::time_point, RunKey>; // when the run's held state is due
struct LaterDue
{
    bool operator()(const HeldEntry &a, const HeldEntry &b) const { return a.first > b.first; }
};
using Job = std::function<void(QSqlDatabase &)>;

/*!
 * Calls the callbacks of committed finishes, and frees what a committed batch held, on a
 * thread of its own: each callback shows a run's finish in the engine (taking its locks,
 * waking its followers) and each entry frees a run's copy. In a burst the writer alone sets
 * the pace, and this work need not wait for it (bench/README.md, run 16). Batches are
 * handed over in commit order and called in that order.
 */
class Finisher
{
public:
    using Durables = std::vector<std::function<void()>>;

    ~Finisher() { stop(); }

    void post(Durables &&durables, PendingRuns &&garbage)
    {
        if (durables.empty() && garbage.empty())
            return;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (!m_thread.joinable())
                m_thread = std::thread([this] { loop(); });
            m_batches.push_back({std::move(durables), std::move(garbage)});
        }
        m_wake.notify_one();
    }

    /*! Calls what is handed over already, then ends the thread. */
    void stop()
    {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stopping = true;
        }
        m_wake.notify_one();
        if (m_thread.joinable())
            m_thread.join();
    }

private:
    struct Batch
    {
        Durables durables;
        PendingRuns garbage;
    };

    void loop()
    {
        pthread_setname_np(pthread_self(), "taskdeck-finish");
        std::deque<Batch> taken;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(m_mutex);
                m_wake.wait(lock, [this] { return m_stopping || !m_batches.empty(); });
                if (m_batches.empty())
                    return;
                taken.swap(m_batches);
            }
            for (Batch &batch : taken) {
                for (const auto &durable : batch.durables) {
                    if (durable)
                        durable();
                }
            }
            taken.clear();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<Batch> m_batches; // guarded by m_mutex
    bool m_stopping = false;     // guarded by m_mutex
    std::thread m_thread;
};

/*!
 * A statement run through SQLite's own API on the connection QtSql opened. The writer's
 * run upsert binds 19 values per run; through QVariant that cost as much as SQLite's own
 * work for the row. Text is bound without a copy: the caller keeps it alive until step().
 */
class RawStatement
{
public:
    RawStatement() = default;
    RawStatement(const RawStatement &) = delete;
    RawStatement &operator=(const RawStatement &) = delete;
    ~RawStatement() { sqlite3_finalize(m_stmt); }

    bool prepare(sqlite3 *db, const QString &sql)
    {
        m_db = db;
        if (sqlite3_prepare16_v3(db, sql.utf16(), int(sql.size() * 2), SQLITE_PREPARE_PERSISTENT,
                                 &m_stmt, nullptr) != SQLITE_OK) {
            return false;
        }
        // Sized once: SQLite keeps pointers into these buffers until the statement has run,
        // so the vector must never reallocate (short strings live inside its elements).
        m_utf8.resize(size_t(sqlite3_bind_parameter_count(m_stmt)) + 1);
        return true;
    }

    void bind(int column, const QString &text)
    {
        // The file is UTF-8: ASCII text (ids, task keys, statuses, owners, most messages)
        // is handed over as such, which spares SQLite a conversion per value. The bytes stay
        // in a buffer of this column until it is bound again, after the statement ran.
        const qsizetype size = text.size();
        const char16_t *chars = reinterpret_cast<const char16_t *>(text.constData());
        if (size_t(column) < m_utf8.size() && size <= kAsciiLimit) {
            std::string &bytes = m_utf8[size_t(column)];
            bytes.resize(size_t(size));
            // One pass that the compiler vectorises: narrow every code unit, and note
            // whether any was beyond ASCII (then the bytes are not used).
            char16_t seen = 0;
            for (qsizetype i = 0; i < size; ++i) {
                seen |= chars[i];
                bytes[size_t(i)] = char(chars[i]);
            }
            if (seen < 0x80) {
                sqlite3_bind_text(m_stmt, column, bytes.data(), int(size), SQLITE_STATIC);
                return;
            }
        }
        // Text columns hold '' for "none"; a null QString binds as that.
        const void *data = text.isNull() ? static_cast<const void *>(u"") : static_cast<const void *>(text.utf16());
        sqlite3_bind_text16(m_stmt, column, data, int(size * 2), SQLITE_STATIC);
    }
    // Every parameter not bound is NULL: run() clears them all after each row, so a row binds
    // only the values it has (each bind is a call into SQLite that takes its connection's
    // mutex).
    /*! For a parameter the statement reads as coalesce(?, ''): empty text is left NULL. */
    void bindOptional(int column, const QString &text)
    {
        if (!text.isEmpty())
            bind(column, text);
    }
    void bind(int column, qint64 value) { sqlite3_bind_int64(m_stmt, column, value); }
    /*! Bytes, bound without a copy: \a data must live until the statement has run. */
    void bindBlob(int column, const QByteArray &data)
    {
        sqlite3_bind_blob(m_stmt, column, data.constData(), int(data.size()), SQLITE_STATIC);
    }
    /*! Runs a query of one integer: its value, 0 when it has no row or the value is NULL;
     *  nullopt on failure, with \a failure filled. */
    std::optional<qint64> selectInteger(QSqlError *failure)
    {
        const int rc = sqlite3_step(m_stmt);
        std::optional<qint64> value;
        if (rc == SQLITE_ROW)
            value = sqlite3_column_int64(m_stmt, 0); // NULL reads as 0
        else if (rc == SQLITE_DONE)
            value = 0;
        else
            *failure = error(rc);
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
        return value;
    }
    /*! UTF-8 text, bound without a copy: \a utf8 must live until the statement has run. */
    void bindUtf8(int column, const std::string &utf8)
    {
        sqlite3_bind_text(m_stmt, column, utf8.data(), int(utf8.size()), SQLITE_STATIC);
    }
    void bindTime(int column, const QDateTime &time)
    {
        if (time.isValid())
            bind(column, time.toMSecsSinceEpoch());
    }

    /*! Runs the statement to its end; on failure fills \a failure the way QSQLITE would. */
    bool run(QSqlError *failure)
    {
        int rc = sqlite3_step(m_stmt);
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(m_stmt);
        const bool ok = rc == SQLITE_DONE;
        if (!ok)
            *failure = error(rc);
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
        return ok;
    }

    QSqlError error(int rc = SQLITE_ERROR) const
    {
        const int code = m_db ? sqlite3_extended_errcode(m_db) : rc;
        return QSqlError(u"Unable to execute statement"_s,
                         m_db ? QString::fromUtf8(sqlite3_errmsg(m_db)) : u"no database"_s,
                         QSqlError::StatementError, QString::number(code));
    }

private:
    static constexpr qsizetype kAsciiLimit = 4096;
    sqlite3 *m_db = nullptr;
    sqlite3_stmt *m_stmt = nullptr;
    std::vector<std::string> m_utf8; // per bound column
};

/*! Adds \a id to the comma-separated list \a ids, as UTF-8 (ids are ASCII as a rule). */
void appendId(std::string &ids, const QString &id)
{
    if (!ids.empty())
        ids.push_back(',');
    const char16_t *chars = reinterpret_cast<const char16_t *>(id.constData());
    const size_t start = ids.size();
    char16_t seen = 0;
    for (qsizetype i = 0; i < id.size(); ++i) {
        seen |= chars[i];
        ids.push_back(char(chars[i]));
    }
    if (seen >= 0x80) {
        ids.resize(start);
        const QByteArray utf8 = id.toUtf8();
        ids.append(utf8.constData(), size_t(utf8.size()));
    }
}

sqlite3 *sqliteHandle(const QSqlDatabase &db)
{
    const QVariant handle = db.driver() ? db.driver()->handle() : QVariant();
    if (!handle.isValid() || qstrcmp(handle.typeName(), "sqlite3*") != 0)
        return nullptr;
    return *static_cast<sqlite3 *const *>(handle.constData());
}

// The writer's prepared statements, compiled once per connection.
struct Statements
{
    explicit Statements(const QSqlDatabase &db)
        : handle(sqliteHandle(db)), progress(db), logCount(db), chunkAt(db),
          updateChunk(db)
    {
    }

    bool prepare()
    {
        if (!handle) {
            m_prepareError = QSqlError(u"the QSQLITE driver gave no SQLite handle"_s, {},
                                       QSqlError::ConnectionError);
            return false;
        }
        const bool ok = upsert.prepare(handle, 
                   u"INSERT INTO runs (id, task, status, attempt, max_attempts, args, queued_at, started_at, "
                   "finished_at, progress_done, progress_total, progress_message, result, error_message, "
                   "error_kind, error_detail, error_transient, log_lines, owner, seq, next_attempt_at, "
                   "trace_id) "
                   // A null QString binds as NULL; the text columns hold '' for "none".
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, ''), ?, coalesce(?, ''), coalesce(?, ''), "
                   "coalesce(?, ''), ?, ?, coalesce(?, ''), ?, ?, coalesce(?, lower(hex(randomblob(16))))) "
                   "ON CONFLICT (id) DO UPDATE SET task = excluded.task, status = excluded.status, "
                   "attempt = excluded.attempt, max_attempts = excluded.max_attempts, args = excluded.args, "
                   "queued_at = excluded.queued_at, started_at = excluded.started_at, "
                   "finished_at = excluded.finished_at, progress_done = excluded.progress_done, "
                   "progress_total = excluded.progress_total, progress_message = excluded.progress_message, "
                   "result = excluded.result, error_message = excluded.error_message, "
                   "error_kind = excluded.error_kind, error_detail = excluded.error_detail, "
                   "error_transient = excluded.error_transient, "
                   "log_lines = max(runs.log_lines, excluded.log_lines), owner = excluded.owner, "
                   "seq = max(runs.seq, excluded.seq), next_attempt_at = excluded.next_attempt_at "
                   // A late update never takes a finished run back to queued or running.
                   "WHERE "_s + active(u"runs.status"_s) + u" OR NOT "_s + active(u"excluded.status"_s));
        if (!ok) {
            m_prepareError = upsert.error();
            return false;
        }
        // The statements every batch runs go through SQLite's API too (see RawStatement).
        for (auto [statement, sql] : {std::pair{&logChange, u"INSERT INTO changes (seq, run_ids) VALUES (?, ?)"_s},
                                      std::pair{&insertChunk, u"INSERT INTO log_chunks (run_id, first_line, last_line, "
                                                              "data, last_seq) VALUES (?, ?, ?, ?, ?)"_s},
                                      std::pair{&lastLine, u"SELECT max(last_line) FROM log_chunks WHERE run_id = ?"_s}}) {
            if (!statement->prepare(handle, sql)) {
                m_prepareError = statement->error();
                return false;
            }
        }
        return progress.prepare(u"UPDATE runs SET progress_done = ?, progress_total = ?, progress_message = coalesce(?, '') "
                                "WHERE id = ? AND "_s + active())
            && logCount.prepare(u"UPDATE runs SET log_lines = max(log_lines, ?), seq = max(seq, ?) WHERE id = ?"_s)
            && chunkAt.prepare(u"SELECT first_line, last_line, data FROM log_chunks "
                               "WHERE run_id = ? AND first_line <= ? ORDER BY first_line DESC LIMIT 1"_s)
            && updateChunk.prepare(u"UPDATE log_chunks SET last_line = ?, data = ?, last_seq = max(last_seq, ?) "
                                   "WHERE run_id = ? AND first_line = ?"_s);
    }

    QSqlError lastError() const
    {
        if (m_prepareError.isValid())
            return m_prepareError;
        for (const QSqlQuery *q : {&progress, &logCount, &chunkAt, &updateChunk}) {
            if (q->lastError().isValid())
                return q->lastError();
        }
        return {};
    }

    sqlite3 *const handle;
    RawStatement upsert;
    QSqlQuery progress;
    QSqlQuery logCount;
    RawStatement logChange; // one row per transaction: the ids it wrote
    RawStatement insertChunk;
    RawStatement lastLine;
    QSqlQuery chunkAt;
    QSqlQuery updateChunk;

private:
    QSqlError m_prepareError;
};

bool exec(QSqlDatabase &db, const QString &sql, QSqlError *error)
{
    QSqlQuery query(db);
    if (query.exec(sql))
        return true;
    *error = query.lastError();
    return false;
}

void rollback(QSqlDatabase &db)
{
    QSqlError ignored;
    exec(db, u"ROLLBACK"_s, &ignored);
}

int pruneRuns(QSqlDatabase &db, const QString &path, const QDateTime &cutoff)
{
    QSqlError failure;
    // The cutoff is inclusive, to the millisecond: a purge of everything finished "0 days
    // ago" also takes a run that finished in the millisecond it read the clock. A run that
    // finished by the cutoff was queued by it too: the condition on queued_at lets the time
    // index find the old runs without reading the others.
    const QString finishedByCutoff = u"queued_at <= ? AND finished_at <= ? AND NOT "_s + active();
    bool ok = exec(db, u"BEGIN IMMEDIATE"_s, &failure);
    if (!ok) {
        qCWarning(lcStore).noquote() << describe(path, failure) << u"; old runs were not removed"_s;
        return -1;
    }
    QSqlQuery logs(db);
    ok = logs.prepare(u"DELETE FROM log_chunks WHERE run_id IN (SELECT id FROM runs WHERE "_s + finishedByCutoff + u')');
    logs.addBindValue(cutoff.toMSecsSinceEpoch());
    logs.addBindValue(cutoff.toMSecsSinceEpoch());
    ok = ok && logs.exec();
    if (!ok)
        failure = logs.lastError();
    QSqlQuery runs(db);
    int count = 0;
    if (ok) {
        ok = runs.prepare(u"DELETE FROM runs WHERE "_s + finishedByCutoff);
        runs.addBindValue(cutoff.toMSecsSinceEpoch());
        runs.addBindValue(cutoff.toMSecsSinceEpoch());
        ok = ok && runs.exec();
        if (ok)
            count = runs.numRowsAffected();
        else
            failure = runs.lastError();
    }
    ok = ok && exec(db, u"COMMIT"_s, &failure);
    if (!ok) {
        rollback(db);
        qCWarning(lcStore).noquote() << describe(path, failure) << u"; old runs were not removed"_s;
        return -1;
    }
    return count;
}

} // namespace

struct SqliteRunStore::Private
{
    explicit Private(QString file)
        : path(std::move(file))
        , serial(g_nextSerial++)
        , writerConnection(u"taskdeck-store-write-%1"_s.arg(g_nextConnection++))
        , ownersPath(QFileInfo(path).dir().filePath(HistoryOwners::fileName()))
        , ownerEntry(HistoryOwners::entryFor(serial))
    {
    }

    ~Private()
    {
        stop();
    }

    /*! Runs \a work on this thread's read connection once what was recorded is stored. */
    template <typename Work, typename Result>
    Result query(const Work &work, Result none)
    {
        catchUp();
        QString problem;
        const QSqlDatabase db = reader(&problem);
        if (!problem.isEmpty()) {
            qCWarning(lcStore).noquote() << problem;
            return none;
        }
        return work(db);
    }

    /*! query() on a reader thread; the future is canceled if the store goes first. */
    template <typename Result, typename Work>
    QFuture<Result> queryAsync(Work work)
    {
        return detail::computeOnPool(readerPool.get(), [this, work = std::move(work)]() mutable {
            return query(work, Result());
        });
    }

    // Caller side.
    PendingRun *changeLocked(const RunKey &key, bool *wasEmpty);
    void notedLocked(bool wasEmpty, bool urgentNow);
    void finishNotedLocked(bool wasEmpty);
    // A change recorded after the writer ended: it is logged, not stored.
    void warnNotStored(const QString &runId) const
    {
        qCWarning(lcStore).noquote() << u"history database %1 is closed; a change of run %2 was not stored"_s.arg(path, runId);
    }
    bool incomingEmpty() const { return incoming.empty() && incomingJobs.empty(); }
    void stop();
    int runJob(std::function<int(QSqlDatabase &)> job);
    QSqlDatabase reader(QString *error);
    bool flush(std::chrono::milliseconds timeout);
    void catchUp();

    // Writer thread.
    void writerMain();
    QString prepareDatabase(QSqlDatabase &db);
    void loop(QSqlDatabase &db, Statements &st);
    void waitForWorkLocked(std::unique_lock<std::mutex> &lock, bool *checkpointNow, bool *pollNow);
    void foldIntoPending(PendingRuns &taken, bool everything);
    void writePending(QSqlDatabase &db, Statements &st, bool finalAttempt, bool everything);
    void batchCommitted(bool attempted, const std::vector<QString> &finishedWithLines);
    void batchFailed(const QSqlError &failure, bool finalAttempt);
    bool writeRun(Statements &st, const QString &runId, PendingRun &run, QSqlError *error);
    bool writeLines(Statements &st, const QString &runId, std::vector<LogLines> &batches, qint64 *maxSeq,
                    QSqlError *error);
    bool insertLate(Statements &st, const QString &runId, const LogLine &line, QSqlError *error);
    void prune(QSqlDatabase &db, int days);
    void checkpoint(QSqlDatabase &db);
    void watchWalSize(QSqlDatabase &db, sqlite3 *handle); // writer thread, at start
    qint64 walPageSize = 4096;
    QString checkForDamage(QSqlQuery &q);
    void startChangeTracking(QSqlDatabase &db);
    void noteOwnChange(qint64 change, const QStringList &runIds);
    void pollOtherWriters(QSqlDatabase &db);

    const QString path;
    // Set before the writer starts: the history cannot be written here (why, in readOnly), so
    // it is only read, and immutable when no -wal or -shm exists to read it through.
    QString readOnly;
    bool immutable = false;
    QString openName() const
    {
        if (!immutable)
            return path;
        QUrl url = QUrl::fromLocalFile(path);
        url.setQuery(u"immutable=1"_s);
        return url.toString(QUrl::FullyEncoded);
    }
    const quint64 serial;
    const QString writerConnection;
    const QString ownersPath;
    const QString ownerEntry;             // this store's line in the owners file
    bool ownerRegistered = false;         // ownerEntry is in the owners file
    bool fullCheck = false;               // set before the writer starts: a crash was found
    QStringList goneOwners;               // the entries that showed it
    std::thread writer;
    Finisher finisher; // after the writer: stop() ends the writer, then the finisher
    std::unique_ptr<RunStoreNotifier> notifier; // lives in the thread that opened the store
    std::unique_ptr<QThreadPool> readerPool;

    // Every run change passes through here from the engine's threads: a short critical
    // section that several threads enter at a high rate. A plain mutex: the spinning one the
    // engine used measured no better here (bench/README.md, "history: a plain mutex").
    mutable std::mutex mutex;
    std::condition_variable writerWake;   // waits on mutex
    std::condition_variable spaceFree;    // waits on mutex
    std::condition_variable progressMade; // waits on mutex
    // Changes recorded since the writer took the last batch.
    PendingRuns incoming;                 // guarded by mutex
    std::vector<Job> incomingJobs;        // guarded by mutex
    std::vector<std::function<void()>> incomingDurables; // guarded by mutex
    qsizetype queuedLines = 0;            // guarded by mutex
    Clock::time_point firstQueuedAt;      // guarded by mutex
    quint64 enqueuedSeq = 0;              // guarded by mutex
    quint64 handledSeq = 0;               // guarded by mutex; committed or given up
    std::vector<std::pair<quint64, quint64>> droppedRanges; // guarded by mutex; (after, upTo]
    bool urgent = false;                  // guarded by mutex
    int finishesWaiting = 0;              // guarded by mutex; finishes waiting for their commit
    Clock::time_point lastFinishAt;       // guarded by mutex; when the latest finish was recorded
    bool writeAll = false;                // guarded by mutex; a flush() waits for everything
    bool writerWaiting = false;           // guarded by mutex; the writer sleeps on writerWake
    bool stopping = false;                // guarded by mutex
    bool writerGone = false;              // guarded by mutex
    bool initDone = false;                // guarded by mutex
    QString initError;                    // guarded by mutex
    bool available = true;                // guarded by mutex
    QString error;                        // guarded by mutex
    bool backpressureWarned = false;      // guarded by mutex
    int retentionDays = 0;                // guarded by mutex
    std::chrono::milliseconds retentionInterval{0}; // guarded by mutex
    std::optional<Clock::time_point> nextPruneAt;   // guarded by mutex

    // Writer thread only.
    PendingRuns pending;
    std::vector<std::function<void()>> pendingDurables;
    quint64 pendingSeq = 0;
    int failedAttempts = 0;
    Clock::time_point retryAt;                   // when pending (a failed batch) is tried again
    // Queued or running states held back (see writePending()), apart from pending so that
    // each batch looks only at what changed or came due, and when each is due, oldest first
    // (an entry whose run has left held since is skipped).
    PendingRuns held;
    // Earliest first; an entry may be stale (its run was written since, or held again later).
    std::priority_queue<HeldEntry, std::vector<HeldEntry>, LaterDue> heldOrder;
    QHash<QString, qint64> lastWrittenLine; // highest stored line number per unfinished run
    QHash<QString, qint64> writtenThisBatch;
    std::string changedIdsBuffer;           // the ids of the change being written (see writePending())
    qint64 batchBytes = 0;
    qint64 batchChange = 0;                 // the change number of the transaction being written
    qint64 uncheckpointedBytes = 0;
    qint64 walBytes = 0;                    // the WAL's size after the last commit (watchWalSize())
    qint64 walBudget = kLargestWalBudget;   // see kSmallestWalBudget
    Clock::time_point lastWriteAt;
    bool finishStream = false;              // the last commit carried finishes
    std::chrono::milliseconds finishGap() const { return finishStream ? kFinishStreamGap : kFinishGap; }
    // Change tracking (writer thread only): the change numbers seen, this store's own since
    // then, and SQLite's count of other connections' commits when last asked.
    qint64 lastSeenChange = 0;
    std::vector<qint64> ownChanges;
    qint64 dataVersion = -1;
    Clock::time_point nextPollAt;

    // A full disk (writer thread only). When a batch does not fit, the new log lines of its
    // runs are dropped and their states written without them; from then on those runs store
    // no more lines, so a stored log is always the start of the run's log, without holes,
    // and runs.log_missing_from says where it stops.
    QHash<QString, qint64> missingFrom;       // run id -> first line not kept
    QHash<QString, qint64> unmarked;          // entries of missingFrom not yet in their row
    std::unique_ptr<QSqlQuery> markMissing;
    qint64 linesCutThisBatch = 0;             // lines writeLines() left out, past a run's cut
    QStringList markedThisBatch;
    QString reservePath;                      // set when the store may write
    bool fullWarned = false;
    bool diskFull = false;                    // until a checkpoint completes again
    Clock::time_point lastFullCheckpoint;
    bool cutLogsForFullDisk();
    void dropLinesPastCuts();
    bool writeMarks(QSqlDatabase &db, QSqlError *failure);
    bool releaseReserve();

    // What the history could not keep, for the command's closing words. Guarded by mutex.
    qint64 lostLines = 0;
    QSet<QString> lostLogRuns;
    qint64 lostChanges = 0;
    QString lostProblem;
};

PendingRun *SqliteRunStore::Private::changeLocked(const RunKey &key, bool *wasEmpty)
{
    *wasEmpty = incomingEmpty();
    if (writerGone)
        return nullptr;
    return &incoming[key];
}

void SqliteRunStore::Private::notedLocked(bool wasEmpty, bool urgentNow)
{
    if (wasEmpty)
        firstQueuedAt = Clock::now();
    ++enqueuedSeq;
    const bool nowUrgent = urgentNow && !urgent;
    if (urgentNow)
        urgent = true;
    // The writer sleeps without a deadline only while nothing is recorded, and otherwise
    // wakes by itself when the batch window closes: only those two changes need a wake-up,
    // and only while it waits (a wake-up is a system call on each side).
    if (writerWaiting && (wasEmpty || nowUrgent))
        writerWake.notify_one();
}

void SqliteRunStore::Private::finishNotedLocked(bool wasEmpty)
{
    if (wasEmpty)
        firstQueuedAt = Clock::now();
    ++enqueuedSeq;
    ++finishesWaiting;
    lastFinishAt = Clock::now();
    // The writer works out when the commit is due; only a new deadline needs a wake-up.
    if (writerWaiting && (wasEmpty || finishesWaiting == 1 || finishesWaiting == kFinishBatch))
        writerWake.notify_one();
}

void SqliteRunStore::Private::stop()
{
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopping = true;
    }
    writerWake.notify_all();
    spaceFree.notify_all();
    if (writer.joinable())
        writer.join();
    finisher.stop();
}

int SqliteRunStore::Private::runJob(std::function<int(QSqlDatabase &)> job)
{
    struct Outcome
    {
        bool done = false; // guarded by Private::mutex
        int value = -1;    // guarded by Private::mutex
    };
    auto outcome = std::make_shared<Outcome>();
    // The caller may give up waiting; the job then still runs and only touches the shared
    // outcome and the store, which outlives its writer.
    Job wrapped = [this, outcome, job = std::move(job)](QSqlDatabase &db) {
        const int value = job(db);
        std::lock_guard<std::mutex> lock(mutex);
        outcome->value = value;
        outcome->done = true;
    };
    std::unique_lock<std::mutex> lock(mutex);
    if (writerGone)
        return -1;
    const bool wasEmpty = incomingEmpty();
    incomingJobs.push_back(std::move(wrapped));
    notedLocked(wasEmpty, true);
    if (!progressMade.wait_for(lock, kJobTimeout, [&] { return outcome->done || writerGone; }))
        qCWarning(lcStore).noquote() << u"history database %1 did not answer within %2 s"_s.arg(path).arg(kJobTimeout.count());
    return outcome->done ? outcome->value : -1;
}

QSqlDatabase SqliteRunStore::Private::reader(QString *problem)
{
    return readConnections().get(serial, path, openName(), problem);
}

bool SqliteRunStore::Private::flush(std::chrono::milliseconds timeout)
{
    std::unique_lock<std::mutex> lock(mutex);
    const quint64 target = enqueuedSeq;
    // A durable callback that queries the store runs on the writer, which cannot wait for
    // itself.
    const bool onWriter = std::this_thread::get_id() == writer.get_id();
    if (handledSeq < target && !writerGone && !onWriter) {
        urgent = true;
        writeAll = true;
        writerWake.notify_one();
        progressMade.wait_for(lock, timeout, [&] { return handledSeq >= target || writerGone; });
    }
    if (handledSeq < target)
        return false;
    for (const auto &[after, upTo] : droppedRanges) {
        if (target > after && target <= upTo)
            return false;
    }
    return true;
}

void SqliteRunStore::Private::catchUp()
{
    bool writable = true;
    {
        std::lock_guard<std::mutex> lock(mutex);
        writable = available;
    }
    // While writes fail, waiting for them would only delay the answer.
    flush(writable ? std::chrono::milliseconds(kQueryFlushTimeout) : 0ms);
}

// Writer thread ---------------------------------------------------------------------------

void SqliteRunStore::Private::writerMain()
{
    pthread_setname_np(pthread_self(), "taskdeck-store");
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(u"QSQLITE"_s, writerConnection);
        db.setDatabaseName(openName());
        QString options = u"QSQLITE_BUSY_TIMEOUT=%1"_s.arg(kBusyTimeoutMs);
        if (!readOnly.isEmpty())
            options += u";QSQLITE_OPEN_READONLY"_s;
        if (immutable)
            options += u";QSQLITE_OPEN_URI"_s;
        db.setConnectOptions(options);
        QString problem;
        QElapsedTimer sinceFirst;
        sinceFirst.start();
        for (;;) {
            QElapsedTimer attempt;
            attempt.start();
            problem = prepareDatabase(db);
            // Processes creating a new history at the same moment: the switch to WAL answers
            // "busy" at once instead of going through the busy handler, so try again briefly.
            // A lock that outlasted the busy timeout is a real one and is reported.
            const bool quickBusy = problem.contains(u"is locked by another process"_s)
                                   && attempt.elapsed() < 1000;
            if (!quickBusy || sinceFirst.elapsed() > kBusyTimeoutMs)
                break;
            db.close();
            std::this_thread::sleep_for(std::chrono::milliseconds(10 + QRandomGenerator::global()->bounded(40)));
        }
        std::optional<Statements> statements;
        if (problem.isEmpty()) {
            statements.emplace(db);
            if (!statements->prepare())
                problem = describe(path, statements->lastError());
        }
        if (problem.isEmpty()) {
            startChangeTracking(db);
            watchWalSize(db, statements->handle);
        }
        {
            std::lock_guard<std::mutex> lock(mutex);
            initDone = true;
            initError = problem;
        }
        progressMade.notify_all();
        if (problem.isEmpty())
            loop(db, *statements);
        statements.reset();
        db.close();
    }
    QSqlDatabase::removeDatabase(writerConnection);
    {
        std::lock_guard<std::mutex> lock(mutex);
        writerGone = true;
    }
    progressMade.notify_all();
    spaceFree.notify_all();
}

QString SqliteRunStore::Private::prepareDatabase(QSqlDatabase &db)
{
    if (!db.open())
        return describe(path, db.lastError());
    QSqlQuery q(db);
    // The first read finds a file that is not a database at all, before anything could
    // write to it.
    if (!q.exec(u"SELECT count(*) FROM sqlite_master"_s) || !q.next())
        return describe(path, q.lastError());
    const bool fresh = q.value(0).toInt() == 0;
    if (const QString damage = checkForDamage(q); !damage.isEmpty())
        return damage;
    // A newer Taskdeck's file is refused before anything (even the journal mode) changes it.
    if (!q.exec(u"PRAGMA user_version"_s) || !q.next())
        return describe(path, q.lastError());
    if (const int version = q.value(0).toInt(); version > SqliteSchema::kVersion) {
        return u"history database %1 was written by a newer Taskdeck (history schema version %2; this one "
               "knows up to %3)"_s.arg(path).arg(version).arg(SqliteSchema::kVersion);
    } else if (!readOnly.isEmpty()) {
        // Only read: nothing may change, not even the journal mode.
        if (version != SqliteSchema::kVersion) {
            return u"history database %1 has history schema version %2 and needs upgrading to %3, but it "
                   "cannot be written: %4"_s.arg(path).arg(version).arg(SqliteSchema::kVersion).arg(readOnly);
        }
        return {};
    }
    // Log chunks are tens of KiB: with 4 KiB pages each spills over a dozen overflow pages,
    // with 16 KiB ones over a few, which makes writing logs markedly cheaper. The size can
    // only be chosen before the file's first write.
    if (fresh && !q.exec(u"PRAGMA page_size=16384"_s))
        return describe(path, q.lastError());
    if (!q.exec(u"PRAGMA journal_mode=WAL"_s))
        return describe(path, q.lastError());
    const QString mode = q.next() ? q.value(0).toString() : QString();
    if (mode.compare("wal"_L1, Qt::CaseInsensitive) != 0) {
        return u"history database %1 cannot use write-ahead logging (journal mode stays \"%2\"); "
               "check that its directory is writable"_s.arg(path, mode);
    }
    // In WAL mode NORMAL loses no committed transaction in a process crash, only (at worst)
    // the last ones in a power loss, at a fraction of FULL's fsyncs.
    if (!q.exec(u"PRAGMA synchronous=NORMAL"_s))
        return describe(path, q.lastError());
    // Per connection: only this writer leaves checkpoints to idle time (see kCheckpointIdle).
    if (!q.exec(u"PRAGMA wal_autocheckpoint=0"_s))
        return describe(path, q.lastError());
    q.finish();
    SqliteSchema::Failure failure;
    if (!SqliteSchema::migrate(db, &failure)) {
        if (!failure.problem.isEmpty())
            return u"history database %1 %2"_s.arg(path, failure.problem);
        return describe(path, failure.error);
    }
    return {};
}

QString SqliteRunStore::Private::checkForDamage(QSqlQuery &q)
{
    if (fullCheck) {
        // A process stopped without closing the history: read all of it once (this grows
        // with the history, which is why it is not done at every start).
        qCInfo(lcStore).noquote() << u"history database %1 may not have been closed cleanly (%2); checking it"_s
                                         .arg(path, goneOwners.join(u", "_s));
        if (!q.exec(u"PRAGMA quick_check"_s))
            return describe(path, q.lastError());
        QStringList problems;
        while (q.next()) {
            const QString row = q.value(0).toString();
            if (row != "ok"_L1 && problems.size() < 3)
                problems << row.simplified();
        }
        if (!problems.isEmpty()) {
            return u"history database %1 is corrupt (%2); move it aside to start a new history"_s.arg(
                path, problems.join(u"; "_s));
        }
        return {};
    }
    // Otherwise only the first page of each table, whatever the history's size: a damaged
    // root is found here, and deeper damage by checkIntegrity() (taskdeck history --check).
    // One read transaction: another process may be migrating the file meanwhile.
    if (!q.exec(u"BEGIN"_s))
        return describe(path, q.lastError());
    const auto end = qScopeGuard([&q] { q.exec(u"COMMIT"_s); });
    QStringList tables;
    if (!q.exec(u"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"_s))
        return describe(path, q.lastError());
    while (q.next())
        tables << q.value(0).toString();
    for (const QString &table : std::as_const(tables)) {
        QString quoted = table;
        quoted.replace(u'"', u"\"\""_s);
        // NOT INDEXED: the table's own b-tree, not a smaller index SQLite might scan instead.
        if (!q.exec(u"SELECT 1 FROM \"%1\" NOT INDEXED LIMIT 1"_s.arg(quoted)))
            return describe(path, q.lastError());
    }
    return {};
}

void SqliteRunStore::Private::startChangeTracking(QSqlDatabase &db)
{
    QSqlQuery q(db);
    if (q.exec(u"SELECT coalesce(max(seq), 0) FROM changes"_s) && q.next())
        lastSeenChange = q.value(0).toLongLong();
    if (q.exec(u"PRAGMA data_version"_s) && q.next())
        dataVersion = q.value(0).toLongLong();
}

void SqliteRunStore::Private::noteOwnChange(qint64 change, const QStringList &runIds)
{
    if (!notifier->isWatched())
        return;
    ownChanges.push_back(change);
    notifier->post(runIds);
}

void SqliteRunStore::Private::pollOtherWriters(QSqlDatabase &db)
{
    QSqlQuery q(db);
    q.setForwardOnly(true);
    // Changes only when another connection (another process, or another store of this
    // one) committed; reads no page of the file.
    if (!q.exec(u"PRAGMA data_version"_s) || !q.next())
        return;
    const qint64 version = q.value(0).toLongLong();
    if (version == dataVersion) {
        // Nobody else committed since the last look: every newer change number is ours.
        if (!ownChanges.empty())
            lastSeenChange = std::max(lastSeenChange, ownChanges.back());
        ownChanges.clear();
        return;
    }
    dataVersion = version;
    q.prepare(u"SELECT seq, run_ids FROM changes WHERE seq > ? ORDER BY seq"_s);
    q.addBindValue(lastSeenChange);
    if (!q.exec()) {
        qCDebug(lcStore).noquote() << describe(path, q.lastError()) << u"(looking for other processes' changes)"_s;
        return;
    }
    QStringList ids;
    while (q.next()) {
        const qint64 change = q.value(0).toLongLong();
        lastSeenChange = std::max(lastSeenChange, change);
        if (!std::binary_search(ownChanges.cbegin(), ownChanges.cend(), change))
            ids << q.value(1).toString().split(u',', Qt::SkipEmptyParts);
    }
    ownChanges.erase(ownChanges.begin(), std::upper_bound(ownChanges.begin(), ownChanges.end(), lastSeenChange));
    notifier->post(ids);
}

void SqliteRunStore::Private::waitForWorkLocked(std::unique_lock<std::mutex> &lock, bool *checkpointNow,
                                                bool *pollNow)
{
    for (;;) {
        const Clock::time_point now = Clock::now();
        if (stopping)
            return;
        if (!incomingEmpty() && (urgent || now - firstQueuedAt >= kBatchInterval))
            return;
        if (!incomingEmpty() && finishesWaiting > 0
            && (finishesWaiting >= kFinishBatch || now - lastWriteAt >= finishGap()
                || now - lastFinishAt >= kFinishQuiet))
            return;
        // A held state waits at least a batch interval after the last commit too, so states
        // held one after another share a commit instead of each taking its own.
        const bool holding = !heldOrder.empty();
        const Clock::time_point heldDue = holding
            ? std::max(heldOrder.top().first, lastWriteAt + kBatchInterval)
            : Clock::time_point::max();
        if (nextPruneAt && now >= *nextPruneAt)
            return;
        if (!pending.empty() && now >= retryAt)
            return;
        if (holding && now >= heldDue)
            return;
        const bool idle = incomingEmpty() && pending.empty() && held.empty();
        if (idle && uncheckpointedBytes > 0 && now - lastWriteAt >= kCheckpointIdle) {
            *checkpointNow = true;
            return;
        }
        const bool watched = notifier->isWatched();
        if (watched && now >= nextPollAt) {
            *pollNow = true;
            return;
        }
        std::optional<Clock::time_point> wakeAt;
        auto earliest = [&](Clock::time_point t) { wakeAt = wakeAt ? std::min(*wakeAt, t) : t; };
        if (!incomingEmpty())
            earliest(firstQueuedAt + kBatchInterval);
        if (nextPruneAt)
            earliest(*nextPruneAt);
        if (!pending.empty())
            earliest(retryAt);
        if (holding)
            earliest(heldDue);
        if (!incomingEmpty() && finishesWaiting > 0)
            earliest(std::min(lastWriteAt + finishGap(), lastFinishAt + kFinishQuiet));
        if (idle && uncheckpointedBytes > 0)
            earliest(lastWriteAt + kCheckpointIdle);
        if (watched)
            earliest(nextPollAt);
        writerWaiting = true;
        if (wakeAt)
            writerWake.wait_until(lock, *wakeAt);
        else
            writerWake.wait(lock);
        writerWaiting = false;
    }
}

void SqliteRunStore::Private::foldIntoPending(PendingRuns &taken, bool everything)
{
    // Later changes of a run that is held back or waiting for a retry fold into it.
    for (auto it = taken.begin(); !held.empty() && it != taken.end();) {
        auto node = held.extract(it->first);
        if (node.empty()) {
            ++it;
            continue;
        }
        node.mapped().merge(std::move(it->second));
        it = taken.erase(it);
        pending.insert(std::move(node));
    }
    if (pending.empty()) {
        pending.swap(taken);
    } else {
        pending.merge(taken);
        for (auto &[runId, later] : taken)
            pending[runId].merge(std::move(later));
        taken.clear();
    }
    // Held back long enough (or everything, for a flush or the end): due now.
    const Clock::time_point due = Clock::now();
    while (!heldOrder.empty() && (everything || heldOrder.top().first <= due)) {
        auto node = held.extract(heldOrder.top().second);
        heldOrder.pop();
        if (node.empty())
            continue;
        // Held again since with a later state: its own entry comes later.
        if (!everything && node.mapped().holdUntil() > due)
            held.insert(std::move(node));
        else
            pending.insert(std::move(node));
    }
}

void SqliteRunStore::Private::loop(QSqlDatabase &db, Statements &st)
{
    // Swapped with the callers' map at each batch: they go on filling one whose buckets
    // already exist.
    PendingRuns taken;
    std::vector<Job> jobs;
    for (;;) {
        bool stopNow = false;
        bool everything = false;
        bool checkpointNow = false;
        bool pollNow = false;
        int pruneDays = 0;
        {
            std::unique_lock<std::mutex> lock(mutex);
            waitForWorkLocked(lock, &checkpointNow, &pollNow);
            taken.swap(incoming);
            jobs.swap(incomingJobs);
            // writePending() called the previous batch's durables: this list is empty.
            pendingDurables.swap(incomingDurables);
            queuedLines = 0;
            urgent = false;
            finishesWaiting = 0;
            pendingSeq = enqueuedSeq;
            stopNow = stopping;
            everything = writeAll || stopping;
            writeAll = false;
            if (nextPruneAt && Clock::now() >= *nextPruneAt) {
                pruneDays = retentionDays;
                nextPruneAt = Clock::now() + retentionInterval;
            }
        }
        spaceFree.notify_all();

        const size_t takenSize = taken.size();
        foldIntoPending(taken, everything);
        writePending(db, st, stopNow, everything);
        // The map the callers fill next: while a burst outgrows the writer, each batch is
        // about twice the last, and a map that grows by rehashing walks all its entries each
        // time, under the mutex every caller waits on.
        if (taken.bucket_count() < 2 * takenSize)
            taken.reserve(2 * takenSize);
        for (const auto &job : jobs)
            job(db);
        const bool hadJobs = !jobs.empty();
        jobs.clear();
        if (pruneDays > 0)
            prune(db, pruneDays);
        if (hadJobs || pruneDays > 0) {
            uncheckpointedBytes += kRowBytes;
            lastWriteAt = Clock::now();
        }
        progressMade.notify_all();
        if (pollNow) {
            pollOtherWriters(db);
            nextPollAt = Clock::now() + kChangePollInterval;
        }
        if (checkpointNow || uncheckpointedBytes >= kCheckpointBytes || walBytes >= walBudget)
            checkpoint(db);

        if (stopNow) {
            std::lock_guard<std::mutex> lock(mutex);
            if (incomingEmpty())
                return;
        }
    }
}

void SqliteRunStore::Private::writePending(QSqlDatabase &db, Statements &st, bool finalAttempt, bool everything)
{
    QSqlError failure;
    bool ok = true;
    writtenThisBatch.clear();
    batchBytes = 0;
    // A run that was queued or started a moment ago usually finishes a moment later: its
    // state waits up to one batch interval, so most runs are written once, finished,
    // instead of inserted and then rewritten. Its first few lines wait with it (a short
    // command prints a line or two before it ends: writing them apart cost a row write, a
    // chunk and a commit more per run). Finishes, progress alone, the lines of a run written
    // before and a burst of lines never wait, nor does anything a flush() waits for.
    const Clock::time_point now = Clock::now();
    const auto fewLines = [](const PendingRun &run) {
        qsizetype count = 0;
        for (const LogLines &batch : run.lines) {
            count += batch.size();
            if (count >= kLinesPerEntry)
                return false;
        }
        return true;
    };
    const auto holdBack = [&](const PendingRun &run) {
        return !everything && failedAttempts == 0 && run.state && !isTerminal(run.state->status)
               && fewLines(run) && now < run.holdUntil();
    };
    std::vector<QString> finishedWithLines;
    if (!missingFrom.isEmpty())
        dropLinesPastCuts();
    for (auto it = pending.begin(); it != pending.end();) {
        if (!holdBack(it->second)) {
            ++it;
            continue;
        }
        heldOrder.emplace(it->second.holdUntil(), it->first);
        held.insert(pending.extract(it++));
    }
    // Marks still to store go with the next batch (the run's finish, at the latest).
    const bool attempted = !pending.empty();
    const auto attempt = [&] {
        writtenThisBatch.clear();
        batchBytes = 0;
        linesCutThisBatch = 0;
        markedThisBatch.clear();
        finishedWithLines.clear();
        ok = exec(db, u"BEGIN IMMEDIATE"_s, &failure);
        if (ok) {
            const std::optional<qint64> change = SqliteSchema::nextChange(db, &failure);
            ok = change.has_value();
            batchChange = change.value_or(0);
        }
        // The ids of the change, as the UTF-8 the file holds, in a buffer kept from batch to
        // batch (a QString grown id by id, then bound as UTF-16 through a QVariant).
        std::string &changedIds = changedIdsBuffer;
        changedIds.clear();
        changedIds.reserve(size_t(pending.size() + size_t(markedThisBatch.size())) * 37);
        for (auto it = pending.begin(); ok && it != pending.end(); ++it) {
            ok = writeRun(st, it->first.id, it->second, &failure);
            if (it->second.state && isTerminal(it->second.state->status) && lastWrittenLine.contains(it->first.id))
                finishedWithLines.push_back(it->first.id);
            appendId(changedIds, it->first.id);
        }
        ok = ok && writeMarks(db, &failure);
        for (const QString &id : std::as_const(markedThisBatch))
            appendId(changedIds, id);
        if (ok) {
            st.logChange.bind(1, batchChange);
            st.logChange.bindUtf8(2, changedIds);
            ok = st.logChange.run(&failure);
        }
        ok = ok && exec(db, u"COMMIT"_s, &failure);
        if (!ok)
            rollback(db);
    };
    if (attempted) {
        attempt();
        // The disk is full: what matters most is that each run's state is kept, with a mark
        // saying where its log stops. The space the store kept aside makes room for that.
        if (!ok && isDiskFull(failure)) {
            diskFull = true;
            lastFullCheckpoint = Clock::now();
            // As many of the oldest new lines as fit: each try keeps half of what the last
            // one tried, down to none. Then, if even the states do not fit, the space kept
            // aside is given back for them (once: it is what lets the runs' finishes and
            // marks be stored after their lines filled the disk).
            while (!ok && isDiskFull(failure) && cutLogsForFullDisk())
                attempt();
            if (!ok && isDiskFull(failure) && releaseReserve())
                attempt();
        }
    }

    if (ok)
        batchCommitted(attempted, finishedWithLines);
    else
        batchFailed(failure, finalAttempt);

    if (attempted)
        finishStream = !pendingDurables.empty();
    // Called even after a failure: the engine must not wait forever for a history that
    // cannot be written; the warning batchFailed() gave says what was not kept.
    // The finisher frees the committed entries as well.
    PendingRuns garbage;
    if (ok)
        garbage.swap(pending);
    std::vector<std::function<void()>> durables;
    durables.swap(pendingDurables);
    finisher.post(std::move(durables), std::move(garbage));
}

void SqliteRunStore::Private::batchCommitted(bool attempted, const std::vector<QString> &finishedWithLines)
{
    for (auto it = writtenThisBatch.cbegin(); it != writtenThisBatch.cend(); ++it)
        lastWrittenLine.insert(it.key(), it.value());
    // A finished run gets no more lines (but for a rare straggler, which looks its last
    // line up again), so its entry would only grow the map.
    for (const QString &id : finishedWithLines)
        lastWrittenLine.remove(id);
    for (const QString &id : std::as_const(markedThisBatch))
        unmarked.remove(id);
    if (attempted && notifier->isWatched()) {
        QStringList ids;
        ids.reserve(qsizetype(pending.size()));
        for (const auto &entry : pending)
            ids << entry.first.id;
        ids += markedThisBatch;
        noteOwnChange(batchChange, ids);
    }
    // pending is emptied by the caller: the finisher frees its entries.
    failedAttempts = 0;
    bool recovered = false;
    if (attempted) {
        uncheckpointedBytes += batchBytes;
        lastWriteAt = Clock::now();
    }
    {
        std::lock_guard<std::mutex> lock(mutex);
        // Changes held back are not committed yet: flush() keeps waiting for them.
        if (held.empty())
            handledSeq = pendingSeq;
        if (attempted) {
            recovered = !available;
            available = true;
            error.clear();
        }
        lostLines += linesCutThisBatch;
    }
    if (recovered)
        qCInfo(lcStore).noquote() << u"history database %1 is writable again"_s.arg(path);
}

void SqliteRunStore::Private::batchFailed(const QSqlError &failure, bool finalAttempt)
{
    ++failedAttempts;
    qsizetype lines = 0;
    for (const auto &[key, run] : pending) {
        for (const LogLines &batch : run.lines)
            lines += batch.size();
    }
    const QString problem = describe(path, failure);
    const bool giveUp = finalAttempt || failedAttempts >= kMaxAttemptsPerBatch
                        || lines > SqliteRunStore::kMaxQueuedLines;
    const size_t runsGivenUp = giveUp ? pending.size() : 0;
    // A full disk is said once (cutLogsForFullDisk() did, or does here); the command that
    // used the history sums up what was lost (SqliteRunStore::lossReport()).
    const bool quiet = isDiskFull(failure) && fullWarned;
    if (isDiskFull(failure) && !fullWarned) {
        fullWarned = true;
        qCWarning(lcStore).noquote() << problem << u"; what does not fit is not kept"_s;
    }
    if (giveUp) {
        if (!quiet) {
            qCWarning(lcStore).noquote() << problem
                << u"; gave up storing changes of %1 runs and %2 log lines"_s.arg(pending.size()).arg(lines);
        }
        pending.clear();
        failedAttempts = 0;
    } else {
        if (!quiet)
            qCWarning(lcStore).noquote() << problem << u"; will try again"_s;
        retryAt = Clock::now() + kRetryDelay;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (giveUp) {
        droppedRanges.emplace_back(handledSeq, pendingSeq);
        handledSeq = pendingSeq;
        lostChanges += qint64(runsGivenUp);
        lostLines += lines;
        if (lostProblem.isEmpty())
            lostProblem = problem;
    }
    available = false;
    error = problem;
}

bool SqliteRunStore::Private::writeRun(Statements &st, const QString &runId, PendingRun &run, QSqlError *failure)
{
    qint64 linesSeq = 0;
    if (!run.lines.empty() && !writeLines(st, runId, run.lines, &linesSeq, failure))
        return false;
    const qint64 stored = writtenThisBatch.value(runId, 0);
    batchBytes += kRowBytes;
    if (run.state) {
        const Run &r = *run.state;
        // Kept alive until the statement has run: text is bound without a copy.
        const QString &status = runStatusName(r.status);
        static const QString noArgs = u"{}"_s;
        const QString args = r.args.isEmpty()
            ? noArgs : QString::fromUtf8(QJsonDocument(r.args).toJson(QJsonDocument::Compact));
        const QString result = jsonValueText(r.result);
        RawStatement &q = st.upsert;
        q.bind(1, r.id);
        q.bind(2, r.task);
        q.bind(3, status);
        q.bind(4, r.attempt);
        q.bind(5, r.maxAttempts);
        q.bind(6, args);
        q.bindTime(7, r.queuedAt);
        q.bindTime(8, r.startedAt);
        q.bindTime(9, r.finishedAt);
        q.bind(10, r.progress.done);
        q.bind(11, r.progress.total);
        q.bindOptional(12, r.progress.message);
        if (!result.isNull())
            q.bind(13, result);
        q.bindOptional(14, r.error.message);
        q.bindOptional(15, r.error.kind);
        q.bindOptional(16, r.error.detail);
        q.bind(17, r.error.transient ? 1 : 0);
        q.bind(18, std::max(r.logLines, stored));
        q.bindOptional(19, r.owner);
        // The row with the log stands for every event stored so far, lines included.
        q.bind(20, std::max(r.seq, linesSeq));
        q.bindTime(21, r.status == RunStatus::Retrying ? r.nextAttemptAt : QDateTime());
        // The caller's trace, or one of the history's own (kept from the first write on).
        q.bindOptional(22, r.traceId);
        if (!q.run(failure))
            return false;
    } else if (run.progress) {
        QSqlQuery &q = st.progress;
        q.bindValue(0, run.progress->done);
        q.bindValue(1, run.progress->total);
        q.bindValue(2, run.progress->message);
        q.bindValue(3, runId);
        if (!q.exec()) {
            *failure = q.lastError();
            return false;
        }
    }
    if (!run.state && stored > 0) {
        // Keeps the count of a running run current for history views.
        st.logCount.bindValue(0, stored);
        st.logCount.bindValue(1, linesSeq);
        st.logCount.bindValue(2, runId);
        if (!st.logCount.exec()) {
            *failure = st.logCount.lastError();
            return false;
        }
    }
    return true;
}

bool SqliteRunStore::Private::writeLines(Statements &st, const QString &runId, std::vector<LogLines> &batches,
                                         qint64 *maxSeq, QSqlError *failure)
{
    // Two threads may log to one run (a worker, and whoever cancels it), so numbers can
    // arrive slightly out of order.
    bool sorted = true;
    qint64 previous = std::numeric_limits<qint64>::min();
    for (const LogLines &batch : batches) {
        for (const LogLine &line : batch) {
            sorted = sorted && line.number >= previous;
            previous = line.number;
        }
    }
    if (!sorted) {
        LogLines all;
        for (LogLines &batch : batches)
            all.append(std::move(batch));
        std::stable_sort(all.begin(), all.end(), [](const LogLine &a, const LogLine &b) { return a.number < b.number; });
        batches.clear();
        batches.push_back(std::move(all));
    }

    qint64 last = 0;
    const auto known = lastWrittenLine.constFind(runId);
    if (known != lastWrittenLine.cend()) {
        last = known.value();
    } else {
        st.lastLine.bind(1, runId);
        const std::optional<qint64> stored = st.lastLine.selectInteger(failure);
        if (!stored)
            return false;
        last = *stored;
    }

    LogChunk chunk;
    auto writeChunk = [&]() -> bool {
        if (chunk.isEmpty())
            return true;
        const QByteArray data = chunk.data();
        st.insertChunk.bind(1, runId);
        st.insertChunk.bind(2, chunk.firstLine());
        st.insertChunk.bind(3, chunk.lastLine());
        st.insertChunk.bindBlob(4, data);
        st.insertChunk.bind(5, chunk.maxSeq());
        *maxSeq = std::max(*maxSeq, chunk.maxSeq());
        batchBytes += data.size();
        chunk.clear();
        return st.insertChunk.run(failure);
    };
    std::vector<const LogLine *> late;
    qint64 newest = last;
    // A run whose log lost lines to a full disk stores none after them: the stored log stays
    // the start of the run's log, and the run's row says where it stops.
    const qint64 cut = missingFrom.value(runId, 0);
    for (const LogLines &batch : batches) {
        for (const LogLine &line : batch) {
            if (cut > 0 && line.number >= cut) {
                ++linesCutThisBatch;
                continue;
            }
            if (line.number <= newest) {
                // Behind what is stored already (a straggler from an earlier batch), or a
                // repeated number, which goes the same way and replaces the first.
                late.push_back(&line);
                continue;
            }
            chunk.append(line);
            newest = line.number;
            if (chunk.isFull() && !writeChunk())
                return false;
        }
    }
    if (!writeChunk())
        return false;
    for (const LogLine *line : late) {
        if (!insertLate(st, runId, *line, failure))
            return false;
        *maxSeq = std::max(*maxSeq, line->seq);
    }
    // Nothing new (every line was past the run's cut): the run's row stays as it is.
    if (newest > last || known == lastWrittenLine.cend())
        writtenThisBatch.insert(runId, newest);
    return true;
}

bool SqliteRunStore::Private::insertLate(Statements &st, const QString &runId, const LogLine &line, QSqlError *failure)
{
    // Chunks never overlap, which is what lets readLog() start at one chunk and read on: a
    // straggler is merged into the chunk whose range it falls in, or stands alone in a gap.
    QSqlQuery &find = st.chunkAt;
    find.bindValue(0, runId);
    find.bindValue(1, line.number);
    if (!find.exec()) {
        *failure = find.lastError();
        return false;
    }
    if (!find.next()) {
        find.finish();
        const QByteArray data = LogChunk::encode({line});
        st.insertChunk.bind(1, runId);
        st.insertChunk.bind(2, line.number);
        st.insertChunk.bind(3, line.number);
        st.insertChunk.bindBlob(4, data);
        st.insertChunk.bind(5, line.seq);
        return st.insertChunk.run(failure);
    }
    const qint64 first = find.value(0).toLongLong();
    const qint64 lastInChunk = find.value(1).toLongLong();
    const QByteArray data = find.value(2).toByteArray();
    find.finish();
    LogLines merged;
    if (!LogChunk::decode(data, first, &merged)) {
        qCWarning(lcStore).noquote() << u"history database %1: log chunk %2 of run %3 is damaged; line %4 was not stored"_s
                                            .arg(path).arg(first).arg(runId).arg(line.number);
        return true;
    }
    const auto at = std::lower_bound(merged.begin(), merged.end(), line.number,
                                     [](const LogLine &l, qint64 n) { return l.number < n; });
    if (at != merged.end() && at->number == line.number)
        *at = line;
    else
        merged.insert(at, line);
    st.updateChunk.bindValue(0, std::max(lastInChunk, line.number));
    st.updateChunk.bindValue(1, LogChunk::encode(merged));
    st.updateChunk.bindValue(2, line.seq);
    st.updateChunk.bindValue(3, runId);
    st.updateChunk.bindValue(4, first);
    if (!st.updateChunk.exec()) {
        *failure = st.updateChunk.lastError();
        return false;
    }
    return true;
}

bool SqliteRunStore::Private::cutLogsForFullDisk()
{
    // The lines of this batch do not fit. Keeping the oldest lines means keeping what is
    // stored already and the first of these, and dropping the rest and every later line of
    // the same runs; dropping the oldest instead would need the space that deleting them
    // frees, which SQLite only hands back to the disk by rewriting the whole file.
    // Each call keeps the first half of each run's new lines (none below a few hundred).
    constexpr qsizetype kFewestKept = 256;
    qint64 dropped = 0;
    QStringList runs;
    for (auto &[key, run] : pending) {
        if (run.lines.empty())
            continue;
        LogLines all;
        for (LogLines &batch : run.lines)
            all.append(std::move(batch));
        run.lines.clear();
        std::stable_sort(all.begin(), all.end(), [](const LogLine &a, const LogLine &b) { return a.number < b.number; });
        const qsizetype keep = all.size() / 2 >= kFewestKept ? all.size() / 2 : 0;
        const qint64 first = all.at(keep).number;
        dropped += all.size() - keep;
        if (keep > 0) {
            all.resize(keep);
            run.lines.push_back(std::move(all));
        }
        const auto known = missingFrom.constFind(key.id);
        if (known != missingFrom.cend() && known.value() <= first)
            continue;
        missingFrom.insert(key.id, first);
        unmarked.insert(key.id, first);
        runs << key.id;
    }
    if (dropped == 0)
        return false;
    if (missingFrom.size() > kMaxMissingRuns) {
        // Only a run still writing needs its cut; one with its mark stored is in its row.
        for (auto it = missingFrom.begin(); it != missingFrom.end() && missingFrom.size() > kMaxMissingRuns / 2;) {
            if (!unmarked.contains(it.key()) && !runs.contains(it.key()))
                it = missingFrom.erase(it);
            else
                ++it;
        }
    }
    if (!fullWarned) {
        fullWarned = true;
        qCWarning(lcStore).noquote()
            << u"history database %1 is full: the logs of runs writing now are kept up to where they "
               "are, not after (each run records where its stored log stops); free space on the disk"_s.arg(path);
    }
    std::lock_guard<std::mutex> lock(mutex);
    lostLines += dropped;
    for (const QString &id : std::as_const(runs))
        lostLogRuns.insert(id);
    if (lostProblem.isEmpty())
        lostProblem = u"history database %1 is full"_s.arg(path);
    return true;
}

void SqliteRunStore::Private::dropLinesPastCuts()
{
    // On a full disk each commit takes space, even one that only counts lines: a run whose
    // new lines all go past its cut writes nothing, so the room left serves the finishes.
    qint64 dropped = 0;
    for (auto it = pending.begin(); it != pending.end();) {
        PendingRun &run = it->second;
        const qint64 cut = missingFrom.value(it->first.id, 0);
        if (cut > 0) {
            for (LogLines &batch : run.lines) {
                const qsizetype before = batch.size();
                batch.removeIf([cut](const LogLine &line) { return line.number >= cut; });
                dropped += before - batch.size();
            }
            run.lines.erase(std::remove_if(run.lines.begin(), run.lines.end(),
                                           [](const LogLines &batch) { return batch.isEmpty(); }),
                            run.lines.end());
        }
        if (!run.state && !run.progress && run.lines.empty())
            it = pending.erase(it);
        else
            ++it;
    }
    if (dropped > 0) {
        std::lock_guard<std::mutex> lock(mutex);
        lostLines += dropped;
    }
}

bool SqliteRunStore::Private::writeMarks(QSqlDatabase &db, QSqlError *failure)
{
    if (unmarked.isEmpty())
        return true;
    if (!markMissing) {
        markMissing = std::make_unique<QSqlQuery>(db);
        if (!markMissing->prepare(u"UPDATE runs SET log_missing_from = min(CASE WHEN log_missing_from = 0 "
                                  "THEN ? ELSE log_missing_from END, ?) WHERE id = ?"_s)) {
            *failure = markMissing->lastError();
            markMissing.reset();
            return false;
        }
    }
    for (auto it = unmarked.cbegin(); it != unmarked.cend(); ++it) {
        markMissing->bindValue(0, it.value());
        markMissing->bindValue(1, it.value());
        markMissing->bindValue(2, it.key());
        if (!markMissing->exec()) {
            *failure = markMissing->lastError();
            return false;
        }
        // A run whose row is not stored yet gets its mark with a later batch.
        if (markMissing->numRowsAffected() > 0)
            markedThisBatch << it.key();
    }
    return true;
}

bool SqliteRunStore::Private::releaseReserve()
{
    if (reservePath.isEmpty())
        return false;
    const bool released = ::unlink(QFile::encodeName(reservePath).constData()) == 0;
    if (released)
        qCInfo(lcStore).noquote() << u"history database %1: gave back the %2 KiB kept aside for a full disk"_s
                                         .arg(path).arg(kReserveBytes / 1024);
    reservePath.clear();
    return released;
}

void SqliteRunStore::Private::prune(QSqlDatabase &db, int days)
{
    const QDateTime cutoff = QDateTime::currentDateTimeUtc().addDays(-days);
    const int count = pruneRuns(db, path, cutoff);
    if (count > 0) {
        qCInfo(lcStore).noquote() << u"retention: removed %1 runs that finished more than %2 days ago from %3"_s
                                         .arg(count).arg(days).arg(path);
    }
}

void SqliteRunStore::Private::watchWalSize(QSqlDatabase &db, sqlite3 *handle)
{
    QSqlQuery q(db);
    const qint64 pageSize = q.exec(u"PRAGMA page_size"_s) && q.next() ? q.value(0).toLongLong() : 4096;
    q.finish();
    // The hook also takes the place of SQLite's own automatic checkpoints, which the writer's
    // connection has turned off (wal_autocheckpoint=0).
    walPageSize = pageSize;
    sqlite3_wal_hook(handle, [](void *self, sqlite3 *, const char *, int frames) {
        auto *d = static_cast<Private *>(self);
        d->walBytes = qint64(frames) * d->walPageSize;
        return SQLITE_OK;
    }, this);
    struct statvfs disk = {};
    const QByteArray directory = QFile::encodeName(QFileInfo(path).absolutePath());
    if (::statvfs(directory.constData(), &disk) == 0) {
        const qint64 freeBytes = qint64(disk.f_bavail) * qint64(disk.f_frsize);
        walBudget = std::clamp(freeBytes / 4, kSmallestWalBudget, kLargestWalBudget);
    }
}

void SqliteRunStore::Private::checkpoint(QSqlDatabase &db)
{
    // On a full disk a checkpoint cannot finish (the file must grow by what it copies), and
    // what it does copy takes the room the runs' finishes need; the WAL, where the commits
    // are, is reused only after a complete one. So it is tried once a minute until one
    // completes.
    if (diskFull) {
        if (Clock::now() - lastFullCheckpoint < kFullDiskCheckpointInterval) {
            uncheckpointedBytes = 0;
            walBytes = 0;
            return;
        }
        lastFullCheckpoint = Clock::now();
        QSqlQuery probe(db);
        // Columns: busy, frames in the WAL, frames checkpointed.
        if (probe.exec(u"PRAGMA wal_checkpoint(PASSIVE)"_s) && probe.next() && probe.value(0).toInt() == 0
            && probe.value(1).toLongLong() == probe.value(2).toLongLong()) {
            diskFull = false;
            qCInfo(lcStore).noquote() << u"history database %1 has room again"_s.arg(path);
        }
        uncheckpointedBytes = 0;
        walBytes = 0;
        return;
    }
    // The change log only has to reach the processes watching it, which look every 250 ms:
    // what is older than ten minutes goes (a change number is milliseconds times 1024).
    QSqlQuery q(db);
    const qint64 keepFrom = (QDateTime::currentMSecsSinceEpoch() - 10 * 60 * 1000) * 1024;
    if (!q.exec(u"DELETE FROM changes WHERE seq < %1"_s.arg(keepFrom)))
        qCDebug(lcStore).noquote() << describe(path, q.lastError()) << u"(trimming the change log)"_s;
    // PASSIVE never waits: what readers still use stays in the WAL for the next time.
    if (!q.exec(u"PRAGMA wal_checkpoint(PASSIVE)"_s))
        qCDebug(lcStore).noquote() << describe(path, q.lastError()) << u"(checkpoint)"_s;
    uncheckpointedBytes = 0;
    walBytes = 0;
}

// SqliteRunStore -------------------------------------------------------------------------

SqliteRunStore::SqliteRunStore(std::unique_ptr<Private> dd)
    : d(std::move(dd))
{
}

SqliteRunStore::~SqliteRunStore()
{
    // Queries not started yet are dropped (their futures canceled); running ones end. The
    // read connections close before the writer's, so the writer is the history's last
    // connection in this process and folds the WAL into the file as it closes.
    d->readerPool->clear();
    d->readerPool->waitForDone();
    d->readerPool.reset();
    readConnections().release(d->serial);
    {
        std::lock_guard<std::mutex> lock(g_liveMutex);
        g_liveStores.erase(d->serial);
    }
    d->stop();
    QString problem;
    if (d->ownerRegistered && !HistoryOwners::remove(d->ownersPath, {d->ownerEntry}, &problem))
        qCWarning(lcStore).noquote() << problem << u"; the next start will check the history for damage"_s;
}

QString SqliteRunStore::fileName()
{
    return u"history.sqlite3"_s;
}

namespace {

// Makes Taskdeck's own files in the data directory private again, with one warning for all.
void tightenDataFiles(const QDir &dir)
{
    QStringList changed;
    QStringList paths{dir.absolutePath()};
    const QString history = SqliteRunStore::fileName();
    for (const QString &name : QStringList{history, history + u"-wal"_s, history + u"-shm"_s, HistoryOwners::fileName()})
        paths << dir.absoluteFilePath(name);
    const QDir backups(dir.absoluteFilePath(u"backups"_s));
    if (backups.exists()) {
        paths << backups.absolutePath();
        for (const QString &name : backups.entryList({u"taskdeck-history-*"_s}, QDir::Files | QDir::Hidden))
            paths << backups.absoluteFilePath(name);
    }
    for (const QString &path : std::as_const(paths)) {
        if (const QString change = PrivateFiles::tighten(path); !change.isEmpty())
            changed << change;
    }
    if (!changed.isEmpty()) {
        qCWarning(lcStore).noquote() << u"others could read Taskdeck's history files; made them private (owner "
                                        "only): %1"_s.arg(changed.join(u", "_s));
    }
}

} // namespace

namespace {

// What of the history cannot be written by this process: the folder, the file, its -wal and
// -shm files (one left 0444 by another user or a restore, say). Empty when all can.
QString unwritableParts(const QDir &dir, const QString &path)
{
    QStringList parts;
    const auto check = [&parts](const QString &file, bool mustExist) {
        const QByteArray name = QFile::encodeName(file);
        struct stat st {};
        if (::stat(name.constData(), &st) != 0) {
            if (mustExist)
                parts << u"%1 is missing"_s.arg(file);
            return;
        }
        // AT_EACCESS: the effective ids and capabilities, which decide what open() may do
        // (access() would ask with root's full capabilities).
        if (::faccessat(AT_FDCWD, name.constData(), W_OK, AT_EACCESS) != 0) {
            parts << u"%1 is not writable (mode %2%3)"_s.arg(
                    file, PrivateFiles::modeText(st.st_mode),
                    errno == EROFS ? u", read-only file system"_s : QString());
        }
    };
    check(dir.absolutePath(), true);
    check(path, false);
    check(path + u"-wal"_s, false);
    check(path + u"-shm"_s, false);
    return parts.join(u"; "_s);
}

// The space kept aside for a full disk (see kReserveBytes): true when the file is there, whole.
bool makeReserve(const QString &file)
{
    const QFileInfo info(file);
    if (info.isFile() && info.size() == kReserveBytes)
        return true;
    PrivateFiles::createFile(file);
    QFile reserve(file);
    if (info.exists() && !info.isFile())
        return false;
    // Written, not only sized: a file with a hole would take no space to give back.
    const QByteArray zeros(64 * 1024, '\0');
    bool ok = reserve.open(QIODevice::WriteOnly | QIODevice::Truncate);
    for (qint64 written = 0; ok && written < kReserveBytes; written += zeros.size())
        ok = reserve.write(zeros) == zeros.size();
    ok = ok && reserve.flush();
    reserve.close();
    if (!ok)
        reserve.remove();
    return ok;
}

} // namespace

std::unique_ptr<SqliteRunStore> SqliteRunStore::openReadOnly(const QString &path, const QString &why,
                                                             QString *error)
{
    auto d = std::make_unique<Private>(path);
    d->readOnly = why;
    // Without a -wal or -shm to read through (and no way to make them), SQLite can read the
    // file only as immutable; nobody can be writing it then, as nobody could make them.
    d->immutable = !QFileInfo::exists(path + u"-wal"_s) && !QFileInfo::exists(path + u"-shm"_s);
    d->notifier = std::make_unique<RunStoreNotifier>();
    d->notifier->setWatchedCallback([p = d.get()] {
        std::lock_guard<std::mutex> lock(p->mutex);
        p->writerWake.notify_one();
    });
    d->readerPool = std::make_unique<QThreadPool>();
    d->readerPool->setMaxThreadCount(kReaderThreads);
    d->readerPool->setExpiryTimeout(-1);
    d->writer = std::thread([p = d.get()] { p->writerMain(); });
    QString problem;
    {
        std::unique_lock<std::mutex> lock(d->mutex);
        d->progressMade.wait(lock, [&] { return d->initDone; });
        problem = d->initError;
    }
    if (!problem.isEmpty()) {
        d->stop();
        if (error)
            *error = problem + u" (opened read-only because "_s + why + u')';
        return nullptr;
    }
    qCInfo(lcStore).noquote() << u"history database %1 is only read: %2"_s.arg(path, why);
    {
        std::lock_guard<std::mutex> lock(g_liveMutex);
        g_liveStores.insert(d->serial);
    }
    return std::unique_ptr<SqliteRunStore>(new SqliteRunStore(std::move(d)));
}

std::unique_ptr<SqliteRunStore> SqliteRunStore::open(const QString &dataDir, QString *error, OpenMode mode)
{
    auto fail = [error](const QString &message) {
        if (error)
            *error = message;
        return nullptr;
    };
    if (dataDir.isEmpty())
        return fail(u"no data directory was given for the history database"_s);
    const QDir dir(dataDir);
    QString problem;
    // Looked at before anything is opened: SQLite removes a -shm it could not use as it closes.
    const QString unwritable = QFileInfo(dir.absolutePath()).isDir()
            ? unwritableParts(dir, dir.absoluteFilePath(fileName()))
            : QString();
    if (mode == OpenMode::ReadOnlyWhenUnwritable && !unwritable.isEmpty()
        && QFileInfo(dir.absoluteFilePath(fileName())).isFile()) {
        return openReadOnly(dir.absoluteFilePath(fileName()), unwritable, error);
    }
    if (!PrivateFiles::makeDirectory(dir.absolutePath(), &problem))
        return fail(u"cannot create data directory %1 for the history database (%2)"_s.arg(dir.absolutePath(), problem));
    const QString path = dir.absoluteFilePath(fileName());
    if (QFileInfo(path).isDir())
        return fail(u"history database %1 is a directory, not a file; move it aside to start a new history"_s.arg(path));
    tightenDataFiles(dir);
    // SQLite gives the -wal and -shm files the mode of the database file: a new history is
    // made private before SQLite writes its first byte.
    PrivateFiles::createFile(path);

    auto d = std::make_unique<Private>(path);
    QString ownersProblem;
    d->ownerRegistered = HistoryOwners::add(d->ownersPath, d->ownerEntry, &d->goneOwners, &ownersProblem);
    if (!d->ownerRegistered) {
        // Whether the last user closed the history cleanly cannot be told: check it.
        d->goneOwners = {ownersProblem};
    }
    d->fullCheck = !d->goneOwners.isEmpty();
    if (makeReserve(path + u"-reserve"_s))
        d->reservePath = path + u"-reserve"_s;
    d->notifier = std::make_unique<RunStoreNotifier>();
    d->notifier->setWatchedCallback([p = d.get()] {
        // Under the mutex, so the wake-up cannot fall between the writer's look and its wait.
        std::lock_guard<std::mutex> lock(p->mutex);
        p->writerWake.notify_one();
    });
    d->readerPool = std::make_unique<QThreadPool>();
    d->readerPool->setMaxThreadCount(kReaderThreads);
    // Each reader thread keeps its read connection for as long as it lives.
    d->readerPool->setExpiryTimeout(-1);
    d->writer = std::thread([p = d.get()] { p->writerMain(); });
    {
        std::unique_lock<std::mutex> lock(d->mutex);
        d->progressMade.wait(lock, [&] { return d->initDone; });
        problem = d->initError;
    }
    if (!problem.isEmpty()) {
        d->stop();
        // The entries of processes that died stay, so the next start checks again.
        QString ignored;
        if (ownersProblem.isEmpty())
            HistoryOwners::remove(d->ownersPath, {d->ownerEntry}, &ignored);
        // A history on a full disk can still be read, by the commands that only read.
        if (mode == OpenMode::ReadOnlyWhenUnwritable && problem.contains(kDiskFullWords) && QFileInfo(path).isFile())
            return openReadOnly(path, u"the disk is full"_s, error);
        // SQLite's own words do not say which of the files it could not write.
        if (!unwritable.isEmpty())
            problem += u" ("_s + unwritable + u')';
        return fail(problem);
    }
    if (!ownersProblem.isEmpty()) {
        qCWarning(lcStore).noquote() << ownersProblem
                                     << u"; the history is checked for damage at every start until this is fixed"_s;
    } else if (d->fullCheck) {
        QString ignored;
        HistoryOwners::remove(d->ownersPath, d->goneOwners, &ignored);
    }
    {
        std::lock_guard<std::mutex> lock(g_liveMutex);
        g_liveStores.insert(d->serial);
    }
    return std::unique_ptr<SqliteRunStore>(new SqliteRunStore(std::move(d)));
}

void SqliteRunStore::startRetention(int days, std::chrono::milliseconds interval)
{
    if (!d->readOnly.isEmpty())
        return;
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        d->retentionDays = std::max(0, days);
        d->retentionInterval = std::max<std::chrono::milliseconds>(interval, 1s);
        if (d->retentionDays > 0)
            d->nextPruneAt = Clock::now();
        else
            d->nextPruneAt.reset();
    }
    d->writerWake.notify_one();
}

void SqliteRunStore::recordQueued(const Run &run)
{
    // Copied before the lock: the engine's threads record at once, and a copy of a run
    // takes longer than the rest of what they do under it.
    Run copy = run;
    const RunKey key(run.id);
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        bool wasEmpty = false;
        if (PendingRun *pending = d->changeLocked(key, &wasEmpty)) {
            pending->setState(std::move(copy));
            d->notedLocked(wasEmpty, false);
            return;
        }
    }
    d->warnNotStored(run.id);
}

void SqliteRunStore::recordStarted(const Run &run)
{
    recordQueued(run);
}

void SqliteRunStore::recordRetrying(const Run &run)
{
    recordQueued(run);
}

void SqliteRunStore::recordProgress(const QString &runId, const Progress &progress)
{
    const RunKey key(runId);
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        bool wasEmpty = false;
        if (PendingRun *pending = d->changeLocked(key, &wasEmpty)) {
            pending->setProgress(progress);
            d->notedLocked(wasEmpty, false);
            return;
        }
    }
    d->warnNotStored(runId);
}

void SqliteRunStore::recordLog(const QString &runId, const LogLines &lines)
{
    if (lines.isEmpty())
        return;
    const RunKey key(runId);
    {
        std::unique_lock<std::mutex> lock(d->mutex);
        if (d->queuedLines >= kMaxQueuedLines && !d->stopping && !d->writerGone) {
            const bool room = d->spaceFree.wait_for(lock, kBackpressureWait, [this] {
                return d->queuedLines < kMaxQueuedLines || d->stopping || d->writerGone;
            });
            if (!room && !d->backpressureWarned) {
                d->backpressureWarned = true;
                qCWarning(lcStore).noquote() << u"history database %1 is not keeping up; log lines are piling up in memory"_s.arg(d->path);
            }
        }
        bool wasEmpty = false;
        if (PendingRun *pending = d->changeLocked(key, &wasEmpty)) {
            d->queuedLines += lines.size();
            pending->addLines(lines);
            d->notedLocked(wasEmpty, false);
            return;
        }
    }
    // The writer is gone, before or while this waited for room.
    qCWarning(lcStore).noquote() << u"history database %1 is closed; %2 log lines of run %3 were not stored"_s
                                        .arg(d->path).arg(lines.size()).arg(runId);
}

void SqliteRunStore::recordFinished(const Run &run, std::function<void()> durable)
{
    Run copy = run; // before the lock, as in recordQueued()
    const RunKey key(run.id);
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        bool wasEmpty = false;
        if (PendingRun *pending = d->changeLocked(key, &wasEmpty)) {
            pending->setState(std::move(copy));
            d->incomingDurables.push_back(std::move(durable));
            d->finishNotedLocked(wasEmpty);
            return;
        }
    }
    d->warnNotStored(run.id);
    if (durable)
        durable();
}

bool SqliteRunStore::isAvailable() const
{
    std::lock_guard<std::mutex> lock(d->mutex);
    return d->available && !d->writerGone;
}

SqliteRunStore::Losses SqliteRunStore::losses() const
{
    std::lock_guard<std::mutex> lock(d->mutex);
    Losses losses;
    losses.logLines = d->lostLines;
    losses.runsWithIncompleteLog = d->lostLogRuns.size();
    losses.changes = d->lostChanges;
    losses.problem = d->lostProblem;
    return losses;
}

bool SqliteRunStore::isReadOnly() const
{
    return !d->readOnly.isEmpty();
}

QString SqliteRunStore::readOnlyReason() const
{
    return d->readOnly;
}

QString SqliteRunStore::errorString() const
{
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->writerGone && d->error.isEmpty())
        return u"history database %1 is closed"_s.arg(d->path);
    return d->error;
}

QString SqliteRunStore::location() const
{
    return d->path;
}

bool SqliteRunStore::flush(std::chrono::milliseconds timeout)
{
    return d->flush(timeout);
}

// Queries ---------------------------------------------------------------------------------
// Each runs on a read connection of the calling thread: the caller's for the synchronous
// methods, a reader thread's for the asynchronous ones.

namespace {

std::optional<Run> selectRun(const QSqlDatabase &db, const QString &path, const QString &id)
{
    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT "_s + runColumns() + u" FROM runs WHERE id = ?"_s);
    q.addBindValue(id);
    if (!q.exec()) {
        qCWarning(lcStore).noquote() << describe(path, q.lastError());
        return std::nullopt;
    }
    if (!q.next())
        return std::nullopt;
    return runFromRecord(q);
}

RunPage selectRuns(QSqlDatabase db, const QString &path, const RunQuery &query)
{
    RunPage page;
    const RunFilter filter = runFilter(query);
    const QString &where = filter.where;
    const QVariantList &values = filter.values;
    const int limit = std::clamp(query.limit, 0, kMaxRunsPerPage);
    const int offset = std::max(0, query.offset);

    // One read transaction, so the total and the page describe the same moment.
    db.transaction();
    auto done = qScopeGuard([&db] { db.commit(); });
    QSqlQuery count(db);
    count.setForwardOnly(true);
    count.prepare(u"SELECT count(*) FROM runs"_s + where);
    for (const QVariant &v : std::as_const(values))
        count.addBindValue(v);
    if (!count.exec() || !count.next()) {
        qCWarning(lcStore).noquote() << describe(path, count.lastError());
        return page;
    }
    page.total = count.value(0).toLongLong();
    count.finish();
    if (limit == 0 || offset >= page.total)
        return page;

    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT "_s + runColumns() + u" FROM runs"_s + where
              + u" ORDER BY queued_at DESC, id DESC LIMIT ? OFFSET ?"_s);
    for (const QVariant &v : std::as_const(values))
        q.addBindValue(v);
    q.addBindValue(limit);
    q.addBindValue(offset);
    if (!q.exec()) {
        qCWarning(lcStore).noquote() << describe(path, q.lastError());
        return page;
    }
    const RunColumns columns(q.record());
    while (q.next())
        page.runs << columns.read(q);
    return page;
}

/*!
 * Decodes the chunks \a q selected (first_line, data; in order) into \a lines until it holds
 * \a maxLines, keeping lines numbered \a fromLine or later whose seq is above \a afterSeq.
 */
void decodeChunks(QSqlQuery &q, const QString &path, const QString &runId, qint64 fromLine, qint64 afterSeq,
                  int maxLines, LogLines *lines)
{
    while (lines->size() < maxLines && q.next()) {
        const qint64 first = q.value(0).toLongLong();
        const qsizetype before = lines->size();
        if (!LogChunk::decode(q.value(1).toByteArray(), first, lines, fromLine)) {
            qCWarning(lcStore).noquote() << u"history database %1: log chunk %2 of run %3 is damaged; the log "
                                            "is cut short there"_s.arg(path).arg(first).arg(runId);
            break;
        }
        if (afterSeq >= 0) {
            lines->erase(std::remove_if(lines->begin() + before, lines->end(),
                                        [afterSeq](const LogLine &line) { return line.seq <= afterSeq; }),
                         lines->end());
        }
    }
    if (lines->size() > maxLines)
        lines->resize(maxLines);
}

LogLines selectLog(const QSqlDatabase &db, const QString &path, const QString &runId, qint64 fromLine, int maxLines)
{
    LogLines lines;
    // Chunks do not overlap: start at the last chunk that begins at or before fromLine (it
    // may hold it) and read on in order.
    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT first_line, data FROM log_chunks WHERE run_id = ? AND first_line >= "
              "coalesce((SELECT max(first_line) FROM log_chunks WHERE run_id = ? AND first_line <= ?), ?) "
              "ORDER BY first_line"_s);
    q.addBindValue(runId);
    q.addBindValue(runId);
    q.addBindValue(fromLine);
    q.addBindValue(fromLine);
    if (!q.exec()) {
        qCWarning(lcStore).noquote() << describe(path, q.lastError());
        return lines;
    }
    decodeChunks(q, path, runId, fromLine, -1, maxLines, &lines);
    return lines;
}

LogLines selectLogAfterSeq(const QSqlDatabase &db, const QString &path, const QString &runId, qint64 afterSeq,
                           int maxLines)
{
    LogLines lines;
    // A line's seq grows with its number, so the first chunk whose highest seq is past
    // afterSeq holds the first line wanted (log_chunks_seq finds it), and the rest follow.
    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT first_line, data FROM log_chunks WHERE run_id = ? AND first_line >= "
              "(SELECT first_line FROM log_chunks WHERE run_id = ? AND last_seq > ? ORDER BY last_seq LIMIT 1) "
              "ORDER BY first_line"_s);
    q.addBindValue(runId);
    q.addBindValue(runId);
    q.addBindValue(afterSeq);
    if (!q.exec()) {
        qCWarning(lcStore).noquote() << describe(path, q.lastError());
        return lines;
    }
    decodeChunks(q, path, runId, 0, afterSeq, maxLines, &lines);
    return lines;
}

QString selectTraceId(const QSqlDatabase &db, const QString &path, const QString &runId)
{
    QSqlQuery q(db);
    q.setForwardOnly(true);
    q.prepare(u"SELECT trace_id FROM runs WHERE id = ?"_s);
    q.addBindValue(runId);
    if (!q.exec()) {
        qCWarning(lcStore).noquote() << describe(path, q.lastError());
        return {};
    }
    return q.next() ? q.value(0).toString() : QString();
}

} // namespace

std::optional<Run> SqliteRunStore::findRun(const QString &id)
{
    return d->query([&](const QSqlDatabase &db) { return selectRun(db, d->path, id); }, std::optional<Run>());
}

RunPage SqliteRunStore::findRuns(const RunQuery &query)
{
    return d->query([&](const QSqlDatabase &db) { return selectRuns(db, d->path, query); }, RunPage());
}

LogLines SqliteRunStore::readLog(const QString &runId, qint64 fromLine, int maxLines)
{
    if (maxLines <= 0)
        return {};
    maxLines = std::min(maxLines, kMaxLogPage);
    fromLine = std::max<qint64>(1, fromLine);
    return d->query([&](const QSqlDatabase &db) { return selectLog(db, d->path, runId, fromLine, maxLines); },
                    LogLines());
}

LogLines SqliteRunStore::readLogAfterSeq(const QString &runId, qint64 afterSeq, int maxLines)
{
    if (maxLines <= 0)
        return {};
    maxLines = std::min(maxLines, kMaxLogPage);
    afterSeq = std::max<qint64>(0, afterSeq);
    return d->query([&](const QSqlDatabase &db) { return selectLogAfterSeq(db, d->path, runId, afterSeq, maxLines); },
                    LogLines());
}

QString SqliteRunStore::traceId(const QString &runId)
{
    return d->query([&](const QSqlDatabase &db) { return selectTraceId(db, d->path, runId); }, QString());
}

QFuture<std::optional<Run>> SqliteRunStore::findRunAsync(const QString &id)
{
    return d->queryAsync<std::optional<Run>>([p = d.get(), id](const QSqlDatabase &db) {
        return selectRun(db, p->path, id);
    });
}

QFuture<CancelRequest> SqliteRunStore::requestCancelAsync(const QString &runId)
{
    // No shared queue: a run this process does not run is another process's to cancel.
    return d->queryAsync<CancelRequest>([p = d.get(), runId](const QSqlDatabase &db) {
        return CancelRequest::outsideQueue(selectRun(db, p->path, runId), false);
    });
}

QFuture<RunPage> SqliteRunStore::findRunsAsync(const RunQuery &query)
{
    return d->queryAsync<RunPage>([p = d.get(), query](const QSqlDatabase &db) {
        return selectRuns(db, p->path, query);
    });
}

QFuture<LogLines> SqliteRunStore::readLogAsync(const QString &runId, qint64 fromLine, int maxLines)
{
    maxLines = std::clamp(maxLines, 0, kMaxLogPage);
    fromLine = std::max<qint64>(1, fromLine);
    return d->queryAsync<LogLines>([p = d.get(), runId, fromLine, maxLines](const QSqlDatabase &db) {
        return maxLines > 0 ? selectLog(db, p->path, runId, fromLine, maxLines) : LogLines();
    });
}

QFuture<LogLines> SqliteRunStore::readLogAfterSeqAsync(const QString &runId, qint64 afterSeq, int maxLines)
{
    maxLines = std::clamp(maxLines, 0, kMaxLogPage);
    afterSeq = std::max<qint64>(0, afterSeq);
    return d->queryAsync<LogLines>([p = d.get(), runId, afterSeq, maxLines](const QSqlDatabase &db) {
        return maxLines > 0 ? selectLogAfterSeq(db, p->path, runId, afterSeq, maxLines) : LogLines();
    });
}

RunStoreNotifier *SqliteRunStore::notifier()
{
    return d->notifier.get();
}

QStringList SqliteRunStore::checkIntegrity()
{
    QString problem;
    const QSqlDatabase db = d->reader(&problem);
    if (!problem.isEmpty())
        return {problem};
    QSqlQuery q(db);
    q.setForwardOnly(true);
    if (!q.exec(u"PRAGMA integrity_check"_s))
        return {describe(d->path, q.lastError())};
    QStringList problems;
    qsizetype count = 0;
    while (q.next()) {
        const QString row = q.value(0).toString();
        if (row == "ok"_L1)
            continue;
        if (++count <= kMaxProblemsShown)
            problems << u"history database %1: %2"_s.arg(d->path, row.simplified());
    }
    if (q.lastError().isValid())
        problems << describe(d->path, q.lastError());
    if (count > kMaxProblemsShown)
        problems << u"history database %1: %2 more problems"_s.arg(d->path).arg(count - kMaxProblemsShown);
    return problems;
}

int SqliteRunStore::recoverInterrupted()
{
    if (!d->readOnly.isEmpty())
        return 0; // nothing can be marked in a history that is only read
    const QString path = d->path;
    return d->runJob([p = d.get(), path](QSqlDatabase &db) -> int {
        QSqlError failure;
        if (!exec(db, u"BEGIN IMMEDIATE"_s, &failure)) {
            qCWarning(lcStore).noquote() << describe(path, failure) << u"; interrupted runs were not recovered"_s;
            return -1;
        }
        struct Orphan { QString id; QString status; QString owner; QString message; };
        std::vector<Orphan> orphans;
        QStringList deadOwners;
        QSqlQuery select(db);
        select.setForwardOnly(true);
        bool ok = select.exec(u"SELECT id, status, owner FROM runs WHERE "_s + active());
        while (ok && select.next()) {
            Orphan o{select.value(0).toString(), select.value(1).toString(), select.value(2).toString(), {}};
            const std::optional<RunOwner> owner = RunOwner::parse(o.owner);
            if (!owner) {
                // Recorded before runs carried their owner (or by something else entirely):
                // nothing can still be running it under this history's control.
                o.message = u"the Taskdeck process that ran it is unknown and gone; this run was %1 and "
                            "was marked interrupted on restart"_s.arg(o.status);
            } else if (!owner->isOnThisHost() || owner->isAlive()) {
                // Another machine's, a live process's, or one in another PID namespace (a
                // container), whose pid means nothing here: its own recovers it.
                continue;
            } else if (owner->isFromEarlierBoot()) {
                o.message = u"Taskdeck process %1 on host %2 was running this run when the machine restarted "
                            "(it was %3); it was marked interrupted"_s.arg(QString::number(owner->pid()), owner->host(), o.status);
            } else {
                o.message = u"Taskdeck process %1 on host %2 stopped while this run was %3; it was marked "
                            "interrupted on restart"_s.arg(QString::number(owner->pid()), owner->host(), o.status);
                // Commands it started may still run (its guards were killed with it, say).
                if (!deadOwners.contains(o.owner)) {
                    deadOwners << o.owner;
                    if (const int ended = RunOwner::endLeftovers(o.owner); ended > 0) {
                        qCWarning(lcStore).noquote()
                            << u"ended %1 processes left running by Taskdeck process %2 on host %3"_s
                                       .arg(ended).arg(owner->pid()).arg(owner->host());
                    }
                }
            }
            orphans.push_back(std::move(o));
        }
        if (!ok)
            failure = select.lastError();
        select.finish();

        int count = 0;
        std::optional<qint64> change;
        if (ok && !orphans.empty()) {
            change = SqliteSchema::nextChange(db, &failure);
            ok = change.has_value();
        }
        QSqlQuery update(db);
        ok = ok && update.prepare(
            u"UPDATE runs SET status = ?, finished_at = ?, error_message = ?, error_kind = 'Interrupted', "
            "error_detail = ?, error_transient = 0, "
            "log_lines = max(log_lines, coalesce((SELECT max(last_line) FROM log_chunks WHERE run_id = runs.id), 0)) "
            "WHERE id = ? AND owner = ? AND "_s + active());
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        for (const Orphan &o : orphans) {
            if (!ok)
                break;
            update.bindValue(0, runStatusName(RunStatus::Interrupted));
            update.bindValue(1, now);
            update.bindValue(2, o.message);
            update.bindValue(3, u"owner: %1\nstatus when found: %2"_s.arg(o.owner.isEmpty() ? u"(none)"_s : o.owner, o.status));
            update.bindValue(4, o.id);
            update.bindValue(5, o.owner);
            ok = update.exec();
            count += ok ? update.numRowsAffected() : 0;
        }
        if (!ok && !failure.isValid())
            failure = update.lastError();
        if (ok && count > 0) {
            QStringList changed;
            for (const Orphan &o : orphans)
                changed << o.id;
            QSqlQuery log(db);
            ok = log.prepare(u"INSERT INTO changes (seq, run_ids) VALUES (?, ?)"_s);
            log.addBindValue(change.value_or(0));
            log.addBindValue(changed.join(u','));
            ok = ok && log.exec();
            if (!ok)
                failure = log.lastError();
        }
        ok = ok && exec(db, u"COMMIT"_s, &failure);
        if (!ok) {
            rollback(db);
            qCWarning(lcStore).noquote() << describe(path, failure) << u"; interrupted runs were not recovered"_s;
            return -1;
        }
        if (count > 0) {
            qCInfo(lcStore).noquote() << u"marked %1 runs of stopped processes interrupted in %2"_s.arg(count).arg(path);
            QStringList ids;
            for (const Orphan &o : orphans)
                ids << o.id;
            p->noteOwnChange(change.value_or(0), ids);
        }
        return count;
    });
}

int SqliteRunStore::pruneFinishedBefore(const QDateTime &cutoff)
{
    if (!cutoff.isValid())
        return 0;
    const QString path = d->path;
    return d->runJob([path, cutoff](QSqlDatabase &db) { return pruneRuns(db, path, cutoff); });
}

} // namespace taskdeck
