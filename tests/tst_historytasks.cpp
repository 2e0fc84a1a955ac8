// SPDX-License-Identifier: MIT
// backup and purge-history against a real SQLite history, with real tar processes.

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QJsonObject>
#include <QMutex>
#include <QProcess>
#include <QRegularExpression>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QUuid>

#include "historytasks.h"
#include "runcontext.h"
#include "runrecorder.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "testsupport.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace testsupport;

namespace {

// Hands everything to the store and keeps every progress report, which the engine's
// signals would coalesce.
class TeeRecorder final : public IRunRecorder
{
public:
    explicit TeeRecorder(IRunRecorder *next) : m_next(next) {}

    void recordQueued(const Run &run) override { m_next->recordQueued(run); }
    void recordStarted(const Run &run) override { m_next->recordStarted(run); }
    void recordRetrying(const Run &run) override { m_next->recordRetrying(run); }
    void recordProgress(const QString &runId, const Progress &progress) override
    {
        {
            QMutexLocker locker(&m_mutex);
            m_progress[runId].append(progress);
        }
        m_next->recordProgress(runId, progress);
    }
    void recordLog(const QString &runId, const LogLines &lines) override
    {
        m_next->recordLog(runId, lines);
    }
    void recordFinished(const Run &run, std::function<void()> durable) override
    {
        m_next->recordFinished(run, std::move(durable));
    }

