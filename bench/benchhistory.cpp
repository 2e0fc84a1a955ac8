// SPDX-License-Identifier: MIT
// The cost of keeping history: no-op runs through TaskEngine::start with the SQLite run
// store as the engine's recorder, against the floor under any store of one row per run:
// the same rows inserted through SQLite's C API with no engine at all. The same runs with no
// recorder are reported beside them.

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QThread>

#include "benchsupport.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "runrecorder.h"
#include "taskregistry.h"

#include <sqlite3.h>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

constexpr int kRuns = 100000;
constexpr int kWarmupRuns = 2000;
constexpr int kRounds = 3;
// The store's time against SQLite's own work for the same rows (sqliteOnly()).
constexpr double kTargetRatio = 2.0;

/*! First start() until the last runFinished has arrived (and, with a store, is committed:
 *  the engine shows a finish only once the store made it durable). Adds the process's CPU
 *  time over the round to \a cpuMs when given. */
double round(TaskEngine &engine, int count, QList<double> *cpuMs = nullptr)
{
    const double cpuBefore = bench::processCpuMs();
    int finished = 0;
    QEventLoop loop;
    const auto connection = QObject::connect(&engine, &TaskEngine::runFinished, &loop, [&](const Run &run) {
        if (run.status != RunStatus::Succeeded)
            qFatal("a run did not succeed: %s", qPrintable(run.error.message));
        if (++finished == count)
            loop.quit();
    });
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < count; ++i) {
        if (!engine.start(u"noop"_s, {}).ok())
            qFatal("start failed");
    }
    if (finished < count)
        loop.exec();
    const double ms = double(timer.nsecsElapsed()) / 1e6;
    if (cpuMs)
        *cpuMs << bench::processCpuMs() - cpuBefore;
    QObject::disconnect(connection);
    return ms;
}

/*! Runs \a sql on the floors' own connections; a benchmark cannot go on without it. */
void execOrDie(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        qFatal("%s: %s", sql, sqlite3_errmsg(db));
}

/*! Steps \a statement to its end and resets it for the next row. */
void stepOrDie(sqlite3 *db, sqlite3_stmt *statement)
{
    if (sqlite3_step(statement) != SQLITE_DONE)
        qFatal("insert: %s", sqlite3_errmsg(db));
    sqlite3_reset(statement);
}

constexpr int kIdSize = 64;

/*! The \a i-th of the floors' run ids: version 7 layout, milliseconds from \a t0 on, then a
 *  counter within the millisecond, as the engine makes them. */
void floorRunId(char (&id)[kIdSize], qint64 t0, int i)
{
    const auto ms = static_cast<unsigned long long>(t0 + i / 64);
    std::snprintf(id, sizeof id, "%08llx-%04llx-7%03x-8000-%012x", ms >> 16, ms & 0xffff,
                  static_cast<unsigned>(i % 64), static_cast<unsigned>(i));
}

/*!
 * The floor under the store: the same number of finished runs inserted into a history file
 * of the same schema through SQLite's C API, in transactions of 1,000, with ids in creation
 * order as the engine makes them. No engine, no queue, no coalescing: only SQLite's work.
 */
