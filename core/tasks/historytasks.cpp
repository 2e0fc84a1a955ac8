// SPDX-License-Identifier: MIT
#include "historytasks.h"

#include "builtintasks.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <fcntl.h>
#include <unistd.h>

#include <QByteArray>
#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonObject>
#include <QLocale>
#include <QSaveFile>
#include <QScopeGuard>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStringList>
#include <QVariant>

#include "command.h"
#include "privatefiles.h"
#include "runcontext.h"
#include "runstore.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace taskdeck {

namespace {

// Long enough for a busy writer to drain its queue, short enough that a wedged store does
// not hold the purge for minutes: pruning what is stored is still correct without it.
constexpr auto PurgeFlushTimeout = 30s;
constexpr auto BackupFlushTimeout = 10s;
// A writer committing a large batch holds the database briefly; wait for it, not fail.
constexpr int BusyTimeoutMs = 10000;
// Rows between cancel checks and buffer flushes while dumping a table.
constexpr int RowsPerBatch = 1000;

const QString SqlFormat = u"sql"_s;
const QString TarFormat = u"tar"_s;
const QString ArchiveMember = u"history.sqlite3"_s;

[[noreturn]] void throwCanceled()
{
    throw TaskError(u"canceled"_s, u"Canceled"_s);
}

void checkCanceled(RunContext &ctx)
{
    if (ctx.isCanceled())
        throwCanceled();
}

/*
 * One QSqlDatabase connection with a name of its own, opened on the calling thread and
 * removed when this goes away. Queries on it must end before it does.
 */
class Connection final
{
public:
    Q_DISABLE_COPY_MOVE(Connection)

    Connection(const QString &name, const QString &path, const QString &options)
        : m_name(name)
    {
        QSqlDatabase db = QSqlDatabase::addDatabase(u"QSQLITE"_s, m_name);
        db.setDatabaseName(path);
        db.setConnectOptions(options);
        if (!db.open())
            m_error = db.lastError().text();
    }

    ~Connection()
    {
        {
            QSqlDatabase db = QSqlDatabase::database(m_name, false);
            db.close();
        }
        QSqlDatabase::removeDatabase(m_name);
    }

