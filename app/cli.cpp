// SPDX-License-Identifier: MIT
#include "cli.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <QDate>
#include <QDateTime>
#include <QEventLoop>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QTime>

#include "command.h"
#include "console.h"
#include "eachinput.h"
#include "eachrun.h"
#include "engineconfig.h"
#include "field.h"
#include "signalwatcher.h"
#include "runstore.h"
#include "taskengine.h"
#include "tasksfilewatcher.h"
#include "textformat.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

using Channel = Console::Channel;

// run --each keeps at most this many runs in the engine (or four per concurrent run, if
// that is more).
constexpr qsizetype kEachWindow = 1024;

const QString DurationHelp =
    u"a duration such as 90 (seconds), 1.5s, 10m or 1h30m (units ms, s, m, h, d)"_s;

// Settings::options() may spell flags with or without dashes; the table below wants them.
QString dashed(const QString &flag)
{
    QString name = flag;
    while (name.startsWith(u'-'))
        name.remove(0, 1);
    return u"--"_s + name;
}

// "--max-concurrent" -> "TASK_MAX_CONCURRENT", built from the one list of settings.
QHash<QString, QString> settingFlags()
{
    QHash<QString, QString> flags;
    for (const Settings::Option &option : Settings::options())
        flags.insert(dashed(option.flag), option.variable);
    return flags;
}

using CliCommand = CommandLine::Command;

std::optional<CliCommand> commandFromName(const QString &name)
{
    static const QHash<QString, CliCommand> commands = {
        {u"list"_s, CliCommand::List},       {u"run"_s, CliCommand::Run},
        {u"history"_s, CliCommand::History}, {u"show"_s, CliCommand::Show},
        {u"log"_s, CliCommand::Log},         {u"export"_s, CliCommand::Export},
        {u"rerun"_s, CliCommand::Rerun},     {u"help"_s, CliCommand::Help},
        {u"serve"_s, CliCommand::Serve},     {u"gui"_s, CliCommand::Gui},
        {u"start"_s, CliCommand::Start},     {u"worker"_s, CliCommand::Worker},
        {u"cancel"_s, CliCommand::Cancel},
    };
    const auto found = commands.constFind(name);
    if (found == commands.cend())
        return std::nullopt;
    return found.value();
}

QString commandName(CliCommand command)
{
    switch (command) {
    case CliCommand::List:
        return u"list"_s;
    case CliCommand::Run:
        return u"run"_s;
    case CliCommand::History:
        return u"history"_s;
    case CliCommand::Show:
        return u"show"_s;
    case CliCommand::Log:
        return u"log"_s;
    case CliCommand::Export:
        return u"export"_s;
    case CliCommand::Rerun:
        return u"rerun"_s;
    case CliCommand::Help:
        return u"help"_s;
    case CliCommand::Serve:
        return u"serve"_s;
    case CliCommand::Gui:
        return u"gui"_s;
    case CliCommand::Start:
        return u"start"_s;
    case CliCommand::Worker:
        return u"worker"_s;
    case CliCommand::Cancel:
        return u"cancel"_s;
    case CliCommand::None:
    case CliCommand::Version:
        break;
    }
    return QString();
}

// The options that belong to a command (after it on the line), as opposed to settings.
enum class CommandOption { Json, Yes, Arg, Timeout, Each, Task, Status, Since, Limit, Offset,
                           From, Format, Output, Check, Listen, Concurrency, Lease, Poll, MaxRunning,
                           StartRate, Local };

std::optional<CommandOption> commandOptionFromName(const QString &name)
{
    static const QHash<QString, CommandOption> options = {
        {u"--json"_s, CommandOption::Json},     {u"--yes"_s, CommandOption::Yes},
        {u"-y"_s, CommandOption::Yes},          {u"--arg"_s, CommandOption::Arg},
        {u"--timeout"_s, CommandOption::Timeout}, {u"--each"_s, CommandOption::Each},
        {u"--task"_s, CommandOption::Task},     {u"--status"_s, CommandOption::Status},
        {u"--since"_s, CommandOption::Since},   {u"--limit"_s, CommandOption::Limit},
        {u"--offset"_s, CommandOption::Offset}, {u"--from"_s, CommandOption::From},
        {u"--format"_s, CommandOption::Format}, {u"--output"_s, CommandOption::Output},
        {u"-o"_s, CommandOption::Output},       {u"--check"_s, CommandOption::Check},
        {u"--listen"_s, CommandOption::Listen},
        {u"--concurrency"_s, CommandOption::Concurrency}, {u"--lease"_s, CommandOption::Lease},
        {u"--poll"_s, CommandOption::Poll},     {u"--max-running"_s, CommandOption::MaxRunning},
        // The shared queue: its start rate (worker), and run here on purpose (run).
        {u"--start-rate"_s, CommandOption::StartRate}, {u"--local"_s, CommandOption::Local},
    };
    const auto found = options.constFind(name);
    if (found == options.cend())
        return std::nullopt;
    return found.value();
}

bool acceptsOption(CliCommand command, CommandOption option)
{
    using O = CommandOption;
    switch (command) {
    case CliCommand::List:
    case CliCommand::Show:
        return option == O::Json;
    case CliCommand::Run:
        return option == O::Json || option == O::Yes || option == O::Arg || option == O::Timeout
            || option == O::Each || option == O::Local;
    case CliCommand::Rerun:
        return option == O::Json || option == O::Yes || option == O::Arg || option == O::Timeout;
    case CliCommand::History:
        return option == O::Json || option == O::Task || option == O::Status
            || option == O::Since || option == O::Limit || option == O::Offset || option == O::Check;
    case CliCommand::Log:
        return option == O::From;
    case CliCommand::Export:
        return option == O::Format || option == O::Output;
    case CliCommand::Serve:
    case CliCommand::Gui:
        return option == O::Listen;
    case CliCommand::Start:
        return option == O::Json || option == O::Yes || option == O::Arg || option == O::Each;
    case CliCommand::Worker:
        return option == O::Concurrency || option == O::Lease || option == O::Poll
            || option == O::MaxRunning || option == O::StartRate;
    case CliCommand::None:
    case CliCommand::Help:
    case CliCommand::Version:
    case CliCommand::Cancel:
        break;
    }
    return false;
}

