// SPDX-License-Identifier: MIT
#include "runowner.h"

#include "run.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QSet>

#include <csignal>

#include <sys/types.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace taskdeck {

std::optional<RunOwner> RunOwner::parse(const QString &owner)
{
    const qsizetype at = owner.indexOf(u'@');
    const qsizetype hash = owner.lastIndexOf(u'#');
    if (at <= 0 || hash <= at + 1 || hash == owner.size() - 1)
        return std::nullopt;
    bool ok = false;
    const qint64 pid = QStringView(owner).left(at).toLongLong(&ok);
    if (!ok || pid <= 0)
        return std::nullopt;
    RunOwner parsed;
    parsed.m_pid = pid;
    parsed.m_host = owner.mid(at + 1, hash - at - 1);
    const QStringList parts = owner.mid(hash + 1).split(u';');
    parsed.m_start = parts.constFirst();
    if (parsed.m_start.isEmpty())
        return std::nullopt;
    for (qsizetype i = 1; i < parts.size(); ++i) {
        const QString &part = parts.at(i);
        if (part.startsWith(u"boot="_s))
            parsed.m_boot = part.mid(5);
        else if (part.startsWith(u"pidns="_s))
            parsed.m_pidNamespace = part.mid(6);
    }
    return parsed;
}

QString RunOwner::localBootId()
{
    static const QString boot = [] {
        QFile file(u"/proc/sys/kernel/random/boot_id"_s);
        return file.open(QIODevice::ReadOnly) ? QString::fromLatin1(file.readAll().trimmed()) : QString();
    }();
    return boot;
}

QString RunOwner::localPidNamespace()
{
    // Not cached: a process may move to another namespace (its children do, with unshare).
    char link[64] = {};
    const ssize_t n = ::readlink("/proc/self/ns/pid", link, sizeof link - 1);
    if (n <= 0)
        return QString();
    const QByteArray text(link, n);
    const qsizetype open = text.indexOf('[');
    const qsizetype close = text.indexOf(']');
    return open > 0 && close > open + 1 ? QString::fromLatin1(text.mid(open + 1, close - open - 1)) : QString();
}

bool RunOwner::isFromEarlierBoot() const
{
    return isOnThisHost() && !m_boot.isEmpty() && !localBootId().isEmpty() && m_boot != localBootId();
}

bool RunOwner::isInOtherPidNamespace() const
{
    return isOnThisHost() && !isFromEarlierBoot() && !m_pidNamespace.isEmpty()
           && !localPidNamespace().isEmpty() && m_pidNamespace != localPidNamespace();
}

QString RunOwner::localHost()
{
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return QString::fromLocal8Bit(host);
}

std::optional<QString> RunOwner::processStartTime(qint64 pid)
{
    QFile stat(u"/proc/%1/stat"_s.arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return std::nullopt;
    const QByteArray text = stat.readAll();
    // The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
    const qsizetype close = text.lastIndexOf(')');
    if (close < 0)
        return std::nullopt;
    const QList<QByteArray> fields = text.mid(close + 2).split(' ');
    // fields[0] is field 3 (the state), so field 22 is fields[19].
    if (fields.size() <= 19 || fields.at(0) == "Z" || fields.at(0) == "X")
        return std::nullopt;
    return QString::fromLatin1(fields.at(19));
}

QString RunOwner::describe(const QString &owner)
{
    if (const std::optional<RunOwner> parsed = parse(owner))
        return u"process %1 on %2"_s.arg(parsed->pid()).arg(parsed->host());
    return owner.isEmpty() ? u"an unknown process"_s : owner;
}

QString RunOwner::current()
{
    return currentOwner();
}

bool RunOwner::isOnThisHost() const
{
    return m_host == localHost();
}

bool RunOwner::isAlive() const
{
    if (!isOnThisHost() || isFromEarlierBoot())
        return false;
    if (isInOtherPidNamespace())
        return true;
    const std::optional<QString> start = processStartTime(m_pid);
    return start && *start == m_start;
}

namespace {

// True when the environment process \a pid started with holds \a entry ("NAME=value").
bool environmentHolds(qint64 pid, const QByteArray &entry)
{
    QFile envFile(u"/proc/%1/environ"_s.arg(pid));
    if (!envFile.open(QIODevice::ReadOnly))
        return false; // gone, a zombie, or another user's
    const QByteArray all = envFile.readAll();
    qsizetype from = 0;
    while (from < all.size()) {
        qsizetype end = all.indexOf('\0', from);
        if (end < 0)
            end = all.size();
        if (QByteArrayView(all).sliced(from, end - from) == entry)
            return true;
        from = end + 1;
    }
    return false;
}

std::optional<qint64> processGroupOf(qint64 pid)
{
    QFile stat(u"/proc/%1/stat"_s.arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return std::nullopt;
    const QByteArray text = stat.readAll();
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so read after the last ')'.
    const qsizetype close = text.lastIndexOf(')');
    if (close < 0)
        return std::nullopt;
    const QList<QByteArray> fields = text.mid(close + 2).split(' ');
    if (fields.size() < 3 || fields.at(0) == "Z")
        return std::nullopt;
    bool ok = false;
    const qint64 group = fields.at(2).toLongLong(&ok);
    return ok ? std::optional<qint64>(group) : std::nullopt;
}

} // namespace

int RunOwner::endLeftovers(const QString &owner)
{
    if (owner.isEmpty())
        return 0;
    const QByteArray entry = QByteArray(kOwnerVariable) + '=' + owner.toUtf8();
    const qint64 self = QCoreApplication::applicationPid();
    QList<qint64> found;
    const QStringList entries = QDir(u"/proc"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &name : entries) {
        bool isPid = false;
        const qint64 pid = name.toLongLong(&isPid);
        if (isPid && pid != self && environmentHolds(pid, entry))
            found << pid;
    }
    QSet<qint64> groups;
    for (const qint64 pid : std::as_const(found)) {
        const std::optional<qint64> group = processGroupOf(pid);
        // A group is the command's own when its leader was started for the dead owner too.
        if (group && *group > 1 && *group != ::getpgrp() && found.contains(*group))
            groups.insert(*group);
    }
    for (const qint64 group : std::as_const(groups))
        ::kill(-pid_t(group), SIGKILL);
    for (const qint64 pid : std::as_const(found))
        ::kill(pid_t(pid), SIGKILL);
    return int(found.size());
}

} // namespace taskdeck
