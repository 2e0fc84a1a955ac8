// SPDX-License-Identifier: MIT
#include "servecommand.h"

#include "adminserver.h"
#include "cli.h"
#include "console.h"
#include "engineconfig.h"
#include "signalwatcher.h"
#include "taskengine.h"

#include <QEventLoop>

#include <csignal>

using namespace Qt::StringLiterals;

namespace taskdeck {

int serve(TaskEngine *engine, IRunStore *store, const Settings &taskdeckSettings,
          const QString &dataDir, const QString &listen, Console *console)
{
    ServerSettings settings;
    settings.dataDir = dataDir;
    settings.webSocketEnabled = taskdeckSettings.websocketEnabled;
    if (!listen.isEmpty()) {
        QString error;
        const auto address = parseListenAddress(listen, &error);
        if (!address) {
            console->err(u"taskdeck: "_s + error);
            return exitcode::Usage;
        }
        settings.address = address->first;
        settings.port = address->second;
    }

    AdminServer server(engine, store, settings);
    QString error;
    if (!server.listen(&error)) {
        console->err(u"taskdeck: "_s + error);
        return exitcode::Usage;
    }
    if (!settings.address.isLoopback())
        console->err(u"taskdeck: warning: listening on %1, which is reachable from other "
                     u"machines; anyone with the token can run tasks"_s.arg(settings.listenText()));
    console->out(u"listening on "_s + server.baseUrl().toString());
    console->out(u"log in: "_s + server.loginUrl().toString());
    console->flush();

    QEventLoop loop;
    SignalWatcher watcher({SIGINT, SIGTERM});
    QObject::connect(&watcher, &SignalWatcher::signalReceived, &loop, [&](int) {
        console->err(u"stopping: canceling the runs in flight"_s);
        console->flush();
        loop.quit();
    });
    loop.exec();
    // The caller's shutdown() records the canceled runs before the history is flushed.
    engine->cancelAll();
    return exitcode::Success;
}

} // namespace taskdeck
