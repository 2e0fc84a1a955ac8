// SPDX-License-Identifier: MIT
#include "historycommands.h"

#include <cstdio>
#include <memory>

#include <unistd.h>

#include <QFile>
#include <QJsonArray>
#include <QJsonObject>

#include "cli.h"
#include "console.h"
#include "pgrunstore.h"
#include "privatefiles.h"
#include "runexport.h"
#include "runowner.h"
#include "runstore.h"
#include "textformat.h"
#include "whendone.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

using Channel = Console::Channel;

// Lines read from the store at a time by log and export: memory stays bounded by this
// however long a log is, and each page is one cheap query.
constexpr int LogPageLines = 2000;

// "lines 187320 to 200000 were not kept: ..." for a run whose stored log stops early.
QString missingLinesText(const Run &run)
{
    const QString range = run.logLines > run.logMissingFrom
        ? u"lines %1 to %2"_s.arg(run.logMissingFrom).arg(run.logLines)
        : u"the lines from %1 on"_s.arg(run.logMissingFrom);
    return range + u" were not kept: the history was full when the run wrote them"_s;
}

// The system line that stands where the missing lines would be, in log and in CSV exports.
LogLine missingLinesMarker(const Run &run)
{
    LogLine line;
    line.number = run.logMissingFrom;
    line.timeMs = run.finishedAt.isValid() ? run.finishedAt.toMSecsSinceEpoch() : 0;
    line.stream = LogStream::System;
    line.text = missingLinesText(run);
    return line;
}

QString attemptText(const Run &run)
{
    if (run.attempt <= 0)
        return u"-"_s;
    if (run.maxAttempts > 1)
        return u"%1/%2"_s.arg(run.attempt).arg(run.maxAttempts);
    return QString::number(run.attempt);
}

QString durationText(const Run &run)
{
    const qint64 ms = run.durationMs();
    if (ms < 0)
        return u"-"_s;
    return humanDuration(ms) + (run.isFinished() ? QString() : u"+"_s);
}

QString progressText(const Progress &progress)
{
    QString text;
    if (const int percent = progress.percent(); percent >= 0)
        text = u"%1% (%2/%3)"_s.arg(percent).arg(progress.done).arg(progress.total);
    else if (progress.done > 0)
        text = QString::number(progress.done);
    if (!progress.message.isEmpty())
        text += (text.isEmpty() ? QString() : u" "_s) + progress.message;
    return text;
}

// What a run came to, in a table cell: its result, its error, or how far it has got.
QString summaryCell(const Run &run)
{
    constexpr qsizetype Width = 60;
    switch (run.status) {
    case RunStatus::Succeeded:
        if (run.result.isUndefined() || run.result.isNull())
            return u"-"_s;
        return oneLine(compactJson(run.result), Width);
    case RunStatus::Queued:
        return u"-"_s;
    case RunStatus::Retrying:
        return run.nextAttemptAt.isValid()
            ? u"retrying at "_s + run.nextAttemptAt.toLocalTime().toString(u"HH:mm:ss"_s)
            : u"retrying"_s;
    case RunStatus::Running: {
        const QString progress = progressText(run.progress);
        return progress.isEmpty() ? u"-"_s : oneLine(progress, Width);
    }
    case RunStatus::Failed:
    case RunStatus::Canceled:
    case RunStatus::TimedOut:
    case RunStatus::Interrupted:
        break;
    }
    QString text = run.error.message;
    if (!run.error.kind.isEmpty())
        text = oneLine(text, Width - run.error.kind.size() - 3) + u" ["_s + run.error.kind + u']';
    return text.isEmpty() ? u"-"_s : oneLine(text, Width);
}

QJsonObject runJsonWithTrace(const Run &run, const QString &traceId)
{
    QJsonObject json = run.toJson();
    json.insert(u"traceId"_s, traceId.isEmpty() ? QJsonValue() : QJsonValue(traceId));
    return json;
}

} // namespace

