// SPDX-License-Identifier: MIT
// The desktop UI's item models (tasks, active runs, history), the task browser and the runs
// panel, through the real widgets, offscreen.
#include "historymodel.h"
#include "progressdelegate.h"
#include "runcontext.h"
#include "runowner.h"
#include "runsmodel.h"
#include "runspanel.h"
#include "runstorenotifier.h"
#include "sqliterunstore.h"
#include "taskbrowser.h"
#include "taskengine.h"
#include "taskicons.h"
#include "taskmodel.h"
#include "taskregistry.h"
#include "testsupport.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QGuiApplication>
#include <QPalette>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QProcess>
#include <QPushButton>
#include <QScopeGuard>
#include <QSemaphore>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabBar>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <atomic>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;
using namespace taskdeck::ui;
using testsupport::makeTask;
using testsupport::openStore;

namespace {

constexpr int kWait = 30000;

Task describedTask(const QString &key, const QString &title, const QString &category,
                   const QStringList &tags = {}, const QString &description = {})
{
    Task task = makeTask(key, [](RunContext &) -> QJsonValue { return QJsonValue(); });
    task.title = title;
    task.category = category;
    task.tags = tags;
    task.description = description;
    return task;
}

QList<Task> sampleTasks()
{
    Task backup = describedTask(u"db.backup"_s, u"Database Backup"_s, u"maintenance"_s,
                                {u"db"_s, u"nightly"_s}, u"Dumps the database to a file."_s);
    backup.expensive = true;
    backup.icon = u"database"_s;
    Task wipe = describedTask(u"cache.wipe"_s, u"Wipe Cache"_s, u"maintenance"_s, {u"disk"_s},
                              u"Removes every cached file."_s);
    wipe.danger = u"Deletes the cache."_s;
    wipe.icon = u"trash"_s;
    Task checksum = describedTask(u"checksum"_s, u"File Checksum"_s, u"data"_s,
                                  {u"file"_s, u"hash"_s}, u"Computes a digest of a file."_s);
    checksum.icon = u"fingerprint"_s;
    Task http = describedTask(u"http.check"_s, u"HTTP Check"_s, u"admin"_s, {u"net"_s},
                              u"Fetches a URL and reports the status."_s);
    http.icon = u"globe"_s;
    Task hello = describedTask(u"hello"_s, u"Hello"_s, QString(), {}, u"Says hello."_s);
    hello.icon = u"no-such-icon-anywhere"_s;
    return {backup, wipe, checksum, http, hello};
}

QStringList childTitles(const QAbstractItemModel &model, const QModelIndex &parent)
{
    QStringList titles;
    for (int row = 0; row < model.rowCount(parent); ++row)
        titles.append(model.index(row, 0, parent).data().toString());
    return titles;
}

QStringList shownKeys(const QAbstractItemModel &model)
{
    QStringList keys;
    for (int c = 0; c < model.rowCount(); ++c) {
        const QModelIndex category = model.index(c, 0);
        for (int row = 0; row < model.rowCount(category); ++row)
            keys.append(model.index(row, 0, category).data(TaskModel::KeyRole).toString());
    }
    keys.sort();
    return keys;
}

QString screenshotDir()
{
    QString dir = qEnvironmentVariable("TASKDECK_SCREENSHOT_DIR");
    if (dir.isEmpty())
        dir = QStringLiteral(TASKDECK_SCREENSHOT_DIR);
    QDir().mkpath(dir);
    return dir;
}

Run finishedRun(const QString &id, const QString &task, RunStatus status, const QDateTime &queuedAt)
{
    Run run;
    run.id = id;
    run.task = task;
    run.status = status;
    run.queuedAt = queuedAt;
    run.attempt = 1;
    run.startedAt = queuedAt.addSecs(1);
    run.finishedAt = queuedAt.addSecs(3);
    run.owner = u"1@tst-uimodels.invalid#1"_s;
    return run;
}

int statusAt(const QAbstractItemModel &model, int row)
{
    return model.index(row, 0).data(RunTableModel::StatusRole).toInt();
}

} // namespace

class TestUiModels final : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void iconsForEveryTask();
    void taskModelGroupsAndSorts();
    void taskModelFollowsRegistry();
    void proxyFilters_data();
    void proxyFilters();
    void browserSearchesAndActivates();
    void browserShowsTasksFileErrors();

    void activeRunsFollowEngine();
    void activeRunsShowRetrying();
    void activeRunsCoalesceProgress();
    void activeRunsKeepBoundedFinished();

    void historyPagesAndFilters();
    void historyShowsRunsOfAnotherStore();
    void historyShowsRunsOfAnotherProcess();
    void historyIgnoresLateAnswers();
    void historyModelsComeAndGo();

    void runsPanelRequestsCancelAndRerun();
    void runsPanelSavesState();
};

void TestUiModels::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
}

