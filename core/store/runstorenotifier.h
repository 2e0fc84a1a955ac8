// SPDX-License-Identifier: MIT
#pragma once

#include <QMutex>
#include <QObject>
#include <QSet>
#include <QString>
#include <QStringList>

#include <atomic>
#include <chrono>
#include <functional>

namespace taskdeck {

/*!
 * Announces which runs of a history changed: those this process stored and those another
 * process sharing the history stored. A history store owns one (IRunStore::notifier()); it
 * lives in the thread that opened the store and emits runsChanged() there, in batches at
 * most every interval() (ids changed again before a batch is delivered appear in it once).
 *
 * Stores look for other processes' changes only while something is connected to
 * runsChanged(), so an unwatched notifier costs nothing.
 *
 * \code
 * connect(store->notifier(), &RunStoreNotifier::runsChanged, historyModel,
 *         [historyModel, store](const QStringList &ids) {
 *             for (const QString &id : ids)
 *                 store->findRunAsync(id).then(historyModel, [historyModel](std::optional<Run> run) {
 *                     if (run)
 *                         historyModel->update(*run);
 *                 });
 *         });
 * \endcode
 */
class RunStoreNotifier final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunStoreNotifier)

public:
    /*! The shortest time between two runsChanged() signals. */
    static constexpr std::chrono::milliseconds kDefaultInterval{50};

    explicit RunStoreNotifier(QObject *parent = nullptr);
    ~RunStoreNotifier() override;

    std::chrono::milliseconds interval() const { return m_interval; }
    void setInterval(std::chrono::milliseconds interval) { m_interval = interval; }

    /*! True while something is connected to runsChanged(). Thread-safe. */
    bool isWatched() const { return m_receivers.load(std::memory_order_relaxed) > 0; }

    /*!
     * For the store: \a callback runs (in the thread that connects) when runsChanged() gets
     * its first receiver, so the store can start looking for other processes' changes.
     */
    void setWatchedCallback(std::function<void()> callback);

    /*!
     * For the store: \a runIds changed. Thread-safe; they are announced with the next batch,
     * in the notifier's thread. Ids are dropped while nothing watches.
     */
    void post(const QStringList &runIds);

Q_SIGNALS:
    /*! The runs with these ids were stored anew (each id once, in no particular order). */
    void runsChanged(const QStringList &runIds);

protected:
    void connectNotify(const QMetaMethod &signal) override;
    void disconnectNotify(const QMetaMethod &signal) override;

private:
    void scheduleDelivery();
    void deliver();

    std::chrono::milliseconds m_interval = kDefaultInterval;
    // Connections to runsChanged(), counted in connectNotify() and disconnectNotify(): Qt
    // calls those with its connection lists locked, so they must not ask it anything.
    std::atomic<int> m_receivers{0};
    QMutex m_mutex;
    QSet<QString> m_pending;             // guarded by m_mutex
    bool m_scheduled = false;            // guarded by m_mutex
    std::function<void()> m_onWatched;   // guarded by m_mutex
};

} // namespace taskdeck
