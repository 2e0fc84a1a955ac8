// SPDX-License-Identifier: MIT
#include "taskengine.h"

#include "runcontext.h"
#include "runid.h"
#include "runrecorder.h"
#include "spinmutex.h"
#include "tsan.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QHash>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QMetaMethod>
#include <QMutex>
#include <QRandomGenerator>
#include <QScopeGuard>
#include <QSet>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <QVarLengthArray>
#include <QWaitCondition>

#include <cxxabi.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#  include <sanitizer/lsan_interface.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <typeinfo>
#include <unordered_map>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

Q_LOGGING_CATEGORY(lcEngine, "taskdeck.engine")

namespace taskdeck {

namespace {

qint64 steadyNowMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

QString demangledTypeName(const std::type_info &type)
{
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
    return status == 0 && name ? QString::fromLatin1(name.get()) : QString::fromLatin1(type.name());
}

QString processOwner()
{
    // See currentOwner(): the pid with what tells it apart from other processes given the
    // same number (a later one, one of an earlier boot, one in another PID namespace).
    return currentOwner();
}

// A run's producers wait when this many of its log lines wait for the engine's thread, so a
// task that prints faster than the receivers consume is slowed down instead of growing memory.
constexpr qsizetype kPendingLineCap = 50000;

constexpr qint64 kNever = std::numeric_limits<qint64>::max();

enum StopReason : int { NotStopped = 0, StopCanceled = 1, StopTimedOut = 2 };

} // namespace

namespace detail {

struct RunState;
using RunStatePtr = std::shared_ptr<RunState>;

struct RunState
{
    TaskPtr task;
    QJsonObject args;  // typed, secrets in clear; read-only after creation
    QStringList secrets; // secret values masked in the log and messages; read-only after creation
    RunOptions options;
    std::chrono::milliseconds timeout{0};
    quint64 order = 0; // place in the order runs were queued; read-only after creation
    quint64 key = 0;   // runIdKey() of run.id, the engine's map key; read-only after creation

    std::atomic<bool> cancelRequested{false};
    std::atomic<int> stopReason{NotStopped};
    // When the current attempt times out (steady clock, ms); 0 for none. Written under mutex.
    std::atomic<qint64> deadlineMs{0};

    // Held while a change is numbered and handed to the recorder, so the recorder receives
    // a run's changes in the order of their numbers, and its finish after every line.
    std::mutex recordMutex;

    mutable std::mutex mutex;
    // What everybody is shown: the finish appears here only once it is durable.
    Run run;                          // guarded by mutex; run.seq is the latest event's
    std::shared_ptr<const Run> final; // guarded by mutex; set when closed, shown once durable
    // The run's latest events: every one not delivered yet and, before those, about
    // bufferSize lines' worth, to follow the run from an earlier seq.
    RunEvents events;                 // guarded by mutex
    qsizetype eventLines = 0;         // guarded by mutex; lines in events
    qint64 deliveredSeq = 0;          // guarded by mutex; events up to here went out
    qsizetype pendingLines = 0;       // guarded by mutex; lines after deliveredSeq
    bool progressUnsent = false;      // guarded by mutex; run.progress has no event yet
    // The engine's thread did not take the lines in time once: producers wait no more
    // until it takes them (it may be blocked, in run() for instance).
    bool pressureOff = false;         // guarded by mutex
    bool dirty = false;               // guarded by mutex; listed for the next delivery
    std::vector<std::shared_ptr<FollowerLink>> followers; // guarded by mutex
    QString scratchDir;               // guarded by mutex
    bool closed = false;              // guarded by mutex; the final state is taken
    bool finished = false;            // guarded by mutex; the finish is published
    bool abandoned = false;           // guarded by mutex; left behind at shutdown
    // One condition for "finished", "canceled" and "lines taken": waiters recheck theirs.
    std::condition_variable changed;  // waits on mutex
};

/*! Lets the finish callbacks a recorder holds find the engine only while it exists. */
struct EngineGate
{
    std::mutex mutex;
    EngineCore *core = nullptr; // guarded by mutex
};

// Runs taken from the queue under the scheduling mutex, started after it is released.
using ReadyRuns = QVarLengthArray<RunStatePtr, 4>;

struct Outcome
{
    bool ok = false;
    QJsonValue result;
    RunError error;
};

class EngineCore
{
public:
    EngineCore(TaskEngine *q, TaskRegistry *registry, const EngineConfig &config);
    ~EngineCore();

    StartResult start(const QString &key, const QJsonObject &args, const RunOptions &options,
                      std::shared_ptr<RunState> *state = nullptr);
    bool cancel(const QString &runId);
    void cancelAll();
    RunStatePtr find(const QString &runId) const;
    Following follow(const QString &runId, const FollowOptions &options);
    std::optional<Run> waitForFinished(const QString &runId, std::chrono::milliseconds timeout);
    Run waitForState(const std::shared_ptr<RunState> &st, std::chrono::milliseconds timeout, bool *finished);
    bool shutdown(std::chrono::milliseconds grace);
    bool abandonStuckRuns();
    void detach();
    void deliverEvents();
    QList<Run> activeRuns() const;

    // Called from RunContext on a worker thread.
    void appendLog(const RunStatePtr &st, LogStream stream, const QString &text);
    void appendLines(const RunStatePtr &st, const OutputLine *lines, qsizetype count);
    void setProgress(const RunStatePtr &st, const Progress &progress);
    bool sleep(const RunStatePtr &st, std::chrono::milliseconds duration);

    TaskEngine *q;
    TaskRegistry *registry;
    EngineConfig config;
    // config.effectiveMaxConcurrent(), resolved once: with maxConcurrent 0 it asks the
    // kernel for the CPUs this process may use, a system call too slow for every dispatch.
    const int maxActive;
    // Owned here, but left behind (never deleted) when a task ignores the shutdown.
    QThreadPool *pool;
    IRunRecorder *recorder = nullptr;

private:
    friend class taskdeck::TaskEngine;
    void dispatchLocked(ReadyRuns &ready);
    RunStatePtr findLocked(const QString &runId) const;
    void launch(const ReadyRuns &ready, qsizetype from = 0);
    RunStatePtr execute(const RunStatePtr &st);
    Outcome invoke(const RunStatePtr &st, int attempt);
    bool beginAttempt(const RunStatePtr &st, int attempt);
    void waitForRetry(const RunStatePtr &st, int attempt, const RunError &error);
    RunStatePtr finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning,
                       bool handOff = false);
    void publishFinished(const RunStatePtr &st);
    void requestStop(const RunStatePtr &st, StopReason reason);
    void deliverRun(const RunStatePtr &st);
    void emitEvent(const RunState &st, const RunEvent &event);

    // Event bookkeeping, each with st.mutex held.
    void addEventLocked(RunState &st, RunEvent &&event);
    void trimEventsLocked(RunState &st);
    LogLines recentLinesLocked(const RunState &st) const;
    static void fillSnapshotLocked(const RunState &st, RunEvent &event);
    void sealProgressLocked(RunState &st);
    // Lists the run for the next delivery; true when it was not listed yet.
    bool markDirtyLocked(const RunStatePtr &st);

