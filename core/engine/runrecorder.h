// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

namespace taskdeck {

/*!
 * Receives every change of every run, synchronously, on the thread where it happens (the
 * caller of start(), a worker, or the engine's scheduler). A run history implements it.
 * Implementations must be thread-safe and must not block for long: queue the work.
 * Log lines arrive in order, in batches.
 */
class IRunRecorder
{
public:
    virtual ~IRunRecorder() = default;
    virtual void recordQueued(const Run &run) = 0;
    virtual void recordStarted(const Run &run) = 0;
    virtual void recordProgress(const QString &runId, const Progress &progress) = 0;
    virtual void recordLog(const QString &runId, const LogLines &lines) = 0;
    virtual void recordFinished(const Run &run) = 0;
};

} // namespace taskdeck