    QList<Progress> progress(const QString &runId) const
    {
        QMutexLocker locker(&m_mutex);
        return m_progress.value(runId);
    }

private:
    IRunRecorder *m_next;
    mutable QMutex m_mutex;
    QHash<QString, QList<Progress>> m_progress; // guarded by m_mutex
};

QString quoteIdentifier(const QString &name)
{
    QString quoted = name;
    quoted.replace(u'"', u"\"\""_s);
    return u'"' + quoted + u'"';
}

// Exact text for one stored value, storage class included: "real:0.1" and "text:0.1" differ.
QString canonical(const QString &storageClass, const QVariant &value)
{
    if (storageClass == u"real"_s) {
        const double d = value.toDouble();
        return u"real:"_s + QString::number(d, 'g', 17) + (std::signbit(d) ? u"-"_s : QString());
    }
    if (storageClass == u"blob"_s)
        return u"blob:"_s + QString::fromLatin1(value.toByteArray().toHex());
    if (storageClass == u"null"_s)
        return u"null"_s;
    return storageClass + u':' + value.toString();
}

/*
 * Everything that makes two databases the same, as text: the schema, the schema version and
 * every row of every table (in a fixed order). \a exclude maps a table to a condition on its
 * rows that leaves some out.
 */
QStringList describe(const RawDb &db, const QHash<QString, QString> &exclude)
{
    QStringList out;
    out << u"user_version=%1"_s.arg(db.scalar(u"PRAGMA user_version"_s).toInt());
    QStringList tables;
    {
        QSqlQuery schema(db.db());
        if (!schema.exec(u"SELECT type, name, tbl_name, sql FROM sqlite_master "
                         u"WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name"_s))
            return {u"schema query failed: "_s + schema.lastError().text()};
        while (schema.next()) {
            out << u"schema %1 %2 %3: %4"_s.arg(schema.value(0).toString(), schema.value(1).toString(),
                                               schema.value(2).toString(), schema.value(3).toString());
            if (schema.value(0).toString() == u"table"_s)
                tables << schema.value(1).toString();
        }
    }
    for (const QString &table : std::as_const(tables)) {
        QStringList columns;
        {
            QSqlQuery info(db.db());
            info.exec(u"PRAGMA table_info(%1)"_s.arg(quoteIdentifier(table)));
            while (info.next())
                columns << quoteIdentifier(info.value(1).toString());
        }
        QStringList selected;
        for (const QString &c : std::as_const(columns))
            selected << u"typeof(%1), %1"_s.arg(c);
        QString sql = u"SELECT %1 FROM %2"_s.arg(selected.join(u", "_s), quoteIdentifier(table));
        if (exclude.contains(table))
            sql += u" WHERE "_s + exclude.value(table);
        sql += u" ORDER BY "_s + columns.join(u", "_s);
        QSqlQuery rows(db.db());
        if (!rows.exec(sql))
            return {u"row query failed: "_s + rows.lastError().text()};
        int count = 0;
        while (rows.next()) {
            QStringList values;
            for (qsizetype i = 0; i < columns.size(); ++i)
                values << canonical(rows.value(int(2 * i)).toString(), rows.value(int(2 * i + 1)));
            out << table + u": "_s + values.join(u" | "_s);
            ++count;
        }
        out << u"%1 has %2 rows"_s.arg(table).arg(count);
    }
    return out;
}

/*
 * Splits an SQL script into statements the way the sqlite3 shell reads it: at semicolons
 * outside quotes and comments, a trigger body running on to its END.
 */
QStringList splitStatements(const QString &script)
{
    QStringList statements;
    QString current;
    QChar quote;
    for (qsizetype i = 0; i < script.size(); ++i) {
        const QChar c = script.at(i);
        if (!quote.isNull()) {
            current += c;
            if (c == quote)
                quote = QChar();
            continue;
        }
        if (c == u'-' && i + 1 < script.size() && script.at(i + 1) == u'-') {
            // Kept: SQLite stores a comment that ends a view as part of its text.
            while (i < script.size() && script.at(i) != u'\n')
                current += script.at(i++);
            if (i < script.size())
                current += script.at(i);
            continue;
        }
        current += c;
        if (c == u'\'' || c == u'"') {
            quote = c;
        } else if (c == u';') {
            const QString statement = current.trimmed().chopped(1).trimmed();
            const bool openTrigger = statement.startsWith(u"CREATE TRIGGER"_s, Qt::CaseInsensitive)
                && !statement.endsWith(u"END"_s, Qt::CaseInsensitive);
            if (!openTrigger) {
                if (!statement.isEmpty())
                    statements << statement;
                current.clear();
            }
        }
    }
    if (!current.trimmed().isEmpty())
        statements << current.trimmed();
    return statements;
}

// Runs the statements of \a script one by one on \a db; returns the first error.
QString execScript(const RawDb &db, const QString &script)
{
    for (const QString &statement : splitStatements(script)) {
        QSqlQuery query(db.db());
        if (!query.exec(statement))
            return query.lastError().text() + u" in: "_s + statement.left(300);
    }
    return QString();
}

QString runTool(const QStringList &argv, QByteArray *output = nullptr)
{
    QProcess process;
    process.start(argv.first(), argv.mid(1));
    if (!process.waitForFinished(120000))
        return u"%1 did not finish: %2"_s.arg(argv.join(u' '), process.errorString());
    if (output)
        *output = process.readAllStandardOutput();
    if (process.exitStatus() != QProcess::NormalExit || process.exitCode() != 0)
        return u"%1 failed: %2"_s.arg(argv.join(u' '), QString::fromLocal8Bit(process.readAllStandardError()));
    return QString();
}

QString fileSha256(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    QCryptographicHash hash(QCryptographicHash::Sha256);
    hash.addData(&file);
    return QString::fromLatin1(hash.result().toHex());
}

RunOptions confirmed()
{
    RunOptions options;
    options.confirmed = true;
    return options;
}

Run makeRun(RunStatus status, const QDateTime &queuedAt, const QDateTime &finishedAt)
{
    Run run;
    run.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    run.task = u"recorded"_s;
    run.status = status;
    run.queuedAt = queuedAt;
    if (status != RunStatus::Queued) {
        run.attempt = 1;
        run.startedAt = queuedAt.addSecs(1);
    }
    run.finishedAt = finishedAt;
    if (status == RunStatus::Succeeded)
        run.result = QJsonObject{{u"ok"_s, true}};
    if (status == RunStatus::Failed)
        run.error = {u"it broke"_s, u"TestError"_s, QString(), false};
    return run;
}

} // namespace

class TestHistoryTasks : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void registration();
    void notRegisteredWithoutStore();
    void backupSqlRestoresEveryRow();
    void backupTarHoldsTheDatabase();
    void backupProgress();
    void backupNamesDoNotCollide();
    void backupDuringWrites();
    void backupDirectoryNotCreatable();
    void purgeNeedsConfirmation();
    void purgeDeletesOnlyOldFinishedRuns();
    void purgeDaysBounds();

