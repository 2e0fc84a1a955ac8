// SPDX-License-Identifier: MIT
// Tasks files: parsing with exact error positions, running their commands through a real
// engine and real child processes, and hot reload through a real file system watcher.

#include <cstdio>
#include <memory>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QProcessEnvironment>
#include <QSaveFile>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include "builtintasks.h"
#include "historytasks.h"
#include "sqliterunstore.h"
#include "systemtasks.h"
#include "tasksfile.h"
#include "tasksfilewatcher.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "testsupport.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

namespace {

// File system notifications can be slow on a loaded CI machine; correctness, not speed,
// is what these waits check.
constexpr int WatchTimeoutMs = 15000;

QString examplesDir()
{
    return QString::fromUtf8(TASKDECK_EXAMPLES_DIR);
}

QString examplePath()
{
    return QDir(examplesDir()).filePath(u"taskdeck.yml"_s);
}

bool writeFile(const QString &path, const QByteArray &data)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(data) == data.size();
}

// The way many editors save: write a new file next to the old one, then rename it over.
bool replaceFile(const QString &path, const QByteArray &data)
{
    const QString temporary = path + u".swp"_s;
    if (!writeFile(temporary, data))
        return false;
    return std::rename(QFile::encodeName(temporary).constData(), QFile::encodeName(path).constData()) == 0;
}

QString listErrors(const QList<TasksFileError> &errors)
{
    QStringList lines;
    for (const TasksFileError &e : errors)
        lines << e.toString();
    return lines.join(u'\n');
}

const Task *findTask(const TasksFileResult &result, const QString &key)
{
    for (const Task &task : result.tasks) {
        if (task.key == key)
            return &task;
    }
    return nullptr;
}

} // namespace

class TestTasksFile : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void exampleLoads();
    void everyExampleRegistersNextToTheBuiltins();
    void exampleTasksRun();
    void startRateIsPerSecond();
    void errorPositions_data();
    void errorPositions();
    void allErrorsReported();
    void repeatedTemplateErrors();
    void errorFormat();
    void missingFile();
    void findFile();
    void argumentVariables();
    void injection_data();
    void injection();
    void envAndCwdTemplating();
    void defaultWorkingDirectory();
    void retriesFailingCommand();
    void retriesExhausted();
    void noRetriesMeansFinalFailure();
    void timeoutApplies();
    void hotReload();
    void watchWhatOthersRegistered();
    void invalidReloadKeepsTasks();
    void runInFlightKeepsItsDefinition();
    void clashWithBuiltinIsAnError();
    void followedFileReportsOnlyTheClashingKey();

private:
    QString tasksPath() const { return m_dir->filePath(u"taskdeck.yml"_s); }
    bool registerFile(const QString &path);
    QStringList output(const QString &runId) const;

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<TaskRegistry> m_registry;
    std::unique_ptr<TaskEngine> m_engine;
};

void TestTasksFile::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY2(QFileInfo::exists(examplePath()), qPrintable(examplePath()));
}

void TestTasksFile::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    m_registry = std::make_unique<TaskRegistry>();
    EngineConfig config;
    config.maxConcurrent = 2;
    m_engine = std::make_unique<TaskEngine>(m_registry.get(), config);
}

void TestTasksFile::cleanup()
{
    m_engine.reset();
    m_registry.reset();
    m_dir.reset();
}

bool TestTasksFile::registerFile(const QString &path)
{
    const TasksFileResult result = loadTasksFile(path);
    if (!result.ok()) {
        qWarning().noquote() << listErrors(result.errors);
        return false;
    }
    QString why;
    if (!m_registry->replaceSource(path, result.tasks, &why)) {
        qWarning().noquote() << why;
        return false;
    }
    return true;
}

QStringList TestTasksFile::output(const QString &runId) const
{
    QStringList lines;
    for (const LogLine &line : m_engine->recentLog(runId)) {
        if (line.stream == LogStream::Out)
            lines << line.text;
    }
    return lines;
}

void TestTasksFile::everyExampleRegistersNextToTheBuiltins()
{
    const QFileInfoList files = QDir(examplesDir()).entryInfoList(QDir::Files, QDir::Name);
    QVERIFY2(!files.isEmpty(), qPrintable(examplesDir()));
    // The tasks taskdeck itself registers before it reads a tasks file.
    const std::unique_ptr<SqliteRunStore> store = testsupport::openStore(m_dir->filePath(u"data"_s));
    QVERIFY(store);
    for (const QFileInfo &file : files) {
        // A fresh registry per file, as a user gets when copying one example into place.
        TaskRegistry registry;
        registerBuiltinTasks(registry);
        registerSystemTasks(registry);
        registerHistoryTasks(registry, store.get(), m_dir->filePath(u"backups"_s));
        const TasksFileResult r = loadTasksFile(file.absoluteFilePath());
        QVERIFY2(r.ok(), qPrintable(file.fileName() + u": "_s + listErrors(r.errors)));
        QVERIFY2(!r.tasks.isEmpty(), qPrintable(file.fileName()));
        QString why;
        QVERIFY2(registry.replaceSource(file.absoluteFilePath(), r.tasks, &why),
                 qPrintable(file.fileName() + u": "_s + why));
        for (const Task &task : r.tasks)
            QVERIFY2(registry.contains(task.key), qPrintable(file.fileName() + u": "_s + task.key));
    }
}