    void requestDelivery(bool soon);
    void schedulerLoop();
    qint64 stopOverdue();
    void wakeSchedulerFor(qint64 atMs);
    bool onEngineThread() const { return QThread::currentThread() == q->thread(); }

    const std::shared_ptr<EngineGate> m_gate = std::make_shared<EngineGate>();

    // Scheduling state. The engine's thread (start()) and every worker (finish()) take this
    // for a few instructions each time, at a high rate. Measured in bench_dispatch with each
    // lock alone made a std::mutex (bench/README.md, run 10): this one as a std::mutex took
    // 17 % longer (median of 8 runs each, alternating), so it keeps the spinning lock (see
    // spinmutex.h); the event list's lock below made no difference and is a std::mutex.
    mutable SpinMutex m_mutex;
    std::deque<RunStatePtr> m_queue;                   // guarded by m_mutex
    std::vector<RunStatePtr> m_active;                 // guarded by m_mutex; dispatched, not finished
    // Keyed by runIdKey(): hashing and comparing the ids themselves took about a tenth of
    // bench_history's store-off round (bench/README.md, run 13).
    QHash<quint64, RunStatePtr> m_runs;                // guarded by m_mutex
    std::deque<quint64> m_finishedOrder;               // guarded by m_mutex
    QHash<QString, int> m_runningPerTask;              // guarded by m_mutex; limited tasks only
    quint64 m_nextOrder = 0;                           // guarded by m_mutex
    int m_unpublished = 0;                             // guarded by m_mutex; finishes not yet durable
    std::condition_variable_any m_allPublished;        // waits on m_mutex
    std::atomic<bool> m_accepting{true};               // written under m_mutex
    double m_tokens = 0;                               // guarded by m_mutex
    qint64 m_lastRefillMs = 0;                         // guarded by m_mutex

    // Runs with events for the engine's thread, in the order they got their first one.
    std::mutex m_eventMutex;
    std::vector<RunStatePtr> m_dirty;        // guarded by m_eventMutex
    std::atomic<bool> m_flushQueued{false};  // a delivery is on its way (timer or soon)
    std::atomic<bool> m_soonQueued{false};   // a delivery on the next turn of the loop
    std::atomic<bool> m_draining{false};     // shutting down: producers no longer wait
    bool m_delivering = false;               // engine's thread only
    bool m_deliverAgain = false;             // engine's thread only
    RunEvents m_batch;                       // engine's thread only; reused between runs
    QTimer m_flushTimer;