private:
    void populate();
    void addTrickyTables();
    QString backupDir() const { return m_dir->filePath(u"backups/nested"_s); }
    QHash<QString, QString> excluding(const QString &runId) const;

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<SqliteRunStore> m_store;
    std::unique_ptr<TeeRecorder> m_recorder;
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
};

void TestHistoryTasks::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
}

void TestHistoryTasks::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    QString error;
    m_store = SqliteRunStore::open(m_dir->filePath(u"data"_s), &error);
    QVERIFY2(m_store, qPrintable(error));
    m_recorder = std::make_unique<TeeRecorder>(m_store.get());

    m_registry = std::make_unique<TaskRegistry>();
    registerHistoryTasks(*m_registry, m_store.get(), backupDir());
    QVERIFY(m_registry->add(makeTask(u"talk"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= 120; ++i)
            ctx.log(u"line %1: it's \"quoted\"; -- not a comment; ünïcödé ✓"_s.arg(i));
        ctx.logError(u"a warning with a 'quote'"_s);
        ctx.progress(3, 4, u"almost"_s);
        return QJsonObject{{u"answer"_s, 42}, {u"ratio"_s, 0.1}, {u"text"_s, u"O'Brien"_s}};
    })));
    QVERIFY(m_registry->add(makeTask(u"broken"_s, [](RunContext &ctx) -> QJsonValue {
        ctx.log(u"about to fail"_s);
        throw TaskError(u"it broke"_s, u"TestError"_s, false, u"line one\nline 'two'"_s);
    })));
    QVERIFY(m_registry->add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; !ctx.isCanceled(); ++i) {
            ctx.log(u"chatty line %1"_s.arg(i));
            ctx.sleep(2ms);
        }
        return QJsonValue();
    })));

    EngineConfig config;
    config.maxConcurrent = 4;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
    m_engine->setRecorder(m_recorder.get());
}

void TestHistoryTasks::cleanup()
{
    // The store must outlive the engine that records into it.
    m_engine.reset();
    m_registry.reset();
    m_recorder.reset();
    m_store.reset();
    m_dir.reset();
}

void TestHistoryTasks::populate()
{
    for (int i = 0; i < 3; ++i) {
        const RunResult r = m_engine->run(u"talk"_s, {});
        QVERIFY2(r.ok(), qPrintable(r.error.message));
        QCOMPARE(r.run.status, RunStatus::Succeeded);
    }
    const RunResult broken = m_engine->run(u"broken"_s, {});
    QVERIFY(broken.ok());
    QCOMPARE(broken.run.status, RunStatus::Failed);
    QVERIFY(m_store->flush(30s));
    QCOMPARE(m_store->findRuns(RunQuery()).total, 4);
    QVERIFY(m_store->readLog(broken.run.id).size() >= 1);
}

/*
 * Values the history tables do not hold today but a dump has to get right: awkward names,
 * every storage class, reals that need all their digits, AUTOINCREMENT counters, a view and
 * a trigger that must not fire while rows are restored.
 */
