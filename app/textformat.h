// SPDX-License-Identifier: MIT
// How the command line spells runs, durations, times and tables for people.
#pragma once

#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>
#include <QList>
#include <QPair>
#include <QString>
#include <QStringList>

#include "run.h"
#include "taskengine.h"

namespace taskdeck {

/*! JSON text of any value, scalars included (QJsonDocument itself holds only containers). */
QString toJsonText(const QJsonValue &value, QJsonDocument::JsonFormat format);
inline QString compactJson(const QJsonValue &value)
{
    return toJsonText(value, QJsonDocument::Compact);
}

/*! "250ms", "1.23s", "1h 30m". */
QString humanDuration(qint64 ms);
/*! A status as words: "timed out" rather than "timedOut". */
QString statusPhrase(RunStatus status);
/*! "succeeded in 1.23s", "failed after 0.5s: message [kind]". */
QString runSummary(const Run &run);
/*! What a command prints for a run that could not start: {message, kind, fields, suggestions}. */
QJsonObject startErrorJson(const StartError &error);
/*! "2026-11-26 14:30:05" in the local time zone; "-" for an invalid time. */
QString localTime(const QDateTime &time);

/*! \a text with \a indent before every line; trailing blank lines dropped. */
QString indented(const QString &text, const QString &indent);
/*! The first line of \a text, cut to \a maxLength characters with "..." when longer. */
QString oneLine(const QString &text, qsizetype maxLength);

/*! Left-aligned columns, two blanks apart, no trailing blanks; one "\n" per row. */
QString formatTable(const QList<QStringList> &rows);
/*! Two-column help rows; the text column wraps at word boundaries to fit 80 columns. */
QString formatHelpRows(const QList<QPair<QString, QString>> &rows);

} // namespace taskdeck