void TestTasksFile::exampleLoads()
{
    const TasksFileResult r = loadTasksFile(examplePath());
    QVERIFY2(r.ok(), qPrintable(listErrors(r.errors)));
    QStringList keys;
    for (const Task &t : r.tasks)
        keys << t.key;
    QCOMPARE(keys, QStringList({u"greet"_s, u"dir-size"_s, u"count-lines"_s, u"system-info"_s,
                                u"countdown"_s, u"report"_s, u"flaky-check"_s, u"stamp"_s}));
    QCOMPARE(r.positions.size(), r.tasks.size());
    QVERIFY(r.positionOf(u"greet"_s).line > 1);
    QCOMPARE(r.positionOf(u"greet"_s).column, 3);

    const Task *greet = findTask(r, u"greet"_s);
    QCOMPARE(greet->title, u"Greet Someone"_s);
    QCOMPARE(greet->category, u"examples"_s);
    QCOMPARE(greet->icon, u"hand-wave"_s);
    QCOMPARE(greet->tags, QStringList({u"demo"_s, u"text"_s}));
    QVERIFY(!greet->isDangerous());
    QVERIFY(!greet->expensive);
    QVERIFY(greet->fn);
    QCOMPARE(greet->fields.size(), 3);
    const Field &name = greet->fields.at(0);
    QCOMPARE(name.key, u"name"_s);
    QCOMPARE(name.type, FieldType::Text);
    QCOMPARE(name.title, u"Name"_s);
    QCOMPARE(name.description, u"Who to greet."_s);
    QCOMPARE(name.placeholder, u"Ada Lovelace"_s);
    QVERIFY(name.required);
    QCOMPARE(name.min, std::optional<double>(1));
    QCOMPARE(name.max, std::optional<double>(40));
    QCOMPARE(name.pattern, u"[A-Za-z][A-Za-z .'-]*"_s);
    QCOMPARE(greet->fields.at(1).type, FieldType::Integer);
    QCOMPARE(greet->fields.at(1).defaultValue, QJsonValue(1));
    QCOMPARE(greet->fields.at(2).type, FieldType::Bool);
    QCOMPARE(greet->fields.at(2).defaultValue, QJsonValue(false));

    const Task *du = findTask(r, u"dir-size"_s);
    QVERIFY(du->expensive);
    QCOMPARE(du->timeout, std::optional<std::chrono::milliseconds>(2min));
    QCOMPARE(du->maxConcurrent, 1);
    QCOMPARE(du->fields.at(0).defaultValue, QJsonValue(u"."_s));

    QCOMPARE(findTask(r, u"count-lines"_s)->fields.at(0).type, FieldType::File);

    const Field &what = findTask(r, u"system-info"_s)->fields.at(0);
    QCOMPARE(what.type, FieldType::Select);
    const Field::Choices unameChoices = {{u"-s"_s, u"Kernel name"_s},
                                         {u"-r"_s, u"Kernel release"_s},
                                         {u"-m"_s, u"Machine hardware"_s}};
    QCOMPARE(what.choices, unameChoices);
    QCOMPARE(what.defaultValue, QJsonValue(u"-r"_s));

    const Task *countdown = findTask(r, u"countdown"_s);
    QCOMPARE(countdown->timeout, std::optional<std::chrono::milliseconds>(1min));
    QCOMPARE(countdown->fields.at(1).type, FieldType::Number);
    QCOMPARE(countdown->fields.at(1).defaultValue, QJsonValue(0.2));

    const Task *report = findTask(r, u"report"_s);
    const Field &sections = report->fields.at(0);
    QCOMPARE(sections.type, FieldType::MultiSelect);
    const Field::Choices sectionChoices = {{u"kernel"_s, u"kernel"_s},
                                           {u"uptime"_s, u"uptime"_s},
                                           {u"date"_s, u"date"_s}};
    QCOMPARE(sections.choices, sectionChoices);
    QCOMPARE(sections.defaultValue, QJsonValue(QJsonArray{u"kernel"_s, u"date"_s}));
    QCOMPARE(report->fields.at(1).type, FieldType::DateTime);
    QCOMPARE(report->fields.at(1).defaultValue, QJsonValue(u"2024-01-01T00:00:00.000Z"_s));
    QCOMPARE(report->fields.at(2).type, FieldType::Textarea);
    QCOMPARE(report->fields.at(3).type, FieldType::Secret);

    const Task *flaky = findTask(r, u"flaky-check"_s);
    QCOMPARE(flaky->retry.maxAttempts, 4);
    QCOMPARE(flaky->retry.initialDelay, 1000ms);

    const Task *stamp = findTask(r, u"stamp"_s);
    QVERIFY(stamp->isDangerous());
    QCOMPARE(stamp->danger, u"Overwrites the given file in the directory of this tasks file."_s);

    // Every type the engine knows is shown somewhere in the example.
    QSet<QString> types;
    for (const Task &t : r.tasks) {
        for (const Field &f : t.fields)
            types.insert(fieldTypeName(f.type));
    }
    const QStringList allTypes = fieldTypeNames();
    QCOMPARE(types, QSet<QString>(allTypes.cbegin(), allTypes.cend()));
}

void TestTasksFile::exampleTasksRun()
{
    QVERIFY(registerFile(examplePath()));

    RunResult greet = m_engine->run(u"greet"_s, {{u"name"_s, u"Ada Lovelace"_s}, {u"times"_s, 2}});
    QVERIFY(greet.ok());
    QCOMPARE(greet.run.status, RunStatus::Succeeded);
    QCOMPARE(output(greet.run.id), QStringList{u"Hello, Ada Lovelace! (times: 2, excited: false)"_s});

    RunResult rejected = m_engine->run(u"greet"_s, {{u"name"_s, u"Ada; ls"_s}});
    QCOMPARE(rejected.error.code, StartError::Code::InvalidArguments);

    RunResult countdown = m_engine->run(u"countdown"_s, {{u"steps"_s, 2}, {u"pause"_s, 0}});
    QCOMPARE(countdown.run.status, RunStatus::Succeeded);
    QCOMPARE(countdown.run.result.toObject().value(u"steps"_s), QJsonValue(2));
    QCOMPARE(countdown.run.progress.done, 2);
    QCOMPARE(countdown.run.progress.total, 2);

    const QString text = m_dir->filePath(u"three.txt"_s);
    QVERIFY(writeFile(text, "a\nb\nc\n"));
    RunResult lines = m_engine->run(u"count-lines"_s, {{u"file"_s, text}});
    QCOMPARE(lines.run.status, RunStatus::Succeeded);
    QCOMPARE(output(lines.run.id), QStringList{u"3 "_s + text});

    RunResult uname = m_engine->run(u"system-info"_s, {});
    QCOMPARE(uname.run.status, RunStatus::Succeeded);
    QCOMPARE(output(uname.run.id).size(), 1);

    RunResult report = m_engine->run(u"report"_s, {{u"token"_s, u"s3cret"_s}, {u"notes"_s, u"line one"_s}});
    QCOMPARE(report.run.status, RunStatus::Succeeded);
    const QStringList reportLines = output(report.run.id);
    QCOMPARE(reportLines.value(0), u"Report since 2024-01-01T00:00:00.000Z"_s);
    QVERIFY(reportLines.contains(u"a token was given"_s));
    QVERIFY(reportLines.contains(u"line one"_s));
    QVERIFY(!reportLines.join(u'\n').contains(u"s3cret"_s));

    RunResult du = m_engine->run(u"dir-size"_s, {{u"directory"_s, m_dir->path()}});
    QCOMPARE(du.run.status, RunStatus::Succeeded);

    // Checked before anything runs: the stamp task would write next to the example file.
    RunResult stamp = m_engine->run(u"stamp"_s, {});
    QCOMPARE(stamp.error.code, StartError::Code::ConfirmationRequired);
}

void TestTasksFile::startRateIsPerSecond()
{
    const TasksFileResult r = parseTasksYaml("tasks:\n"
                                             "  a: {command: [true], start_rate: 5/s}\n"
                                             "  b: {command: [true], start_rate: 30/m}\n"
                                             "  c: {command: [true], start_rate: 0.5/s}\n"
                                             "  d: {command: [true]}\n",
                                             u"tasks.yml"_s);
    QVERIFY2(r.ok(), qPrintable(listErrors(r.errors)));
    QCOMPARE(findTask(r, u"a"_s)->startRate, 5.0);
    QCOMPARE(findTask(r, u"b"_s)->startRate, 0.5);
    QCOMPARE(findTask(r, u"c"_s)->startRate, 0.5);
    QCOMPARE(findTask(r, u"d"_s)->startRate, 0.0); // no rate: starts as they come
}

