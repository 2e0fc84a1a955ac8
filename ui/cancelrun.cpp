// SPDX-License-Identifier: MIT
#include "cancelrun.h"

#include "runowner.h"
#include "runstore.h"
#include "taskengine.h"
#include "whendone.h"

#include <QCoreApplication>

namespace taskdeck::ui {

namespace {

QString tr(const char *text)
{
    return QCoreApplication::translate("taskdeck::ui::CancelRun", text);
}

} // namespace

void cancelRunAnywhere(TaskEngine *engine, IRunStore *store, const QString &runId, QObject *context,
                       const std::function<void(const QString &)> &report)
{
    const QString shortId = runId.left(8);
    if (engine && engine->cancel(runId))
        return report(tr("Canceling run %1…").arg(shortId));
    if (!store)
        return report(tr("Run %1 is not running in this window.").arg(shortId));
    detail::whenDone(context, store->requestCancelAsync(runId), [=](const CancelRequest &asked) {
        switch (asked.outcome) {
        case CancelRequest::Outcome::Canceled:
            return report(tr("Run %1 was canceled before a worker started it.").arg(shortId));
        case CancelRequest::Outcome::Requested:
            return report(tr("Canceling run %1 on its worker…").arg(shortId));
        case CancelRequest::Outcome::Finished:
            return report(tr("Run %1 has finished already.").arg(shortId));
        case CancelRequest::Outcome::Elsewhere:
            return report(tr("Run %1 runs in %2, which takes no cancel from here: cancel it there.")
                              .arg(shortId, RunOwner::describe(asked.owner)));
        case CancelRequest::Outcome::Unknown:
            return report(tr("There is no run %1.").arg(shortId));
        case CancelRequest::Outcome::Failed:
            break;
        }
        report(tr("Cannot cancel run %1: %2").arg(shortId, asked.error));
    });
}

} // namespace taskdeck::ui
