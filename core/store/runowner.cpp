// SPDX-License-Identifier: MIT
#include "runowner.h"

#include <QCoreApplication>
#include <QFile>

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
    parsed.m_start = owner.mid(hash + 1);
    return parsed;
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

QString RunOwner::current()
{
    return u"%1@%2#%3"_s.arg(QCoreApplication::applicationPid())
        .arg(localHost(), processStartTime(QCoreApplication::applicationPid()).value_or(u"0"_s));
}

bool RunOwner::isOnThisHost() const
{
    return m_host == localHost();
}

bool RunOwner::isAlive() const
{
    if (!isOnThisHost())
        return false;
    const std::optional<QString> start = processStartTime(m_pid);
    return start && *start == m_start;
}

} // namespace taskdeck