void TestUiModels::iconsForEveryTask()
{
    // Every icon name the shipped tasks use is drawn by us, so it shows on any desktop.
    for (const QString &name : bundledTaskIconNames()) {
        QVERIFY2(QFileInfo::exists(u":/icons/tasks/"_s + name + u".svg"_s), qPrintable(name));
        QVERIFY2(!taskIcon(name).pixmap(16, 16).isNull(), qPrintable(name));
    }
    QVERIFY(!taskIcon(u"no-such-icon-anywhere"_s).pixmap(16, 16).isNull());
    QVERIFY(!taskIcon(QString()).pixmap(16, 16).isNull());
    QVERIFY(!dangerBadgeIcon().pixmap(16, 16).isNull());
    QVERIFY(!expensiveBadgeIcon().pixmap(16, 16).isNull());
    for (const QString &status : runStatusNames())
        QVERIFY(!runStatusIcon(*runStatusFromName(status)).pixmap(16, 16).isNull());
    // Our drawing is the theme-less fallback: its pixels are not all transparent.
    const QImage image = taskIcon(u"database"_s).pixmap(24, 24).toImage();
    bool painted = false;
    for (int y = 0; y < image.height() && !painted; ++y) {
        for (int x = 0; x < image.width() && !painted; ++x)
            painted = qAlpha(image.pixel(x, y)) > 0;
    }
    QVERIFY(painted);
    // Selected, the drawing takes the highlighted text's colour: the normal blue would all but
    // vanish on the selection's highlight. At the sizes views ask for.
    const QColor text = QGuiApplication::palette().color(QPalette::HighlightedText);
    for (const int size : {16, 22, 24, 32}) {
        const QImage selected = taskIcon(u"pie-chart"_s).pixmap(size, size, QIcon::Selected).toImage();
        const QImage normal = taskIcon(u"pie-chart"_s).pixmap(size, size, QIcon::Normal).toImage();
        int drawn = 0;
        for (int y = 0; y < selected.height(); ++y) {
            for (int x = 0; x < selected.width(); ++x) {
                const QColor pixel = selected.pixelColor(x, y);
                if (pixel.alpha() < 128)
                    continue;
                ++drawn;
                QVERIFY2(qAbs(pixel.red() - text.red()) + qAbs(pixel.green() - text.green())
                             + qAbs(pixel.blue() - text.blue()) < 48,
                         qPrintable(pixel.name()));
                QVERIFY(normal.pixelColor(x, y).rgb() != pixel.rgb());
            }
        }
        QVERIFY2(drawn > 0, qPrintable(QString::number(size)));
    }
}

void TestUiModels::taskModelGroupsAndSorts()
{
    TaskRegistry registry;
    for (const Task &task : sampleTasks())
        QVERIFY(registry.add(task));
    TaskModel model(&registry);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);

    QCOMPARE(childTitles(model, {}), (QStringList{u"admin"_s, u"data"_s, u"maintenance"_s, u"Uncategorised"_s}));
    const QModelIndex maintenance = model.index(2, 0);
    QVERIFY(maintenance.data(TaskModel::IsCategoryRole).toBool());
    QCOMPARE(childTitles(model, maintenance), (QStringList{u"Database Backup"_s, u"Wipe Cache"_s}));
    QCOMPARE(model.index(3, 0).data(TaskModel::CategoryRole).toString(), QString());

    const QModelIndex backup = model.indexForKey(u"db.backup"_s);
    QVERIFY(backup.isValid());
    QCOMPARE(backup.parent(), maintenance);
    QCOMPARE(backup.data().toString(), u"Database Backup"_s);
    QCOMPARE(backup.data(TaskModel::KeyRole).toString(), u"db.backup"_s);
    QVERIFY(backup.data(TaskModel::ExpensiveRole).toBool());
    QVERIFY(!backup.data(TaskModel::DangerRole).toBool());
    QCOMPARE(backup.data(TaskModel::TagsRole).toStringList(), (QStringList{u"db"_s, u"nightly"_s}));
    QCOMPARE(backup.data(TaskModel::DescriptionRole).toString(), u"Dumps the database to a file."_s);
    QVERIFY(backup.data(Qt::ToolTipRole).toString().contains(u"db.backup"_s));
    QVERIFY(backup.data(Qt::ToolTipRole).toString().contains(u"nightly"_s));
    QVERIFY(!backup.data(Qt::DecorationRole).value<QIcon>().isNull());
    QVERIFY(model.indexForKey(u"cache.wipe"_s).data(TaskModel::DangerRole).toBool());
    QVERIFY(!model.indexForKey(u"nope"_s).isValid());
    QCOMPARE(model.tags(), (QStringList{u"db"_s, u"disk"_s, u"file"_s, u"hash"_s, u"net"_s, u"nightly"_s}));
}

void TestUiModels::taskModelFollowsRegistry()
{
    TaskRegistry registry;
    QList<Task> tasks = sampleTasks();
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    TaskModel model(&registry);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removed(&model, &QAbstractItemModel::rowsRemoved);
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    const QPersistentModelIndex wipe(model.indexForKey(u"cache.wipe"_s));
    QVERIFY(wipe.isValid());

    // Add a task sorting before Wipe Cache in its category: one row inserted there.
    tasks.append(describedTask(u"logs.rotate"_s, u"Rotate Logs"_s, u"maintenance"_s));
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(inserted.size(), 1);
    QCOMPARE(inserted.at(0).at(0).value<QModelIndex>(), model.index(2, 0));
    QCOMPARE(inserted.at(0).at(1).toInt(), 1);
    QCOMPARE(childTitles(model, model.index(2, 0)),
             (QStringList{u"Database Backup"_s, u"Rotate Logs"_s, u"Wipe Cache"_s}));
    QVERIFY(wipe.isValid());
    QCOMPARE(wipe.data(TaskModel::KeyRole).toString(), u"cache.wipe"_s);
    QCOMPARE(wipe.row(), 2);

    // Change a task's description: its row changes in place.
    tasks[2].description = u"Hashes a file with the chosen algorithm."_s;
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(changed.size(), 1);
    QCOMPARE(changed.at(0).at(0).value<QModelIndex>(), model.indexForKey(u"checksum"_s));
    QCOMPARE(model.indexForKey(u"checksum"_s).data(TaskModel::DescriptionRole).toString(),
             u"Hashes a file with the chosen algorithm."_s);
    QCOMPARE(inserted.size(), 1);
    QCOMPARE(removed.size(), 0);

    // A new category appears at its place.
    tasks.append(describedTask(u"build"_s, u"Build"_s, u"ci"_s));
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(inserted.size(), 2);
    QVERIFY(!inserted.at(1).at(0).value<QModelIndex>().isValid());
    QCOMPARE(childTitles(model, {}), (QStringList{u"admin"_s, u"ci"_s, u"data"_s, u"maintenance"_s, u"Uncategorised"_s}));

    // Remove a task; then the last task of a category, which takes the category along.
    tasks.removeIf([](const Task &t) { return t.key == u"logs.rotate"_s; });
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(removed.size(), 1);
    QCOMPARE(childTitles(model, model.index(3, 0)), (QStringList{u"Database Backup"_s, u"Wipe Cache"_s}));
    tasks.removeIf([](const Task &t) { return t.key == u"http.check"_s; });
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(childTitles(model, {}), (QStringList{u"ci"_s, u"data"_s, u"maintenance"_s, u"Uncategorised"_s}));

    // A retitled task moves to its new place.
    tasks[1].title = u"Aardvark Cache Wipe"_s;
    QVERIFY(registry.replaceSource(u"tasks.yml"_s, tasks));
    QCOMPARE(childTitles(model, model.index(2, 0)), (QStringList{u"Aardvark Cache Wipe"_s, u"Database Backup"_s}));

    // Tasks outside the file's source count too.
    QVERIFY(registry.add(describedTask(u"adhoc"_s, u"Ad Hoc"_s, u"data"_s)));
    QCOMPARE(childTitles(model, model.index(1, 0)), (QStringList{u"Ad Hoc"_s, u"File Checksum"_s}));
    QVERIFY(registry.remove(u"adhoc"_s));
    QCOMPARE(childTitles(model, model.index(1, 0)), (QStringList{u"File Checksum"_s}));

    QCOMPARE(resets.size(), 0);
}

