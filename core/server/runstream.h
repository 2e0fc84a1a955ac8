// SPDX-License-Identifier: MIT
#pragma once

#include "runhandle.h"

#include <QObject>
#include <QString>
#include <QTimer>

#include <chrono>
#include <memory>

QT_BEGIN_NAMESPACE
class QWebSocket;
QT_END_NAMESPACE

namespace taskdeck {

class IRunStore;
class RunFollower;
struct Following;

/*!
 * One WebSocket client following one run: a snapshot (unless resuming with after >= 0),
 * then one JSON text message per event, each with "type" and "seq" (docs/server.md lists
 * them). Log lines come in batches, one message per batch, in the form of logMessage().
 *
 * The client's pace sets the pace, within one bound in bytes per client: while more than
 * \c maxPendingBytes wait in the socket, events wait in the stream (up to as many bytes of
 * lines again); past that the stream lets go of them and, once the client has room, reads
 * on from the history after the last event it sent, a page at a time as the socket drains,
 * until it has caught up and follows the run live again. A client that is merely slower than
 * the run misses nothing and is never closed. Only a client that takes nothing at all for
 * \c stallTimeout while events wait (or one that fell behind with no history to read from)
 * is sent {"type":"behind","seq":N} and closed; it resumes with ?after=N.
 *
 * Tail mode (start() with \a tail > 0): the client wants the newest \a tail lines, not every
 * line. Where more than that many lines wait for it (when it connects far behind the run's
 * end, or when the run logs faster than it takes them) the older ones are not sent; a
 * {"type":"skipped","seq":S,"from":A,"to":B,"count":N} message says exactly which (lines A
 * to B, every line up to seq S the client lacks), in place of them. Every other event
 * (progress, status, finish) is sent. A client that keeps up gets every line.
 *
 * Closes itself after the run's finish ("run finished"), and at once for a finished run
 * whose events the client has all. Deletes itself when the socket closes. Main thread.
 */
class RunStream final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunStream)

public:
    /*! How long a client may take nothing while events wait before it is told "behind". */
    static constexpr std::chrono::milliseconds kDefaultStallTimeout{30000};
    /*! Log lines read from the history at once while a client catches up. */
    static constexpr int kCatchUpPageLines = 5000;
    /*! The most lines a client may ask for in tail mode. */
    static constexpr qint64 kMaxTailLines = 100000;
    /*! In tail mode, bytes that may wait in the socket before lines wait in the stream
     *  (where they can still be skipped): a client that far behind sees stale lines. */
    static constexpr qint64 kTailPendingBytes = 256 * 1024;

    RunStream(std::unique_ptr<QWebSocket> socket, qint64 maxPendingBytes, QObject *parent = nullptr,
              std::chrono::milliseconds stallTimeout = kDefaultStallTimeout);
    ~RunStream() override;

    /*! Starts following \a runId from \a after (-1: from a snapshot). \a store (may be null:
     *  then a client that falls too far behind is told so) is where it catches up from.
     *  \a tail > 0 (at most kMaxTailLines): tail mode, the newest \a tail lines. */
    void start(RunFollower *follower, const QString &runId, qint64 after, IRunStore *store = nullptr,
               qint64 tail = 0);

    /*!
     * The message of a Log event: its lines' texts in one array, each line's seq and number
     * derived from the first ones, the first line's time with each line's offset from it in
     * milliseconds, and the indices of the lines not on stdout. The members come in the
     * order QJsonDocument writes them:
     * \code
     * {"err":[1],"lines":["first","second"],"ms":[0,2],"n":5,"seq":10,
     *  "time":"2026-11-30T01:20:00.000Z","type":"log"}
     * \endcode
     * Where the seqs are not consecutive (lines read back from the history, with progress
     * reports between them), "seqs" lists each line's. \a lines must be consecutive in
     * number.
     */
    static QString logMessage(const LogLines &lines);
    /*! The message saying that lines \a from to \a to (every line up to seq \a seq the client
     *  lacks) are not sent: {"count":N,"from":A,"seq":S,"to":B,"type":"skipped"}. */
    static QString skippedMessage(qint64 from, qint64 to, qint64 seq);

private:
    /*! Lines \a from to \a to, the last of them with seq \a seq, not sent. */
    struct Skip
    {
        qint64 from = 0;
        qint64 to = 0;
        qint64 seq = 0;
    };
    /*! What waits to be sent: an event, or (skip.from > 0) the note of lines skipped. */
    struct Outgoing
    {
        RunEvent event;
        Skip skip;
        bool isSkip() const { return skip.from > 0; }
    };

    void followLive(qint64 after, bool mayJump = true);
    void jumpToTail();
    void attach(Following following);
    void take(const RunEvents &events);
    void enqueue(RunEvent event);
    void queueSkip(const Skip &skip);
    void trimQueue();
    Skip splitSkipped(RunEvent &event) const;
    void pump();
    void sendOutgoing(const Outgoing &item);
    void sendSkip(const Skip &skip);
    void sendEvent(const RunEvent &event);
    void sendLog(const RunEvent &event);
    void send(const QString &message);
    bool hasRoom() const;
    void letGo();
    void readHistory();
    void historyRead(const LogLines &page);
    void written();
    void stalled();
    void behind();
    void closeWith(const QString &reason);

    std::unique_ptr<QWebSocket> m_socket;
    std::unique_ptr<RunHandle> m_handle;
    RunFollower *m_follower = nullptr;
    IRunStore *m_store = nullptr;
    QString m_runId;
    const qint64 m_maxPendingBytes;
    QTimer m_stallTimer;
    QList<Outgoing> m_queue;      // taken from the handle, not sent yet
    qint64 m_queuedBytes = 0;     // about what m_queue weighs
    qint64 m_queuedSeq = 0;       // the last seq sent or queued
    qint64 m_sentSeq = 0;         // the last seq sent
    bool m_catchingUp = false;    // reading the history rather than following live
    bool m_waiting = false;       // a history read or a follow is under way
    bool m_closing = false;
    quint64 m_requests = 0;       // tells a late answer from the current one
    qint64 m_tail = 0;            // tail mode: the lines the client wants at most; 0: all
    qint64 m_skipTo = 0;          // tail mode: lines up to this number are not sent
};

} // namespace taskdeck
