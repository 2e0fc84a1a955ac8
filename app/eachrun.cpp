// SPDX-License-Identifier: MIT
#include "eachrun.h"

#include <algorithm>
#include <optional>

#include <QEventLoop>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>

#include "console.h"
#include "eachinput.h"
#include "field.h"
#include "textformat.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

const QString SkippedWhy = u"not started: interrupted"_s;

// Runs kept waiting in the engine's queue, per concurrent run. A finish is shown only once
// the history has committed it, so the next lines start as runs start, not as finishes are
// shown: the workers' next runs never wait for a commit, and the queue can stay short. In a
// short queue a run starts and ends within the store's batch interval, so the history
// writes it once, finished, instead of writing it queued and then again (with a queue of
// 1,024 each run waited about a second and was written twice).
constexpr qsizetype kQueuedPerWorker = 2;

// A JSON value that QJsonDocument does not take alone (a number, string, true, false, null).
std::optional<QJsonValue> jsonScalar(const QByteArray &text)
{
    QJsonParseError error;
    const QJsonDocument wrapped = QJsonDocument::fromJson('[' + text + ']', &error);
    if (error.error != QJsonParseError::NoError || wrapped.array().size() != 1)
        return std::nullopt;
    return wrapped.array().at(0);
}

QString jsonKindName(const QJsonValue &value)
{
    switch (value.type()) {
    case QJsonValue::Null:
        return u"null"_s;
    case QJsonValue::Bool:
        return value.toBool() ? u"true"_s : u"false"_s;
    case QJsonValue::Double:
        return u"a number"_s;
    case QJsonValue::String:
        return u"a string"_s;
    case QJsonValue::Array:
        return u"an array"_s;
    case QJsonValue::Object:
    case QJsonValue::Undefined:
        break;
    }
    return u"something else"_s;
}

} // namespace

EachRun::EachRun(TaskEngine *engine, Console *console, EachInput *input, Options options,
                 QObject *parent)
    : QObject(parent)
    , m_engine(engine)
    , m_console(console)
    , m_input(input)
    , m_options(std::move(options))
    , m_queueAhead(std::max<qsizetype>(1, kQueuedPerWorker * m_engine->config().effectiveMaxConcurrent()))
{
    connect(m_input, &EachInput::readyRead, this, &EachRun::feed);
    connect(m_engine, &TaskEngine::runStarted, this, &EachRun::started);
    connect(m_engine, &TaskEngine::runFinished, this, &EachRun::finished);
}

EachRun::~EachRun() = default;

bool EachRun::exec(const QString &inputName)
{
    // Only the terminal status line shows the total: no pass over a file for nobody.
    if (m_console->isTerminal(Console::Channel::Err))
        m_total = m_input->countNonEmptyLines();
    QEventLoop loop;
    m_loop = &loop;
    // Started from the event loop, so that an interrupt is seen from the first run on.
    QMetaObject::invokeMethod(this, &EachRun::feed, Qt::QueuedConnection);
    loop.exec();
    m_loop = nullptr;
    m_input->setWanted(false);
    m_console->clearStatus();

    const bool readFailed = !m_input->errorString().isEmpty() && m_input->atEnd();
    if (readFailed)
        m_console->err(u"taskdeck: cannot read --each input %1: %2"_s.arg(inputName, m_input->errorString()));
    // A stream left unread after an interrupt: where to pick it up again.
    const bool unread = m_interrupted && m_input->isStream() && !m_input->atEnd();
    printReport();
    if (unread) {
        m_console->err(u"taskdeck: stopped reading --each input %1 after line %2"_s.arg(inputName)
                           .arg(m_input->lineNumber()));
    }
    m_console->flush();
    return m_notSucceeded.isEmpty() && m_skipped == 0 && !readFailed && !unread;
}

void EachRun::interrupt()
{
    m_interrupted = true;
    // The runs in the engine end canceled; the lines not started yet are skipped.
    feed();
}

