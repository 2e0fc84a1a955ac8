// SPDX-License-Identifier: MIT
#include "engineconfig.h"

#include <QLoggingCategory>
#include <QRegularExpression>
#include <QThread>

#include <cmath>
#include <limits>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

const auto kMaxConcurrent = u"TASK_MAX_CONCURRENT"_s;
const auto kTimeout = u"TASK_TIMEOUT"_s;
const auto kWebSocket = u"TASK_WEBSOCKET_ENABLED"_s;
const auto kBufferSize = u"TASK_BUFFER_SIZE"_s;
const auto kLogLevel = u"TASK_LOG_LEVEL"_s;
const auto kRetention = u"TASK_RETENTION_DAYS"_s;
const auto kRateLimit = u"TASK_RATE_LIMIT"_s;
const auto kDataDir = u"TASK_DATA_DIR"_s;
const auto kTasksFile = u"TASK_FILE"_s;

const QStringList kLogLevels = {u"debug"_s, u"info"_s, u"warning"_s, u"error"_s, u"off"_s};

std::optional<qint64> parseInteger(const QString &text, qint64 min, qint64 max)
{
    bool ok = false;
    const qint64 v = text.trimmed().toLongLong(&ok);
    if (!ok || v < min || v > max)
        return std::nullopt;
    return v;
}

// What is documented and nothing else: "N/s" or "N/m" (N a positive number, digits with an
// optional fraction: "10/s", "600/m", "0.5/s") or "off" (unlimited). Starts per second.
std::optional<double> parseRate(const QString &text)
{
    const QString t = text.trimmed();
    if (t == "off"_L1)
        return 0.0;
    static const QRegularExpression re(u"^(\\d{1,9}(?:\\.\\d{1,9})?)/([sm])$"_s);
    const auto m = re.match(t);
    if (!m.hasMatch())
        return std::nullopt;
    double rate = m.captured(1).toDouble();
    if (m.captured(2) == "m"_L1)
        rate /= 60.0;
    if (!(rate > 0) || !std::isfinite(rate))
        return std::nullopt;
    return rate;
}

} // namespace

int EngineConfig::effectiveMaxConcurrent() const
{
    return maxConcurrent > 0 ? maxConcurrent : std::max(1, QThread::idealThreadCount());
}

const QList<Settings::Option> &Settings::options()
{
    static const QList<Option> list = {
        {kMaxConcurrent, u"--max-concurrent"_s, u"a whole number from 1 to 1024"_s, u"the number of CPUs"_s},
        {kTimeout, u"--timeout"_s, u"a duration such as 90, 90s, 5m, 1h or 1h30m"_s, u"5m"_s},
        {kWebSocket, u"--websocket"_s, u"true or false (also 1/0, yes/no, on/off)"_s, u"true"_s},
        {kBufferSize, u"--buffer-size"_s, u"a whole number of log lines from 1 to 1000000"_s, u"1000"_s},
        {kLogLevel, u"--log-level"_s, u"one of: debug, info, warning, error, off"_s, u"info"_s},
        {kRetention, u"--retention-days"_s, u"a whole number of days from 0 (keep forever) to 36500"_s, u"30"_s},
        {kRateLimit, u"--rate-limit"_s, u"starts per second or per minute as N/s or N/m (10/s, 600/m, 0.5/s), or off"_s, u"off"_s},
        {kDataDir, u"--data-dir"_s, u"a directory path"_s, u"the platform's application data directory"_s},
        {kTasksFile, u"--tasks"_s, u"a tasks file path"_s, u"taskdeck.yml in the working or config directory"_s},
    };
    return list;
}

std::optional<Settings> Settings::load(const QProcessEnvironment &env,
                                       const QMap<QString, QString> &flags, QString *error)
{
    Settings s;
    for (const Option &option : options()) {
        QString value;
        QString source;
        if (flags.contains(option.variable)) {
            value = flags.value(option.variable);
            source = option.flag;
        } else if (env.contains(option.variable)) {
            value = env.value(option.variable);
            source = option.variable;
        } else {
            continue;
        }
        auto reject = [&] {
            if (error) {
                *error = u"%1=\"%2\" is invalid: expected %3"_s.arg(source, value.left(200),
                                                                   option.accepted);
            }
            return std::nullopt;
        };
        const QString &var = option.variable;
        if (var == kMaxConcurrent) {
            const auto v = parseInteger(value, 1, 1024);
            if (!v)
                return reject();
            s.engine.maxConcurrent = int(*v);
        } else if (var == kTimeout) {
            const auto d = parseDuration(value);
            if (!d && !durationTooLong(value).isEmpty()) {
                if (error)
                    *error = u"%1=\"%2\" is invalid: expected %3"_s.arg(source, value.left(200), durationTooLong(value));
                return std::nullopt;
            }
            if (!d)
                return reject();
            s.engine.defaultTimeout = *d;
        } else if (var == kWebSocket) {
            const auto b = parseBool(value);
            if (!b)
                return reject();
            s.websocketEnabled = *b;
        } else if (var == kBufferSize) {
            const auto v = parseInteger(value, 1, 1000000);
            if (!v)
                return reject();
            s.engine.bufferSize = int(*v);
        } else if (var == kLogLevel) {
            const QString level = value.trimmed().toLower();
            if (!kLogLevels.contains(level))
                return reject();
            s.logLevel = level;
        } else if (var == kRetention) {
            const auto v = parseInteger(value, 0, 36500);
            if (!v)
                return reject();
            s.retentionDays = int(*v);
        } else if (var == kRateLimit) {
            const auto r = parseRate(value);
            if (!r)
                return reject();
            s.engine.startRate = *r;
            // A rate past int's range (10^13/s, say) must not overflow the conversion.
            s.engine.startBurst = std::max(1, int(std::min(std::ceil(*r), double(std::numeric_limits<int>::max()))));
        } else if (var == kDataDir) {
            if (value.trimmed().isEmpty())
                return reject();
            s.dataDir = value;
        } else if (var == kTasksFile) {
            if (value.trimmed().isEmpty())
                return reject();
            s.tasksFile = value;
        }
    }
    return s;
}