void TestUiModels::proxyFilters_data()
{
    QTest::addColumn<QString>("search");
    QTest::addColumn<QString>("tag");
    QTest::addColumn<QString>("category");
    QTest::addColumn<QStringList>("keys");

    const QStringList all{u"cache.wipe"_s, u"checksum"_s, u"db.backup"_s, u"hello"_s, u"http.check"_s};
    QTest::newRow("nothing") << QString() << QString() << QString() << all;
    QTest::newRow("title word") << u"backup"_s << QString() << QString() << QStringList{u"db.backup"_s};
    QTest::newRow("key part") << u"HTTP.CH"_s << QString() << QString() << QStringList{u"http.check"_s};
    QTest::newRow("description") << u"digest"_s << QString() << QString() << QStringList{u"checksum"_s};
    QTest::newRow("tag word") << u"nightly"_s << QString() << QString() << QStringList{u"db.backup"_s};
    QTest::newRow("all words") << u"file  cache"_s << QString() << QString() << QStringList{u"cache.wipe"_s};
    QTest::newRow("words in different fields") << u"hash computes"_s << QString() << QString()
                                               << QStringList{u"checksum"_s};
    QTest::newRow("no match") << u"backup zebra"_s << QString() << QString() << QStringList{};
    QTest::newRow("tag") << QString() << u"disk"_s << QString() << QStringList{u"cache.wipe"_s};
    QTest::newRow("category") << QString() << QString() << u"maintenance"_s
                              << QStringList{u"cache.wipe"_s, u"db.backup"_s};
    QTest::newRow("category and words") << u"file"_s << QString() << u"maintenance"_s
                                        << QStringList{u"cache.wipe"_s, u"db.backup"_s};
    QTest::newRow("tag and words") << u"file"_s << u"hash"_s << QString() << QStringList{u"checksum"_s};
}

void TestUiModels::proxyFilters()
{
    QFETCH(QString, search);
    QFETCH(QString, tag);
    QFETCH(QString, category);
    QFETCH(QStringList, keys);

    TaskRegistry registry;
    for (const Task &task : sampleTasks())
        QVERIFY(registry.add(task));
    TaskModel model(&registry);
    TaskFilterProxy proxy;
    proxy.setSourceModel(&model);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    proxy.setSearchText(search);
    proxy.setTag(tag);
    proxy.setCategory(category);
    QCOMPARE(shownKeys(proxy), keys);
    // No empty category stays.
    for (int c = 0; c < proxy.rowCount(); ++c)
        QVERIFY(proxy.rowCount(proxy.index(c, 0)) > 0);
    // Clearing brings everything back.
    proxy.setSearchText(QString());
    proxy.setTag(QString());
    proxy.setCategory(QString());
    QCOMPARE(shownKeys(proxy).size(), 5);
    QCOMPARE(proxy.rowCount(), 4);
}