    // Timeouts and rate-limit wake-ups, served by one thread so they fire even while the
    // engine's thread is blocked in run(). It finds the deadlines of the running runs in
    // m_active, so starting a run with the usual timeout costs no lock here and no wake-up.
    std::mutex m_schedMutex;
    std::condition_variable m_schedCondition;
    // When the scheduler's current wait ends (the maximum before its first look). A deadline
    // at or after it needs no wake-up: the scheduler publishes this before it looks at the
    // runs a last time, so it either sees the deadline or is woken for it.
    std::atomic<qint64> m_schedWakeAt{std::numeric_limits<qint64>::max()};
    bool m_rescan = false;                             // guarded by m_schedMutex
    qint64 m_rateWakeAt = 0;                           // guarded by m_schedMutex
    bool m_schedStop = false;                          // guarded by m_schedMutex
    std::thread m_scheduler;
};

EngineCore::EngineCore(TaskEngine *engine, TaskRegistry *reg, const EngineConfig &cfg)
    : q(engine)
    , registry(reg)
    , config(cfg)
    , maxActive(config.effectiveMaxConcurrent())
    , pool(new QThreadPool)
{
    config.bufferSize = std::max(1, config.bufferSize);
    config.finishedRunsKept = std::max(0, config.finishedRunsKept);
    config.startBurst = std::max(1, config.startBurst);
    m_gate->core = this;
    pool->setObjectName(u"taskdeck-engine"_s);
    pool->setMaxThreadCount(maxActive);
    m_tokens = config.startBurst;
    m_lastRefillMs = steadyNowMs();
    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(int(config.eventInterval.count()));
    QObject::connect(&m_flushTimer, &QTimer::timeout, q, [this] { deliverEvents(); });
    m_scheduler = std::thread([this] { schedulerLoop(); });
}

EngineCore::~EngineCore()
{
    // Reached only when every worker returned (see TaskEngine::~TaskEngine()).
    detach();
    pool->waitForDone();
    delete pool;
}

void EngineCore::detach()
{
    std::lock_guard lock(m_gate->mutex);
    m_gate->core = nullptr;
}

StartResult EngineCore::start(const QString &key, const QJsonObject &args, const RunOptions &options,
                              RunStatePtr *state)
{
    StartResult answer;
    const TaskPtr task = registry->find(key);
    if (!task) {
        answer.error.code = StartError::Code::UnknownTask;
        answer.error.suggestions = registry->nearestKeys(key);
        answer.error.message = answer.error.suggestions.isEmpty()
            ? u"unknown task \"%1\""_s.arg(key)
            : u"unknown task \"%1\"; did you mean: %2?"_s.arg(key, answer.error.suggestions.join(u", "_s));
        return answer;
    }
    Validation validation = validateArguments(task->fields, args);
    if (!validation.ok()) {
        answer.error.code = StartError::Code::InvalidArguments;
        answer.error.fields = validation.errors;
        answer.error.message = u"invalid arguments for task \"%1\": %2"_s.arg(key, formatFieldErrors(validation.errors));
        return answer;
    }
    if (task->isDangerous() && !options.confirmed) {
        answer.error.code = StartError::Code::ConfirmationRequired;
        answer.error.message = u"task \"%1\" needs confirmation: %2"_s.arg(key, task->danger);
        return answer;
    }

    if (!m_accepting.load()) {
        answer.error.code = StartError::Code::ShuttingDown;
        answer.error.message = u"the engine is shutting down; task \"%1\" was not started"_s.arg(key);
        return answer;
    }

    auto st = std::make_shared<RunState>();
    st->task = task;
    st->args = validation.values;
    st->secrets = secretValues(task->fields, validation.values);
    st->options = options;
    st->timeout = options.timeout ? *options.timeout : task->timeout ? *task->timeout : config.defaultTimeout;
    st->run.id = newRunId(&st->key);
    st->run.task = task->key;
    st->run.args = redactSecrets(task->fields, validation.values);
    st->run.maxAttempts = task->retry.maxAttempts;
    st->run.queuedAt = QDateTime::currentDateTimeUtc();
    st->run.owner = processOwner();
    // "00-TRACEID-PARENTID-FLAGS": the run is kept under its caller's trace.
    if (const QString traceId = options.traceParent.section(u'-', 1, 1); traceId.size() == 32)
        st->run.traceId = traceId;
    st->run.seq = 1;
    const QString id = st->run.id;

    // The queued event goes out before the run enters the queue, so no worker can report
    // its start first. Nobody else knows the run yet: no lock needed for its state.
    if (recorder)
        recorder->recordQueued(st->run);
    {
        std::lock_guard locker(st->mutex);
        // Room for the start, the finish and a first log event too, made here on the thread
        // that made the run: allocated on a worker, this memory came from the worker's own
        // heap, which gave it back to the system after every burst of runs and faulted it in
        // again for the next (bench/README.md, run 13).
        st->events.reserve(4);
        // Its snapshot is made when somebody asks for it (see fillSnapshotLocked()).
        addEventLocked(*st, RunEvent{RunEvent::Type::Queued, 1, {}, {}, {}});
        markDirtyLocked(st);
    }
    requestDelivery(true);
    ReadyRuns ready;
    bool accepted = true;
    {
        std::lock_guard locker(m_mutex);
        st->order = m_nextOrder++;
        m_runs.insert(st->key, st);
        accepted = m_accepting.load();
        if (accepted) {
            m_queue.push_back(st);
            dispatchLocked(ready);
        }
    }
    launch(ready);
    if (!accepted) {
        // Shutdown began after the check above; the run exists now, so it ends like every
        // queued run that shutdown cancels.
        st->stopReason.store(StopCanceled);
        st->cancelRequested.store(true);
        finish(st, RunStatus::Canceled, {false, {}, {u"canceled: the engine shut down before it started"_s, u"Canceled"_s, {}, false}}, false);
    }
    answer.runId = id;
    if (state)
        *state = st;
    return answer;
}

void EngineCore::dispatchLocked(ReadyRuns &ready)
{
    while (qsizetype(m_active.size()) < maxActive && !m_queue.empty()) {
        const auto eligible = std::find_if(m_queue.begin(), m_queue.end(), [this](const RunStatePtr &st) {
            return st->task->maxConcurrent <= 0
                   || m_runningPerTask.value(st->task->key) < st->task->maxConcurrent;
        });
        if (eligible == m_queue.end())
            return;
        if (config.startRate > 0) {
            const qint64 now = steadyNowMs();
            m_tokens = std::min(double(config.startBurst),
                                m_tokens + double(now - m_lastRefillMs) * config.startRate / 1000.0);
            m_lastRefillMs = now;
            if (m_tokens < 1.0) {
                const qint64 wait = qint64(std::ceil((1.0 - m_tokens) * 1000.0 / config.startRate));
                const qint64 at = now + std::max<qint64>(1, wait);
                {
                    std::lock_guard<std::mutex> sched(m_schedMutex);
                    if (m_rateWakeAt == 0 || m_rateWakeAt > at)
                        m_rateWakeAt = at;
                }
                wakeSchedulerFor(at);
                return;
            }
            m_tokens -= 1.0;
        }
        RunStatePtr st = *eligible;
        m_queue.erase(eligible);
        if (st->task->maxConcurrent > 0)
            ++m_runningPerTask[st->task->key];
        m_active.push_back(st);
        ready.append(std::move(st));
    }
}

void EngineCore::launch(const ReadyRuns &ready, qsizetype from)
{
    for (qsizetype i = from; i < ready.size(); ++i) {
        detail::startOnPool(pool, [this, st = ready.at(i)]() mutable {
            static thread_local bool named = false;
            if (!named) {
                QThread::currentThread()->setObjectName(u"taskdeck-worker"_s);
                named = true;
            }
            // A worker whose run ends takes the next queued one itself: no hand-over to the
            // pool and no other thread to wake while the queue is busy.
            while (st)
                st = execute(st);
        });
    }
}

bool EngineCore::beginAttempt(const RunStatePtr &st, int attempt)
{
    std::shared_ptr<const Run> snapshot;
    qint64 deadline = 0;
    {
        std::lock_guard record(st->recordMutex);
        {
            std::lock_guard locker(st->mutex);
            if (st->closed)
                return false;
            sealProgressLocked(*st);
            st->run.status = RunStatus::Running;
            st->run.attempt = attempt;
            st->run.nextAttemptAt = QDateTime();
            if (!st->run.startedAt.isValid())
                st->run.startedAt = QDateTime::currentDateTimeUtc();
            if (st->timeout.count() > 0)
                deadline = steadyNowMs() + st->timeout.count();
            st->deadlineMs.store(deadline);
            st->run.seq += 1;
            snapshot = std::make_shared<const Run>(st->run);
            addEventLocked(*st, RunEvent{RunEvent::Type::Started, snapshot->seq, {}, {}, snapshot});
            markDirtyLocked(st);
        }
        if (recorder)
            recorder->recordStarted(*snapshot);
    }
    if (deadline)
        wakeSchedulerFor(deadline);
    requestDelivery(true);
    return true;
}

void EngineCore::waitForRetry(const RunStatePtr &st, int attempt, const RunError &error)
{
    const RetryPolicy &retry = st->task->retry;
    const auto base = retry.baseDelay(attempt);
    const double spread = std::clamp(retry.jitter, 0.0, 1.0);
    const double factor = 1.0 + spread * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
    const auto delay = std::chrono::milliseconds(qint64(double(base.count()) * factor));
    appendLog(st, LogStream::System,
              u"attempt %1 of %2 failed: %3; retrying in %4"_s.arg(
                  QString::number(attempt), QString::number(retry.maxAttempts), error.message,
                  formatDuration(delay)));
    {
        std::lock_guard record(st->recordMutex);
        std::shared_ptr<const Run> snapshot;
        {
            std::lock_guard locker(st->mutex);
            if (st->closed)
                return;
            sealProgressLocked(*st);
            st->run.status = RunStatus::Retrying;
            st->run.nextAttemptAt = QDateTime::currentDateTimeUtc().addMSecs(delay.count());
            st->deadlineMs.store(0); // the timeout is per attempt
            st->run.seq += 1;
            snapshot = std::make_shared<const Run>(st->run);
            addEventLocked(*st, RunEvent{RunEvent::Type::Retrying, snapshot->seq, {}, {}, snapshot});
            markDirtyLocked(st);
        }
        if (recorder)
            recorder->recordRetrying(*snapshot);
    }
    requestDelivery(true);
    sleep(st, delay);
}

Outcome EngineCore::invoke(const RunStatePtr &st, int attempt)
{
    Outcome outcome;
    auto context = [&] {
        return u"task: %1\nattempt: %2 of %3\nargs: %4"_s.arg(
            st->task->key, QString::number(attempt), QString::number(st->task->retry.maxAttempts),
            QString::fromUtf8(QJsonDocument(st->run.args).toJson(QJsonDocument::Compact)));
    };
    try {
        RunContext ctx(this, st);
        outcome.result = st->task->fn(ctx);
        outcome.ok = true;
    } catch (const TaskError &e) {
        outcome.error = {e.message(), e.kind(), context() + u'\n' + e.detail(), e.isTransient()};
    } catch (const std::exception &e) {
        outcome.error = {QString::fromLocal8Bit(e.what()), demangledTypeName(typeid(e)), context(), false};
    } catch (...) {
        outcome.error = {u"the task threw something that is not an exception"_s, u"unknown"_s, context(), false};
    }
    return outcome;
}

RunStatePtr EngineCore::execute(const RunStatePtr &st)
{
    const RetryPolicy &retry = st->task->retry;
    QStringList failures;
    for (int attempt = 1;; ++attempt) {
        if (st->cancelRequested.load()) {
            return finish(st, st->stopReason.load() == StopTimedOut ? RunStatus::TimedOut : RunStatus::Canceled, {},
                          true, true);
        }
        if (!beginAttempt(st, attempt))
            return {}; // left behind at shutdown
        Outcome outcome = invoke(st, attempt);
        const int stop = st->stopReason.load();
        if (stop == StopTimedOut) {
            outcome.error = {u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s,
                             outcome.error.message.isEmpty() ? QString() : u"the task then reported: "_s + outcome.error.message,
                             false};
            return finish(st, RunStatus::TimedOut, outcome, true, true);
        }
        if (stop == StopCanceled) {
            outcome.error = {u"canceled"_s, u"Canceled"_s, QString(), false};
            return finish(st, RunStatus::Canceled, outcome, true, true);
        }
        if (outcome.ok)
            return finish(st, RunStatus::Succeeded, outcome, true, true);
        failures << u"attempt %1: %2"_s.arg(attempt).arg(outcome.error.message);
        if (!outcome.error.transient || attempt >= retry.maxAttempts) {
            if (failures.size() > 1)
                outcome.error.detail += u"\nattempts:\n  "_s + failures.join(u"\n  "_s);
            return finish(st, RunStatus::Failed, outcome, true, true);
        }
        waitForRetry(st, attempt, outcome.error);
    }
}

RunStatePtr EngineCore::finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning,
                               bool handOff)
{
    QString scratch;
    std::shared_ptr<const Run> final;
    // Every line numbered so far reaches the recorder before the finish does.
    std::unique_lock record(st->recordMutex);
    {
        std::lock_guard locker(st->mutex);
        if (st->abandoned)
            return {}; // recorded as interrupted at shutdown
        sealProgressLocked(*st);
        if (st->deliveredSeq < st->run.seq)
            markDirtyLocked(st);
        Run run = st->run;
        run.status = status;
        run.finishedAt = QDateTime::currentDateTimeUtc();
        run.nextAttemptAt = QDateTime();
        run.seq += 1; // the finish's own number; nothing else is numbered after close
        if (status == RunStatus::Succeeded) {
            // A result, like the log, never carries a secret argument in clear.
            run.result = maskSecrets(st->secrets, outcome.result);
        } else {
            run.error = outcome.error;
            // An error may quote the command's output (its last stderr lines, say).
            run.error.message = maskSecrets(st->secrets, run.error.message);
            run.error.detail = maskSecrets(st->secrets, run.error.detail);
            if (run.error.isEmpty()) {
                run.error = status == RunStatus::TimedOut
                    ? RunError{u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s, {}, false}
                    : RunError{u"canceled"_s, u"Canceled"_s, {}, false};
            }
        }
        final = std::make_shared<const Run>(std::move(run));
        st->final = final;
        st->closed = true;
        st->deadlineMs.store(0);
        scratch = std::exchange(st->scratchDir, QString());
    }
    if (!scratch.isEmpty())
        QDir(scratch).removeRecursively();
    ReadyRuns ready;
    {
        std::lock_guard locker(m_mutex);
        if (wasRunning) {
            const auto active = std::find(m_active.begin(), m_active.end(), st);
            if (active != m_active.end()) {
                std::swap(*active, m_active.back());
                m_active.pop_back();
            }
            if (st->task->maxConcurrent > 0 && --m_runningPerTask[final->task] <= 0)
                m_runningPerTask.remove(final->task);
        }
        m_finishedOrder.push_back(st->key);
        while (qsizetype(m_finishedOrder.size()) > config.finishedRunsKept) {
            m_runs.remove(m_finishedOrder.front());
            m_finishedOrder.pop_front();
        }
        ++m_unpublished;
        dispatchLocked(ready);
    }
    // The slot is free for the next run already; the finish is shown once it is durable.
    RunStatePtr next;
    if (handOff && !ready.isEmpty())
        next = ready.front();
    launch(ready, next ? 1 : 0);
    // The recorder may call this after the engine is gone (a commit that waited behind
    // another process): the gate tells.
    auto publish = [gate = m_gate, st] {
        std::lock_guard lock(gate->mutex);
        if (gate->core) {
            gate->core->publishFinished(st);
        } else {
            std::lock_guard locker(st->mutex);
            st->run = *st->final;
            st->finished = true;
            st->changed.notify_all();
        }
    };
    if (recorder)
        recorder->recordFinished(*final, std::move(publish));
    else
        publish();
    return next;
}