void TestHistoryTasks::addTrickyTables()
{
    const RawDb db(m_store->location());
    QVERIFY(db.isOpen());
    const QString table = quoteIdentifier(u"odd \"name\"; x"_s);
    QCOMPARE(db.run(u"CREATE TABLE %1 (id INTEGER PRIMARY KEY, t TEXT, r REAL, i INTEGER, "
                     u"b BLOB, untyped)"_s.arg(table)), QString());
    const QList<QVariantList> rows = {
        {1, u"it's"_s, 0.1, std::numeric_limits<qint64>::max(), QByteArray("\x00\x01\xff", 3), 1.0},
        {2, u"two\nlines\r\nhere"_s, 1.0 / 3.0, std::numeric_limits<qint64>::min(), QByteArray("x"), u"1"_s},
        {3, u"ünïcödé 🚀 ✓"_s, 1e300, 0, QVariant(), 7},
        {4, QString(u"nul\0inside"_s), -2.5e-308, -1, QByteArray(256, '\x7f'), QByteArray("b")},
        {5, u"'); DROP TABLE runs; --"_s, 5e-324, 42, QByteArray("\xde\xad", 2), QVariant()},
        {6, u""_s, 1.0, QVariant(), QVariant(), 123456789.123456789},
        {7, QVariant(), 2.0e20, 9007199254740993LL, QVariant(), std::numeric_limits<double>::infinity()},
    };
    for (const QVariantList &row : rows) {
        QCOMPARE(db.run(u"INSERT INTO %1 VALUES (?, ?, ?, ?, ?, ?)"_s.arg(table), row), QString());
    }
    QCOMPARE(db.run(u"INSERT INTO %1 VALUES (8, 'empty blob', -0.0, 0, X'', -1e999)"_s.arg(table)),
             QString());
    QCOMPARE(db.run(u"CREATE INDEX tricky_t ON %1(t)"_s.arg(table)), QString());
    QCOMPARE(db.run(u"CREATE VIEW tricky_view AS SELECT id, t FROM %1 WHERE id > 2 -- the later ones"_s.arg(table)),
             QString());
    QCOMPARE(db.run(u"CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT)"_s), QString());
    QCOMPARE(db.run(u"INSERT INTO audit (note) VALUES ('first'), ('second')"_s), QString());
    // The counter (2) now runs ahead of the rows (1): only sqlite_sequence remembers it.
    QCOMPARE(db.run(u"DELETE FROM audit WHERE note = 'second'"_s), QString());
    QCOMPARE(db.run(u"CREATE TRIGGER tricky_audit AFTER INSERT ON %1 BEGIN "
                     u"INSERT INTO audit (note) VALUES ('inserted; ' || new.id); END"_s.arg(table)),
             QString());
}

QHash<QString, QString> TestHistoryTasks::excluding(const QString &runId) const
{
    // The backup run itself goes on changing in the source after its snapshot was taken, and
    // each of its commits there adds a row to the change log (which names it).
    const QString id = u"'%1'"_s.arg(runId);
    return {{u"runs"_s, u"id != "_s + id},
            {u"log_chunks"_s, u"run_id != "_s + id},
            {u"changes"_s, u"instr(run_ids, "_s + id + u") = 0"_s}};
}

void TestHistoryTasks::registration()
{
    QCOMPARE(m_registry->size(), 5);

    const TaskPtr backup = m_registry->find(u"backup"_s);
    QVERIFY(backup);
    QCOMPARE(backup->title, u"Database Backup"_s);
    QCOMPARE(backup->description, u"Creates a backup of Taskdeck's history database"_s);
    QCOMPARE(backup->category, u"maintenance"_s);
    QCOMPARE(backup->icon, u"database"_s);
    QVERIFY(!backup->tags.isEmpty());
    QVERIFY(!backup->isDangerous());
    QCOMPARE(backup->fields.size(), 1);
    const Field &format = backup->fields.constFirst();
    QCOMPARE(format.key, u"format"_s);
    QCOMPARE(format.type, FieldType::Select);
    QCOMPARE(format.defaultValue.toString(), u"sql"_s);
    const Field::Choices choices = {{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, u"Compressed Archive"_s}};
    QCOMPARE(format.choices, choices);
    QVERIFY(!format.title.isEmpty());
    QVERIFY(!format.description.isEmpty());

    const TaskPtr purge = m_registry->find(u"purge-history"_s);
    QVERIFY(purge);
    QCOMPARE(purge->title, u"Purge History"_s);
    QCOMPARE(purge->category, u"maintenance"_s);
    QCOMPARE(purge->icon, u"trash"_s);
    QVERIFY(!purge->tags.isEmpty());
    QVERIFY(!purge->description.isEmpty());
    QCOMPARE(purge->danger, u"Deletes finished runs and their logs permanently."_s);
    QCOMPARE(purge->fields.size(), 1);
    const Field &days = purge->fields.constFirst();
    QCOMPARE(days.key, u"days"_s);
    QCOMPARE(days.type, FieldType::Integer);
    QVERIFY(days.required);
    QCOMPARE(days.defaultValue.toInteger(), 30);
    QCOMPARE(days.min, 0.0);
    QCOMPARE(days.max, 36500.0);
    QVERIFY(!days.title.isEmpty());
    QVERIFY(!days.description.isEmpty());
}