HistoryCommands::HistoryCommands(IRunStore *store, Console *console)
    : m_store(store)
    , m_console(console)
{
}

int HistoryCommands::execute(const CommandLine &commandLine)
{
    switch (commandLine.command) {
    case CommandLine::Command::History:
        return history(commandLine);
    case CommandLine::Command::Show:
        return show(commandLine);
    case CommandLine::Command::Log:
        return log(commandLine);
    case CommandLine::Command::Export:
        return exportRun(commandLine);
    case CommandLine::Command::Cancel:
        return cancel(commandLine);
    default:
        break;
    }
    m_console->write(Channel::Err, usageText());
    return exitcode::Usage;
}

int HistoryCommands::history(const CommandLine &commandLine)
{
    if (commandLine.check)
        return check();
    RunQuery query;
    query.task = commandLine.taskFilter;
    query.status = commandLine.statusFilter;
    query.from = commandLine.since;
    query.limit = commandLine.limit;
    query.offset = commandLine.offset;
    const RunPage page = m_store->findRuns(query);

    if (commandLine.json) {
        QJsonArray array;
        for (const Run &run : page.runs)
            array.append(run.toJson());
        m_console->out(toJsonText(array, QJsonDocument::Indented));
        return exitcode::Success;
    }

    if (page.runs.isEmpty()) {
        m_console->out(page.total == 0 ? u"no runs found"_s
                                       : u"no runs at offset %1"_s.arg(commandLine.offset));
    } else {
        QList<QStringList> rows{{u"ID"_s, u"TASK"_s, u"STATUS"_s, u"STARTED"_s, u"DURATION"_s,
                                 u"ATTEMPT"_s, u"SUMMARY"_s}};
        for (const Run &run : page.runs) {
            rows.append({run.id, run.task, runStatusName(run.status), localTime(run.startedAt),
                         durationText(run), attemptText(run), summaryCell(run)});
        }
        m_console->write(Channel::Out, formatTable(rows));
    }
    QString footer = u"showing %1 of %2"_s.arg(page.runs.size()).arg(page.total);
    if (commandLine.offset > 0)
        footer += u" (after the newest %1)"_s.arg(commandLine.offset);
    m_console->out(footer);
    return exitcode::Success;
}

int HistoryCommands::show(const CommandLine &commandLine)
{
    const std::optional<Run> found = m_store->findRun(commandLine.runId);
    if (!found)
        return unknownRun(commandLine.runId);
    const Run &run = *found;
    const QString traceId = m_store->traceId(run.id);

    if (commandLine.json) {
        m_console->out(toJsonText(runJsonWithTrace(run, traceId), QJsonDocument::Indented));
        return exitcode::Success;
    }

    QList<QStringList> rows;
    auto add = [&rows](const QString &name, const QString &value) {
        rows.append({name + u':', value.isEmpty() ? u"-"_s : value});
    };
    add(u"id"_s, run.id);
    add(u"task"_s, run.task);
    add(u"status"_s, runSummary(run));
    add(u"attempt"_s, run.attempt > 0 ? u"%1 of %2"_s.arg(run.attempt).arg(run.maxAttempts)
                                      : u"not started"_s);
    add(u"queued"_s, localTime(run.queuedAt));
    add(u"started"_s, localTime(run.startedAt));
    add(u"finished"_s, localTime(run.finishedAt));
    add(u"duration"_s, durationText(run));
    add(u"progress"_s, progressText(run.progress));
    add(u"log lines"_s, run.logMissingFrom > 0
            ? u"%1 (%2)"_s.arg(run.logLines).arg(missingLinesText(run))
            : QString::number(run.logLines));
    add(u"owner"_s, run.owner);
    add(u"trace id"_s, traceId);
    m_console->write(Channel::Out, formatTable(rows));

    if (run.args.isEmpty()) {
        m_console->out(u"arguments: none"_s);
    } else {
        m_console->out(u"arguments:"_s);
        QList<QStringList> args;
        for (auto it = run.args.constBegin(); it != run.args.constEnd(); ++it) {
            const QJsonValue value = it.value();
            args.append({u"  "_s + it.key() + u':',
                         value.isString() ? value.toString() : compactJson(value)});
        }
        m_console->write(Channel::Out, formatTable(args));
    }
    if (!run.result.isUndefined() && !run.result.isNull()) {
        m_console->out(u"result:"_s);
        m_console->out(indented(toJsonText(run.result, QJsonDocument::Indented), u"  "_s));
    }
    if (!run.error.isEmpty()) {
        m_console->out(u"error:"_s);
        m_console->out(u"  message: "_s + run.error.message);
        if (!run.error.kind.isEmpty())
            m_console->out(u"  kind: "_s + run.error.kind);
        if (run.error.transient)
            m_console->out(u"  transient: yes"_s);
        if (!run.error.detail.trimmed().isEmpty()) {
            m_console->out(u"  detail:"_s);
            m_console->out(indented(run.error.detail, u"    "_s));
        }
    }
    return exitcode::Success;
}

