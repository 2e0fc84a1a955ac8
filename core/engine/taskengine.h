// SPDX-License-Identifier: MIT
#pragma once

#include "engineconfig.h"
#include "field.h"
#include "run.h"
#include "runhandle.h"
#include "taskregistry.h"

#include <QJsonObject>
#include <QObject>

#include <chrono>
#include <memory>
#include <optional>

namespace taskdeck {

class IRunRecorder;
namespace detail { class EngineCore; }

/*! Per-run choices made by whoever starts a run. */
struct RunOptions
{
    bool confirmed = false; //!< required for dangerous tasks
    std::optional<std::chrono::milliseconds> timeout; //!< overrides task and engine default
    /*! A W3C trace context ("00-TRACEID-PARENTID-FLAGS") the run belongs to; every command
     *  the run starts gets it as kTraceParentVariable. Empty: none is passed. */
    QString traceParent;
};

/*! The environment variable that carries RunOptions::traceParent to a run's commands. */
inline constexpr char kTraceParentVariable[] = "TRACEPARENT";

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

/*! How to follow a run: see TaskEngine::follow(). */
struct FollowOptions
{
    /*! Follow from the run's current state (-1), or get every event after this seq. */
    qint64 after = -1;
    /*! Log lines that may wait for the follower before it falls behind. */
    qsizetype maxQueuedLines = RunHandle::kDefaultMaxQueuedLines;
};

/*!
 * The answer of TaskEngine::follow(): the run's state as of seq run.seq, and a handle that
 * emits the events after it (or after FollowOptions::after, when that is earlier).
 */
struct Following
{
    /*! Null when the engine does not know the run (never started here, or forgotten: the
     *  history has it). */
    std::unique_ptr<RunHandle> handle;
    Run run;              //!< the snapshot, as of run.seq
    LogLines recentLog;   //!< up to EngineConfig::bufferSize lines, the last one at or before run.seq
    /*!
     * When following from an earlier seq: the events after \c after up to \c missingTo are
     * no longer in the engine (it keeps a bounded window of each run's events). The handle
     * is then held: supply those events from the history with handle->push(), then call
     * handle->release(). 0 when nothing is missing.
     */
    qint64 missingTo = 0;
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
 * thread). Its signals are emitted on that thread, by its event loop only (never from inside
 * a call such as run() or waitForFinished()), so every receiver sees each run's events in
 * order; log and progress arrive in batches at most every EngineConfig::eventInterval.
 * start(), cancel(), follow() and the queries are thread-safe.
 *
 * Every event of a run has a sequence number (Run::seq, LogLine::seq). follow() hands out a
 * run's snapshot and a RunHandle that emits exactly the events after it: the one way for a
 * log pane or a WebSocket to show a run live, from its start or from any point.
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

    /*! Sets the recorder that receives every change (not owned; may be null). Set it before
     *  the first start(). */
    void setRecorder(IRunRecorder *recorder);

    /*! Validates and queues a run; returns its id at once, or the error and no run. */
    StartResult start(const QString &key, const QJsonObject &args,
                      const RunOptions &options = RunOptions());
    /*!
     * Validates, runs and waits for the run to finish; returns it with its result or error.
     * Blocks the calling thread; the run's signals are emitted afterwards by the event loop.
     * Do not call from inside a task function when the pool is full.
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
    /*!
     * Follows a run the engine knows: atomically takes its snapshot and subscribes a
     * handle to every later event. With options.after >= 0 the handle first replays the
     * events after that seq. The handle is the caller's; it lives in the calling thread
     * (moveToThread() it before the event loop runs to follow from another thread).
     */
    Following follow(const QString &runId, const FollowOptions &options = FollowOptions());
    /*! Queued, running and retrying runs, in the order they were queued. */
    QList<Run> activeRuns() const;
    /*! Number of runs executing now (excluding queued ones). */
    int runningCount() const;
    /*! Number of runs waiting in the queue. */
    int queuedCount() const;

    /*!
     * Blocks until the run finishes or \a timeout passes; returns its final snapshot, or
     * nullopt on timeout or an unknown id. Delivers no events while it waits.
     */
    std::optional<Run> waitForFinished(const QString &runId,
                                       std::chrono::milliseconds timeout = std::chrono::hours(24));

    /*!
     * Stops accepting runs, cancels the queued and running ones and waits up to \a grace
     * for workers to return. Returns false if some did not. The destructor calls it; runs
     * whose task still ignores the cancel then are recorded as Interrupted and left behind
     * (their worker threads cannot be stopped), so closing never hangs.
     */
    bool shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

Q_SIGNALS:
    void runQueued(const taskdeck::Run &run);
    void runStarted(const taskdeck::Run &run);          //!< once per attempt
    void runRetrying(const taskdeck::Run &run);         //!< waits until run.nextAttemptAt
    void runProgress(const QString &runId, const taskdeck::Progress &progress);
    void runLog(const QString &runId, const taskdeck::LogLines &lines);
    void runFinished(const taskdeck::Run &run);

private:
    friend class detail::EngineCore;

    std::unique_ptr<detail::EngineCore> d;
};

} // namespace taskdeck
