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

    /*! Whether writing or flushing stdout has failed (a full disk, a closed pipe): what the
     *  command printed is incomplete, and it must not report success. Once it has failed,
     *  nothing more is written to stdout. */
    bool outputFailed() const { return m_outErrno != 0; }
    /*! Why stdout failed, as the system words it; empty while it has not. */
    QString outputError() const;

private:
    void wipeStatus();
    void drawStatus();
    void flushOut();
    void noteOutputFailure();

    bool m_outTerminal = false;
    bool m_errTerminal = false;
    int m_outErrno = 0;       // the first write or flush error of stdout, 0 while none
    QString m_status;         // what the terminal status line should say
    bool m_statusShown = false;
    int m_lastPercent = -2;   // last "progress:" line, to skip repeats
    QString m_lastMessage;
};

} // namespace taskdeck
