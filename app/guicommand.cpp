// SPDX-License-Identifier: MIT
#include "guicommand.h"

#include "adminserver.h"
#include "appsetup.h"
#include "cli.h"
#include "desktop.h"
#include "engineconfig.h"
#include "mainwindow.h"
#include "serversettings.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "tasksfile.h"
#include "tasksfilewatcher.h"
#include "theme.h"
#include "usersettings.h"
#include "../core/internal/tsan.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QIcon>
#include <QLibraryInfo>
#include <QLocale>
#include <QThreadPool>
#include <QTranslator>

#include <cstdio>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

void printError(const QString &text)
{
    std::fputs(qPrintable(text + u'\n'), stderr);
    std::fflush(stderr);
}

// ":1", ":1.0", "unix:1": the local server's socket; "host:10.0" is a remote (ssh) display.
QString x11Problem(const QString &display)
{
    const qsizetype colon = display.lastIndexOf(u':');
    if (colon < 0)
        return u"DISPLAY=%1 is not a display name (such as :0)"_s.arg(display);
    const QString host = display.left(colon);
    if (!host.isEmpty() && host != "unix"_L1)
        return QString(); // a remote display: only Qt can tell
    QString number = display.mid(colon + 1);
    number = number.left(number.indexOf(u'.') < 0 ? number.size() : number.indexOf(u'.'));
    bool ok = false;
    number.toUInt(&ok);
    if (!ok)
        return u"DISPLAY=%1 is not a display name (such as :0)"_s.arg(display);
    const QString socket = u"/tmp/.X11-unix/X"_s + number;
    if (!QFileInfo::exists(socket))
        return u"the X display %1 is not running (%2 does not exist)"_s.arg(display, socket);
    return QString();
}

QString waylandProblem(const QProcessEnvironment &env, const QString &name)
{
    const QString socket = QDir::isAbsolutePath(name)
        ? name
        : QDir(env.value(u"XDG_RUNTIME_DIR"_s)).filePath(name);
    if (!QFileInfo::exists(socket))
        return u"the Wayland display %1 is not running (%2 does not exist)"_s.arg(name, socket);
    return QString();
}

} // namespace

QString displayProblem(const QProcessEnvironment &env)
{
    const QString platform = env.value(u"QT_QPA_PLATFORM"_s).section(u':', 0, 0);
    const QString display = env.value(u"DISPLAY"_s);
    const QString wayland = env.value(u"WAYLAND_DISPLAY"_s);
    if (platform == "xcb"_L1)
        return display.isEmpty() ? u"QT_QPA_PLATFORM is xcb but DISPLAY is not set"_s
                                 : x11Problem(display);
    if (platform.startsWith("wayland"_L1))
        return wayland.isEmpty() ? u"QT_QPA_PLATFORM is wayland but WAYLAND_DISPLAY is not set"_s
                                 : waylandProblem(env, wayland);
    if (!platform.isEmpty())
        return QString(); // offscreen, vnc, eglfs ...: they need no display server
    if (!wayland.isEmpty() && waylandProblem(env, wayland).isEmpty())
        return QString();
    if (!display.isEmpty())
        return x11Problem(display);
    if (!wayland.isEmpty())
        return waylandProblem(env, wayland);
    return u"there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"_s;
}

int runGui(int &argc, char **argv, const CommandLine &commandLine)
{
    const QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    if (const QString problem = displayProblem(env); !problem.isEmpty()) {
        printError(u"taskdeck: cannot open the window: "_s + problem + u".\n"
                   u"The command line works without one (taskdeck help), and so does the web "
                   u"admin: taskdeck serve"_s);
        return exitcode::Usage;
    }

    QApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"taskdeck"_s);
    QCoreApplication::setOrganizationName(u"taskdeck"_s);
    QCoreApplication::setApplicationVersion(QStringLiteral(TASKDECK_VERSION));
    QGuiApplication::setApplicationDisplayName(u"Taskdeck"_s);
    QGuiApplication::setDesktopFileName(u"io.taskdeck.Taskdeck"_s);
    QGuiApplication::setWindowIcon(ui::applicationIcon());

    QTranslator qtTranslator;
    if (qtTranslator.load(QLocale(), u"qtbase"_s, u"_"_s,
                          QLibraryInfo::path(QLibraryInfo::TranslationsPath)))
        QCoreApplication::installTranslator(&qtTranslator);
    QTranslator translator;
    if (translator.load(QLocale(), u"taskdeck"_s, u"_"_s, u":/i18n"_s))
        QCoreApplication::installTranslator(&translator);

    QString error;
    std::optional<Settings> settings = Settings::load(env, commandLine.settings, &error);
    if (!settings) {
        printError(u"taskdeck: "_s + error);
        return exitcode::Usage;
    }
    const QStringList fixed = ui::fixedSettingVariables(env, commandLine.settings);
    ui::UserSettings::applySaved(*settings, fixed);
    settings->applyLogLevel();
    ui::applyTheme(app, ui::UserSettings::theme());

    ui::DesktopServices services;
    services.settings = *settings;
    services.fixedSettings = fixed;
    services.dataDir = dataDirectory(*settings);

    QString historyError;
    const QString database = databaseUrl(commandLine.database, env);
    const std::unique_ptr<IRunStore> store =
        openRunStore(*settings, database, &historyError, SqliteRunStore::OpenMode::ReadWrite);
    if (!store && !database.isEmpty()) {
        // A shared database that was asked for is never silently replaced by no history.
        printError(u"taskdeck: history unavailable: "_s + historyError);
        return exitcode::Usage;
    }
    services.store = store.get();
    services.historyError = historyError;

    TaskRegistry registry;
    registerStandardTasks(registry, store.get(), *settings);
    services.registry = &registry;
    std::unique_ptr<TasksFileWatcher> tasksFile;
    if (const QString path = findTasksFile(settings->tasksFile, env); !path.isEmpty()) {
        tasksFile = std::make_unique<TasksFileWatcher>(path, &registry);
        tasksFile->load(); // its errors are shown in the window, which asks lastErrors()
        tasksFile->startWatching();
    }
    services.tasksFile = tasksFile.get();

    TaskEngine engine(&registry, settings->engine);
    if (store)
        engine.setRecorder(store.get());
    services.engine = &engine;

    std::unique_ptr<AdminServer> server;
    if (commandLine.listen != "off"_L1) {
        ServerSettings serverSettings;
        serverSettings.dataDir = services.dataDir;
        serverSettings.webSocketEnabled = settings->websocketEnabled;
        bool addressOk = true;
        if (!commandLine.listen.isEmpty()) {
            const auto address = parseListenAddress(commandLine.listen, &error);
            if (address) {
                serverSettings.address = address->first;
                serverSettings.port = address->second;
            } else {
                services.serverError = error;
                addressOk = false;
            }
        }
        if (addressOk) {
            server = std::make_unique<AdminServer>(&engine, store.get(), serverSettings);
            if (!server->listen(&error)) {
                services.serverError = error;
                server.reset();
            }
        }
    }
    services.server = server.get();

    int code = 0;
    {
        ui::MainWindow window(services);
        window.show();
        code = QApplication::exec();
    }
    // Exports of the window may still be reading the history on the pool's threads
    // (detail::computeOnPool()); waitForPool() orders their end before what follows.
    detail::waitForPool(QThreadPool::globalInstance());
    server.reset();
    engine.shutdown();
    if (store)
        store->flush(std::chrono::seconds(10));
    return code;
}

} // namespace taskdeck