double sqliteOnly(int count, QList<double> *cpuMs = nullptr)
{
    QTemporaryDir dir;
    QString error;
    QString file;
    {
        auto store = SqliteRunStore::open(dir.path(), &error); // creates the current schema
        if (!store)
            qFatal("cannot open the store: %s", qPrintable(error));
        file = store->location();
    }
    sqlite3 *db = nullptr;
    if (sqlite3_open(file.toUtf8().constData(), &db) != SQLITE_OK)
        qFatal("cannot open %s", qPrintable(file));
    const auto run = [db](const char *sql) { execOrDie(db, sql); };
    run("PRAGMA synchronous=NORMAL");
    sqlite3_stmt *insert = nullptr;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs (id, task, status, attempt, max_attempts, args, queued_at, "
                           "started_at, finished_at, result, log_lines, owner, trace_id) "
                           "VALUES (?, 'noop', 'succeeded', 1, 1, '{}', ?, ?, ?, 'null', 0, ?, "
                           "lower(hex(randomblob(16))))",
                           -1, &insert, nullptr) != SQLITE_OK) {
        qFatal("prepare: %s", sqlite3_errmsg(db));
    }
    const qint64 t0 = QDateTime::currentMSecsSinceEpoch();
    const QByteArray owner = "4242@bench#1";
    const double cpuBefore = bench::processCpuMs();
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < count; ++i) {
        if (i % 1000 == 0)
            run(i == 0 ? "BEGIN IMMEDIATE" : "COMMIT; BEGIN IMMEDIATE");
        char id[kIdSize];
        floorRunId(id, t0, i);
        sqlite3_bind_text(insert, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(insert, 2, t0 + i);
        sqlite3_bind_int64(insert, 3, t0 + i);
        sqlite3_bind_int64(insert, 4, t0 + i + 1);
        sqlite3_bind_text(insert, 5, owner.constData(), int(owner.size()), SQLITE_STATIC);
        stepOrDie(db, insert);
    }
    run("COMMIT");
    const double ms = double(timer.nsecsElapsed()) / 1e6;
    if (cpuMs)
        *cpuMs << bench::processCpuMs() - cpuBefore;
    sqlite3_finalize(insert);
    sqlite3_close(db);
    return ms;
}

/*!
 * The floor of another layout, for comparison only (the store does not use it): the same
 * finished runs with 1,000 of them to a row, each as one line of its fields, in a table of
 * their own, and, with \a idIndex, one index entry per run to find it by id. One SQLite row
 * per run costs SQLite's per-row work for every run; this layout pays it once per 1,000.
 */
double sqliteBatched(int count, bool idIndex)
{
    constexpr int kRunsPerRow = 1000;
    QTemporaryDir dir;
    sqlite3 *db = nullptr;
    if (sqlite3_open(dir.filePath(u"batched.sqlite3"_s).toUtf8().constData(), &db) != SQLITE_OK)
        qFatal("cannot create a database in %s", qPrintable(dir.path()));
    const auto run = [db](const char *sql) { execOrDie(db, sql); };
    // The store's settings.
    run("PRAGMA page_size=16384");
    run("PRAGMA journal_mode=WAL");
    run("PRAGMA synchronous=NORMAL");
    run("PRAGMA wal_autocheckpoint=0");
    run("CREATE TABLE run_rows (row INTEGER PRIMARY KEY, first_queued INTEGER NOT NULL, "
        "last_queued INTEGER NOT NULL, runs INTEGER NOT NULL, data BLOB NOT NULL)");
    run("CREATE TABLE run_ids (id TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID");
    sqlite3_stmt *insertRow = nullptr;
    sqlite3_stmt *insertId = nullptr;
    if (sqlite3_prepare_v2(db, "INSERT INTO run_rows (row, first_queued, last_queued, runs, data) "
                               "VALUES (?, ?, ?, ?, ?)", -1, &insertRow, nullptr) != SQLITE_OK
        || sqlite3_prepare_v2(db, "INSERT INTO run_ids (id, row) VALUES (?, ?)", -1, &insertId, nullptr)
               != SQLITE_OK) {
        qFatal("prepare: %s", sqlite3_errmsg(db));
    }
    const qint64 t0 = QDateTime::currentMSecsSinceEpoch();
    std::string data;
    QElapsedTimer timer;
    timer.start();
    for (int first = 0; first < count; first += kRunsPerRow) {
        const int last = std::min(count, first + kRunsPerRow) - 1;
        const qint64 row = first / kRunsPerRow + 1;
        run("BEGIN IMMEDIATE");
        data.clear();
        for (int i = first; i <= last; ++i) {
            char id[kIdSize];
            floorRunId(id, t0, i);
            char line[256];
            const int size = std::snprintf(line, sizeof line,
                                           "%s\tnoop\tsucceeded\t1\t1\t{}\t%lld\t%lld\t%lld\tnull\t0\t"
                                           "4242@bench#1\t%016llx%016llx\n",
                                           id, t0 + i, t0 + i, t0 + i + 1,
                                           static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ULL,
                                           static_cast<unsigned long long>(t0 + i));
            data.append(line, size_t(size));
            if (idIndex) {
                sqlite3_bind_text(insertId, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(insertId, 2, row);
                stepOrDie(db, insertId);
            }
        }
        sqlite3_bind_int64(insertRow, 1, row);
        sqlite3_bind_int64(insertRow, 2, t0 + first);
        sqlite3_bind_int64(insertRow, 3, t0 + last);
        sqlite3_bind_int64(insertRow, 4, last - first + 1);
        sqlite3_bind_blob(insertRow, 5, data.data(), int(data.size()), SQLITE_STATIC);
        stepOrDie(db, insertRow);
        run("COMMIT");
    }
    const double ms = double(timer.nsecsElapsed()) / 1e6;
    sqlite3_finalize(insertRow);
    sqlite3_finalize(insertId);
    sqlite3_close(db);
    return ms;
}

/*!
 * A recorder that keeps nothing, for comparison: it copies each finished run and makes the
 * finish visible from a thread of its own, a batch at a time, as the store does after each
 * commit. What it costs is the least any recorder that publishes finishes after storing them
 * could cost, whatever it stored them in.
 */
class HandOffRecorder final : public IRunRecorder
{
public:
    HandOffRecorder() : m_thread([this] { loop(); }) {}
    ~HandOffRecorder() override
    {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stopping = true;
        }
        m_wake.notify_one();
        m_thread.join();
    }

    void recordQueued(const Run &) override {}
    void recordStarted(const Run &) override {}
    void recordRetrying(const Run &) override {}
    void recordProgress(const QString &, const Progress &) override {}
    void recordLog(const QString &, const LogLines &) override {}
    void recordFinished(const Run &run, std::function<void()> durable) override
    {
        Finished finished{run, std::move(durable)};
        bool wake = false;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            wake = m_incoming.empty();
            m_incoming.push_back(std::move(finished));
        }
        if (wake)
            m_wake.notify_one();
    }

