// SPDX-License-Identifier: MIT
// The taskdeck command line: parse, wire the history, the tasks and the engine, dispatch.

#include <chrono>
#include <cstdio>
#include <memory>

#include <QCoreApplication>
#include <QFileInfo>
#include <QProcessEnvironment>

#include "appsetup.h"
#include "cli.h"
#include "console.h"
#include "engineconfig.h"
#include "historycommands.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "taskregistry.h"
#ifdef TASKDECK_WITH_UI
#include "guicommand.h"
#endif
#include "pgrunstore.h"
#include "servecommand.h"
#include "tasksfile.h"
#include "tasksfilewatcher.h"
#include "workercommand.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

/*
 * Registers the tasks of the tasks file, if there is one, under the file's absolute path.
 * A file with any mistake registers nothing, and every mistake is printed. Returns false
 * when the command must stop: the user named the file (--tasks, TASK_FILE) and it cannot be
 * used. A file merely found (taskdeck.yml) must not take the built-ins down with it.
 */
bool registerTasksFile(TaskRegistry &registry, const Settings &settings,
                       const QProcessEnvironment &env, Console &console, QString *loadedPath)
{
    const QString path = findTasksFile(settings.tasksFile, env);
    if (path.isEmpty())
        return true;
    const bool named = !settings.tasksFile.isEmpty();

    const TasksFileResult result = loadTasksFile(path);
    QList<TasksFileError> errors = result.errors;
    if (errors.isEmpty()) {
        // The registry would refuse the whole file without saying where the clash is written.
        for (qsizetype i = 0; i < result.tasks.size(); ++i) {
            const QString &key = result.tasks.at(i).key;
            if (!registry.contains(key))
                continue;
            const TasksFilePosition position = result.positions.value(i);
            errors.append({path, position.line, position.column,
                           u"task key \"%1\" is already used by a built-in task; choose another "
                           u"key"_s.arg(key)});
        }
    }
    if (errors.isEmpty()) {
        QString why;
        if (registry.replaceSource(QFileInfo(path).absoluteFilePath(), result.tasks, &why)) {
            *loadedPath = path;
            return true;
        }
        errors.append({path, 0, 0, why});
    }

    for (const TasksFileError &error : std::as_const(errors))
        console.err(error.toString());
    if (named) {
        console.err(u"taskdeck: tasks file %1 cannot be used"_s.arg(path));
        return false;
    }
    console.err(u"taskdeck: tasks file %1 was not loaded; its tasks are not available"_s.arg(path));
    return true;
}

// What the command printed must all have reached stdout: a listing cut short by a full disk
// or a closed pipe would otherwise pass for a whole one.
int checkOutput(Console &console, int code)
{
    console.flush();
    if (!console.outputFailed())
        return code;
    console.err(u"taskdeck: cannot write to stdout: "_s + console.outputError());
    return code == exitcode::Success ? exitcode::Usage : code;
}

// Said once, at the end: a history that could not keep what the command did (a full disk)
// must not pass for a complete one, however well the runs went.
int reportHistoryLosses(const SqliteRunStore &store, Console &console, int code)
{
    const SqliteRunStore::Losses losses = store.losses();
    if (losses.isEmpty()) {
        console.flush();
        return code;
    }
    QStringList lost;
    if (losses.logLines > 0) {
        lost << (losses.runsWithIncompleteLog > 0
                     ? u"%1 log lines of %2 (where a run's stored log stops is recorded with it; "
                       "taskdeck show RUN_ID says)"_s.arg(losses.logLines)
                               .arg(losses.runsWithIncompleteLog == 1 ? u"1 run"_s
                                                                      : u"%1 runs"_s.arg(losses.runsWithIncompleteLog))
                     : u"%1 log lines"_s.arg(losses.logLines));
    }
    if (losses.changes > 0)
        lost << u"the latest changes of %1 runs"_s.arg(losses.changes);
    console.err(u"taskdeck: the history did not keep everything: %1 were not stored (%2)"_s
                    .arg(lost.join(u"; and "_s), losses.problem));
    console.flush();
    return code == exitcode::Success ? exitcode::HistoryIncomplete : code;
}