bool takesValue(CommandOption option)
{
    return option != CommandOption::Json && option != CommandOption::Yes
        && option != CommandOption::Check && option != CommandOption::Local;
}

std::optional<qint64> parseWholeNumber(const QString &text, qint64 min, qint64 max)
{
    bool ok = false;
    const qint64 value = text.trimmed().toLongLong(&ok);
    if (!ok || value < min || value > max)
        return std::nullopt;
    return value;
}

const QString SinceHelp =
    u"a date (2026-01-31, from local midnight), a local date and time (2026-01-31T14:30, "
    u"or with Z or an offset), or how long ago (90m, 12h, 7d)"_s;

// A date, or a date and time with an optional zone, as --since takes it. Each part is
// checked: Qt's own ISO parsing reads "2026-01-31T14:30Z" as a bare date when asked for a
// date, and it lets some impossible times through.
std::optional<QDateTime> parseSinceTimestamp(const QString &text)
{
    static const QRegularExpression form(
        u"^(\\d{4})-(\\d{2})-(\\d{2})"
        u"(?:[T ](\\d{2}):(\\d{2})(?::(\\d{2})(?:[.,](\\d{1,9}))?)?"
        u"(Z|[+-](\\d{2})(?::?(\\d{2}))?)?)?$"_s);
    const QRegularExpressionMatch m = form.match(text);
    if (!m.hasMatch())
        return std::nullopt;
    const auto number = [&m](int group) { return m.captured(group).toInt(); };
    const QDate date(number(1), number(2), number(3));
    if (!date.isValid())
        return std::nullopt;
    if (!m.hasCaptured(4))
        return date.startOfDay();

    const int ms = m.hasCaptured(7) ? m.captured(7).left(3).leftJustified(3, u'0').toInt() : 0;
    const QTime time(number(4), number(5), number(6), ms);
    if (!time.isValid())
        return std::nullopt;
    if (!m.hasCaptured(8))
        return QDateTime(date, time);
    if (m.captured(8) == u"Z")
        return QDateTime(date, time, Qt::UTC);
    const int hours = number(9);
    const int minutes = number(10);
    constexpr int MaxOffsetHours = 14;
    if (minutes > 59 || hours * 60 + minutes > MaxOffsetHours * 60)
        return std::nullopt;
    const int sign = m.captured(8).startsWith(u'-') ? -1 : 1;
    return QDateTime(date, time, Qt::OffsetFromUTC, sign * (hours * 3600 + minutes * 60));
}

std::optional<QDateTime> parseSince(const QString &text)
{
    const QString trimmed = text.trimmed();
    if (const std::optional<QDateTime> when = parseSinceTimestamp(trimmed))
        return when;
    if (const auto ago = parseDuration(trimmed))
        return QDateTime::currentDateTimeUtc().addMSecs(-ago->count());
    return std::nullopt;
}

void addArgument(QJsonObject &args, const QString &name, const QString &value)
{
    const QJsonValue previous = args.value(name);
    if (previous.isUndefined()) {
        args.insert(name, value);
    } else if (previous.isArray()) {
        QJsonArray values = previous.toArray();
        values.append(value);
        args.insert(name, values);
    } else {
        args.insert(name, QJsonArray{previous, value});
    }
}

// What of a run's error detail to show at a prompt: stack traces help whoever reads --json
// or the history, not someone waiting for a command; long tails are cut.
QString terminalDetail(const QString &detail)
{
    constexpr qsizetype MaxLines = 20;
    QStringList shown;
    const QStringList lines = detail.split(u'\n');
    for (const QString &line : lines) {
        if (line.trimmed() == u"stack:") {
            shown.append(u"stack: (left out; --json has it)"_s);
            break;
        }
        if (shown.size() == MaxLines) {
            shown.append(u"... (%1 more lines; --json has them)"_s.arg(lines.size() - MaxLines));
            break;
        }
        shown.append(line);
    }
    return shown.join(u'\n');
}

QString fieldsColumn(const Fields &fields)
{
    QStringList parts;
    for (const Field &field : fields)
        parts.append(field.key + (field.required ? u"*"_s : QString()) + u':'
                     + fieldTypeName(field.type));
    return parts.isEmpty() ? u"-"_s : parts.join(u", "_s);
}

QString flagsColumn(const Task &task)
{
    QStringList flags;
    if (task.isDangerous())
        flags.append(u"danger"_s);
    if (task.expensive)
        flags.append(u"expensive"_s);
    return flags.isEmpty() ? u"-"_s : flags.join(u',');
}

} // namespace

