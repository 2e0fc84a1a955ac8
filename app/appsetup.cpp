// SPDX-License-Identifier: MIT
#include "appsetup.h"

#include "builtintasks.h"
#include "engineconfig.h"
#include "historytasks.h"
#include "sqliterunstore.h"
#include "systemtasks.h"
#include "taskregistry.h"

#include <QDir>
#include <QStandardPaths>

using namespace Qt::StringLiterals;

namespace taskdeck {

QString dataDirectory(const Settings &settings)
{
    if (!settings.dataDir.isEmpty())
        return settings.dataDir;
    // Not AppDataLocation: the window names an organisation for its QSettings, and that
    // would move the history of the window away from the command line's.
    return QDir(QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation))
        .filePath(u"taskdeck"_s);
}

std::unique_ptr<SqliteRunStore> openHistory(const Settings &settings, QString *error,
                                            SqliteRunStore::OpenMode mode)
{
    std::unique_ptr<SqliteRunStore> store = SqliteRunStore::open(dataDirectory(settings), error, mode);
    if (!store)
        return nullptr;
    // Runs left queued or running by Taskdeck processes that died are not coming back.
    store->recoverInterrupted();
    store->startRetention(settings.retentionDays);
    return store;
}

void registerStandardTasks(TaskRegistry &registry, SqliteRunStore *store, const Settings &settings)
{
    registerBuiltinTasks(registry);
    registerSystemTasks(registry);
    registerHistoryTasks(registry, store, QDir(dataDirectory(settings)).filePath(u"backups"_s));
}

} // namespace taskdeck
