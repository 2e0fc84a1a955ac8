// SPDX-License-Identifier: MIT
#include "servermetrics.h"

#include "taskengine.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

QByteArray label(const QString &value)
{
    QByteArray out = value.toUtf8();
    out.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    return '"' + out + '"';
}

QByteArray number(double value)
{
    return QByteArray::number(value, 'g', 12);
}

} // namespace

ServerMetrics::ServerMetrics(TaskEngine *engine, QObject *parent)
    : QObject(parent), m_engine(engine)
{
    connect(engine, &TaskEngine::runFinished, this, &ServerMetrics::runFinished);
}

void ServerMetrics::answered(const QString &route, int status)
{
    ++m_requests[{route, status}];
}

void ServerMetrics::runFinished(const Run &run)
{
    ++m_runs[{run.task, runStatusName(run.status)}];
    const qint64 ms = run.durationMs();
    if (ms < 0)
        return;
    const double seconds = double(ms) / 1000.0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        if (seconds <= kBuckets[i])
            ++m_durationBuckets[i];
    }
    ++m_durationCount;
    m_durationSum += seconds;
}

QByteArray ServerMetrics::render() const
{
    QByteArray out;
    out += "# HELP taskdeck_http_requests_total HTTP answers by route and status.\n"
           "# TYPE taskdeck_http_requests_total counter\n";
    for (auto it = m_requests.cbegin(); it != m_requests.cend(); ++it)
        out += "taskdeck_http_requests_total{route=" + label(it.key().first) + ",status=\""
             + QByteArray::number(it.key().second) + "\"} " + QByteArray::number(it.value()) + '\n';

    out += "# HELP taskdeck_runs_total Runs finished since the server started, by task and status.\n"
           "# TYPE taskdeck_runs_total counter\n";
    for (auto it = m_runs.cbegin(); it != m_runs.cend(); ++it)
        out += "taskdeck_runs_total{task=" + label(it.key().first) + ",status=" + label(it.key().second)
             + "} " + QByteArray::number(it.value()) + '\n';

    out += "# HELP taskdeck_run_duration_seconds How long finished runs ran.\n"
           "# TYPE taskdeck_run_duration_seconds histogram\n";
    for (size_t i = 0; i < kBuckets.size(); ++i)
        out += "taskdeck_run_duration_seconds_bucket{le=\"" + number(kBuckets[i]) + "\"} "
             + QByteArray::number(m_durationBuckets[i]) + '\n';
    out += "taskdeck_run_duration_seconds_bucket{le=\"+Inf\"} " + QByteArray::number(m_durationCount) + '\n';
    out += "taskdeck_run_duration_seconds_sum " + number(m_durationSum) + '\n';
    out += "taskdeck_run_duration_seconds_count " + QByteArray::number(m_durationCount) + '\n';

    out += "# HELP taskdeck_queue_depth Runs waiting to start.\n# TYPE taskdeck_queue_depth gauge\n"
           "taskdeck_queue_depth " + QByteArray::number(m_engine->queuedCount()) + '\n';
    out += "# HELP taskdeck_runs_active Runs executing now.\n# TYPE taskdeck_runs_active gauge\n"
           "taskdeck_runs_active " + QByteArray::number(m_engine->runningCount()) + '\n';
    out += "# HELP taskdeck_websocket_clients Live run streams.\n# TYPE taskdeck_websocket_clients gauge\n"
           "taskdeck_websocket_clients " + QByteArray::number(m_webSockets) + '\n';
    return out;
}

} // namespace taskdeck
