// SPDX-License-Identifier: MIT
#include "taskengine.h"

#include "runcontext.h"
#include "runrecorder.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QHash>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QMutex>
#include <QRandomGenerator>
#include <QScopeGuard>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <QUuid>
#include <QWaitCondition>

#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
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
    // "pid@host#start": the start time (in clock ticks since boot, from /proc) tells a live
    // owner from a later process that happens to reuse its pid.
    static const QString owner = [] {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        QString start = u"0"_s;
        QFile stat(u"/proc/self/stat"_s);
        if (stat.open(QIODevice::ReadOnly)) {
            const QByteArray text = stat.readAll();
            const qsizetype close = text.lastIndexOf(')');
            const QList<QByteArray> fields = text.mid(close + 2).split(' ');
            // Field 22 of stat is the start time; fields here start at field 3.
            if (fields.size() > 19)
                start = QString::fromLatin1(fields.at(19));
        }
        return u"%1@%2#%3"_s.arg(QCoreApplication::applicationPid()).arg(QString::fromLocal8Bit(host), start);
    }();
    return owner;
}

// Producers wait when this many log lines are waiting for the engine's thread, so a task
// that prints faster than the receivers consume is slowed down instead of growing memory.
constexpr qsizetype kPendingLineCap = 50000;

enum StopReason : int { NotStopped = 0, StopCanceled = 1, StopTimedOut = 2 };

} // namespace

namespace detail {

struct RunState;
using Deadlines = std::multimap<qint64, std::pair<std::weak_ptr<RunState>, int>>;

struct RunState
{
    TaskPtr task;
    QJsonObject args;  // typed, secrets in clear; read-only after creation
    RunOptions options;
    std::chrono::milliseconds timeout{0};

    std::atomic<bool> cancelRequested{false};
    std::atomic<int> stopReason{NotStopped};

    mutable QMutex mutex;
    Run run;                    // guarded by mutex
    // Made on the first line: many runs log nothing, and an empty deque already allocates.
    std::unique_ptr<std::deque<LogLine>> recent; // guarded by mutex
    QString scratchDir;         // guarded by mutex
    bool finished = false;      // guarded by mutex
    bool closed = false;        // guarded by mutex; set when the final snapshot is taken
    std::atomic<int> appending{0}; // log lines numbered but not yet handed on
    // One condition for both "finished" and "canceled": waiters recheck what they wait for.
    QWaitCondition changed;     // waits on mutex
    std::optional<Deadlines::iterator> deadline; // guarded by the engine's m_schedMutex
};
using RunStatePtr = std::shared_ptr<RunState>;

struct Event
{
    enum class Kind { Queued, Started, Log, Finished };
    Kind kind;
    Run snapshot; // Queued, Started, Finished; for Log only the id is set
};

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
    std::optional<Run> waitForFinished(const QString &runId, std::chrono::milliseconds timeout);
    Run waitForState(const std::shared_ptr<RunState> &st, std::chrono::milliseconds timeout, bool *finished);
    bool shutdown(std::chrono::milliseconds grace);
    void deliverEvents();

    // Called from RunContext on a worker thread.
    void appendLog(const RunStatePtr &st, LogStream stream, const QString &text);
    void setProgress(const RunStatePtr &st, const Progress &progress);
    bool sleep(const RunStatePtr &st, std::chrono::milliseconds duration);