void TestHistoryTasks::notRegisteredWithoutStore()
{
    TaskRegistry registry;
    registerHistoryTasks(registry, nullptr, backupDir());
    QCOMPARE(registry.size(), 0);
}

void TestHistoryTasks::backupSqlRestoresEveryRow()
{
    populate();
    addTrickyTables();
    QVERIFY(!QFileInfo::exists(backupDir()));

    const RunResult r = m_engine->run(u"backup"_s, {{u"format"_s, u"sql"_s}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message + u'\n' + r.run.error.detail));
    const QJsonObject result = r.run.result.toObject();
    QCOMPARE(result.value(u"format"_s).toString(), u"sql"_s);

    const QString file = result.value(u"file"_s).toString();
    const QFileInfo info(file);
    QVERIFY2(info.isFile(), qPrintable(file));
    QCOMPARE(info.absolutePath(), QDir(backupDir()).absolutePath());
    QVERIFY2(QRegularExpression(u"^taskdeck-history-\\d{8}-\\d{6}\\.sql$"_s).match(info.fileName()).hasMatch(),
             qPrintable(info.fileName()));
    QCOMPARE(result.value(u"size"_s).toInteger(), info.size());
    QCOMPARE(result.value(u"sha256"_s).toString(), fileSha256(file));
    QVERIFY(!info.permissions().testAnyFlags(QFileDevice::ReadGroup | QFileDevice::ReadOther));
    // Nothing but the backup is left in the directory.
    QCOMPARE(QDir(backupDir()).entryList(QDir::Files | QDir::Hidden), QStringList{info.fileName()});

    QFile dump(file);
    QVERIFY(dump.open(QIODevice::ReadOnly));
    const QString script = QString::fromUtf8(dump.readAll());
    QVERIFY2(script.contains(u"\nBEGIN TRANSACTION;\n"_s), qPrintable(script.left(300)));
    QVERIFY2(script.endsWith(u"\nCOMMIT;\n"_s), qPrintable(script.right(300)));

    const QString restoredPath = m_dir->filePath(u"restored.sqlite3"_s);
    const RawDb restored(restoredPath);
    QVERIFY(restored.isOpen());
    QCOMPARE(execScript(restored, script), QString());
    QCOMPARE(restored.scalar(u"PRAGMA integrity_check"_s).toString(), u"ok"_s);

    const RawDb source(m_store->location());
    QVERIFY(source.isOpen());
    QCOMPARE(restored.scalar(u"PRAGMA user_version"_s).toInt(), source.scalar(u"PRAGMA user_version"_s).toInt());
    QVERIFY(restored.scalar(u"PRAGMA user_version"_s).toInt() > 0);
    const QStringList expected = describe(source, excluding(r.run.id));
    const QStringList actual = describe(restored, excluding(r.run.id));
    QVERIFY(expected.contains(u"runs has 4 rows"_s));
    QVERIFY(expected.contains(u"audit has 1 rows"_s));
    QCOMPARE(actual, expected);

    // The trigger came back and works, and AUTOINCREMENT goes on from the old counter.
    QCOMPARE(restored.run(u"INSERT INTO %1 (id) VALUES (100)"_s.arg(quoteIdentifier(u"odd \"name\"; x"_s))),
             QString());
    QCOMPARE(restored.scalar(u"SELECT max(id) FROM audit"_s).toInt(), 3);
    QCOMPARE(restored.scalar(u"SELECT note FROM audit WHERE id = 3"_s).toString(), u"inserted; 100"_s);
}

