// SPDX-License-Identifier: MIT
#include "jsonmodel.h"
#include "resultview.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QFontMetrics>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTest>
#include <QTreeView>

using namespace Qt::StringLiterals;
using namespace taskdeck::ui;

namespace {

QJsonObject nestedResult()
{
    return QJsonObject{
        {u"file"_s, u"backup.sql"_s},
        {u"size"_s, qint64(4611686018427387905LL)},
        {u"ratio"_s, 0.25},
        {u"ok"_s, true},
        {u"note"_s, QJsonValue::Null},
        {u"meta"_s, QJsonObject{{u"host"_s, u"db1"_s},
                                {u"tags"_s, QJsonArray{u"nightly"_s, u"full"_s}}}},
        {u"rows"_s, QJsonArray{QJsonObject{{u"name"_s, u"users"_s}, {u"count"_s, 12}},
                               QJsonObject{{u"name"_s, u"orders"_s}, {u"bytes"_s, 2048},
                                           {u"count"_s, QJsonValue::Null}}}},
    };
}

// The row of \a key under \a parent, by its Key column.
QModelIndex childByKey(const QAbstractItemModel *model, const QString &key,
                       const QModelIndex &parent = QModelIndex())
{
    for (int r = 0; r < model->rowCount(parent); ++r) {
        const QModelIndex i = model->index(r, JsonModel::KeyColumn, parent);
        if (i.data().toString() == key)
            return i;
    }
    return QModelIndex();
}

QString cell(const QModelIndex &keyIndex, int column)
{
    return keyIndex.siblingAtColumn(column).data().toString();
}

} // namespace

class TestResultView final : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void jsonModelShowsNestedValues();
    void jsonModelScalarAndEmpty();
    void jsonModelIsConsistent();
    void jsonModelFetchesInChunks();
    void viewShowsTreeAndRaw();
    void longResultsStayClosed();
    void tableForArrayOfObjects();
    void tableForMemberChoice();
    void noTableForOtherResults();
    void placeholderWhenEmpty();
    void copyPutsJsonOnClipboard();
    void screenshot();
};

void TestResultView::initTestCase()
{
    QVERIFY(QDir().mkpath(QStringLiteral(TASKDECK_SCREENSHOT_DIR)));
}

void TestResultView::jsonModelShowsNestedValues()
{
    JsonModel model;
    model.setJson(nestedResult());
    QCOMPARE(model.columnCount(), 3);
    QCOMPARE(model.headerData(JsonModel::ValueColumn, Qt::Horizontal).toString(), u"Value"_s);
    QCOMPARE(model.rowCount(), 7);

    const QModelIndex file = childByKey(&model, u"file"_s);
    QVERIFY(file.isValid());
    QCOMPARE(cell(file, JsonModel::ValueColumn), u"\"backup.sql\""_s);
    QCOMPARE(cell(file, JsonModel::TypeColumn), u"string"_s);

    const QModelIndex size = childByKey(&model, u"size"_s);
    QCOMPARE(cell(size, JsonModel::ValueColumn), u"4611686018427387905"_s);
    QCOMPARE(cell(size, JsonModel::TypeColumn), u"number"_s);
    QCOMPARE(cell(childByKey(&model, u"ratio"_s), JsonModel::ValueColumn), u"0.25"_s);
    QCOMPARE(cell(childByKey(&model, u"ok"_s), JsonModel::ValueColumn), u"true"_s);

    const QModelIndex note = childByKey(&model, u"note"_s);
    QCOMPARE(cell(note, JsonModel::ValueColumn), u"null"_s);
    QCOMPARE(note.siblingAtColumn(JsonModel::ValueColumn).data(Qt::ForegroundRole).value<QColor>(),
             QGuiApplication::palette().color(QPalette::PlaceholderText));
    QVERIFY(!file.siblingAtColumn(JsonModel::ValueColumn).data(Qt::ForegroundRole).isValid());

    const QModelIndex meta = childByKey(&model, u"meta"_s);
    QCOMPARE(cell(meta, JsonModel::TypeColumn), u"object"_s);
    QVERIFY(model.hasChildren(meta));
    QCOMPARE(model.rowCount(meta), 2);
    const QModelIndex host = childByKey(&model, u"host"_s, meta);
    QCOMPARE(cell(host, JsonModel::ValueColumn), u"\"db1\""_s);
    QCOMPARE(model.parent(host), meta);

    const QModelIndex tags = childByKey(&model, u"tags"_s, meta);
    QCOMPARE(cell(tags, JsonModel::TypeColumn), u"array"_s);
    QCOMPARE(model.rowCount(tags), 2);
    const QModelIndex second = model.index(1, JsonModel::KeyColumn, tags);
    QCOMPARE(second.data().toString(), u"[1]"_s);
    QCOMPARE(cell(second, JsonModel::ValueColumn), u"\"full\""_s);
    QCOMPARE(model.parent(second), tags);
    QCOMPARE(model.parent(model.parent(second)), meta);
    QCOMPARE(second.data(JsonModel::JsonValueRole).value<QJsonValue>(), QJsonValue(u"full"_s));

    const QModelIndex rows = childByKey(&model, u"rows"_s);
    QCOMPARE(cell(rows, JsonModel::ValueColumn), u"[2 items]"_s);
    const QModelIndex row0 = model.index(0, 0, rows);
    QCOMPARE(cell(childByKey(&model, u"count"_s, row0), JsonModel::ValueColumn), u"12"_s);

    // Leaves have no children.
    QVERIFY(!model.hasChildren(file));
    QCOMPARE(model.rowCount(file), 0);
}