void TestUiModels::browserSearchesAndActivates()
{
    TaskRegistry registry;
    for (const Task &task : sampleTasks())
        QVERIFY(registry.add(task));
    TaskModel model(&registry);
    TaskBrowser browser(&model);
    browser.resize(320, 420);
    browser.show();
    QVERIFY(QTest::qWaitForWindowExposed(&browser));
    QSignalSpy activated(&browser, &TaskBrowser::taskActivated);
    QSignalSpy current(&browser, &TaskBrowser::currentTaskChanged);
    QTreeView *tree = browser.treeView();
    QVERIFY(tree->isHeaderHidden());
    QVERIFY(tree->isExpanded(tree->model()->index(0, 0)));
    QCOMPARE(browser.searchField()->placeholderText(), u"Search tasks (Ctrl+F)"_s);

    const QString shot = screenshotDir() + u"/taskbrowser.png"_s;
    QVERIFY(browser.grab().save(shot));

    // Typing filters at once.
    browser.focusSearch();
    QTest::keyClicks(browser.searchField(), u"chec"_s);
    QCOMPARE(shownKeys(*tree->model()), (QStringList{u"checksum"_s, u"http.check"_s}));
    QTest::keyClicks(browser.searchField(), u"ksum"_s);
    QCOMPARE(shownKeys(*tree->model()), (QStringList{u"checksum"_s}));

    // Enter in the search activates the match.
    QTest::keyClick(browser.searchField(), Qt::Key_Return);
    QCOMPARE(activated.size(), 1);
    QCOMPARE(activated.at(0).at(0).toString(), u"checksum"_s);

    // Down moves into the tree on the first match; Enter there activates.
    browser.searchField()->clear();
    QCOMPARE(shownKeys(*tree->model()).size(), 5);
    QTest::keyClicks(browser.searchField(), u"file"_s);
    QTest::keyClick(browser.searchField(), Qt::Key_Down);
    QVERIFY(tree->hasFocus());
    QCOMPARE(browser.currentTaskKey(), u"checksum"_s);
    QTest::keyClick(tree, Qt::Key_Down); // the "maintenance" category
    QCOMPARE(browser.currentTaskKey(), QString());
    QTest::keyClick(tree, Qt::Key_Down);
    QCOMPARE(browser.currentTaskKey(), u"db.backup"_s);
    QCOMPARE(current.last().at(0).toString(), u"db.backup"_s);
    QTest::keyClick(tree, Qt::Key_Return);
    QCOMPARE(activated.size(), 2);
    QCOMPARE(activated.at(1).at(0).toString(), u"db.backup"_s);

    // Typing in the tree jumps to a matching title.
    browser.searchField()->clear();
    tree->setFocus();
    QTest::keyClicks(tree, u"Wipe"_s);
    QCOMPARE(browser.currentTaskKey(), u"cache.wipe"_s);

    // Ctrl+F from the tree returns to the search.
    QTest::keyClick(tree, Qt::Key_F, Qt::ControlModifier);
    QVERIFY(browser.searchField()->hasFocus());

    // The tag filter.
    browser.searchField()->clear();
    QComboBox *tags = browser.tagFilter();
    const int net = tags->findText(u"net"_s);
    QVERIFY(net > 0);
    tags->setCurrentIndex(net);
    Q_EMIT tags->activated(net);
    QCOMPARE(shownKeys(*tree->model()), (QStringList{u"http.check"_s}));
    // selectTask() of a hidden task clears the filters.
    browser.selectTask(u"db.backup"_s);
    QCOMPARE(browser.currentTaskKey(), u"db.backup"_s);
    QCOMPARE(shownKeys(*tree->model()).size(), 5);
    QCOMPARE(tags->currentIndex(), 0);

    // Double click on a row activates it.
    const QModelIndex wipe = tree->model()->index(2, 0).model()->index(1, 0, tree->model()->index(2, 0));
    QCOMPARE(wipe.data(TaskModel::KeyRole).toString(), u"cache.wipe"_s);
    const QPoint centre = tree->visualRect(wipe).center();
    QTest::mouseClick(tree->viewport(), Qt::LeftButton, {}, centre);
    QTest::mouseDClick(tree->viewport(), Qt::LeftButton, {}, centre);
    QCOMPARE(activated.last().at(0).toString(), u"cache.wipe"_s);

    // A task added while the browser shows keeps the selection where it was.
    QVERIFY(registry.add(describedTask(u"aaa"_s, u"AAA first"_s, u"maintenance"_s)));
    QCOMPARE(browser.currentTaskKey(), u"cache.wipe"_s);
}

void TestUiModels::browserShowsTasksFileErrors()
{
    TaskRegistry registry;
    TaskModel model(&registry);
    TaskBrowser browser(&model);
    browser.resize(320, 300);
    browser.show();
    QVERIFY(QTest::qWaitForWindowExposed(&browser));
    QVERIFY(!browser.errorArea()->isVisible());
    browser.setTasksFileErrors({u"taskdeck.yml:12:5: unknown field type 'nmber'"_s,
                                u"taskdeck.yml:30:1: duplicate key 'hello'"_s});
    QVERIFY(browser.errorArea()->isVisible());
    QVERIFY(browser.errorArea()->text().contains(u"taskdeck.yml:12:5: unknown field type"_s));
    QVERIFY(browser.errorArea()->text().contains(u"taskdeck.yml:30:1"_s));
    QVERIFY(browser.errorArea()->geometry().bottom() <= browser.treeView()->geometry().top());
    QVERIFY(browser.grab().save(screenshotDir() + u"/taskbrowser-errors.png"_s));
    browser.setTasksFileErrors({});
    QVERIFY(!browser.errorArea()->isVisible());
}

void TestUiModels::activeRunsFollowEngine()
{
    TaskRegistry registry;
    QSemaphore gate;
    std::atomic<bool> reported{false};
    Task slow = makeTask(u"slow"_s, [&](RunContext &ctx) -> QJsonValue {
        ctx.progress(50, 100, u"half way"_s);
        reported = true;
        gate.acquire();
        ctx.progress(100, 100, u"done"_s);
        return QJsonValue(1);
    });
    slow.title = u"Slow Job"_s;
    QVERIFY(registry.add(slow));
    EngineConfig config;
    config.maxConcurrent = 1;
    TaskEngine engine(&registry, config);
    auto release = qScopeGuard([&gate] { gate.release(10); });
    ActiveRunsModel model(&engine);
    model.setProgressInterval(10ms);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);

    const StartResult first = engine.start(u"slow"_s, {});
    const StartResult second = engine.start(u"slow"_s, {});
    QVERIFY(first.ok() && second.ok());
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 2, kWait);
    // Newest first: the second run on top, still queued behind the first.
    QCOMPARE(model.index(0, 0).data(RunTableModel::RunIdRole).toString(), second.runId);
    QCOMPARE(model.index(1, 0).data(RunTableModel::RunIdRole).toString(), first.runId);
    QCOMPARE(model.index(0, RunTableModel::TaskColumn).data().toString(), u"Slow Job"_s);
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 1), int(RunStatus::Running), kWait);
    QCOMPARE(statusAt(model, 0), int(RunStatus::Queued));
    QCOMPARE(model.index(0, RunTableModel::StatusColumn).data().toString(), u"Queued"_s);
    QTRY_COMPARE_WITH_TIMEOUT(model.index(1, 0).data(RunTableModel::ProgressRole).toInt(), 50, kWait);
    const QString progress = model.index(1, RunTableModel::ProgressColumn).data().toString();
    QVERIFY2(progress.startsWith(u"50%"_s) && progress.contains(u"half way"_s), qPrintable(progress));
    QVERIFY(!model.index(1, RunTableModel::StartedColumn).data().toString().isEmpty());
    QCOMPARE(model.activeCount(), 2);

    gate.release(2);
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 1), int(RunStatus::Succeeded), kWait);
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 0), int(RunStatus::Succeeded), kWait);
    QCOMPARE(model.index(1, 0).data(RunTableModel::ProgressRole).toInt(), 100);
    QCOMPARE(model.index(1, RunTableModel::StatusColumn).data().toString(), u"Succeeded"_s);
    QVERIFY(!model.index(1, RunTableModel::DurationColumn).data().toString().isEmpty());
    QCOMPARE(model.activeCount(), 0);
    QCOMPARE(model.run(first.runId)->status, RunStatus::Succeeded);
    QVERIFY(!model.run(u"unknown"_s));
}

