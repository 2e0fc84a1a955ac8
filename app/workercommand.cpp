// SPDX-License-Identifier: MIT
#include "workercommand.h"

#include "cli.h"
#include "console.h"
#include "engineconfig.h"
#include "pgqueue.h"
#include "pgrunstore.h"
#include "pgschema.h"
#include "runfollower.h"
#include "runowner.h"
#include "runstorenotifier.h"
#include "signalwatcher.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "tasksfile.h"
#include "tasksfilewatcher.h"
#include "textformat.h"
#include "whendone.h"
#include "../internal/tsan.h"

#include <QCoreApplication>
#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QSet>
#include <QSqlDriver>
#include <QThread>
#include <QTimer>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <poll.h>
#include <mutex>

using namespace Qt::StringLiterals;

namespace taskdeck {

Q_LOGGING_CATEGORY(lcWorker, "taskdeck.worker")

namespace {

// Runs claimed in one statement at most.
constexpr int kClaimBatch = 512;
// Besides the runs it executes, a worker holds claimed runs waiting to start (not in its
// engine, so that a stopping worker hands them back untouched): at least as many as it runs at
// once, and as many as it starts in kPrefetchWindow, up to kMaxPrefetch. A finished run is
// followed at once, and claims come in large batches instead of one round trip every few runs.
constexpr std::chrono::milliseconds kPrefetchWindow{100};
constexpr int kMaxPrefetch = 512;
// The safety net under LISTEN: a worker looks at the queue this often anyway.
constexpr std::chrono::milliseconds kPollInterval{2000};
// Under a shared start rate the runs that end within this long share one claim.
constexpr std::chrono::milliseconds kRateGather{20};

/*!
 * Hands the engine's changes to the history under the queued run's id: the engine names its
 * runs itself, the queue named this one when it was started. Lines and events of a second
 * attempt (after a lost worker) follow those stored by the first.
 *
 * It also tells the worker when a run has ended (recordFinished, on the thread that ran it):
 * the engine's slot is free then, before the end is committed, and the worker starts the next
 * run without waiting for the commit.
 */
class QueueRecorder final : public IRunRecorder
{
public:
    explicit QueueRecorder(IRunRecorder *store) : m_store(store) {}

    /*! The next run the engine queues (on this thread, inside start()) is \a run. */
    void expect(const ClaimedRun &run)
    {
        const std::lock_guard lock(m_mutex);
        m_next = run;
    }
    void forget(const QString &engineId)
    {
        const std::lock_guard lock(m_mutex);
        m_runs.remove(engineId);
        m_lost.remove(engineId);
    }
    /*! The claim of the engine's run \a engineId is lost: nothing more of it is stored. */
    void abandon(const QString &engineId)
    {
        const std::lock_guard lock(m_mutex);
        m_lost.insert(engineId);
    }
    /*! Called (on any thread) when runs ended since the last call; takeEnded() has them. */
    void onEnded(std::function<void()> wake)
    {
        const std::lock_guard lock(m_mutex);
        m_wake = std::move(wake);
    }
    /*! The engine's ids of the runs that ended since the last call. */
    QStringList takeEnded()
    {
        const std::lock_guard lock(m_mutex);
        return std::exchange(m_ended, {});
    }

    void recordQueued(const Run &run) override
    {
        {
            const std::lock_guard lock(m_mutex);
            if (!m_runs.contains(run.id) && m_next) {
                const bool queued = !m_next->id.isEmpty();
                m_runs.insert(run.id, *std::exchange(m_next, std::nullopt));
                // A run from the queue is stored as queued already, under the queue's id: its
                // start is the first change this worker has to store.
                if (queued)
                    return;
            }
        }
        m_store->recordQueued(translate(run));
    }
    void recordStarted(const Run &run) override
    {
        if (!isLost(run.id))
            m_store->recordStarted(translate(run));
    }
    void recordRetrying(const Run &run) override
    {
        if (!isLost(run.id))
            m_store->recordRetrying(translate(run));
    }
    void recordProgress(const QString &runId, const Progress &progress) override
    {
        if (!isLost(runId))
            m_store->recordProgress(claimOf(runId).id, progress);
    }
    void recordLog(const QString &runId, const LogLines &lines) override
    {
        if (isLost(runId))
            return;
        const ClaimedRun claim = claimOf(runId);
        LogLines moved = lines;
        for (LogLine &line : moved) {
            line.number += claim.logLines;
            line.seq += line.seq > 0 ? claim.seq : 0;
        }
        m_store->recordLog(claim.id, moved);
    }
    void recordFinished(const Run &run, std::function<void()> durable) override
    {
        if (isLost(run.id)) {
            // Another worker or the recovery owns the run now: its end is theirs to store.
            if (durable)
                durable();
        } else {
            m_store->recordFinished(translate(run), std::move(durable));
        }
        std::function<void()> wake;
        {
            const std::lock_guard lock(m_mutex);
            m_ended << run.id;
            // One wake-up for all the runs that end before the worker looks.
            if (m_ended.size() == 1 && m_notHeld.isEmpty())
                wake = m_wake;
        }
        if (wake)
            wake();
    }
    /*!
     * The history's writer stored the ends of queued runs \a ids that this worker no longer
     * held (see PgRunStore::setQueueWorker()); takeNotHeld() has them. Any thread.
     */
    void notHeld(const QStringList &ids)
    {
        std::function<void()> wake;
        {
            const std::lock_guard lock(m_mutex);
            if (m_ended.isEmpty() && m_notHeld.isEmpty())
                wake = m_wake;
            m_notHeld << ids;
        }
        if (wake)
            wake();
    }
    /*! The queued run ids notHeld() was given since the last call. */
    QStringList takeNotHeld()
    {
        const std::lock_guard lock(m_mutex);
        return std::exchange(m_notHeld, {});
    }

private:
    bool isLost(const QString &engineId) const
    {
        const std::lock_guard lock(m_mutex);
        return m_lost.contains(engineId);
    }

