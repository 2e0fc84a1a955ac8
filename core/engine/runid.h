// SPDX-License-Identifier: MIT
#pragma once

#include <QString>
#include <QStringView>

#include <optional>

namespace taskdeck {

/*!
 * A new run id: a time-ordered (version 7) UUID without braces. Ids made later sort after
 * earlier ones of this process, so an index on them grows at its end. \a key, when given,
 * receives what runIdKey() reads back from the id.
 */
QString newRunId(quint64 *key = nullptr);

/*! The milliseconds and counter newRunId() made \a id from; empty for another text. */
std::optional<quint64> runIdKey(QStringView id);

/*! A new W3C trace id: 32 lowercase hex digits, not all zero. */
QString newTraceId();

} // namespace taskdeck