void TestTasksFile::errorPositions_data()
{
    QTest::addColumn<QByteArray>("yaml");
    QTest::addColumn<QString>("position");
    QTest::addColumn<QString>("message");

    QTest::newRow("unknown task key")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: Backup\n"
                      "    tittle: Backup\n"
                      "    command: [true]\n")
        << u"4:5"_s
        << u"unknown key \"tittle\" in task \"backup\"; accepted: title, description, category"_s;
    QTest::newRow("unknown field type")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    command: [echo, \"{{count}}\"]\n"
                      "    fields:\n"
                      "      - key: count\n"
                      "        type: int\n")
        << u"6:15"_s
        << u"field type \"int\" is not one of: text, textarea, integer, number, bool, select, "
           u"multiselect, file, secret, datetime"_s;
    QTest::newRow("duplicate task")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: [true]\n"
                      "  other:\n"
                      "    command: [true]\n"
                      "  backup:\n"
                      "    shell: \"true\"\n")
        << u"6:3"_s << u"duplicate task key \"backup\" (first defined at line 2)"_s;
    QTest::newRow("template names no field")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "      - key: count\n"
                      "        type: integer\n"
                      "    command: [\"echo\", \"hi {{nmae}}!\"]\n")
        << u"7:27"_s << u"template {{nmae}} names no field of task \"greet\"; fields: name, count"_s;
    QTest::newRow("template in a command line")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "    command: printf '%s\\n' {{nmae}}\n")
        << u"5:28"_s << u"template {{nmae}} names no field of task \"greet\"; fields: name"_s;
    QTest::newRow("second use of a bad template")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "    command: [\"echo\", \"{{name}}{{name}}\", \"{{name}}{{nope}}\"]\n")
        << u"5:52"_s << u"template {{nope}} names no field"_s;
    QTest::newRow("secret on the command line")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - {key: token, type: secret}\n"
                      "    command: [curl, -H, \"Authorization: {{token}}\"]\n")
        << u"5:41"_s
        << u"template {{token}} would put secret field \"token\" on the command line"_s;
    QTest::newRow("template in env")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "    env:\n"
                      "      GREETING: \"hello {{Name}}\"\n"
                      "    command: [env]\n")
        << u"6:24"_s << u"template {{Name}} names no field of task \"greet\"; fields: name"_s;
    QTest::newRow("template in cwd")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    cwd: /tmp/{{dir}}\n"
                      "    command: [pwd]\n")
        << u"3:15"_s << u"template {{dir}} names no field of task \"t\"; fields: none"_s;
    QTest::newRow("template after non-ASCII text")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    command: [\"\xC3\xA4\", \"{{nope}}\"]\n")
        << u"3:21"_s << u"template {{nope}} names no field"_s;
    QTest::newRow("template split by blanks")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields: [{key: name}]\n"
                      "    command: echo {{ name }}\n")
        << u"4:14"_s << u"split into several arguments"_s;
    QTest::newRow("template in a shell script")
        << QByteArray("tasks:\n"
                      "  greet:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "    shell: |\n"
                      "      echo start\n"
                      "      echo \"hello {{name}}\"\n")
        << u"7:19"_s << u"use \"$TASK_ARG_NAME\" instead of {{name}} (task \"greet\")"_s;
    QTest::newRow("timeout")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    timeout: 5 minutes\n"
                      "    command: [true]\n")
        << u"3:14"_s
        << u"timeout \"5 minutes\" is invalid: expected a duration such as 90s, 5m, 1h (task \"backup\")"_s;
    QTest::newRow("retry delay")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    retries: 2\n"
                      "    retry_delay: [1s]\n"
                      "    command: [true]\n")
        << u"4:18"_s << u"retry_delay must be a duration such as 90s, 5m, 1h, not a list"_s;
    QTest::newRow("retry delay without retries")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    retry_delay: 1s\n"
                      "    command: [true]\n")
        << u"3:5"_s << u"retry_delay has no effect without retries"_s;
    QTest::newRow("neither command nor shell")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: Backup\n")
        << u"2:3"_s << u"task \"backup\" needs exactly one of command or shell"_s;
    QTest::newRow("both command and shell")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: [true]\n"
                      "    shell: \"true\"\n")
        << u"4:5"_s << u"task \"backup\" needs exactly one of command or shell, not both"_s;
    QTest::newRow("yaml syntax: map value")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: a: b\n")
        << u"3:13"_s << u"YAML syntax error: illegal map value"_s;
    QTest::newRow("yaml syntax: indentation")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: x\n"
                      "   command: [true]\n")
        << u"4:4"_s << u"YAML syntax error: end of map not found"_s;
    QTest::newRow("default not an integer")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: count\n"
                      "        type: integer\n"
                      "        min: 1\n"
                      "        default: abc\n"
                      "    command: [echo, \"{{count}}\"]\n")
        << u"7:18"_s << u"default \"abc\" is invalid: expected a whole number of at least 1"_s;
    QTest::newRow("default out of range")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - {key: count, type: integer, max: 5, default: 10}\n"
                      "    command: [echo]\n")
        << u"4:54"_s << u"default \"10\" is invalid: expected a whole number of at most 5"_s;
    QTest::newRow("default not a choice")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: format\n"
                      "        type: select\n"
                      "        choices: [sql, tar]\n"
                      "        default: zip\n"
                      "    command: [echo]\n")
        << u"7:18"_s << u"default \"zip\" is invalid: expected one of: sql, tar"_s;
    QTest::newRow("default against pattern")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: code\n"
                      "        pattern: \"[0-9]+\"\n"
                      "        default: x1\n"
                      "    command: [echo]\n")
        << u"6:18"_s << u"default \"x1\" is invalid: expected text matching the pattern [0-9]+"_s;
    QTest::newRow("secret default is not repeated")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: token\n"
                      "        type: secret\n"
                      "        min: 8\n"
                      "        default: hunter2\n"
                      "    command: [echo]\n")
        << u"7:18"_s << u"default (hidden) is invalid: expected at least 8 characters (got 7 characters)"_s;
    QTest::newRow("invalid task key")
        << QByteArray("tasks:\n"
                      "  \"bad key!\":\n"
                      "    command: [true]\n")
        << u"2:3"_s << u"task key \"bad key!\" has ' '; accepted: letters, digits"_s;
    QTest::newRow("list where text is expected")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: [a, b]\n"
                      "    command: [true]\n")
        << u"3:12"_s << u"title must be text, not a list (task \"backup\")"_s;
    QTest::newRow("text where a list is expected")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    tags: backup\n"
                      "    command: [true]\n")
        << u"3:11"_s << u"tags must be a list of text, not \"backup\""_s;
    QTest::newRow("mapping inside tags")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    tags: [a, {b: c}]\n"
                      "    command: [true]\n")
        << u"3:15"_s << u"items of tags must be text, not a mapping"_s;
    QTest::newRow("negative retries")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    retries: -1\n"
                      "    command: [true]\n")
        << u"3:14"_s << u"retries \"-1\" is invalid: expected a whole number of 0 or more"_s;
    QTest::newRow("max_concurrent not a number")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    max_concurrent: two\n"
                      "    command: [true]\n")
        << u"3:21"_s << u"max_concurrent \"two\" is invalid: expected a whole number of 0 or more"_s;
    QTest::newRow("start_rate not a rate")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    start_rate: fast\n"
                      "    command: [true]\n")
        << u"3:17"_s << u"start_rate \"fast\" is invalid: expected starts per second or per minute as N/s or N/m (5/s, 30/m, 0.5/s)"_s;
    QTest::newRow("start_rate of zero")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    start_rate: 0/s\n"
                      "    command: [true]\n")
        << u"3:17"_s << u"start_rate \"0/s\" is invalid: expected starts per second or per minute as N/s or N/m (5/s, 30/m, 0.5/s)"_s;
    QTest::newRow("start_rate per hour")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    start_rate: 5/h\n"
                      "    command: [true]\n")
        << u"3:17"_s << u"start_rate \"5/h\" is invalid: expected starts per second or per minute as N/s or N/m (5/s, 30/m, 0.5/s)"_s;
    QTest::newRow("bool")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    expensive: maybe\n"
                      "    command: [true]\n")
        << u"3:16"_s << u"expensive \"maybe\" is invalid: expected true or false"_s;
    QTest::newRow("unknown field key")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "        tilte: Name\n"
                      "    command: [echo]\n")
        << u"5:9"_s << u"unknown key \"tilte\" in field \"name\" of task \"t\"; accepted: key, type, title"_s;
    QTest::newRow("duplicate field")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "      - key: name\n"
                      "    command: [echo]\n")
        << u"5:9"_s << u"duplicate field key \"name\" (first defined at line 4)"_s;
    QTest::newRow("fields clash as variables")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: dry-run\n"
                      "      - key: dry_run\n"
                      "    command: [echo]\n")
        << u"5:9"_s << u"fields \"dry-run\" and \"dry_run\" would both be passed as TASK_ARG_DRY_RUN"_s;
    QTest::newRow("invalid field key")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: my value\n"
                      "    command: [echo]\n")
        << u"4:14"_s << u"field key \"my value\" is invalid"_s;
    QTest::newRow("field key with a newline")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: \"name\\n\"\n"
                      "    command: [echo]\n")
        << u"4:14"_s << u"field key \"name\\n\" is invalid"_s;
    // Messages that name the problem (issue 9 item 15) and text that is not UTF-8 (item 8).
    QTest::newRow("nesting 10,000 deep")
        << (QByteArray("tasks:\n  t:\n    command: ") + QByteArray(10000, '[') + QByteArray(10000, ']') + '\n')
        << u"3:114"_s << u"YAML nested more than 100 levels deep here"_s;
    QTest::newRow("tab in the indentation")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "\ttitle: x\n"
                      "    command: [echo]\n")
        << u"3:1"_s << u"a tab in the indentation; YAML indents with spaces only"_s;
    QTest::newRow("tab after spaces in the indentation")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    title: x\n"
                      "  \tcommand: [echo]\n")
        << u"4:3"_s << u"a tab in the indentation"_s;
    QTest::newRow("quote never closed")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    title: \"unclosed\n"
                      "    command: [echo]\n")
        << u"3:12"_s << u"this quoted value is never closed (its closing \" is missing)"_s;
    QTest::newRow("quote closed lines later")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    title: \"unclosed\n"
                      "    command: [echo]\n"
                      "  u:\n"
                      "    title: \"x\"\n"
                      "    command: [true]\n")
        << u"3:12"_s << u"the quoted value that starts here runs on to line 6; is a closing quote missing?"_s;
    QTest::newRow("not UTF-8")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    title: caf\xE9 au lait\n"
                      "    command: [echo]\n")
        << u"3:15"_s << u"not valid UTF-8 (byte 0xE9); a tasks file must be UTF-8 text"_s;
    QTest::newRow("timeout past the maximum")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    timeout: 99999999999d\n"
                      "    command: [echo]\n")
        << u"3:14"_s << u"timeout \"99999999999d\" is invalid: expected a duration of at most 277777h 46m 40s"_s;
    QTest::newRow("field without key")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - type: text\n"
                      "    command: [echo]\n")
        << u"4:9"_s << u"a field needs a key (key: name)"_s;
    QTest::newRow("fields as a mapping")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      name: {type: text}\n"
                      "    command: [echo]\n")
        << u"4:7"_s << u"fields must be a list of mappings (- key: name), not a mapping"_s;
    QTest::newRow("choices on a text field")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "        choices: [a]\n"
                      "    command: [echo]\n")
        << u"5:9"_s << u"choices only apply to select and multiselect fields, not \"text\""_s;
    QTest::newRow("select without choices")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: format\n"
                      "        type: select\n"
                      "    command: [echo]\n")
        << u"5:15"_s << u"a \"select\" field needs choices"_s;
    QTest::newRow("duplicate choice")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: format\n"
                      "        type: select\n"
                      "        choices: [sql, tar, sql]\n"
                      "    command: [echo]\n")
        << u"6:29"_s << u"duplicate choice \"sql\" (first at line 6)"_s;
    QTest::newRow("invalid pattern")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: name\n"
                      "        pattern: \"(abc\"\n"
                      "    command: [echo]\n")
        << u"5:18"_s << u"pattern \"(abc\" is not a valid regular expression"_s;
    QTest::newRow("min above max")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: n\n"
                      "        type: integer\n"
                      "        min: 5\n"
                      "        max: 1\n"
                      "    command: [echo]\n")
        << u"7:14"_s << u"max 1 is less than min 5"_s;
    QTest::newRow("fractional min on an integer field")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: n\n"
                      "        type: integer\n"
                      "        min: 1.5\n"
                      "    command: [echo]\n")
        << u"6:14"_s << u"min 1.5 is invalid: expected a whole number for \"integer\" fields"_s;
    QTest::newRow("min not a number")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: n\n"
                      "        type: number\n"
                      "        min: low\n"
                      "    command: [echo]\n")
        << u"6:14"_s << u"min \"low\" is invalid: expected a number"_s;
    QTest::newRow("bounds on a bool")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    fields:\n"
                      "      - key: b\n"
                      "        type: bool\n"
                      "        max: 1\n"
                      "    command: [echo]\n")
        << u"6:9"_s << u"max only applies to integer, number and text fields, not \"bool\""_s;
    QTest::newRow("unsupported version")
        << QByteArray("version: 2\n"
                      "tasks: {}\n")
        << u"1:10"_s << u"version \"2\" is not supported; accepted: 1"_s;
    QTest::newRow("unknown top-level key")
        << QByteArray("version: 1\n"
                      "extra: true\n"
                      "tasks: {}\n")
        << u"2:1"_s << u"unknown key \"extra\" at the top level; accepted: version, tasks"_s;
    QTest::newRow("no tasks key")
        << QByteArray("version: 1\n")
        << u"1:1"_s << u"no \"tasks\" key"_s;
    QTest::newRow("empty file")
        << QByteArray("# nothing here yet\n")
        << u"1:1"_s << u"the file is empty"_s;
    QTest::newRow("not a mapping")
        << QByteArray("- a\n- b\n")
        << u"1:1"_s << u"the file must be a mapping with a \"tasks\" key, not a list"_s;
    QTest::newRow("tasks not a mapping")
        << QByteArray("tasks:\n  - a\n")
        << u"2:3"_s << u"tasks must be a mapping of task key to task, not a list"_s;
    QTest::newRow("second document")
        << QByteArray("tasks: {}\n"
                      "---\n"
                      "foo: 1\n")
        << u"3:1"_s << u"a second YAML document starts here"_s;
    QTest::newRow("task not a mapping")
        << QByteArray("tasks:\n"
                      "  backup: echo hi\n")
        << u"2:11"_s << u"a task must be a mapping of its settings"_s;
    QTest::newRow("duplicate setting")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    title: One\n"
                      "    command: [true]\n"
                      "    title: Two\n")
        << u"5:5"_s << u"duplicate key \"title\" in task \"backup\" (first given at line 3)"_s;
    QTest::newRow("empty command")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: []\n")
        << u"3:14"_s << u"command names no program to run"_s;
    QTest::newRow("command with a list inside")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: [echo, [a]]\n")
        << u"3:21"_s << u"command arguments must be text, not a list"_s;
    QTest::newRow("NUL in a command argument")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: [echo, \"a\\0b\"]\n")
        << u"3:21"_s << u"command argument 2 contains a NUL character"_s;
    QTest::newRow("NUL in a command line")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: \"/bin/true\\0rm -rf x\"\n")
        << u"3:14"_s << u"command contains a NUL character"_s;
    QTest::newRow("NUL in a shell script")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    shell: \"echo a\\0b\"\n")
        << u"3:12"_s << u"shell contains a NUL character"_s;
    QTest::newRow("NUL in an env value")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: [env]\n"
                      "    env:\n"
                      "      A: \"x\\0y\"\n")
        << u"5:10"_s << u"env value of \"A\" contains a NUL character"_s;
    QTest::newRow("unterminated quote")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    command: \"echo 'oops\"\n")
        << u"3:14"_s << u"command cannot be split into arguments"_s;
    QTest::newRow("empty shell")
        << QByteArray("tasks:\n"
                      "  backup:\n"
                      "    shell: \"  \"\n")
        << u"3:12"_s << u"shell is empty"_s;
    QTest::newRow("env not a mapping")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    env: [A=1]\n"
                      "    command: [env]\n")
        << u"3:10"_s << u"env must be a mapping of variable name to value, not a list"_s;
    QTest::newRow("env name")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    env:\n"
                      "      \"MY VAR\": x\n"
                      "    command: [env]\n")
        << u"4:7"_s << u"env name \"MY VAR\" is invalid"_s;
    QTest::newRow("env name with a newline")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    env:\n"
                      "      \"A\\n\": x\n"
                      "    command: [env]\n")
        << u"4:7"_s << u"env name \"A\\n\" is invalid"_s;
    QTest::newRow("env name reserved")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    env:\n"
                      "      TASK_ARG_X: y\n"
                      "    command: [env]\n")
        << u"4:7"_s << u"env name \"TASK_ARG_X\" is reserved"_s;
    QTest::newRow("env value a list")
        << QByteArray("tasks:\n"
                      "  t:\n"
                      "    env:\n"
                      "      A: [1, 2]\n"
                      "    command: [env]\n")
        << u"4:10"_s << u"env value of \"A\" must be text, not a list"_s;
}

