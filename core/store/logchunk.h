// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <QByteArray>

namespace taskdeck {

/*!
 * The binary form of a batch of log lines as the SQLite store keeps it (one row per chunk
 * instead of one per line, which is what makes a million-line log cheap to persist).
 *
 * Layout: a format byte (2), the line count (varint) and the first line's time (zigzag
 * varint), then per line: the number's distance from the previous line's (varint; 0 for the
 * first line, whose number is the chunk's first_line), the event sequence number's distance
 * from the previous line's (zigzag varint; the first line's from 0), the time's distance
 * from the previous line's (zigzag varint), the stream (one byte), the UTF-8 length (varint)
 * and the bytes. Line numbers only have to increase inside a chunk, so a gap costs nothing
 * special. Format 1 (written before lines carried LogLine::seq) has no sequence numbers; it
 * still decodes, every line with seq 0.
 *
 * Pure functions; safe from any thread.
 */
class LogChunk final
{
public:
    /*! A chunk is closed when it holds this many lines ... */
    static constexpr qsizetype kMaxLines = 1000;
    /*! ... or about this many bytes, whichever comes first. */
    static constexpr qsizetype kMaxBytes = 64 * 1024;

    LogChunk() = default;

    /*! Appends \a line; its number must be greater than the last one's. */
    void append(const LogLine &line);
    bool isEmpty() const { return m_count == 0; }
    /*! True once the chunk reached kMaxLines or kMaxBytes. */
    bool isFull() const { return m_count >= kMaxLines || m_body.size() >= kMaxBytes; }
    qsizetype lineCount() const { return m_count; }
    qint64 firstLine() const { return m_firstLine; }
    qint64 lastLine() const { return m_lastLine; }
    /*! The highest LogLine::seq of the chunk's lines (0 when none carries one). */
    qint64 maxSeq() const { return m_maxSeq; }
    /*! The encoded chunk (header and lines). */
    QByteArray data() const;
    /*! Forgets every line; the next append() starts a new chunk. */
    void clear();

    /*!
     * Decodes \a data, whose first line is numbered \a firstLine, appending to \a out the
     * lines numbered \a fromLine or later. False when \a data is not a valid chunk (nothing
     * is appended then).
     */
    static bool decode(const QByteArray &data, qint64 firstLine, LogLines *out, qint64 fromLine = 0);
    /*! Encodes \a lines (numbers increasing) as one chunk. */
    static QByteArray encode(const LogLines &lines);

private:
    QByteArray m_body;
    qsizetype m_count = 0;
    qint64 m_firstLine = 0;
    qint64 m_lastLine = 0;
    qint64 m_firstTime = 0;
    qint64 m_lastTime = 0;
    qint64 m_lastSeq = 0;
    qint64 m_maxSeq = 0;
};

} // namespace taskdeck
