// SPDX-License-Identifier: MIT
#include "runstream.h"

#include "runfollower.h"
#include "runstore.h"
#include "../internal/tsan.h"
#include "whendone.h"

#include <QCache>
#include <QCoreApplication>
#include <QHash>
#include <QPointer>
#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QWebSocket>

#include <functional>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

QString eventTypeName(RunEvent::Type type)
{
    switch (type) {
    case RunEvent::Type::Queued: return u"queued"_s;
    case RunEvent::Type::Started: return u"started"_s;
    case RunEvent::Type::Retrying: return u"retrying"_s;
    case RunEvent::Type::Progress: return u"progress"_s;
    case RunEvent::Type::Log: return u"log"_s;
    case RunEvent::Type::Finished: return u"finished"_s;
    }
    return QString();
}

QJsonArray linesJson(const LogLines &lines)
{
    QJsonArray array;
    for (const LogLine &line : lines) {
        QJsonObject o = line.toJson();
        o.insert(u"seq"_s, line.seq);
        array.append(o);
    }
    return array;
}

QString compactJson(const QJsonObject &message)
{
    return QString::fromUtf8(QJsonDocument(message).toJson(QJsonDocument::Compact));
}

// About what an event weighs while it waits in the stream.
qint64 weightOf(const RunEvent &event)
{
    qint64 bytes = 64;
    for (const LogLine &line : event.lines)
        bytes += 2 * line.text.size() + 32;
    return bytes;
}

// A log line as a JSON string, written by hand: a million-line run goes through here once
// per line, and building a QJsonObject per line cost more than the run's own recording.
void appendJsonString(QString &out, QStringView text)
{
    static constexpr char16_t hex[] = u"0123456789abcdef";
    out += u'"';
    qsizetype plain = 0;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const char16_t c = text[i].unicode();
        if (c >= 0x20 && c != u'"' && c != u'\\')
            continue;
        out += text.mid(plain, i - plain);
        plain = i + 1;
        switch (c) {
        case u'"': out += u"\\\""; break;
        case u'\\': out += u"\\\\"; break;
        case u'\n': out += u"\\n"; break;
        case u'\r': out += u"\\r"; break;
        case u'\t': out += u"\\t"; break;
        case u'\b': out += u"\\b"; break;
        case u'\f': out += u"\\f"; break;
        default: {
            const char16_t escape[] = {u'\\', u'u', u'0', u'0', hex[(c >> 4) & 0xf], hex[c & 0xf]};
            out += QStringView(escape, 6);
            break;
        }
        }
    }
    out += text.mid(plain);
    out += u'"';
}

void appendIndices(QString &out, QStringView name, const QList<qsizetype> &indices)
{
    if (indices.isEmpty())
        return;
    if (!out.endsWith(u'{'))
        out += u',';
    out += u'"';
    out += name;
    out += u"\":[";
    for (qsizetype i = 0; i < indices.size(); ++i) {
        if (i)
            out += u',';
        out += QString::number(indices.at(i));
    }
    out += u']';
}

/*!
 * Log messages already made, shared by every client following the same run: a hundred
 * clients of one run cost one serialization per batch, not a hundred. Keyed by run and seq
 * range, which name the same lines wherever the batch came from (engine or history).
 */
class MessageCache final
{
public:
    const QString &logMessage(const QString &runId, const RunEvent &event)
    {
        const QString key = runId + u':' + QString::number(event.seq) + u':' + QString::number(event.lastSeq());
        if (const QString *known = m_cache.object(key))
            return *known;
        auto *message = new QString(RunStream::logMessage(event.lines));
        const qsizetype cost = message->size() * qsizetype(sizeof(QChar));
        m_cache.insert(key, message, cost);
        // Bigger than the whole cache: QCache did not keep it, so keep the latest one here.
        if (const QString *kept = m_cache.object(key))
            return *kept;
        m_uncached = std::move(*message);
        delete message;
        return m_uncached;
    }