void TestResultView::jsonModelScalarAndEmpty()
{
    JsonModel model;
    model.setJson(QJsonValue(u"done\nwith two lines"_s));
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(cell(model.index(0, 0), JsonModel::ValueColumn), u"\"done…\""_s);
    QCOMPARE(model.index(0, JsonModel::ValueColumn).data(Qt::ToolTipRole).toString(),
             u"done\nwith two lines"_s);

    model.setJson(QJsonValue(QJsonValue::Undefined));
    QCOMPARE(model.rowCount(), 0);
    model.setJson(QJsonArray{1, 2, 3});
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.index(2, 0).data().toString(), u"[2]"_s);
    QCOMPARE(cell(model.index(2, 0), JsonModel::ValueColumn), u"3"_s);
}

void TestResultView::jsonModelIsConsistent()
{
    // Walks every index both ways: parent(index(r, c, p)) == p everywhere.
    JsonModel model;
    model.setJson(nestedResult());
    int visited = 0;
    std::function<void(const QModelIndex &)> walk = [&](const QModelIndex &parent) {
        for (int r = 0; r < model.rowCount(parent); ++r) {
            for (int c = 0; c < model.columnCount(parent); ++c) {
                const QModelIndex i = model.index(r, c, parent);
                QVERIFY(i.isValid());
                QCOMPARE(model.parent(i), parent);
                ++visited;
            }
            walk(model.index(r, 0, parent));
        }
    };
    walk(QModelIndex());
    QVERIFY(visited > 40);
    QVERIFY(!model.index(99, 0).isValid());
    QVERIFY(!model.index(0, 3).isValid());
}

void TestResultView::jsonModelFetchesInChunks()
{
    JsonModel model;
    QJsonArray items;
    for (int i = 0; i < 1234; ++i)
        items.append(i * 2);
    QJsonObject wide;
    for (int i = 0; i < 700; ++i)
        wide.insert(u"k%1"_s.arg(i, 4, 10, QChar(u'0')), i);
    model.setJson(QJsonObject{{u"items"_s, items}, {u"wide"_s, wide}});
    const QModelIndex list = childByKey(&model, u"items"_s);
    QVERIFY(model.hasChildren(list));
    QCOMPARE(model.rowCount(list), 500);
    QVERIFY(model.canFetchMore(list));
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    model.fetchMore(list);
    QCOMPARE(model.rowCount(list), 1000);
    QCOMPARE(inserted.count(), 1);
    QCOMPARE(inserted.at(0).at(0).value<QModelIndex>(), list);
    QCOMPARE(inserted.at(0).at(1).toInt(), 500);
    QCOMPARE(inserted.at(0).at(2).toInt(), 999);
    model.fetchMore(list);
    QCOMPARE(model.rowCount(list), 1234);
    QVERIFY(!model.canFetchMore(list));
    const QModelIndex last = model.index(1233, 0, list);
    QCOMPARE(last.data().toString(), u"[1233]"_s);
    QCOMPARE(cell(last, JsonModel::ValueColumn), u"2466"_s);
    QCOMPARE(model.parent(last), list);

    const QModelIndex keys = childByKey(&model, u"wide"_s);
    QCOMPARE(model.rowCount(keys), 500);
    model.fetchMore(keys);
    QCOMPARE(model.rowCount(keys), 700);
    QCOMPARE(model.index(699, 0, keys).data().toString(), u"k0699"_s);
    QCOMPARE(cell(model.index(600, 0, keys), JsonModel::ValueColumn), u"600"_s);
}

