// SPDX-License-Identifier: MIT
#pragma once

#include <QSqlError>
#include <QString>

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
 */
class SqliteSchema final
{
public:
    static constexpr int kVersion = 3;

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
};

} // namespace taskdeck