    static MessageCache &instance()
    {
        thread_local MessageCache cache;
        return cache;
    }

private:
    QCache<QString, QString> m_cache{32 * 1024 * 1024};
    QString m_uncached;
};

/*!
 * History pages read for clients catching up, shared: clients of one run that catch up
 * together (a hundred that connected at its start) ask for the same pages, and each page
 * is read once. Full pages are kept a while (a short one may still grow).
 */
class PageReads final
{
public:
    using Done = std::function<void(const LogLines &page)>;

    void read(IRunStore *store, const QString &runId, qint64 after, QObject *context, Done done)
    {
        const QString key = runId + u':' + QString::number(after);
        if (const LogLines *page = m_pages.object(key)) {
            // Answered from the event loop, as a read would be.
            QMetaObject::invokeMethod(context, [done = std::move(done), page = *page] { done(page); },
                                      Qt::QueuedConnection);
            return;
        }
        auto it = m_waiting.find(key);
        if (it != m_waiting.end()) {
            it->append({QPointer<QObject>(context), std::move(done)});
            return;
        }
        m_waiting.insert(key, {{QPointer<QObject>(context), std::move(done)}});
        // Through a watcher, not then(): the page is set on a reader thread, and this way the
        // hand-over is one ThreadSanitizer sees (whendone.h).
        detail::whenDone(QCoreApplication::instance(),
                         store->readLogAfterSeqAsync(runId, after, RunStream::kCatchUpPageLines),
                         [this, key](const LogLines &page) {
                if (page.size() == RunStream::kCatchUpPageLines)
                    m_pages.insert(key, new LogLines(page), page.size());
                const auto waiters = m_waiting.take(key);
                for (const auto &[waiter, callback] : waiters) {
                    if (waiter)
                        callback(page);
                }
            });
    }

    static PageReads &instance()
    {
        thread_local PageReads reads;
        return reads;
    }

private:
    QHash<QString, QList<std::pair<QPointer<QObject>, Done>>> m_waiting;
    QCache<QString, LogLines> m_pages{20 * RunStream::kCatchUpPageLines};
};

} // namespace

RunStream::RunStream(std::unique_ptr<QWebSocket> socket, qint64 maxPendingBytes, QObject *parent,
                     std::chrono::milliseconds stallTimeout)
    : QObject(parent), m_socket(std::move(socket)), m_maxPendingBytes(std::max<qint64>(maxPendingBytes, 1))
{
    m_stallTimer.setSingleShot(true);
    m_stallTimer.setInterval(stallTimeout);
    connect(&m_stallTimer, &QTimer::timeout, this, &RunStream::stalled);
    connect(m_socket.get(), &QWebSocket::bytesWritten, this, &RunStream::written);
    connect(m_socket.get(), &QWebSocket::disconnected, this, &QObject::deleteLater);
}

RunStream::~RunStream() = default;

void RunStream::start(RunFollower *follower, const QString &runId, qint64 after, IRunStore *store, qint64 tail)
{
    m_follower = follower;
    m_store = store;
    m_runId = runId;
    m_tail = std::clamp<qint64>(tail, 0, kMaxTailLines);
    if (after >= 0)
        m_sentSeq = m_queuedSeq = after;
    // From the event loop: the socket is still being handed over (QtWebSockets has a queued
    // call to read it), and a stream that closes at once (a finished run the client has)
    // would close it under that call, which then warns "QIODevice::peek: device not open".
    QMetaObject::invokeMethod(this, [this, after] { followLive(after); }, Qt::QueuedConnection);
}

