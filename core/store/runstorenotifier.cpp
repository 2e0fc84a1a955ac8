// SPDX-License-Identifier: MIT
#include "runstorenotifier.h"

#include <QMetaMethod>
#include <QTimer>

namespace taskdeck {

RunStoreNotifier::RunStoreNotifier(QObject *parent)
    : QObject(parent)
{
}

RunStoreNotifier::~RunStoreNotifier() = default;

void RunStoreNotifier::setWatchedCallback(std::function<void()> callback)
{
    QMutexLocker lock(&m_mutex);
    m_onWatched = std::move(callback);
}

void RunStoreNotifier::post(const QStringList &runIds)
{
    if (runIds.isEmpty() || !isWatched())
        return;
    bool schedule = false;
    {
        QMutexLocker lock(&m_mutex);
        for (const QString &id : runIds)
            m_pending.insert(id);
        schedule = !m_scheduled;
        m_scheduled = true;
    }
    if (schedule) {
        // Posted from the store's threads; the timer must start in the notifier's own.
        QMetaObject::invokeMethod(this, &RunStoreNotifier::scheduleDelivery, Qt::QueuedConnection);
    }
}

void RunStoreNotifier::scheduleDelivery()
{
    QTimer::singleShot(m_interval, this, &RunStoreNotifier::deliver);
}

void RunStoreNotifier::deliver()
{
    QStringList ids;
    {
        QMutexLocker lock(&m_mutex);
        ids = QStringList(m_pending.cbegin(), m_pending.cend());
        m_pending.clear();
        m_scheduled = false;
    }
    if (!ids.isEmpty())
        Q_EMIT runsChanged(ids);
}

void RunStoreNotifier::connectNotify(const QMetaMethod &signal)
{
    if (signal != QMetaMethod::fromSignal(&RunStoreNotifier::runsChanged))
        return;
    const bool first = m_receivers.fetch_add(1) == 0;
    std::function<void()> callback;
    {
        QMutexLocker lock(&m_mutex);
        callback = m_onWatched;
    }
    if (first && callback)
        callback();
}

void RunStoreNotifier::disconnectNotify(const QMetaMethod &signal)
{
    // Not isSignalConnected(): Qt forbids it here, and asking it can deadlock while a
    // receiver is being destroyed on another thread.
    if (!signal.isValid()) { // "everything was disconnected"
        m_receivers = 0;
        return;
    }
    if (signal != QMetaMethod::fromSignal(&RunStoreNotifier::runsChanged))
        return;
    // Never below zero: a disconnect-everything may already have counted this one out.
    int count = m_receivers.load();
    while (count > 0 && !m_receivers.compare_exchange_weak(count, count - 1)) {
    }
}

} // namespace taskdeck
