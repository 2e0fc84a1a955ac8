// SPDX-License-Identifier: MIT
#pragma once

#include <QSqlError>
#include <QString>

#include <optional>

QT_BEGIN_NAMESPACE
class QSqlDatabase;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * The SQLite history's tables and the ordered migrations that bring an older history file
 * to them. The schema version lives in PRAGMA user_version; each migration runs in its own
 * write transaction together with the version bump, so a crash leaves a file at one version
 * or the next, never in between.
 *
 * Version 1: runs without max_attempts, owner and trace_id; one log_lines row per line.
 * Version 2: those columns, an index on status, and logs as chunks (table log_chunks, see
 * LogChunk) instead of lines.
 * Version 3: the index on status covers only queued and running runs (runs_active).
 * Version 4: event sequence numbers (runs.seq, log_chunks.last_seq with an index to resume a
 * log after a seq; chunks written from now on carry each line's seq, see LogChunk), status
 * "retrying" with runs.next_attempt_at (runs_active covers it), and change tracking: every
 * transaction that writes runs adds one row to the table changes (its change number, see
 * nextChange(), and the ids it wrote), so another connection finds what changed since it
 * last looked.
 * Version 5: the same as 4 for a file made as 4 is now; it brings files made by development
 * builds of 4, which tracked changes with an indexed runs.change_seq, to the change log (the
 * column stays, unused).
 * Version 6: runs.log_missing_from, the first log line the history could not keep (a full
 * disk), 0 when the stored log is complete (see Run::logMissingFrom).
 */
class SqliteSchema final
{
public:
    static constexpr int kVersion = 6;

    /*! What went wrong in migrate(): an SQL error, or a problem described in words. */
    struct Failure
    {
        QSqlError error;  //!< valid when SQLite refused something
        QString problem;  //!< set when the file itself is unusable (a newer version)
    };

    /*!
     * Brings \a db (open, on the calling thread) to kVersion. Even when it is current this
     * writes once, so a file that cannot be written or is locked is found here and not at
     * the first run. Returns false with \a failure filled in.
     */
    static bool migrate(QSqlDatabase &db, Failure *failure);

    /*! The schema of version 1, for migrations; also what old files look like. */
    static bool createVersion1(QSqlDatabase &db, QSqlError *error);
    /*! Turns version 1 into version 2. */
    static bool migrateToVersion2(QSqlDatabase &db, QSqlError *error);
    /*! Turns version 2 into version 3. */
    static bool migrateToVersion3(QSqlDatabase &db, QSqlError *error);
    /*! Turns version 3 into version 4. */
    static bool migrateToVersion4(QSqlDatabase &db, QSqlError *error);
    static bool migrateToVersion5(QSqlDatabase &db, QSqlError *error);
    /*! Turns version 5 into version 6. */
    static bool migrateToVersion6(QSqlDatabase &db, QSqlError *error);

    /*!
     * "The run is not finished" about \a column, as an SQL condition ("(status = 'queued'
     * OR status = 'running' OR status = 'retrying')"): the condition of the partial index
     * runs_active, which a query must repeat word for word for SQLite to use the index.
     */
    static QString activeCondition(const QString &column);
    /*!
     * The next change number, inside the write transaction open on \a db: the transaction
     * logs the runs it wrote under it in the table changes. It is above every number logged
     * and above the clock's milliseconds times 1024, so numbers only grow, across processes
     * and across the trimming of the log. Returns it, or nullopt
     * with \a error set.
     */
    static std::optional<qint64> nextChange(QSqlDatabase &db, QSqlError *error);
};

} // namespace taskdeck