int execute(Console &console)
{
    const CommandLine commandLine = parseCommandLine(QCoreApplication::arguments().mid(1));
    if (!commandLine.ok()) {
        console.err(u"taskdeck: "_s + commandLine.error);
        console.err(u"see taskdeck --help"_s);
        return exitcode::Usage;
    }
    switch (commandLine.command) {
    case CommandLine::Command::Help:
        console.write(Console::Channel::Out, usageText());
        return exitcode::Success;
    case CommandLine::Command::Version:
        console.out(u"taskdeck "_s + QCoreApplication::applicationVersion());
        return exitcode::Success;
    case CommandLine::Command::None:
        console.write(Console::Channel::Err, usageText());
        return exitcode::Usage;
    default:
        break;
    }

    const QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    QString error;
    const std::optional<Settings> settings = Settings::load(env, commandLine.settings, &error);
    if (!settings) {
        console.err(u"taskdeck: "_s + error);
        return exitcode::Usage;
    }
    settings->applyLogLevel();

    // Declared first, so destroyed last: the history tasks and the engine (its recorder)
    // use the store until they are gone.
    QString historyError;
    // Commands that only read the history (history, show, log, export) read one they cannot write.
    const QString database = databaseUrl(commandLine.database, env);
    const std::unique_ptr<IRunStore> store = openRunStore(
            *settings, database, &historyError,
            needsTasks(commandLine.command) ? SqliteRunStore::OpenMode::ReadWrite
                                            : SqliteRunStore::OpenMode::ReadOnlyWhenUnwritable);
    // A full disk is the one reason why the history is unavailable that a command that runs
    // tasks reports in its exit code: the runs go on, but none of them is kept.
    const bool historyFull = !store && historyError.contains(u"the disk is full"_s)
                             && (commandLine.command == CommandLine::Command::Run
                                 || commandLine.command == CommandLine::Command::Rerun);
    if (!store) {
        console.err(u"taskdeck: history unavailable: "_s + historyError
                    + (historyFull ? u"; the runs of this command are not kept"_s : QString()));
        // A shared database that was asked for is never silently replaced by no history.
        if (needsHistory(commandLine.command) || !database.isEmpty())
            return exitcode::Usage;
    }

    if (!needsTasks(commandLine.command)) {
        HistoryCommands commands(store.get(), &console);
        const int code = commands.execute(commandLine);
        console.flush();
        return code;
    }

    TaskRegistry registry;
    registerStandardTasks(registry, store.get(), *settings);
    QString tasksFilePath;
    if (!registerTasksFile(registry, *settings, env, console, &tasksFilePath))
        return exitcode::Usage;
    // Commands that go on for long (run --each) follow the file; it is not watched before.
    std::unique_ptr<TasksFileWatcher> tasksFile;
    if (!tasksFilePath.isEmpty())
        tasksFile = std::make_unique<TasksFileWatcher>(tasksFilePath, &registry);

    // The shared queue: start queues runs for the workers, worker runs them.
    auto *shared = dynamic_cast<PgRunStore *>(store.get());
    if (commandLine.command == CommandLine::Command::Worker) {
        if (!shared) {
            console.err(u"taskdeck: worker needs a shared database: --database URL or TASK_DATABASE_URL"_s);
            return exitcode::Usage;
        }
        const int code = runWorker(&registry, shared, *settings, taskVersions(registry, tasksFilePath),
                                   tasksFile.get(), commandLine, &console);
        console.flush();
        return code;
    }
    if (commandLine.command == CommandLine::Command::Start && shared) {
        const int code = startRuns(&registry, shared, taskVersions(registry, tasksFilePath), commandLine, &console);
        console.flush();
        return code;
    }

    // run with a shared database: queued for a worker and followed wherever it runs (--local,
    // --each and tasks with secret fields run here).
    if (commandLine.command == CommandLine::Command::Run && shared && !commandLine.local && !commandLine.eachFile) {
        if (const std::optional<int> code = runQueued(&registry, shared, *settings, taskVersions(registry, tasksFilePath),
                                                      commandLine, &console)) {
            console.flush();
            return *code;
        }
    }

    TaskEngine engine(&registry, settings->engine);
    if (store)
        engine.setRecorder(store.get());
    Cli cli(&engine, store.get(), &console);
    cli.setTasksFile(tasksFile.get());
    const int code = commandLine.command == CommandLine::Command::Serve
        ? serve(&engine, store.get(), *settings, dataDirectory(*settings), commandLine.listen, &console)
        : cli.execute(commandLine);

    // Every finish shown was durable already; what else the runs logged is written now.
    engine.shutdown();
    if (!store) {
        console.flush();
        return historyFull && code == exitcode::Success ? exitcode::HistoryIncomplete : code;
    }
    store->flush(std::chrono::seconds(10));
    if (const auto *local = dynamic_cast<const SqliteRunStore *>(store.get()))
        return reportHistoryLosses(*local, console, code);
    console.flush();
    return code;
}

} // namespace

int main(int argc, char *argv[])
{
    // The window needs a QApplication, which must be the first application object, and
    // the command line must not need a display: decide before making either.
    // Arguments arrive exactly as given or not at all: bytes that are not UTF-8 would be
    // replaced on the way to a QString.
    if (const QString invalid = invalidUtf8Argument(argc, argv); !invalid.isEmpty()) {
        std::fputs(QString(u"taskdeck: "_s + invalid + u'\n').toUtf8().constData(), stderr);
        return exitcode::Usage;
    }
    QStringList arguments;
    for (int i = 1; i < argc; ++i)
        arguments.append(QString::fromLocal8Bit(argv[i]));
    const CommandLine commandLine = parseCommandLine(arguments);
    if (commandLine.ok()
        && (commandLine.command == CommandLine::Command::Gui
            || commandLine.command == CommandLine::Command::None)) {
#ifdef TASKDECK_WITH_UI
        return runGui(argc, argv, commandLine);
#else
        std::fputs("taskdeck: this build has no window (TASKDECK_BUILD_UI was off); "
                   "see taskdeck help for the command line, or run taskdeck serve\n", stderr);
        return exitcode::Usage;
#endif
    }

    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"taskdeck"_s);
    QCoreApplication::setApplicationVersion(QStringLiteral(TASKDECK_VERSION));

    Console console;
    return checkOutput(console, execute(console));
}
