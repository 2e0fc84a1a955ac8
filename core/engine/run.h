// SPDX-License-Identifier: MIT
#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QJsonValue>
#include <QList>
#include <QMetaType>
#include <QString>

#include <optional>

namespace taskdeck {

/*! Where a run is in its life. Succeeded and later are terminal. */
enum class RunStatus {
    Queued,
    Running,
    Retrying,    //!< an attempt failed with a transient error; the next starts at nextAttemptAt
    Succeeded,
    Failed,
    Canceled,
    TimedOut,
    Interrupted, //!< found queued or running after the process that owned it died
};

QString runStatusName(RunStatus status);            //!< "queued", "running", "succeeded" ...
std::optional<RunStatus> runStatusFromName(const QString &name);
QStringList runStatusNames();
inline bool isTerminal(RunStatus s)
{
    return s != RunStatus::Queued && s != RunStatus::Running && s != RunStatus::Retrying;
}

/*! Which stream a log line came from. System lines are written by the engine itself. */
enum class LogStream { Out, Err, System };
QString logStreamName(LogStream stream); //!< "out", "err", "system"
std::optional<LogStream> logStreamFromName(const QString &name);

/*!
 * One line of a run's log. \c number counts the run's lines from 1; \c seq is the line's
 * place among all the run's events (see Run::seq), 0 where it is not known (lines stored by
 * an older Taskdeck).
 */
struct LogLine
{
    qint64 number = 0;
    qint64 timeMs = 0; //!< milliseconds since the epoch, UTC
    LogStream stream = LogStream::Out;
    QString text;
    qint64 seq = 0;

    QJsonObject toJson() const;
};
using LogLines = QList<LogLine>;

/*! How far a run has got. total == 0 means "unknown". */
struct Progress
{
    qint64 done = 0;
    qint64 total = 0;
    QString message;

    /*! 0..100, or -1 when total is unknown. */
    int percent() const;
    QJsonObject toJson() const;
    friend bool operator==(const Progress &, const Progress &) = default;
};

/*! Why a run failed. \c kind is the exception type or failure class ("ExitCode", "Signal",
 *  "CommandNotFound", "std::runtime_error", "Timeout", ...); \c detail carries context such as
 *  a stack trace, the last lines of stderr or the attempt history. */
struct RunError
{
    QString message;
    QString kind;
    QString detail;
    bool transient = false;

    bool isEmpty() const { return message.isEmpty() && kind.isEmpty(); }
    QJsonObject toJson() const;
};

/*!
 * A snapshot of one run. Plain value; the engine hands out copies.
 * Arguments are stored with secrets already redacted.
 */
struct Run
{
    QString id;        //!< UUID without braces
    QString task;      //!< task key
    QJsonObject args;  //!< validated arguments, secrets redacted
    RunStatus status = RunStatus::Queued;
    int attempt = 0;   //!< 1-based once started; 0 while first queued
    int maxAttempts = 1;
    QDateTime queuedAt;
    QDateTime startedAt;
    QDateTime finishedAt;
    Progress progress;
    QJsonValue result = QJsonValue::Undefined; //!< undefined unless Succeeded
    RunError error;    //!< empty unless Failed, Canceled, TimedOut or Interrupted
    qint64 logLines = 0; //!< lines logged so far
    /*!
     * The number of the first log line the history could not keep (a full disk): the stored
     * log holds lines 1 to logMissingFrom - 1 (the oldest are kept) and none from here on,
     * although logLines counts them. 0 when the stored log is complete. Set by the history
     * (SqliteRunStore), never by the engine.
     */
    qint64 logMissingFrom = 0;
    /*!
     * The sequence number of the run's latest event reflected in this snapshot. Every event
     * of a run (queued, each start, each wait for a retry, each progress report, each log
     * line, the finish) takes the next number, from 1, with no gaps.
     */
    qint64 seq = 0;
    QDateTime nextAttemptAt; //!< while Retrying: when the next attempt starts
    QString owner;     //!< "pid@host#start" of the process that runs it (start: /proc start time)
    /*!
     * The W3C trace id (32 lowercase hex digits) of the trace the run belongs to, taken from
     * RunOptions::traceParent; empty when none was given (the history then makes one).
     */
    QString traceId;

    bool isFinished() const { return isTerminal(status); }
    /*! Milliseconds from start to finish (or to now while running); -1 before start. */
    qint64 durationMs() const;
    /*! The JSON shape used by the CLI (--json), the API and exports. */
    QJsonObject toJson() const;
};

/*!
 * Environment variables every command a run starts (RunContext::run) receives: the run's id,
 * and the owner string of the Taskdeck process that runs it (Run::owner). What the command
 * starts inherits them, which is how recovery finds the processes a Taskdeck that died left
 * running (SqliteRunStore::recoverInterrupted).
 */
/*!
 * The owner string of the calling process, which the engine gives its runs (Run::owner):
 * "pid@host#start;boot=BOOT_ID;pidns=INODE". The start time (field 22 of /proc/self/stat)
 * tells the process from a later one given the same pid; the boot id
 * (/proc/sys/kernel/random/boot_id) tells this boot from earlier ones; the PID namespace's
 * inode (/proc/self/ns/pid) tells apart processes whose pids mean something only in their own
 * namespace (a container, unshare --pid). See RunOwner for how recovery reads it.
 */
QString currentOwner();

inline constexpr char kRunIdVariable[] = "TASKDECK_RUN_ID";
inline constexpr char kOwnerVariable[] = "TASKDECK_OWNER"; //!< see kRunIdVariable

} // namespace taskdeck

// Plain values of relocatable members: lists of them grow by moving memory, not by copying
// every element.
Q_DECLARE_TYPEINFO(taskdeck::LogLine, Q_RELOCATABLE_TYPE);
Q_DECLARE_TYPEINFO(taskdeck::Progress, Q_RELOCATABLE_TYPE);

Q_DECLARE_METATYPE(taskdeck::Run)
Q_DECLARE_METATYPE(taskdeck::Progress)
Q_DECLARE_METATYPE(taskdeck::LogLines)