    ClaimedRun claimOf(const QString &engineId) const
    {
        const std::lock_guard lock(m_mutex);
        ClaimedRun claim = m_runs.value(engineId);
        if (claim.id.isEmpty())
            claim.id = engineId; // not from the queue: stored under its own id
        return claim;
    }

    Run translate(const Run &run) const
    {
        const ClaimedRun claim = claimOf(run.id);
        Run r = run;
        r.id = claim.id;
        if (claim.queuedAt.isValid())
            r.queuedAt = claim.queuedAt;
        r.attempt = run.attempt > 0 ? run.attempt + claim.attempt - 1 : 0;
        r.maxAttempts = std::max(run.maxAttempts, claim.maxAttempts);
        r.logLines = run.logLines + claim.logLines;
        r.seq = run.seq + claim.seq;
        return r;
    }

    IRunRecorder *const m_store;
    mutable std::mutex m_mutex;
    QHash<QString, ClaimedRun> m_runs;       // guarded by m_mutex; by the engine's run id
    std::optional<ClaimedRun> m_next;        // guarded by m_mutex
    QStringList m_ended;                     // guarded by m_mutex
    QStringList m_notHeld;                   // guarded by m_mutex; queued run ids
    std::function<void()> m_wake;            // guarded by m_mutex
    QSet<QString> m_lost;                    // guarded by m_mutex; engine run ids
};

class Worker final : public QObject
{
public:
    Worker(TaskEngine *engine, QueueRecorder *recorder, PgQueue *queue, PgRunStore *store,
           QHash<QString, QString> versions, QList<ClaimScope> scopes, int concurrency,
           std::chrono::milliseconds lease, std::chrono::milliseconds pollInterval, Console *console)
        : m_engine(engine)
        , m_recorder(recorder)
        , m_queue(queue)
        , m_store(store)
        , m_versions(std::move(versions))
        , m_scopes(std::move(scopes))
        , m_concurrency(concurrency)
        , m_lease(lease)
        , m_console(console)
    {
        connect(engine, &TaskEngine::runFinished, this, &Worker::finished);
        // recordFinished runs on the engine's threads: the worker looks on its own thread.
        recorder->onEnded([this] { detail::postTo(this, [this] { ended(); }); });
        m_poll.setInterval(pollInterval);
        connect(&m_poll, &QTimer::timeout, this, &Worker::poll);
        m_renew.setInterval(std::max(std::chrono::milliseconds(100), m_lease / 3));
        connect(&m_renew, &QTimer::timeout, this, &Worker::renew);
        m_claimTimer.setSingleShot(true);
        m_claimTimer.setInterval(0);
        connect(&m_claimTimer, &QTimer::timeout, this, &Worker::claim);
        m_quitTimer.setSingleShot(true);
        connect(&m_quitTimer, &QTimer::timeout, this, &Worker::quitWhenDone);
        m_rateClock.start();
        // The queue's start rate had no token left: look again when the next one is due.
        m_rateTimer.setSingleShot(true);
        connect(&m_rateTimer, &QTimer::timeout, this, &Worker::claim);
        m_lastRenewed = std::chrono::steady_clock::now();
        m_limits = queue->lastLimits();
    }

    ~Worker() override { m_recorder->onEnded({}); }

    int exec()
    {
        // Claims run on a thread and connection of their own: a claim's commit waits for the
        // server's disk, and meanwhile this thread goes on starting the runs it holds.
        m_claimThread.setObjectName(u"taskdeck-claim"_s);
        m_claimThread.start();
        m_claimContext = new QObject;
        m_claimContext->moveToThread(&m_claimThread);
        listen();
        m_poll.start();
        m_renew.start();
        m_claimTimer.start();
        SignalWatcher watcher({SIGINT, SIGTERM});
        connect(&watcher, &SignalWatcher::signalReceived, this, &Worker::stop);
        m_loop.exec();
        // The claimer's connection belongs to its thread: closed there, and the thread ends
        // after it. Its context goes with the thread's last deferred deletions.
        connect(&m_claimThread, &QThread::finished, m_claimContext, &QObject::deleteLater);
        detail::postTo(m_claimContext, [this] {
            m_claimQueue.reset();
            TASKDECK_HAPPENS_BEFORE(&m_claimQueue);
            m_claimThread.quit();
        });
        m_claimThread.wait();
        // What the claimer thread did last (m_claimQueue, m_claimFailed) is done before this
        // thread goes on, through wait(); said to ThreadSanitizer here.
        TASKDECK_HAPPENS_AFTER(&m_claimQueue);
        m_claimContext = nullptr;
        return exitcode::Success;
    }

    /*!
     * The tasks file was loaded again: from now on the worker claims runs of its tasks at
     * \a versions (\a scopes). Claimed runs it has not started whose task's version changed go
     * back to the queue, for a worker that still has their version.
     */
    void useTasks(const QHash<QString, QString> &versions, const QList<ClaimScope> &scopes, const QString &file)
    {
        if (versions == m_versions)
            return; // the same file again
        const QHash<QString, QString> before = std::exchange(m_versions, versions);
        m_scopes = scopes;
        handBackChanged(m_waiting, before);
        m_console->err(u"taskdeck worker: %1 changed: running queued runs of %2 tasks, those queued with it from now "
                       u"on; runs queued with the earlier file are left to workers that still have it"_s
                           .arg(file)
                           .arg(versions.size()));
        m_console->flush();
        wake();
    }

private:
    // Removes from \a runs those of a task whose version is not the same in \a claimedAt as
    // now, and gives them back to the queue untouched.
    void handBackChanged(QList<ClaimedRun> &runs, const QHash<QString, QString> &claimedAt)
    {
        QStringList back;
        for (qsizetype i = runs.size() - 1; i >= 0; --i) {
            const QString &task = runs.at(i).task;
            if (claimedAt.value(task) != m_versions.value(task))
                back.prepend(runs.takeAt(i).id);
        }
        if (back.isEmpty())
            return;
        QString error;
        if (!m_queue->handBack(back, &error))
            m_console->err(u"taskdeck worker: %1; %2 runs it held go back to the queue when their lease "
                           u"ends"_s.arg(error).arg(back.size()));
    }