    bool isOpen() const { return m_error.isEmpty(); }
    QString errorString() const { return m_error; }
    QSqlDatabase database() const { return QSqlDatabase::database(m_name, false); }

private:
    QString m_name;
    QString m_error;
};

QString readOnlyOptions()
{
    return u"QSQLITE_OPEN_READONLY;QSQLITE_BUSY_TIMEOUT=%1"_s.arg(BusyTimeoutMs);
}

[[noreturn]] void throwSqlError(const QString &what, const QSqlQuery &query)
{
    throw TaskError(u"%1: %2"_s.arg(what, query.lastError().text()), u"DatabaseError"_s, false,
                    query.lastQuery());
}

QSqlQuery execOrThrow(const QSqlDatabase &db, const QString &sql, const QString &what)
{
    QSqlQuery query(db);
    query.setForwardOnly(true);
    if (!query.exec(sql))
        throwSqlError(what, query);
    return query;
}

// ---------------------------------------------------------------------------------------
// SQL text

QString quoteIdentifier(const QString &name)
{
    QString quoted = name;
    quoted.replace(u'"', u"\"\""_s);
    return u'"' + quoted + u'"';
}

QString textLiteral(const QString &text)
{
    // A NUL would end the statement for tools that read the script as C strings.
    if (text.contains(QChar(0)))
        return u"CAST(X'"_s + QString::fromLatin1(text.toUtf8().toHex()) + u"' AS TEXT)"_s;
    QString quoted = text;
    quoted.replace(u'\'', u"''"_s);
    return u'\'' + quoted + u'\'';
}

QString realLiteral(double value)
{
    // SQLite stores infinities but has no literal for them; it reads these as +/-Inf.
    if (std::isinf(value))
        return value > 0 ? u"1e999"_s : u"-1e999"_s;
    if (std::isnan(value))
        return u"NULL"_s; // SQLite turns NaN into NULL itself
    // The shortest text that reads back as the same double.
    QString text = QString::number(value, 'g', QLocale::FloatingPointShortest);
    // "1" would come back as an INTEGER: keep the storage class.
    if (!text.contains(u'.') && !text.contains(u'e'))
        text += u".0"_s;
    return text;
}

QString sqlLiteral(const QString &storageClass, const QVariant &value)
{
    if (storageClass == u"null"_s)
        return u"NULL"_s;
    if (storageClass == u"integer"_s)
        return QString::number(value.toLongLong());
    if (storageClass == u"real"_s)
        return realLiteral(value.toDouble());
    if (storageClass == u"blob"_s)
        return u"X'"_s + QString::fromLatin1(value.toByteArray().toHex()) + u'\'';
    return textLiteral(value.toString());
}

/*! \a sql (as SQLite keeps it, without the semicolon) as one statement of a script. */
QString statement(const QString &sql)
{
    // SQLite keeps a comment that ends a view's text; a semicolon after it would be
    // commented out too.
    const qsizetype lastLine = sql.lastIndexOf(u'\n') + 1;
    if (sql.indexOf(u"--"_s, lastLine) >= 0)
        return sql + u"\n;\n"_s;
    return sql + u";\n"_s;
}

struct SchemaObject
{
    QString type;
    QString name;
    QString sql;
};

/*! The parts of a database a dump recreates, in the order it recreates them. */
struct Schema
{
    QList<SchemaObject> tables;
    QList<SchemaObject> others; //!< indexes, triggers, views: made after the rows are in
    bool hasSequence = false;   //!< AUTOINCREMENT counters to carry over
    int userVersion = 0;
};

Schema readSchema(const QSqlDatabase &db)
{
    Schema schema;
    QSqlQuery query = execOrThrow(
        db, u"SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"_s,
        u"cannot read the snapshot's schema"_s);
    while (query.next()) {
        SchemaObject object{query.value(0).toString(), query.value(1).toString(),
                            query.value(2).toString()};
        // SQLite makes and fills its own tables (sqlite_sequence, sqlite_stat1) itself.
        if (object.name.startsWith(u"sqlite_"_s)) {
            if (object.name == u"sqlite_sequence"_s)
                schema.hasSequence = true;
            continue;
        }
        if (object.type == u"table"_s) {
            // Their content lives in shadow tables SQLite creates itself: a plain dump
            // would insert it twice. The history has none; say so rather than write a
            // script that does not load.
            if (object.sql.startsWith(u"CREATE VIRTUAL"_s, Qt::CaseInsensitive)) {
                throw TaskError(u"cannot dump virtual table %1 as SQL; use the archive format"_s
                                    .arg(object.name),
                                u"Unsupported"_s);
            }
            schema.tables.append(object);
        } else {
            schema.others.append(object);
        }
    }
    QSqlQuery version = execOrThrow(db, u"PRAGMA user_version"_s,
                                    u"cannot read the snapshot's schema version"_s);
    if (version.next())
        schema.userVersion = version.value(0).toInt();
    return schema;
}

// ---------------------------------------------------------------------------------------
// files

/*! Counts finished steps and reports them as the run's progress. */
class Steps final
{
public:
    explicit Steps(RunContext &ctx) : m_ctx(ctx) {}
    void setTotal(qint64 total) { m_total = total; }
    void next(const QString &message) { m_ctx.progress(++m_done, m_total, message); }

private:
    RunContext &m_ctx;
    qint64 m_done = 0;
    qint64 m_total = 0;
};

void writeText(QIODevice &out, const QString &text)
{
    const QByteArray bytes = text.toUtf8();
    if (out.write(bytes) != bytes.size())
        throw TaskError(u"cannot write the backup: %1"_s.arg(out.errorString()), u"FileError"_s);
}

/*
 * Claims an unused backup file name by creating it empty (mode 0600: backups hold run
 * arguments and logs), so two backups (even from two processes) never write to the same
 * file. The caller replaces it with the real content, which keeps the mode.
 */
QString reserveTarget(const QString &dir, const QString &extension)
{
    const QString stamp = QDateTime::currentDateTimeUtc().toString(u"yyyyMMdd-HHmmss"_s);
    const QString base = QDir(dir).filePath(u"taskdeck-history-"_s + stamp);
    for (int n = 1; n < 1000; ++n) {
        const QString path = n == 1 ? base + extension : u"%1-%2%3"_s.arg(base, QString::number(n), extension);
        if (PrivateFiles::createFile(path))
            return path;
        const int error = errno;
        if (QFileInfo::exists(path))
            continue;
        throw TaskError(u"cannot create %1: %2"_s.arg(path, qt_error_string(error)), u"FileError"_s);
    }
    throw TaskError(u"too many backups named %1*%2"_s.arg(base, extension), u"FileError"_s);
}

void syncFile(const QString &path)
{
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_CLOEXEC);
    const bool synced = fd >= 0 && ::fsync(fd) == 0;
    const int error = errno;
    if (fd >= 0)
        ::close(fd);
    if (!synced)
        throw TaskError(u"cannot write %1 to disk: %2"_s.arg(path, qt_error_string(error)), u"FileError"_s);
}

