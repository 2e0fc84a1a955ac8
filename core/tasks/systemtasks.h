// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

namespace taskdeck {

class TaskRegistry;

/*!
 * "Disk Usage" (disk-usage): the size of every entry of a directory, largest first.
 *
 * Arguments: \c path (an existing directory) and \c limit (rows to return, 1..10000).
 * Directories are summed recursively without following symbolic links; sizes are the
 * regular files' content sizes (what \c{du --apparent-size} counts for files), so a link,
 * an empty directory, a device or a FIFO adds nothing. Entries that cannot be read are
 * counted and logged, and the walk goes on.
 *
 * The result is a table, an array of {name, type ("dir", "file", "link", "other"), bytes,
 * files} where \c files counts the regular files an entry holds (1 for a file). Progress
 * advances once per top-level entry, with the entry's name as message.
 */
Task diskUsageTask();

/*!
 * "HTTP Check" (http-check): fetches each URL of a list in turn and reports how it answered.
 *
 * Arguments: \c urls (one http or https URL a line; blank lines and lines starting with '#'
 * are ignored), \c timeout (seconds without any data before a request is abandoned, 1..300)
 * and \c method (GET or HEAD). Redirects are followed unless they lead to a less safe
 * scheme (https to http).
 *
 * The result is a table, an array of {url, status (HTTP status, 0 without an answer),
 * ok (a 2xx or 3xx answer received in full), bytes (body bytes received), latencyMs (request
 * to last byte), error (text, or null)}. Failed URLs are rows, not a failed run: the run
 * fails (kind "HttpCheckFailed", the table in the error detail) only when every URL failed.
 * Invalid lines fail the run before anything is fetched, all of them named in the message.
 */
Task httpCheckTask();

/*! Registers disk-usage and http-check through the public API, as an embedding app would. */
void registerSystemTasks(TaskRegistry &registry);

} // namespace taskdeck