void EngineCore::publishFinished(const RunStatePtr &st)
{
    {
        std::lock_guard locker(st->mutex);
        st->run = *st->final;
        st->finished = true;
        addEventLocked(*st, RunEvent{RunEvent::Type::Finished, st->final->seq, {}, {}, st->final});
        markDirtyLocked(st);
    }
    st->changed.notify_all();
    requestDelivery(true);
    std::lock_guard locker(m_mutex);
    if (--m_unpublished == 0)
        m_allPublished.notify_all();
}

void EngineCore::requestStop(const RunStatePtr &st, StopReason reason)
{
    int expected = NotStopped;
    const bool first = st->stopReason.compare_exchange_strong(expected, reason);
    // The line is numbered before the task can see the request, so it is never lost to a
    // run that ends at once.
    if (first) {
        appendLog(st, LogStream::System, reason == StopTimedOut
                      ? u"timed out after %1; stopping"_s.arg(formatDuration(st->timeout))
                      : u"cancel requested; stopping"_s);
    }
    {
        // Set under the mutex, so a waiter checks it either before it sleeps or after.
        std::lock_guard locker(st->mutex);
        st->cancelRequested.store(true);
    }
    st->changed.notify_all();
}

bool EngineCore::cancel(const QString &runId)
{
    RunStatePtr st;
    bool wasQueued = false;
    {
        std::lock_guard locker(m_mutex);
        st = findLocked(runId);
        if (!st)
            return false;
        const auto it = std::find(m_queue.begin(), m_queue.end(), st);
        if (it != m_queue.end()) {
            m_queue.erase(it);
            wasQueued = true;
        }
    }
    if (wasQueued) {
        st->stopReason.store(StopCanceled);
        st->cancelRequested.store(true);
        finish(st, RunStatus::Canceled, {false, {}, {u"canceled before it started"_s, u"Canceled"_s, {}, false}}, false);
        return true;
    }
    {
        std::lock_guard locker(st->mutex);
        if (st->closed)
            return false;
    }
    requestStop(st, StopCanceled);
    return true;
}

