// SPDX-License-Identifier: MIT
#include "historymodel.h"

#include "runstorenotifier.h"
#include "../core/internal/tsan.h"

#include <QFuture>
#include <QFutureWatcher>
#include <QScopeGuard>

#include <memory>
#include <utility>
#include <vector>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

// Calls \a onDone(future) in \a owner's thread once \a future ends (with a result or
// canceled), never after \a owner is gone. Qt 6.4's QFuture::then(context, ...) asserts that
// its context is still alive when the future ends, so a model destroyed while a query is in
// flight cannot use it; a watcher owned by the model goes away with it instead.
template <typename T, typename F>
void whenDone(QObject *owner, const QFuture<T> &future, F &&onDone)
{
    // A model gone before the answer came lets go of it in an order TSan sees (ResultWatcher).
    auto *watcher = new taskdeck::detail::ResultWatcher<T>(owner);
    QObject::connect(watcher, &QFutureWatcherBase::finished, owner,
                     [watcher, fn = std::forward<F>(onDone)]() mutable {
                         watcher->deleteLater();
                         // The result was set on a reader thread (detail::publishResult).
                         const QFuture<T> done = watcher->future();
                         taskdeck::detail::acquireResult(done);
                         fn(done);
                         taskdeck::detail::releaseResult(done);
                     });
    watcher->setFuture(future);
}

} // namespace

NotifierRelay *NotifierRelay::of(RunStoreNotifier *notifier)
{
    if (auto *relay = notifier->findChild<NotifierRelay *>(QString(), Qt::FindDirectChildrenOnly))
        return relay;
    auto *relay = new NotifierRelay(notifier);
    connect(notifier, &RunStoreNotifier::runsChanged, relay, &NotifierRelay::runsChanged);
    return relay;
}

HistoryModel::HistoryModel(IRunStore *store, TaskRegistry *registry, QObject *parent)
    : RunTableModel(parent)
    , m_store(store)
{
    setTaskRegistry(registry);
    if (m_store) {
        connect(NotifierRelay::of(m_store->notifier()), &NotifierRelay::runsChanged, this,
                &HistoryModel::onRunsChanged);
        requestPage();
    }
}

HistoryModel::~HistoryModel() = default;

bool HistoryModel::canFetchMore(const QModelIndex &parent) const
{
    if (parent.isValid() || !m_store || m_fetching || m_applying)
        return false;
    return morePages();
}

bool HistoryModel::morePages() const
{
    return m_total < 0 || m_runs.size() < m_total;
}

void HistoryModel::fetchMore(const QModelIndex &parent)
{
    if (canFetchMore(parent))
        requestPage();
}

void HistoryModel::setFilter(const QString &task, std::optional<RunStatus> status, const QDateTime &since)
{
    m_task = task;
    m_status = status;
    m_since = since;
    reload();
}

void HistoryModel::reload()
{
    ++m_generation;
    // Views ask for more while the model resets: they wait for the first page instead.
    m_fetching = true;
    m_total = -1;
    m_pagesRequested = 0;
    resetRuns({});
    m_fetching = false;
    if (m_store)
        requestPage();
}

bool HistoryModel::matchesFilter(const Run &run) const
{
    if (!m_task.isEmpty() && run.task != m_task)
        return false;
    if (m_status && run.status != *m_status)
        return false;
    if (m_since.isValid() && run.queuedAt < m_since)
        return false;
    return true;
}

void HistoryModel::requestPage()
{
    RunQuery query;
    query.task = m_task;
    query.status = m_status;
    query.from = m_since;
    query.limit = kPageSize;
    query.offset = int(m_runs.size());
    m_fetching = true;
    ++m_pagesRequested;
    const quint64 generation = m_generation;
    whenDone(this, m_store->findRunsAsync(query), [this, generation](const QFuture<RunPage> &page) {
        // A canceled page (the store is closing) leaves the model fetching: nothing more comes.
        if (m_generation == generation && !page.isCanceled() && page.resultCount() > 0)
            applyPage(page.result());
    });
}

void HistoryModel::applyPage(const RunPage &page)
{
    m_total = page.total;
    // Runs inserted from notifications shift the pages: skip those already shown.
    QList<Run> fresh;
    fresh.reserve(page.runs.size());
    for (const Run &run : page.runs) {
        if (rowOf(run.id) < 0)
            fresh.append(run);
    }
    // Still fetching while the rows go in: a view asking for more then would ask for the
    // same offset again.
    appendRuns(fresh);
    if (page.runs.isEmpty())
        m_total = m_runs.size(); // the history shrank under us: nothing more to read
    m_fetching = false;
    Q_EMIT pageLoaded();
}

void HistoryModel::onRunsChanged(const QStringList &ids)
{
    for (const QString &id : ids)
        m_pendingIds.insert(id);
    lookUpPending();
}

void HistoryModel::lookUpPending()
{
    if (m_lookingUp || m_pendingIds.isEmpty() || !m_store)
        return;
    // One batch in flight at a time; ids announced meanwhile wait for the next.
    m_lookingUp = true;
    // Each answer comes back through a watcher of its own (not QtFuture::whenAll, whose
    // bookkeeping runs on the reader threads where ThreadSanitizer cannot follow it); the
    // batch is applied when the last one is in, in the order the ids were asked for.
    struct Batch
    {
        std::vector<std::optional<Run>> answers;
        qsizetype waiting = 0;
    };
    const auto batch = std::make_shared<Batch>();
    batch->answers.resize(size_t(m_pendingIds.size()));
    batch->waiting = m_pendingIds.size();
    const QSet<QString> ids = std::exchange(m_pendingIds, {});
    const quint64 generation = m_generation;
    size_t index = 0;
    for (const QString &id : ids) {
        whenDone(this, m_store->findRunAsync(id),
                 [this, generation, batch, index](const QFuture<std::optional<Run>> &future) {
                     if (!future.isCanceled() && future.resultCount() > 0)
                         batch->answers[index] = future.result();
                     if (--batch->waiting > 0)
                         return;
                     m_lookingUp = false;
                     if (m_generation == generation) {
                         QList<Run> runs;
                         for (const std::optional<Run> &run : batch->answers) {
                             if (run)
                                 runs.append(*run);
                         }
                         applyChanged(runs);
                     }
                     lookUpPending();
                 });
        ++index;
    }
}

int HistoryModel::insertionRow(const Run &run) const
{
    // Newest first by queue time; equal times keep the newcomer above.
    int row = 0;
    while (row < m_runs.size() && m_runs.at(row).queuedAt > run.queuedAt)
        ++row;
    return row;
}

void HistoryModel::applyChanged(const QList<Run> &runs)
{
    // A page must not land between a change's begin and end (views ask for more inside them).
    m_applying = true;
    auto done = qScopeGuard([this] { m_applying = false; });
    for (const Run &run : runs) {
        const int row = rowOf(run.id);
        const bool matches = matchesFilter(run);
        if (row >= 0 && matches) {
            replaceRun(row, run);
        } else if (row >= 0) {
            removeRun(row);
            if (m_total > 0)
                --m_total;
        } else if (matches) {
            const int at = insertionRow(run);
            // Below the last row read while more pages wait: a later page brings it.
            if (at == m_runs.size() && morePages())
                continue;
            insertRun(at, run);
            if (m_total >= 0)
                ++m_total;
        }
    }
    Q_EMIT runsRefreshed();
}

} // namespace taskdeck::ui