void EachRun::feed()
{
    Entry entry;
    QJsonObject args;
    while ((m_interrupted || wantMore()) && nextLine(&entry, &args)) {
        const StartResult started = m_engine->start(m_options.taskKey, args, m_options.runOptions);
        if (!started.ok()) {
            QJsonObject error = startErrorJson(started.error);
            if (!started.error.fields.isEmpty())
                error.insert(u"message"_s, formatFieldErrors(started.error.fields));
            recordInvalid(std::move(entry), error);
            continue;
        }
        m_running.insert(started.runId, std::move(entry));
        ++m_queued;
    }
    refreshSoon();
    // After an interrupt a file is read to its end (every line in it is reported), a stream
    // no further than what already arrived.
    m_input->setWanted(!m_interrupted && wantMore());
    if (m_loop && m_running.isEmpty() && (m_input->atEnd() || (m_interrupted && m_input->isStream())))
        m_loop->quit();
}

bool EachRun::nextLine(Entry *entry, QJsonObject *args)
{
    QByteArray raw;
    while (m_input->next(&raw) == EachInput::Next::Line) {
        const QByteArray text = raw.trimmed();
        if (text.isEmpty())
            continue;
        if (m_interrupted) {
            recordSkipped(m_input->lineNumber(), text);
            continue;
        }
        *entry = Entry();
        entry->line = m_input->lineNumber();
        // Input must be UTF-8 (see invalidUtf8Offset()): a line that is not is refused, not
        // mended, and said to be what it is rather than "not valid JSON".
        if (const QString badByte = invalidUtf8Text(text); !badByte.isEmpty()) {
            entry->input = QJsonValue(QString::fromUtf8(text));
            recordInvalid(*entry, {{u"message"_s, u"not valid UTF-8 (%1); input lines must be UTF-8 text"_s.arg(badByte)},
                                   {u"kind"_s, u"InvalidInput"_s}});
            continue;
        }
        QJsonParseError parseError;
        const QJsonDocument document = QJsonDocument::fromJson(text, &parseError);
        if (parseError.error != QJsonParseError::NoError || !document.isObject()) {
            // QJsonDocument takes only objects and arrays; a number, string, true, false or
            // null alone is JSON too, just not an object of arguments.
            QString why;
            QJsonValue given;
            if (parseError.error == QJsonParseError::NoError) {
                why = u"expected a JSON object of arguments, got an array"_s;
                given = document.array();
            } else if (const std::optional<QJsonValue> scalar = jsonScalar(text)) {
                why = u"expected a JSON object of arguments, got %1"_s.arg(jsonKindName(*scalar));
                given = *scalar;
            } else {
                why = u"not valid JSON (%1 at offset %2)"_s.arg(parseError.errorString()).arg(parseError.offset);
                given = QString::fromUtf8(text);
            }
            entry->input = given;
            recordInvalid(*entry, {{u"message"_s, why}, {u"kind"_s, u"InvalidInput"_s}});
            continue;
        }
        *args = m_options.baseArgs;
        const QJsonObject lineArgs = document.object();
        for (auto it = lineArgs.constBegin(); it != lineArgs.constEnd(); ++it)
            args->insert(it.key(), it.value());
        entry->input = lineArgs;
        return true;
    }
    return false;
}

bool EachRun::wantMore() const
{
    return m_running.size() < m_options.window && m_queued < m_queueAhead;
}

void EachRun::started(const Run &run)
{
    const auto found = m_running.find(run.id);
    // Only a run's first attempt leaves the queue; a retry starts again from waiting.
    if (found == m_running.end() || found->started)
        return;
    found->started = true;
    --m_queued;
    feed();
}

void EachRun::finished(const Run &run)
{
    auto found = m_running.find(run.id);
    if (found == m_running.end())
        return;
    Entry entry = std::move(found.value());
    m_running.erase(found);
    if (!entry.started)
        --m_queued; // canceled in the queue
    entry.outcome = runStatusName(run.status);
    entry.summary = runSummary(run);
    if (m_options.json) {
        QJsonObject object = run.toJson();
        object.insert(u"line"_s, entry.line);
        m_console->out(compactJson(object));
    } else {
        QString line = u"[line %1] %2"_s.arg(entry.line).arg(entry.summary);
        if (m_options.showRunIds)
            line += u" (run "_s + run.id + u')';
        m_console->out(line);
    }
    account(std::move(entry), run.status == RunStatus::Succeeded);
    feed();
}