void EngineCore::cancelAll()
{
    QStringList ids;
    {
        std::lock_guard locker(m_mutex);
        // Queued runs first, in queue order, so none of them starts while others are canceled.
        QSet<QString> seen;
        for (const RunStatePtr &st : m_queue) {
            ids << st->run.id; // the id never changes after creation
            seen.insert(st->run.id);
        }
        for (const RunStatePtr &st : std::as_const(m_runs)) {
            if (!seen.contains(st->run.id))
                ids << st->run.id;
        }
    }
    for (const QString &id : std::as_const(ids))
        cancel(id);
}

RunStatePtr EngineCore::find(const QString &runId) const
{
    std::lock_guard locker(m_mutex);
    return findLocked(runId);
}

RunStatePtr EngineCore::findLocked(const QString &runId) const
{
    const std::optional<quint64> key = runIdKey(runId);
    if (!key)
        return {};
    RunStatePtr st = m_runs.value(*key);
    // The id never changes after creation.
    if (st && st->run.id != runId)
        return {};
    return st;
}

QList<Run> EngineCore::activeRuns() const
{
    QList<RunStatePtr> states;
    {
        std::lock_guard locker(m_mutex);
        for (const auto &st : m_runs)
            states << st;
    }
    std::sort(states.begin(), states.end(), [](const RunStatePtr &a, const RunStatePtr &b) {
        return a->order < b->order;
    });
    QList<Run> runs;
    for (const auto &st : std::as_const(states)) {
        std::lock_guard locker(st->mutex);
        if (!isTerminal(st->run.status))
            runs << st->run;
    }
    return runs;
}

Following EngineCore::follow(const QString &runId, const FollowOptions &options)
{
    Following answer;
    const RunStatePtr st = find(runId);
    if (!st)
        return answer;
    auto cancelRun = [gate = m_gate, runId] {
        std::lock_guard lock(gate->mutex);
        return gate->core ? gate->core->cancel(runId) : false;
    };
    bool deliver = false;
    {
        std::lock_guard locker(st->mutex);
        // The snapshot includes the latest progress; its event goes to earlier followers.
        sealProgressLocked(*st);
        deliver = st->deliveredSeq < st->run.seq && markDirtyLocked(st);
        answer.run = st->run;
        answer.recentLog = recentLinesLocked(*st);
        const qint64 now = st->run.seq;
        const qint64 after = options.after < 0 ? now : std::min(options.after, now);
        RunEvents replay;
        qint64 firstHeld = now + 1;
        if (after < now) {
            for (const RunEvent &event : std::as_const(st->events)) {
                if (event.lastSeq() > after) {
                    replay.append(event);
                    fillSnapshotLocked(*st, replay.last());
                }
            }
            firstHeld = st->events.isEmpty() ? now + 1 : st->events.constFirst().seq;
        }
        // Events the window no longer holds come from the caller (the history); until
        // then the handle holds what the engine gives it.
        const bool missing = firstHeld > after + 1;
        answer.missingTo = missing ? firstHeld - 1 : 0;
        answer.handle = std::make_unique<RunHandle>(runId, missing ? answer.missingTo : after,
                                                    options.maxQueuedLines, cancelRun, true);
        if (!replay.isEmpty())
            RunHandle::pushTo(answer.handle->link(), replay);
        if (!st->finished)
            st->followers.push_back(answer.handle->link());
    }
    if (deliver)
        requestDelivery(false);
    if (!answer.missingTo)
        answer.handle->release();
    return answer;
}

std::optional<Run> EngineCore::waitForFinished(const QString &runId, std::chrono::milliseconds timeout)
{
    const RunStatePtr st = find(runId);
    if (!st)
        return std::nullopt;
    bool finished = false;
    Run run = waitForState(st, timeout, &finished);
    return finished ? std::optional<Run>(std::move(run)) : std::nullopt;
}

Run EngineCore::waitForState(const RunStatePtr &st, std::chrono::milliseconds timeout, bool *finished)
{
    // Events are not delivered from here: receivers get them from the event loop, in order.
    const auto deadline = std::chrono::steady_clock::now()
        + std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24 * 365 * 10));
    std::unique_lock locker(st->mutex);
    *finished = st->changed.wait_until(locker, deadline, [&st] { return st->finished; });
    return st->run;
}

bool EngineCore::shutdown(std::chrono::milliseconds grace)
{
    {
        std::lock_guard locker(m_mutex);
        m_accepting.store(false);
    }
    m_draining.store(true);
    cancelAll();
    QDeadlineTimer deadline(grace);
    bool done = pool->waitForDone(int(grace.count()));
    {
        // Finishes the recorder has not made durable yet still belong to this engine.
        std::unique_lock locker(m_mutex);
        m_allPublished.wait_for(locker, std::chrono::milliseconds(std::max<qint64>(0, deadline.remainingTime())),
                                [this] { return m_unpublished == 0; });
        done = done && m_unpublished == 0;
    }
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        m_schedStop = true;
    }
    m_schedCondition.notify_all();
    if (m_scheduler.joinable())
        m_scheduler.join();
    if (!done)
        qCWarning(lcEngine) << "some tasks did not stop within" << grace.count() << "ms of shutdown";
    return done;
}

bool EngineCore::abandonStuckRuns()
{
    std::vector<RunStatePtr> active;
    {
        std::lock_guard locker(m_mutex);
        active = m_active;
    }
    bool left = false;
    for (const RunStatePtr &st : active) {
        {
            std::lock_guard locker(st->mutex);
            if (st->closed)
                continue;
            // From here the worker's calls find the run closed and touch nothing else.
            st->closed = true;
            st->abandoned = true;
        }
        left = true;
        // Wait for a change the worker is handing to the recorder right now.
        std::lock_guard record(st->recordMutex);
        Run run;
        {
            std::lock_guard locker(st->mutex);
            run = st->run;
        }
        run.status = RunStatus::Interrupted;
        run.finishedAt = QDateTime::currentDateTimeUtc();
        run.nextAttemptAt = QDateTime();
        run.seq += 1;
        run.error = {u"the task did not stop when Taskdeck closed; it was left running and its "
                     "result is lost"_s,
                     u"Abandoned"_s,
                     u"the task was asked to stop and did not return within the shutdown grace "
                     "period; a task function must poll RunContext::isCanceled()"_s,
                     false};
        qCWarning(lcEngine).noquote() << u"run %1 (%2) did not stop; recorded as interrupted"_s.arg(run.id, run.task);
        if (recorder) {
            auto durable = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
            auto done = std::make_shared<bool>(false);
            recorder->recordFinished(run, [durable, done] {
                std::lock_guard lock(durable->first);
                *done = true;
                durable->second.notify_all();
            });
            std::unique_lock lock(durable->first);
            durable->second.wait_for(lock, std::chrono::seconds(5), [&done] { return *done; });
        }
        std::lock_guard locker(st->mutex);
        st->run = run;
        st->finished = true;
    }
    return left;
}

void EngineCore::appendLog(const RunStatePtr &st, LogStream stream, const QString &text)
{
    const OutputLine line{stream, text};
    appendLines(st, &line, 1);
}

