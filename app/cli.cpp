// SPDX-License-Identifier: MIT
#include "cli.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <QEventLoop>
#include <QFile>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>

#include "console.h"
#include "engineconfig.h"
#include "signalwatcher.h"
#include "taskengine.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

using Channel = Console::Channel;

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

std::optional<CommandLine::Command> commandFromName(const QString &name)
{
    if (name == u"list")
        return CommandLine::Command::List;
    if (name == u"run")
        return CommandLine::Command::Run;
    if (name == u"help")
        return CommandLine::Command::Help;
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

QString toJsonText(const QJsonValue &value, QJsonDocument::JsonFormat format)
{
    if (value.isObject())
        return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(format)).trimmed();
    if (value.isArray())
        return QString::fromUtf8(QJsonDocument(value.toArray()).toJson(format)).trimmed();
    // QJsonDocument holds only containers: wrap the scalar and cut the brackets off again.
    const QByteArray wrapped = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(wrapped.mid(1, wrapped.size() - 2));
}

QString compactJson(const QJsonValue &value)
{
    return toJsonText(value, QJsonDocument::Compact);
}

// "1.23s" for short runs, where hundredths matter; "1h 30m" style for long ones.
QString humanDuration(qint64 ms)
{
    if (ms < 10)
        return QString::number(ms) + u"ms"_s;
    if (ms >= 60 * 1000)
        return formatDuration(std::chrono::milliseconds(ms));
    QString seconds = QString::number(static_cast<double>(ms) / 1000.0, 'f', 2);
    while (seconds.endsWith(u'0'))
        seconds.chop(1);
    if (seconds.endsWith(u'.'))
        seconds.chop(1);
    return seconds + u's';
}

QString statusPhrase(RunStatus status)
{
    switch (status) {
    case RunStatus::TimedOut:
        return u"timed out"_s;
    default:
        return runStatusName(status);
    }
}

// "succeeded in 1.23s", "failed after 0.5s: message [kind]".
QString runSummary(const Run &run)
{
    const qint64 ms = run.durationMs();
    QString text = statusPhrase(run.status);
    if (run.status == RunStatus::Succeeded)
        text += u" in "_s + humanDuration(std::max<qint64>(ms, 0));
    else if (ms >= 0)
        text += u" after "_s + humanDuration(ms);
    else
        text += u" before it started"_s;
    // The engine's own messages often repeat the status ("canceled", "timed out after 1s").
    if (run.status != RunStatus::Succeeded && !run.error.message.isEmpty()
        && !run.error.message.startsWith(statusPhrase(run.status), Qt::CaseInsensitive))
        text += u": "_s + run.error.message;
    if (run.status != RunStatus::Succeeded && !run.error.kind.isEmpty())
        text += u" ["_s + run.error.kind + u']';
    return text;
}