void TestHistoryTasks::backupTarHoldsTheDatabase()
{
    populate();

    const RunResult r = m_engine->run(u"backup"_s, {{u"format"_s, u"tar"_s}});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message + u'\n' + r.run.error.detail));
    const QJsonObject result = r.run.result.toObject();
    QCOMPARE(result.value(u"format"_s).toString(), u"tar"_s);
    const QString file = result.value(u"file"_s).toString();
    QVERIFY2(QRegularExpression(u"^taskdeck-history-\\d{8}-\\d{6}\\.tar\\.gz$"_s)
                 .match(QFileInfo(file).fileName()).hasMatch(), qPrintable(file));
    QCOMPARE(result.value(u"size"_s).toInteger(), QFileInfo(file).size());
    QCOMPARE(result.value(u"sha256"_s).toString(), fileSha256(file));
    QCOMPARE(QDir(backupDir()).entryList(QDir::Files | QDir::Hidden), QStringList{QFileInfo(file).fileName()});

    QByteArray listing;
    QCOMPARE(runTool({u"tar"_s, u"-tzf"_s, file}, &listing), QString());
    QCOMPARE(QString::fromUtf8(listing).split(u'\n', Qt::SkipEmptyParts), QStringList{u"history.sqlite3"_s});

    const QString extracted = m_dir->filePath(u"extracted"_s);
    QVERIFY(QDir().mkpath(extracted));
    QCOMPARE(runTool({u"tar"_s, u"-xzf"_s, file, u"-C"_s, extracted}), QString());
    const RawDb restored(QDir(extracted).filePath(u"history.sqlite3"_s));
    QVERIFY(restored.isOpen());
    QCOMPARE(restored.scalar(u"PRAGMA integrity_check"_s).toString(), u"ok"_s);

    const RawDb source(m_store->location());
    QVERIFY(source.isOpen());
    const QStringList expected = describe(source, excluding(r.run.id));
    QVERIFY(expected.contains(u"runs has 4 rows"_s));
    QCOMPARE(describe(restored, excluding(r.run.id)), expected);
}

