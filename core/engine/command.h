// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <QJsonValue>
#include <QMap>
#include <QString>
#include <QStringList>

#include <chrono>
#include <functional>
#include <optional>

namespace taskdeck {

/*! The longest line of a command's output that is kept whole: 1 MiB. */
inline constexpr int kDefaultMaxLineBytes = 1024 * 1024;

/*!
 * An external command to run: argv (never through a shell unless argv itself names one),
 * variables added to the inherited environment, and a working directory.
 */
struct Command
{
    QStringList argv;                //!< argv[0] is looked up in PATH when it has no '/'
    QMap<QString, QString> env;      //!< added to (overriding) the inherited environment
    QString workingDirectory;        //!< empty = inherit
    std::chrono::milliseconds killGrace{2000}; //!< SIGTERM -> SIGKILL delay on cancel
    /*! Lines up to this many bytes are kept whole. A longer line is split into pieces of at
     *  most this many bytes (never inside a UTF-8 sequence), logged as lines of their own, and
     *  followed by a system line saying how many pieces the line of how many bytes became.
     *  At least 4; ::result:: lines may reach 4 MiB. */
    int maxLineBytes = kDefaultMaxLineBytes;
    bool parseControlLines = true;   //!< honour ::progress:: and ::result:: on stdout
};

/*! How a command ended. */
struct CommandResult
{
    bool started = false;     //!< false: it could not be started (see startError)
    QString startError;       //!< e.g. "command not found: foo"; also "internal error: ..."
                              //!< when a sink callback threw
    int exitCode = -1;        //!< valid when exited normally (of the main child, even when
                              //!< processes it left behind had to be stopped)
    int signal = 0;           //!< terminating signal, 0 when exited normally
    bool canceled = false;    //!< the cancel check returned true and the group was stopped
    std::optional<QJsonValue> result; //!< from the last valid ::result:: line
    qint64 stdoutLines = 0;   //!< lines logged from stdout (control lines are not logged)
    qint64 stderrLines = 0;
    QStringList stderrTail;   //!< last 20 stderr lines, for error details

    bool succeeded() const { return started && !canceled && signal == 0 && exitCode == 0; }
};

/*! One line of a command's output, for CommandSink::lines. */
struct OutputLine
{
    LogStream stream = LogStream::Out;
    QString text;
};
using OutputLines = QList<OutputLine>;

/*! Callbacks a running command reports through, called on the calling thread. Any of them
 *  may be empty. System lines (LogStream::System) are the runner's own notes: cancellation,
 *  processes stopped, ignored control lines. */
struct CommandSink
{
    std::function<void(LogStream, const QString &)> line;   //!< one complete line
    /*! The complete lines of one read, in order. When set, it is called instead of \c line,
     *  so a chatty command costs one call per read instead of one per line. */
    std::function<void(const OutputLines &)> lines;
    std::function<void(const Progress &)> progress;          //!< from ::progress::
    std::function<bool()> isCanceled;                        //!< polled; true stops the group
};

/*!
 * Runs \a cmd to completion on the calling thread and returns how it ended.
 *
 * The child runs in a new process group with stdin on /dev/null. stdout and stderr are read
 * line by line (invalid UTF-8 replaced, overlong lines split) and handed to \a sink in the
 * order they were read. When \a sink.isCanceled returns true the whole group gets SIGTERM,
 * then SIGKILL after cmd.killGrace; when the main child exits, processes it left in its group
 * are stopped the same way so nothing outlives the run. Never throws.
 */
CommandResult runCommand(const Command &cmd, const CommandSink &sink);

/*!
 * Sends SIGKILL to the process group of every command running in this process, for a
 * last-resort exit (a second Ctrl-C). A normal cancel goes through the run instead.
 */
void killAllCommands();

/*! Human name of a signal ("SIGKILL"). */
QString signalName(int signal);

/*!
 * Splits a command line into argv the way a POSIX shell would tokenize it (quotes,
 * backslashes), without expanding anything or running a shell. Returns nullopt with \a error
 * on an unterminated quote or trailing backslash.
 *
 * Words are separated by space, tab, newline or carriage return; '#', ';', '|', '$' and the
 * like are ordinary characters. Backslash-newline is a line continuation.
 *
 * \code
 * splitCommandLine(u"tar -czf 'my backup.tgz' \"$HOME\"/docs"_s);
 * // -> {"tar", "-czf", "my backup.tgz", "$HOME/docs"}
 * \endcode
 */
std::optional<QStringList> splitCommandLine(const QString &line, QString *error = nullptr);

} // namespace taskdeck

Q_DECLARE_TYPEINFO(taskdeck::OutputLine, Q_RELOCATABLE_TYPE);
