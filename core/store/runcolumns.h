// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"
#include "runstore.h"

#include <QJsonValue>
#include <QString>
#include <QVariant>

#include <array>

class QSqlQuery;
class QSqlRecord;

namespace taskdeck {

/*!
 * The columns of a stored run that every history store has (SqliteRunStore's table runs,
 * PgRunStore's taskdeck_runs), and the one mapping from such a row to a Run.
 *
 * Both stores select runColumnList() (a store with more columns appends them) and read each
 * row with a RunColumns made from the query's record: the columns are found by name, once per
 * query, so the order of the select list does not matter and a column a store lacks
 * (log_missing_from in PostgreSQL) leaves its field at the default.
 *
 * Times are stored as milliseconds since the epoch (UTC), a result as the JSON text of any
 * JSON value (see runResultFromText()), the arguments as a JSON object's text.
 *
 * \code
 * QSqlQuery q(db);
 * q.exec(u"SELECT "_s + runColumnList() + u" FROM taskdeck_runs"_s);
 * const RunColumns columns(q.record());
 * while (q.next())
 *     runs << columns.read(q);
 * \endcode
 */
class RunColumns final
{
public:
    /*! The columns a Run is read from; the first kShared are the ones every store has. */
    enum Column {
        Id,
        Task,
        Status,
        Attempt,
        MaxAttempts,
        Args,
        QueuedAt,
        StartedAt,
        FinishedAt,
        ProgressDone,
        ProgressTotal,
        ProgressMessage,
        Result,
        ErrorMessage,
        ErrorKind,
        ErrorDetail,
        ErrorTransient,
        LogLines,
        Owner,
        Seq,
        NextAttemptAt,
        LogMissingFrom, //!< SQLite only: where the stored log stops (Run::logMissingFrom)
        kCount
    };
    /*! How many of the columns, from the first, every store has. */
    static constexpr int kShared = LogMissingFrom;

    /*! The name of \a column in the tables ("queued_at"). */
    static QString name(Column column);

    /*! Finds the columns in \a record (a query's record) by name. */
    explicit RunColumns(const QSqlRecord &record);

    /*! The run on \a query's current row. */
    Run read(const QSqlQuery &query) const;

private:
    std::array<int, kCount> m_index{}; // -1: not in the result
};

/*! "id, task, status, ...": the columns every store has, for a SELECT list. */
const QString &runColumnList();

/*! The run on \a query's current row, its columns found by name (see RunColumns). */
Run runFromRecord(const QSqlQuery &query);

/*! A RunQuery's conditions on a run table: " WHERE task = ? AND ..." (empty for none) and the
 *  values to bind to its placeholders, in order. */
struct RunFilter
{
    QString where;
    QVariantList values;
};
/*! The filter of \a query (task, status, queued between from and to), the same in every store. */
RunFilter runFilter(const RunQuery &query);

/*! A stored time (milliseconds since the epoch, or null) as a UTC time (invalid for null). */
QDateTime runTimeFromValue(const QVariant &value);

/*! A stored result (the JSON text of any value, or null for none) as a JSON value. */
QJsonValue runResultFromText(const QVariant &value);

} // namespace taskdeck