private:
    struct Finished
    {
        Run run;
        std::function<void()> durable;
    };

    void loop()
    {
        std::vector<Finished> taken;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(m_mutex);
                m_wake.wait(lock, [this] { return m_stopping || !m_incoming.empty(); });
                if (m_incoming.empty())
                    return;
                taken.swap(m_incoming);
            }
            for (Finished &finished : taken)
                finished.durable();
            taken.clear();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::vector<Finished> m_incoming;
    bool m_stopping = false;
    std::thread m_thread;
};

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bench::Scale scale = bench::scaleFromArguments(app.arguments(), {kRuns, kRounds});

    TaskRegistry registry;
    Task noop;
    noop.key = u"noop"_s;
    noop.fn = [](RunContext &) -> QJsonValue { return {}; };
    if (!registry.add(noop))
        qFatal("cannot register the task");
    EngineConfig config;
    config.maxConcurrent = QThread::idealThreadCount();

    // One untimed round first: the process heap grows once to hold every run whose events
    // wait for the event loop (see bench_dispatch), and no measured round pays for that.
    {
        TaskEngine engine(&registry, config);
        round(engine, scale.count);
    }

    // Rounds alternate between the sides so that none gets the quieter machine.
    QList<double> withStore;
    QList<double> without;
    QList<double> withStoreCpu;
    QList<double> withoutCpu;
    qint64 stored = 0;
    qint64 databaseBytes = 0;
    QList<double> handOff;
    QList<double> floor;
    QList<double> floorCpu;
    for (int r = 0; r < scale.rounds; ++r) {
        // The floor in each round, next to the store: the machine's speed for writes
        // changes from minute to minute.
        floor << sqliteOnly(scale.count, &floorCpu);
        {
            TaskEngine engine(&registry, config);
            round(engine, std::min(kWarmupRuns, scale.count));
            without << round(engine, scale.count, &withoutCpu);
        }
        {
            HandOffRecorder recorder;
            TaskEngine engine(&registry, config);
            engine.setRecorder(&recorder);
            round(engine, std::min(kWarmupRuns, scale.count));
            handOff << round(engine, scale.count);
        }
        QTemporaryDir dir;
        QString error;
        auto store = SqliteRunStore::open(dir.path(), &error);
        if (!store)
            qFatal("cannot open the store: %s", qPrintable(error));
        {
            TaskEngine engine(&registry, config);
            engine.setRecorder(store.get());
            round(engine, std::min(kWarmupRuns, scale.count));
            withStore << round(engine, scale.count, &withStoreCpu);
        }
        RunQuery everything;
        everything.limit = 0;
        stored = store->findRuns(everything).total;
        if (stored != scale.count + std::min(kWarmupRuns, scale.count))
            qFatal("the store holds %lld runs, expected %d", stored, scale.count + std::min(kWarmupRuns, scale.count));
        const QString file = store->location();
        store.reset();
        // Pages not yet checkpointed are still in the write-ahead log.
        databaseBytes = QFileInfo(file).size() + QFileInfo(file + u"-wal"_s).size();
    }

    // The other layout's floors, for comparison.
    QList<double> batched;
    QList<double> batchedWithIds;
    for (int r = 0; r < scale.rounds; ++r) {
        batched << sqliteBatched(scale.count, false);
        batchedWithIds << sqliteBatched(scale.count, true);
    }

    bench::Result result;
    result.bench = u"history"_s;
    result.value = bench::median(withStore);
    result.baseline = bench::median(floor);
    result.unit = u"ms"_s;
    const double storeOff = bench::median(without);
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"baselineIs"_s, u"sqliteOnlyMs"_s},
        {u"storeOffMs"_s, std::round(storeOff * 10) / 10},
        {u"storeOffRatio"_s, std::round(result.value / std::max(1e-9, storeOff) * 1000) / 1000},
        {u"runs"_s, scale.count},
        {u"rounds"_s, scale.rounds},
        {u"storedRuns"_s, stored},
        {u"databaseMiB"_s, std::round(double(databaseBytes) / 1048576.0 * 10) / 10},
        {u"sqliteOnlyMs"_s, std::round(result.baseline * 10) / 10},
        {u"handOffOnlyMs"_s, std::round(bench::median(handOff) * 10) / 10},
        {u"batchedRowsMs"_s, std::round(bench::median(batched) * 10) / 10},
        {u"batchedRowsIdIndexMs"_s, std::round(bench::median(batchedWithIds) * 10) / 10},
        {u"storeOnCpuMs"_s, std::round(bench::median(withStoreCpu) * 10) / 10},
        {u"storeOffCpuMs"_s, std::round(bench::median(withoutCpu) * 10) / 10},
        // CPU time, which other users of the machine change much less than wall time: the
        // store's round against SQLite's own work for the same rows.
        {u"sqliteOnlyCpuMs"_s, std::round(bench::median(floorCpu) * 10) / 10},
        {u"cpuRatio"_s, std::round(bench::median(withStoreCpu) / std::max(1e-9, bench::median(floorCpu)) * 1000) / 1000},
        {u"machine"_s, bench::machineInfo()},
    };
    bench::printLine(u"history: %1 no-op runs, median of %2 rounds"_s.arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  store on  wall ms: %1"_s.arg(bench::formatSamples(withStore)));
    bench::printLine(u"  store off wall ms: %1"_s.arg(bench::formatSamples(without)));
    bench::printLine(u"  CPU ms, all threads: store on %1; store off %2; SQLite alone %3"_s
                         .arg(bench::formatSamples(withStoreCpu), bench::formatSamples(withoutCpu),
                              bench::formatSamples(floorCpu)));
    bench::printLine(u"  a recorder that keeps nothing and publishes finishes from its own thread: %1 ms"_s
                         .arg(bench::formatSamples(handOff)));
    bench::printLine(u"  SQLite alone, the same rows through its C API, no engine: %1 ms"_s
                         .arg(bench::formatSamples(floor)));
    bench::printLine(u"  the same runs 1,000 to a row (another layout, for comparison): %1 ms; "
                     "with an index entry per run id: %2 ms"_s
                         .arg(bench::formatSamples(batched), bench::formatSamples(batchedWithIds)));
    bench::printLine(u"history: store on %1 ms, SQLite alone %2 ms, ratio %3 (target < %4)%5; store off %6 ms"_s
                         .arg(QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() < kTargetRatio ? u""_s : u"  MISSED"_s,
                              QString::number(storeOff, 'f', 1)));
    bench::printJsonLine(result);
    return 0;
}
