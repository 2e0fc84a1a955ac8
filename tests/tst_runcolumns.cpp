// SPDX-License-Identifier: MIT
// The one row-to-Run mapping both history stores read with (RunColumns): columns found by
// name, in any order, a column a store lacks left at its default; and the one filter of a
// RunQuery (runFilter). On an SQLite database in memory, with rows written here.

#include "runcolumns.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QSqlRecord>
#include <QTest>

using namespace Qt::StringLiterals;
using namespace taskdeck;

class TestRunColumns : public QObject
{
    Q_OBJECT

private:
    QSqlDatabase m_db;

    // A table with the run columns in reverse order, an unrelated one in between, and
    // log_missing_from only when \a withLogMissing.
    bool createTable(const QString &name, bool withLogMissing)
    {
        QStringList columns;
        for (int column = RunColumns::kCount - 1; column >= 0; --column) {
            if (column == RunColumns::LogMissingFrom && !withLogMissing)
                continue;
            columns << RunColumns::name(RunColumns::Column(column));
            if (column == RunColumns::Result)
                columns << u"unrelated"_s;
        }
        QSqlQuery q(m_db);
        return q.exec(u"CREATE TABLE %1 (%2)"_s.arg(name, columns.join(u", "_s)));
    }

    bool insert(const QString &table, const QVariantHash &values)
    {
        QSqlQuery q(m_db);
        q.prepare(u"INSERT INTO %1 (%2) VALUES (%3)"_s.arg(
            table, values.keys().join(u", "_s), QStringList(values.size(), u"?"_s).join(u", "_s)));
        for (const QVariant &value : values)
            q.addBindValue(value);
        if (!q.exec())
            qWarning().noquote() << q.lastError().text();
        return !q.lastError().isValid();
    }

private Q_SLOTS:
    void initTestCase()
    {
        m_db = QSqlDatabase::addDatabase(u"QSQLITE"_s, u"runcolumns"_s);
        m_db.setDatabaseName(u":memory:"_s);
        QVERIFY(m_db.open());
    }

    void cleanupTestCase()
    {
        m_db.close();
        m_db = QSqlDatabase();
        QSqlDatabase::removeDatabase(u"runcolumns"_s);
    }

    void everyColumnIsReadByName()
    {
        QVERIFY(createTable(u"runs_all"_s, true));
        const qint64 queued = 1700000000123;
        QVERIFY(insert(u"runs_all"_s, {
            {u"id"_s, u"run-1"_s},
            {u"task"_s, u"backup"_s},
            {u"status"_s, u"retrying"_s},
            {u"attempt"_s, 2},
            {u"max_attempts"_s, 5},
            {u"args"_s, u"{\"format\":\"sql\",\"n\":3}"_s},
            {u"queued_at"_s, queued},
            {u"started_at"_s, queued + 1000},
            {u"finished_at"_s, QVariant(QMetaType::fromType<qint64>())},
            {u"progress_done"_s, 7},
            {u"progress_total"_s, 9},
            {u"progress_message"_s, u"tables"_s},
            {u"result"_s, u"[1,\"two\"]"_s},
            {u"unrelated"_s, u"ignored"_s},
            {u"error_message"_s, u"disk busy"_s},
            {u"error_kind"_s, u"Busy"_s},
            {u"error_detail"_s, u"attempt 1"_s},
            {u"error_transient"_s, 1},
            {u"log_lines"_s, 42},
            {u"owner"_s, u"123@host"_s},
            {u"seq"_s, 77},
            {u"next_attempt_at"_s, queued + 5000},
            {u"log_missing_from"_s, 40},
        }));
        QSqlQuery q(m_db);
        QVERIFY(q.exec(u"SELECT * FROM runs_all"_s));
        QVERIFY(q.next());
        const Run run = RunColumns(q.record()).read(q);
        QCOMPARE(run.id, u"run-1"_s);
        QCOMPARE(run.task, u"backup"_s);
        QCOMPARE(run.status, RunStatus::Retrying);
        QCOMPARE(run.attempt, 2);
        QCOMPARE(run.maxAttempts, 5);
        QCOMPARE(run.args, (QJsonObject{{u"format"_s, u"sql"_s}, {u"n"_s, 3}}));
        QCOMPARE(run.queuedAt, QDateTime::fromMSecsSinceEpoch(queued, Qt::UTC));
        QCOMPARE(run.startedAt.toMSecsSinceEpoch(), queued + 1000);
        QCOMPARE(run.startedAt.timeSpec(), Qt::UTC);
        QVERIFY(!run.finishedAt.isValid());
        QCOMPARE(run.progress, (Progress{7, 9, u"tables"_s}));
        QCOMPARE(run.result, QJsonValue(QJsonArray{1, u"two"_s}));
        QCOMPARE(run.error.message, u"disk busy"_s);
        QCOMPARE(run.error.kind, u"Busy"_s);
        QCOMPARE(run.error.detail, u"attempt 1"_s);
        QCOMPARE(run.error.transient, true);
        QCOMPARE(run.logLines, qint64(42));
        QCOMPARE(run.owner, u"123@host"_s);
        QCOMPARE(run.seq, qint64(77));
        QCOMPARE(run.nextAttemptAt.toMSecsSinceEpoch(), queued + 5000);
        QCOMPARE(run.logMissingFrom, qint64(40));
        // The one-row form finds the same columns.
        QCOMPARE(runFromRecord(q).seq, qint64(77));
    }