void RunStream::followLive(qint64 after, bool mayJump)
{
    m_waiting = true;
    const quint64 request = ++m_requests;
    m_follower->follow(m_runId, {.after = after}, this, [this, after, mayJump, request](Following following) {
        if (request != m_requests || m_closing)
            return; // the handle goes with the answer
        m_waiting = false;
        if (!following.handle) {
            closeWith(u"unknown run"_s);
            return;
        }
        if (after < 0) {
            m_sentSeq = m_queuedSeq = following.run.seq;
            LogLines log = following.recentLog;
            QJsonObject snapshot{{u"type"_s, u"snapshot"_s},
                                 {u"seq"_s, following.run.seq},
                                 {u"run"_s, following.run.toJson()}};
            if (m_tail > 0) {
                if (log.size() > m_tail)
                    log = log.mid(log.size() - m_tail);
                // The lines before the snapshot's, named as a skipped message names them.
                const qint64 first = log.isEmpty() ? following.run.logLines + 1 : log.constFirst().number;
                if (first > 1)
                    snapshot.insert(u"skipped"_s, QJsonObject{{u"from"_s, 1}, {u"to"_s, first - 1},
                                                              {u"count"_s, first - 1}});
            }
            snapshot.insert(u"log"_s, linesJson(log));
            send(compactJson(snapshot));
        }
        // A finished run whose every event the client has: nothing more will come.
        if (following.run.isFinished() && m_sentSeq >= following.run.seq) {
            closeWith(u"run finished"_s);
            return;
        }
        // Tail mode: lines older than the newest m_tail are not sent. When the history has
        // them, jump over them there; else (or once the jump is made) they are left out as
        // they come.
        if (m_tail > 0 && after >= 0) {
            m_skipTo = std::max(m_skipTo, following.run.logLines - m_tail);
            if (mayJump && m_store && m_skipTo > 0) {
                jumpToTail(); // the handle goes with the answer: the jump follows anew
                return;
            }
        }
        // The engine no longer holds what the client misses: rather than have it all read
        // into the handle first, read it a page at a time as the client takes it.
        if (following.missingTo > 0 && m_store) {
            m_catchingUp = true;
            pump();
            return;
        }
        attach(std::move(following));
    });
}

void RunStream::jumpToTail()
{
    m_waiting = true;
    const quint64 request = ++m_requests;
    const qint64 after = m_sentSeq;
    const qint64 skipTo = m_skipTo;
    // The first line the client lacks: is it among those to skip at all?
    detail::whenDone(this, m_store->readLogAfterSeqAsync(m_runId, after, 1),
                     [this, request, after, skipTo](const LogLines &first) {
        if (request != m_requests || m_closing)
            return;
        if (first.isEmpty() || first.constFirst().number > skipTo) {
            m_waiting = false;
            followLive(after, false);
            return;
        }
        const qint64 from = first.constFirst().number;
        // The last line to skip: its seq is where the client goes on from.
        detail::whenDone(this, m_store->readLogAsync(m_runId, skipTo, 1),
                         [this, request, after, from, skipTo](const LogLines &last) {
            if (request != m_requests || m_closing)
                return;
            m_waiting = false;
            if (!last.isEmpty() && last.constFirst().number == skipTo && last.constFirst().seq > after
                && m_sentSeq == after) {
                sendSkip({from, skipTo, last.constFirst().seq});
                m_queuedSeq = m_sentSeq;
            }
            followLive(m_sentSeq, false);
        });
    });
}

void RunStream::attach(Following following)
{
    m_handle = std::move(following.handle);
    connect(m_handle.get(), &RunHandle::events, this, &RunStream::take);
    // The handle dropped what waited for this thread too long: the history has it.
    connect(m_handle.get(), &RunHandle::fellBehind, this, [this](qint64) { letGo(); });
    pump();
}

void RunStream::take(const RunEvents &events)
{
    for (const RunEvent &event : events) {
        if (event.lastSeq() <= m_queuedSeq)
            continue;
        enqueue(event);
    }
    pump();
    // Tail mode: what waits beyond the newest m_tail lines is skipped rather than held.
    trimQueue();
    // The client is that far behind: stop holding its events, read them again later.
    if (m_queuedBytes > m_maxPendingBytes)
        letGo();
}