CommandLine parseCommandLine(const QStringList &arguments)
{
    CommandLine cl;
    const QHash<QString, QString> globalFlags = settingFlags();
    bool version = false;
    bool commandSeen = false;
    bool onlyPositionals = false;
    QStringList positionals;

    auto failed = [&cl](const QString &message) {
        cl.error = message;
        return cl;
    };

    // Asking for help never fails, whatever else is wrong on the line.
    for (const QString &arg : arguments) {
        if (arg == u"--")
            break;
        if (arg == u"-h" || arg == u"--help") {
            cl.command = CliCommand::Help;
            return cl;
        }
    }

    for (qsizetype i = 0; i < arguments.size(); ++i) {
        const QString &arg = arguments.at(i);
        const bool isOption = !onlyPositionals && arg.size() > 1 && arg.startsWith(u'-');
        if (!isOption) {
            if (commandSeen) {
                positionals.append(arg);
                continue;
            }
            const std::optional<CliCommand> command = commandFromName(arg);
            if (!command)
                return failed(u"unknown command \"%1\""_s.arg(arg));
            cl.command = *command;
            commandSeen = true;
            continue;
        }
        if (arg == u"--") {
            onlyPositionals = true;
            continue;
        }

        QString name = arg;
        std::optional<QString> inlineValue;
        if (const qsizetype eq = arg.indexOf(u'='); arg.startsWith(u"--") && eq > 2) {
            name = arg.left(eq);
            inlineValue = arg.mid(eq + 1);
        }
        auto takeValue = [&]() -> std::optional<QString> {
            if (inlineValue)
                return inlineValue;
            if (i + 1 < arguments.size())
                return arguments.at(++i);
            return std::nullopt;
        };

        if (name == u"--version") {
            version = true;
            continue;
        }

        const std::optional<CommandOption> option = commandOptionFromName(name);
        if (commandSeen && option && acceptsOption(cl.command, *option)) {
            std::optional<QString> value;
            if (!takesValue(*option)) {
                if (inlineValue)
                    return failed(u"option %1 takes no value"_s.arg(name));
            } else {
                value = takeValue();
            }
            auto invalid = [&](const QString &expected) {
                return failed(u"invalid value \"%1\" for %2: expected %3"_s
                                  .arg(value.value_or(QString()), name, expected));
            };
            switch (*option) {
            case CommandOption::Json:
                cl.json = true;
                break;
            case CommandOption::Yes:
                cl.confirmed = true;
                break;
            case CommandOption::Arg: {
                if (!value)
                    return failed(u"option --arg needs a value: --arg NAME=VALUE"_s);
                const qsizetype eq = value->indexOf(u'=');
                if (eq <= 0)
                    return failed(u"option --arg expects NAME=VALUE, got \"%1\""_s.arg(*value));
                addArgument(cl.args, value->left(eq), value->mid(eq + 1));
                break;
            }
            case CommandOption::Timeout:
                if (!value)
                    return failed(u"option --timeout needs a value: "_s + DurationHelp);
                cl.timeout = parseDuration(*value);
                if (!cl.timeout && !durationTooLong(*value).isEmpty())
                    return invalid(durationTooLong(*value));
                if (!cl.timeout)
                    return invalid(DurationHelp);
                break;
            case CommandOption::Each:
                if (!value || value->isEmpty())
                    return failed(u"option --each needs a file name (- for stdin)"_s);
                cl.eachFile = *value;
                break;
            case CommandOption::Task:
                if (!value || value->isEmpty())
                    return failed(u"option --task needs a task key"_s);
                cl.taskFilter = *value;
                break;
            case CommandOption::Status:
                if (!value)
                    return failed(u"option --status needs a value: one of "_s
                                  + runStatusNames().join(u", "_s));
                cl.statusFilter = runStatusFromName(value->trimmed());
                if (!cl.statusFilter)
                    return invalid(u"one of "_s + runStatusNames().join(u", "_s));
                break;
            case CommandOption::Since: {
                if (!value)
                    return failed(u"option --since needs a value: "_s + SinceHelp);
                const std::optional<QDateTime> since = parseSince(*value);
                if (!since)
                    return invalid(SinceHelp);
                cl.since = *since;
                break;
            }
            case CommandOption::Limit: {
                const auto limit = value ? parseWholeNumber(*value, 1, 1000) : std::nullopt;
                if (!limit)
                    return invalid(u"a whole number from 1 to 1000"_s);
                cl.limit = static_cast<int>(*limit);
                break;
            }
            case CommandOption::Offset: {
                const auto offset = value ? parseWholeNumber(*value, 0, 1000000000) : std::nullopt;
                if (!offset)
                    return invalid(u"a whole number from 0"_s);
                cl.offset = static_cast<int>(*offset);
                break;
            }
            case CommandOption::From: {
                const auto from = value ? parseWholeNumber(*value, 1,
                                                           std::numeric_limits<qint64>::max())
                                        : std::nullopt;
                if (!from)
                    return invalid(u"a line number from 1"_s);
                cl.fromLine = *from;
                break;
            }
            case CommandOption::Format:
                if (value.value_or(QString()) == u"json")
                    cl.format = CommandLine::ExportFormat::Json;
                else if (value.value_or(QString()) == u"csv")
                    cl.format = CommandLine::ExportFormat::Csv;
                else
                    return invalid(u"json or csv"_s);
                break;
            case CommandOption::Output:
                if (!value || value->isEmpty())
                    return failed(u"option %1 needs a file name (- for stdout)"_s.arg(name));
                cl.outputFile = *value == u"-" ? QString() : *value;
                break;
            case CommandOption::Check:
                cl.check = true;
                break;
            case CommandOption::Listen:
                if (!value || value->isEmpty())
                    return failed(u"option --listen needs ADDRESS:PORT, such as 127.0.0.1:8470"_s);
                cl.listen = *value;
                break;
            case CommandOption::Concurrency: {
                const auto concurrency = value ? parseWholeNumber(*value, 1, 1024) : std::nullopt;
                if (!concurrency)
                    return invalid(u"a whole number from 1 to 1024"_s);
                cl.concurrency = static_cast<int>(*concurrency);
                break;
            }
            case CommandOption::Lease:
                if (!value)
                    return failed(u"option --lease needs a value: "_s + DurationHelp);
                cl.lease = parseDuration(*value);
                if (!cl.lease)
                    return invalid(DurationHelp);
                break;
            case CommandOption::MaxRunning: {
                if (value.value_or(QString()) == u"off") {
                    cl.maxRunning = -1;
                    break;
                }
                const auto most = value ? parseWholeNumber(*value, 1, 1000000) : std::nullopt;
                if (!most)
                    return invalid(u"a whole number from 1, or off"_s);
                cl.maxRunning = static_cast<int>(*most);
                break;
            }
            case CommandOption::StartRate: {
                // N/s or N/m, as TASK_RATE_LIMIT; off clears the queue's rate.
                static const QRegularExpression rate(u"^(\\d{1,9}(?:\\.\\d{1,9})?)/([sm])$"_s);
                const QString text = value.value_or(QString()).trimmed();
                const QRegularExpressionMatch m = rate.match(text);
                const double perSecond = m.hasMatch()
                    ? m.captured(1).toDouble() / (m.captured(2) == u"m" ? 60.0 : 1.0) : 0.0;
                if (text == u"off")
                    cl.startRate = 0.0;
                else if (perSecond > 0)
                    cl.startRate = perSecond;
                else
                    return invalid(u"N/s or N/m (10/s, 600/m, 0.5/s), or off"_s);
                break;
            }
            case CommandOption::Local:
                cl.local = true;
                break;
            case CommandOption::Poll:
                if (!value)
                    return failed(u"option --poll needs a value: "_s + DurationHelp);
                cl.poll = parseDuration(*value);
                if (!cl.poll)
                    return invalid(DurationHelp);
                break;
            }
            continue;
        }
        if (name == u"--database") {
            // The shared PostgreSQL database (see docs/postgresql.md); not a Settings value,
            // so that no listing of settings ever shows its password.
            const std::optional<QString> value = takeValue();
            if (!value || value->isEmpty())
                return failed(u"option --database needs a URL: postgresql://USER@HOST:PORT/DATABASE"_s);
            cl.database = *value;
            continue;
        }
        if (const auto flag = globalFlags.constFind(name); flag != globalFlags.cend()) {
            const std::optional<QString> value = takeValue();
            if (!value)
                return failed(u"option %1 needs a value"_s.arg(name));
            cl.settings.insert(flag.value(), *value);
            continue;
        }
        if (!commandSeen && option)
            return failed(u"option %1 belongs after the command (taskdeck COMMAND ... %1)"_s
                              .arg(name));
        if (commandSeen && option)
            return failed(u"unknown option \"%1\" for %2"_s.arg(name, commandName(cl.command)));
        return failed(u"unknown option \"%1\""_s.arg(name));
    }

    if (version) {
        cl.command = CliCommand::Version;
        return cl;
    }
    switch (cl.command) {
    case CliCommand::List:
    case CliCommand::Help:
    case CliCommand::History:
    case CliCommand::Serve:
    case CliCommand::Gui:
    case CliCommand::Worker:
        if (!positionals.isEmpty())
            return failed(u"unexpected argument \"%1\""_s.arg(positionals.constFirst()));
        break;
    case CliCommand::Run:
    case CliCommand::Start:
        if (positionals.isEmpty())
            return failed(u"%1 needs a task key (taskdeck list shows them)"_s.arg(commandName(cl.command)));
        if (positionals.size() > 1)
            return failed(u"unexpected argument \"%1\" (arguments go in --arg NAME=VALUE)"_s
                              .arg(positionals.at(1)));
        cl.taskKey = positionals.constFirst();
        break;
    case CliCommand::Show:
    case CliCommand::Log:
    case CliCommand::Export:
    case CliCommand::Rerun:
    case CliCommand::Cancel:
        if (positionals.isEmpty())
            return failed(u"%1 needs a run id (taskdeck history shows them)"_s
                              .arg(commandName(cl.command)));
        if (positionals.size() > 1) {
            return failed(u"unexpected argument \"%1\"%2"_s.arg(
                positionals.at(1), cl.command == CliCommand::Rerun
                                       ? u" (arguments go in --arg NAME=VALUE)"_s
                                       : QString()));
        }
        cl.runId = positionals.constFirst().trimmed();
        break;
    case CliCommand::None:
    case CliCommand::Version:
        break;
    }
    return cl;
}