    void listen()
    {
        QSqlDatabase db = m_queue->database();
        const QString cancelChannel = QString::fromLatin1(PgSchema::kCancelChannel);
        if (!db.isOpen() || !db.driver()->subscribeToNotification(QString::fromLatin1(PgSchema::kQueueChannel))
            || !db.driver()->subscribeToNotification(cancelChannel)) {
            m_listening = false;
            return;
        }
        // Once per driver: a reconnected queue has a new one.
        disconnect(db.driver(), &QSqlDriver::notification, this, nullptr);
        connect(db.driver(), &QSqlDriver::notification, this,
                [this, cancelChannel](const QString &channel, QSqlDriver::NotificationSource, const QVariant &) {
                    if (channel == cancelChannel)
                        checkCancels();
                    else
                        wake();
                });
        m_listening = true;
    }

    void wake()
    {
        m_more = true;
        if (!m_claimTimer.isActive())
            m_claimTimer.start();
    }

    // Reconnects after the server was gone: the claims go on where they were.
    bool connected()
    {
        QString error;
        const bool wasOpen = m_queue->database().isOpen();
        if (!m_queue->ensureOpen(&error)) {
            if (!m_warned) {
                m_console->err(u"taskdeck worker: "_s + error + u"; reconnecting"_s);
                m_console->flush();
                m_warned = true;
            }
            m_listening = false;
            return false;
        }
        if (!wasOpen || !m_listening || m_warned) {
            listen();
            if (m_warned) {
                m_console->err(u"taskdeck worker: connected to %1 again"_s.arg(m_store->location()));
                m_console->flush();
            }
            m_warned = false;
        }
        return true;
    }

    // Runs the worker must still start or is running (not those that ended, whose end and
    // queue row the history's writer is committing).
    int holding() const { return int(m_running.size() + m_waiting.size()); }

    // Claimed runs kept waiting besides those running (see kPrefetchWindow). Under a shared
    // start rate a claim is a start: nothing is claimed ahead to wait here.
    int prefetch() const
    {
        if (m_limits.startRate > 0)
            return 0;
        const int byRate = int(m_startRate * double(kPrefetchWindow.count()) / 1000.0);
        return std::max(m_concurrency, std::min(kMaxPrefetch, byRate));
    }

    // Runs started per second, smoothed: what the worker gets through decides how many
    // claimed runs it keeps at hand.
    void sampleRate()
    {
        const qint64 elapsed = m_rateClock.elapsed();
        if (elapsed < 50)
            return;
        m_startRate = (m_startRate + double(m_startedSinceSample) * 1000.0 / double(elapsed)) / 2.0;
        m_startedSinceSample = 0;
        m_rateClock.restart();
    }

    // Claims once at least half the prefetch is free (or the engine has nothing to start).
    // Under a start rate the ends of a moment share one claim (kRateGather).
    void maybeClaim()
    {
        if (!m_more || m_stopping || m_claiming || m_claimTimer.isActive())
            return;
        sampleRate();
        const int room = m_concurrency + prefetch() - holding();
        if (m_limits.startRate > 0) {
            if (room > 0 && !m_rateTimer.isActive())
                m_rateTimer.start(kRateGather);
            return;
        }
        if (room >= std::max(1, prefetch() / 2) || m_waiting.isEmpty())
            m_claimTimer.start();
    }

    // Asks the claimer thread for runs; takeClaimed() gets the answer. One claim at a time.
    void claim()
    {
        if (m_stopping || m_claiming)
            return;
        sampleRate();
        const int room = m_concurrency + prefetch() - holding();
        if (room <= 0) {
            m_more = true;
            return;
        }
        const int asked = std::min(room, kClaimBatch);
        m_claiming = true;
        m_more = false; // a notification or a full batch sets it again
        // The claimer thread gets its own copy of what to claim; the answer says which versions
        // it claimed at, in case the tasks file changed meanwhile.
        detail::postTo(m_claimContext, [this, asked, scopes = m_scopes, versions = m_versions] {
            // On the claimer thread: its own queue connection, reopened after a failure. Every
            // claim reads the queue's stored limits (max-running, start rate) in its transaction.
            QString error;
            std::optional<QList<ClaimedRun>> claimed;
            if (!m_claimQueue)
                m_claimQueue = std::make_unique<PgQueue>(m_store->connectionInfo(), RunOwner::current());
            const bool ready = (m_claimQueue->database().isOpen() && !m_claimFailed)
                || m_claimQueue->ensureOpen(&error);
            if (ready)
                claimed = m_claimQueue->claim(scopes, asked, m_lease, &error);
            m_claimFailed = !claimed;
            const QueueLimits limits = m_claimQueue->lastLimits();
            const std::chrono::milliseconds rateWait = claimed ? m_claimQueue->startRateWait()
                                                               : std::chrono::milliseconds(0);
            detail::postTo(this, [this, runs = std::move(claimed), error, asked, limits, rateWait, versions] {
                takeClaimed(runs, error, asked, limits, rateWait, versions);
            });
        });
    }

    void takeClaimed(std::optional<QList<ClaimedRun>> runs, const QString &error, int asked,
                     const QueueLimits &limits, std::chrono::milliseconds rateWait,
                     const QHash<QString, QString> &claimedAt)
    {
        m_claiming = false;
        if (!runs) {
            warn(error); // the next poll claims again
            quitWhenDone();
            return;
        }
        m_limits = limits;
        if (m_stopping) {
            // Claimed while the worker was stopping: back to the queue, untouched.
            QStringList back;
            for (const ClaimedRun &run : *runs)
                back << run.id;
            QString failure;
            if (!m_queue->handBack(back, &failure))
                m_console->err(u"taskdeck worker: %1; %2 runs it held go back to the queue when their lease "
                               u"ends"_s.arg(failure).arg(back.size()));
            quitWhenDone();
            return;
        }
        if (holding() == 0 && m_ending.isEmpty() && !runs->isEmpty())
            m_lastRenewed = std::chrono::steady_clock::now(); // the claim's lease starts now
        if (runs->size() == asked)
            m_more = true;
        if (claimedAt != m_versions)
            handBackChanged(*runs, claimedAt);
        m_waiting.append(*runs);
        dispatch();
        if (m_more)
            maybeClaim();
        else if (rateWait.count() > 0 && !m_rateTimer.isActive())
            m_rateTimer.start(rateWait);
    }

