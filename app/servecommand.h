// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

namespace taskdeck {

class Console;
class IRunStore;
class TaskEngine;
struct Settings;

/*!
 * taskdeck serve: runs \a engine and the admin server without a window until SIGINT or
 * SIGTERM, which cancel the runs in flight and stop it. TASK_WEBSOCKET_ENABLED
 * (\a settings) turns live streaming off. \a listen is ADDRESS:PORT (empty: the
 * default). Returns the exit code: 2 for a bad or busy address.
 */
int serve(TaskEngine *engine, IRunStore *store, const Settings &settings, const QString &dataDir,
          const QString &listen, Console *console);

} // namespace taskdeck
