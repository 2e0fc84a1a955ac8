// SPDX-License-Identifier: MIT
#pragma once

#include "engineconfig.h"
#include "field.h"
#include "run.h"
#include "taskregistry.h"

#include <QJsonObject>
#include <QObject>

#include <chrono>
#include <memory>
#include <optional>

QT_BEGIN_NAMESPACE
class QThreadPool;
QT_END_NAMESPACE

namespace taskdeck {

class IRunRecorder;
namespace detail { class EngineCore; }

/*! Per-run choices made by whoever starts a run. */
struct RunOptions
{
    bool confirmed = false; //!< required for dangerous tasks
    std::optional<std::chrono::milliseconds> timeout; //!< overrides task and engine default
};

/*! Why the engine refused to create a run. */
struct StartError
{
    enum class Code { None, UnknownTask, InvalidArguments, ConfirmationRequired, ShuttingDown };
    Code code = Code::None;
    QString message;     //!< one line, names the task and the problem
    FieldErrors fields;  //!< every argument problem, for InvalidArguments
    QStringList suggestions; //!< nearest task keys, for UnknownTask

    bool isError() const { return code != Code::None; }
};

/*! The answer of TaskEngine::start(): a run id, or why there is no run. */
struct StartResult
{
    QString runId;
    StartError error;
    bool ok() const { return !error.isError(); }
};

/*! The answer of TaskEngine::run(): the finished run, or why there is none. */
struct RunResult
{
    Run run;
    StartError error;
    bool ok() const { return !error.isError(); }
};

/*!
 * Runs registered tasks on a QThreadPool.
 *
 * Runs wait in one FIFO queue and start while fewer than maxConcurrent are in flight, their
 * task is under its own limit and the start rate allows. Each attempt has a timeout; cancel
 * works on queued and running runs; failures marked transient are retried with exponential
 * backoff and jitter.
 *
 * Threading: create and use the engine on one thread with an event loop (normally the main
 * thread). Its signals are emitted on that thread; log and progress arrive in batches at most
 * every EngineConfig::eventInterval. start(), cancel() and the queries are thread-safe.
 *
 * \code
 * TaskRegistry registry;
 * registry.add(backupTask);
 * TaskEngine engine(&registry);
 * connect(&engine, &TaskEngine::runFinished, this, [](const Run &run) { ... });
 * StartResult started = engine.start(u"backup"_s, {{u"format"_s, u"sql"_s}});
 * if (!started.ok())
 *     qWarning() << started.error.message;
 * \endcode
 */
class TaskEngine final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskEngine)

public:
    explicit TaskEngine(TaskRegistry *registry, const EngineConfig &config = EngineConfig(),
                        QObject *parent = nullptr);
    /*! Shuts down: see shutdown(). */
    ~TaskEngine() override;

    TaskRegistry *registry() const;
    const EngineConfig &config() const;
    QThreadPool *threadPool() const;

    /*! Sets the recorder that receives every change (not owned; may be null). Set it before
     *  the first start(). */
    void setRecorder(IRunRecorder *recorder);

    /*! Validates and queues a run; returns its id at once, or the error and no run. */
    StartResult start(const QString &key, const QJsonObject &args,
                      const RunOptions &options = RunOptions());
    /*!
     * Validates, runs and waits for the run to finish; returns it with its result or error.
     * Blocks the calling thread. On the engine's thread, events of this run are still
     * delivered (before it returns). Do not call from inside a task function when the pool
     * is full.
     */
    RunResult run(const QString &key, const QJsonObject &args,
                  const RunOptions &options = RunOptions());

    /*! Requests cancel of a queued or running run. False when unknown or already finished. */
    bool cancel(const QString &runId);
    /*! Cancels every queued and running run. */
    void cancelAll();

    /*! A snapshot of a known run (active, or among the recently finished ones). */
    std::optional<Run> snapshot(const QString &runId) const;
    /*! The run's status (the reference's Status()); nullopt for an unknown run. */
    std::optional<RunStatus> status(const QString &runId) const;
    /*! The run's progress (the reference's Progress()); nullopt for an unknown run. */
    std::optional<Progress> progress(const QString &runId) const;
    /*! The last bufferSize lines of the run's log, oldest first. */
    LogLines recentLog(const QString &runId) const;
    /*! Queued and running runs, in queue order. */
    QList<Run> activeRuns() const;
    /*! Number of runs executing now (excluding queued ones). */
    int runningCount() const;
    /*! Number of runs waiting in the queue. */
    int queuedCount() const;

    /*!
     * Blocks until the run finishes or \a timeout passes; returns its final snapshot, or
     * nullopt on timeout or an unknown id. On the engine's thread, pending events are
     * delivered while waiting.
     */
    std::optional<Run> waitForFinished(const QString &runId,
                                       std::chrono::milliseconds timeout = std::chrono::hours(24));

    /*!
     * Stops accepting runs, cancels the queued and running ones and waits up to \a grace
     * for workers to return. Returns false if some did not.
     */
    bool shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

Q_SIGNALS:
    void runQueued(const taskdeck::Run &run);
    void runStarted(const taskdeck::Run &run);          //!< once per attempt
    void runProgress(const QString &runId, const taskdeck::Progress &progress);
    void runLog(const QString &runId, const taskdeck::LogLines &lines);
    void runFinished(const taskdeck::Run &run);

private:
    friend class detail::EngineCore;
    void deliverEvents();

    std::unique_ptr<detail::EngineCore> d;
};

} // namespace taskdeck