void TestUiModels::activeRunsShowRetrying()
{
    TaskRegistry registry;
    std::atomic<int> attempts{0};
    Task flaky = makeTask(u"flaky"_s, [&attempts](RunContext &ctx) -> QJsonValue {
        if (++attempts == 1)
            throw TransientError(u"busy, attempt %1"_s.arg(ctx.attempt()));
        return QJsonValue(true);
    });
    flaky.retry.maxAttempts = 2;
    flaky.retry.initialDelay = 1500ms;
    flaky.retry.jitter = 0;
    QVERIFY(registry.add(flaky));
    TaskEngine engine(&registry);
    ActiveRunsModel model(&engine);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    // Each status the view is told about, in order.
    QList<int> seen;
    connect(&model, &QAbstractItemModel::dataChanged, this, [&] {
        if (model.rowCount() > 0 && (seen.isEmpty() || seen.last() != statusAt(model, 0)))
            seen.append(statusAt(model, 0));
    });

    const StartResult started = engine.start(u"flaky"_s, {});
    QVERIFY(started.ok());
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 1, kWait);
    QTRY_VERIFY_WITH_TIMEOUT(seen.contains(int(RunStatus::Retrying)), kWait);
    const std::optional<Run> waiting = model.run(started.runId);
    QVERIFY(waiting);
    if (waiting->status == RunStatus::Retrying) {
        QVERIFY(waiting->nextAttemptAt.isValid());
        const QString text = model.index(0, RunTableModel::StatusColumn).data().toString();
        QVERIFY2(text.startsWith(u"Retrying at "_s) && text.contains(u"attempt 2 of 2"_s), qPrintable(text));
    }
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 0), int(RunStatus::Succeeded), kWait);
    QCOMPARE(model.run(started.runId)->attempt, 2);
    QCOMPARE(seen.last(), int(RunStatus::Succeeded));
    QVERIFY(seen.indexOf(int(RunStatus::Retrying)) < seen.lastIndexOf(int(RunStatus::Running)));
}

void TestUiModels::activeRunsCoalesceProgress()
{
    constexpr int kReports = 10000;
    TaskRegistry registry;
    QSemaphore gate;
    QVERIFY(registry.add(makeTask(u"held"_s, [&gate](RunContext &ctx) -> QJsonValue {
        while (!gate.tryAcquire(1, 20)) {
            if (ctx.isCanceled())
                return QJsonValue();
        }
        return QJsonValue();
    })));
    QVERIFY(registry.add(makeTask(u"chatty"_s, [](RunContext &ctx) -> QJsonValue {
        for (int i = 1; i <= kReports; ++i)
            ctx.progress(i, kReports);
        return QJsonValue();
    })));
    TaskEngine engine(&registry);
    auto release = qScopeGuard([&gate] { gate.release(10); });
    ActiveRunsModel model(&engine);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    int progressChanges = 0;
    bool onlyProgressColumn = true;
    connect(&model, &QAbstractItemModel::dataChanged, this,
            [&](const QModelIndex &topLeft, const QModelIndex &bottomRight) {
                if (topLeft.column() == RunTableModel::ProgressColumn
                    && bottomRight.column() == RunTableModel::ProgressColumn) {
                    ++progressChanges;
                } else if (topLeft.column() > RunTableModel::StatusColumn) {
                    // Other partial changes are only the once-a-second tick.
                    onlyProgressColumn = onlyProgressColumn
                        && topLeft.column() == RunTableModel::DurationColumn;
                }
            });

    // A burst of reports, as a very chatty engine would send within one interval, reaches
    // the view as one change of the progress column.
    const StartResult held = engine.start(u"held"_s, {});
    QVERIFY(held.ok());
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 0), int(RunStatus::Running), kWait);
    progressChanges = 0;
    for (int i = 1; i <= kReports; ++i)
        Q_EMIT engine.runProgress(held.runId, Progress{i, kReports, u"step %1"_s.arg(i)});
    QTRY_COMPARE_WITH_TIMEOUT(model.index(0, 0).data(RunTableModel::ProgressRole).toInt(), 100, kWait);
    QCOMPARE(model.index(0, 0).data(RunTableModel::ProgressMessageRole).toString(), u"step %1"_s.arg(kReports));
    QCOMPARE(progressChanges, 1);
    gate.release();
    QTRY_COMPARE_WITH_TIMEOUT(model.run(held.runId)->status, RunStatus::Succeeded, kWait);

    // A real run reporting as fast as it can ends with its last report shown.
    progressChanges = 0;
    const StartResult started = engine.start(u"chatty"_s, {});
    QVERIFY(started.ok());
    QTRY_VERIFY_WITH_TIMEOUT(model.run(started.runId) && model.run(started.runId)->isFinished(), kWait);
    QCOMPARE(model.rowOf(started.runId), 0);
    QCOMPARE(statusAt(model, 0), int(RunStatus::Succeeded));
    QCOMPARE(model.index(0, 0).data(RunTableModel::ProgressRole).toInt(), 100);
    QVERIFY(onlyProgressColumn);
    QVERIFY2(progressChanges < kReports / 10, qPrintable(QString::number(progressChanges)));
}