// ---------------------------------------------------------------------------------------
// backup

void takeSnapshot(RunContext &ctx, const QString &source, const QString &snapshot)
{
    // The store's own connections belong to other threads; this one is ours alone.
    const Connection connection(u"taskdeck-backup-source-"_s + ctx.runId(), source,
                                readOnlyOptions());
    if (!connection.isOpen()) {
        throw TaskError(u"cannot open the history database %1: %2"_s.arg(source, connection.errorString()),
                        u"DatabaseError"_s);
    }
    // One read transaction copies one committed state, however busy the writer is.
    QSqlQuery query(connection.database());
    if (!query.prepare(u"VACUUM INTO ?"_s))
        throwSqlError(u"cannot snapshot %1"_s.arg(source), query);
    query.addBindValue(snapshot);
    if (!query.exec())
        throwSqlError(u"cannot snapshot %1"_s.arg(source), query);
}

void dumpTable(RunContext &ctx, const QSqlDatabase &db, const SchemaObject &table, QIODevice &out)
{
    QStringList columns;
    {
        QSqlQuery info = execOrThrow(db, u"PRAGMA table_info(%1)"_s.arg(quoteIdentifier(table.name)),
                                     u"cannot read the columns of %1"_s.arg(table.name));
        while (info.next())
            columns.append(info.value(1).toString());
    }
    QStringList quoted;
    QStringList selected;
    for (const QString &column : std::as_const(columns)) {
        const QString name = quoteIdentifier(column);
        quoted.append(name);
        // typeof() says what SQLite stored; Qt's QVariant conversions do not keep that apart.
        selected.append(u"typeof(%1), %1"_s.arg(name));
    }
    const QString prefix = u"INSERT INTO %1 (%2) VALUES ("_s.arg(quoteIdentifier(table.name),
                                                               quoted.join(u","_s));

    QSqlQuery rows = execOrThrow(
        db, u"SELECT %1 FROM %2"_s.arg(selected.join(u", "_s), quoteIdentifier(table.name)),
        u"cannot read table %1"_s.arg(table.name));
    QString batch;
    int inBatch = 0;
    while (rows.next()) {
        QString statement = prefix;
        for (qsizetype i = 0; i < columns.size(); ++i) {
            if (i > 0)
                statement += u',';
            const int at = int(2 * i);
            statement += sqlLiteral(rows.value(at).toString(), rows.value(at + 1));
        }
        batch += statement + u");\n"_s;
        if (++inBatch == RowsPerBatch) {
            checkCanceled(ctx);
            writeText(out, batch);
            batch.clear();
            inBatch = 0;
        }
    }
    if (rows.lastError().isValid())
        throwSqlError(u"cannot read table %1"_s.arg(table.name), rows);
    writeText(out, batch);
}

void writeSqlDump(RunContext &ctx, Steps &steps, const QString &snapshot, const QString &target)
{
    const Connection connection(u"taskdeck-backup-snapshot-"_s + ctx.runId(), snapshot,
                                readOnlyOptions());
    if (!connection.isOpen()) {
        throw TaskError(u"cannot open the snapshot: %1"_s.arg(connection.errorString()),
                        u"DatabaseError"_s);
    }
    const QSqlDatabase db = connection.database();
    const Schema schema = readSchema(db);
    // snapshot, one step per table, checksum
    steps.setTotal(schema.tables.size() + 2);
    steps.next(u"snapshot"_s);

    // QSaveFile writes beside the target and renames over it only on commit: the reserved
    // name never holds half a dump.
    QSaveFile out(target);
    if (!out.open(QIODevice::WriteOnly))
        throw TaskError(u"cannot create %1: %2"_s.arg(target, out.errorString()), u"FileError"_s);

    writeText(out, u"-- Taskdeck history dump, schema version %1, taken %2\n"
               u"PRAGMA foreign_keys=OFF;\n"
               u"BEGIN TRANSACTION;\n"_s.arg(QString::number(schema.userVersion),
                                             QDateTime::currentDateTimeUtc().toString(Qt::ISODate)));
    for (const SchemaObject &table : schema.tables) {
        checkCanceled(ctx);
        writeText(out, statement(table.sql));
        dumpTable(ctx, db, table, out);
        steps.next(u"table "_s + table.name);
    }
    if (schema.hasSequence) {
        writeText(out, u"DELETE FROM sqlite_sequence;\n"_s);
        dumpTable(ctx, db, SchemaObject{u"table"_s, u"sqlite_sequence"_s, QString()}, out);
    }
    // Triggers made before the rows went in would fire while they are restored.
    for (const SchemaObject &object : schema.others)
        writeText(out, statement(object.sql));
    writeText(out, u"PRAGMA user_version = %1;\nCOMMIT;\n"_s.arg(schema.userVersion));
    if (!out.commit())
        throw TaskError(u"cannot write %1: %2"_s.arg(target, out.errorString()), u"FileError"_s);
}