RunStream::Skip RunStream::splitSkipped(RunEvent &event) const
{
    Skip skip;
    if (event.type != RunEvent::Type::Log || m_skipTo <= 0)
        return skip;
    LogLines &lines = event.lines;
    // Lines the client has (a batch may start before the last one queued) are no skip.
    qsizetype from = 0;
    while (from < lines.size() && lines.at(from).seq != 0 && lines.at(from).seq <= m_queuedSeq)
        ++from;
    qsizetype to = from;
    while (to < lines.size() && lines.at(to).number <= m_skipTo)
        ++to;
    if (to > from)
        skip = {lines.at(from).number, lines.at(to - 1).number, lines.at(to - 1).seq};
    if (to > 0) {
        detail::acquireDroppedCopies(lines); // shared with the engine's window until it let go
        lines.remove(0, to);
        if (!lines.isEmpty())
            event.seq = lines.constFirst().seq;
    }
    return skip;
}

void RunStream::enqueue(RunEvent event)
{
    const Skip skip = splitSkipped(event);
    if (skip.from > 0)
        queueSkip(skip);
    if (event.type == RunEvent::Type::Log && event.lines.isEmpty())
        return;
    m_queuedBytes += weightOf(event);
    m_queuedSeq = std::max(m_queuedSeq, event.lastSeq());
    m_queue.append({std::move(event), {}});
}

void RunStream::queueSkip(const Skip &skip)
{
    // Next to a skip already waiting: one range.
    if (!m_queue.isEmpty() && m_queue.constLast().isSkip() && m_queue.constLast().skip.to + 1 == skip.from) {
        m_queue.last().skip.to = skip.to;
        m_queue.last().skip.seq = skip.seq;
    } else {
        m_queue.append({RunEvent{}, skip});
        m_queuedBytes += 64;
    }
    m_queuedSeq = std::max(m_queuedSeq, skip.seq);
}

void RunStream::trimQueue()
{
    if (m_tail <= 0 || m_closing)
        return;
    qint64 lines = 0;
    for (const Outgoing &item : std::as_const(m_queue))
        lines += item.event.type == RunEvent::Type::Log ? item.event.lines.size() : 0;
    qint64 excess = lines - m_tail;
    if (excess <= 0)
        return;
    // The oldest lines go, in order; a note of them takes their place, before the next
    // event that stays (a progress report, a status, lines kept).
    QList<Outgoing> kept;
    kept.reserve(m_queue.size());
    Skip skip;
    auto flush = [&] {
        if (skip.from > 0)
            kept.append({RunEvent{}, skip});
        skip = {};
    };
    auto extend = [&](const Skip &more) {
        if (skip.from > 0 && skip.to + 1 != more.from)
            flush();
        if (skip.from <= 0)
            skip.from = more.from;
        skip.to = more.to;
        skip.seq = more.seq;
    };
    for (Outgoing &item : m_queue) {
        if (item.isSkip()) {
            extend(item.skip);
            continue;
        }
        if (item.event.type == RunEvent::Type::Log && excess > 0) {
            LogLines &batch = item.event.lines;
            const qsizetype drop = qsizetype(std::min<qint64>(excess, batch.size()));
            extend({batch.constFirst().number, batch.at(drop - 1).number, batch.at(drop - 1).seq});
            excess -= drop;
            if (drop == batch.size())
                continue;
            detail::acquireDroppedCopies(batch);
            batch.remove(0, drop);
            item.event.seq = batch.constFirst().seq;
        }
        flush();
        kept.append(std::move(item));
    }
    flush();
    m_queue = std::move(kept);
    m_queuedBytes = 0;
    for (const Outgoing &item : std::as_const(m_queue))
        m_queuedBytes += item.isSkip() ? 64 : weightOf(item.event);
}

bool RunStream::hasRoom() const
{
    const qint64 bound = m_tail > 0 ? std::min(m_maxPendingBytes, kTailPendingBytes) : m_maxPendingBytes;
    return m_socket->bytesToWrite() <= bound;
}

void RunStream::pump()
{
    while (!m_closing && !m_queue.isEmpty() && hasRoom()) {
        const Outgoing item = m_queue.takeFirst();
        m_queuedBytes -= item.isSkip() ? 64 : weightOf(item.event);
        sendOutgoing(item);
    }
    if (m_closing)
        return;
    if (!hasRoom()) {
        if (!m_stallTimer.isActive())
            m_stallTimer.start();
        return;
    }
    m_stallTimer.stop();
    if (m_catchingUp && !m_waiting)
        readHistory();
}

