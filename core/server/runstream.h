// SPDX-License-Identifier: MIT
#pragma once

#include "runhandle.h"

#include <QObject>
#include <QPointer>

#include <memory>

QT_BEGIN_NAMESPACE
class QWebSocket;
QT_END_NAMESPACE

namespace taskdeck {

class RunFollower;
struct Following;

/*!
 * One WebSocket client following one run: a snapshot (unless resuming with after >= 0),
 * then one JSON message per event, each with "type" and "seq". A client that does not take
 * messages fast enough gets {"type":"behind","seq":N} and is closed; it resumes with
 * ?after=N. Closes itself after the run's finish; deletes itself when the socket closes.
 */
class RunStream final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunStream)

public:
    RunStream(std::unique_ptr<QWebSocket> socket, qint64 maxPendingBytes, QObject *parent = nullptr);
    ~RunStream() override;

    /*! Starts following \a runId from \a after (-1: from a snapshot). */
    void start(RunFollower *follower, const QString &runId, qint64 after);

private:
    void attach(Following following, qint64 after);
    void sendEvents(const RunEvents &events);
    void send(const QJsonObject &message);
    void behind(qint64 seq);

    std::unique_ptr<QWebSocket> m_socket;
    std::unique_ptr<RunHandle> m_handle;
    const qint64 m_maxPendingBytes;
    qint64 m_sentSeq = 0;
    bool m_closing = false;
};

} // namespace taskdeck
