// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

#include "run.h"

namespace taskdeck {

/*!
 * The terminal side of the command line: stdout and stderr, whether each is a terminal,
 * marked log lines and a progress display that never mixes with output.
 *
 * On a terminal, progress is one status line on stderr, rewritten in place and wiped before
 * anything else is written; flush() puts it back. Elsewhere, progress becomes a
 * "progress: 42% message" line whenever the whole percent or the message changes.
 */
class Console final
{
public:
    enum class Channel { Out, Err };

    Console();
    Q_DISABLE_COPY_MOVE(Console)

    bool isTerminal(Channel channel) const;

    void write(Channel channel, const QString &text);
    void writeLine(Channel channel, const QString &line) { write(channel, line + u'\n'); }
    void out(const QString &line) { writeLine(Channel::Out, line); }
    void err(const QString &line) { writeLine(Channel::Err, line); }

    /*! Writes a run's log line: "! " before stderr lines (red on a terminal), "# " before
     *  lines the engine wrote itself. */
    void logLine(Channel channel, const LogLine &line);

    /*! Reports a run's progress as described above. */
    void progress(const Progress &progress);
    /*! Sets the terminal status line (no effect when stderr is not a terminal). */
    void setStatus(const QString &text);
    /*! Removes the status line for good. */
    void clearStatus();

    /*! Flushes both channels and redraws the status line. */
    void flush();

private:
    void wipeStatus();
    void drawStatus();

    bool m_outTerminal = false;
    bool m_errTerminal = false;
    QString m_status;         // what the terminal status line should say
    bool m_statusShown = false;
    int m_lastPercent = -2;   // last "progress:" line, to skip repeats
    QString m_lastMessage;
};

} // namespace taskdeck