int HistoryCommands::log(const CommandLine &commandLine)
{
    const std::optional<Run> found = m_store->findRun(commandLine.runId);
    if (!found)
        return unknownRun(commandLine.runId);
    qint64 next = commandLine.fromLine;
    for (;;) {
        const LogLines page = m_store->readLog(commandLine.runId, next, LogPageLines);
        if (page.isEmpty())
            break;
        for (const LogLine &line : page)
            m_console->logLine(Channel::Out, line);
        m_console->flush();
        // Reading on would only fill a buffer that can no longer be written.
        if (m_console->outputFailed())
            break;
        // A page that does not move forward would be read again and again.
        if (page.constLast().number < next)
            break;
        next = page.constLast().number + 1;
    }
    // Where the stored log stops early, the reader is told so where the lines would be.
    if (found->logMissingFrom > 0 && !m_console->outputFailed())
        m_console->logLine(Channel::Out, missingLinesMarker(*found));
    return exitcode::Success;
}

int HistoryCommands::exportRun(const CommandLine &commandLine)
{
    const std::optional<Run> found = m_store->findRun(commandLine.runId);
    if (!found)
        return unknownRun(commandLine.runId);
    const QString runId = found->id;
    const Run run = *found;
    // A CSV has no place for the run's fields: a log that stops early ends with a system
    // line saying so, numbered as the first line that is missing. The JSON has the run's
    // logMissingFrom.
    const bool markMissing = commandLine.format == CommandLine::ExportFormat::Csv && run.logMissingFrom > 0;
    auto marked = std::make_shared<bool>(!markMissing);
    const LogPageReader readPage = [this, runId, run, marked](qint64 fromLine) {
        LogLines page = m_store->readLog(runId, fromLine, LogPageLines);
        if (page.isEmpty() && !*marked) {
            *marked = true;
            page.append(missingLinesMarker(run));
        }
        return page;
    };

    // A file is replaced only by a complete export; stdout, a FIFO or a device gets the text
    // as it is written.
    const bool toFile = !commandLine.outputFile.isEmpty();
    OutputFile file(commandLine.outputFile);
    QFile standardOutput;
    QIODevice *out = nullptr;
    QString error;
    if (toFile) {
        if (!file.open(&error)) {
            m_console->err(u"taskdeck: cannot write %1: %2"_s.arg(commandLine.outputFile, error));
            return exitcode::Usage;
        }
        out = file.device();
    } else {
        m_console->flush();
        if (!standardOutput.open(STDOUT_FILENO, QIODevice::WriteOnly)) {
            m_console->err(u"taskdeck: cannot write to stdout: "_s + standardOutput.errorString());
            return exitcode::Usage;
        }
        out = &standardOutput;
    }

    const bool written = commandLine.format == CommandLine::ExportFormat::Csv
        ? writeLogCsv(out, readPage, &error)
        : writeRunJson(out, runJsonWithTrace(*found, m_store->traceId(runId)), readPage, &error);
    QString finishError;
    const bool done = written && (toFile ? file.commit(&finishError) : standardOutput.flush());
    if (!done) {
        if (error.isEmpty())
            error = toFile ? (finishError.isEmpty() ? out->errorString() : finishError)
                           : standardOutput.errorString();
        m_console->err(u"taskdeck: cannot write %1: %2"_s.arg(
            toFile ? commandLine.outputFile : u"to stdout"_s, error));
        return exitcode::Usage;
    }
    if (!toFile)
        std::fflush(stdout);
    return exitcode::Success;
}