void TestHistoryTasks::backupProgress()
{
    populate();

    const RunResult sql = m_engine->run(u"backup"_s, {});
    QVERIFY2(sql.ok(), qPrintable(sql.error.message));
    QVERIFY2(sql.run.status == RunStatus::Succeeded, qPrintable(sql.run.error.message));
    QCOMPARE(sql.run.result.toObject().value(u"format"_s).toString(), u"sql"_s);

    const RawDb source(m_store->location());
    const int tables = source.scalar(u"SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                    u"AND name NOT LIKE 'sqlite_%'"_s).toInt();
    QVERIFY(tables >= 2);
    const QList<Progress> progress = m_recorder->progress(sql.run.id);
    QStringList messages;
    for (const Progress &p : progress) {
        if (p.total != 0) {
            QCOMPARE(p.total, tables + 2);
            messages << p.message;
        }
    }
    QCOMPARE(messages.size(), tables + 2);
    QCOMPARE(messages.constFirst(), u"snapshot"_s);
    QVERIFY(messages.contains(u"table runs"_s));
    QVERIFY(messages.contains(u"table log_chunks"_s));
    QCOMPARE(messages.constLast(), u"checksum"_s);
    QCOMPARE(sql.run.progress.percent(), 100);

    const RunResult tar = m_engine->run(u"backup"_s, {{u"format"_s, u"tar"_s}});
    QVERIFY2(tar.ok(), qPrintable(tar.error.message));
    QVERIFY2(tar.run.status == RunStatus::Succeeded, qPrintable(tar.run.error.message));
    QStringList tarMessages;
    for (const Progress &p : m_recorder->progress(tar.run.id)) {
        if (p.total != 0)
            tarMessages << p.message;
    }
    QCOMPARE(tarMessages, QStringList({u"snapshot"_s, u"archive"_s, u"checksum"_s}));
}

void TestHistoryTasks::backupNamesDoNotCollide()
{
    populate();
    QStringList files;
    for (int i = 0; i < 3; ++i) {
        const RunResult r = m_engine->run(u"backup"_s, {{u"format"_s, u"sql"_s}});
        QVERIFY2(r.ok(), qPrintable(r.error.message));
        QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
        files << r.run.result.toObject().value(u"file"_s).toString();
    }
    files.removeDuplicates();
    QCOMPARE(files.size(), 3);
    for (const QString &file : std::as_const(files))
        QVERIFY2(QFileInfo(file).size() > 0, qPrintable(file));
}

void TestHistoryTasks::backupDuringWrites()
{
    populate();
    const StartResult chatty = m_engine->start(u"chatty"_s, {});
    QVERIFY2(chatty.ok(), qPrintable(chatty.error.message));
    // Wait until the store is writing the chatty run's log, so the snapshots race with it.
    QTRY_VERIFY_WITH_TIMEOUT(m_store->readLog(chatty.runId, 1, 10).size() == 10, 60000);

    for (const QString &format : {u"sql"_s, u"tar"_s}) {
        const RunResult r = m_engine->run(u"backup"_s, {{u"format"_s, format}});
        QVERIFY2(r.ok(), qPrintable(r.error.message));
        QVERIFY2(r.run.status == RunStatus::Succeeded,
                 qPrintable(r.run.error.message + u'\n' + r.run.error.detail));
        QVERIFY(m_engine->status(chatty.runId) == RunStatus::Running);

        const QString file = r.run.result.toObject().value(u"file"_s).toString();
        QString restoredPath;
        if (format == u"sql"_s) {
            restoredPath = m_dir->filePath(u"during.sqlite3"_s);
            QFile dump(file);
            QVERIFY(dump.open(QIODevice::ReadOnly));
            const RawDb restored(restoredPath);
            QCOMPARE(execScript(restored, QString::fromUtf8(dump.readAll())), QString());
        } else {
            const QString extracted = m_dir->filePath(u"during"_s);
            QVERIFY(QDir().mkpath(extracted));
            QCOMPARE(runTool({u"tar"_s, u"-xzf"_s, file, u"-C"_s, extracted}), QString());
            restoredPath = QDir(extracted).filePath(u"history.sqlite3"_s);
        }
        const RawDb restored(restoredPath);
        QVERIFY(restored.isOpen());
        QCOMPARE(restored.scalar(u"PRAGMA integrity_check"_s).toString(), u"ok"_s);
        // The snapshot caught the chatty run in the middle of its work, with some of its log.
        QSqlQuery query(restored.db());
        QVERIFY(query.prepare(u"SELECT status, (SELECT count(*) FROM log_chunks WHERE run_id = runs.id) "
                              u"FROM runs WHERE id = ?"_s));
        query.addBindValue(chatty.runId);
        QVERIFY2(query.exec(), qPrintable(query.lastError().text()));
        QVERIFY(query.next());
        QCOMPARE(query.value(0).toString(), u"running"_s);
        QVERIFY(query.value(1).toInt() >= 1);
        QCOMPARE(restored.scalar(u"SELECT count(*) FROM runs WHERE task = 'talk' AND status = 'succeeded'"_s)
                     .toInt(), 3);
    }

    QVERIFY(m_engine->cancel(chatty.runId));
    const std::optional<Run> stopped = m_engine->waitForFinished(chatty.runId, 60s);
    QVERIFY(stopped);
    QCOMPARE(stopped->status, RunStatus::Canceled);
}

void TestHistoryTasks::backupDirectoryNotCreatable()
{
    // A file where the directory should be: mkpath cannot make it.
    QVERIFY(QDir().mkpath(m_dir->filePath(u"backups"_s)));
    QFile blocker(backupDir());
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();

    const RunResult r = m_engine->run(u"backup"_s, {});
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.error.kind, u"FileError"_s);
    QVERIFY2(r.run.error.message.contains(QDir(backupDir()).absolutePath()), qPrintable(r.run.error.message));
}

void TestHistoryTasks::purgeNeedsConfirmation()
{
    const StartResult started = m_engine->start(u"purge-history"_s, {{u"days"_s, 0}});
    QVERIFY(!started.ok());
    QCOMPARE(started.error.code, StartError::Code::ConfirmationRequired);
    QVERIFY(m_engine->activeRuns().isEmpty());
}

