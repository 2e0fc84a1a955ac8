// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <QIcon>
#include <QString>
#include <QStringList>

namespace taskdeck::ui {

/*!
 * The icon for a task's freedesktop icon name \a iconName: the desktop theme's icon when it
 * has one, otherwise Taskdeck's own drawing of it (resources/icons/tasks), or the generic task
 * icon for names Taskdeck does not draw. Never null.
 */
QIcon taskIcon(const QString &iconName);

/*! The icon names Taskdeck draws itself (those the built-in tasks and examples use). */
QStringList bundledTaskIconNames();

/*! The badge painted on rows of dangerous tasks. */
QIcon dangerBadgeIcon();
/*! The badge painted on rows of expensive tasks. */
QIcon expensiveBadgeIcon();

/*! A small coloured icon for a run's \a status. */
QIcon runStatusIcon(taskdeck::RunStatus status);

} // namespace taskdeck::ui