void TestUiModels::activeRunsKeepBoundedFinished()
{
    TaskRegistry registry;
    QVERIFY(registry.add(makeTask(u"quick"_s, [](RunContext &) -> QJsonValue { return QJsonValue(); })));
    TaskEngine engine(&registry);
    ActiveRunsModel model(&engine);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.maxFinished(), 200);
    model.setMaxFinished(3);
    QStringList ids;
    for (int i = 0; i < 6; ++i) {
        const StartResult started = engine.start(u"quick"_s, {});
        QVERIFY(started.ok());
        ids.append(started.runId);
        // One at a time, so the order of finishing is the order of starting.
        QTRY_VERIFY_WITH_TIMEOUT(model.run(started.runId) && model.run(started.runId)->isFinished(), kWait);
    }
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.index(0, 0).data(RunTableModel::RunIdRole).toString(), ids.at(5));
    QCOMPARE(model.index(2, 0).data(RunTableModel::RunIdRole).toString(), ids.at(3));
    QVERIFY(!model.run(ids.at(0)));
}

void TestUiModels::historyPagesAndFilters()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime base = QDateTime::currentDateTimeUtc().addDays(-2);
    for (int i = 0; i < 1000; ++i) {
        const RunStatus status = i % 10 == 0 ? RunStatus::Failed : RunStatus::Succeeded;
        store->recordFinished(finishedRun(u"run-%1"_s.arg(i, 4, 10, QChar(u'0')),
                                          i % 2 ? u"odd"_s : u"even"_s, status, base.addSecs(60 * i)),
                              [] {});
    }
    QVERIFY(store->flush(30s));

    HistoryModel model(store.get());
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), HistoryModel::kPageSize, kWait);
    QCOMPARE(model.pagesRequested(), 1);
    QCOMPARE(model.totalCount(), 1000);
    QCOMPARE(model.index(0, 0).data(RunTableModel::RunIdRole).toString(), u"run-0999"_s);
    QCOMPARE(model.index(199, 0).data(RunTableModel::RunIdRole).toString(), u"run-0800"_s);
    QVERIFY(model.canFetchMore({}));

    // The tester comes after the first page: it asks for the next one itself, as a view would.
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.pagesRequested(), 2);
    // Another fetchMore while that one is in flight asks nothing more.
    model.fetchMore({});
    model.fetchMore({});
    QCOMPARE(model.pagesRequested(), 2);
    QVERIFY(!model.canFetchMore({}));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 2 * HistoryModel::kPageSize, kWait);
    QCOMPARE(model.index(200, 0).data(RunTableModel::RunIdRole).toString(), u"run-0799"_s);
    QCOMPARE(model.index(0, RunTableModel::StatusColumn).data().toString(), u"Succeeded"_s);
    QCOMPARE(model.index(0, RunTableModel::DurationColumn).data().toString(), u"0:02"_s);

    // A filter starts over from the first page.
    model.setFilter(u"even"_s, RunStatus::Failed, QDateTime());
    QCOMPARE(model.rowCount(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(model.totalCount(), 100, kWait);
    QCOMPARE(model.rowCount(), 100);
    QVERIFY(!model.canFetchMore({}));
    for (int row = 0; row < model.rowCount(); ++row) {
        QCOMPARE(model.index(row, 0).data(RunTableModel::TaskKeyRole).toString(), u"even"_s);
        QCOMPARE(statusAt(model, row), int(RunStatus::Failed));
    }
    model.setFilter(QString(), std::nullopt, base.addSecs(60 * 950));
    QTRY_COMPARE_WITH_TIMEOUT(model.totalCount(), 50, kWait);
    QCOMPARE(model.rowCount(), 50);

    // An answer for an old filter is dropped: switch twice before the first page lands.
    model.setFilter(u"odd"_s, std::nullopt, QDateTime());
    model.setFilter(u"even"_s, std::nullopt, QDateTime());
    QTRY_COMPARE_WITH_TIMEOUT(model.totalCount(), 500, kWait);
    QTest::qWait(200);
    for (int row = 0; row < model.rowCount(); ++row)
        QCOMPARE(model.index(row, 0).data(RunTableModel::TaskKeyRole).toString(), u"even"_s);
    QCOMPARE(model.rowCount(), HistoryModel::kPageSize);
}

void TestUiModels::historyShowsRunsOfAnotherStore()
{
    // Two stores on one file have two connections, as two processes would.
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    auto other = openStore(dir.path());
    QVERIFY(store && other);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    for (int i = 0; i < 5; ++i)
        store->recordFinished(finishedRun(u"old-%1"_s.arg(i), u"t"_s, RunStatus::Succeeded, now.addSecs(-600 + i)), [] {});
    QVERIFY(store->flush(30s));
    HistoryModel model(store.get());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 5, kWait);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);

    // A run another writer starts shows on top, then changes in place.
    Run run = finishedRun(u"elsewhere"_s, u"t"_s, RunStatus::Running, now);
    run.finishedAt = QDateTime();
    run.progress = {3, 4, u"almost"_s};
    other->recordStarted(run);
    QVERIFY(other->flush(30s));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 6, kWait);
    QCOMPARE(model.index(0, 0).data(RunTableModel::RunIdRole).toString(), u"elsewhere"_s);
    QCOMPARE(statusAt(model, 0), int(RunStatus::Running));
    QCOMPARE(model.index(0, 0).data(RunTableModel::ProgressRole).toInt(), 75);

    run.status = RunStatus::Failed;
    run.finishedAt = now.addSecs(5);
    run.error.message = u"it broke"_s;
    other->recordFinished(run, [] {});
    QVERIFY(other->flush(30s));
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, 0), int(RunStatus::Failed), kWait);
    QCOMPARE(model.rowCount(), 6);
    QVERIFY(model.index(0, 0).data(Qt::ToolTipRole).toString().contains(u"it broke"_s));

    // Under a filter, a run that does not match stays out; a finished one leaves a
    // "running" view.
    model.setFilter(u"t"_s, RunStatus::Succeeded, QDateTime());
    QTRY_COMPARE_WITH_TIMEOUT(model.totalCount(), 5, kWait);
    other->recordFinished(finishedRun(u"other-task"_s, u"u"_s, RunStatus::Succeeded, now.addSecs(10)), [] {});
    other->recordFinished(finishedRun(u"same-task"_s, u"t"_s, RunStatus::Succeeded, now.addSecs(11)), [] {});
    QVERIFY(other->flush(30s));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 6, kWait);
    QCOMPARE(model.index(0, 0).data(RunTableModel::RunIdRole).toString(), u"same-task"_s);
    QCOMPARE(model.rowOf(u"other-task"_s), -1);
    QCOMPARE(resets.size(), 1); // the filter's, no other
}

