// SPDX-License-Identifier: MIT
#include "taskregistry.h"

#include <QSignalSpy>
#include <QTest>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {
Task task(const QString &key, const QString &category = QString(), const QStringList &tags = {},
          const QString &description = QString())
{
    Task t;
    t.key = key;
    t.title = key.toUpper();
    t.category = category;
    t.tags = tags;
    t.description = description;
    t.fn = [](RunContext &) -> QJsonValue { return {}; };
    return t;
}

QStringList keys(const QList<TaskPtr> &list)
{
    QStringList out;
    for (const auto &t : list)
        out << t->key;
    return out;
}
} // namespace

class TestRegistry : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void addAndFind();
    void refusesBadTasks_data();
    void refusesBadTasks();
    void removeTask();
    void search_data();
    void search();
    void categoriesAndTags();
    void nearestKeys();
    void replaceSource();
};

void TestRegistry::addAndFind()
{
    TaskRegistry registry;
    QSignalSpy changed(&registry, &TaskRegistry::changed);
    QString error;
    QVERIFY(registry.add(task(u"backup"_s, u"maintenance"_s), &error));
    QCOMPARE(changed.size(), 1);
    QCOMPARE(registry.size(), 1);
    QVERIFY(registry.contains(u"backup"_s));
    QCOMPARE(registry.find(u"backup"_s)->title, u"BACKUP"_s);
    QVERIFY(!registry.find(u"other"_s));
    QVERIFY(!registry.add(task(u"backup"_s), &error));
    QVERIFY(error.contains(u"already registered"_s));
    QCOMPARE(registry.size(), 1);
}

void TestRegistry::refusesBadTasks_data()
{
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("expected");
    QTest::newRow("empty key") << 0 << u"must not be empty"_s;
    QTest::newRow("space in key") << 1 << u"accepted: letters, digits"_s;
    QTest::newRow("no function") << 2 << u"has no function"_s;
    QTest::newRow("duplicate field") << 3 << u"two fields named \"x\""_s;
    QTest::newRow("zero attempts") << 4 << u"maxAttempts"_s;
}

void TestRegistry::refusesBadTasks()
{
    QFETCH(int, which);
    QFETCH(QString, expected);
    Task t = task(u"ok"_s);
    switch (which) {
    case 0: t.key.clear(); break;
    case 1: t.key = u"two words"_s; break;
    case 2: t.fn = nullptr; break;
    case 3: t.fields = {Field(u"x"_s, FieldType::Text), Field(u"x"_s, FieldType::Integer)}; break;
    case 4: t.retry.maxAttempts = 0; break;
    }
    TaskRegistry registry;
    QString error;
    QVERIFY(!registry.add(t, &error));
    QVERIFY2(error.contains(expected), qPrintable(error));
    QCOMPARE(registry.size(), 0);
}

void TestRegistry::removeTask()
{
    TaskRegistry registry;
    QVERIFY(registry.add(task(u"a"_s)));
    QVERIFY(registry.remove(u"a"_s));
    QVERIFY(!registry.remove(u"a"_s));
    QCOMPARE(registry.size(), 0);
}

void TestRegistry::search_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("category");
    QTest::addColumn<QString>("tag");
    QTest::addColumn<QStringList>("expected");
    QTest::newRow("all") << QString() << QString() << QString()
                         << QStringList{u"purge"_s, u"backup"_s, u"report"_s};
    QTest::newRow("by key") << u"back"_s << QString() << QString() << QStringList{u"backup"_s};
    QTest::newRow("by description, any case") << u"DATABASE"_s << QString() << QString()
                                              << QStringList{u"backup"_s};
    QTest::newRow("by tag text") << u"nightly"_s << QString() << QString() << QStringList{u"purge"_s, u"backup"_s};
    QTest::newRow("every word must match") << u"nightly db"_s << QString() << QString() << QStringList{u"backup"_s};
    QTest::newRow("category") << QString() << u"maintenance"_s << QString()
                              << QStringList{u"purge"_s, u"backup"_s};
    QTest::newRow("tag") << QString() << QString() << u"db"_s << QStringList{u"backup"_s};
    QTest::newRow("category and text") << u"purge"_s << u"report"_s << QString() << QStringList{};
    QTest::newRow("nothing") << u"zzz"_s << QString() << QString() << QStringList{};
}

