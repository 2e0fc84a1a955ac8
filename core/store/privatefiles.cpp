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

} // namespace taskdeck