void TestTasksFile::errorPositions()
{
    QFETCH(QByteArray, yaml);
    QFETCH(QString, position);
    QFETCH(QString, message);

    const TasksFileResult r = parseTasksYaml(yaml, u"taskdeck.yml"_s);
    QVERIFY(!r.ok());
    QVERIFY2(r.errors.size() == 1, qPrintable(listErrors(r.errors)));
    const TasksFileError &e = r.errors.constFirst();
    QCOMPARE(e.file, u"taskdeck.yml"_s);
    QVERIFY2(e.message.contains(message), qPrintable(e.toString()));
    QCOMPARE(u"%1:%2"_s.arg(e.line).arg(e.column), position);
}

void TestTasksFile::allErrorsReported()
{
    const QByteArray yaml = "tasks:\n"
                            "  one:\n"
                            "    tittle: x\n"
                            "    command: [true]\n"
                            "  two:\n"
                            "    timeout: soon\n"
                            "    retries: many\n"
                            "    command: [true]\n"
                            "  three:\n"
                            "    command: [echo, \"{{missing}}\"]\n"
                            "  good:\n"
                            "    command: [true]\n"
                            "  four:\n"
                            "    fields:\n"
                            "      - key: a\n"
                            "        type: intgr\n"
                            "      - key: b\n"
                            "        type: select\n";
    const TasksFileResult r = parseTasksYaml(yaml, u"tasks.yml"_s);
    QStringList got;
    for (const TasksFileError &e : r.errors)
        got << u"%1:%2"_s.arg(e.line).arg(e.column);
    QCOMPARE(got, QStringList({u"3:5"_s, u"6:14"_s, u"7:14"_s, u"10:22"_s, u"16:15"_s, u"18:15"_s,
                               u"13:3"_s}));
    QVERIFY(r.errors.at(6).message.contains(u"needs exactly one of command or shell"_s));
    // The good task is read, but a file with mistakes is not meant to be registered.
    QCOMPARE(r.tasks.size(), 1);
    QCOMPARE(r.tasks.constFirst().key, u"good"_s);
}