    TaskEngine *q;
    TaskRegistry *registry;
    EngineConfig config;
    QThreadPool pool;
    IRunRecorder *recorder = nullptr;

private:
    friend class taskdeck::TaskEngine;
    void dispatchLocked();
    void execute(const RunStatePtr &st);
    Outcome invoke(const RunStatePtr &st, int attempt);
    void beginAttempt(const RunStatePtr &st, int attempt);
    void finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning);
    void requestStop(const RunStatePtr &st, StopReason reason);
    void enqueueEvent(Event event);
    void scheduleFlush(bool soon);
    void schedulerLoop();
    void addDeadline(const RunStatePtr &st, int attempt);
    void dropDeadline(const RunStatePtr &st);
    bool onEngineThread() const { return QThread::currentThread() == q->thread(); }

    // Scheduling state.
    mutable QMutex m_mutex;
    std::deque<RunStatePtr> m_queue;                   // guarded by m_mutex
    QHash<QString, RunStatePtr> m_runs;                // guarded by m_mutex
    std::deque<QString> m_finishedOrder;               // guarded by m_mutex
    QHash<QString, int> m_runningPerTask;              // guarded by m_mutex
    int m_running = 0;                                 // guarded by m_mutex
    int m_unpublished = 0;                             // guarded by m_mutex
    QWaitCondition m_allPublished;                     // waits on m_mutex
    bool m_accepting = true;                           // guarded by m_mutex
    double m_tokens = 0;                               // guarded by m_mutex
    qint64 m_lastRefillMs = 0;                         // guarded by m_mutex

    // Events on their way to the engine's thread.
    QMutex m_eventMutex;
    QWaitCondition m_eventsDrained;                    // waits on m_eventMutex
    std::deque<Event> m_events;                        // guarded by m_eventMutex
    QHash<QString, LogLines> m_pendingLines;           // guarded by m_eventMutex
    QHash<QString, Progress> m_pendingProgress;        // guarded by m_eventMutex
    qsizetype m_pendingLineCount = 0;                  // guarded by m_eventMutex
    bool m_flushQueued = false;                        // guarded by m_eventMutex
    bool m_soonQueued = false;                         // guarded by m_eventMutex
    std::atomic<bool> m_draining{false};
    QTimer m_flushTimer;

    // Timeouts and rate-limit wake-ups, served by one thread so they fire even while the
    // engine's thread is blocked in run().
    std::mutex m_schedMutex;
    std::condition_variable m_schedCondition;
    Deadlines m_deadlines;                             // guarded by m_schedMutex
    qint64 m_rateWakeAt = 0;                           // guarded by m_schedMutex
    bool m_schedStop = false;                          // guarded by m_schedMutex
    std::thread m_scheduler;
};

EngineCore::EngineCore(TaskEngine *engine, TaskRegistry *reg, const EngineConfig &cfg)
    : q(engine)
    , registry(reg)
    , config(cfg)
{
    config.bufferSize = std::max(1, config.bufferSize);
    config.finishedRunsKept = std::max(0, config.finishedRunsKept);
    config.startBurst = std::max(1, config.startBurst);
    pool.setObjectName(u"taskdeck-engine"_s);
    pool.setMaxThreadCount(config.effectiveMaxConcurrent());
    m_tokens = config.startBurst;
    m_lastRefillMs = steadyNowMs();
    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(int(config.eventInterval.count()));
    QObject::connect(&m_flushTimer, &QTimer::timeout, q, [this] { deliverEvents(); });
    m_scheduler = std::thread([this] { schedulerLoop(); });
}

EngineCore::~EngineCore()
{
    shutdown(5s);
    // A task that ignores cancellation still holds a worker; its thread must end before the
    // state it uses goes away.
    pool.waitForDone();
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

    auto st = std::make_shared<RunState>();
    st->task = task;
    st->args = validation.values;
    st->options = options;
    st->timeout = options.timeout ? *options.timeout : task->timeout ? *task->timeout : config.defaultTimeout;
    st->run.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    st->run.task = task->key;
    st->run.args = redactSecrets(task->fields, validation.values);
    st->run.maxAttempts = task->retry.maxAttempts;
    st->run.queuedAt = QDateTime::currentDateTimeUtc();
    st->run.owner = processOwner();
    const Run snapshot = st->run;

    {
        QMutexLocker locker(&m_mutex);
        if (!m_accepting) {
            answer.error.code = StartError::Code::ShuttingDown;
            answer.error.message = u"the engine is shutting down; task \"%1\" was not started"_s.arg(key);
            return answer;
        }
        m_runs.insert(snapshot.id, st);
        // The queued event goes out before dispatch can emit started, so they stay in order.
        if (recorder)
            recorder->recordQueued(snapshot);
        enqueueEvent({Event::Kind::Queued, snapshot});
        m_queue.push_back(st);
        dispatchLocked();
    }
    answer.runId = snapshot.id;
    if (state)
        *state = st;
    return answer;
}

