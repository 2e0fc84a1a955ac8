// SPDX-License-Identifier: MIT
#include "appsetup.h"

#include "builtintasks.h"
#include "engineconfig.h"
#include "historytasks.h"
#include "pgrunstore.h"
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

QString databaseUrl(const QString &flag, const QProcessEnvironment &env)
{
    return flag.isEmpty() ? env.value(u"TASK_DATABASE_URL"_s).trimmed() : flag;
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

std::unique_ptr<IRunStore> openRunStore(const Settings &settings, const QString &databaseUrl,
                                        QString *error, SqliteRunStore::OpenMode mode)
{
    if (databaseUrl.isEmpty())
        return openHistory(settings, error, mode);
    std::unique_ptr<PgRunStore> store = PgRunStore::open(databaseUrl, error);
    if (!store)
        return nullptr;
    store->recoverInterrupted();
    store->startRetention(settings.retentionDays);
    return store;
}

void registerStandardTasks(TaskRegistry &registry, IRunStore *store, const Settings &settings)
{
    registerBuiltinTasks(registry);
    registerSystemTasks(registry);
    if (store && !dynamic_cast<SqliteRunStore *>(store)) {
        registry.add(purgeHistoryTask(store));
        return;
    }
    registerHistoryTasks(registry, store, QDir(dataDirectory(settings)).filePath(u"backups"_s));
}

} // namespace taskdeck
