// SPDX-License-Identifier: MIT
#pragma once

#include "runsmodel.h"
#include "runstore.h"

#include <QDateTime>
#include <QSet>
#include <QStringList>

#include <optional>

namespace taskdeck {
class RunStoreNotifier;
}

namespace taskdeck::ui {

/*!
 * Passes a RunStoreNotifier's runsChanged() on to any number of models; one per notifier,
 * its child, connected to it for the notifier's whole life.
 *
 * Models connect here rather than to the notifier because RunStoreNotifier::disconnectNotify()
 * calls isSignalConnected(), which Qt does not allow there: a receiver destroyed while
 * connected (or disconnecting explicitly) can then wait forever on a connection lock Qt
 * already holds, when the two objects' locks happen to be the same one of Qt's pool.
 * Nothing ever disconnects from the notifier itself this way.
 */
class NotifierRelay final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(NotifierRelay)

public:
    /*! The relay of \a notifier, made on first use (in the notifier's thread). */
    static NotifierRelay *of(RunStoreNotifier *notifier);

Q_SIGNALS:
    void runsChanged(const QStringList &runIds);

private:
    using QObject::QObject;
};

/*!
 * Every run recorded in a history (IRunStore), newest first, read a page at a time.
 *
 * Nothing here waits on the history: pages come from IRunStore::findRunsAsync() as views ask
 * for them (canFetchMore() / fetchMore(); one request at a time), and changed runs announced
 * by the store's notifier (this process's or another's) are looked up with findRunAsync() and
 * updated in place, or inserted at their place when new and matching the filter. Answers that
 * arrive after the filter changed (or after the model is gone) are dropped.
 */
class HistoryModel final : public RunTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(HistoryModel)

public:
    static constexpr int kPageSize = 200;

    /*! Shows the runs of \a store (not owned; must outlive the model) and asks for the
     *  first page at once. \a registry, when given, names tasks by their titles. */
    explicit HistoryModel(IRunStore *store, TaskRegistry *registry = nullptr, QObject *parent = nullptr);
    ~HistoryModel() override;

    bool canFetchMore(const QModelIndex &parent) const override;
    void fetchMore(const QModelIndex &parent) override;

    /*!
     * Shows only runs of \a task (exact key; empty: any), with \a status (nullopt: any),
     * queued at or after \a since (invalid: any time), from the first page again.
     */
    void setFilter(const QString &task, std::optional<RunStatus> status, const QDateTime &since);
    QString taskFilter() const { return m_task; }
    std::optional<RunStatus> statusFilter() const { return m_status; }
    QDateTime sinceFilter() const { return m_since; }

    /*! True while a page is being read. */
    bool isFetching() const { return m_fetching; }
    /*! Runs matching the filter in the history, as of the last page read; -1 before one. */
    qint64 totalCount() const { return m_total; }
    /*! Pages requested since the filter was last set (for tests and diagnostics). */
    int pagesRequested() const { return m_pagesRequested; }
    /*! Starts over: the filter stays, the pages are read again. */
    void reload();

Q_SIGNALS:
    /*! A page arrived (after the rows were inserted). */
    void pageLoaded();
    /*! Changed runs were applied after a notification. */
    void runsRefreshed();

private:
    bool matchesFilter(const Run &run) const;
    bool morePages() const;
    void requestPage();
    void applyPage(const RunPage &page);
    void onRunsChanged(const QStringList &ids);
    void lookUpPending();
    void applyChanged(const QList<Run> &runs);
    int insertionRow(const Run &run) const;

    IRunStore *m_store;
    QString m_task;
    std::optional<RunStatus> m_status;
    QDateTime m_since;
    quint64 m_generation = 0;
    bool m_fetching = false;
    qint64 m_total = -1;
    int m_pagesRequested = 0;
    bool m_lookingUp = false;
    bool m_applying = false;
    QSet<QString> m_pendingIds;
};

} // namespace taskdeck::ui