QString invalidUtf8Argument(int argc, const char *const *argv)
{
    for (int i = 1; i < argc; ++i) {
        const QByteArrayView bytes(argv[i]);
        const QString where = invalidUtf8Text(bytes);
        if (where.isEmpty())
            continue;
        // Shown with the bytes that are not UTF-8 as \xHH, so the message itself is text.
        QString shown;
        qsizetype at = 0;
        while (at < bytes.size()) {
            const qsizetype bad = invalidUtf8Offset(bytes.sliced(at));
            if (bad < 0) {
                shown += QString::fromUtf8(bytes.sliced(at));
                break;
            }
            shown += QString::fromUtf8(bytes.sliced(at, bad));
            shown += u"\\x%1"_s.arg(QString::number(quint8(bytes[at + bad]), 16).toUpper().rightJustified(2, u'0'));
            at += bad + 1;
        }
        return u"argument %1 (%2) is not valid UTF-8: %3; Taskdeck takes arguments as UTF-8 text only "
               "and never changes them (a file whose name is not UTF-8 can be renamed, with convmv for "
               "instance)"_s.arg(i).arg(shown, where);
    }
    return QString();
}

bool needsHistory(CommandLine::Command command)
{
    switch (command) {
    case CliCommand::History:
    case CliCommand::Show:
    case CliCommand::Log:
    case CliCommand::Export:
    case CliCommand::Rerun:
    case CliCommand::Cancel:
        return true;
    default:
        return false;
    }
}

bool needsTasks(CommandLine::Command command)
{
    return command == CliCommand::List || command == CliCommand::Run
        || command == CliCommand::Rerun || command == CliCommand::Serve
        || command == CliCommand::Gui || command == CliCommand::Start
        || command == CliCommand::Worker;
}