void EachRun::recordInvalid(Entry entry, const QJsonObject &error)
{
    entry.outcome = u"invalid"_s;
    entry.summary = error.value(u"message"_s).toString();
    if (m_options.json) {
        m_console->out(compactJson(QJsonObject{{u"line"_s, entry.line},
                                               {u"input"_s, entry.input},
                                               {u"status"_s, entry.outcome},
                                               {u"error"_s, error}}));
    } else {
        m_console->out(u"[line %1] invalid: %2"_s.arg(entry.line).arg(entry.summary));
    }
    account(std::move(entry), false);
}

void EachRun::recordSkipped(int line, const QByteArray &text)
{
    if (m_options.json) {
        const QJsonDocument document = QJsonDocument::fromJson(text);
        const QJsonValue given = document.isObject() ? QJsonValue(document.object())
            : document.isArray()                     ? QJsonValue(document.array())
                                                     : QJsonValue(QString::fromUtf8(text));
        m_console->out(compactJson(QJsonObject{
            {u"line"_s, line},
            {u"input"_s, given},
            {u"status"_s, u"skipped"_s},
            {u"error"_s, QJsonObject{{u"message"_s, SkippedWhy}, {u"kind"_s, u"Canceled"_s}}}}));
    }
    if (m_skipped++ == 0)
        m_firstSkipped = line;
    m_lastSkipped = line;
    ++m_counts[u"skipped"_s];
    ++m_done;
}

void EachRun::account(Entry entry, bool succeeded)
{
    ++m_counts[entry.outcome];
    ++m_done;
    if (!succeeded)
        m_notSucceeded.append(std::move(entry));
}

void EachRun::refreshSoon()
{
    // Output is flushed once per turn of the event loop, not once per run.
    if (m_refreshQueued)
        return;
    m_refreshQueued = true;
    QMetaObject::invokeMethod(this, [this] {
        m_refreshQueued = false;
        m_console->setStatus(m_total >= 0 ? u"%1/%2 done"_s.arg(m_done).arg(m_total) : u"%1 done"_s.arg(m_done));
        m_console->flush();
    }, Qt::QueuedConnection);
}

void EachRun::printReport()
{
    // Counts in the order runs move through their life, then what never became a run.
    QStringList order = runStatusNames();
    order.append(u"skipped"_s);
    order.append(u"invalid"_s);
    QStringList parts;
    for (const QString &outcome : std::as_const(order)) {
        if (m_counts.value(outcome) > 0)
            parts.append(u"%1 %2"_s.arg(outcome).arg(m_counts.value(outcome)));
    }
    // An input that could not be read from its first line on had lines: none of them ran.
    const bool readFailed = !m_input->errorString().isEmpty() && m_input->atEnd();
    const QString summary = !parts.isEmpty() ? parts.join(u", "_s)
        : readFailed ? u"no lines run: "_s + m_input->errorString()
                     : u"no input lines"_s;
    if (m_options.json) {
        m_console->err(summary);
        return;
    }
    m_console->out(summary);
    std::sort(m_notSucceeded.begin(), m_notSucceeded.end(),
              [](const Entry &a, const Entry &b) { return a.line < b.line; });
    if (!m_notSucceeded.isEmpty() || m_skipped > 0)
        m_console->out(u"not succeeded:"_s);
    for (const Entry &entry : std::as_const(m_notSucceeded)) {
        const bool invalid = entry.outcome == u"invalid";
        m_console->out(u"  line %1: %2%3"_s.arg(entry.line).arg(invalid ? u"invalid: "_s : QString(), entry.summary));
        m_console->out(u"    input: "_s + compactJson(entry.input));
    }
    if (m_skipped == 1) {
        m_console->out(u"  line %1: skipped, %2"_s.arg(m_firstSkipped).arg(SkippedWhy));
    } else if (m_skipped > 1) {
        m_console->out(u"  lines %1 to %2: %3 inputs skipped, %4"_s.arg(m_firstSkipped).arg(m_lastSkipped)
                           .arg(m_skipped).arg(SkippedWhy));
    }
}

} // namespace taskdeck
