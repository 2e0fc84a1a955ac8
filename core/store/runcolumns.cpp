// SPDX-License-Identifier: MIT
#include "runcolumns.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QSqlQuery>
#include <QSqlRecord>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

const std::array<QString, RunColumns::kCount> &columnNames()
{
    static const std::array<QString, RunColumns::kCount> names = {
        u"id"_s,
        u"task"_s,
        u"status"_s,
        u"attempt"_s,
        u"max_attempts"_s,
        u"args"_s,
        u"queued_at"_s,
        u"started_at"_s,
        u"finished_at"_s,
        u"progress_done"_s,
        u"progress_total"_s,
        u"progress_message"_s,
        u"result"_s,
        u"error_message"_s,
        u"error_kind"_s,
        u"error_detail"_s,
        u"error_transient"_s,
        u"log_lines"_s,
        u"owner"_s,
        u"seq"_s,
        u"next_attempt_at"_s,
        u"log_missing_from"_s,
    };
    return names;
}

} // namespace

QString RunColumns::name(Column column)
{
    return columnNames().at(size_t(column));
}

RunColumns::RunColumns(const QSqlRecord &record)
{
    for (int column = 0; column < kCount; ++column)
        m_index[size_t(column)] = record.indexOf(columnNames()[size_t(column)]);
}

Run RunColumns::read(const QSqlQuery &query) const
{
    auto value = [&](Column column) {
        const int at = m_index[size_t(column)];
        return at < 0 ? QVariant() : query.value(at);
    };
    Run run;
    run.id = value(Id).toString();
    run.task = value(Task).toString();
    run.status = runStatusFromName(value(Status).toString()).value_or(RunStatus::Interrupted);
    run.attempt = value(Attempt).toInt();
    run.maxAttempts = value(MaxAttempts).toInt();
    run.args = QJsonDocument::fromJson(value(Args).toString().toUtf8()).object();
    run.queuedAt = runTimeFromValue(value(QueuedAt));
    run.startedAt = runTimeFromValue(value(StartedAt));
    run.finishedAt = runTimeFromValue(value(FinishedAt));
    run.progress.done = value(ProgressDone).toLongLong();
    run.progress.total = value(ProgressTotal).toLongLong();
    run.progress.message = value(ProgressMessage).toString();
    run.result = runResultFromText(value(Result));
    run.error.message = value(ErrorMessage).toString();
    run.error.kind = value(ErrorKind).toString();
    run.error.detail = value(ErrorDetail).toString();
    run.error.transient = value(ErrorTransient).toBool();
    run.logLines = value(LogLines).toLongLong();
    run.owner = value(Owner).toString();
    run.seq = value(Seq).toLongLong();
    run.nextAttemptAt = runTimeFromValue(value(NextAttemptAt));
    run.logMissingFrom = value(LogMissingFrom).toLongLong();
    return run;
}

const QString &runColumnList()
{
    static const QString list = [] {
        QStringList names;
        for (int column = 0; column < RunColumns::kShared; ++column)
            names << columnNames()[size_t(column)];
        return names.join(u", "_s);
    }();
    return list;
}

Run runFromRecord(const QSqlQuery &query)
{
    return RunColumns(query.record()).read(query);
}

RunFilter runFilter(const RunQuery &query)
{
    RunFilter filter;
    QStringList conditions;
    if (!query.task.isEmpty()) {
        conditions << u"task = ?"_s;
        filter.values << query.task;
    }
    if (query.status) {
        conditions << u"status = ?"_s;
        filter.values << runStatusName(*query.status);
    }
    if (query.from.isValid()) {
        conditions << u"queued_at >= ?"_s;
        filter.values << query.from.toMSecsSinceEpoch();
    }
    if (query.to.isValid()) {
        conditions << u"queued_at < ?"_s;
        filter.values << query.to.toMSecsSinceEpoch();
    }
    if (!conditions.isEmpty())
        filter.where = u" WHERE "_s + conditions.join(u" AND "_s);
    return filter;
}

QDateTime runTimeFromValue(const QVariant &value)
{
    return value.isNull() ? QDateTime() : QDateTime::fromMSecsSinceEpoch(value.toLongLong(), Qt::UTC);
}

QJsonValue runResultFromText(const QVariant &value)
{
    if (value.isNull())
        return QJsonValue(QJsonValue::Undefined);
    // QJsonDocument holds only objects and arrays; a result may be any JSON value.
    const QJsonDocument doc = QJsonDocument::fromJson('[' + value.toString().toUtf8() + ']');
    return doc.isArray() && !doc.array().isEmpty() ? doc.array().at(0) : QJsonValue(QJsonValue::Undefined);
}

} // namespace taskdeck
