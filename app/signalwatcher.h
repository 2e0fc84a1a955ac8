// SPDX-License-Identifier: MIT
#pragma once

#include <QList>
#include <QObject>

#include <csignal>

QT_BEGIN_NAMESPACE
class QSocketNotifier;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * Turns POSIX signals into a Qt signal on the thread that owns the watcher.
 *
 * The handler only writes the signal number into a socket pair (the one thing that is both
 * async-signal-safe and wakes the event loop); a QSocketNotifier reads it and emits
 * signalReceived(). A signal ignored on entry stays ignored (shells start background jobs
 * that way). Only one watcher may exist at a time; the previous dispositions are restored
 * on destruction.
 */
class SignalWatcher final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(SignalWatcher)

public:
    explicit SignalWatcher(const QList<int> &signalNumbers, QObject *parent = nullptr);
    ~SignalWatcher() override;

Q_SIGNALS:
    void signalReceived(int signalNumber);

private:
    void readPending();

    int m_fds[2] = {-1, -1};
    QSocketNotifier *m_notifier = nullptr;
    QList<QPair<int, struct sigaction>> m_previous;
};

} // namespace taskdeck