QString indented(const QString &text, const QString &indent)
{
    QStringList lines = text.split(u'\n');
    while (!lines.isEmpty() && lines.constLast().trimmed().isEmpty())
        lines.removeLast();
    for (QString &line : lines)
        line.prepend(indent);
    return lines.join(u'\n');
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

QJsonArray fieldErrorsJson(const FieldErrors &errors)
{
    QJsonArray array;
    for (const FieldError &e : errors)
        array.append(QJsonObject{{u"field"_s, e.field}, {u"message"_s, e.message}});
    return array;
}

QString startErrorCodeName(StartError::Code code)
{
    switch (code) {
    case StartError::Code::None:
        return QString();
    case StartError::Code::UnknownTask:
        return u"UnknownTask"_s;
    case StartError::Code::InvalidArguments:
        return u"InvalidArguments"_s;
    case StartError::Code::ConfirmationRequired:
        return u"ConfirmationRequired"_s;
    case StartError::Code::ShuttingDown:
        return u"ShuttingDown"_s;
    }
    return QString();
}

QJsonObject startErrorJson(const StartError &error)
{
    QJsonObject json{{u"message"_s, error.message}, {u"kind"_s, startErrorCodeName(error.code)}};
    if (!error.fields.isEmpty())
        json.insert(u"fields"_s, fieldErrorsJson(error.fields));
    if (!error.suggestions.isEmpty())
        json.insert(u"suggestions"_s, QJsonArray::fromStringList(error.suggestions));
    return json;
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

QString formatTable(const QList<QStringList> &rows)
{
    QList<qsizetype> widths;
    for (const QStringList &row : rows) {
        for (qsizetype c = 0; c < row.size(); ++c) {
            if (widths.size() <= c)
                widths.append(0);
            widths[c] = std::max(widths[c], row.at(c).size());
        }
    }
    QString text;
    for (const QStringList &row : rows) {
        QString line;
        for (qsizetype c = 0; c < row.size(); ++c) {
            // The last column is not padded: no trailing blanks.
            line += c + 1 < row.size() ? row.at(c).leftJustified(widths.at(c) + 2) : row.at(c);
        }
        text += line + u'\n';
    }
    return text;
}

// Two-column help rows; the text column wraps at word boundaries to fit 80 columns.
QString formatHelpRows(const QList<QPair<QString, QString>> &rows)
{
    constexpr qsizetype Width = 79;
    qsizetype nameWidth = 0;
    for (const auto &row : rows)
        nameWidth = std::max(nameWidth, row.first.size());
    const qsizetype textWidth = std::max<qsizetype>(Width - nameWidth - 2, 30);
    const QString continuation(nameWidth + 2, u' ');

    QString text;
    for (const auto &[name, description] : rows) {
        QString line = name.leftJustified(nameWidth + 2);
        qsizetype used = 0;
        const QStringList words = description.split(u' ', Qt::SkipEmptyParts);
        for (const QString &word : words) {
            if (used > 0 && used + 1 + word.size() > textWidth) {
                text += line + u'\n';
                line = continuation;
                used = 0;
            }
            if (used > 0) {
                line += u' ';
                ++used;
            }
            line += word;
            used += word.size();
        }
        text += line + u'\n';
    }
    return text;
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
            cl.command = CommandLine::Command::Help;
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
            const std::optional<CommandLine::Command> command = commandFromName(arg);
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
        auto noValue = [&]() { return !inlineValue.has_value(); };

        if (name == u"--version") {
            version = true;
            continue;
        }

        const bool inRun = commandSeen && cl.command == CommandLine::Command::Run;
        const bool inList = commandSeen && cl.command == CommandLine::Command::List;
        if ((inRun || inList) && name == u"--json") {
            if (!noValue())
                return failed(u"option --json takes no value"_s);
            cl.json = true;
            continue;
        }
        if (inRun && (name == u"--yes" || name == u"-y")) {
            if (!noValue())
                return failed(u"option --yes takes no value"_s);
            cl.confirmed = true;
            continue;
        }
        if (inRun && name == u"--arg") {
            const std::optional<QString> value = takeValue();
            if (!value)
                return failed(u"option --arg needs a value: --arg NAME=VALUE"_s);
            const qsizetype eq = value->indexOf(u'=');
            if (eq <= 0)
                return failed(u"option --arg expects NAME=VALUE, got \"%1\""_s.arg(*value));
            addArgument(cl.args, value->left(eq), value->mid(eq + 1));
            continue;
        }
        if (inRun && name == u"--timeout") {
            const std::optional<QString> value = takeValue();
            if (!value)
                return failed(u"option --timeout needs a value: "_s + DurationHelp);
            cl.timeout = parseDuration(*value);
            if (!cl.timeout) {
                return failed(u"invalid value \"%1\" for --timeout: expected %2"_s
                                  .arg(*value, DurationHelp));
            }
            continue;
        }
        if (inRun && name == u"--each") {
            const std::optional<QString> value = takeValue();
            if (!value || value->isEmpty())
                return failed(u"option --each needs a file name (- for stdin)"_s);
            cl.eachFile = *value;
            continue;
        }
        if (const auto flag = globalFlags.constFind(name); flag != globalFlags.cend()) {
            const std::optional<QString> value = takeValue();
            if (!value)
                return failed(u"option %1 needs a value"_s.arg(name));
            cl.settings.insert(flag.value(), *value);
            continue;
        }
        if (!commandSeen
            && (name == u"--json" || name == u"--yes" || name == u"-y" || name == u"--arg"
                || name == u"--each")) {
            return failed(u"option %1 belongs after the command (taskdeck run KEY %1 ...)"_s
                              .arg(name));
        }
        return failed(u"unknown option \"%1\""_s.arg(name));
    }

    if (version) {
        cl.command = CommandLine::Command::Version;
        return cl;
    }
    switch (cl.command) {
    case CommandLine::Command::List:
    case CommandLine::Command::Help:
        if (!positionals.isEmpty())
            return failed(u"unexpected argument \"%1\""_s.arg(positionals.constFirst()));
        break;
    case CommandLine::Command::Run:
        if (positionals.isEmpty())
            return failed(u"run needs a task key (taskdeck list shows them)"_s);
        if (positionals.size() > 1)
            return failed(u"unexpected argument \"%1\" (arguments go in --arg NAME=VALUE)"_s
                              .arg(positionals.at(1)));
        cl.taskKey = positionals.constFirst();
        break;
    case CommandLine::Command::None:
    case CommandLine::Command::Version:
        break;
    }
    return cl;
}

QString usageText()
{
    QString text = uR"(Usage: taskdeck [OPTIONS] COMMAND [ARGS]

Runs Taskdeck tasks from the command line.

Commands:
)"_s;
    text += formatHelpRows({
        {u"  list [--json]"_s, u"List the tasks, or print them as a JSON array"_s},
        {u"  run KEY [RUN OPTIONS]"_s, u"Run a task, stream its log and wait for it to end"_s},
        {u"  help"_s, u"Show this help"_s},
    });

    text += u"\nRun options:\n"_s;
    text += formatHelpRows({
        {u"  --arg NAME=VALUE"_s,
         u"Set an argument; repeat a NAME to pass a list (for a multiselect)"_s},
        {u"  -y, --yes"_s, u"Confirm a dangerous task (with --each: every run)"_s},
        {u"  --timeout DURATION"_s,
         u"This run's time limit, over the task's own and TASK_TIMEOUT: 90, 1.5s, 10m, 1h30m"_s},
        {u"  --json"_s,
         u"Print the finished run as one JSON object on stdout and the log on stderr; "
         u"a run that cannot start prints {\"error\": {...}} instead"_s},
        {u"  --each FILE"_s,
         u"Run once per line of FILE (- reads stdin). Each line is a JSON object of "
         u"arguments, merged over the --arg values. All runs are queued at once and the "
         u"engine's limits apply. With --json, one JSON object per line as runs end, "
         u"each with the \"line\" it came from"_s},
    });

    text += u"\nOptions (before or after the command; a flag beats its environment variable):\n"_s;
    QList<QPair<QString, QString>> rows;
    for (const Settings::Option &option : Settings::options()) {
        QString accepted = option.accepted;
        if (!option.defaultText.isEmpty())
            accepted += u" (default: "_s + option.defaultText + u')';
        rows.append({u"  "_s + dashed(option.flag) + u" VALUE"_s, accepted});
    }
    rows.append({u"  -h, --help"_s, u"Show this help"_s});
    rows.append({u"  --version"_s, u"Show the version"_s});
    text += formatHelpRows(rows);

    text += u"\nEnvironment:\n"_s;
    rows.clear();
    for (const Settings::Option &option : Settings::options())
        rows.append({u"  "_s + option.variable, u"same as "_s + dashed(option.flag)});
    text += formatHelpRows(rows);

    text += u"\nExit codes:\n"_s;
    text += formatHelpRows({
        {u"  0"_s, u"succeeded (with --each: every input succeeded)"_s},
        {u"  1"_s, u"a run failed, was canceled or timed out (with --each: some input did "
                   u"not succeed or was invalid)"_s},
        {u"  2"_s, u"usage error, unknown task, invalid arguments, confirmation missing, "
                   u"invalid configuration"_s},
        {u"  130"_s, u"interrupted twice (a first SIGINT or SIGTERM cancels the runs)"_s},
    });

    text += uR"(
Examples:
  taskdeck list
  taskdeck run checksum --arg file=/etc/hostname --arg algorithm=sha1
  taskdeck run exec --yes --arg command="ls -l /tmp" --json
  printf '{"file":"a.iso"}\n{"file":"b.iso"}\n' | taskdeck run checksum --each -
)"_s;
    return text;
}