void EngineCore::appendLines(const RunStatePtr &st, const OutputLine *lines, qsizetype count)
{
    if (count <= 0)
        return;
    if (!onEngineThread() && !m_draining.load()) {
        // A run that prints faster than the engine's thread takes its lines waits here (a
        // bounded time) instead of growing memory; other runs are not held up.
        std::unique_lock locker(st->mutex);
        if (st->pendingLines >= kPendingLineCap && !st->pressureOff) {
            st->pressureOff = !st->changed.wait_for(locker, 250ms, [this, &st] {
                return st->pendingLines < kPendingLineCap || st->closed || m_draining.load();
            });
        }
    }
    const qint64 timeMs = QDateTime::currentMSecsSinceEpoch();
    LogLines batch;
    batch.reserve(count);
    bool listed = false;
    QString id;
    std::lock_guard record(st->recordMutex);
    {
        std::lock_guard locker(st->mutex);
        // A line from another thread (a cancel, a timeout) that loses the race with the end
        // of the run has nowhere to go: the final state is already taken.
        if (st->closed)
            return;
        // Secrets are masked before a line is stored, shown or followed.
        for (qsizetype i = 0; i < count; ++i) {
            batch.append(LogLine{++st->run.logLines, timeMs, lines[i].stream,
                                 maskSecrets(st->secrets, lines[i].text), ++st->run.seq});
        }
        addEventLocked(*st, RunEvent{RunEvent::Type::Log, batch.constFirst().seq, batch, {}, {}});
        listed = markDirtyLocked(st);
        id = st->run.id;
    }
    if (recorder)
        recorder->recordLog(id, batch);
    if (listed)
        requestDelivery(false);
}

void EngineCore::setProgress(const RunStatePtr &st, const Progress &progress)
{
    Progress masked;
    bool listed = false;
    QString id;
    std::lock_guard record(st->recordMutex);
    {
        std::lock_guard locker(st->mutex);
        if (st->closed)
            return;
        st->run.progress = progress;
        st->run.progress.message = maskSecrets(st->secrets, progress.message);
        masked = st->run.progress;
        // Numbered when the engine's thread takes the run's events: a run that reports
        // progress for every item costs one event per delivery, not one per report.
        st->progressUnsent = true;
        listed = markDirtyLocked(st);
        id = st->run.id;
    }
    if (recorder)
        recorder->recordProgress(id, masked);
    if (listed)
        requestDelivery(false);
}

bool EngineCore::sleep(const RunStatePtr &st, std::chrono::milliseconds duration)
{
    std::unique_lock locker(st->mutex);
    st->changed.wait_for(locker, duration, [&st] { return st->cancelRequested.load(); });
    return !st->cancelRequested.load();
}

void EngineCore::addEventLocked(RunState &st, RunEvent &&event)
{
    // Log events hold at most this many lines, so dropping the oldest lines moves little.
    constexpr qsizetype kChunk = 256;
    if (event.type != RunEvent::Type::Log) {
        st.events.append(std::move(event));
        trimEventsLocked(st);
        return;
    }
    const LogLines &lines = event.lines;
    st.pendingLines += lines.size();
    st.eventLines += lines.size();
    for (qsizetype i = 0; i < lines.size();) {
        if (st.events.isEmpty() || st.events.constLast().type != RunEvent::Type::Log
            || st.events.constLast().lines.size() >= kChunk) {
            st.events.append(RunEvent{RunEvent::Type::Log, lines.at(i).seq, {}, {}, {}});
            st.events.last().lines.reserve(std::min(kChunk, lines.size() - i));
        }
        LogLines &into = st.events.last().lines;
        detail::acquireDroppedCopies(into); // followers may have read this chunk and let go
        const qsizetype take = std::min(kChunk - into.size(), lines.size() - i);
        into.append(lines.constBegin() + i, lines.constBegin() + i + take);
        i += take;
    }
    trimEventsLocked(st);
}

void EngineCore::trimEventsLocked(RunState &st)
{
    // Beyond the lines, events of other kinds kept (the progress of a quiet run).
    constexpr qsizetype kOtherEvents = 1024;
    const qsizetype keepLines = config.bufferSize;
    while (!st.events.isEmpty()) {
        RunEvent &front = st.events.first();
        if (front.lastSeq() > st.deliveredSeq)
            return; // not delivered yet
        const bool tooMany = st.events.size() > keepLines / 64 + kOtherEvents;
        if (st.eventLines <= keepLines && !tooMany)
            return;
        if (front.type == RunEvent::Type::Log) {
            const qsizetype excess = st.eventLines - keepLines;
            if (!tooMany && excess < front.lines.size()) {
                detail::acquireDroppedCopies(front.lines); // delivered: read by followers
                front.lines.remove(0, excess);
                front.seq = front.lines.constFirst().seq;
                st.eventLines -= excess;
                return;
            }
            st.eventLines -= front.lines.size();
        }
        st.events.removeFirst();
    }
}

LogLines EngineCore::recentLinesLocked(const RunState &st) const
{
    LogLines lines;
    lines.reserve(std::min<qsizetype>(st.eventLines, config.bufferSize));
    qsizetype skip = std::max<qsizetype>(0, st.eventLines - config.bufferSize);
    for (const RunEvent &event : st.events) {
        if (event.type != RunEvent::Type::Log)
            continue;
        if (skip >= event.lines.size()) {
            skip -= event.lines.size();
            continue;
        }
        lines.append(event.lines.constBegin() + skip, event.lines.constEnd());
        skip = 0;
    }
    return lines;
}

void EngineCore::fillSnapshotLocked(const RunState &st, RunEvent &event)
{
    if (event.type != RunEvent::Type::Queued || event.run)
        return;
    // These fields never change once start() has made the run; the others still hold
    // their defaults in a run that waits in the queue.
    Run run;
    run.id = st.run.id;
    run.task = st.run.task;
    run.args = st.run.args;
    run.maxAttempts = st.run.maxAttempts;
    run.queuedAt = st.run.queuedAt;
    run.owner = st.run.owner;
    run.traceId = st.run.traceId;
    run.seq = event.seq;
    event.run = std::make_shared<const Run>(std::move(run));
}

void EngineCore::sealProgressLocked(RunState &st)
{
    if (!st.progressUnsent)
        return;
    st.progressUnsent = false;
    st.run.seq += 1;
    addEventLocked(st, RunEvent{RunEvent::Type::Progress, st.run.seq, {}, st.run.progress, {}});
}

bool EngineCore::markDirtyLocked(const RunStatePtr &st)
{
    if (st->dirty)
        return false;
    st->dirty = true;
    std::lock_guard lock(m_eventMutex);
    m_dirty.push_back(st);
    return true;
}

void EngineCore::requestDelivery(bool soon)
{
    // The flags are reset before the engine's thread takes the list, so a run listed after
    // that always asks for a new delivery, and one listed before is always taken.
    if (soon) {
        // Lifecycle changes go out on the next turn of the event loop; one queued delivery
        // carries every event that arrives before it runs.
        if (m_soonQueued.exchange(true))
            return;
        m_flushQueued.store(true);
        detail::postTo(q, [this] { deliverEvents(); });
        return;
    }
    // Log lines and progress wait up to one event interval, to arrive in batches.
    if (m_flushQueued.exchange(true))
        return;
    // QTimer must be started on its own thread.
    if (onEngineThread()) {
        if (!m_flushTimer.isActive())
            m_flushTimer.start();
    } else {
        detail::postTo(q, [this] {
            if (!m_flushTimer.isActive())
                m_flushTimer.start();
        });
    }
}