void TestTasksFile::repeatedTemplateErrors()
{
    // Each use of a wrong name is pointed at, not the first one twice.
    const TasksFileResult r = parseTasksYaml("tasks:\n"
                                             "  t:\n"
                                             "    command: echo {{nope}} x{{nope}}\n"
                                             "    cwd: \"{{nope}}/{{nope}}\"\n",
                                             u"t.yml"_s);
    QStringList got;
    for (const TasksFileError &e : r.errors)
        got << u"%1:%2"_s.arg(e.line).arg(e.column);
    QCOMPARE(got, QStringList({u"3:19"_s, u"3:29"_s, u"4:11"_s, u"4:20"_s}));
}

void TestTasksFile::errorFormat()
{
    TasksFileError e{u"taskdeck.yml"_s, 12, 7, u"unknown key"_s};
    QCOMPARE(e.toString(), u"taskdeck.yml:12:7: unknown key"_s);
    e.line = 0;
    e.column = 0;
    QCOMPARE(e.toString(), u"taskdeck.yml: unknown key"_s);

    // Every accepted setting is named, so a typo can be fixed from the message alone.
    const TasksFileResult r = parseTasksYaml("tasks:\n  x:\n    colour: red\n    command: [true]\n",
                                             u"t.yml"_s);
    QCOMPARE(r.errors.size(), 1);
    QCOMPARE(r.errors.constFirst().toString(),
             u"t.yml:3:5: unknown key \"colour\" in task \"x\"; accepted: title, description, "
             u"category, icon, tags, danger, expensive, timeout, retries, retry_delay, "
             u"max_concurrent, start_rate, fields, command, shell, cwd, env"_s);

    // A byte order mark is not part of the first line's columns.
    const TasksFileResult bom = parseTasksYaml("\xEF\xBB\xBFversion: 3\ntasks: {}\n", u"t.yml"_s);
    QCOMPARE(bom.errors.size(), 1);
    QCOMPARE(bom.errors.constFirst().column, 10);
}

void TestTasksFile::missingFile()
{
    const QString path = m_dir->filePath(u"nope.yml"_s);
    const TasksFileResult r = loadTasksFile(path);
    QCOMPARE(r.errors.size(), 1);
    QCOMPARE(r.errors.constFirst().toString(), path + u": no such file"_s);

    const TasksFileResult dir = loadTasksFile(m_dir->path());
    QCOMPARE(dir.errors.size(), 1);
    QVERIFY(dir.errors.constFirst().message.contains(u"directory"_s));

    QVERIFY(writeFile(tasksPath(), "tasks:\n  ok:\n    command: [true]\n"));
    QVERIFY(loadTasksFile(tasksPath()).ok());

    // Links that lead nowhere say so, rather than "no such file".
    const QString loopA = m_dir->filePath(u"loop-a.yml"_s);
    const QString loopB = m_dir->filePath(u"loop-b.yml"_s);
    QVERIFY(QFile::link(loopB, loopA));
    QVERIFY(QFile::link(loopA, loopB));
    const TasksFileResult loop = loadTasksFile(loopA);
    QCOMPARE(loop.errors.size(), 1);
    QCOMPARE(loop.errors.constFirst().toString(),
             loopA + u": symbolic links in a loop (too many levels of symbolic links)"_s);
    const QString dangling = m_dir->filePath(u"dangling.yml"_s);
    QVERIFY(QFile::link(path, dangling));
    const TasksFileResult nowhere = loadTasksFile(dangling);
    QCOMPARE(nowhere.errors.size(), 1);
    QCOMPARE(nowhere.errors.constFirst().toString(),
             dangling + u": is a symbolic link to %1, which does not exist"_s.arg(path));
}