Cli::Cli(TaskEngine *engine, Console *console, QObject *parent)
    : QObject(parent)
    , m_engine(engine)
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
    case CommandLine::Command::None:
    case CommandLine::Command::Help:
    case CommandLine::Command::Version:
        break;
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
    QFile input;
    const bool opened = path == u"-" ? input.open(stdin, QIODevice::ReadOnly)
                                     : (input.setFileName(path), input.open(QIODevice::ReadOnly));
    if (!opened) {
        m_console->err(u"taskdeck: cannot read --each input %1: %2"_s.arg(path, input.errorString()));
        return exitcode::Usage;
    }
    const QByteArray data = input.readAll();
    if (input.error() != QFileDevice::NoError) {
        m_console->err(u"taskdeck: cannot read --each input %1: %2"_s.arg(path, input.errorString()));
        return exitcode::Usage;
    }
    input.close();

    struct Entry
    {
        int line = 0;
        QJsonValue input;
        QString outcome;     // "invalid" or a run status name
        QString summary;     // one line, for the plain report
        bool succeeded = false;
    };
    QList<Entry> entries;
    QHash<QString, qsizetype> entryOfRun;
    qsizetype pending = 0;
    QEventLoop loop;
    QObject scope;

    auto statusLine = [&]() {
        const qsizetype done = entries.size() - pending;
        m_console->setStatus(u"%1/%2 done"_s.arg(done).arg(entries.size()));
    };

    connect(m_engine, &TaskEngine::runFinished, &scope, [&](const Run &finishedRun) {
        const auto found = entryOfRun.constFind(finishedRun.id);
        if (found == entryOfRun.cend())
            return;
        Entry &entry = entries[found.value()];
        entry.outcome = runStatusName(finishedRun.status);
        entry.summary = runSummary(finishedRun);
        entry.succeeded = finishedRun.status == RunStatus::Succeeded;
        if (json) {
            QJsonObject object = finishedRun.toJson();
            object.insert(u"line"_s, entry.line);
            m_console->out(compactJson(object));
        } else {
            m_console->out(u"[line %1] %2"_s.arg(entry.line).arg(entry.summary));
        }
        --pending;
        statusLine();
        m_console->flush();
        if (pending == 0)
            loop.quit();
    });

    SignalWatcher watcher({SIGINT, SIGTERM});
    connect(&watcher, &SignalWatcher::signalReceived, &scope,
            [this](int signalNumber) { interrupt(signalNumber); });

    auto recordInvalid = [&](Entry entry, const QJsonObject &error) {
        entry.outcome = u"invalid"_s;
        entry.summary = error.value(u"message"_s).toString();
        if (json) {
            m_console->out(compactJson(QJsonObject{{u"line"_s, entry.line},
                                                   {u"input"_s, entry.input},
                                                   {u"status"_s, entry.outcome},
                                                   {u"error"_s, error}}));
        } else {
            m_console->out(u"[line %1] invalid: %2"_s.arg(entry.line).arg(entry.summary));
        }
        entries.append(entry);
    };

    RunOptions options;
    options.confirmed = commandLine.confirmed;
    options.timeout = commandLine.timeout;

    const QList<QByteArray> lines = data.split('\n');
    for (qsizetype i = 0; i < lines.size(); ++i) {
        const QByteArray text = lines.at(i).trimmed();
        if (text.isEmpty())
            continue;
        Entry entry;
        entry.line = static_cast<int>(i + 1);

        QJsonParseError parseError;
        const QJsonDocument document = QJsonDocument::fromJson(text, &parseError);
        if (parseError.error != QJsonParseError::NoError || !document.isObject()) {
            const QString why = parseError.error != QJsonParseError::NoError
                ? u"not valid JSON (%1 at offset %2)"_s.arg(parseError.errorString())
                      .arg(parseError.offset)
                : u"expected a JSON object of arguments, got an array"_s;
            entry.input = document.isArray() ? QJsonValue(document.array())
                                             : QJsonValue(QString::fromUtf8(text));
            recordInvalid(entry, {{u"message"_s, why}, {u"kind"_s, u"InvalidInput"_s}});
            continue;
        }

        QJsonObject args = commandLine.args;
        const QJsonObject lineArgs = document.object();
        for (auto it = lineArgs.constBegin(); it != lineArgs.constEnd(); ++it)
            args.insert(it.key(), it.value());
        entry.input = lineArgs;

        const StartResult started = m_engine->start(key, args, options);
        if (!started.ok()) {
            QJsonObject error = startErrorJson(started.error);
            if (!started.error.fields.isEmpty())
                error.insert(u"message"_s, formatFieldErrors(started.error.fields));
            recordInvalid(entry, error);
            continue;
        }
        entryOfRun.insert(started.runId, entries.size());
        entries.append(entry);
        ++pending;
    }
    m_console->flush();

    if (pending > 0) {
        statusLine();
        loop.exec();
    }
    m_console->clearStatus();

    // Counts in the order runs move through their life, invalid inputs last.
    QStringList order = runStatusNames();
    order.append(u"invalid"_s);
    QHash<QString, int> counts;
    bool allSucceeded = true;
    for (const Entry &entry : std::as_const(entries)) {
        ++counts[entry.outcome];
        allSucceeded = allSucceeded && entry.succeeded;
    }
    QStringList parts;
    for (const QString &outcome : std::as_const(order)) {
        if (counts.value(outcome) > 0)
            parts.append(u"%1 %2"_s.arg(outcome).arg(counts.value(outcome)));
    }
    const QString summary = parts.isEmpty() ? u"no input lines"_s : parts.join(u", "_s);

    if (json) {
        m_console->err(summary);
    } else {
        m_console->out(summary);
        bool headed = false;
        for (const Entry &entry : std::as_const(entries)) {
            if (entry.succeeded)
                continue;
            if (!headed) {
                m_console->out(u"not succeeded:"_s);
                headed = true;
            }
            m_console->out(u"  line %1: %2%3"_s.arg(entry.line)
                               .arg(entry.outcome == u"invalid" ? u"invalid: "_s : QString(),
                                    entry.summary));
            m_console->out(u"    input: "_s + compactJson(entry.input));
        }
    }
    m_console->flush();
    return allSucceeded ? exitcode::Success : exitcode::Failure;
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
    // The user asked twice: no waiting for workers, no destructors.
    std::_Exit(128 + signalNumber);
}

} // namespace taskdeck