void EngineCore::dispatchLocked()
{
    const int limit = config.effectiveMaxConcurrent();
    while (m_running < limit && !m_queue.empty()) {
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
                std::lock_guard<std::mutex> sched(m_schedMutex);
                if (m_rateWakeAt == 0 || m_rateWakeAt > now + wait)
                    m_rateWakeAt = now + std::max<qint64>(1, wait);
                m_schedCondition.notify_one();
                return;
            }
            m_tokens -= 1.0;
        }
        RunStatePtr st = *eligible;
        m_queue.erase(eligible);
        ++m_running;
        ++m_runningPerTask[st->task->key];
        pool.start([this, st] { execute(st); });
    }
}

void EngineCore::beginAttempt(const RunStatePtr &st, int attempt)
{
    Run snapshot;
    {
        QMutexLocker locker(&st->mutex);
        st->run.status = RunStatus::Running;
        st->run.attempt = attempt;
        if (!st->run.startedAt.isValid())
            st->run.startedAt = QDateTime::currentDateTimeUtc();
        snapshot = st->run;
    }
    addDeadline(st, attempt);
    if (recorder)
        recorder->recordStarted(snapshot);
    enqueueEvent({Event::Kind::Started, snapshot});
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

void EngineCore::execute(const RunStatePtr &st)
{
    static thread_local bool named = false;
    if (!named) {
        QThread::currentThread()->setObjectName(u"taskdeck-worker"_s);
        named = true;
    }
    const RetryPolicy &retry = st->task->retry;
    QStringList failures;
    for (int attempt = 1;; ++attempt) {
        if (st->cancelRequested.load()) {
            finish(st, st->stopReason.load() == StopTimedOut ? RunStatus::TimedOut : RunStatus::Canceled,
                   {}, true);
            return;
        }
        beginAttempt(st, attempt);
        Outcome outcome = invoke(st, attempt);
        const int stop = st->stopReason.load();
        if (stop == StopTimedOut) {
            outcome.error = {u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s,
                             outcome.error.message.isEmpty() ? QString() : u"the task then reported: "_s + outcome.error.message,
                             false};
            finish(st, RunStatus::TimedOut, outcome, true);
            return;
        }
        if (stop == StopCanceled) {
            outcome.error = {u"canceled"_s, u"Canceled"_s, QString(), false};
            finish(st, RunStatus::Canceled, outcome, true);
            return;
        }
        if (outcome.ok) {
            finish(st, RunStatus::Succeeded, outcome, true);
            return;
        }
        failures << u"attempt %1: %2"_s.arg(attempt).arg(outcome.error.message);
        if (!outcome.error.transient || attempt >= retry.maxAttempts) {
            if (failures.size() > 1)
                outcome.error.detail += u"\nattempts:\n  "_s + failures.join(u"\n  "_s);
            finish(st, RunStatus::Failed, outcome, true);
            return;
        }
        const auto base = retry.baseDelay(attempt);
        const double spread = std::clamp(retry.jitter, 0.0, 1.0);
        const double factor = 1.0 + spread * (QRandomGenerator::global()->generateDouble() * 2.0 - 1.0);
        const auto delay = std::chrono::milliseconds(qint64(double(base.count()) * factor));
        appendLog(st, LogStream::System,
                  u"attempt %1 of %2 failed: %3; retrying in %4"_s.arg(
                      QString::number(attempt), QString::number(retry.maxAttempts),
                      outcome.error.message, formatDuration(delay)));
        sleep(st, delay);
    }
}

void EngineCore::finish(const RunStatePtr &st, RunStatus status, const Outcome &outcome, bool wasRunning)
{
    Run snapshot;
    QString scratch;
    {
        QMutexLocker locker(&st->mutex);
        st->run.status = status;
        st->run.finishedAt = QDateTime::currentDateTimeUtc();
        if (status == RunStatus::Succeeded) {
            st->run.result = outcome.result;
        } else {
            st->run.error = outcome.error;
            if (st->run.error.isEmpty()) {
                st->run.error = status == RunStatus::TimedOut
                    ? RunError{u"timed out after %1"_s.arg(formatDuration(st->timeout)), u"Timeout"_s, {}, false}
                    : RunError{u"canceled"_s, u"Canceled"_s, {}, false};
            }
        }
        st->closed = true;
        snapshot = st->run;
        scratch = std::exchange(st->scratchDir, QString());
    }
    // Lines already numbered reach the recorder and the event queue before the finish does.
    while (st->appending.load() > 0)
        QThread::yieldCurrentThread();
    // A finished run's deadline would keep its state alive for the whole timeout.
    dropDeadline(st);
    if (!scratch.isEmpty())
        QDir(scratch).removeRecursively();
    {
        QMutexLocker locker(&m_mutex);
        if (wasRunning) {
            --m_running;
            if (--m_runningPerTask[snapshot.task] <= 0)
                m_runningPerTask.remove(snapshot.task);
        }
        m_finishedOrder.push_back(snapshot.id);
        while (qsizetype(m_finishedOrder.size()) > config.finishedRunsKept) {
            m_runs.remove(m_finishedOrder.front());
            m_finishedOrder.pop_front();
        }
        ++m_unpublished;
        dispatchLocked();
    }
    // The slot is free for the next run already; the finish is shown once it is durable.
    auto publish = [this, st, snapshot] {
        enqueueEvent({Event::Kind::Finished, snapshot});
        {
            QMutexLocker locker(&st->mutex);
            st->finished = true;
            st->changed.wakeAll();
        }
        QMutexLocker locker(&m_mutex);
        if (--m_unpublished == 0)
            m_allPublished.wakeAll();
    };
    if (recorder)
        recorder->recordFinished(snapshot, std::move(publish));
    else
        publish();
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
    st->cancelRequested.store(true);
    QMutexLocker locker(&st->mutex);
    st->changed.wakeAll();
}

bool EngineCore::cancel(const QString &runId)
{
    RunStatePtr st;
    bool wasQueued = false;
    {
        QMutexLocker locker(&m_mutex);
        st = m_runs.value(runId);
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
        QMutexLocker locker(&st->mutex);
        if (isTerminal(st->run.status))
            return false;
    }
    requestStop(st, StopCanceled);
    return true;
}

void EngineCore::cancelAll()
{
    QStringList ids;
    {
        QMutexLocker locker(&m_mutex);
        for (const RunStatePtr &st : m_queue)
            ids << st->run.id; // the id never changes after creation
        for (auto it = m_runs.cbegin(); it != m_runs.cend(); ++it) {
            if (!ids.contains(it.key()))
                ids << it.key();
        }
    }
    for (const QString &id : std::as_const(ids))
        cancel(id);
}

RunStatePtr EngineCore::find(const QString &runId) const
{
    QMutexLocker locker(&m_mutex);
    return m_runs.value(runId);
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
    QDeadlineTimer deadline(timeout);
    const bool deliver = onEngineThread();
    for (;;) {
        {
            QMutexLocker locker(&st->mutex);
            if (st->finished)
                break;
            if (deadline.hasExpired()) {
                *finished = false;
                return st->run;
            }
            // On the engine's thread nobody else delivers events while we block, so wake up
            // regularly to do it.
            const QDeadlineTimer step = deliver
                ? std::min(deadline, QDeadlineTimer(config.eventInterval))
                : deadline;
            st->changed.wait(&st->mutex, step);
        }
        if (deliver)
            deliverEvents();
    }
    if (deliver)
        deliverEvents();
    *finished = true;
    QMutexLocker locker(&st->mutex);
    return st->run;
}

bool EngineCore::shutdown(std::chrono::milliseconds grace)
{
    {
        QMutexLocker locker(&m_mutex);
        m_accepting = false;
    }
    m_draining.store(true);
    {
        QMutexLocker locker(&m_eventMutex);
        m_eventsDrained.wakeAll();
    }
    cancelAll();
    QDeadlineTimer deadline(grace);
    bool done = pool.waitForDone(int(grace.count()));
    {
        // Finishes the recorder has not made durable yet still belong to this engine.
        QMutexLocker locker(&m_mutex);
        while (m_unpublished > 0 && !deadline.hasExpired())
            m_allPublished.wait(&m_mutex, deadline);
        done = done && m_unpublished == 0;
    }
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        m_schedStop = true;
    }
    m_schedCondition.notify_all();
    if (m_scheduler.joinable())
        m_scheduler.join();
    if (onEngineThread())
        deliverEvents();
    if (!done)
        qCWarning(lcEngine) << "some tasks did not stop within" << grace.count() << "ms of shutdown";
    return done;
}

