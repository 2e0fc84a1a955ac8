// SPDX-License-Identifier: MIT
#include "runexport.h"

#include <QDateTime>
#include <QIODevice>
#include <QJsonDocument>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// Output goes to the device in pieces of about this size, not a write per line.
constexpr qsizetype kChunkBytes = 64 * 1024;

bool writeBytes(QIODevice *out, const QByteArray &bytes, QString *error)
{
    if (out->write(bytes) == bytes.size())
        return true;
    if (error)
        *error = out->errorString();
    return false;
}

// Writes \a buffer out once it has grown to a chunk (or always, with \a force) and empties it.
bool drain(QIODevice *out, QByteArray &buffer, QString *error, bool force = false)
{
    if (buffer.isEmpty() || (!force && buffer.size() < kChunkBytes))
        return true;
    const bool ok = writeBytes(out, buffer, error);
    buffer.clear(); // keeps its capacity
    return ok;
}

constexpr char kHex[] = "0123456789abcdef";

void appendEscapedUnit(QByteArray &out, char16_t unit)
{
    const char escape[] = {'\\', 'u', kHex[(unit >> 12) & 0xf], kHex[(unit >> 8) & 0xf],
                           kHex[(unit >> 4) & 0xf], kHex[unit & 0xf]};
    out.append(escape, sizeof escape);
}

void appendThreeDigits(QByteArray &out, int value)
{
    const char digits[] = {char('0' + value / 100), char('0' + value / 10 % 10), char('0' + value % 10)};
    out.append(digits, sizeof digits);
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

void LogLineEncoder::appendJsonString(QByteArray &out, QStringView text)
{
    out.append('"');
    const qsizetype size = text.size();
    const char16_t *units = text.utf16();
    for (qsizetype i = 0; i < size; ++i) {
        const char16_t u = units[i];
        if (u >= 0x20 && u < 0x80) {
            if (u == '"' || u == '\\')
                out.append('\\');
            out.append(char(u));
        } else if (u < 0x20) {
            switch (u) {
            case '\b': out.append("\\b", 2); break;
            case '\f': out.append("\\f", 2); break;
            case '\n': out.append("\\n", 2); break;
            case '\r': out.append("\\r", 2); break;
            case '\t': out.append("\\t", 2); break;
            default: appendEscapedUnit(out, u); break;
            }
        } else if (u < 0x800) {
            const char bytes[] = {char(0xc0 | (u >> 6)), char(0x80 | (u & 0x3f))};
            out.append(bytes, sizeof bytes);
        } else if (QChar::isHighSurrogate(u) && i + 1 < size && QChar::isLowSurrogate(units[i + 1])) {
            const char32_t c = QChar::surrogateToUcs4(u, units[++i]);
            const char bytes[] = {char(0xf0 | (c >> 18)), char(0x80 | ((c >> 12) & 0x3f)),
                                  char(0x80 | ((c >> 6) & 0x3f)), char(0x80 | (c & 0x3f))};
            out.append(bytes, sizeof bytes);
        } else if (QChar::isSurrogate(u)) {
            // Half a pair is not text: it goes out escaped, as QJsonDocument writes it.
            appendEscapedUnit(out, u);
        } else {
            const char bytes[] = {char(0xe0 | (u >> 12)), char(0x80 | ((u >> 6) & 0x3f)), char(0x80 | (u & 0x3f))};
            out.append(bytes, sizeof bytes);
        }
    }
    out.append('"');
}

void LogLineEncoder::appendTime(QByteArray &out, qint64 ms)
{
    const qint64 second = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    if (!m_cached || second != m_second) {
        // Formatted the usual way once a second: "...:46.000Z" without its "000Z".
        m_prefix = QDateTime::fromMSecsSinceEpoch(second * 1000, Qt::UTC).toString(Qt::ISODateWithMs).toUtf8();
        if (!m_prefix.endsWith(".000Z")) {
            // Not the usual shape (a year beyond 9999): every time is formatted whole.
            m_cached = false;
            out += QDateTime::fromMSecsSinceEpoch(ms, Qt::UTC).toString(Qt::ISODateWithMs).toUtf8();
            return;
        }
        m_prefix.chop(4);
        m_second = second;
        m_cached = true;
    }
    out += m_prefix;
    appendThreeDigits(out, int(ms - second * 1000));
    out += 'Z';
}

void LogLineEncoder::appendJson(QByteArray &out, const LogLine &line)
{
    // QJsonObject orders its keys: n, stream, text, time.
    out += "{\"n\":";
    out += QByteArray::number(line.number);
    out += ",\"stream\":";
    appendJsonString(out, logStreamName(line.stream));
    out += ",\"text\":";
    appendJsonString(out, line.text);
    out += ",\"time\":\"";
    appendTime(out, line.timeMs);
    out += "\"}";
}

void LogLineEncoder::appendCsv(QByteArray &out, const LogLine &line)
{
    out += QByteArray::number(line.number);
    out += ',';
    appendTime(out, line.timeMs); // never holds a comma or a quote
    out += ',';
    out += csvField(logStreamName(line.stream));
    out += ',';
    out += csvField(line.text);
    out += "\r\n";
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
    LogLineEncoder encoder;
    QByteArray buffer;
    buffer.reserve(kChunkBytes + 4096);
    const bool complete = forEachLine(readPage, [&](const LogLine &line) {
        buffer += first ? "\n        " : ",\n        ";
        first = false;
        encoder.appendJson(buffer, line);
        return drain(out, buffer, error);
    });
    if (!complete)
        return false;
    buffer += first ? "]\n}\n" : "\n    ]\n}\n";
    return drain(out, buffer, error, true);
}

bool writeLogCsv(QIODevice *out, const LogPageReader &readPage, QString *error)
{
    if (!writeBytes(out, "n,time,stream,text\r\n", error))
        return false;
    // The time is spelled exactly as in the JSON export.
    LogLineEncoder encoder;
    QByteArray buffer;
    buffer.reserve(kChunkBytes + 4096);
    const bool complete = forEachLine(readPage, [&](const LogLine &line) {
        encoder.appendCsv(buffer, line);
        return drain(out, buffer, error);
    });
    return complete && drain(out, buffer, error, true);
}

} // namespace taskdeck
