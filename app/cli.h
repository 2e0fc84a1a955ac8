// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <optional>

#include <QDateTime>
#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include "run.h"

namespace taskdeck {

class Console;
class IRunStore;
class TaskEngine;
class TasksFileWatcher;
struct StartError;

/*! The command line's exit codes. */
namespace exitcode {
constexpr int Success = 0; //!< the run, or every run of --each, succeeded
constexpr int Failure = 1; //!< a run failed, was canceled or timed out
constexpr int Usage = 2;   //!< bad command line or configuration, unknown task or run id,
                           //!< invalid arguments, missing confirmation, no history;
                           //!< also when stdout cannot be written
/*! The runs ran, but the history could not keep all of them or all of their logs (a full
 *  disk); a run that failed still exits Failure. */
constexpr int HistoryIncomplete = 3;
} // namespace exitcode

/*! What a command line asks for, as parsed by parseCommandLine(). */
struct CommandLine
{
    enum class Command { None, Help, Version, List, Run, History, Show, Log, Export, Rerun, Serve, Gui,
                         Start, Worker, Cancel };
    enum class ExportFormat { Json, Csv };

    Command command = Command::None;
    QString error;                    //!< a usage error; nothing else is meaningful then
    QMap<QString, QString> settings;  //!< setting flags, keyed by environment variable name
    QString database;                 //!< --database URL (PostgreSQL); empty: TASK_DATABASE_URL or SQLite
    bool json = false;

    // run, rerun
    QString taskKey;
    QJsonObject args;                 //!< strings; a repeated name becomes an array
    bool confirmed = false;
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<QString> eachFile;  //!< "-" for stdin

    // history
    QString taskFilter;
    std::optional<RunStatus> statusFilter;
    QDateTime since;                  //!< invalid: no lower bound
    int limit = 50;
    int offset = 0;
    bool check = false;               //!< history --check: an integrity check instead

    // show, log, export, rerun
    QString runId;
    qint64 fromLine = 1;              //!< log
    ExportFormat format = ExportFormat::Json;
    QString outputFile;               //!< export; empty: stdout

    // serve
    QString listen;                   //!< ADDRESS:PORT; empty: 127.0.0.1:8470

    // worker (start takes the run options --arg, --yes, --each and --json)
    int concurrency = 0;              //!< runs at once; 0: the engine's limit
    std::optional<std::chrono::milliseconds> lease; //!< how long a claim holds without renewal
    std::optional<std::chrono::milliseconds> poll;  //!< the look at the queue beside LISTEN
    int maxRunning = 0;               //!< runs held by all workers together, stored; 0: not given, -1: off
    std::optional<double> startRate;  //!< worker --start-rate, starts per second, stored; 0: off
    bool local = false;               //!< run --local: run here even with a shared database

    bool ok() const { return error.isEmpty(); }
};

/*!
 * Parses \a arguments (without the program name). Settings flags may come before or after
 * the command; command options come after it. After "run", --timeout is the run's own
 * timeout; before the command it sets TASK_TIMEOUT. --help anywhere wins over everything.
 */
CommandLine parseCommandLine(const QStringList &arguments);

/*!
 * Command-line arguments must be UTF-8 (see invalidUtf8Offset()): names the first of
 * \a argv[1] to \a argv[argc - 1] that is not, with the bytes that are not shown as \xHH and
 * the offset of the first ("argument 3 (--arg=name=caf\xE9) is not valid UTF-8: byte 0xE9 at
 * offset 15; ..."). Empty when every argument is UTF-8.
 */
QString invalidUtf8Argument(int argc, const char *const *argv);

/*! The full --help text. */
QString usageText();

/*! Whether \a command reads or needs the run history (and fails without one). */
bool needsHistory(CommandLine::Command command);
/*! Whether \a command needs the tasks (the registry and the engine). */
bool needsTasks(CommandLine::Command command);

/*!
 * The commands that start runs or list tasks: list, run (single or --each) and rerun, on an
 * engine the caller wires up, writing through \a console. \a store is the history the
 * engine records to, or null without one (rerun needs it). Runs an event loop while runs are
 * in flight; SIGINT and SIGTERM cancel them (a second one exits at once).
 */
class Cli final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(Cli)

public:
    Cli(TaskEngine *engine, IRunStore *store, Console *console, QObject *parent = nullptr);
    ~Cli() override;

    /*! Runs the List, Run or Rerun command of \a commandLine; returns the exit code. */
    int execute(const CommandLine &commandLine);

    int list(bool json);
    int run(const CommandLine &commandLine);
    int runEach(const CommandLine &commandLine);
    /*!
     * The tasks file the registry's file tasks came from, if any. run --each follows it
     * while it reads its input: a saved change applies to the lines started after it, a
     * file with mistakes leaves the previous tasks in place. Both are logged. The tasks
     * must be registered from the file already.
     */
    void setTasksFile(TasksFileWatcher *tasksFile) { m_tasksFile = tasksFile; }
    /*! Runs the task of a stored run again with its arguments, the secrets given anew. */
    int rerun(const CommandLine &commandLine);

private:
    int reportStartError(const QString &key, const StartError &error, bool json);
    int refuseUnconfirmed(const QString &key, bool json);
    void interrupt(int signalNumber);
    /*! On quitting at once: records the engine's unfinished runs as canceled, waiting a
     *  bounded time for the history to commit them, and says so on stderr. */
    void recordQuitRuns();

    TaskEngine *m_engine;
    IRunStore *m_store;
    Console *m_console;
    TasksFileWatcher *m_tasksFile = nullptr;
    int m_interrupts = 0;
};

} // namespace taskdeck
