// SPDX-License-Identifier: MIT
#include "privatefiles.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

constexpr mode_t kPrivateDirectory = 0700;
constexpr mode_t kPrivateFile = 0600;
constexpr mode_t kGroupAndOther = 0077;

} // namespace

QString PrivateFiles::modeText(unsigned mode)
{
    return u"%1"_s.arg(mode & 07777u, 4, 8, QChar(u'0'));
}

bool PrivateFiles::makeDirectory(const QString &dir, QString *error)
{
    const QString absolute = QDir(dir).absolutePath();
    if (QFileInfo(absolute).isDir())
        return true;
    // Parents (~/.local/share, say) are not Taskdeck's: they get the usual mode.
    const QString parent = QFileInfo(absolute).absolutePath();
    if (!QDir().mkpath(parent)) {
        *error = u"cannot create directory %1"_s.arg(parent);
        return false;
    }
    // mkdir's mode is cut by the umask, which can only take bits away: 0700 or less, never
    // more, and chmod then sets exactly 0700 before anything goes in.
    const QByteArray name = QFile::encodeName(absolute);
    if (::mkdir(name.constData(), kPrivateDirectory) != 0 && errno != EEXIST) {
        *error = u"cannot create directory %1: %2"_s.arg(absolute, qt_error_string(errno));
        return false;
    }
    if (!QFileInfo(absolute).isDir()) {
        *error = u"cannot create directory %1: a file of that name is in the way"_s.arg(absolute);
        return false;
    }
    ::chmod(name.constData(), kPrivateDirectory);
    return true;
}

bool PrivateFiles::createFile(const QString &path)
{
    const int fd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                          kPrivateFile);
    if (fd < 0)
        return false;
    ::fchmod(fd, kPrivateFile);
    ::close(fd);
    return true;
}

QString PrivateFiles::tighten(const QString &path)
{
    const QByteArray name = QFile::encodeName(path);
    struct stat info = {};
    if (::lstat(name.constData(), &info) != 0 || info.st_uid != ::geteuid())
        return {};
    if (!S_ISDIR(info.st_mode) && !S_ISREG(info.st_mode))
        return {};
    if (S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX))
        return {};
    if ((info.st_mode & kGroupAndOther) == 0)
        return {};
    const mode_t tightened = info.st_mode & 07777 & ~kGroupAndOther;
    if (::chmod(name.constData(), tightened) != 0)
        return {};
    return u"%1 %2 -> %3"_s.arg(path, modeText(info.st_mode), modeText(tightened));
}

OutputFile::OutputFile(const QString &path) : m_path(path) { }

OutputFile::~OutputFile() = default;

bool OutputFile::open(QString *error)
{
    struct stat st {};
    // stat, not lstat: a link to /dev/null is written like /dev/null itself.
    const bool exists = ::stat(QFile::encodeName(m_path).constData(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        if (error)
            *error = u"it is a directory; give the path of a file"_s;
        return false;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        // A FIFO, a device or a socket: renaming a new file over it would destroy it.
        m_direct = std::make_unique<QFile>(m_path);
        if (!m_direct->open(QIODevice::WriteOnly | QIODevice::Unbuffered)) {
            if (error)
                *error = m_direct->errorString();
            m_direct.reset();
            return false;
        }
        return true;
    }
    m_save = std::make_unique<QSaveFile>(m_path);
    if (!m_save->open(QIODevice::WriteOnly)) {
        if (error)
            *error = m_save->errorString();
        m_save.reset();
        return false;
    }
    return true;
}

QIODevice *OutputFile::device() const
{
    if (m_direct)
        return m_direct.get();
    return m_save.get();
}

bool OutputFile::commit(QString *error)
{
    bool ok = false;
    QString why;
    if (m_direct) {
        ok = m_direct->flush() && m_direct->error() == QFileDevice::NoError;
        why = m_direct->errorString();
        m_direct->close();
        ok = ok && m_direct->error() == QFileDevice::NoError;
    } else if (m_save) {
        ok = m_save->commit();
        why = m_save->errorString();
    }
    if (!ok && error)
        *error = why;
    return ok;
}

} // namespace taskdeck