void TestTasksFile::findFile()
{
    const QString work = m_dir->filePath(u"work"_s);
    QVERIFY(QDir().mkpath(work));
    const QString configDir = QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation);
    QVERIFY(QDir().mkpath(configDir));
    const QString configFile = QDir(configDir).filePath(u"taskdeck.yml"_s);
    QFile::remove(configFile);
    const auto removeConfig = qScopeGuard([&] { QFile::remove(configFile); });

    QProcessEnvironment env;
    QCOMPARE(findTasksFile(QString(), env, work), QString());

    QVERIFY(writeFile(configFile, "tasks: {}\n"));
    QCOMPARE(findTasksFile(QString(), env, work), configFile);

    const QString local = QDir(work).filePath(u"taskdeck.yml"_s);
    QVERIFY(writeFile(local, "tasks: {}\n"));
    QCOMPARE(findTasksFile(QString(), env, work), local);

    // Named files win even when they do not exist, so that loading can say so.
    env.insert(u"TASK_FILE"_s, u"/nonexistent/env.yml"_s);
    QCOMPARE(findTasksFile(QString(), env, work), u"/nonexistent/env.yml"_s);
    QCOMPARE(findTasksFile(u"/nonexistent/flag.yml"_s, env, work), u"/nonexistent/flag.yml"_s);
    QCOMPARE(findTasksFile(u"rel.yml"_s, env, work), QDir(work).filePath(u"rel.yml"_s));
}

void TestTasksFile::argumentVariables()
{
    QCOMPARE(taskArgumentVariable(u"name"_s), u"TASK_ARG_NAME"_s);
    QCOMPARE(taskArgumentVariable(u"dry-run"_s), u"TASK_ARG_DRY_RUN"_s);
    QCOMPARE(taskArgumentVariable(u"_x9"_s), u"TASK_ARG__X9"_s);
}

void TestTasksFile::injection_data()
{
    QTest::addColumn<QString>("value");
    QTest::newRow("semicolon") << u"x; rm -rf ~"_s;
    QTest::newRow("command substitution") << u"$(touch PWNED)"_s;
    QTest::newRow("backticks") << u"`touch PWNED`"_s;
    QTest::newRow("blank") << u"a b"_s;
    QTest::newRow("single quotes") << u"'; touch PWNED; '"_s;
    QTest::newRow("double quotes") << u"\"; touch PWNED; \""_s;
    QTest::newRow("variable") << u"$HOME and $TASK_ARG_VALUE"_s;
    QTest::newRow("glob") << u"*"_s;
    QTest::newRow("option") << u"-n"_s;
    QTest::newRow("template text") << u"{{value}}"_s;
    QTest::newRow("pipe and redirect") << u"| touch PWNED > PWNED2"_s;
    QTest::newRow("non-ASCII") << u"gr\u00FC\u00DFe \U0001F389"_s;
}

void TestTasksFile::injection()
{
    QFETCH(QString, value);

    // Should anything ever be interpreted, "~" is a sandbox and not the real home.
    const QString home = m_dir->filePath(u"home"_s);
    QVERIFY(QDir().mkpath(home));
    const QString canary = QDir(home).filePath(u"canary"_s);
    QVERIFY(writeFile(canary, "alive\n"));

    const QByteArray yaml = "tasks:\n"
                            "  echo-command:\n"
                            "    fields: [{key: value, required: true}]\n"
                            "    env: {HOME: \"" + home.toUtf8() + "\"}\n"
                            "    command: [\"printf\", \"%s\\n\", \"{{value}}\"]\n"
                            "  echo-line:\n"
                            "    fields: [{key: value, required: true}]\n"
                            "    env: {HOME: \"" + home.toUtf8() + "\"}\n"
                            "    command: printf '%s\\n' {{value}}\n"
                            "  echo-shell:\n"
                            "    fields: [{key: value, required: true}]\n"
                            "    env: {HOME: \"" + home.toUtf8() + "\"}\n"
                            "    shell: printf '%s\\n' \"$TASK_ARG_VALUE\"\n";
    QVERIFY(writeFile(tasksPath(), yaml));
    QVERIFY(registerFile(tasksPath()));

    for (const QString &key : {u"echo-command"_s, u"echo-line"_s, u"echo-shell"_s}) {
        const RunResult r = m_engine->run(key, {{u"value"_s, value}});
        QVERIFY2(r.ok(), qPrintable(r.error.message));
        QCOMPARE(r.run.status, RunStatus::Succeeded);
        QCOMPARE(output(r.run.id), QStringList{value});
    }
    QVERIFY(QFileInfo::exists(canary));
    const QStringList created = QDir(m_dir->path()).entryList(QDir::Files | QDir::NoDotAndDotDot);
    QCOMPARE(created, QStringList{u"taskdeck.yml"_s});
}

void TestTasksFile::envAndCwdTemplating()
{
    QVERIFY(QDir().mkpath(m_dir->filePath(u"sub dir"_s)));
    const QByteArray yaml = R"yaml(tasks:
  show:
    fields:
      - {key: where, type: text}
      - {key: name, type: text}
      - {key: loud, type: bool, default: true}
      - {key: count, type: integer, default: 3}
      - {key: ratio, type: number, default: 0.5}
      - {key: parts, type: multiselect, choices: [a, b, c], default: [a, c]}
      - {key: missing, type: text}
    cwd: "{{where}}"
    env:
      GREETING: "hi {{name}}: {{loud}}/{{count}}/{{ratio}}/{{parts}}/[{{missing}}]"
      PLAIN: "no {{ templates here"
    shell: |
      pwd -P
      printf '%s\n' "$GREETING" "$PLAIN" "$TASK_ARG_NAME" "$TASK_ARG_PARTS" "[$TASK_ARG_MISSING]"
  args:
    fields:
      - {key: loud, type: bool, default: false}
      - {key: big, type: integer, default: 12345678901234}
      - {key: ratio, type: number, default: 0.25}
      - {key: parts, type: multiselect, choices: [x, y], default: [y, x]}
      - {key: missing, type: text}
    command: ["printf", "%s|%s|%s|%s|[%s]\n", "{{loud}}", "{{big}}", "{{ratio}}", "{{parts}}", "{{missing}}"]
)yaml";
    QVERIFY(writeFile(tasksPath(), yaml));
    QVERIFY(registerFile(tasksPath()));

    const RunResult show = m_engine->run(u"show"_s, {{u"where"_s, u"sub dir"_s}, {u"name"_s, u"Ann $X"_s}});
    QCOMPARE(show.run.status, RunStatus::Succeeded);
    const QString sub = QFileInfo(m_dir->filePath(u"sub dir"_s)).canonicalFilePath();
    QCOMPARE(output(show.run.id), QStringList({sub, u"hi Ann $X: true/3/0.5/a,c/[]"_s,
                                               u"no {{ templates here"_s, u"Ann $X"_s, u"a,c"_s,
                                               u"[]"_s}));

    // An absolute cwd is used as it is.
    const RunResult absolute = m_engine->run(u"show"_s, {{u"where"_s, sub}, {u"name"_s, u"B"_s}});
    QCOMPARE(output(absolute.run.id).value(0), sub);

    const RunResult args = m_engine->run(u"args"_s, {});
    QCOMPARE(args.run.status, RunStatus::Succeeded);
    QCOMPARE(output(args.run.id), QStringList{u"false|12345678901234|0.25|y,x|[]"_s});

    // qint64's extremes reach the command exactly, not rounded through a double.
    const RunResult biggest = m_engine->run(u"args"_s, {{u"big"_s, u"9223372036854775807"_s}});
    QCOMPARE(biggest.run.status, RunStatus::Succeeded);
    QCOMPARE(output(biggest.run.id), QStringList{u"false|9223372036854775807|0.25|y,x|[]"_s});
    const RunResult smallest = m_engine->run(u"args"_s, {{u"big"_s, u"-9223372036854775808"_s}});
    QCOMPARE(output(smallest.run.id), QStringList{u"false|-9223372036854775808|0.25|y,x|[]"_s});
}

