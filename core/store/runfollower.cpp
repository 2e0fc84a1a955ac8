// SPDX-License-Identifier: MIT
#include "runfollower.h"

#include "runstorenotifier.h"
#include "whendone.h"

#include <QPointer>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

RunEvent logEvent(const LogLines &lines)
{
    return RunEvent{RunEvent::Type::Log, lines.constFirst().seq, lines, {}, {}};
}

/*!
 * Reads a run's lines from the history, a page at a time, into a handle, and what comes
 * after them: the finish, or (for a run another process is running) the lines and finish it
 * writes later. Lives as long as the handle it feeds (its child).
 */
class HistoryFeed final : public QObject
{
public:
    enum class Mode {
        Supply, //!< fill a held handle's gap up to \a until, then release it
        Push,   //!< push everything after \a after, then follow the history to the finish
    };

    HistoryFeed(IRunStore *store, RunHandle *handle, Mode mode, qint64 after, qint64 until)
        : QObject(handle)
        , m_store(store)
        , m_handle(handle)
        , m_mode(mode)
        , m_after(after)
        , m_until(until)
    {
    }

    void start() { readPage(); }

private:
    void readPage()
    {
        m_reading = true;
        detail::whenDone(this, m_store->readLogAfterSeqAsync(m_handle->runId(), m_after, RunFollower::kPageLines),
                         [this](const LogLines &page) { pageRead(page); });
    }

    // From the event loop: a read that completes at once would otherwise nest a call per page.
    void readNextPage()
    {
        QMetaObject::invokeMethod(this, &HistoryFeed::readPage, Qt::QueuedConnection);
    }

    void pageRead(LogLines page)
    {
        m_reading = false;
        if (m_mode == Mode::Supply) {
            while (!page.isEmpty() && page.constLast().seq > m_until)
                page.removeLast();
            if (!page.isEmpty()) {
                m_handle->supply({logEvent(page)});
                m_after = page.constLast().seq;
            }
            if (page.size() < RunFollower::kPageLines || m_after >= m_until) {
                m_handle->release();
                deleteLater();
                return;
            }
            readNextPage();
            return;
        }
        if (!page.isEmpty()) {
            m_after = page.constLast().seq;
            if (!m_handle->push({logEvent(page)})) {
                deleteLater(); // fell behind or gone
                return;
            }
        }
        if (page.size() == RunFollower::kPageLines) {
            readNextPage();
            return;
        }
        if (m_final) {
            // Every line written before the finish is out: now the finish itself.
            m_handle->push({RunEvent{RunEvent::Type::Finished, m_final->seq, {}, {}, m_final}});
            deleteLater();
            return;
        }
        checkFinished();
    }

    void checkFinished()
    {
        detail::whenDone(this, m_store->findRunAsync(m_handle->runId()), [this](const std::optional<Run> &run) {
            if (run && run->isFinished()) {
                // One more page: lines written after the last one read and before the finish.
                m_final = std::make_shared<const Run>(*run);
                readNextPage();
                return;
            }
            watch();
        });
    }

    void watch()
    {
        if (m_watching)
            return;
        m_watching = true;
        // Another process runs it: read on whenever the history says it changed.
        connect(m_store->notifier(), &RunStoreNotifier::runsChanged, this, [this](const QStringList &ids) {
            if (!m_reading && ids.contains(m_handle->runId()))
                readNextPage();
        });
    }

    IRunStore *m_store;
    RunHandle *m_handle; // the parent
    const Mode m_mode;
    qint64 m_after;
    const qint64 m_until;
    bool m_reading = false;
    bool m_watching = false;
    std::shared_ptr<const Run> m_final; // the run, once the history shows it finished
};

} // namespace

RunFollower::RunFollower(TaskEngine *engine, IRunStore *store)
    : m_engine(engine)
    , m_store(store)
{
}

void RunFollower::follow(const QString &runId, const FollowOptions &options, QObject *context, Ready ready)
{
    Following following = m_engine->follow(runId, options);
    if (following.handle) {
        QPointer<HistoryFeed> feed;
        if (following.missingTo > 0) {
            if (m_store) {
                // The engine holds the handle until the history filled in what it dropped.
                feed = new HistoryFeed(m_store, following.handle.get(), HistoryFeed::Mode::Supply,
                                       options.after, following.missingTo);
            } else {
                following.handle->release(); // nothing to fill it from: the gap shows in the seqs
            }
        }
        ready(std::move(following));
        // Only now: a read may complete at once, and the caller connects in ready().
        if (HistoryFeed *live = feed.data())
            live->start();
        return;
    }
    if (!m_store) {
        ready(std::move(following));
        return;
    }
    followStored(runId, options, context, std::move(ready));
}

void RunFollower::followStored(const QString &runId, const FollowOptions &options, QObject *context, Ready ready)
{
    IRunStore *store = m_store;
    const int bufferSize = m_engine->config().bufferSize;
    detail::whenDone(context, store->findRunAsync(runId), [=](const std::optional<Run> &run) {
        if (!run) {
            ready(Following());
            return;
        }
        const qint64 fromLine = std::max<qint64>(1, run->logLines - bufferSize + 1);
        detail::whenDone(context, store->readLogAsync(runId, fromLine, bufferSize), [=](const LogLines &recent) {
            Following following;
            following.run = *run;
            following.recentLog = recent;
            const qint64 after = options.after < 0 ? run->seq : std::min(options.after, run->seq);
            following.handle = std::make_unique<RunHandle>(runId, after, options.maxQueuedLines,
                                                           [] { return false; });
            // Runs of another process go on there: read on as it writes.
            QPointer<HistoryFeed> feed;
            if (after < run->seq || !run->isFinished())
                feed = new HistoryFeed(store, following.handle.get(), HistoryFeed::Mode::Push, after, 0);
            ready(std::move(following));
            // The handle is the feed's parent: gone if the caller dropped it.
            if (HistoryFeed *live = feed.data())
                live->start();
        });
    });
}

} // namespace taskdeck
