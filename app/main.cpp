// SPDX-License-Identifier: MIT
// The taskdeck command line: parse, wire the engine, dispatch to Cli.

#include <QCoreApplication>
#include <QProcessEnvironment>

#include "tasks/builtintasks.h"
#include "cli.h"
#include "console.h"
#include "engineconfig.h"
#include "taskengine.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"taskdeck"_s);
    QCoreApplication::setApplicationVersion(QStringLiteral(TASKDECK_VERSION));

    Console console;
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
    case CommandLine::Command::List:
    case CommandLine::Command::Run:
        break;
    }

    QString error;
    const std::optional<Settings> settings =
        Settings::load(QProcessEnvironment::systemEnvironment(), commandLine.settings, &error);
    if (!settings) {
        console.err(u"taskdeck: "_s + error);
        return exitcode::Usage;
    }
    settings->applyLogLevel();

    TaskRegistry registry;
    registerBuiltinTasks(registry);
    TaskEngine engine(&registry, settings->engine);
    Cli cli(&engine, &console);
    const int code = cli.execute(commandLine);
    console.flush();
    return code;
}