QString usageText()
{
    QString text = uR"(Usage: taskdeck [OPTIONS] [COMMAND [ARGS]]

Runs Taskdeck tasks from the command line. With no command, opens the window.

Commands:
)"_s;
    text += formatHelpRows({
        {u"  list [--json]"_s, u"List the tasks, or print them as a JSON array"_s},
        {u"  run KEY [RUN OPTIONS]"_s,
         u"Run a task, stream its log and wait for it to end; the run is recorded in the "
         u"history (plain mode names it on stderr: \"run ID\"). With a shared database it is "
         u"queued for a worker and followed there (interrupting cancels it on the worker); "
         u"--local runs it here, as do --each and tasks with secret fields"_s},
        {u"  history [HISTORY OPTIONS]"_s,
         u"List recorded runs, newest first, with their ids"_s},
        {u"  show RUN_ID [--json]"_s,
         u"Everything about one run: arguments, times, result, error, trace id"_s},
        {u"  log RUN_ID [--from N]"_s,
         u"Print a run's whole stored log (from line N); stderr lines are marked \"! \", "
         u"Taskdeck's own \"# \""_s},
        {u"  cancel RUN_ID"_s,
         u"Cancel a queued or running run of another process: with a shared database, one "
         u"waiting in the queue at once, one on a worker by asking its worker. Without one, "
         u"only the process that runs it can (it says which)"_s},
        {u"  export RUN_ID [EXPORT OPTIONS]"_s,
         u"Write a run and its whole log as JSON, or its log as CSV"_s},
        {u"  rerun RUN_ID [RUN OPTIONS]"_s,
         u"Run a recorded run's task again with its arguments; secrets are not stored, so "
         u"give each again with --arg. Then like run"_s},
        {u"  serve [--listen ADDRESS:PORT]"_s,
         u"Run the tasks and the admin server without a window (default 127.0.0.1:8470); "
         u"prints the address and a login link; SIGINT or SIGTERM stops it"_s},
        {u"  gui [--listen ADDRESS:PORT|off]"_s,
         u"Open the desktop window (the default with no command); it also serves the web "
         u"admin, on 127.0.0.1:8470 unless told otherwise"_s},
        {u"  start KEY [RUN OPTIONS]"_s,
         u"With a shared database (--database): queue runs for the workers without running "
         u"them and print their ids, one a line (takes --arg, --yes, --each, --json). Without "
         u"one it runs them as run does, and says so"_s},
        {u"  worker [WORKER OPTIONS]"_s,
         u"With a shared database: run queued runs of the tasks this Taskdeck has (built-in "
         u"and the tasks file) until SIGINT or SIGTERM; then it hands back what it has not "
         u"started and lets the rest finish (a second signal cancels them)"_s},
        {u"  help"_s, u"Show this help"_s},
    });

    text += u"\nRun options (rerun takes all but --each; its --arg values replace stored "
            u"ones):\n"_s;
    text += formatHelpRows({
        {u"  --arg NAME=VALUE"_s,
         u"Set an argument; repeat a NAME to pass a list (for a multiselect)"_s},
        {u"  -y, --yes"_s, u"Confirm a dangerous task (with --each: every run)"_s},
        {u"  --timeout DURATION"_s,
         u"This run's time limit, over the task's own and TASK_TIMEOUT: 90, 1.5s, 10m, 1h30m"_s},
        {u"  --local"_s,
         u"With a shared database: run here rather than queue the run for a worker and follow it"_s},
        {u"  --json"_s,
         u"Print the finished run as one JSON object on stdout and the log on stderr; "
         u"a run that cannot start prints {\"error\": {...}} instead"_s},
        {u"  --each FILE"_s,
         u"Run once per line of FILE (- reads stdin, line by line as it arrives). Each line "
         u"is a JSON object of arguments, merged over the --arg values. Runs start as "
         u"earlier ones end, under the engine's limits, at most %1 (or 4 per concurrent run) "
         u"waiting or running at once. After an interrupt the lines of FILE not started are "
         u"reported as skipped; stdin is read no further. With --json, one JSON object per "
         u"line as runs end, each with the \"line\" it came from"_s.arg(kEachWindow)},
    });

    text += u"\nWorker options:\n"_s;
    text += formatHelpRows({
        {u"  --concurrency N"_s, u"Runs at once in this worker (default: TASK_MAX_CONCURRENT)"_s},
        {u"  --max-running N|off"_s,
         u"Store in the shared database that at most N runs are held by all workers together; "
         u"every worker obeys it, a worker started without the option too"_s},
        {u"  --start-rate RATE|off"_s,
         u"Store in the shared database how many runs all workers together may start: N/s or "
         u"N/m, in bursts of up to N (as TASK_RATE_LIMIT for one process)"_s},
        {u"  --lease DURATION"_s,
         u"How long a claimed run is held without renewal (default 30s): a worker that dies "
         u"loses its runs after that, and they are retried or marked interrupted"_s},
        {u"  --poll DURATION"_s,
         u"How often the worker looks at the queue besides being woken by LISTEN (default 2s)"_s},
    });

    text += u"\nHistory options:\n"_s;
    text += formatHelpRows({
        {u"  --task KEY"_s, u"Only runs of this task"_s},
        {u"  --status STATUS"_s, u"Only runs in this state: "_s + runStatusNames().join(u", "_s)},
        {u"  --since WHEN"_s, u"Only runs queued since then: "_s + SinceHelp},
        {u"  --limit N"_s, u"Show at most N runs, 1 to 1000 (default: 50)"_s},
        {u"  --offset N"_s, u"Skip the N newest matching runs first (default: 0)"_s},
        {u"  --json"_s, u"Print the runs as a JSON array"_s},
        {u"  --check"_s,
         u"Instead of listing runs, check the whole history file for damage (it reads all of "
         u"it); prints ok and exits 0, or lists the problems and exits 1"_s},
    });

    text += u"\nExport options:\n"_s;
    text += formatHelpRows({
        {u"  --format json|csv"_s,
         u"json (default): the run as show --json prints it, with a \"log\" array of "
         u"{n, time, stream, text}; csv: the log only, RFC 4180, header n,time,stream,text"_s},
        {u"  -o, --output FILE"_s,
         u"Write to FILE (replaced only once complete) instead of stdout"_s},
    });

    text += u"\nOptions (before or after the command; a flag beats its environment variable):\n"_s;
    QList<QPair<QString, QString>> rows;
    for (const Settings::Option &option : Settings::options()) {
        QString accepted = option.accepted;
        if (!option.defaultText.isEmpty())
            accepted += u" (default: "_s + option.defaultText + u')';
        rows.append({u"  "_s + dashed(option.flag) + u" VALUE"_s, accepted});
    }
    rows.append({u"  --database URL"_s,
                 u"A shared PostgreSQL database for the history and the queue: "
                 u"postgresql://USER@HOST:PORT/DATABASE (TASK_DATABASE_URL; default: none, the "
                 u"SQLite history in the data directory)"_s});
    rows.append({u"  -h, --help"_s, u"Show this help"_s});
    rows.append({u"  --version"_s, u"Show the version"_s});
    text += formatHelpRows(rows);

    text += u"\nEnvironment:\n"_s;
    rows.clear();
    for (const Settings::Option &option : Settings::options())
        rows.append({u"  "_s + option.variable, u"same as "_s + dashed(option.flag)});
    rows.append({u"  TASK_DATABASE_URL"_s, u"same as --database"_s});
    text += formatHelpRows(rows);

    text += u"\nExit codes:\n"_s;
    text += formatHelpRows({
        {u"  0"_s, u"succeeded (with --each: every input succeeded)"_s},
        {u"  1"_s, u"a run failed, was canceled or timed out (with --each: some input did "
                   u"not succeed or was invalid)"_s},
        {u"  2"_s, u"usage error, unknown task or run id, invalid arguments, confirmation "
                   u"missing, invalid configuration or tasks file given with --tasks or "
                   u"TASK_FILE, history unavailable (for history, show, log, export, rerun), "
                   u"output file not writable"_s},
        {u"  3"_s, u"the runs succeeded but the history did not keep all of them or all of "
                   u"their logs (a full disk; see docs/history.md)"_s},
        {u"  130"_s, u"interrupted twice (a first SIGINT or SIGTERM cancels the runs)"_s},
    });

    text += u"\nFiles:\n"_s;
    text += formatHelpRows({
        {u"  tasks"_s,
         u"Built-in tasks, plus those of a YAML tasks file: the one given with --tasks or "
         u"TASK_FILE, else taskdeck.yml in the working directory, else in the config "
         u"directory (~/.config/taskdeck/). Mistakes are reported as file:line:column"_s},
        {u"  history"_s,
         u"history.sqlite3 in the data directory (--data-dir, TASK_DATA_DIR; default "
         u"~/.local/share/taskdeck), shared by every Taskdeck process; backups go to its "
         u"backups/ folder"_s},
        {u"  database"_s,
         u"With --database URL or TASK_DATABASE_URL (postgresql://USER@HOST:PORT/DATABASE), "
         u"the history is in that PostgreSQL database instead, shared by every Taskdeck on "
         u"every machine using it. The password comes from the URL, PGPASSWORD or ~/.pgpass "
         u"and is never printed"_s},
    });

    text += uR"(