    void missingColumnKeepsTheDefault()
    {
        QVERIFY(createTable(u"runs_shared"_s, false));
        QVERIFY(insert(u"runs_shared"_s, {{u"id"_s, u"run-2"_s}, {u"status"_s, u"succeeded"_s}, {u"log_lines"_s, 3},
                                     {u"queued_at"_s, 5}}));
        QSqlQuery q(m_db);
        QVERIFY(q.exec(u"SELECT "_s + runColumnList() + u" FROM runs_shared"_s));
        QVERIFY(q.next());
        const Run run = runFromRecord(q);
        QCOMPARE(run.id, u"run-2"_s);
        QCOMPARE(run.status, RunStatus::Succeeded);
        QCOMPARE(run.logLines, qint64(3));
        QCOMPARE(run.logMissingFrom, qint64(0));
        QVERIFY(run.result.isUndefined());      // null: no result
        QVERIFY(!run.nextAttemptAt.isValid());  // null: no time
        QVERIFY(run.args.isEmpty());
    }

    void listHasTheSharedColumnsOnly()
    {
        const QStringList listed = runColumnList().split(u", "_s);
        QCOMPARE(listed.size(), qsizetype(RunColumns::kShared));
        QCOMPARE(listed.first(), u"id"_s);
        QVERIFY(listed.contains(u"next_attempt_at"_s));
        QVERIFY(!listed.contains(RunColumns::name(RunColumns::LogMissingFrom)));
    }

    void filterSelectsWhatTheQueryAsks()
    {
        QVERIFY(createTable(u"runs_filtered"_s, false));
        const qint64 t0 = 1700000000000;
        int n = 0;
        for (const QString &task : {u"a"_s, u"b"_s}) {
            for (const QString &status : {u"succeeded"_s, u"failed"_s}) {
                for (int minute = 0; minute < 3; ++minute) {
                    QVERIFY(insert(u"runs_filtered"_s, {{u"id"_s, u"r%1"_s.arg(++n)}, {u"task"_s, task},
                                                        {u"status"_s, status}, {u"queued_at"_s, t0 + minute * 60000}}));
                }
            }
        }
        auto count = [&](const RunQuery &query) {
            const RunFilter filter = runFilter(query);
            QSqlQuery q(m_db);
            q.prepare(u"SELECT count(*) FROM runs_filtered"_s + filter.where);
            for (const QVariant &value : filter.values)
                q.addBindValue(value);
            return q.exec() && q.next() ? q.value(0).toInt() : -1;
        };
        QVERIFY(runFilter(RunQuery()).where.isEmpty());
        QCOMPARE(count(RunQuery()), 12);
        RunQuery query;
        query.task = u"b"_s;
        QCOMPARE(count(query), 6);
        query.status = RunStatus::Failed;
        QCOMPARE(count(query), 3);
        query.from = QDateTime::fromMSecsSinceEpoch(t0 + 60000, Qt::UTC);
        QCOMPARE(count(query), 2);
        query.to = QDateTime::fromMSecsSinceEpoch(t0 + 120000, Qt::UTC); // before, not at
        QCOMPARE(count(query), 1);
        QCOMPARE(runFilter(query).values.size(), qsizetype(4));
    }

    void resultsOfEveryJsonType_data()
    {
        QTest::addColumn<QVariant>("stored");
        QTest::addColumn<QJsonValue>("expected");
        QTest::newRow("none") << QVariant(QMetaType::fromType<QString>()) << QJsonValue(QJsonValue::Undefined);
        QTest::newRow("null") << QVariant(u"null"_s) << QJsonValue(QJsonValue::Null);
        QTest::newRow("bool") << QVariant(u"false"_s) << QJsonValue(false);
        QTest::newRow("number") << QVariant(u"2.5"_s) << QJsonValue(2.5);
        QTest::newRow("string") << QVariant(u"\"a,b\""_s) << QJsonValue(u"a,b"_s);
        QTest::newRow("object") << QVariant(u"{\"k\":[true]}"_s) << QJsonValue(QJsonObject{{u"k"_s, QJsonArray{true}}});
        QTest::newRow("damaged") << QVariant(u"{\"k\":"_s) << QJsonValue(QJsonValue::Undefined);
    }

    void resultsOfEveryJsonType()
    {
        QFETCH(QVariant, stored);
        QFETCH(QJsonValue, expected);
        QCOMPARE(runResultFromText(stored), expected);
    }
};

QTEST_GUILESS_MAIN(TestRunColumns)
#include "tst_runcolumns.moc"