void Settings::applyLogLevel() const
{
    // Levels below the chosen one are switched off for Taskdeck's own categories only.
    const qsizetype index = kLogLevels.indexOf(logLevel);
    const QStringList qtLevels = {u"debug"_s, u"info"_s, u"warning"_s, u"critical"_s};
    QStringList rules;
    for (qsizetype i = 0; i < qtLevels.size(); ++i)
        rules << u"taskdeck.*.%1=%2"_s.arg(qtLevels[i], i >= index ? u"true"_s : u"false"_s);
    QLoggingCategory::setFilterRules(rules.join(u'\n'));
}

namespace {

// A duration in parseDuration()'s shape, in milliseconds, however long; nullopt otherwise.
std::optional<double> durationMilliseconds(const QString &text)
{
    const QString t = text.trimmed().toLower();
    if (t.isEmpty())
        return std::nullopt;
    // Plain decimal digits only: no sign, no exponent ("1e3"), no blanks inside.
    static const QRegularExpression bare(u"\\A[0-9]+(?:\\.[0-9]+)?\\z"_s);
    if (bare.match(t).hasMatch())
        return t.toDouble() * 1000;
    // Parts such as "1h30m" or "1h 30m": a number glued to its unit, each unit at most once
    // and from the largest to the smallest, so that "1m1h" or "1s1s" cannot mean something
    // nobody wrote.
    static const QRegularExpression part(u"\\G([0-9]+(?:\\.[0-9]+)?)(ms|s|m|h|d)(?:\\s+|\\z|(?=[0-9]))"_s);
    const auto rank = [](QStringView unit) {
        return unit == u"d" ? 4 : unit == u"h" ? 3 : unit == u"m" ? 2 : unit == u"s" ? 1 : 0;
    };
    double total = 0;
    qsizetype position = 0;
    int lastRank = 5;
    auto it = part.globalMatch(t);
    while (it.hasNext()) {
        const auto m = it.next();
        if (m.capturedStart() != position)
            return std::nullopt;
        const QString unit = m.captured(2);
        const int r = rank(unit);
        if (r >= lastRank)
            return std::nullopt;
        lastRank = r;
        const double n = m.captured(1).toDouble();
        const double factor = unit == "ms"_L1 ? 1 : unit == "s"_L1 ? 1000
                            : unit == "m"_L1 ? 60000 : unit == "h"_L1 ? 3600000 : 86400000;
        total += n * factor;
        position = m.capturedEnd();
    }
    if (position == 0 || position != t.size())
        return std::nullopt;
    return total;
}

} // namespace

std::optional<std::chrono::milliseconds> parseDuration(const QString &text)
{
    const std::optional<double> ms = durationMilliseconds(text);
    // At least a millisecond (a bare number is seconds: more than 0), at most kMaxDuration.
    if (!ms || !(*ms >= 1) || !std::isfinite(*ms) || *ms > double(kMaxDuration.count()))
        return std::nullopt;
    return std::chrono::milliseconds(qint64(std::llround(*ms)));
}

QString durationTooLong(const QString &text)
{
    const std::optional<double> ms = durationMilliseconds(text);
    if (!ms || !(*ms > double(kMaxDuration.count())))
        return QString();
    return u"a duration of at most "_s + formatDuration(kMaxDuration);
}

QString formatDuration(std::chrono::milliseconds d)
{
    qint64 ms = d.count();
    if (ms < 1000)
        return QString::number(ms) + u"ms"_s;
    if (ms < 60000) {
        const double s = double(ms) / 1000.0;
        return QString::number(s, 'g', s < 10 ? 3 : 4) + u's';
    }
    QStringList parts;
    const qint64 hours = ms / 3600000;
    const qint64 minutes = (ms / 60000) % 60;
    const qint64 secs = (ms / 1000) % 60;
    if (hours)
        parts << QString::number(hours) + u'h';
    if (minutes)
        parts << QString::number(minutes) + u'm';
    if (secs)
        parts << QString::number(secs) + u's';
    return parts.join(u' ');
}

std::optional<bool> parseBool(const QString &text)
{
    const QString t = text.trimmed().toLower();
    if (t == "true"_L1 || t == "1"_L1 || t == "yes"_L1 || t == "on"_L1)
        return true;
    if (t == "false"_L1 || t == "0"_L1 || t == "no"_L1 || t == "off"_L1)
        return false;
    return std::nullopt;
}

} // namespace taskdeck