void EngineCore::appendLog(const RunStatePtr &st, LogStream stream, const QString &text)
{
    LogLine line;
    line.timeMs = QDateTime::currentMSecsSinceEpoch();
    line.stream = stream;
    line.text = text;
    QString id;
    {
        QMutexLocker locker(&st->mutex);
        // A line from another thread (a cancel, a timeout) that loses the race with the end
        // of the run has nowhere to go: the final snapshot is already taken.
        if (st->closed)
            return;
        ++st->appending;
        line.number = ++st->run.logLines;
        if (!st->recent)
            st->recent = std::make_unique<std::deque<LogLine>>();
        st->recent->push_back(line);
        if (qsizetype(st->recent->size()) > config.bufferSize)
            st->recent->pop_front();
        id = st->run.id;
    }
    const auto handedOn = qScopeGuard([&st] { --st->appending; });
    if (recorder)
        recorder->recordLog(id, LogLines{line});
    bool schedule = false;
    {
        QMutexLocker locker(&m_eventMutex);
        while (m_pendingLineCount >= kPendingLineCap && !m_draining.load() && !onEngineThread()) {
            // Bounded wait: a receiver that never drains slows the task but cannot stall it.
            if (!m_eventsDrained.wait(&m_eventMutex, QDeadlineTimer(250ms)))
                break;
        }
        LogLines &pending = m_pendingLines[id];
        if (pending.isEmpty())
            m_events.push_back({Event::Kind::Log, Run{}});
        if (pending.isEmpty())
            m_events.back().snapshot.id = id;
        pending.append(std::move(line));
        ++m_pendingLineCount;
        schedule = !m_flushQueued;
        m_flushQueued = true;
    }
    if (schedule)
        scheduleFlush(false);
}