    // Starts claimed runs while the engine has room for them.
    void dispatch()
    {
        RunOptions options;
        options.confirmed = true; // start asked for it where the task needs it
        while (!m_stopping && !m_waiting.isEmpty() && int(m_running.size()) < m_concurrency) {
            const ClaimedRun run = m_waiting.takeFirst();
            m_recorder->expect(run);
            const StartResult started = m_engine->start(run.task, run.args, options);
            if (!started.ok()) {
                failUnstartable(run, started.error.message);
                continue;
            }
            m_running.insert(started.runId, run.id);
            ++m_startedSinceSample;
        }
    }

    // A run the engine refused (its task changed its fields under the same version, say).
    // Its end leaves the queue with it, in the history writer's transaction.
    void failUnstartable(const ClaimedRun &claim, const QString &why)
    {
        endUnstarted(claim, RunStatus::Failed, {u"worker could not start the run: "_s + why, u"StartError"_s,
                                                QString(), false});
    }

    // Stores the end of a claimed run that never started here, and lets it leave the queue.
    void endUnstarted(const ClaimedRun &claim, RunStatus status, const RunError &error)
    {
        m_recorder->expect(ClaimedRun());
        Run run;
        run.id = claim.id;
        run.task = claim.task;
        run.args = claim.args;
        run.status = status;
        run.queuedAt = claim.queuedAt;
        run.finishedAt = QDateTime::currentDateTimeUtc();
        run.attempt = claim.attempt;
        run.maxAttempts = claim.maxAttempts;
        run.owner = RunOwner::current();
        run.seq = claim.seq + 1;
        run.error = error;
        m_store->recordFinished(run, {});
    }

    // Runs the engine ended: their slots are free, their ends are being committed.
    // Also says which ends the database refused: the writer's transaction removes only the
    // queue rows this worker still holds, and reports the others.
    void ended()
    {
        for (const QString &id : m_recorder->takeNotHeld())
            m_console->err(u"taskdeck worker: run %1 was no longer held by this worker when it ended "
                           u"(its lease expired and it was taken back); the end this worker wrote was "
                           u"refused by the database"_s.arg(id));
        m_console->flush();
        for (const QString &engineId : m_recorder->takeEnded()) {
            const QString queueId = m_running.take(engineId);
            if (!queueId.isEmpty())
                m_ending.insert(engineId, queueId);
        }
        dispatch();
        maybeClaim();
    }

    // A run's end is committed (and its queue row gone with it, if this worker still held it).
    void finished(const Run &run)
    {
        QString queueId = m_ending.take(run.id);
        if (queueId.isEmpty())
            queueId = m_running.take(run.id);
        if (queueId.isEmpty())
            return;
        m_recorder->forget(run.id);
        m_cancelAsked.remove(run.id);
        if (m_abandoned.remove(run.id)) {
            m_console->err(u"taskdeck worker: run %1 ended here (%2) after this worker lost its claim; this end "
                           u"was not stored: the worker or recovery that took the run back stores its end"_s
                               .arg(queueId, runStatusName(run.status)));
            m_console->flush();
        }
        dispatch();
        maybeClaim();
        if (m_stopping)
            quitWhenDone();
    }

    void quitWhenDone()
    {
        if (m_stopping && !m_claiming && m_running.isEmpty() && m_ending.isEmpty())
            m_loop.quit();
    }

    void poll()
    {
        if (!connected())
            return;
        const auto now = std::chrono::steady_clock::now();
        if (now >= m_nextReclaim) {
            QString error;
            const int reclaimed = m_queue->reclaimExpired(&error);
            if (reclaimed < 0)
                warn(error);
            else if (reclaimed > 0)
                qCInfo(lcWorker).noquote() << u"took back %1 runs of workers whose leases expired"_s.arg(reclaimed);
            m_nextReclaim = now + std::max(std::chrono::milliseconds(200), m_lease / 2);
        }
        // LISTEN is the way in; this catches what a lost notification would miss.
        m_more = true;
        if (!m_claimTimer.isActive())
            m_claimTimer.start();
        checkCancels();
    }

    // The runs of this worker whose cancel was asked for (taskdeck run interrupted, say).
    void checkCancels()
    {
        if (holding() == 0)
            return;
        QString error;
        const std::optional<QStringList> ids = m_queue->cancelRequests(&error);
        if (!ids) {
            warn(error);
            return;
        }
        QStringList ended;
        for (const QString &id : *ids) {
            for (qsizetype i = 0; i < m_waiting.size(); ++i) {
                if (m_waiting.at(i).id != id)
                    continue;
                endUnstarted(m_waiting.takeAt(i), RunStatus::Canceled,
                             {u"canceled before it started"_s, u"Canceled"_s, QString(), false});
                ended << id;
                break;
            }
            for (auto it = m_running.cbegin(); it != m_running.cend(); ++it) {
                if (it.value() != id || m_cancelAsked.contains(it.key()))
                    continue;
                m_cancelAsked.insert(it.key());
                m_engine->cancel(it.key());
                ended << id;
                break;
            }
        }
        if (!ended.isEmpty()) {
            qCInfo(lcWorker).noquote() << u"canceling %1 as asked"_s.arg(ended.join(u", "_s));
        }
    }

    // The queued runs whose claims this worker renews: waiting, running, and ended with their
    // end not committed yet (their queue rows go with that commit); not those it lost.
    QStringList heldIds() const
    {
        QStringList ids;
        for (const ClaimedRun &run : std::as_const(m_waiting))
            ids << run.id;
        for (const QHash<QString, QString> *runs : {&m_running, &m_ending}) {
            for (auto it = runs->cbegin(); it != runs->cend(); ++it) {
                if (!m_abandoned.contains(it.key()))
                    ids << it.value();
            }
        }
        return ids;
    }