void RunStream::sendOutgoing(const Outgoing &item)
{
    if (item.isSkip())
        sendSkip(item.skip);
    else
        sendEvent(item.event);
}

void RunStream::sendSkip(const Skip &skip)
{
    if (skip.seq <= m_sentSeq)
        return;
    send(skippedMessage(skip.from, skip.to, skip.seq));
    m_sentSeq = skip.seq;
}

QString RunStream::skippedMessage(qint64 from, qint64 to, qint64 seq)
{
    return compactJson({{u"type"_s, u"skipped"_s}, {u"seq"_s, seq}, {u"from"_s, from}, {u"to"_s, to},
                        {u"count"_s, to - from + 1}});
}

void RunStream::sendEvent(const RunEvent &event)
{
    if (event.lastSeq() <= m_sentSeq)
        return;
    if (event.type == RunEvent::Type::Log) {
        if (event.lines.isEmpty())
            return;
        sendLog(event);
    } else {
        QJsonObject message{{u"type"_s, eventTypeName(event.type)}, {u"seq"_s, event.seq}};
        if (event.type == RunEvent::Type::Progress)
            message.insert(u"progress"_s, event.progress.toJson());
        else if (event.run)
            message.insert(u"run"_s, event.run->toJson());
        send(compactJson(message));
    }
    m_sentSeq = event.lastSeq();
    if (event.type == RunEvent::Type::Finished)
        closeWith(u"run finished"_s);
}

void RunStream::sendLog(const RunEvent &event)
{
    const LogLines &lines = event.lines;
    bool numbered = true;
    for (qsizetype i = 1; i < lines.size() && numbered; ++i)
        numbered = lines.at(i).number == lines.at(i - 1).number + 1;
    if (numbered && event.seq > m_sentSeq) {
        send(MessageCache::instance().logMessage(m_runId, event));
        return;
    }
    // A batch may start before the last line sent: skip what was sent, and cut where the
    // line numbers break (lines of an older history).
    qsizetype from = 0;
    while (from < lines.size() && lines.at(from).seq != 0 && lines.at(from).seq <= m_sentSeq)
        ++from;
    while (from < lines.size()) {
        qsizetype to = from + 1;
        while (to < lines.size() && lines.at(to).number == lines.at(to - 1).number + 1)
            ++to;
        send(logMessage(lines.mid(from, to - from)));
        from = to;
    }
}

void RunStream::send(const QString &message)
{
    m_socket->sendTextMessage(message);
}

void RunStream::letGo()
{
    if (m_closing)
        return;
    if (m_handle) {
        disconnect(m_handle.get(), nullptr, this, nullptr);
        // Called from the handle's own signals: it goes once they have returned.
        m_handle.release()->deleteLater();
    }
    m_queue.clear();
    m_queuedBytes = 0;
    m_queuedSeq = m_sentSeq;
    if (!m_store) {
        // Nowhere to read what was dropped from: the client has to come back for it.
        behind();
        return;
    }
    if (m_tail > 0) {
        // Tail mode: rather than read every line it missed, follow anew, skipping to the
        // newest lines (once the socket has room: followLive sends a message at once).
        ++m_requests; // a follow under way answers nobody
        m_waiting = false;
        m_catchingUp = false;
        followLive(m_sentSeq);
        return;
    }
    m_catchingUp = true;
    pump();
}

void RunStream::readHistory()
{
    m_waiting = true;
    const quint64 request = ++m_requests;
    PageReads::instance().read(m_store, m_runId, m_sentSeq, this, [this, request](const LogLines &page) {
        if (request == m_requests)
            historyRead(page);
    });
}

