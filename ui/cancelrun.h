// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

#include <functional>

class QObject;

namespace taskdeck {
class IRunStore;
class TaskEngine;
} // namespace taskdeck

namespace taskdeck::ui {

/*!
 * Cancels run \a runId wherever it runs: in \a engine when it is a run of this process;
 * otherwise through \a store (may be null), which cancels a run waiting in a shared queue at
 * once and asks the worker that holds one to cancel it (IRunStore::requestCancelAsync()).
 * \a report gets one sentence for the status bar, in \a context's thread: at once, or when
 * the store has answered (never after \a context is gone).
 */
void cancelRunAnywhere(TaskEngine *engine, IRunStore *store, const QString &runId, QObject *context,
                       const std::function<void(const QString &)> &report);

} // namespace taskdeck::ui