    void renew()
    {
        const auto now = std::chrono::steady_clock::now();
        // Leases this worker could not renew in time are over: another worker may hold those
        // runs by now. They stop here, and nothing more of them is written from here.
        if ((holding() > 0 || !m_ending.isEmpty()) && now - m_lastRenewed > m_lease) {
            const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - m_lastRenewed);
            const QString why = u"its lease was not renewed for %1 ms, longer than the lease (%2 ms)"_s
                                    .arg(silent.count())
                                    .arg(m_lease.count());
            for (const QString &id : heldIds())
                abandon(id, why);
        }
        // Runs that ended still hold their queue rows until the writer commits their ends.
        const QStringList ids = heldIds();
        if (ids.isEmpty()) {
            m_lastRenewed = now;
            return;
        }
        QString error;
        const std::optional<QStringList> still = m_queue->renewHeld(ids, m_lease, &error);
        if (!still) {
            warn(error);
            return;
        }
        m_lastRenewed = now;
        for (const QString &id : std::as_const(ids)) {
            if (!still->contains(id))
                abandon(id, u"its lease had expired and the run was taken back"_s);
        }
    }

    // The claim of queued run \a id is lost: the run stops here and nothing more of it is stored.
    void abandon(const QString &id, const QString &why)
    {
        for (qsizetype i = 0; i < m_waiting.size(); ++i) {
            if (m_waiting.at(i).id == id) {
                m_waiting.removeAt(i);
                m_console->err(u"taskdeck worker: lost the claim of run %1 before starting it (%2)"_s.arg(id, why));
                m_console->flush();
                return;
            }
        }
        // A run that ended already keeps its end; the writer removes its queue row only if this
        // worker still holds it, and reports it otherwise (see ended()).
        for (auto it = m_running.cbegin(); it != m_running.cend(); ++it) {
            if (it.value() != id || m_abandoned.contains(it.key()))
                continue;
            const QString engineId = it.key();
            m_abandoned.insert(engineId);
            m_recorder->abandon(engineId);
            m_engine->cancel(engineId);
            m_console->err(u"taskdeck worker: lost the claim of run %1 (%2); canceling it here, and nothing more "
                           u"of it is stored from this worker"_s.arg(id, why));
            m_console->flush();
            return;
        }
    }

    void warn(const QString &error)
    {
        if (!m_warned) {
            m_console->err(u"taskdeck worker: "_s + error + u"; reconnecting"_s);
            m_console->flush();
            m_warned = true;
        }
        m_listening = false;
    }

    void stop(int)
    {
        if (m_stopping) {
            m_console->err(u"taskdeck worker: canceling %1 runs"_s.arg(m_running.size()));
            m_console->flush();
            m_engine->cancelAll();
            return;
        }
        m_stopping = true;
        // What was claimed but not started goes back to the queue as it was.
        QStringList back;
        for (const ClaimedRun &run : std::as_const(m_waiting))
            back << run.id;
        QString error;
        if (!m_queue->handBack(back, &error))
            m_console->err(u"taskdeck worker: %1; %2 runs it held go back to the queue when their lease "
                           u"ends"_s.arg(error).arg(back.size()));
        m_waiting.clear();
        m_console->err(u"taskdeck worker: stopping; handed %1 runs back; waiting for %2 runs to finish "
                       u"(interrupt again to cancel them)"_s.arg(back.size()).arg(m_running.size()));
        m_console->flush();
        m_quitTimer.start(0);
    }

    TaskEngine *const m_engine;
    QueueRecorder *const m_recorder;
    PgQueue *const m_queue;
    PgRunStore *const m_store;
    QHash<QString, QString> m_versions;   // task key -> the version its runs are claimed at
    QList<ClaimScope> m_scopes;           // what claims ask for, from m_versions
    const int m_concurrency;
    const std::chrono::milliseconds m_lease;
    Console *const m_console;
    QEventLoop m_loop;
    QTimer m_poll;
    QTimer m_renew;
    QTimer m_claimTimer;
    QTimer m_quitTimer;
    QTimer m_rateTimer;
    QThread m_claimThread;
    QObject *m_claimContext = nullptr;        // lives in m_claimThread
    std::unique_ptr<PgQueue> m_claimQueue;    // made, used and closed in m_claimThread
    bool m_claimFailed = false;               // m_claimThread only
    bool m_claiming = false;                  // a claim was asked for and not answered yet
    QueueLimits m_limits;                     // the queue's limits as the last claim read them
    QHash<QString, QString> m_running; // engine run id -> queued run id, of runs started, not ended
    QHash<QString, QString> m_ending;  // the same, of runs ended, their end not committed yet
    QList<ClaimedRun> m_waiting;       // claimed, not started yet
    QSet<QString> m_cancelAsked;       // engine run ids canceled on request
    QSet<QString> m_abandoned;         // engine run ids whose claim was lost
    std::chrono::steady_clock::time_point m_lastRenewed; // the last renewal that reached the database
    std::chrono::steady_clock::time_point m_nextReclaim;
    QElapsedTimer m_rateClock;
    qint64 m_startedSinceSample = 0;
    double m_startRate = 0;            // runs started per second, smoothed
    bool m_more = true;
    bool m_listening = false;
    bool m_warned = false;
    bool m_stopping = false;
};

} // namespace

namespace {

// taskVersions() with the tasks file's \a content as it was read, and its tasks.
QHash<QString, QString> versionsOf(const TaskRegistry &registry, const std::optional<QByteArray> &content,
                                   const QList<Task> &fileTasks)
{
    QHash<QString, QString> versions;
    const QString builtin = u"builtin-"_s + QCoreApplication::applicationVersion();
    for (const TaskPtr &task : registry.tasks())
        versions.insert(task->key, builtin);
    const QString hash = QString::fromLatin1(
        QCryptographicHash::hash(content.value_or(QByteArray()), QCryptographicHash::Sha256).toHex().left(16));
    for (const Task &task : fileTasks)
        versions.insert(task.key, u"file-"_s + hash);
    return versions;
}

// What a worker with \a registry's tasks at \a versions claims: one scope per version.
QList<ClaimScope> claimScopes(const TaskRegistry &registry, const QHash<QString, QString> &versions)
{
    QHash<QString, ClaimScope> byVersion;
    for (const TaskPtr &task : registry.tasks()) {
        const QString version = versions.value(task->key);
        ClaimScope &scope = byVersion[version];
        scope.tasksVersion = version;
        scope.tasks.insert(task->key, task->maxConcurrent);
    }
    return byVersion.values();
}

// The start rate of each of \a registry's tasks (stored for every worker).
QHash<QString, double> taskStartRates(const TaskRegistry &registry)
{
    QHash<QString, double> rates;
    for (const TaskPtr &task : registry.tasks())
        rates.insert(task->key, task->startRate);
    return rates;
}

} // namespace

