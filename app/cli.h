// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <optional>

#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

namespace taskdeck {

class Console;
class TaskEngine;
struct StartError;

/*! The command line's exit codes. */
namespace exitcode {
constexpr int Success = 0; //!< the run, or every run of --each, succeeded
constexpr int Failure = 1; //!< a run failed, was canceled or timed out
constexpr int Usage = 2;   //!< bad command line or configuration, unknown task, invalid
                           //!< arguments, missing confirmation
} // namespace exitcode

/*! What a command line asks for, as parsed by parseCommandLine(). */
struct CommandLine
{
    enum class Command { None, Help, Version, List, Run };

    Command command = Command::None;
    QString error;                    //!< a usage error; nothing else is meaningful then
    QMap<QString, QString> settings;  //!< setting flags, keyed by environment variable name
    bool json = false;

    // run
    QString taskKey;
    QJsonObject args;                 //!< strings; a repeated name becomes an array
    bool confirmed = false;
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<QString> eachFile;  //!< "-" for stdin

    bool ok() const { return error.isEmpty(); }
};

/*!
 * Parses \a arguments (without the program name). Settings flags may come before or after
 * the command; command options come after it. After "run", --timeout is the run's own
 * timeout; before the command it sets TASK_TIMEOUT. --help anywhere wins over everything.
 */
CommandLine parseCommandLine(const QStringList &arguments);

/*! The full --help text. */
QString usageText();

/*!
 * The commands behind the command line: list and run (single or --each), on an engine
 * the caller wires up, writing through \a console. Runs an event loop while runs are in
 * flight; SIGINT and SIGTERM cancel them (a second one exits at once).
 */
class Cli final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(Cli)

public:
    Cli(TaskEngine *engine, Console *console, QObject *parent = nullptr);
    ~Cli() override;

    /*! Runs the List or Run command of \a commandLine; returns the exit code. */
    int execute(const CommandLine &commandLine);

    int list(bool json);
    int run(const CommandLine &commandLine);
    int runEach(const CommandLine &commandLine);

private:
    int reportStartError(const QString &key, const StartError &error, bool json);
    int refuseUnconfirmed(const QString &key, bool json);
    void interrupt(int signalNumber);

    TaskEngine *m_engine;
    Console *m_console;
    int m_interrupts = 0;
};

} // namespace taskdeck
