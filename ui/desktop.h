// SPDX-License-Identifier: MIT
#pragma once

#include "engineconfig.h"

#include <QIcon>
#include <QString>
#include <QStringList>

namespace taskdeck {
class AdminServer;
class IRunStore;
class TaskEngine;
class TaskRegistry;
class TasksFileWatcher;
} // namespace taskdeck

namespace taskdeck::ui {

/*!
 * What the desktop window works on. The application makes these and keeps them alive
 * until the window is gone; null members are features that are off (no history, no tasks
 * file, no admin server), with the reason in the matching error string.
 */
struct DesktopServices
{
    TaskEngine *engine = nullptr;
    TaskRegistry *registry = nullptr;
    IRunStore *store = nullptr;
    QString historyError;
    TasksFileWatcher *tasksFile = nullptr;
    AdminServer *server = nullptr;
    QString serverError;
    Settings settings;          //!< in force: flags, environment, saved settings, defaults
    QStringList fixedSettings;  //!< variables set by the environment or flags (not editable)
    QString dataDir;
};

/*! Taskdeck's application icon: the theme's, or the one built in. */
QIcon applicationIcon();

} // namespace taskdeck::ui