void TestUiModels::historyShowsRunsOfAnotherProcess()
{
    const QString child = QCoreApplication::applicationDirPath() + u"/recoverychild"_s;
    if (!QFileInfo(child).isExecutable())
        QSKIP("recoverychild is not built next to the test");
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    HistoryModel model(store.get());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QTRY_VERIFY_WITH_TIMEOUT(model.totalCount() == 0, kWait);

    QProcess process;
    process.start(child, {dir.path(), u"1"_s, u"0"_s, u"0"_s});
    auto stop = qScopeGuard([&process] {
        process.kill();
        process.waitForFinished(30000);
    });
    QVERIFY(process.waitForStarted(30000));
    QString finished;
    QByteArray said;
    const auto readFinished = [&] {
        said += process.readAllStandardOutput();
        for (const QByteArray &line : said.split('\n')) {
            if (line.startsWith("finished "))
                finished = QString::fromUtf8(line.split(' ').value(1));
        }
        return !finished.isEmpty();
    };
    QTRY_VERIFY2_WITH_TIMEOUT(readFinished(), said.constData(), 30000);
    // No reload: the notifier brings it.
    QTRY_VERIFY_WITH_TIMEOUT(model.rowOf(finished) >= 0, kWait);
    QTRY_COMPARE_WITH_TIMEOUT(statusAt(model, model.rowOf(finished)), int(RunStatus::Succeeded), kWait);
}

void TestUiModels::historyIgnoresLateAnswers()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    for (int i = 0; i < 300; ++i)
        store->recordFinished(finishedRun(u"r-%1"_s.arg(i), u"t"_s, RunStatus::Succeeded, now.addSecs(i)), [] {});
    QVERIFY(store->flush(30s));
    // A model gone before its page (and its change look-ups) arrive: nothing lands in it.
    auto *gone = new HistoryModel(store.get());
    store->recordFinished(finishedRun(u"late"_s, u"t"_s, RunStatus::Succeeded, now.addSecs(400)), [] {});
    delete gone;
    // One that stays sees the same history, so the answers were on their way.
    HistoryModel kept(store.get());
    QAbstractItemModelTester tester(&kept, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QTRY_COMPARE_WITH_TIMEOUT(kept.rowCount(), HistoryModel::kPageSize, kWait);
    QTRY_COMPARE_WITH_TIMEOUT(kept.index(0, 0).data(RunTableModel::RunIdRole).toString(), u"late"_s, kWait);
    QCOMPARE(kept.rowOf(u"late"_s), 0);
    QCOMPARE(kept.rowCount(), HistoryModel::kPageSize);
}

void TestUiModels::historyModelsComeAndGo()
{
    // Models of one history made and destroyed many times (a window reopened, a filter
    // rebuilt): each leaves the store's notifier cleanly, whatever addresses they get.
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    for (int round = 0; round < 3; ++round) {
        std::vector<std::unique_ptr<HistoryModel>> models;
        for (int i = 0; i < 300; ++i)
            models.push_back(std::make_unique<HistoryModel>(store.get()));
        QVERIFY(store->notifier()->isWatched());
        models.clear();
    }
    // The last model still hears of changes.
    HistoryModel model(store.get());
    QTRY_COMPARE_WITH_TIMEOUT(model.totalCount(), 0, kWait);
    store->recordFinished(finishedRun(u"after"_s, u"t"_s, RunStatus::Succeeded, QDateTime::currentDateTimeUtc()), [] {});
    QTRY_COMPARE_WITH_TIMEOUT(model.rowOf(u"after"_s), 0, kWait);
}

