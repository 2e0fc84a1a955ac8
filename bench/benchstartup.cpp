// SPDX-License-Identifier: MIT
// Start-up with a big history: the real `taskdeck list` (which opens the history, recovers
// interrupted runs and starts retention like every command) against a history of 1,000,000
// runs, and against an empty one, in alternating rounds.
//
// Built a second time as bench_uistartup (TASKDECK_BENCH_GUI): the same against the desktop
// window, `taskdeck gui` offscreen, from process start to the main window's first paint
// (TASKDECK_EXIT_AFTER_FIRST_PAINT makes it quit there).
//
// Usage: bench_startup [TASKDECK] [--count=N] [--rounds=N]
//   TASKDECK defaults to ../app/taskdeck next to this program (build/release/app/taskdeck).

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>

#include "benchsupport.h"
#include "sqliterunstore.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdio>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

constexpr int kRuns = 1000000;
constexpr int kRounds = 7;
constexpr double kTargetRatio = 1.2;
constexpr int kTasks = 20;

void execOrDie(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        qFatal("%s: %s", sql, sqlite3_errmsg(db));
}

/*! An empty history of the current schema in \a dataDir, closed cleanly. */
QString createHistory(const QString &dataDir)
{
    QString error;
    auto store = SqliteRunStore::open(dataDir, &error);
    if (!store)
        qFatal("cannot create the history in %s: %s", qPrintable(dataDir), qPrintable(error));
    return store->location();
}

/*!
 * Fills the history \a file with \a count finished runs through SQLite's C API, in one
 * transaction, into the schema the store created: ids, times and change numbers in creation
 * order over the last 20 days (inside the default retention, so nothing is pruned), 20 task
 * keys, one run in ten failed with an error.
 */