void writeArchive(RunContext &ctx, Steps &steps, const QString &snapshot, const QString &target)
{
    steps.setTotal(3);
    steps.next(u"snapshot"_s);

    // The archive holds the snapshot under the name the history has in a data directory.
    const QString scratch = QFileInfo(snapshot).absolutePath();
    const QString member = QDir(scratch).filePath(ArchiveMember);
    if (!QFile::rename(snapshot, member))
        throw TaskError(u"cannot prepare %1 for archiving"_s.arg(member), u"FileError"_s);

    // Written beside the target and renamed over it, so the name never holds half a file.
    const QString part = target + u".part"_s;
    auto removePart = qScopeGuard([&] { QFile::remove(part); });
    // tar truncates an existing file and keeps its mode: private before the first byte.
    QFile::remove(part);
    if (!PrivateFiles::createFile(part))
        throw TaskError(u"cannot create %1: %2"_s.arg(part, qt_error_string(errno)), u"FileError"_s);
    Command tar;
    tar.argv = {u"tar"_s, u"-czf"_s, part, u"-C"_s, scratch, ArchiveMember};
    ctx.runChecked(tar);
    syncFile(part);
    if (::rename(QFile::encodeName(part).constData(), QFile::encodeName(target).constData()) != 0) {
        throw TaskError(u"cannot rename %1 to %2: %3"_s.arg(part, target, qt_error_string(errno)),
                        u"FileError"_s);
    }
    removePart.dismiss();
    steps.next(u"archive"_s);
}

QJsonValue runBackup(RunContext &ctx, IRunStore *store, const QString &backupDir)
{
    const QString format = ctx.arg(u"format"_s).toString(SqlFormat);
    if (format != SqlFormat && format != TarFormat)
        throw TaskError(u"unsupported format \"%1\""_s.arg(format), u"InvalidArgument"_s);
    const QString source = store->location();
    if (source.isEmpty() || !QFileInfo(source).isFile()) {
        const QString why = store->isAvailable() ? u"no database file at \"%1\""_s.arg(source)
                                                 : store->errorString();
        throw TaskError(u"history is unavailable: "_s + why, u"HistoryUnavailable"_s);
    }
    const QString dir = QDir(backupDir).absolutePath();
    if (QString problem; !PrivateFiles::makeDirectory(dir, &problem))
        throw TaskError(u"cannot create the backup directory %1 (%2)"_s.arg(dir, problem), u"FileError"_s);

    Steps steps(ctx);
    ctx.progress(0, 0, u"snapshot"_s);
    // Log lines of runs still going reach the file a moment after they are recorded: let
    // the snapshot include everything recorded before the backup began.
    if (!store->flush(BackupFlushTimeout))
        ctx.logError(u"the history is still writing; the newest log lines may be missing"_s);
    const QString snapshot = QDir(ctx.scratchDir()).filePath(u"snapshot.sqlite3"_s);
    takeSnapshot(ctx, source, snapshot);
    ctx.log(u"took a snapshot of %1 (%2 bytes)"_s.arg(source, QString::number(QFileInfo(snapshot).size())));
    checkCanceled(ctx);

    const QString target = reserveTarget(dir, format == SqlFormat ? u".sql"_s : u".tar.gz"_s);
    auto removeTarget = qScopeGuard([&] { QFile::remove(target); });
    if (format == SqlFormat)
        writeSqlDump(ctx, steps, snapshot, target);
    else
        writeArchive(ctx, steps, snapshot, target);
    // Backups hold run arguments and logs: nobody else needs to read them.
    QFile::setPermissions(target, QFileDevice::ReadOwner | QFileDevice::WriteOwner);

    const FileDigest digest = hashFile(ctx, target, QCryptographicHash::Sha256);
    steps.next(u"checksum"_s);
    removeTarget.dismiss();
    ctx.log(u"wrote %1 (%2 bytes, sha256 %3)"_s.arg(target, QString::number(digest.size), digest.hex));
    return QJsonObject{
        {u"file"_s, target},
        {u"size"_s, digest.size},
        {u"sha256"_s, digest.hex},
        {u"format"_s, format},
    };
}

