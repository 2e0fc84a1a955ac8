// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QMap>
#include <QObject>
#include <QString>

#include <array>

namespace taskdeck {

class TaskEngine;
struct Run;

/*!
 * What /metrics reports, in the Prometheus text format: HTTP answers by route and status,
 * finished runs by task and status and their durations (since the server started), and the
 * engine's queue depth, active runs and the live WebSocket clients at the time of asking.
 * Main thread only.
 */
class ServerMetrics final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(ServerMetrics)

public:
    explicit ServerMetrics(TaskEngine *engine, QObject *parent = nullptr);

    /*! An answer with \a status to a request of \a route (its pattern, or "unmatched"). */
    void answered(const QString &route, int status);
    void webSocketOpened() { ++m_webSockets; }
    void webSocketClosed() { --m_webSockets; }

    /*! The exposition text. */
    QByteArray render() const;

    /*! Upper bounds of the duration histogram's buckets, in seconds. */
    static constexpr std::array<double, 10> kBuckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300};

private:
    void runFinished(const Run &run);

    TaskEngine *m_engine;
    QMap<std::pair<QString, int>, qint64> m_requests;
    QMap<std::pair<QString, QString>, qint64> m_runs;
    std::array<qint64, kBuckets.size()> m_durationBuckets{};
    qint64 m_durationCount = 0;
    double m_durationSum = 0;
    int m_webSockets = 0;
};

} // namespace taskdeck
