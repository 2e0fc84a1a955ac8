// SPDX-License-Identifier: MIT
#include "eachinput.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <QFile>
#include <QSocketNotifier>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

constexpr qsizetype kChunkBytes = 64 * 1024;

QString systemError(int error)
{
    return QString::fromLocal8Bit(std::strerror(error));
}

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

} // namespace

EachInput::EachInput(QObject *parent)
    : QObject(parent)
{
}

EachInput::~EachInput()
{
    delete m_notifier;
    if (m_ownsFd && m_fd >= 0)
        ::close(m_fd);
}

bool EachInput::open(const QString &path)
{
    m_path = path;
    if (path == u"-") {
        m_fd = STDIN_FILENO;
    } else {
        m_fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_CLOEXEC);
        if (m_fd < 0) {
            m_error = systemError(errno);
            return false;
        }
        m_ownsFd = true;
    }
    struct stat info = {};
    if (::fstat(m_fd, &info) != 0) {
        m_error = systemError(errno);
        return false;
    }
    if (S_ISDIR(info.st_mode)) {
        m_error = u"is a directory"_s;
        return false;
    }
    m_stream = !S_ISREG(info.st_mode);
    if (m_stream) {
        // Read only when the notifier says data is there. The descriptor stays blocking: it
        // is shared with whoever started this (a terminal's shell), who must not find it
        // changed after this process ends.
        m_notifier = new QSocketNotifier(m_fd, QSocketNotifier::Read);
        m_notifier->setEnabled(false);
        connect(m_notifier, &QSocketNotifier::activated, this, &EachInput::readStream);
    }
    return true;
}

bool EachInput::atEnd() const
{
    return m_ended;
}

void EachInput::setWanted(bool wanted)
{
    if (m_notifier)
        m_notifier->setEnabled(wanted && !m_eof && !m_failed);
}

bool EachInput::fill()
{
    if (m_eof || m_failed)
        return false;
    // What was already handed out goes before the buffer grows again.
    if (m_pos > 0) {
        m_buffer.remove(0, m_pos);
        m_pos = 0;
    }
    const qsizetype before = m_buffer.size();
    m_buffer.resize(before + kChunkBytes);
    ssize_t n = 0;
    do {
        n = ::read(m_fd, m_buffer.data() + before, kChunkBytes);
    } while (n < 0 && errno == EINTR);
    const int error = errno;
    m_buffer.resize(before + std::max<ssize_t>(n, 0));
    if (n > 0)
        return true;
    if (n == 0) {
        m_eof = true;
    } else if (error != EAGAIN && error != EWOULDBLOCK) {
        m_failed = true;
        m_error = systemError(error);
    }
    return false;
}

void EachInput::readStream()
{
    m_notifier->setEnabled(false);
    // A wake-up without data would block the event loop in read(): ask once more.
    pollfd ready = {m_fd, POLLIN, 0};
    if (::poll(&ready, 1, 0) > 0)
        fill();
    Q_EMIT readyRead();
}

EachInput::Next EachInput::next(QByteArray *line)
{
    if (m_ended)
        return m_failed ? Next::Error : Next::End;
    qsizetype searchFrom = m_pos;
    for (;;) {
        const qsizetype newline = m_buffer.indexOf('\n', searchFrom);
        if (newline >= 0) {
            *line = m_buffer.mid(m_pos, newline - m_pos);
            m_pos = newline + 1;
            ++m_lineNumber;
            return Next::Line;
        }
        if (m_buffer.size() - m_pos > MaxLineBytes) {
            m_failed = true;
            m_ended = true;
            m_error = u"line %1 is longer than %2 MiB; the input after it was not read"_s
                          .arg(m_lineNumber + 1).arg(MaxLineBytes / (1024 * 1024));
            return Next::Error;
        }
        const qsizetype pending = m_buffer.size() - m_pos;
        if (!m_stream) {
            if (fill()) {
                searchFrom = m_pos + pending; // fill() moved the unread part to the front
                continue;
            }
        } else if (!m_eof && !m_failed) {
            return Next::Wait;
        }
        if (m_failed) {
            m_ended = true;
            return Next::Error;
        }
        // The end: a last line without a line break is a line all the same.
        if (pending > 0) {
            *line = m_buffer.mid(m_pos);
            m_pos = m_buffer.size();
            ++m_lineNumber;
            return Next::Line;
        }
        m_ended = true;
        return Next::End;
    }
}

qint64 EachInput::countNonEmptyLines()
{
    // Standard input cannot be read twice, even from a file.
    if (m_stream || m_path == u"-")
        return -1;
    QFile file(m_path);
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    qint64 count = 0;
    bool content = false;
    QByteArray chunk;
    while (!(chunk = file.read(kChunkBytes)).isEmpty()) {
        for (const char c : std::as_const(chunk)) {
            if (c == '\n') {
                count += content ? 1 : 0;
                content = false;
            } else if (!isSpace(c)) {
                content = true;
            }
        }
    }
    return count + (content ? 1 : 0);
}

} // namespace taskdeck
