// SPDX-License-Identifier: MIT
#include "console.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sys/ioctl.h>
#include <unistd.h>

#include <QByteArray>
#include <QString>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

constexpr auto AnsiRed = "\x1b[31m"_L1;
constexpr auto AnsiDim = "\x1b[2m"_L1;
constexpr auto AnsiReset = "\x1b[0m"_L1;
// Carriage return, then erase to the end of the line.
constexpr auto WipeLine = "\r\x1b[K"_L1;

bool writeRaw(FILE *file, const QString &text)
{
    const QByteArray bytes = text.toUtf8();
    const size_t size = static_cast<size_t>(bytes.size());
    return std::fwrite(bytes.constData(), 1, size, file) == size && !std::ferror(file);
}

int terminalColumns()
{
    winsize size = {};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 80;
}

} // namespace

Console::Console()
    : m_outTerminal(::isatty(STDOUT_FILENO) == 1)
    , m_errTerminal(::isatty(STDERR_FILENO) == 1)
{
}

bool Console::isTerminal(Channel channel) const
{
    return channel == Channel::Out ? m_outTerminal : m_errTerminal;
}

void Console::write(Channel channel, const QString &text)
{
    wipeStatus();
    if (channel == Channel::Err) {
        writeRaw(stderr, text);
        return;
    }
    if (outputFailed())
        return;
    errno = 0;
    if (!writeRaw(stdout, text))
        noteOutputFailure();
}

QString Console::outputError() const
{
    if (!outputFailed())
        return QString();
    return QString::fromLocal8Bit(std::strerror(m_outErrno));
}

void Console::flushOut()
{
    if (outputFailed())
        return;
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
        noteOutputFailure();
}

void Console::noteOutputFailure()
{
    // stdio keeps errno from the failed write(2); a short write without one is still a failure.
    m_outErrno = errno != 0 ? errno : EIO;
}

void Console::logLine(Channel channel, const LogLine &line)
{
    QString text;
    switch (line.stream) {
    case LogStream::Out:
        text = line.text;
        break;
    case LogStream::Err:
        text = u"! "_s + line.text;
        if (isTerminal(channel))
            text = AnsiRed + text + AnsiReset;
        break;
    case LogStream::System:
        text = u"# "_s + line.text;
        if (isTerminal(channel))
            text = AnsiDim + text + AnsiReset;
        break;
    }
    writeLine(channel, text);
}

void Console::progress(const Progress &progress)
{
    const int percent = progress.percent();
    if (m_errTerminal) {
        QString text = percent >= 0 ? u"[%1%] "_s.arg(percent, 3) : QString();
        text += progress.message;
        setStatus(text.trimmed());
        return;
    }
    if (percent == m_lastPercent && progress.message == m_lastMessage)
        return;
    m_lastPercent = percent;
    m_lastMessage = progress.message;
    if (percent < 0 && progress.message.isEmpty())
        return;
    QString text = u"progress:"_s;
    if (percent >= 0)
        text += u' ' + QString::number(percent) + u'%';
    if (!progress.message.isEmpty())
        text += u' ' + progress.message;
    err(text);
}

void Console::setStatus(const QString &text)
{
    if (!m_errTerminal || (text == m_status && m_statusShown))
        return;
    if (text.isEmpty()) {
        clearStatus();
        return;
    }
    m_status = text;
    m_statusShown = false; // drawn over in place below
    drawStatus();
    std::fflush(stderr);
}

void Console::clearStatus()
{
    wipeStatus();
    m_status.clear();
    std::fflush(stderr);
}

void Console::flush()
{
    flushOut();
    drawStatus();
    std::fflush(stderr);
}

void Console::wipeStatus()
{
    if (!m_statusShown)
        return;
    // stdout may share the terminal: what is buffered there must not land after the wipe.
    flushOut();
    writeRaw(stderr, WipeLine);
    std::fflush(stderr);
    m_statusShown = false;
}

void Console::drawStatus()
{
    if (!m_errTerminal || m_status.isEmpty() || m_statusShown)
        return;
    // A line longer than the terminal wraps, and \r can then only wipe its last row.
    const int width = terminalColumns() - 1;
    std::fflush(stdout);
    writeRaw(stderr, WipeLine + m_status.left(width));
    m_statusShown = true;
}

} // namespace taskdeck
