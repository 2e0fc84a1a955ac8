// SPDX-License-Identifier: MIT
#include "runexport.h"

#include <QIODevice>
#include <QJsonDocument>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

bool writeBytes(QIODevice *out, const QByteArray &bytes, QString *error)
{
    if (out->write(bytes) == bytes.size())
        return true;
    if (error)
        *error = out->errorString();
    return false;
}

// Calls visit for every line, one page in memory at a time; false when visit stopped it.
bool forEachLine(const LogPageReader &readPage, const std::function<bool(const LogLine &)> &visit)
{
    qint64 next = 1;
    for (;;) {
        const LogLines page = readPage(next);
        if (page.isEmpty())
            return true;
        for (const LogLine &line : page) {
            if (!visit(line))
                return false;
        }
        // A page that does not move forward would be read again and again.
        if (page.constLast().number < next)
            return true;
        next = page.constLast().number + 1;
    }
}

} // namespace

QByteArray csvField(const QString &text)
{
    QByteArray bytes = text.toUtf8();
    const bool quoted = bytes.contains(',') || bytes.contains('"') || bytes.contains('\r')
        || bytes.contains('\n');
    if (quoted) {
        bytes.replace('"', "\"\"");
        bytes.prepend('"');
        bytes.append('"');
    }
    return bytes;
}

bool writeRunJson(QIODevice *out, const QJsonObject &run, const LogPageReader &readPage,
                  QString *error)
{
    // The run's own members come out of QJsonDocument as usual; the object is then opened
    // again to append the log array one line at a time, each line escaped by QJsonDocument.
    QByteArray head = QJsonDocument(run).toJson(QJsonDocument::Indented);
    head.truncate(head.lastIndexOf('}'));
    while (head.endsWith('\n') || head.endsWith(' '))
        head.chop(1);
    head += run.isEmpty() ? "\n    \"log\": [" : ",\n    \"log\": [";
    if (!writeBytes(out, head, error))
        return false;

    bool first = true;
    const bool complete = forEachLine(readPage, [&](const LogLine &line) {
        QByteArray item = first ? "\n        " : ",\n        ";
        first = false;
        item += QJsonDocument(line.toJson()).toJson(QJsonDocument::Compact);
        return writeBytes(out, item, error);
    });
    if (!complete)
        return false;
    return writeBytes(out, first ? "]\n}\n" : "\n    ]\n}\n", error);
}

bool writeLogCsv(QIODevice *out, const LogPageReader &readPage, QString *error)
{
    if (!writeBytes(out, "n,time,stream,text\r\n", error))
        return false;
    return forEachLine(readPage, [&](const LogLine &line) {
        // The time is spelled exactly as in the JSON export.
        const QString time = line.toJson().value(u"time"_s).toString();
        QByteArray record = QByteArray::number(line.number);
        record += ',' + csvField(time) + ',' + csvField(logStreamName(line.stream)) + ','
            + csvField(line.text) + "\r\n";
        return writeBytes(out, record, error);
    });
}

} // namespace taskdeck