void EngineCore::setProgress(const RunStatePtr &st, const Progress &progress)
{
    QString id;
    {
        QMutexLocker locker(&st->mutex);
        st->run.progress = progress;
        id = st->run.id;
    }
    if (recorder)
        recorder->recordProgress(id, progress);
    bool schedule = false;
    {
        QMutexLocker locker(&m_eventMutex);
        m_pendingProgress.insert(id, progress);
        schedule = !m_flushQueued;
        m_flushQueued = true;
    }
    if (schedule)
        scheduleFlush(false);
}

bool EngineCore::sleep(const RunStatePtr &st, std::chrono::milliseconds duration)
{
    QDeadlineTimer deadline(duration);
    QMutexLocker locker(&st->mutex);
    while (!st->cancelRequested.load() && !deadline.hasExpired())
        st->changed.wait(&st->mutex, deadline);
    return !st->cancelRequested.load();
}

void EngineCore::enqueueEvent(Event event)
{
    {
        QMutexLocker locker(&m_eventMutex);
        m_events.push_back(std::move(event));
        // Lifecycle changes go out on the next turn of the event loop; one queued delivery
        // carries every event that arrives before it runs.
        if (m_soonQueued)
            return;
        m_soonQueued = true;
        m_flushQueued = true;
    }
    scheduleFlush(true);
}

