// SPDX-License-Identifier: MIT
#pragma once

#include <QMap>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

#include <chrono>
#include <optional>

namespace taskdeck {

/*! How a TaskEngine schedules and keeps runs. */
struct EngineConfig
{
    int maxConcurrent = 0;   //!< runs in flight at once; 0 = number of CPUs
    std::chrono::milliseconds defaultTimeout{std::chrono::minutes(5)}; //!< per attempt
    int bufferSize = 1000;   //!< log lines each run keeps in memory for live viewers
    double startRate = 0;    //!< starts per second allowed (token bucket); 0 = unlimited
    int startBurst = 1;      //!< bucket size: starts allowed at once after a quiet spell
    int finishedRunsKept = 1000; //!< finished runs kept in memory for status queries
    std::chrono::milliseconds eventInterval{20}; //!< log/progress batching window
    /*! How long closing the engine waits for tasks to return after canceling them. */
    std::chrono::milliseconds shutdownGrace{std::chrono::seconds(5)};

    /*! maxConcurrent with 0 resolved to the CPU count. */
    int effectiveMaxConcurrent() const;
};

/*!
 * Taskdeck's settings, read from (in order of precedence) command-line flags, the
 * environment, and defaults. Every setting has an environment variable; flags use the
 * same names in lower case without the prefix (--max-concurrent for TASK_MAX_CONCURRENT).
 */
struct Settings
{
    EngineConfig engine;
    bool websocketEnabled = true;
    QString logLevel = QStringLiteral("info");
    int retentionDays = 30;
    QString dataDir;   //!< empty = the platform's app data directory
    QString tasksFile; //!< empty = look for taskdeck.yml

    /*! One recognised setting: its variable, flag, what it accepts and its default. */
    struct Option
    {
        QString variable;
        QString flag;
        QString accepted;
        QString defaultText;
    };
    static const QList<Option> &options();

    /*!
     * Reads settings from \a env overridden by \a flags (keyed by variable name). Returns
     * nullopt with \a error naming the variable (or flag), the value and what is accepted
     * for the first invalid value.
     */
    static std::optional<Settings> load(const QProcessEnvironment &env,
                                        const QMap<QString, QString> &flags,
                                        QString *error);

    /*! Applies logLevel as QLoggingCategory filter rules for the taskdeck.* categories. */
    void applyLogLevel() const;
};

/*!
 * Parses a duration: a bare number of seconds ("90", "1.5"), or numbers with units ms, s, m,
 * h, d, optionally combined ("1h30m", "1h 30m", "1.5s"). A number and its unit are written
 * together ("1 s" is refused); units go from the largest to the smallest, each at most once
 * ("1m1h" and "1s1s" are refused); no signs or exponents ("1e3" is refused). Zero and negative
 * durations are refused.
 */
std::optional<std::chrono::milliseconds> parseDuration(const QString &text);
/*! The longest duration parseDuration() takes: 1,000,000,000 seconds (about 31 years). */
inline constexpr std::chrono::milliseconds kMaxDuration{1'000'000'000'000};
/*!
 * "a duration of at most 11574d 1h 46m 40s" when \a text is a duration in parseDuration()'s
 * shape but longer than kMaxDuration, so that the message says what the maximum is; empty
 * otherwise (also for text that is no duration at all).
 */
QString durationTooLong(const QString &text);
/*! "1h 30m", "90s", "250ms". */
QString formatDuration(std::chrono::milliseconds d);
/*! true/false, 1/0, yes/no, on/off (any case). */
std::optional<bool> parseBool(const QString &text);

} // namespace taskdeck