void TestResultView::viewShowsTreeAndRaw()
{
    ResultView view;
    view.resize(700, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setResult(nestedResult());
    QVERIFY(!view.isEmpty());

    QAbstractItemModel *model = view.treeView()->model();
    const QModelIndex meta = childByKey(model, u"meta"_s);
    QVERIFY(view.treeView()->isExpanded(meta));
    const QModelIndex tags = childByKey(model, u"tags"_s, meta);
    // Two levels open: the top-level members and their children.
    QVERIFY(view.treeView()->isExpanded(tags));
    QVERIFY(view.treeView()->isExpanded(model->index(0, 0, childByKey(model, u"rows"_s))));
    QCOMPARE(cell(childByKey(model, u"host"_s, meta), JsonModel::ValueColumn), u"\"db1\""_s);

    const QString raw = view.rawView()->toPlainText();
    QVERIFY(view.rawView()->isReadOnly());
    QVERIFY(raw.contains(u"\"size\": 4611686018427387905"_s));
    QCOMPARE(QJsonDocument::fromJson(raw.toUtf8()).object(), nestedResult());
    // Monospaced, so the JSON's indents line up. Measured: Qt 6.4 calls some monospaced fonts
    // (Noto Sans Mono) proportional in QFontInfo::fixedPitch().
    const QFontMetrics metrics(view.rawView()->font());
    QCOMPARE(metrics.horizontalAdvance(u"iiiiiiiiii"_s), metrics.horizontalAdvance(u"WWWWWWWWWW"_s));
    QCOMPARE(metrics.horizontalAdvance(u"          "_s), metrics.horizontalAdvance(u"{}[]:,\"0-9"_s));
}

void TestResultView::longResultsStayClosed()
{
    ResultView view;
    QJsonArray items;
    for (int i = 0; i < 1000; ++i)
        items.append(QJsonObject{{u"id"_s, i}, {u"name"_s, u"item"_s}});
    view.setResult(QJsonObject{{u"items"_s, items}, {u"total"_s, 1000}});
    QAbstractItemModel *model = view.treeView()->model();
    const QModelIndex list = childByKey(model, u"items"_s);
    QVERIFY(list.isValid());
    QVERIFY(!view.treeView()->isExpanded(list));
    QCOMPARE(model->rowCount(list), int(JsonModel::FetchChunk));
    while (model->canFetchMore(list))
        model->fetchMore(list);
    QCOMPARE(model->rowCount(list), 1000);
    QCOMPARE(cell(childByKey(model, u"id"_s, model->index(999, 0, list)), JsonModel::ValueColumn),
             u"999"_s);
    QCOMPARE(view.tableView()->model()->rowCount(), 1000);
}

void TestResultView::tableForArrayOfObjects()
{
    ResultView view;
    const QJsonArray people{QJsonObject{{u"name"_s, u"Ada"_s}, {u"age"_s, 36}},
                            QJsonObject{{u"name"_s, u"Linus"_s}, {u"city"_s, u"Helsinki"_s}},
                            QJsonObject{{u"age"_s, QJsonValue::Null}}};
    view.setResult(people);
    QVERIFY(view.isTableAvailable());
    QAbstractItemModel *table = view.tableView()->model();
    QCOMPARE(table->rowCount(), 3);
    QCOMPARE(table->columnCount(), 3);
    // Union of keys in order of first appearance (each object's keys come sorted).
    QCOMPARE(table->headerData(0, Qt::Horizontal).toString(), u"age"_s);
    QCOMPARE(table->headerData(1, Qt::Horizontal).toString(), u"name"_s);
    QCOMPARE(table->headerData(2, Qt::Horizontal).toString(), u"city"_s);
    QCOMPARE(table->index(0, 1).data().toString(), u"Ada"_s);
    QCOMPARE(table->index(0, 0).data().toString(), u"36"_s);
    QCOMPARE(table->index(1, 2).data().toString(), u"Helsinki"_s);
    QCOMPARE(table->index(1, 0).data().toString(), QString()); // missing key
    QCOMPARE(table->index(2, 0).data().toString(), u"null"_s);
    QVERIFY(table->index(2, 0).data(Qt::ForegroundRole).isValid());
    QVERIFY(view.tableSourceBox()->isHidden());
}

void TestResultView::tableForMemberChoice()
{
    ResultView view;
    view.setResult(nestedResult());
    QVERIFY(view.isTableAvailable());
    QAbstractItemModel *table = view.tableView()->model();
    QCOMPARE(table->rowCount(), 2);
    QCOMPARE(table->headerData(0, Qt::Horizontal).toString(), u"count"_s);
    QCOMPARE(table->headerData(1, Qt::Horizontal).toString(), u"name"_s);
    QCOMPARE(table->headerData(2, Qt::Horizontal).toString(), u"bytes"_s);
    QCOMPARE(table->index(1, 1).data().toString(), u"orders"_s);
    QCOMPARE(table->index(1, 2).data().toString(), u"2048"_s);

    QJsonObject two = nestedResult();
    two.insert(u"hosts"_s, QJsonArray{QJsonObject{{u"ip"_s, u"10.0.0.1"_s}}});
    view.setResult(two);
    QCOMPARE(view.tableSourceBox()->count(), 2);
    QVERIFY(!view.tableSourceBox()->isHidden());
    QCOMPARE(view.tableSourceBox()->currentText(), u"hosts"_s);
    QCOMPARE(table->index(0, 0).data().toString(), u"10.0.0.1"_s);
    view.tableSourceBox()->setCurrentIndex(1);
    QCOMPARE(table->rowCount(), 2);
    QCOMPARE(table->index(0, 1).data().toString(), u"users"_s);
}

void TestResultView::noTableForOtherResults()
{
    ResultView view;
    view.setResult(QJsonArray{1, 2});
    QVERIFY(!view.isTableAvailable());
    view.setResult(QJsonObject{{u"a"_s, QJsonArray{QJsonObject{}, 3}}});
    QVERIFY(!view.isTableAvailable());
    QCOMPARE(view.tableView()->model()->rowCount(), 0);
}

void TestResultView::placeholderWhenEmpty()
{
    ResultView view;
    QVERIFY(view.isEmpty());
    QVERIFY(!view.copyButton()->isEnabled());
    view.setResult(QJsonObject{{u"x"_s, 1}});
    QVERIFY(!view.isEmpty());
    QVERIFY(view.copyButton()->isEnabled());
    view.clear();
    QVERIFY(view.isEmpty());
    QCOMPARE(view.treeView()->model()->rowCount(), 0);
    view.setResult(QJsonValue::Null);
    QVERIFY(view.isEmpty());
    view.setResult(0);
    QVERIFY(!view.isEmpty());
    QCOMPARE(view.rawView()->toPlainText(), u"0"_s);
}

void TestResultView::copyPutsJsonOnClipboard()
{
    ResultView view;
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QGuiApplication::clipboard()->setText(u"before"_s);
    view.setResult(nestedResult());
    QTest::mouseClick(view.copyButton(), Qt::LeftButton);
    const QString copied = QGuiApplication::clipboard()->text();
    QVERIFY(copied.contains(u"4611686018427387905"_s));
    QCOMPARE(QJsonDocument::fromJson(copied.toUtf8()).object(), nestedResult());

    view.setResult(QJsonValue(u"quote \" and\nnewline"_s));
    view.copyToClipboard();
    QCOMPARE(QGuiApplication::clipboard()->text(), u"\"quote \\\" and\\nnewline\""_s);
}

void TestResultView::screenshot()
{
    ResultView view;
    view.resize(720, 420);
    view.setResult(nestedResult());
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    const QString dir = QStringLiteral(TASKDECK_SCREENSHOT_DIR);
    QVERIFY(view.grab().save(dir + u"/resultview-tree.png"_s));
    view.tabs()->setCurrentWidget(view.tableView()->parentWidget());
    QVERIFY(view.grab().save(dir + u"/resultview-table.png"_s));
    view.tabs()->setCurrentWidget(view.rawView());
    QVERIFY(view.grab().save(dir + u"/resultview-raw.png"_s));
}

QTEST_MAIN(TestResultView)
#include "tst_resultview.moc"
