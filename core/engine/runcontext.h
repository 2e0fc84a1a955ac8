// SPDX-License-Identifier: MIT
#pragma once

#include "command.h"
#include "run.h"

#include <QJsonObject>
#include <QString>

#include <chrono>
#include <memory>

namespace taskdeck {

namespace detail { struct RunState; class EngineCore; }

/*!
 * What a task function gets: its arguments and the means to report back. Lives for one
 * attempt, on the worker thread that runs it; all of it is safe to call from that thread
 * (log() and progress() from any thread).
 */
class RunContext final
{
public:
    Q_DISABLE_COPY_MOVE(RunContext)

    QString runId() const;
    QString taskKey() const;
    int attempt() const;                 //!< 1-based
    const QJsonObject &args() const;     //!< validated, typed, secrets in clear
    QJsonValue arg(const QString &key) const { return args().value(key); }

    void log(const QString &line) { log(LogStream::Out, line); }
    void log(LogStream stream, const QString &line);
    void logError(const QString &line) { log(LogStream::Err, line); }

    void progress(qint64 done, qint64 total, const QString &message = QString());

    /*! True once the run was canceled or timed out; long work should poll it and return. */
    bool isCanceled() const;
    /*! Sleeps up to \a duration; returns early (false) when the run is canceled. */
    bool sleep(std::chrono::milliseconds duration);

    /*! A private directory for this run, created on first use, removed when the run ends. */
    QString scratchDir();

    /*!
     * Runs an external command with its output in this run's log, its ::progress:: lines as
     * the run's progress and cancel/timeout stopping its process group. The command gets
     * TASKDECK_RUN_ID and TASKDECK_OWNER (kRunIdVariable, kOwnerVariable) in its environment.
     */
    CommandResult run(const Command &cmd);
    /*!
     * Like run(), but throws TaskError when the command could not start, failed or was
     * stopped; returns its ::result:: value, or {"exitCode": 0} when it printed none.
     */
    QJsonValue runChecked(const Command &cmd);

private:
    friend class detail::EngineCore;
    RunContext(detail::EngineCore *core, std::shared_ptr<detail::RunState> state);
    ~RunContext();

    detail::EngineCore *m_core;
    std::shared_ptr<detail::RunState> m_state;
};

} // namespace taskdeck