Examples:
  taskdeck list
  taskdeck run checksum --arg file=/etc/hostname --arg algorithm=sha1
  taskdeck run exec --yes --arg command="ls -l /tmp" --json
  printf '{"file":"a.iso"}\n{"file":"b.iso"}\n' | taskdeck run checksum --each -
  taskdeck history --status failed --since 1d
  taskdeck show RUN_ID
  taskdeck export RUN_ID --format csv --output run.csv
  taskdeck rerun RUN_ID --arg token=...
)"_s;
    return text;
}

Cli::Cli(TaskEngine *engine, IRunStore *store, Console *console, QObject *parent)
    : QObject(parent)
    , m_engine(engine)
    , m_store(store)
    , m_console(console)
{
}

Cli::~Cli() = default;

int Cli::execute(const CommandLine &commandLine)
{
    switch (commandLine.command) {
    case CommandLine::Command::List:
        return list(commandLine.json);
    case CommandLine::Command::Run:
        return commandLine.eachFile ? runEach(commandLine) : run(commandLine);
    case CommandLine::Command::Rerun:
        return rerun(commandLine);
    case CommandLine::Command::None:
    case CommandLine::Command::Help:
    case CommandLine::Command::Version:
    case CommandLine::Command::History:
    case CommandLine::Command::Show:
    case CommandLine::Command::Log:
    case CommandLine::Command::Export:
    case CommandLine::Command::Serve:
    case CommandLine::Command::Gui:
    case CommandLine::Command::Worker:
    case CommandLine::Command::Cancel:
        break;
    case CommandLine::Command::Start:
        // Without a shared database there is no queue: start runs like run, and says so.
        m_console->err(u"taskdeck: no shared database (--database, TASK_DATABASE_URL): running here as "
                       u"taskdeck run does"_s);
        return commandLine.eachFile ? runEach(commandLine) : run(commandLine);
    }
    m_console->write(Channel::Err, usageText());
    return exitcode::Usage;
}

