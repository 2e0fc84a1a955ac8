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
    const bool first = !m_watched.exchange(true);
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
    // An invalid method means "everything was disconnected".
    if (signal.isValid() && signal != QMetaMethod::fromSignal(&RunStoreNotifier::runsChanged))
        return;
    m_watched = isSignalConnected(QMetaMethod::fromSignal(&RunStoreNotifier::runsChanged));
}

} // namespace taskdeck