int HistoryCommands::check()
{
    const QStringList problems = m_store->checkIntegrity();
    if (problems.isEmpty()) {
        m_console->out(u"history database %1: ok"_s.arg(m_store->location()));
        return exitcode::Success;
    }
    if (dynamic_cast<PgRunStore *>(m_store)) {
        // A PostgreSQL server keeps its own files sound; what the check finds there are runs,
        // logs and queue rows that disagree, and there is no file to move aside.
        m_console->err(u"taskdeck: history and queue in %1: runs, logs or queue rows that do not agree (the "
                       u"database is sound as far as PostgreSQL is concerned; nothing is to be moved aside):"_s
                           .arg(m_store->location()));
    } else {
        m_console->err(u"taskdeck: history database %1 is damaged; back it up and move it aside to start a new "
                       u"history:"_s.arg(m_store->location()));
    }
    for (const QString &problem : problems)
        m_console->err(u"  "_s + problem);
    return exitcode::Failure;
}

int HistoryCommands::cancel(const CommandLine &commandLine)
{
    const QString &id = commandLine.runId;
    QFuture<CancelRequest> asked = m_store->requestCancelAsync(id);
    asked.waitForFinished();
    CancelRequest answer = CancelRequest::failed(u"the history was closed"_s);
    if (!asked.isCanceled() && asked.resultCount() > 0) {
        detail::acquireResult(asked); // set on a thread of the store's
        answer = asked.result();
        detail::releaseResult(asked);
    }
    switch (answer.outcome) {
    case CancelRequest::Outcome::Canceled:
        m_console->out(u"run %1 canceled: no worker had started it"_s.arg(id));
        return exitcode::Success;
    case CancelRequest::Outcome::Requested:
        m_console->out(u"run %1: its worker was asked to cancel it (taskdeck show %1 tells when it has)"_s.arg(id));
        return exitcode::Success;
    case CancelRequest::Outcome::Finished:
        m_console->err(u"taskdeck: run %1 has finished already (%2)"_s.arg(id, runStatusName(answer.status)));
        return exitcode::Failure;
    case CancelRequest::Outcome::Elsewhere:
        m_console->err(u"taskdeck: run %1 runs in %2, which takes no cancel from here: cancel it there (Ctrl+C for "
                       u"a taskdeck run, the Cancel button of the window or admin page that started it)%3"_s
                           .arg(id, RunOwner::describe(answer.owner),
                                answer.sharedQueue ? QString()
                                                   : u"; runs queued with a shared database (--database) can be "
                                                     u"canceled from anywhere"_s));
        return exitcode::Failure;
    case CancelRequest::Outcome::Unknown:
        return unknownRun(id);
    case CancelRequest::Outcome::Failed:
        break;
    }
    m_console->err(u"taskdeck: cannot cancel run %1: %2"_s.arg(id, answer.error));
    return exitcode::Usage;
}

int HistoryCommands::unknownRun(const QString &runId)
{
    m_console->err(u"taskdeck: no run with id %1 (taskdeck history lists the runs)"_s.arg(runId));
    return exitcode::Usage;
}

} // namespace taskdeck