QHash<QString, QString> taskVersions(const TaskRegistry &registry, const QString &tasksFilePath)
{
    if (tasksFilePath.isEmpty())
        return versionsOf(registry, std::nullopt, {});
    std::optional<QByteArray> content;
    const TasksFileResult file = loadTasksFile(tasksFilePath, &content);
    return versionsOf(registry, content, file.tasks);
}

int runWorker(TaskRegistry *registry, PgRunStore *store, const Settings &settings,
              const QHash<QString, QString> &versions, TasksFileWatcher *tasksFile,
              const CommandLine &commandLine, Console *console)
{
    const int concurrency = commandLine.concurrency > 0 ? commandLine.concurrency
                                                        : settings.engine.effectiveMaxConcurrent();
    const std::chrono::milliseconds lease = commandLine.lease.value_or(kDefaultLease);
    const QHash<QString, double> startRates = taskStartRates(*registry);

    PgQueue queue(store->connectionInfo(), RunOwner::current());
    QString error;
    if (!queue.open(&error)) {
        console->err(u"taskdeck worker: "_s + error);
        return exitcode::Usage;
    }
    // The limits are the queue's: given here, they are stored for every worker.
    if ((commandLine.maxRunning != 0 && !queue.setMaxRunning(std::max(0, commandLine.maxRunning), &error))
        || (commandLine.startRate && !queue.setStartRate(*commandLine.startRate, &error))
        || !queue.setTaskStartRates(startRates, &error)) {
        console->err(u"taskdeck worker: cannot store the queue's limits: "_s + error);
        return exitcode::Usage;
    }
    const std::optional<QueueLimits> limits = queue.limits(&error);
    if (!limits) {
        console->err(u"taskdeck worker: "_s + error);
        return exitcode::Usage;
    }
    QueueRecorder recorder(store);
    // A run's queue row goes with the commit of its end while this worker holds it; the ends
    // of runs it no longer held are reported to the worker (see PgRunStore::setQueueWorker).
    store->setQueueWorker(RunOwner::current(), [&recorder](const QStringList &ids) { recorder.notHeld(ids); });
    EngineConfig config = settings.engine;
    config.maxConcurrent = concurrency;
    int code = exitcode::Success;
    {
        TaskEngine engine(registry, config);
        engine.setRecorder(&recorder);
        console->err(u"taskdeck worker %1: running queued runs of %2 tasks from %3, %4 at a time"_s
                         .arg(RunOwner::current())
                         .arg(registry->tasks().size())
                         .arg(store->location())
                         .arg(concurrency));
        QStringList shared;
        if (limits->maxRunning > 0)
            shared << u"at most %1 running"_s.arg(limits->maxRunning);
        if (limits->startRate > 0)
            shared << u"at most %1 starts a second"_s.arg(limits->startRate);
        if (!shared.isEmpty())
            console->err(u"taskdeck worker: the queue's limits, for all workers: "_s + shared.join(u", "_s));
        console->flush();
        Worker worker(&engine, &recorder, &queue, store, versions, claimScopes(*registry, versions), concurrency,
                      lease, commandLine.poll.value_or(kPollInterval), console);
        // The worker follows its tasks file: runs queued with the new file are its to take.
        if (tasksFile) {
            QObject::connect(tasksFile, &TasksFileWatcher::loaded, &worker, [&, tasksFile] {
                const std::optional<QByteArray> content = tasksFile->lastContent();
                const TasksFileResult file = parseTasksYaml(content.value_or(QByteArray()), tasksFile->path(),
                                                            QFileInfo(tasksFile->source()).absolutePath());
                const QHash<QString, QString> now = versionsOf(*registry, content, file.tasks);
                QString failure;
                if (!queue.setTaskStartRates(taskStartRates(*registry), &failure))
                    console->err(u"taskdeck worker: cannot store the tasks' start rates: "_s + failure);
                worker.useTasks(now, claimScopes(*registry, now), tasksFile->path());
            });
            QObject::connect(tasksFile, &TasksFileWatcher::loadFailed, &worker,
                             [console, tasksFile](const QList<TasksFileError> &errors) {
                console->err(u"taskdeck worker: %1 has %2 error(s), so its earlier tasks stay: %3"_s.arg(
                    tasksFile->path()).arg(errors.size()).arg(errors.isEmpty() ? QString() : errors.constFirst().toString()));
                console->flush();
            });
            tasksFile->startWatching();
        }
        code = worker.exec();
        if (tasksFile)
            tasksFile->stopWatching();
        engine.shutdown();
    }
    store->flush(std::chrono::seconds(10));
    store->setQueueWorker(RunOwner::current()); // the recorder goes now
    return code;
}