void TestRegistry::search()
{
    QFETCH(QString, text);
    QFETCH(QString, category);
    QFETCH(QString, tag);
    QFETCH(QStringList, expected);
    TaskRegistry registry;
    QVERIFY(registry.add(task(u"backup"_s, u"maintenance"_s, {u"db"_s, u"nightly"_s}, u"Backs up the database"_s)));
    QVERIFY(registry.add(task(u"report"_s, u"report"_s, {u"weekly"_s})));
    QVERIFY(registry.add(task(u"purge"_s, u"maintenance"_s, {u"nightly"_s})));
    // Ordered by category, then title ("BACKUP" < "PURGE").
    QStringList got = keys(registry.search(text, category, tag));
    QStringList want = expected;
    if (text.isEmpty() && category.isEmpty() && tag.isEmpty())
        want = {u"backup"_s, u"purge"_s, u"report"_s};
    if (category == u"maintenance"_s || text == u"nightly"_s)
        want = {u"backup"_s, u"purge"_s};
    QCOMPARE(got, want);
}

void TestRegistry::categoriesAndTags()
{
    TaskRegistry registry;
    QVERIFY(registry.add(task(u"a"_s, u"report"_s, {u"x"_s, u"b"_s})));
    QVERIFY(registry.add(task(u"b"_s, u"admin"_s, {u"b"_s})));
    QVERIFY(registry.add(task(u"c"_s)));
    QCOMPARE(registry.categories(), (QStringList{u"admin"_s, u"report"_s}));
    QCOMPARE(registry.tags(), (QStringList{u"b"_s, u"x"_s}));
}

void TestRegistry::nearestKeys()
{
    TaskRegistry registry;
    for (const char *k : {"checksum", "backup", "exec", "disk-usage", "http-check"})
        QVERIFY(registry.add(task(QString::fromLatin1(k))));
    QCOMPARE(registry.nearestKeys(u"chksum"_s).value(0), u"checksum"_s);
    QCOMPARE(registry.nearestKeys(u"bakup"_s).value(0), u"backup"_s);
    QCOMPARE(registry.nearestKeys(u"disk"_s).value(0), u"disk-usage"_s);
    QVERIFY(registry.nearestKeys(u"completely-unrelated-name"_s).isEmpty());
    QVERIFY(registry.nearestKeys(u"e"_s, 2).size() <= 2);
}

void TestRegistry::replaceSource()
{
    TaskRegistry registry;
    QVERIFY(registry.add(task(u"builtin"_s)));
    QString error;
    QVERIFY(registry.replaceSource(u"file.yml"_s, {task(u"one"_s), task(u"two"_s)}, &error));
    QCOMPARE(registry.size(), 3);
    // A reload replaces the source's tasks as a whole.
    QVERIFY(registry.replaceSource(u"file.yml"_s, {task(u"two"_s), task(u"three"_s)}, &error));
    QVERIFY(!registry.contains(u"one"_s));
    QVERIFY(registry.contains(u"three"_s));
    // A clash with a built-in is refused and changes nothing.
    QVERIFY(!registry.replaceSource(u"file.yml"_s, {task(u"builtin"_s)}, &error));
    QVERIFY(error.contains(u"built-in"_s));
    QVERIFY(registry.contains(u"two"_s));
    QVERIFY(!registry.replaceSource(u"other.yml"_s, {task(u"two"_s)}, &error));
    QVERIFY(error.contains(u"file.yml"_s));
    QVERIFY(!registry.replaceSource(u"file.yml"_s, {task(u"dup"_s), task(u"dup"_s)}, &error));
    QVERIFY(error.contains(u"twice"_s));
    QCOMPARE(registry.size(), 3);
    QVERIFY(registry.replaceSource(u"file.yml"_s, {}, &error));
    QCOMPARE(registry.size(), 1);
}

QTEST_GUILESS_MAIN(TestRegistry)
#include "tst_registry.moc"