void EngineCore::scheduleFlush(bool soon)
{
    if (soon) {
        QMetaObject::invokeMethod(q, [this] { deliverEvents(); }, Qt::QueuedConnection);
        return;
    }
    // QTimer must be started on its own thread.
    if (onEngineThread()) {
        if (!m_flushTimer.isActive())
            m_flushTimer.start();
    } else {
        QMetaObject::invokeMethod(q, [this] {
            if (!m_flushTimer.isActive())
                m_flushTimer.start();
        }, Qt::QueuedConnection);
    }
}

void EngineCore::deliverEvents()
{
    std::deque<Event> events;
    QHash<QString, LogLines> lines;
    QHash<QString, Progress> progress;
    {
        QMutexLocker locker(&m_eventMutex);
        events.swap(m_events);
        lines.swap(m_pendingLines);
        progress.swap(m_pendingProgress);
        m_pendingLineCount = 0;
        m_flushQueued = false;
        m_soonQueued = false;
        m_eventsDrained.wakeAll();
    }
    m_flushTimer.stop();
    auto emitPending = [&](const QString &id) {
        const auto l = lines.find(id);
        if (l != lines.end()) {
            const LogLines batch = std::move(l.value());
            lines.erase(l);
            Q_EMIT q->runLog(id, batch);
        }
        const auto p = progress.find(id);
        if (p != progress.end()) {
            const Progress value = p.value();
            progress.erase(p);
            Q_EMIT q->runProgress(id, value);
        }
    };
    for (const Event &event : events) {
        switch (event.kind) {
        case Event::Kind::Queued:
            Q_EMIT q->runQueued(event.snapshot);
            break;
        case Event::Kind::Started:
            Q_EMIT q->runStarted(event.snapshot);
            break;
        case Event::Kind::Log:
            emitPending(event.snapshot.id);
            break;
        case Event::Kind::Finished:
            emitPending(event.snapshot.id);
            Q_EMIT q->runFinished(event.snapshot);
            break;
        }
    }
    for (auto it = progress.cbegin(); it != progress.cend(); ++it)
        Q_EMIT q->runProgress(it.key(), it.value());
}

void EngineCore::addDeadline(const RunStatePtr &st, int attempt)
{
    if (st->timeout.count() <= 0)
        return;
    bool earliest = false;
    {
        std::lock_guard<std::mutex> lock(m_schedMutex);
        if (st->deadline)
            m_deadlines.erase(*st->deadline);
        const auto it = m_deadlines.emplace(steadyNowMs() + st->timeout.count(),
                                            std::make_pair(std::weak_ptr<RunState>(st), attempt));
        st->deadline = it;
        earliest = it == m_deadlines.begin();
    }
    // The scheduler already sleeps until an earlier deadline; wake it only for a new first one.
    if (earliest)
        m_schedCondition.notify_one();
}

void EngineCore::dropDeadline(const RunStatePtr &st)
{
    std::lock_guard<std::mutex> lock(m_schedMutex);
    if (st->deadline) {
        m_deadlines.erase(*st->deadline);
        st->deadline.reset();
    }
}