// ---------------------------------------------------------------------------------------
// purge-history

QJsonValue runPurge(RunContext &ctx, IRunStore *store)
{
    if (!store->isAvailable())
        throw TaskError(u"history is unavailable: "_s + store->errorString(), u"HistoryUnavailable"_s);
    const qint64 days = ctx.arg(u"days"_s).toInteger(30);

    // Runs recorded but not written yet would otherwise escape this purge.
    if (!store->flush(PurgeFlushTimeout))
        ctx.logError(u"the history is still writing; runs that finished moments ago may be kept"_s);
    const QDateTime cutoff = QDateTime::currentDateTimeUtc().addDays(-days);
    const int deleted = store->pruneFinishedBefore(cutoff);
    if (deleted < 0) {
        const QString why = store->errorString();
        throw TaskError(u"could not delete runs from %1%2"_s.arg(store->location(),
                                                                why.isEmpty() ? QString() : u": "_s + why),
                        u"HistoryError"_s);
    }
    const QString olderThan = cutoff.toString(Qt::ISODateWithMs);
    ctx.log(u"deleted %1 runs that finished at or before %2"_s.arg(deleted).arg(olderThan));
    return QJsonObject{{u"deleted"_s, deleted}, {u"olderThan"_s, olderThan}};
}

} // namespace

Task backupTask(IRunStore *store, const QString &backupDir)
{
    Task task;
    task.key = u"backup"_s;
    task.title = u"Database Backup"_s;
    task.description = u"Creates a backup of Taskdeck's history database"_s;
    task.category = u"maintenance"_s;
    task.icon = u"database"_s;
    task.tags = {u"history"_s, u"database"_s, u"backup"_s};
    task.expensive = true;
    // Two snapshots at once only double the work; the second waits in the queue.
    task.maxConcurrent = 1;
    task.fields = {
        Field(u"format"_s, FieldType::Select)
            .withTitle(u"Format"_s)
            .withDescription(u"SQL Dump: a text script that recreates the database. "
                             u"Compressed Archive: the database file in a .tar.gz."_s)
            .withChoices({{SqlFormat, u"SQL Dump"_s}, {TarFormat, u"Compressed Archive"_s}})
            .withDefault(SqlFormat),
    };
    task.fn = [store, backupDir](RunContext &ctx) { return runBackup(ctx, store, backupDir); };
    return task;
}

Task purgeHistoryTask(IRunStore *store)
{
    Task task;
    task.key = u"purge-history"_s;
    task.title = u"Purge History"_s;
    task.description = u"Deletes finished runs and their logs from the history once they are "
                       u"older than a number of days. Queued and running runs are kept."_s;
    task.category = u"maintenance"_s;
    task.icon = u"trash"_s;
    task.tags = {u"history"_s, u"database"_s, u"retention"_s};
    task.danger = u"Deletes finished runs and their logs permanently."_s;
    task.maxConcurrent = 1;
    task.fields = {
        Field(u"days"_s, FieldType::Integer)
            .withTitle(u"Older than (days)"_s)
            .withDescription(u"Delete runs that finished more than this many days ago; "
                             u"0 deletes every finished run."_s)
            .withMin(0)
            .withMax(36500)
            .withDefault(30)
            .withRequired(),
    };
    task.fn = [store](RunContext &ctx) { return runPurge(ctx, store); };
    return task;
}

void registerHistoryTasks(TaskRegistry &registry, IRunStore *store, const QString &backupDir)
{
    if (!store)
        return;
    addFixedTasks(registry, {backupTask(store, backupDir), purgeHistoryTask(store)});
}

} // namespace taskdeck
