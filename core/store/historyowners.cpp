// SPDX-License-Identifier: MIT
#include "historyowners.h"

#include "runowner.h"

#include <QFile>

#include <cerrno>
#include <functional>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// The file is a few lines; anything much bigger is not ours to parse.
constexpr qint64 kMaxFileBytes = 1 << 20;

/*! Runs \a change on the file's lines under an exclusive lock and writes the result back. */
bool rewrite(const QString &path, const std::function<void(QStringList &)> &change, QString *error)
{
    const QByteArray name = QFile::encodeName(path);
    const int fd = ::open(name.constData(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error = u"cannot open %1: %2"_s.arg(path, qt_error_string(errno));
        return false;
    }
    struct stat info = {};
    // A file this call just created: its mode regardless of the umask.
    if (::fstat(fd, &info) == 0 && info.st_size == 0 && (info.st_mode & 07777) != 0600)
        ::fchmod(fd, 0600);
    if (::flock(fd, LOCK_EX) != 0) {
        *error = u"cannot lock %1: %2"_s.arg(path, qt_error_string(errno));
        ::close(fd);
        return false;
    }
    QFile file;
    bool ok = file.open(fd, QIODevice::ReadWrite, QFileDevice::DontCloseHandle);
    QStringList lines;
    if (ok) {
        const QByteArray text = file.read(kMaxFileBytes);
        for (const QByteArray &line : text.split('\n')) {
            if (!line.trimmed().isEmpty())
                lines << QString::fromUtf8(line.trimmed());
        }
        change(lines);
        const QByteArray out = lines.isEmpty() ? QByteArray() : (lines.join(u'\n') + u'\n').toUtf8();
        ok = file.seek(0) && file.write(out) == out.size() && file.flush() && file.resize(out.size());
    }
    if (!ok)
        *error = u"cannot write %1: %2"_s.arg(path, file.errorString());
    file.close();
    ::close(fd); // releases the lock
    return ok;
}

bool isGone(const QString &entry)
{
    const QString owner = entry.section(u' ', 0, 0);
    const std::optional<RunOwner> parsed = RunOwner::parse(owner);
    // A line that is no owner at all says nothing good about how the history was left.
    if (!parsed)
        return true;
    return parsed->isOnThisHost() && !parsed->isAlive();
}

} // namespace

QString HistoryOwners::fileName()
{
    return u"history.owners"_s;
}

QString HistoryOwners::entryFor(quint64 serial)
{
    return u"%1 %2"_s.arg(RunOwner::current()).arg(serial);
}

bool HistoryOwners::add(const QString &path, const QString &entry, QStringList *gone, QString *error)
{
    gone->clear();
    return rewrite(path, [&](QStringList &lines) {
        for (const QString &line : std::as_const(lines)) {
            if (isGone(line))
                gone->append(line);
        }
        lines.append(entry);
    }, error);
}

bool HistoryOwners::remove(const QString &path, const QStringList &entries, QString *error)
{
    return rewrite(path, [&](QStringList &lines) {
        for (const QString &entry : entries)
            lines.removeOne(entry);
    }, error);
}

} // namespace taskdeck