int Cli::list(bool json)
{
    const QList<TaskPtr> tasks = m_engine->registry()->tasks();
    if (json) {
        QJsonArray array;
        for (const TaskPtr &task : tasks)
            array.append(task->toJson());
        m_console->out(toJsonText(array, QJsonDocument::Indented));
        return exitcode::Success;
    }

    QList<QStringList> rows{{u"KEY"_s, u"TITLE"_s, u"CATEGORY"_s, u"TAGS"_s, u"FLAGS"_s,
                             u"FIELDS"_s}};
    for (const TaskPtr &task : tasks) {
        rows.append({task->key, task->title, task->category.isEmpty() ? u"-"_s : task->category,
                     task->tags.isEmpty() ? u"-"_s : task->tags.join(u','), flagsColumn(*task),
                     fieldsColumn(task->fields)});
    }
    m_console->write(Channel::Out, formatTable(rows));
    return exitcode::Success;
}

int Cli::run(const CommandLine &commandLine)
{
    const bool json = commandLine.json;
    const Channel logChannel = json ? Channel::Err : Channel::Out;

    RunOptions options;
    options.confirmed = commandLine.confirmed;
    options.timeout = commandLine.timeout;

    QString runId;
    qint64 lastLine = 0;
    std::optional<Run> finished;
    QEventLoop loop;
    // Every connection below ends with this scope, so no lambda outlives the locals it uses.
    QObject scope;

    auto printLines = [&](const LogLines &lines) {
        for (const LogLine &line : lines) {
            if (line.number <= lastLine)
                continue;
            lastLine = line.number;
            m_console->logLine(logChannel, line);
        }
        m_console->flush();
    };
    connect(m_engine, &TaskEngine::runLog, &scope,
            [&](const QString &id, const LogLines &lines) {
                if (id == runId)
                    printLines(lines);
            });
    connect(m_engine, &TaskEngine::runProgress, &scope,
            [&](const QString &id, const Progress &progress) {
                if (id == runId)
                    m_console->progress(progress);
            });
    connect(m_engine, &TaskEngine::runFinished, &scope, [&](const Run &finishedRun) {
        if (finishedRun.id != runId)
            return;
        finished = finishedRun;
        loop.quit();
    });

    SignalWatcher watcher({SIGINT, SIGTERM});
    connect(&watcher, &SignalWatcher::signalReceived, &scope,
            [this](int signalNumber) { interrupt(signalNumber); });

    const StartResult started = m_engine->start(commandLine.taskKey, commandLine.args, options);
    if (!started.ok())
        return reportStartError(commandLine.taskKey, started.error, json);
    runId = started.runId;
    // Without it, a run seen scrolling by could not be found in the history later.
    if (m_store && !json) {
        m_console->err(u"run "_s + runId);
        m_console->flush();
    }
    if (!finished)
        loop.exec();

    // Lines the last batch may not have carried before the finish event.
    printLines(m_engine->recentLog(runId));
    m_console->clearStatus();

    const Run &done = *finished;
    m_console->err(runSummary(done));
    if (done.status != RunStatus::Succeeded && !done.error.detail.trimmed().isEmpty())
        m_console->err(indented(terminalDetail(done.error.detail), u"  "_s));
    if (json)
        m_console->out(toJsonText(done.toJson(), QJsonDocument::Indented));
    else if (done.status == RunStatus::Succeeded && !done.result.isUndefined()
             && !done.result.isNull())
        m_console->out(toJsonText(done.result, QJsonDocument::Indented));
    m_console->flush();
    return done.status == RunStatus::Succeeded ? exitcode::Success : exitcode::Failure;
}

int Cli::runEach(const CommandLine &commandLine)
{
    const bool json = commandLine.json;
    const QString &key = commandLine.taskKey;

    // Refuse what would make every line fail the same way before reading any input.
    const TaskPtr task = m_engine->registry()->find(key);
    if (!task) {
        StartError error;
        error.code = StartError::Code::UnknownTask;
        error.message = u"unknown task \"%1\""_s.arg(key);
        return reportStartError(key, error, json);
    }
    if (task->isDangerous() && !commandLine.confirmed)
        return refuseUnconfirmed(key, json);

    const QString &path = *commandLine.eachFile;
    EachInput input;
    if (!input.open(path)) {
        m_console->err(u"taskdeck: cannot read --each input %1: %2"_s.arg(path, input.errorString()));
        return exitcode::Usage;
    }

    EachRun::Options options;
    options.taskKey = key;
    options.baseArgs = commandLine.args;
    options.runOptions.confirmed = commandLine.confirmed;
    options.runOptions.timeout = commandLine.timeout;
    options.json = json;
    options.showRunIds = m_store != nullptr;
    // Enough to keep every worker busy between two turns of the event loop.
    options.window = std::max<qsizetype>(kEachWindow, 4 * m_engine->config().effectiveMaxConcurrent());
    EachRun each(m_engine, m_console, &input, options);

    // Saved changes to the tasks file apply to the lines started after them; each reload,
    // and each file with mistakes, is logged on taskdeck.tasksfile.
    if (m_tasksFile)
        m_tasksFile->startWatching();

    SignalWatcher watcher({SIGINT, SIGTERM});
    connect(&watcher, &SignalWatcher::signalReceived, &each, [this, &each](int signalNumber) {
        interrupt(signalNumber);
        each.interrupt();
    });
    return each.exec(path) ? exitcode::Success : exitcode::Failure;
}