void TestTasksFile::defaultWorkingDirectory()
{
    QVERIFY(writeFile(tasksPath(), "tasks:\n  here:\n    command: [\"sh\", \"-c\", \"pwd -P\"]\n"));
    QVERIFY(registerFile(tasksPath()));
    const RunResult r = m_engine->run(u"here"_s, {});
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(output(r.run.id), QStringList{QFileInfo(m_dir->path()).canonicalFilePath()});
}

void TestTasksFile::retriesFailingCommand()
{
    // Fails until the counter file reaches 3.
    const QByteArray yaml = R"yaml(tasks:
  flaky:
    retries: 4
    retry_delay: 10ms
    shell: |
      n=$(cat counter 2>/dev/null || echo 0)
      n=$((n + 1))
      echo "$n" > counter
      echo "attempt $n"
      [ "$n" -ge 3 ]
)yaml";
    QVERIFY(writeFile(tasksPath(), yaml));
    QVERIFY(registerFile(tasksPath()));
    QCOMPARE(m_registry->find(u"flaky"_s)->retry.maxAttempts, 5);

    const RunResult r = m_engine->run(u"flaky"_s, {});
    QCOMPARE(r.run.status, RunStatus::Succeeded);
    QCOMPARE(r.run.attempt, 3);
    QFile counter(m_dir->filePath(u"counter"_s));
    QVERIFY(counter.open(QIODevice::ReadOnly));
    QCOMPARE(counter.readAll().trimmed(), QByteArray("3"));
}

void TestTasksFile::retriesExhausted()
{
    const QByteArray yaml = R"yaml(tasks:
  broken:
    retries: 1
    retry_delay: 10ms
    command: ["sh", "-c", "echo x >> attempts; exit 7"]
)yaml";
    QVERIFY(writeFile(tasksPath(), yaml));
    QVERIFY(registerFile(tasksPath()));

    const RunResult r = m_engine->run(u"broken"_s, {});
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.attempt, 2);
    QCOMPARE(r.run.error.kind, u"ExitCode"_s);
    QVERIFY(r.run.error.transient);
    QVERIFY2(r.run.error.message.contains(u"exited with code 7"_s), qPrintable(r.run.error.message));
    QFile attempts(m_dir->filePath(u"attempts"_s));
    QVERIFY(attempts.open(QIODevice::ReadOnly));
    QCOMPARE(attempts.readAll(), QByteArray("x\nx\n"));
}

void TestTasksFile::noRetriesMeansFinalFailure()
{
    QVERIFY(writeFile(tasksPath(), "tasks:\n  broken:\n    shell: exit 3\n"));
    QVERIFY(registerFile(tasksPath()));
    const RunResult r = m_engine->run(u"broken"_s, {});
    QCOMPARE(r.run.status, RunStatus::Failed);
    QCOMPARE(r.run.attempt, 1);
    QCOMPARE(r.run.error.kind, u"ExitCode"_s);
    QVERIFY(!r.run.error.transient);
}

void TestTasksFile::timeoutApplies()
{
    QVERIFY(writeFile(tasksPath(), "tasks:\n  slow:\n    timeout: 300ms\n    command: [sleep, \"30\"]\n"));
    QVERIFY(registerFile(tasksPath()));
    QCOMPARE(m_registry->find(u"slow"_s)->timeout, std::optional<std::chrono::milliseconds>(300ms));
    const RunResult r = m_engine->run(u"slow"_s, {});
    QCOMPARE(r.run.status, RunStatus::TimedOut);
}

void TestTasksFile::hotReload()
{
    const auto titleOf = [this](const QString &key) {
        const TaskPtr t = m_registry->find(key);
        return t ? t->title : QString();
    };
    QVERIFY(writeFile(tasksPath(), "tasks:\n  a:\n    title: One\n    command: [true]\n"));
    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QSignalSpy loaded(&watcher, &TasksFileWatcher::loaded);
    QSignalSpy failed(&watcher, &TasksFileWatcher::loadFailed);
    QVERIFY(watcher.load());
    QCOMPARE(loaded.size(), 1);
    QCOMPARE(loaded.at(0).at(0).toInt(), 1);
    QCOMPARE(titleOf(u"a"_s), u"One"_s);
    QCOMPARE(watcher.source(), QFileInfo(tasksPath()).absoluteFilePath());

    watcher.startWatching();
    QVERIFY(watcher.isWatching());

    // Saved the way editors do: a new file renamed over the old one.
    QVERIFY(replaceFile(tasksPath(), "tasks:\n  a:\n    title: Two\n    command: [true]\n"
                                     "  b:\n    command: [true]\n"));
    QTRY_COMPARE_WITH_TIMEOUT(titleOf(u"a"_s), u"Two"_s, WatchTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(m_registry->contains(u"b"_s), WatchTimeoutMs);
    QTRY_COMPARE_WITH_TIMEOUT(loaded.size(), 2, WatchTimeoutMs);
    QCOMPARE(loaded.last().at(0).toInt(), 2);

    // Overwritten in place; the watch on the replaced file must have been renewed.
    QVERIFY(writeFile(tasksPath(), "tasks:\n  a:\n    title: Three\n    command: [true]\n"));
    QTRY_COMPARE_WITH_TIMEOUT(titleOf(u"a"_s), u"Three"_s, WatchTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(!m_registry->contains(u"b"_s), WatchTimeoutMs);

    // Once more by rename, to be sure the watch survives repeated replacement.
    QVERIFY(replaceFile(tasksPath(), "tasks:\n  a:\n    title: Four\n    command: [true]\n"));
    QTRY_COMPARE_WITH_TIMEOUT(titleOf(u"a"_s), u"Four"_s, WatchTimeoutMs);

    // A deleted file is a failed load: what was registered stays.
    const qsizetype failuresBefore = failed.size();
    QVERIFY(QFile::remove(tasksPath()));
    QTRY_VERIFY_WITH_TIMEOUT(failed.size() > failuresBefore, WatchTimeoutMs);
    const auto errors = failed.last().at(0).value<QList<TasksFileError>>();
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.constFirst().message, u"no such file"_s);
    QCOMPARE(titleOf(u"a"_s), u"Four"_s);

    QVERIFY(writeFile(tasksPath(), "tasks:\n  a:\n    title: Five\n    command: [true]\n"));
    QTRY_COMPARE_WITH_TIMEOUT(titleOf(u"a"_s), u"Five"_s, WatchTimeoutMs);
    QCOMPARE(watcher.lastErrors().size(), 0);

    watcher.stopWatching();
    QVERIFY(!watcher.isWatching());
}

void TestTasksFile::watchWhatOthersRegistered()
{
    // The tasks were registered from the file by someone else; the watcher only follows it.
    const QByteArray first = "tasks:\n  a:\n    title: One\n    command: [true]\n";
    QVERIFY(writeFile(tasksPath(), first));
    const TasksFileResult result = loadTasksFile(tasksPath());
    QVERIFY(result.ok());
    QString why;
    QVERIFY2(m_registry->replaceSource(QFileInfo(tasksPath()).absoluteFilePath(), result.tasks, &why), qPrintable(why));
    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QSignalSpy loaded(&watcher, &TasksFileWatcher::loaded);
    watcher.startWatching();

    // The same bytes written again are no change: no reload. The quiet spell after it must
    // end before the real change below, or both would be read as one.
    auto *const quietSpell = watcher.findChild<QTimer *>();
    QVERIFY(quietSpell);
    QSignalSpy checked(quietSpell, &QTimer::timeout);
    QVERIFY(writeFile(tasksPath(), first));
    QVERIFY(checked.wait(WatchTimeoutMs));
    QCOMPARE(loaded.size(), 0);
    QVERIFY(replaceFile(tasksPath(), "tasks:\n  a:\n    title: Two\n    command: [true]\n"));
    QVERIFY(loaded.wait(WatchTimeoutMs));
    QCOMPARE(m_registry->find(u"a"_s)->title, u"Two"_s);
    QCOMPARE(loaded.size(), 1);
}

void TestTasksFile::invalidReloadKeepsTasks()
{
    QVERIFY(writeFile(tasksPath(), "tasks:\n  a:\n    title: Good\n    command: [true]\n"));
    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QSignalSpy loaded(&watcher, &TasksFileWatcher::loaded);
    QSignalSpy failed(&watcher, &TasksFileWatcher::loadFailed);
    QVERIFY(watcher.load());
    watcher.startWatching();

    QVERIFY(replaceFile(tasksPath(), "tasks:\n  a:\n    title: Bad\n    timeout: soon\n    command: [true]\n"
                                     "  c:\n    command: [true]\n"));
    QVERIFY(failed.wait(WatchTimeoutMs));
    const auto errors = failed.last().at(0).value<QList<TasksFileError>>();
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.constFirst().line, 4);
    QCOMPARE(errors.constFirst().column, 14);
    QCOMPARE(errors.constFirst().file, tasksPath());
    QCOMPARE(watcher.lastErrors().size(), 1);
    // Nothing of the broken file is used, not even its valid parts.
    QCOMPARE(m_registry->find(u"a"_s)->title, u"Good"_s);
    QVERIFY(!m_registry->contains(u"c"_s));
    QCOMPARE(loaded.size(), 1);

    QVERIFY(replaceFile(tasksPath(), "tasks:\n  a:\n    title: Fixed\n    command: [true]\n"));
    QVERIFY(loaded.wait(WatchTimeoutMs));
    QCOMPARE(m_registry->find(u"a"_s)->title, u"Fixed"_s);
    QVERIFY(watcher.lastErrors().isEmpty());
}

