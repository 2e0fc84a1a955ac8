// SPDX-License-Identifier: MIT
#include "textformat.h"

#include <algorithm>
#include <chrono>

#include <QJsonArray>
#include <QJsonObject>

#include "engineconfig.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

QString toJsonText(const QJsonValue &value, QJsonDocument::JsonFormat format)
{
    if (value.isObject())
        return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(format)).trimmed();
    if (value.isArray())
        return QString::fromUtf8(QJsonDocument(value.toArray()).toJson(format)).trimmed();
    // Wrap the scalar and cut the brackets off again.
    const QByteArray wrapped = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(wrapped.mid(1, wrapped.size() - 2));
}

// Hundredths matter for short runs; minutes and hours read better for long ones.
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
    // The engine's own messages often repeat the status ("canceled", "timed out after 1s",
    // "canceled: the engine shut down ..."): what they repeat is left out, never the rest, so
    // a task's own message that happens to start with the status word ("failed to connect")
    // is shown whole.
    QString message = run.status == RunStatus::Succeeded ? QString() : run.error.message;
    const QString phrase = statusPhrase(run.status);
    if (message.compare(phrase, Qt::CaseInsensitive) == 0
        || (run.status == RunStatus::TimedOut && message.startsWith(phrase + u" after "_s))) {
        message.clear();
    } else if (message.startsWith(phrase + u": "_s)) {
        message = message.mid(phrase.size() + 2);
    }
    if (!message.isEmpty())
        text += u": "_s + message;
    if (run.status != RunStatus::Succeeded && !run.error.kind.isEmpty())
        text += u" ["_s + run.error.kind + u']';
    return text;
}

QString localTime(const QDateTime &time)
{
    if (!time.isValid())
        return u"-"_s;
    return time.toLocalTime().toString(u"yyyy-MM-dd HH:mm:ss"_s);
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

QString oneLine(const QString &text, qsizetype maxLength)
{
    QString line = text.section(u'\n', 0, 0).trimmed();
    const bool more = line.size() < text.trimmed().size();
    if (line.size() > maxLength)
        return line.left(std::max<qsizetype>(maxLength - 3, 0)) + u"..."_s;
    return more ? line + u" ..."_s : line;
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
        for (qsizetype c = 0; c < row.size(); ++c)
            line += c + 1 < row.size() ? row.at(c).leftJustified(widths.at(c) + 2) : row.at(c);
        text += line + u'\n';
    }
    return text;
}

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

namespace {

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

} // namespace

QJsonObject startErrorJson(const StartError &error)
{
    QJsonObject json{{u"message"_s, error.message}, {u"kind"_s, startErrorCodeName(error.code)}};
    if (!error.fields.isEmpty())
        json.insert(u"fields"_s, fieldErrorsJson(error.fields));
    if (!error.suggestions.isEmpty())
        json.insert(u"suggestions"_s, QJsonArray::fromStringList(error.suggestions));
    return json;
}

} // namespace taskdeck