namespace {

// The task of \a commandLine when it exists and is confirmed where it must be; else null,
// with the reason printed.
TaskPtr confirmedTask(TaskRegistry *registry, const CommandLine &commandLine, Console *console)
{
    const TaskPtr task = registry->find(commandLine.taskKey);
    if (!task) {
        QString message = u"taskdeck: unknown task \"%1\""_s.arg(commandLine.taskKey);
        const QStringList near = registry->nearestKeys(commandLine.taskKey);
        message += near.isEmpty() ? u"; taskdeck list shows the tasks"_s
                                  : u"; did you mean: "_s + near.join(u", "_s) + u'?';
        console->err(message);
        return nullptr;
    }
    if (task->isDangerous() && !commandLine.confirmed) {
        console->err(u"taskdeck: %1 (%2) is dangerous: %3"_s.arg(task->title, task->key, task->danger));
        console->err(u"re-run with --yes to confirm"_s);
        return nullptr;
    }
    return task;
}

// The shared queue of \a store, for a process that queues runs (it claims none); null, with the
// reason printed, when the database cannot be reached.
std::unique_ptr<PgQueue> openQueue(PgRunStore *store, Console *console)
{
    auto queue = std::make_unique<PgQueue>(store->connectionInfo(), QString());
    QString error;
    if (!queue->open(&error)) {
        console->err(u"taskdeck: "_s + error);
        return nullptr;
    }
    return queue;
}

// A run of \a task with the validated arguments \a values, for the queue.
NewQueuedRun queuedRun(const Task &task, const QJsonObject &values, const QHash<QString, QString> &versions)
{
    return {task.key, values, versions.value(task.key), task.retry.maxAttempts};
}

// The first secret field of \a task: a run with one cannot be queued (secrets are never stored).
QString secretField(const Task &task)
{
    for (const Field &field : task.fields) {
        if (field.type == FieldType::Secret)
            return field.key;
    }
    return QString();
}

} // namespace

int startRuns(TaskRegistry *registry, PgRunStore *store, const QHash<QString, QString> &versions,
              const CommandLine &commandLine, Console *console)
{
    const TaskPtr task = confirmedTask(registry, commandLine, console);
    if (!task)
        return exitcode::Usage;
    if (const QString secret = secretField(*task); !secret.isEmpty()) {
        console->err(u"taskdeck: task \"%1\" has a secret argument (%2), and secrets are never stored; "
                     u"run it with taskdeck run instead"_s.arg(task->key, secret));
        return exitcode::Usage;
    }

    const std::unique_ptr<PgQueue> queue = openQueue(store, console);
    if (!queue)
        return exitcode::Usage;
    QString error;
    qsizetype queued = 0;
    QList<NewQueuedRun> batch;
    // Validates one input; false (with the error printed) when it is not valid.
    auto add = [&](const QJsonObject &args, int line) {
        const Validation validation = validateArguments(task->fields, args);
        if (!validation.ok()) {
            console->err(u"taskdeck: invalid arguments for task \"%1\"%2: %3; %4 runs were queued before it"_s.arg(
                task->key, line > 0 ? u" (--each line %1)"_s.arg(line) : QString(),
                formatFieldErrors(validation.errors)).arg(queued));
            return false;
        }
        batch.append(queuedRun(*task, validation.values, versions));
        return true;
    };
    auto flush = [&]() {
        if (batch.isEmpty())
            return true;
        const std::optional<QStringList> ids = queue->enqueue(batch, &error);
        if (!ids) {
            console->err(u"taskdeck: "_s + error + u"; %1 runs were queued before this"_s.arg(queued));
            return false;
        }
        queued += ids->size();
        batch.clear();
        for (const QString &id : *ids) {
            console->out(commandLine.json
                             ? QString::fromUtf8(QJsonDocument(QJsonObject{{u"id"_s, id}}).toJson(QJsonDocument::Compact))
                             : id);
        }
        console->flush();
        return true;
    };

    if (!commandLine.eachFile) {
        if (!add(commandLine.args, 0) || !flush())
            return exitcode::Usage;
        return exitcode::Success;
    }
    const bool fromStdin = *commandLine.eachFile == u"-";
    QFile file;
    const bool opened = fromStdin ? file.open(stdin, QIODevice::ReadOnly)
                                  : (file.setFileName(*commandLine.eachFile), file.open(QIODevice::ReadOnly));
    if (!opened) {
        console->err(u"taskdeck: cannot read --each input %1: %2"_s.arg(*commandLine.eachFile, file.errorString()));
        return exitcode::Usage;
    }
    constexpr qsizetype Batch = 1000;
    int number = 0;
    while (!file.atEnd()) {
        const QByteArray line = file.readLine().trimmed();
        ++number;
        if (!line.isEmpty()) {
            const QJsonDocument doc = QJsonDocument::fromJson(line);
            if (!doc.isObject()) {
                console->err(u"taskdeck: --each line %1 is not a JSON object; %2 runs were queued before it"_s
                                 .arg(number).arg(queued));
                return exitcode::Usage;
            }
            QJsonObject args = commandLine.args;
            const QJsonObject more = doc.object();
            for (auto it = more.constBegin(); it != more.constEnd(); ++it)
                args.insert(it.key(), it.value());
            if (!add(args, number))
                return exitcode::Usage;
        }
        // A file goes in batches; lines of a pipe are queued as soon as no more are waiting,
        // so a run written to the pipe does not wait for the next ones.
        pollfd ready{0, POLLIN, 0};
        const bool moreWaiting = !fromStdin || file.bytesAvailable() > 0 || ::poll(&ready, 1, 0) > 0;
        if ((batch.size() >= Batch || !moreWaiting) && !flush())
            return exitcode::Usage;
    }
    if (!flush())
        return exitcode::Usage;
    console->flush();
    return exitcode::Success;
}