void TestUiModels::runsPanelRequestsCancelAndRerun()
{
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    {
        TaskRegistry registry;
        QSemaphore gate;
        Task slow = makeTask(u"slow"_s, [&gate](RunContext &ctx) -> QJsonValue {
            ctx.progress(61, 100, u"copying"_s);
            while (!gate.tryAcquire(1, 20)) {
                if (ctx.isCanceled())
                    throw TaskError(u"canceled"_s);
            }
            return QJsonValue();
        });
        slow.title = u"File Checksum"_s;
        QVERIFY(registry.add(slow));
        QVERIFY(registry.add(describedTask(u"quick"_s, u"HTTP Check"_s, u"admin"_s)));
        EngineConfig config;
        config.maxConcurrent = 1;
        TaskEngine engine(&registry, config);
        engine.setRecorder(store.get());
        auto release = qScopeGuard([&gate] { gate.release(10); });
        ActiveRunsModel active(&engine);
        HistoryModel history(store.get(), &registry);
        RunsPanel panel(&active, &history);
        panel.resize(900, 260);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QSignalSpy cancels(&panel, &RunsPanel::cancelRequested);
        QSignalSpy reruns(&panel, &RunsPanel::rerunRequested);
        QSignalSpy opened(&panel, &RunsPanel::runActivated);

        const StartResult done = engine.start(u"quick"_s, {});
        QVERIFY(done.ok());
        QTRY_VERIFY_WITH_TIMEOUT(active.run(done.runId) && active.run(done.runId)->isFinished(), kWait);
        const StartResult running = engine.start(u"slow"_s, {});
        const StartResult queued = engine.start(u"slow"_s, {});
        QVERIFY(running.ok() && queued.ok());
        QTRY_COMPARE_WITH_TIMEOUT(active.run(running.runId)->progress.percent(), 61, kWait);

        QVERIFY(!panel.cancelButton()->isEnabled());
        QVERIFY(panel.selectRun(running.runId));
        QVERIFY(panel.cancelButton()->isEnabled());
        QVERIFY(panel.rerunButton()->isEnabled());
        QVERIFY(panel.grab().save(screenshotDir() + u"/runspanel.png"_s));

        QTest::mouseClick(panel.cancelButton(), Qt::LeftButton);
        QCOMPARE(cancels.size(), 1);
        QCOMPARE(cancels.at(0).at(0).toString(), running.runId);
        // The panel only asks; the run goes on.
        QCOMPARE(engine.status(running.runId), RunStatus::Running);

        // The queued one, from the context menu.
        QVERIFY(panel.selectRun(queued.runId));
        std::unique_ptr<QMenu> menu(panel.createContextMenu());
        QAction *cancel = nullptr;
        for (QAction *action : menu->actions()) {
            if (action->text() == u"Cancel"_s)
                cancel = action;
        }
        QVERIFY(cancel && cancel->isEnabled());
        cancel->trigger();
        QCOMPARE(cancels.size(), 2);
        QCOMPARE(cancels.at(1).at(0).toString(), queued.runId);

        // A finished run cannot be canceled, only run again.
        QVERIFY(panel.selectRun(done.runId));
        QVERIFY(!panel.cancelButton()->isEnabled());
        QTest::mouseClick(panel.cancelButton(), Qt::LeftButton);
        QCOMPARE(cancels.size(), 2);
        QTest::mouseClick(panel.rerunButton(), Qt::LeftButton);
        QCOMPARE(reruns.size(), 1);
        QCOMPARE(reruns.at(0).at(0).toString(), done.runId);

        // Enter opens the run.
        panel.activeView()->setFocus();
        QTest::keyClick(panel.activeView(), Qt::Key_Return);
        QCOMPARE(opened.size(), 1);
        QCOMPARE(opened.at(0).at(0).toString(), done.runId);

        // The status filter of the Active view.
        const int runningStatus = panel.statusFilter()->findData(int(RunStatus::Running));
        panel.statusFilter()->setCurrentIndex(runningStatus);
        Q_EMIT panel.statusFilter()->activated(runningStatus);
        QCOMPARE(panel.activeView()->model()->rowCount(), 1);
        QCOMPARE(panel.activeView()->model()->index(0, 0).data(RunTableModel::RunIdRole).toString(), running.runId);

        // History: the same buttons act on the recorded runs.
        panel.setCurrentView(RunsPanel::View::History);
        QVERIFY(panel.timeFilter()->isVisible());
        panel.statusFilter()->setCurrentIndex(0);
        Q_EMIT panel.statusFilter()->activated(0);
        QTRY_VERIFY_WITH_TIMEOUT(history.rowOf(done.runId) >= 0, kWait);
        QVERIFY(panel.selectRun(done.runId));
        QTest::mouseClick(panel.rerunButton(), Qt::LeftButton);
        QCOMPARE(reruns.size(), 2);
        QCOMPARE(panel.historyView()->model()->index(history.rowOf(done.runId), RunTableModel::TaskColumn).data().toString(),
                 u"HTTP Check"_s);
        QVERIFY(panel.grab().save(screenshotDir() + u"/runspanel-history.png"_s));

        gate.release(10);
        engine.cancelAll();
        QVERIFY(engine.shutdown(10s));
    }
}

void TestUiModels::runsPanelSavesState()
{
    TaskRegistry registry;
    TaskEngine engine(&registry);
    QTemporaryDir dir;
    auto store = openStore(dir.path());
    QVERIFY(store);
    ActiveRunsModel active(&engine);
    HistoryModel history(store.get());
    QByteArray state;
    {
        RunsPanel panel(&active, &history);
        panel.resize(800, 200);
        panel.show();
        panel.setCurrentView(RunsPanel::View::History);
        panel.historyView()->horizontalHeader()->resizeSection(RunTableModel::TaskColumn, 321);
        panel.statusFilter()->setCurrentIndex(3);
        panel.timeFilter()->setCurrentIndex(2);
        state = panel.saveState();
    }
    RunsPanel restored(&active, &history);
    restored.resize(800, 200);
    restored.show();
    QVERIFY(!restored.restoreState(QByteArray("garbage")));
    QCOMPARE(restored.currentView(), RunsPanel::View::Active);
    QVERIFY(restored.restoreState(state));
    QCOMPARE(restored.currentView(), RunsPanel::View::History);
    QCOMPARE(restored.historyView()->horizontalHeader()->sectionSize(RunTableModel::TaskColumn), 321);
    QCOMPARE(restored.statusFilter()->currentIndex(), 3);
    QCOMPARE(restored.timeFilter()->currentIndex(), 2);
    // The restored filters apply to the history.
    QVERIFY(history.statusFilter().has_value());
    QVERIFY(history.sinceFilter().isValid());
}

QTEST_MAIN(TestUiModels)
#include "tst_uimodels.moc"