void RunStream::historyRead(const LogLines &page)
{
    m_waiting = false;
    if (m_closing)
        return;
    if (!page.isEmpty()) {
        RunEvent event{RunEvent::Type::Log, page.constFirst().seq, page, {}, {}};
        // Tail mode, when the history could not be jumped over: the lines to skip go by.
        m_queuedSeq = m_sentSeq;
        const Skip skip = splitSkipped(event);
        if (skip.from > 0)
            sendSkip(skip);
        if (!event.lines.isEmpty())
            sendEvent(event);
        else
            m_sentSeq = std::max(m_sentSeq, page.constLast().seq);
    }
    m_queuedSeq = m_sentSeq;
    if (page.size() < kCatchUpPageLines) {
        // The history has no more yet: what is left, the engine holds (or the history
        // will, and the follower reads it there).
        m_catchingUp = false;
        followLive(m_sentSeq);
        return;
    }
    pump();
}

void RunStream::written()
{
    if (m_closing)
        return;
    if (!hasRoom()) {
        m_stallTimer.start(); // the client takes something: it is slow, not stalled
        return;
    }
    pump();
}

void RunStream::stalled()
{
    if (!m_closing && !hasRoom())
        behind();
}

void RunStream::behind()
{
    if (m_closing)
        return;
    send(compactJson({{u"type"_s, u"behind"_s}, {u"seq"_s, m_sentSeq}}));
    m_closing = true;
    m_stallTimer.stop();
    if (m_handle) {
        disconnect(m_handle.get(), nullptr, this, nullptr);
        m_handle.release()->deleteLater();
    }
    m_socket->close(QWebSocketProtocol::CloseCodePolicyViolated,
                    u"client too slow; reconnect with ?after=%1"_s.arg(m_sentSeq));
}

void RunStream::closeWith(const QString &reason)
{
    if (m_closing)
        return;
    m_closing = true;
    m_stallTimer.stop();
    if (m_handle) {
        disconnect(m_handle.get(), nullptr, this, nullptr);
        m_handle.release()->deleteLater();
    }
    m_socket->close(QWebSocketProtocol::CloseCodeNormal, reason);
}

QString RunStream::logMessage(const LogLines &lines)
{
    QString out;
    if (lines.isEmpty())
        return out;
    qsizetype size = 128;
    for (const LogLine &line : lines)
        size += line.text.size() + 8;
    out.reserve(size);
    const LogLine &first = lines.constFirst();
    QList<qsizetype> err;
    QList<qsizetype> system;
    for (qsizetype i = 0; i < lines.size(); ++i) {
        if (lines.at(i).stream == LogStream::Err)
            err.append(i);
        else if (lines.at(i).stream == LogStream::System)
            system.append(i);
    }
    // Members in the order QJsonDocument writes them (sorted), so that a message reads back
    // and writes out again the same.
    out += u'{';
    appendIndices(out, u"err", err);
    out += (err.isEmpty() ? u"\"lines\":["_s : u",\"lines\":["_s);
    for (qsizetype i = 0; i < lines.size(); ++i) {
        if (i)
            out += u',';
        appendJsonString(out, lines.at(i).text);
    }
    out += u"],\"ms\":[";
    for (qsizetype i = 0; i < lines.size(); ++i) {
        if (i)
            out += u',';
        out += QString::number(lines.at(i).timeMs - first.timeMs);
    }
    out += u"],\"n\":"_s + QString::number(first.number) + u",\"seq\":"_s + QString::number(first.seq);
    // Lines read back from the history have the seqs of progress reports between them.
    bool consecutive = true;
    for (qsizetype i = 1; i < lines.size() && consecutive; ++i)
        consecutive = lines.at(i).seq == lines.at(i - 1).seq + 1;
    if (!consecutive) {
        out += u",\"seqs\":[";
        for (qsizetype i = 0; i < lines.size(); ++i) {
            if (i)
                out += u',';
            out += QString::number(lines.at(i).seq);
        }
        out += u']';
    }
    appendIndices(out, u"system", system);
    out += u",\"time\":\""_s
        + QDateTime::fromMSecsSinceEpoch(first.timeMs, Qt::UTC).toString(Qt::ISODateWithMs)
        + u"\",\"type\":\"log\"}"_s;
    return out;
}

} // namespace taskdeck
