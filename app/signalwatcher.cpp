// SPDX-License-Identifier: MIT
#include "signalwatcher.h"

#include <cerrno>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QSocketNotifier>

namespace taskdeck {

namespace {

// Written once before the handlers are installed, read only by them.
volatile sig_atomic_t s_writeFd = -1;

extern "C" void forwardSignal(int signalNumber)
{
    const int savedErrno = errno;
    const char byte = static_cast<char>(signalNumber);
    // Nothing useful can be done about a failed write here; the fd is non-blocking, so a
    // full buffer (a storm of signals) drops bytes instead of hanging the handler.
    [[maybe_unused]] const ssize_t written = ::write(s_writeFd, &byte, 1);
    errno = savedErrno;
}

} // namespace

SignalWatcher::SignalWatcher(const QList<int> &signalNumbers, QObject *parent)
    : QObject(parent)
{
    Q_ASSERT(s_writeFd == -1);
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, m_fds) != 0) {
        qWarning("taskdeck: cannot watch signals: socketpair failed (errno %d)", errno);
        return;
    }
    s_writeFd = m_fds[0];

    m_notifier = new QSocketNotifier(m_fds[1], QSocketNotifier::Read, this);
    connect(m_notifier, &QSocketNotifier::activated, this, &SignalWatcher::readPending);

    for (int sig : signalNumbers) {
        struct sigaction current = {};
        // A shell starts background jobs with SIGINT ignored so that Ctrl-C spares them;
        // catching it would undo that.
        if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN)
            continue;
        struct sigaction action = {};
        action.sa_handler = forwardSignal;
        sigemptyset(&action.sa_mask);
        // Without SA_RESTART, blocking calls elsewhere (worker threads too) would fail with EINTR.
        action.sa_flags = SA_RESTART;
        struct sigaction previous = {};
        if (::sigaction(sig, &action, &previous) == 0)
            m_previous.append({sig, previous});
    }
}

SignalWatcher::~SignalWatcher()
{
    for (const auto &[sig, previous] : std::as_const(m_previous))
        ::sigaction(sig, &previous, nullptr);
    s_writeFd = -1;
    delete m_notifier;
    for (int fd : m_fds) {
        if (fd >= 0)
            ::close(fd);
    }
}

void SignalWatcher::readPending()
{
    char bytes[16];
    for (;;) {
        const ssize_t n = ::read(m_fds[1], bytes, sizeof bytes);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; ++i)
            Q_EMIT signalReceived(static_cast<unsigned char>(bytes[i]));
    }
}

} // namespace taskdeck
