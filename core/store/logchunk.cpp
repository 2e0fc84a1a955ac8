// SPDX-License-Identifier: MIT
#include "logchunk.h"

#include <QtNumeric>

#include <algorithm>
#include <limits>

namespace taskdeck {

namespace {

// Format 1 had no sequence numbers; it is only read.
constexpr char kFormatWithoutSeq = 1;
constexpr char kFormat = 2;

void putVarint(QByteArray &out, quint64 value)
{
    while (value >= 0x80) {
        out.append(char((value & 0x7f) | 0x80));
        value >>= 7;
    }
    out.append(char(value));
}

quint64 zigzag(qint64 value)
{
    return (quint64(value) << 1) ^ quint64(value >> 63);
}

qint64 unzigzag(quint64 value)
{
    return qint64(value >> 1) ^ -qint64(value & 1);
}

class Reader
{
public:
    explicit Reader(const QByteArray &data)
        : m_data(data.constData())
        , m_end(data.constData() + data.size())
    {
    }

    bool varint(quint64 *value)
    {
        quint64 result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (m_data == m_end)
                return false;
            const auto byte = quint8(*m_data++);
            result |= quint64(byte & 0x7f) << shift;
            if (!(byte & 0x80)) {
                *value = result;
                return true;
            }
        }
        return false;
    }

    bool byte(quint8 *value)
    {
        if (m_data == m_end)
            return false;
        *value = quint8(*m_data++);
        return true;
    }

    bool bytes(quint64 size, const char **start)
    {
        if (quint64(m_end - m_data) < size)
            return false;
        *start = m_data;
        m_data += size;
        return true;
    }

    bool atEnd() const { return m_data == m_end; }

private:
    const char *m_data;
    const char *m_end;
};

quint8 streamCode(LogStream stream)
{
    switch (stream) {
    case LogStream::Out: return 0;
    case LogStream::Err: return 1;
    case LogStream::System: return 2;
    }
    return 0;
}

} // namespace

void LogChunk::append(const LogLine &line)
{
    if (m_count == 0) {
        m_firstLine = m_lastLine = line.number;
        m_firstTime = m_lastTime = line.timeMs;
        m_lastSeq = 0;
    }
    putVarint(m_body, quint64(line.number - m_lastLine));
    putVarint(m_body, zigzag(line.seq - m_lastSeq));
    putVarint(m_body, zigzag(line.timeMs - m_lastTime));
    m_body.append(char(streamCode(line.stream)));
    // Log text is mostly ASCII, which needs no conversion and no temporary buffer.
    const QChar *chars = line.text.constData();
    const qsizetype size = line.text.size();
    const bool ascii = std::all_of(chars, chars + size, [](QChar c) { return c.unicode() < 0x80; });
    if (ascii) {
        putVarint(m_body, quint64(size));
        const qsizetype at = m_body.size();
        m_body.resize(at + size);
        char *out = m_body.data() + at;
        for (qsizetype i = 0; i < size; ++i)
            out[i] = char(chars[i].unicode());
    } else {
        const QByteArray text = line.text.toUtf8();
        putVarint(m_body, quint64(text.size()));
        m_body.append(text);
    }
    m_lastLine = line.number;
    m_lastTime = line.timeMs;
    m_lastSeq = line.seq;
    m_maxSeq = std::max(m_maxSeq, line.seq);
    ++m_count;
}

QByteArray LogChunk::data() const
{
    QByteArray out;
    out.reserve(m_body.size() + 16);
    out.append(kFormat);
    putVarint(out, quint64(m_count));
    putVarint(out, zigzag(m_firstTime));
    out.append(m_body);
    return out;
}

void LogChunk::clear()
{
    m_body.clear();
    m_count = 0;
    m_firstLine = m_lastLine = m_firstTime = m_lastTime = m_lastSeq = m_maxSeq = 0;
}

QByteArray LogChunk::encode(const LogLines &lines)
{
    LogChunk chunk;
    for (const LogLine &line : lines)
        chunk.append(line);
    return chunk.data();
}

bool LogChunk::decode(const QByteArray &data, qint64 firstLine, LogLines *out, qint64 fromLine)
{
    Reader in(data);
    quint8 format = 0;
    quint64 count = 0;
    quint64 time = 0;
    if (!in.byte(&format) || (format != kFormat && format != kFormatWithoutSeq) || !in.varint(&count)
        || !in.varint(&time)) {
        return false;
    }
    const bool hasSeq = format == kFormat;
    // Every line takes at least four bytes, so a count beyond that is damage, not a big chunk.
    if (count > quint64(data.size()) / 4 + 1)
        return false;
    LogLines lines;
    lines.reserve(qsizetype(count));
    qint64 number = firstLine;
    qint64 timeMs = unzigzag(time);
    qint64 seq = 0;
    for (quint64 i = 0; i < count; ++i) {
        quint64 numberDelta = 0;
        quint64 seqDelta = 0;
        quint64 timeDelta = 0;
        quint8 stream = 0;
        quint64 size = 0;
        const char *text = nullptr;
        if (!in.varint(&numberDelta) || (hasSeq && !in.varint(&seqDelta)) || !in.varint(&timeDelta)
            || !in.byte(&stream) || stream > 2 || !in.varint(&size) || !in.bytes(size, &text)) {
            return false;
        }
        // Damage must not wrap a value around: numbers only go up, and no sum leaves qint64.
        if (numberDelta > quint64(std::numeric_limits<qint64>::max())
            || qAddOverflow(number, qint64(numberDelta), &number)
            || qAddOverflow(seq, unzigzag(seqDelta), &seq)
            || qAddOverflow(timeMs, unzigzag(timeDelta), &timeMs)) {
            return false;
        }
        if (number < fromLine)
            continue;
        LogLine line;
        line.number = number;
        line.timeMs = timeMs;
        line.seq = seq;
        line.stream = stream == 0 ? LogStream::Out : stream == 1 ? LogStream::Err : LogStream::System;
        line.text = QString::fromUtf8(text, qsizetype(size));
        lines.append(std::move(line));
    }
    if (!in.atEnd())
        return false;
    out->append(lines);
    return true;
}

} // namespace taskdeck