void TestHistoryTasks::purgeDeletesOnlyOldFinishedRuns()
{
    auto statusOf = [this](const QString &id) {
        const std::optional<Run> run = m_store->findRun(id);
        return run ? runStatusName(run->status) : u"gone"_s;
    };
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const Run old = makeRun(RunStatus::Succeeded, now.addDays(-41), now.addDays(-40));
    const Run older = makeRun(RunStatus::Failed, now.addDays(-101), now.addDays(-100));
    const Run recent = makeRun(RunStatus::Succeeded, now.addDays(-2), now.addDays(-1));
    const Run running = makeRun(RunStatus::Running, now.addDays(-200), QDateTime());
    const Run queued = makeRun(RunStatus::Queued, now.addDays(-300), QDateTime());
    LogLines lines;
    for (int i = 1; i <= 5; ++i)
        lines.append(LogLine{i, now.addDays(-40).toMSecsSinceEpoch(), LogStream::Out, u"old line %1"_s.arg(i)});
    for (const Run &run : {old, older, recent}) {
        m_store->recordQueued(run);
        m_store->recordLog(run.id, lines);
        m_store->recordFinished(run, [] {});
    }
    m_store->recordQueued(running);
    m_store->recordStarted(running);
    m_store->recordLog(running.id, lines);
    m_store->recordQueued(queued);
    QVERIFY(m_store->flush(30s));
    QVERIFY(m_store->findRun(old.id));
    QCOMPARE(m_store->readLog(old.id).size(), 5);

    const QDateTime before = QDateTime::currentDateTimeUtc();
    const RunResult r = m_engine->run(u"purge-history"_s, {{u"days"_s, 30}}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
    const QJsonObject result = r.run.result.toObject();
    QCOMPARE(result.value(u"deleted"_s).toInt(), 2);
    const QDateTime olderThan = QDateTime::fromString(result.value(u"olderThan"_s).toString(), Qt::ISODateWithMs);
    QVERIFY2(olderThan.isValid(), qPrintable(result.value(u"olderThan"_s).toString()));
    QVERIFY(olderThan >= before.addDays(-30));
    QVERIFY(olderThan <= QDateTime::currentDateTimeUtc().addDays(-30));

    QVERIFY(!m_store->findRun(old.id));
    QVERIFY(!m_store->findRun(older.id));
    QVERIFY(m_store->readLog(old.id).isEmpty());
    QVERIFY(m_store->readLog(older.id).isEmpty());
    QVERIFY(m_store->findRun(recent.id));
    QCOMPARE(m_store->readLog(recent.id).size(), 5);
    QCOMPARE(statusOf(running.id), u"running"_s);
    QCOMPARE(m_store->readLog(running.id).size(), 5);
    QCOMPARE(statusOf(queued.id), u"queued"_s);

    // 0 days: every finished run goes, the first purge included; unfinished ones stay.
    const RunResult all = m_engine->run(u"purge-history"_s, {{u"days"_s, 0}}, confirmed());
    QVERIFY2(all.ok(), qPrintable(all.error.message));
    QVERIFY2(all.run.status == RunStatus::Succeeded, qPrintable(all.run.error.message));
    QCOMPARE(all.run.result.toObject().value(u"deleted"_s).toInt(), 2);
    QVERIFY(!m_store->findRun(recent.id));
    QVERIFY(!m_store->findRun(r.run.id));
    QCOMPARE(statusOf(running.id), u"running"_s);
    QCOMPARE(statusOf(queued.id), u"queued"_s);
    // The purge that did it was running meanwhile, so it is still there.
    QVERIFY(m_store->findRun(all.run.id));
}

void TestHistoryTasks::purgeDaysBounds()
{
    const StartResult negative = m_engine->start(u"purge-history"_s, {{u"days"_s, -1}}, confirmed());
    QCOMPARE(negative.error.code, StartError::Code::InvalidArguments);
    const StartResult tooMany = m_engine->start(u"purge-history"_s, {{u"days"_s, 36501}}, confirmed());
    QCOMPARE(tooMany.error.code, StartError::Code::InvalidArguments);

    // Left out, days takes its default of 30.
    const RunResult r = m_engine->run(u"purge-history"_s, {}, confirmed());
    QVERIFY2(r.ok(), qPrintable(r.error.message));
    QVERIFY2(r.run.status == RunStatus::Succeeded, qPrintable(r.run.error.message));
    QCOMPARE(r.run.args.value(u"days"_s).toInteger(), 30);
    QCOMPARE(r.run.result.toObject().value(u"deleted"_s).toInt(), 0);
}

QTEST_GUILESS_MAIN(TestHistoryTasks)
#include "tst_historytasks.moc"
