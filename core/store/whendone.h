// SPDX-License-Identifier: MIT
#pragma once

#include <QFuture>
#include <QFutureWatcher>
#include <QObject>

#include "../internal/tsan.h"

#include <utility>

namespace taskdeck::detail {

/*!
 * Calls \a onDone with the result of \a future in \a owner's thread once the future has a
 * result, and never once \a owner is gone.
 *
 * Qt 6.4's QFuture::then(context, ...) asserts that its context is still alive when the
 * future finishes, so an object that may be destroyed while a query is in flight (a follower
 * whose client went away, a server shutting down) cannot be its context. A watcher owned by
 * \a owner goes away with it instead. A future that ends canceled, or without a result, calls
 * nothing. An owner gone before the future finished cancels it (ResultWatcher).
 */
template <typename T, typename F>
void whenDone(QObject *owner, const QFuture<T> &future, F &&onDone)
{
    auto *watcher = new ResultWatcher<T>(owner); // lets go of a result it never read, too
    QObject::connect(watcher, &QFutureWatcherBase::finished, owner,
                     [watcher, fn = std::forward<F>(onDone)]() mutable {
                         watcher->deleteLater();
                         const QFuture<T> done = watcher->future();
                         if (done.isCanceled() || done.resultCount() == 0)
                             return;
                         // The result was set on another thread (detail::publishResult).
                         detail::acquireResult(done);
                         fn(done.result());
                         detail::releaseResult(done);
                     });
    watcher->setFuture(future);
}

} // namespace taskdeck::detail
