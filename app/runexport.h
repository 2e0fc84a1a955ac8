// SPDX-License-Identifier: MIT
// Writing one stored run and its whole log as JSON or CSV, page by page.
#pragma once

#include <functional>

#include <QByteArray>
#include <QJsonObject>
#include <QString>

#include "run.h"

QT_BEGIN_NAMESPACE
class QIODevice;
QT_END_NAMESPACE

namespace taskdeck {

/*!
 * Reads the log page that starts at line \a fromLine (lines count from 1); an empty page
 * means the end. IRunStore::readLog() with a fixed page size is one.
 */
using LogPageReader = std::function<LogLines(qint64 fromLine)>;

/*! One CSV field as RFC 4180 wants it: quoted (quotes doubled) when it holds a comma, a
 *  quote, CR or LF; as it is otherwise. UTF-8. */
QByteArray csvField(const QString &text);

/*!
 * Writes \a run (an object such as Run::toJson() plus "traceId") with its log added as a
 * "log" array of {n, time, stream, text}, as indented JSON. Only one page of the log is
 * held at a time, however long it is. Returns false with \a error set when \a out fails.
 */
bool writeRunJson(QIODevice *out, const QJsonObject &run, const LogPageReader &readPage,
                  QString *error);

/*!
 * Writes the log as RFC 4180 CSV: the header n,time,stream,text, then one record per
 * line, CRLF after every record. Page by page, like writeRunJson().
 */
bool writeLogCsv(QIODevice *out, const LogPageReader &readPage, QString *error);

} // namespace taskdeck