void EngineCore::deliverEvents()
{
    m_flushTimer.stop();
    m_soonQueued.store(false);
    m_flushQueued.store(false);
    if (m_delivering) {
        // A receiver runs an event loop of its own (a dialog, a wait): events delivered
        // from in there would overtake the ones still being delivered. They go out once
        // that receiver returns.
        m_deliverAgain = true;
        return;
    }
    std::vector<RunStatePtr> dirty;
    {
        std::lock_guard lock(m_eventMutex);
        dirty.swap(m_dirty);
    }
    m_delivering = true;
    for (const RunStatePtr &st : dirty)
        deliverRun(st);
    m_delivering = false;
    if (std::exchange(m_deliverAgain, false))
        requestDelivery(true);
}

void EngineCore::deliverRun(const RunStatePtr &st)
{
    // Reused: with no follower holding on to it, it keeps its memory from run to run.
    RunEvents &events = m_batch;
    if (events.isDetached())
        events.clear();
    else
        events = RunEvents();
    std::vector<std::shared_ptr<FollowerLink>> followers;
    bool drained = false;
    {
        std::lock_guard locker(st->mutex);
        st->dirty = false;
        sealProgressLocked(*st);
        followers = st->followers;
        const bool snapshots = !followers.empty()
            || q->isSignalConnected(QMetaMethod::fromSignal(&TaskEngine::runQueued));
        for (const RunEvent &event : std::as_const(st->events)) {
            if (event.lastSeq() <= st->deliveredSeq)
                continue;
            events.append(event);
            RunEvent &out = events.last();
            if (out.type == RunEvent::Type::Log && out.seq <= st->deliveredSeq) {
                out.lines = out.lines.mid(st->deliveredSeq - out.seq + 1);
                out.seq = out.lines.constFirst().seq;
            }
            if (snapshots)
                fillSnapshotLocked(*st, out);
        }
        if (!events.isEmpty())
            st->deliveredSeq = events.constLast().lastSeq();
        drained = st->pendingLines >= kPendingLineCap;
        st->pendingLines = 0;
        st->pressureOff = false;
        trimEventsLocked(*st);
    }
    if (drained)
        st->changed.notify_all();
    // Each follower gets the same batch: one delivery per batch, whatever their number.
    std::vector<std::shared_ptr<FollowerLink>> gone;
    for (const auto &link : followers) {
        if (!RunHandle::pushTo(link, events))
            gone.push_back(link);
    }
    if (!gone.empty()) {
        std::lock_guard locker(st->mutex);
        auto &list = st->followers;
        list.erase(std::remove_if(list.begin(), list.end(), [&gone](const auto &link) {
                       return std::find(gone.cbegin(), gone.cend(), link) != gone.cend();
                   }), list.end());
    }
    // deliverEvents() does not nest, so nothing else uses m_batch meanwhile.
    for (const RunEvent &event : std::as_const(events))
        emitEvent(*st, event);
}

void EngineCore::emitEvent(const RunState &st, const RunEvent &event)
{
    const QString &id = st.run.id; // never changes after creation
    switch (event.type) {
    case RunEvent::Type::Queued:
        if (event.run) // made only when somebody listens
            Q_EMIT q->runQueued(*event.run);
        break;
    case RunEvent::Type::Started: Q_EMIT q->runStarted(*event.run); break;
    case RunEvent::Type::Retrying: Q_EMIT q->runRetrying(*event.run); break;
    case RunEvent::Type::Progress: Q_EMIT q->runProgress(id, event.progress); break;
    case RunEvent::Type::Log: Q_EMIT q->runLog(id, event.lines); break;
    case RunEvent::Type::Finished: Q_EMIT q->runFinished(*event.run); break;
    }
}

void EngineCore::wakeSchedulerFor(qint64 atMs)
{
    // The scheduler publishes when its wait ends before it looks at the runs a last time,
    // so a later deadline needs no wake-up.
    if (atMs >= m_schedWakeAt.load())
        return;
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        m_rescan = true;
    }
    m_schedCondition.notify_one();
}

qint64 EngineCore::stopOverdue()
{
    const qint64 now = steadyNowMs();
    QVarLengthArray<RunStatePtr, 8> due;
    qint64 next = kNever;
    {
        std::lock_guard locker(m_mutex);
        for (const RunStatePtr &st : m_active) {
            const qint64 at = st->deadlineMs.load();
            if (at == 0)
                continue;
            if (at <= now)
                due.append(st);
            else
                next = std::min(next, at);
        }
    }
    for (const RunStatePtr &st : due) {
        bool stop = false;
        {
            std::lock_guard locker(st->mutex);
            const qint64 at = st->deadlineMs.load();
            stop = !st->closed && st->run.status == RunStatus::Running && at != 0 && at <= now;
            if (stop)
                st->deadlineMs.store(0);
        }
        if (stop)
            requestStop(st, StopTimedOut);
    }
    return next;
}

void EngineCore::schedulerLoop()
{
    std::unique_lock<std::mutex> lock(m_schedMutex);
    while (!m_schedStop) {
        m_rescan = false;
        lock.unlock();
        qint64 next = stopOverdue();
        lock.lock();
        const qint64 now = steadyNowMs();
        if (m_rateWakeAt && m_rateWakeAt <= now) {
            m_rateWakeAt = 0;
            lock.unlock();
            ReadyRuns ready;
            {
                QMutexLocker locker(&m_mutex);
                dispatchLocked(ready);
            }
            launch(ready);
            lock.lock();
            continue;
        }
        if (m_rateWakeAt)
            next = std::min(next, m_rateWakeAt);
        m_schedWakeAt.store(next);
        if (m_rescan)
            continue;
        // A deadline set while the runs were being looked at compared itself with the old
        // wake time; look once more now that the new one is published.
        lock.unlock();
        const qint64 check = stopOverdue();
        lock.lock();
        if (check < next || m_rescan)
            continue;
        const auto woken = [this] { return m_rescan || m_schedStop; };
        if (next == kNever)
            m_schedCondition.wait(lock, woken);
        else
            m_schedCondition.wait_for(lock, std::chrono::milliseconds(std::max<qint64>(0, next - steadyNowMs())), woken);
    }
}

} // namespace detail

// RunContext ---------------------------------------------------------------------------

RunContext::RunContext(detail::EngineCore *core, std::shared_ptr<detail::RunState> state)
    : m_core(core)
    , m_state(std::move(state))
{
}

RunContext::~RunContext() = default;

QString RunContext::runId() const { return m_state->run.id; } // immutable after creation
QString RunContext::taskKey() const { return m_state->task->key; }
const QJsonObject &RunContext::args() const { return m_state->args; }