void fillHistory(const QString &file, int count)
{
    sqlite3 *db = nullptr;
    if (sqlite3_open(file.toUtf8().constData(), &db) != SQLITE_OK)
        qFatal("cannot open %s", qPrintable(file));
    // Written straight into the file, not through the WAL, and back to WAL at the end.
    execOrDie(db, "PRAGMA journal_mode=DELETE");
    execOrDie(db, "PRAGMA synchronous=OFF");
    sqlite3_stmt *insert = nullptr;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs (id, task, status, attempt, max_attempts, args, queued_at, "
                           "started_at, finished_at, result, error_message, error_kind, log_lines, owner, "
                           "trace_id, seq) VALUES (?, ?, ?, 1, 1, '{\"n\":1}', ?, ?, ?, ?, ?, ?, ?, "
                           "'4242@bench.invalid#1', lower(hex(randomblob(16))), ?)",
                           -1, &insert, nullptr) != SQLITE_OK) {
        qFatal("prepare: %s", sqlite3_errmsg(db));
    }
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const qint64 span = 20LL * 24 * 3600 * 1000;
    const qint64 t0 = now - span;
    execOrDie(db, "BEGIN");
    for (int i = 0; i < count; ++i) {
        const qint64 queued = t0 + span * i / count;
        const auto ms = static_cast<unsigned long long>(queued);
        char id[64];
        std::snprintf(id, sizeof id, "%08llx-%04llx-7%03x-8000-%012x", ms >> 16, ms & 0xffff,
                      static_cast<unsigned>(i % 4096), static_cast<unsigned>(i));
        char task[32];
        std::snprintf(task, sizeof task, "task-%02d", i % kTasks);
        const bool failed = i % 10 == 3;
        sqlite3_bind_text(insert, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 2, task, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(insert, 3, failed ? "failed" : "succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 4, queued);
        sqlite3_bind_int64(insert, 5, queued + 5);
        sqlite3_bind_int64(insert, 6, queued + 1500);
        if (failed)
            sqlite3_bind_null(insert, 7);
        else
            sqlite3_bind_text(insert, 7, "{\"ok\":true}", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 8, failed ? "exit code 1" : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 9, failed ? "ExitCode" : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 10, 12);
        sqlite3_bind_int64(insert, 11, 15);
        if (sqlite3_step(insert) != SQLITE_DONE)
            qFatal("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(insert);
    }
    execOrDie(db, "COMMIT");
    sqlite3_finalize(insert);
    execOrDie(db, "PRAGMA journal_mode=WAL");
    sqlite3_close(db);
}

#ifdef TASKDECK_BENCH_GUI
constexpr bool kGui = true;
#else
constexpr bool kGui = false;
#endif

/*! Wall time of one `taskdeck list` (or `taskdeck gui` to its first paint) with \a dataDir;
 *  the command must succeed. */
double timeList(const QString &taskdeck, const QString &dataDir)
{
    QProcess process;
    process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    QStringList arguments{u"--data-dir"_s, dataDir, u"list"_s};
    if (kGui) {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(u"QT_QPA_PLATFORM"_s, u"offscreen"_s);
        env.insert(u"TASKDECK_EXIT_AFTER_FIRST_PAINT"_s, u"1"_s);
        // The window's saved state of the person running the bench stays out of it.
        env.insert(u"XDG_CONFIG_HOME"_s, QDir(dataDir).filePath(u"config"_s));
        env.insert(u"XDG_CACHE_HOME"_s, QDir(dataDir).filePath(u"cache"_s));
        process.setProcessEnvironment(env);
        arguments = {u"--data-dir"_s, dataDir, u"gui"_s, u"--listen"_s, u"127.0.0.1:0"_s};
    }
    QElapsedTimer timer;
    timer.start();
    process.start(taskdeck, arguments);
    if (!process.waitForFinished(120000) || process.exitStatus() != QProcess::NormalExit
        || process.exitCode() != 0) {
        qFatal("%s %s failed (exit %d): %s", qPrintable(taskdeck), kGui ? "gui" : "list", process.exitCode(),
               qPrintable(process.errorString()));
    }
    const double ms = double(timer.nsecsElapsed()) / 1e6;
    if (process.readAllStandardOutput().isEmpty())
        qFatal("%s %s printed nothing", qPrintable(taskdeck), kGui ? "gui" : "list");
    return ms;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QStringList arguments = app.arguments();
    const QString taskdeck = bench::takeTaskdeckProgram(arguments);
    const bench::Scale scale = bench::scaleFromArguments(arguments, {kRuns, kRounds});

    QTemporaryDir dir;
    const QString emptyDir = dir.filePath(u"empty"_s);
    const QString bigDir = dir.filePath(u"big"_s);
    createHistory(emptyDir);
    const QString bigFile = createHistory(bigDir);
    QElapsedTimer generation;
    generation.start();
    fillHistory(bigFile, scale.count);
    const double generateMs = double(generation.elapsed());
    const qint64 historyBytes = QFileInfo(bigFile).size();

    // One untimed start each: the program and the file into the page cache.
    timeList(taskdeck, emptyDir);
    timeList(taskdeck, bigDir);
    QList<double> empty;
    QList<double> big;
    // The sides alternate, and which goes first too, so neither gets the quieter moments.
    for (int r = 0; r < scale.rounds; ++r) {
        if (r % 2 == 0) {
            empty << timeList(taskdeck, emptyDir);
            big << timeList(taskdeck, bigDir);
        } else {
            big << timeList(taskdeck, bigDir);
            empty << timeList(taskdeck, emptyDir);
        }
    }

    bench::Result result;
    result.bench = kGui ? u"uistartup"_s : u"startup"_s;
    result.value = bench::median(big);
    result.baseline = bench::median(empty);
    result.unit = u"ms"_s;
    result.extra = {
        {u"target"_s, kTargetRatio},
        {u"runs"_s, scale.count},
        {u"rounds"_s, scale.rounds},
        {u"historyMiB"_s, std::round(double(historyBytes) / 1048576.0 * 10) / 10},
        {u"generateMs"_s, generateMs},
        {u"taskdeck"_s, taskdeck},
        {u"machine"_s, bench::machineInfo()},
    };
    const QString what = kGui ? u"taskdeck gui to its first paint"_s : u"taskdeck list"_s;
    bench::printLine(u"%1: %2 with %3 runs in the history against an empty one, median of %4 "
                     "rounds"_s.arg(result.bench, what).arg(scale.count).arg(scale.rounds));
    bench::printLine(u"  %1 runs (%2 MiB) ms: %3"_s.arg(scale.count)
                         .arg(QString::number(double(historyBytes) / 1048576.0, 'f', 1), bench::formatSamples(big)));
    bench::printLine(u"  empty history ms: %1"_s.arg(bench::formatSamples(empty)));
    bench::printLine(u"%1: %2 ms against %3 ms, ratio %4 (target <= %5)%6"_s
                         .arg(result.bench, QString::number(result.value, 'f', 1), QString::number(result.baseline, 'f', 1),
                              QString::number(result.ratio(), 'f', 2), QString::number(kTargetRatio),
                              result.ratio() <= kTargetRatio ? u""_s : u"  MISSED"_s));
    bench::printJsonLine(result);
    return 0;
}
