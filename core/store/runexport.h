// SPDX-License-Identifier: MIT
// Writing one stored run and its whole log as JSON or CSV, page by page.
#pragma once

#include <functional>

#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QStringView>

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
 * Encodes log lines for the exports, byte for byte as QJsonDocument writes
 * LogLine::toJson() in compact form, without building a QJsonObject per line. A log's lines
 * mostly share their second, so the time's date and clock part is formatted once a second.
 */
class LogLineEncoder
{
public:
    /*! Appends {"n":..,"stream":..,"text":..,"time":..} for \a line to \a out. */
    void appendJson(QByteArray &out, const LogLine &line);
    /*! Appends the CSV record n,time,stream,text and CRLF for \a line to \a out. */
    void appendCsv(QByteArray &out, const LogLine &line);
    /*! Appends \a ms since the epoch as UTC ISO 8601 with milliseconds ("...T10:09:46.686Z"). */
    void appendTime(QByteArray &out, qint64 ms);

    /*! Appends \a text as a quoted JSON string, escaped as QJsonDocument escapes it. */
    static void appendJsonString(QByteArray &out, QStringView text);

private:
    qint64 m_second = 0;
    bool m_cached = false;
    QByteArray m_prefix; // the time of m_second up to and including the '.'
};

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
