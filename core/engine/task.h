// SPDX-License-Identifier: MIT
#pragma once

#include "field.h"

#include <QJsonValue>
#include <QString>
#include <QStringList>

#include <chrono>
#include <functional>
#include <stdexcept>

namespace taskdeck {

class RunContext;

/*! Function a task runs on a worker thread. Returns the result or throws on failure. */
using TaskFunction = std::function<QJsonValue(RunContext &)>;

/*!
 * When and how often a failed run is tried again. Only failures marked transient
 * (TransientError, or TaskError with transient = true) are retried. The delay before attempt
 * n+1 is initialDelay * multiplier^(n-1), capped at maxDelay, then spread by +/- jitter.
 */
struct RetryPolicy
{
    int maxAttempts = 1; //!< 1 = no retry
    std::chrono::milliseconds initialDelay{500};
    double multiplier = 2.0;
    std::chrono::milliseconds maxDelay{30000};
    double jitter = 0.2; //!< fraction of the delay, 0..1

    /*! Delay before the attempt after \a failedAttempt, without jitter. */
    std::chrono::milliseconds baseDelay(int failedAttempt) const;
};

/*!
 * A failure a task reports on purpose. \c kind names the failure class; \c transient marks
 * failures worth retrying (network hiccups, busy resources).
 */
class TaskError : public std::runtime_error
{
public:
    explicit TaskError(const QString &message, const QString &kind = QString(),
                       bool transient = false, const QString &detail = QString());
    QString message() const { return m_message; }
    QString kind() const { return m_kind; }
    QString detail() const { return m_detail; }
    bool isTransient() const { return m_transient; }

private:
    QString m_message;
    QString m_kind;
    QString m_detail;
    bool m_transient;
};

/*! A failure worth retrying under the task's RetryPolicy. */
class TransientError : public TaskError
{
public:
    explicit TransientError(const QString &message, const QString &detail = QString())
        : TaskError(message, QStringLiteral("TransientError"), true, detail) {}
};

/*!
 * A registered, runnable task: metadata, typed parameters and the function.
 *
 * \code
 * Task backup;
 * backup.key = u"backup"_s;
 * backup.title = u"Database Backup"_s;
 * backup.category = u"maintenance"_s;
 * backup.fields = {Field(u"format"_s, FieldType::Select)
 *                      .withChoices({{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, u"Compressed Archive"_s}})};
 * backup.fn = [](RunContext &ctx) -> QJsonValue {
 *     ctx.log(u"writing "_s + ctx.arg(u"format"_s).toString());
 *     return QJsonObject{{u"file"_s, u"backup.sql"_s}, {u"size"_s, 1024000}};
 * };
 * registry.add(backup);
 * \endcode
 */
struct Task
{
    QString key;         //!< identifier: letters, digits, '-', '_', '.'; unique in a registry
    QString title;
    QString description;
    QString category;
    QString icon;
    QStringList tags;
    QString danger;      //!< non-empty: warning shown before running; runs need confirmation
    bool expensive = false;
    Fields fields;
    int maxConcurrent = 0; //!< 0 = only the engine's limit applies
    /*! Starts per second by every worker of a shared queue together (tasks file
     *  \c start_rate); 0 = none. A process's own engine does not apply it. */
    double startRate = 0;
    std::optional<std::chrono::milliseconds> timeout; //!< unset = the engine's default
    RetryPolicy retry;
    TaskFunction fn;

    bool isDangerous() const { return !danger.isEmpty(); }
    /*! Metadata and fields as JSON (no function). */
    QJsonObject toJson() const;
};

/*! Whether \a key is an acceptable task key; fills \a why otherwise. */
bool isValidTaskKey(const QString &key, QString *why = nullptr);

} // namespace taskdeck
