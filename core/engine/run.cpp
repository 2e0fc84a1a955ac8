// SPDX-License-Identifier: MIT
#include "run.h"

#include <QFile>
#include <QJsonArray>

#include <unistd.h>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {
struct StatusName { RunStatus status; QLatin1StringView name; };
constexpr StatusName kStatusNames[] = {
    {RunStatus::Queued, "queued"_L1},     {RunStatus::Running, "running"_L1},
    {RunStatus::Retrying, "retrying"_L1},
    {RunStatus::Succeeded, "succeeded"_L1}, {RunStatus::Failed, "failed"_L1},
    {RunStatus::Canceled, "canceled"_L1}, {RunStatus::TimedOut, "timedOut"_L1},
    {RunStatus::Interrupted, "interrupted"_L1},
};

QJsonValue timeJson(const QDateTime &t)
{
    return t.isValid() ? QJsonValue(t.toUTC().toString(Qt::ISODateWithMs)) : QJsonValue();
}
} // namespace

QString currentOwner()
{
    static const QString owner = [] {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        QString start = u"0"_s;
        QFile stat(u"/proc/self/stat"_s);
        if (stat.open(QIODevice::ReadOnly)) {
            const QByteArray text = stat.readAll();
            // The command name (field 2) may hold anything; it ends at the last ')'.
            const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
            // Field 22 of stat is the start time; fields here start at field 3.
            if (fields.size() > 19)
                start = QString::fromLatin1(fields.at(19));
        }
        QString result = u"%1@%2#%3"_s.arg(::getpid()).arg(QString::fromLocal8Bit(host), start);
        QFile bootFile(u"/proc/sys/kernel/random/boot_id"_s);
        if (bootFile.open(QIODevice::ReadOnly)) {
            const QString boot = QString::fromLatin1(bootFile.readAll().trimmed());
            if (!boot.isEmpty() && !boot.contains(u';'))
                result += u";boot="_s + boot;
        }
        // "pid:[4026531836]"
        char link[64] = {};
        const ssize_t n = ::readlink("/proc/self/ns/pid", link, sizeof link - 1);
        if (n > 0) {
            const QByteArray target(link, n);
            const qsizetype open = target.indexOf('[');
            const qsizetype close = target.indexOf(']');
            if (open > 0 && close > open + 1)
                result += u";pidns="_s + QString::fromLatin1(target.mid(open + 1, close - open - 1));
        }
        return result;
    }();
    return owner;
}

QString runStatusName(RunStatus status)
{
    for (const auto &entry : kStatusNames) {
        if (entry.status == status)
            return entry.name;
    }
    Q_UNREACHABLE();
    return QString();
}

std::optional<RunStatus> runStatusFromName(const QString &name)
{
    for (const auto &entry : kStatusNames) {
        if (name.compare(entry.name, Qt::CaseInsensitive) == 0)
            return entry.status;
    }
    return std::nullopt;
}

QStringList runStatusNames()
{
    QStringList names;
    for (const auto &entry : kStatusNames)
        names << entry.name;
    return names;
}

QString logStreamName(LogStream stream)
{
    switch (stream) {
    case LogStream::Out: return u"out"_s;
    case LogStream::Err: return u"err"_s;
    case LogStream::System: return u"system"_s;
    }
    Q_UNREACHABLE();
    return QString();
}

std::optional<LogStream> logStreamFromName(const QString &name)
{
    if (name == "out"_L1)
        return LogStream::Out;
    if (name == "err"_L1)
        return LogStream::Err;
    if (name == "system"_L1)
        return LogStream::System;
    return std::nullopt;
}

QJsonObject LogLine::toJson() const
{
    return {{u"n"_s, number},
            {u"time"_s, QDateTime::fromMSecsSinceEpoch(timeMs, Qt::UTC).toString(Qt::ISODateWithMs)},
            {u"stream"_s, logStreamName(stream)},
            {u"text"_s, text}};
}

int Progress::percent() const
{
    if (total <= 0)
        return -1;
    const qint64 clamped = std::clamp<qint64>(done, 0, total);
    return int(clamped * 100 / total);
}

QJsonObject Progress::toJson() const
{
    QJsonObject o{{u"done"_s, done}, {u"total"_s, total}, {u"percent"_s, percent()}};
    if (!message.isEmpty())
        o.insert(u"message"_s, message);
    return o;
}

QJsonObject RunError::toJson() const
{
    QJsonObject o{{u"message"_s, message}, {u"kind"_s, kind}};
    if (!detail.isEmpty())
        o.insert(u"detail"_s, detail);
    if (transient)
        o.insert(u"transient"_s, true);
    return o;
}

qint64 Run::durationMs() const
{
    if (!startedAt.isValid())
        return -1;
    const QDateTime end = finishedAt.isValid() ? finishedAt : QDateTime::currentDateTimeUtc();
    return startedAt.msecsTo(end);
}

QJsonObject Run::toJson() const
{
    QJsonObject o{
        {u"id"_s, id},
        {u"task"_s, task},
        {u"status"_s, runStatusName(status)},
        {u"attempt"_s, attempt},
        {u"maxAttempts"_s, maxAttempts},
        {u"args"_s, args},
        {u"queuedAt"_s, timeJson(queuedAt)},
        {u"startedAt"_s, timeJson(startedAt)},
        {u"finishedAt"_s, timeJson(finishedAt)},
        {u"durationMs"_s, startedAt.isValid() ? QJsonValue(durationMs()) : QJsonValue()},
        {u"progress"_s, progress.toJson()},
        {u"logLines"_s, logLines},
        {u"result"_s, result.isUndefined() ? QJsonValue() : result},
        {u"error"_s, error.isEmpty() ? QJsonValue() : QJsonValue(error.toJson())},
    };
    if (!owner.isEmpty())
        o.insert(u"owner"_s, owner);
    // Only when the history lost part of the log, so a complete run's JSON stays as it was.
    if (logMissingFrom > 0)
        o.insert(u"logMissingFrom"_s, logMissingFrom);
    if (nextAttemptAt.isValid())
        o.insert(u"nextAttemptAt"_s, timeJson(nextAttemptAt));
    return o;
}

} // namespace taskdeck