void EngineCore::schedulerLoop()
{
    std::unique_lock<std::mutex> lock(m_schedMutex);
    while (!m_schedStop) {
        qint64 next = std::numeric_limits<qint64>::max();
        if (!m_deadlines.empty())
            next = m_deadlines.begin()->first;
        if (m_rateWakeAt)
            next = std::min(next, m_rateWakeAt);
        if (next == std::numeric_limits<qint64>::max()) {
            m_schedCondition.wait(lock);
            continue;
        }
        const qint64 now = steadyNowMs();
        if (next > now) {
            m_schedCondition.wait_for(lock, std::chrono::milliseconds(next - now));
            continue;
        }
        std::vector<std::pair<std::weak_ptr<RunState>, int>> due;
        while (!m_deadlines.empty() && m_deadlines.begin()->first <= now) {
            due.push_back(m_deadlines.begin()->second);
            if (const RunStatePtr st = m_deadlines.begin()->second.first.lock())
                st->deadline.reset();
            m_deadlines.erase(m_deadlines.begin());
        }
        const bool rateDue = m_rateWakeAt && m_rateWakeAt <= now;
        if (rateDue)
            m_rateWakeAt = 0;
        lock.unlock();
        for (const auto &[weak, attempt] : due) {
            const RunStatePtr st = weak.lock();
            if (!st)
                continue;
            bool current = false;
            {
                QMutexLocker locker(&st->mutex);
                current = !st->finished && st->run.attempt == attempt && st->run.status == RunStatus::Running;
            }
            if (current)
                requestStop(st, StopTimedOut);
        }
        if (rateDue) {
            QMutexLocker locker(&m_mutex);
            dispatchLocked();
        }
        lock.lock();
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
    QMutexLocker locker(&m_state->mutex);
    return m_state->run.attempt;
}

void RunContext::log(LogStream stream, const QString &line)
{
    // A multi-line message becomes several log lines so every line has its own number.
    if (line.contains(u'\n')) {
        const auto parts = QStringView(line).split(u'\n');
        for (QStringView part : parts)
            m_core->appendLog(m_state, stream, part.toString());
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
    QMutexLocker locker(&m_state->mutex);
    if (m_state->scratchDir.isEmpty()) {
        const QString path = QDir::temp().filePath(u"taskdeck-run-"_s + m_state->run.id);
        if (!QDir().mkpath(path))
            throw TaskError(u"cannot create scratch directory %1"_s.arg(path), u"ScratchDir"_s);
        m_state->scratchDir = path;
    }
    return m_state->scratchDir;
}

CommandResult RunContext::run(const Command &cmd)
{
    CommandSink sink;
    sink.line = [this](LogStream stream, const QString &text) { m_core->appendLog(m_state, stream, text); };
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

TaskEngine::~TaskEngine() = default;

TaskRegistry *TaskEngine::registry() const { return d->registry; }
const EngineConfig &TaskEngine::config() const { return d->config; }
QThreadPool *TaskEngine::threadPool() const { return &d->pool; }
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
    answer.run = d->waitForState(state, std::chrono::hours(24 * 365), &finished);
    return answer;
}

bool TaskEngine::cancel(const QString &runId) { return d->cancel(runId); }
void TaskEngine::cancelAll() { d->cancelAll(); }

std::optional<Run> TaskEngine::snapshot(const QString &runId) const
{
    const auto st = d->find(runId);
    if (!st)
        return std::nullopt;
    QMutexLocker locker(&st->mutex);
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
    QMutexLocker locker(&st->mutex);
    return st->recent ? LogLines(st->recent->cbegin(), st->recent->cend()) : LogLines();
}

QList<Run> TaskEngine::activeRuns() const
{
    QList<detail::RunStatePtr> states;
    {
        QMutexLocker locker(&d->m_mutex);
        for (const auto &st : d->m_runs)
            states << st;
    }
    QList<Run> runs;
    for (const auto &st : states) {
        QMutexLocker locker(&st->mutex);
        if (!isTerminal(st->run.status))
            runs << st->run;
    }
    std::sort(runs.begin(), runs.end(), [](const Run &a, const Run &b) { return a.queuedAt < b.queuedAt; });
    return runs;
}

int TaskEngine::runningCount() const
{
    QMutexLocker locker(&d->m_mutex);
    return d->m_running;
}

int TaskEngine::queuedCount() const
{
    QMutexLocker locker(&d->m_mutex);
    return int(d->m_queue.size());
}

std::optional<Run> TaskEngine::waitForFinished(const QString &runId, std::chrono::milliseconds timeout)
{
    return d->waitForFinished(runId, timeout);
}

bool TaskEngine::shutdown(std::chrono::milliseconds grace) { return d->shutdown(grace); }

void TaskEngine::deliverEvents() { d->deliverEvents(); }

} // namespace taskdeck