std::optional<int> runQueued(TaskRegistry *registry, PgRunStore *store, const Settings &settings,
                             const QHash<QString, QString> &versions, const CommandLine &commandLine,
                             Console *console)
{
    const TaskPtr task = confirmedTask(registry, commandLine, console);
    if (!task)
        return exitcode::Usage;
    if (const QString secret = secretField(*task); !secret.isEmpty()) {
        console->err(u"taskdeck: task \"%1\" has a secret argument (%2), and secrets are never stored in the "
                     u"shared queue: running it here"_s.arg(task->key, secret));
        console->flush();
        return std::nullopt;
    }
    if (commandLine.timeout) {
        console->err(u"taskdeck: --timeout is not carried by the shared queue (the worker applies the task's "
                     u"own limit); use --local to run here with it"_s);
        return exitcode::Usage;
    }
    const Validation validation = validateArguments(task->fields, commandLine.args);
    if (!validation.ok()) {
        console->err(u"taskdeck: invalid arguments for task \"%1\": %2"_s.arg(task->key,
                                                                              formatFieldErrors(validation.errors)));
        return exitcode::Usage;
    }

    const std::unique_ptr<PgQueue> queue = openQueue(store, console);
    if (!queue)
        return exitcode::Usage;
    QString error;
    const std::optional<QStringList> ids =
        queue->enqueue({queuedRun(*task, validation.values, versions)}, &error);
    if (!ids || ids->isEmpty()) {
        console->err(u"taskdeck: "_s + error);
        return exitcode::Usage;
    }
    const QString runId = ids->constFirst();
    const bool json = commandLine.json;
    const Console::Channel logChannel = json ? Console::Channel::Err : Console::Channel::Out;
    if (!json) {
        console->err(u"run "_s + runId + u" (queued for a worker)"_s);
        console->flush();
    }

    // The engine only answers the follower's question (the run is not its own); the history
    // has the run.
    EngineConfig config = settings.engine;
    config.maxConcurrent = 1;
    TaskEngine engine(registry, config);
    RunFollower follower(&engine, store);
    QEventLoop loop;
    QObject scope;
    std::optional<Run> finished;
    qint64 lastLine = 0;
    std::unique_ptr<RunHandle> handle;
    bool unknown = false;

    std::function<void(qint64)> follow = [&](qint64 after) {
        follower.follow(runId, {after, RunHandle::kDefaultMaxQueuedLines}, &scope, [&](Following following) {
            if (!following.handle) {
                unknown = true;
                loop.quit();
                return;
            }
            handle = std::move(following.handle);
            QObject::connect(handle.get(), &RunHandle::log, &scope, [&](const LogLines &lines) {
                for (const LogLine &line : lines) {
                    if (line.number <= lastLine)
                        continue;
                    lastLine = line.number;
                    console->logLine(logChannel, line);
                }
                console->flush();
            });
            QObject::connect(handle.get(), &RunHandle::finished, &scope, [&](const Run &run) {
                finished = run;
                loop.quit();
            });
            // Slow to print: catch up from the history where the handle stopped.
            QObject::connect(handle.get(), &RunHandle::fellBehind, &scope, [&](qint64 seq) {
                QTimer::singleShot(0, &scope, [&follow, seq] { follow(seq); });
            });
        });
    };
    follow(0);

    // The worker stores the run's progress in its history row (the follower's events carry
    // its lines and its end, not its progress), and every write of the row is notified: read
    // the row on those notifications, one read at a time, and show its progress as a local
    // run does.
    bool readingProgress = false;
    bool progressChanged = false;
    std::optional<Progress> shownProgress;
    std::function<void()> readProgress = [&] {
        if (readingProgress) {
            progressChanged = true;
            return;
        }
        readingProgress = true;
        progressChanged = false;
        detail::whenDone(&scope, store->findRunAsync(runId), [&](const std::optional<Run> &run) {
            readingProgress = false;
            if (run && run->status == RunStatus::Running && !finished) {
                const Progress &now = run->progress;
                if (!shownProgress || shownProgress->done != now.done || shownProgress->total != now.total
                    || shownProgress->message != now.message) {
                    shownProgress = now;
                    console->progress(now);
                    console->flush();
                }
            }
            if (progressChanged && !finished)
                readProgress();
        });
    };
    QObject::connect(store->notifier(), &RunStoreNotifier::runsChanged, &scope, [&](const QStringList &changed) {
        if (!finished && changed.contains(runId))
            readProgress();
    });

    // Said once, when no worker has taken the run after a while: not a silent hang.
    QTimer waiting;
    waiting.setSingleShot(true);
    waiting.setInterval(std::chrono::seconds(3));
    QObject::connect(&waiting, &QTimer::timeout, &scope, [&] {
        detail::whenDone(&scope, store->findRunAsync(runId), [&](const std::optional<Run> &run) {
            if (run && run->status == RunStatus::Queued && !finished) {
                console->err(u"taskdeck: run %1 is waiting for a worker: none has taken it yet (taskdeck worker "
                             u"runs queued runs; taskdeck run --local runs here)"_s.arg(runId));
                console->flush();
            }
        });
    });
    waiting.start();

    int interrupts = 0;
    SignalWatcher watcher({SIGINT, SIGTERM});
    QObject::connect(&watcher, &SignalWatcher::signalReceived, &scope, [&](int signalNumber) {
        if (++interrupts > 1) {
            console->err(u"taskdeck: quitting; run %1 goes on as the queue has it (taskdeck show %1)"_s.arg(runId));
            console->flush();
            std::_Exit(128 + signalNumber);
        }
        QString cancelError;
        const std::optional<CancelOutcome> outcome = queue->requestCancel(runId, &cancelError);
        if (!outcome) {
            console->err(u"taskdeck: could not ask for the cancel of run %1: %2"_s.arg(runId, cancelError));
        } else if (*outcome == CancelOutcome::Requested) {
            console->err(u"canceling on its worker... (interrupt again to quit at once)"_s);
        } else if (*outcome == CancelOutcome::Canceled) {
            console->err(u"canceled before a worker took it"_s);
        }
        console->flush();
    });

    if (!finished && !unknown)
        loop.exec();
    console->clearStatus();
    if (unknown || !finished) {
        console->err(u"taskdeck: run %1 is not in the history"_s.arg(runId));
        return exitcode::Failure;
    }
    const Run &done = *finished;
    console->err(runSummary(done));
    if (done.status != RunStatus::Succeeded && !done.error.detail.trimmed().isEmpty())
        console->err(indented(done.error.detail.trimmed(), u"  "_s));
    if (json)
        console->out(toJsonText(done.toJson(), QJsonDocument::Indented));
    else if (done.status == RunStatus::Succeeded && !done.result.isUndefined() && !done.result.isNull())
        console->out(toJsonText(done.result, QJsonDocument::Indented));
    console->flush();
    return done.status == RunStatus::Succeeded ? exitcode::Success : exitcode::Failure;
}

} // namespace taskdeck
