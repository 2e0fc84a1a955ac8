// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <functional>

namespace taskdeck {

/*!
 * Receives every change of every run, synchronously, on the thread where it happens (the
 * caller of start(), a worker, or the engine's scheduler). A run history implements it.
 * Implementations must be thread-safe and must not block for long: queue the work.
 * Log lines arrive in order, in batches, each with its number and its event sequence number
 * (LogLine::seq); every Run handed over carries the seq of its latest event (Run::seq).
 *
 * A finished run becomes visible (TaskEngine::runFinished, waitForFinished) only once the
 * recorder calls \a durable: a history store calls it after the run's final state is
 * committed, so nobody is ever shown a finish that a crash could lose. The recorder must
 * outlive the engine, and must call \a durable exactly once, from any thread.
 */
class IRunRecorder
{
public:
    virtual ~IRunRecorder() = default;
    virtual void recordQueued(const Run &run) = 0;
    virtual void recordStarted(const Run &run) = 0;
    /*! An attempt failed and the run waits (status Retrying) until run.nextAttemptAt. */
    virtual void recordRetrying(const Run &run) = 0;
    virtual void recordProgress(const QString &runId, const Progress &progress) = 0;
    virtual void recordLog(const QString &runId, const LogLines &lines) = 0;
    virtual void recordFinished(const Run &run, std::function<void()> durable) = 0;
};

} // namespace taskdeck