int Cli::rerun(const CommandLine &commandLine)
{
    const bool json = commandLine.json;
    if (!m_store) {
        // main() refuses rerun without a history; this only guards other callers.
        m_console->err(u"taskdeck: history unavailable"_s);
        return exitcode::Usage;
    }
    const std::optional<Run> previous = m_store->findRun(commandLine.runId);
    if (!previous) {
        m_console->err(u"taskdeck: no run with id %1 (taskdeck history lists the runs)"_s
                           .arg(commandLine.runId));
        return exitcode::Usage;
    }
    const TaskPtr task = m_engine->registry()->find(previous->task);
    if (!task) {
        StartError error;
        error.code = StartError::Code::UnknownTask;
        error.message = u"run %1 was of task \"%2\", which is not among the tasks now"_s
                            .arg(previous->id, previous->task);
        if (json)
            m_console->out(compactJson(QJsonObject{{u"error"_s, startErrorJson(error)}}));
        m_console->err(u"taskdeck: "_s + error.message
                       + u"; taskdeck list shows them (a task of a tasks file needs that file: "
                         u"--tasks FILE)"_s);
        return exitcode::Usage;
    }

    // The history keeps secrets redacted: a stored secret is a placeholder that must not be
    // sent again as if it were the value. Secrets the first run did not have are not asked for.
    StartError missing;
    missing.code = StartError::Code::InvalidArguments;
    for (const Field &field : task->fields) {
        if (field.type != FieldType::Secret || commandLine.args.contains(field.key)
            || !previous->args.contains(field.key))
            continue;
        missing.fields.append({field.key, u"secret values are not stored in the history; give "
                                          u"it again with --arg %1=VALUE"_s.arg(field.key)});
    }
    if (!missing.fields.isEmpty()) {
        QStringList keys;
        for (const FieldError &e : std::as_const(missing.fields))
            keys.append(e.field);
        missing.message = u"rerun of %1 needs its secret arguments again: %2"_s
                              .arg(previous->id, keys.join(u", "_s));
        return reportStartError(previous->task, missing, json);
    }

    CommandLine again = commandLine;
    again.taskKey = previous->task;
    again.args = previous->args;
    for (auto it = commandLine.args.constBegin(); it != commandLine.args.constEnd(); ++it)
        again.args.insert(it.key(), it.value());
    if (!json)
        m_console->err(u"rerun of %1 (%2)"_s.arg(previous->id, previous->task));
    return run(again);
}

int Cli::reportStartError(const QString &key, const StartError &error, bool json)
{
    if (json)
        m_console->out(compactJson(QJsonObject{{u"error"_s, startErrorJson(error)}}));

    switch (error.code) {
    case StartError::Code::UnknownTask: {
        QStringList suggestions = error.suggestions;
        if (suggestions.isEmpty())
            suggestions = m_engine->registry()->nearestKeys(key);
        QString message = u"taskdeck: unknown task \"%1\""_s.arg(key);
        message += suggestions.isEmpty() ? u"; taskdeck list shows the tasks"_s
                                         : u"; did you mean: "_s + suggestions.join(u", "_s) + u'?';
        m_console->err(message);
        return exitcode::Usage;
    }
    case StartError::Code::InvalidArguments:
        m_console->err(u"taskdeck: invalid arguments for task \"%1\":"_s.arg(key));
        for (const FieldError &field : error.fields)
            m_console->err(u"  %1: %2"_s.arg(field.field, field.message));
        if (error.fields.isEmpty())
            m_console->err(u"  "_s + error.message);
        return exitcode::Usage;
    case StartError::Code::ConfirmationRequired:
        // The JSON error line, if wanted, is out already.
        return refuseUnconfirmed(key, false);
    case StartError::Code::ShuttingDown:
    case StartError::Code::None:
        break;
    }
    m_console->err(u"taskdeck: "_s + error.message);
    return exitcode::Failure;
}

int Cli::refuseUnconfirmed(const QString &key, bool json)
{
    const TaskPtr task = m_engine->registry()->find(key);
    if (json) {
        StartError error;
        error.code = StartError::Code::ConfirmationRequired;
        error.message = u"task \"%1\" needs confirmation"_s.arg(key);
        m_console->out(compactJson(QJsonObject{{u"error"_s, startErrorJson(error)}}));
    }
    m_console->err(u"taskdeck: %1 (%2) is dangerous: %3"_s.arg(
        task ? task->title : key, key, task ? task->danger : QString()));
    m_console->err(u"re-run with --yes to confirm"_s);
    return exitcode::Usage;
}

void Cli::interrupt(int signalNumber)
{
    ++m_interrupts;
    if (m_interrupts == 1) {
        m_console->err(u"canceling... (interrupt again to quit at once)"_s);
        m_console->flush();
        m_engine->cancelAll();
        return;
    }
    m_console->clearStatus();
    std::fflush(stdout);
    std::fflush(stderr);
    // The user asked twice: no waiting for workers, no destructors. The commands the runs
    // started would outlive this process, so they go first.
    killAllCommands();
    recordQuitRuns();
    std::fflush(stderr);
    std::_Exit(128 + signalNumber);
}

void Cli::recordQuitRuns()
{
    if (!m_store)
        return;
    const QList<Run> runs = m_engine->activeRuns();
    if (runs.isEmpty())
        return;
    // Left alone, the runs would stay running in the history until another Taskdeck
    // process found their owner gone. The wait is bounded: a second interrupt means now.
    constexpr std::chrono::seconds MaxWait(2);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    for (Run run : runs) {
        run.status = RunStatus::Canceled;
        run.finishedAt = now;
        run.nextAttemptAt = QDateTime();
        run.result = QJsonValue::Undefined;
        run.error = {u"canceled: taskdeck was interrupted twice and quit at once"_s,
                     u"Canceled"_s, QString(), false};
        m_store->recordFinished(run, {});
    }
    const QString count = runs.size() == 1 ? u"1 run"_s : u"%1 runs"_s.arg(runs.size());
    if (m_store->flush(MaxWait))
        m_console->err(u"taskdeck: recorded %1 as canceled in the history"_s.arg(count));
    else
        m_console->err(u"taskdeck: could not record %1 as canceled in the history in time; "
                       u"the next taskdeck will mark them interrupted"_s.arg(count));
}

} // namespace taskdeck
