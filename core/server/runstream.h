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

    RunStream(std::unique_ptr<QWebSocket> socket, qint64 maxPendingBytes, QObject *parent = nullptr,
              std::chrono::milliseconds stallTimeout = kDefaultStallTimeout);
    ~RunStream() override;

    /*! Starts following \a runId from \a after (-1: from a snapshot). \a store (may be null:
     *  then a client that falls too far behind is told so) is where it catches up from. */
    void start(RunFollower *follower, const QString &runId, qint64 after, IRunStore *store = nullptr);

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

private:
    void followLive(qint64 after);
    void attach(Following following);
    void take(const RunEvents &events);
    void pump();
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
    RunEvents m_queue;            // taken from the handle, not sent yet
    qint64 m_queuedBytes = 0;     // about what m_queue weighs
    qint64 m_queuedSeq = 0;       // the last seq sent or queued
    qint64 m_sentSeq = 0;         // the last seq sent
    bool m_catchingUp = false;    // reading the history rather than following live
    bool m_waiting = false;       // a history read or a follow is under way
    bool m_closing = false;
    quint64 m_requests = 0;       // tells a late answer from the current one
};

} // namespace taskdeck