int RunContext::attempt() const
{
    std::lock_guard locker(m_state->mutex);
    return m_state->run.attempt;
}

void RunContext::log(LogStream stream, const QString &line)
{
    // A multi-line message becomes several log lines so every line has its own number.
    if (line.contains(u'\n')) {
        OutputLines parts;
        for (QStringView part : QStringView(line).split(u'\n'))
            parts.append(OutputLine{stream, part.toString()});
        m_core->appendLines(m_state, parts.constData(), parts.size());
        return;
    }
    m_core->appendLog(m_state, stream, line);
}

void RunContext::progress(qint64 done, qint64 total, const QString &message)
{
    m_core->setProgress(m_state, Progress{done, total, message});
}

bool RunContext::isCanceled() const { return m_state->cancelRequested.load(); }

bool RunContext::sleep(std::chrono::milliseconds duration) { return m_core->sleep(m_state, duration); }

QString RunContext::scratchDir()
{
    std::lock_guard locker(m_state->mutex);
    if (m_state->scratchDir.isEmpty()) {
        // Private to the user: a task may keep secrets or uploads there.
        const QString path = QDir::temp().filePath(u"taskdeck-run-"_s + m_state->run.id);
        if (!QDir().mkdir(path, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner))
            throw TaskError(u"cannot create scratch directory %1"_s.arg(path), u"ScratchDir"_s);
        m_state->scratchDir = path;
    }
    return m_state->scratchDir;
}

CommandResult RunContext::run(const Command &command)
{
    Command cmd = command;
    cmd.env.insert(QLatin1StringView(kRunIdVariable), m_state->run.id);
    cmd.env.insert(QLatin1StringView(kOwnerVariable), processOwner());
    if (!m_state->options.traceParent.isEmpty())
        cmd.env.insert(QLatin1StringView(kTraceParentVariable), m_state->options.traceParent);
    CommandSink sink;
    sink.lines = [this](const OutputLines &lines) { m_core->appendLines(m_state, lines.constData(), lines.size()); };
    sink.progress = [this](const Progress &p) { m_core->setProgress(m_state, p); };
    sink.isCanceled = [this] { return m_state->cancelRequested.load(); };
    return runCommand(cmd, sink);
}

QJsonValue RunContext::runChecked(const Command &cmd)
{
    const CommandResult r = run(cmd);
    const QString program = cmd.argv.value(0);
    const QString tail = r.stderrTail.isEmpty() ? QString() : u"last stderr lines:\n"_s + r.stderrTail.join(u'\n');
    if (!r.started) {
        const bool notFound = r.startError.startsWith(u"command not found"_s);
        throw TaskError(r.startError, notFound ? u"CommandNotFound"_s : u"StartFailed"_s, false,
                        u"argv: "_s + cmd.argv.join(u' '));
    }
    if (r.canceled)
        throw TaskError(u"%1 was stopped"_s.arg(program), u"Canceled"_s, false, tail);
    if (r.signal != 0) {
        throw TaskError(u"%1 was killed by signal %2 (%3)"_s.arg(program).arg(r.signal).arg(signalName(r.signal)),
                        u"Signal"_s, false, tail);
    }
    if (r.exitCode != 0)
        throw TaskError(u"%1 exited with code %2"_s.arg(program).arg(r.exitCode), u"ExitCode"_s, false, tail);
    if (r.result)
        return *r.result;
    return QJsonObject{{u"exitCode"_s, 0}};
}

// TaskEngine ---------------------------------------------------------------------------

TaskEngine::TaskEngine(TaskRegistry *registry, const EngineConfig &config, QObject *parent)
    : QObject(parent)
    , d(std::make_unique<detail::EngineCore>(this, registry, config))
{
    static const bool registered = [] {
        qRegisterMetaType<Run>();
        qRegisterMetaType<Progress>();
        qRegisterMetaType<LogLines>();
        return true;
    }();
    Q_UNUSED(registered);
}

TaskEngine::~TaskEngine()
{
    if (d->shutdown(d->config.shutdownGrace) || !d->abandonStuckRuns())
        return; // d is destroyed normally: every worker has returned
    // A task ignores the cancel and holds a worker thread that cannot be stopped. Its run is
    // recorded as interrupted; the engine's innards stay behind for that thread (which
    // only finds its run closed from now on), so that closing never hangs.
    d->detach();
    detail::EngineCore *left = d.release();
#if defined(__SANITIZE_ADDRESS__)
    __lsan_ignore_object(left);
    __lsan_ignore_object(left->pool);
#else
    Q_UNUSED(left);
#endif
}

TaskRegistry *TaskEngine::registry() const { return d->registry; }
const EngineConfig &TaskEngine::config() const { return d->config; }
void TaskEngine::setRecorder(IRunRecorder *recorder) { d->recorder = recorder; }

StartResult TaskEngine::start(const QString &key, const QJsonObject &args, const RunOptions &options)
{
    return d->start(key, args, options);
}

RunResult TaskEngine::run(const QString &key, const QJsonObject &args, const RunOptions &options)
{
    RunResult answer;
    detail::RunStatePtr state;
    const StartResult started = d->start(key, args, options, &state);
    if (!started.ok()) {
        answer.error = started.error;
        return answer;
    }
    bool finished = false;
    answer.run = d->waitForState(state, std::chrono::hours(24 * 365 * 10), &finished);
    return answer;
}

bool TaskEngine::cancel(const QString &runId) { return d->cancel(runId); }
void TaskEngine::cancelAll() { d->cancelAll(); }

std::optional<Run> TaskEngine::snapshot(const QString &runId) const
{
    const auto st = d->find(runId);
    if (!st)
        return std::nullopt;
    std::lock_guard locker(st->mutex);
    return st->run;
}

std::optional<RunStatus> TaskEngine::status(const QString &runId) const
{
    const auto run = snapshot(runId);
    return run ? std::optional(run->status) : std::nullopt;
}

std::optional<Progress> TaskEngine::progress(const QString &runId) const
{
    const auto run = snapshot(runId);
    return run ? std::optional(run->progress) : std::nullopt;
}

LogLines TaskEngine::recentLog(const QString &runId) const
{
    const auto st = d->find(runId);
    if (!st)
        return {};
    std::lock_guard locker(st->mutex);
    return d->recentLinesLocked(*st);
}

Following TaskEngine::follow(const QString &runId, const FollowOptions &options)
{
    return d->follow(runId, options);
}

QList<Run> TaskEngine::activeRuns() const { return d->activeRuns(); }

int TaskEngine::runningCount() const
{
    std::lock_guard locker(d->m_mutex);
    return int(d->m_active.size());
}

int TaskEngine::queuedCount() const
{
    std::lock_guard locker(d->m_mutex);
    return int(d->m_queue.size());
}

std::optional<Run> TaskEngine::waitForFinished(const QString &runId, std::chrono::milliseconds timeout)
{
    return d->waitForFinished(runId, timeout);
}

bool TaskEngine::shutdown(std::chrono::milliseconds grace) { return d->shutdown(grace); }


} // namespace taskdeck