void TestTasksFile::runInFlightKeepsItsDefinition()
{
    QVERIFY(writeFile(tasksPath(), "tasks:\n  job:\n    shell: sleep 0.5; echo v1\n"));
    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QVERIFY(watcher.load());

    const StartResult started = m_engine->start(u"job"_s, {});
    QVERIFY(started.ok());
    QVERIFY(writeFile(tasksPath(), "tasks:\n  job:\n    shell: echo v2\n"));
    QVERIFY(watcher.load());
    QVERIFY(writeFile(tasksPath(), "tasks:\n  job:\n    shell: [broken\n"));
    QVERIFY(!watcher.load());

    const std::optional<Run> finished = m_engine->waitForFinished(started.runId, 60s);
    QVERIFY(finished);
    QCOMPARE(finished->status, RunStatus::Succeeded);
    QCOMPARE(output(started.runId), QStringList{u"v1"_s});

    const RunResult next = m_engine->run(u"job"_s, {});
    QCOMPARE(output(next.run.id), QStringList{u"v2"_s});
}

void TestTasksFile::clashWithBuiltinIsAnError()
{
    registerBuiltinTasks(*m_registry);
    const QByteArray yaml = "tasks:\n  mine:\n    command: [true]\n  exec:\n    command: [true]\n";
    QVERIFY(writeFile(tasksPath(), yaml));

    // The file itself is fine; only registering it next to the built-ins is not.
    const TasksFileResult parsed = loadTasksFile(tasksPath());
    QVERIFY(parsed.ok());
    QString why;
    QVERIFY(!m_registry->replaceSource(tasksPath(), parsed.tasks, &why));
    QVERIFY2(why.contains(u"built-in"_s), qPrintable(why));

    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QSignalSpy failed(&watcher, &TasksFileWatcher::loadFailed);
    QVERIFY(!watcher.load());
    QCOMPARE(failed.size(), 1);
    const auto errors = failed.at(0).at(0).value<QList<TasksFileError>>();
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.constFirst().line, 4);
    QCOMPARE(errors.constFirst().column, 3);
    QVERIFY2(errors.constFirst().message.contains(u"\"exec\" is already used"_s),
             qPrintable(errors.constFirst().toString()));
    QCOMPARE(m_registry->find(u"exec"_s)->title, u"Run Command"_s);
    QVERIFY(!m_registry->contains(u"mine"_s));

    // Renaming the task resolves it.
    QVERIFY(writeFile(tasksPath(), "tasks:\n  mine:\n    command: [true]\n  my-exec:\n    command: [true]\n"));
    QVERIFY(watcher.load());
    QVERIFY(m_registry->contains(u"mine"_s));
    QVERIFY(m_registry->contains(u"my-exec"_s));
    QCOMPARE(m_registry->find(u"exec"_s)->title, u"Run Command"_s);
}

void TestTasksFile::followedFileReportsOnlyTheClashingKey()
{
    // As run --each has it: the file was registered at start-up, and the watcher only
    // follows it from then on, without a load() of its own.
    registerBuiltinTasks(*m_registry);
    const QByteArray first = "tasks:\n  mine:\n    command: [true]\n  other:\n    command: [true]\n";
    QVERIFY(writeFile(tasksPath(), first));
    QVERIFY(registerFile(QFileInfo(tasksPath()).absoluteFilePath()));
    TasksFileWatcher watcher(tasksPath(), m_registry.get());
    QSignalSpy failed(&watcher, &TasksFileWatcher::loadFailed);
    watcher.startWatching();

    // A key a built-in uses is added: that key, and only that one, is the mistake.
    QVERIFY(replaceFile(tasksPath(), first + "  exec:\n    command: [true]\n"));
    QVERIFY(failed.wait(WatchTimeoutMs));
    const auto errors = failed.last().at(0).value<QList<TasksFileError>>();
    QVERIFY2(errors.size() == 1, qPrintable(listErrors(errors)));
    QCOMPARE(errors.constFirst().line, 6);
    QCOMPARE(errors.constFirst().column, 3);
    QVERIFY2(errors.constFirst().message.contains(u"\"exec\" is already used"_s),
             qPrintable(errors.constFirst().toString()));
    QCOMPARE(watcher.lastErrors().size(), 1);
    QCOMPARE(m_registry->find(u"exec"_s)->title, u"Run Command"_s);
    QVERIFY(m_registry->contains(u"mine"_s));
    QVERIFY(m_registry->contains(u"other"_s));
}

QTEST_GUILESS_MAIN(TestTasksFile)

#include "tst_tasksfile.moc"
