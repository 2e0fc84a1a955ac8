// SPDX-License-Identifier: MIT
#pragma once

#include "engineconfig.h"
#include "theme.h"

#include <QMap>
#include <QProcessEnvironment>
#include <QStringList>

namespace taskdeck::ui {

/*!
 * The settings a person saves in the window (Settings dialog), kept with QSettings. The
 * environment and command-line flags win over them: a variable set there fixes its setting.
 */
namespace UserSettings {

inline constexpr auto kMaxConcurrent = "engine/maxConcurrent";
inline constexpr auto kDefaultTimeoutMs = "engine/defaultTimeoutMs";
inline constexpr auto kBufferSize = "engine/bufferSize";
inline constexpr auto kRetentionDays = "history/retentionDays";
inline constexpr auto kTheme = "appearance/theme";

/*! Copies the saved values into \a settings, except those whose variable is in \a fixed.
 *  Saved values out of range are ignored. */
void applySaved(Settings &settings, const QStringList &fixed);
/*! Saves the editable values of \a settings (those not in \a fixed). */
void save(const Settings &settings, const QStringList &fixed);

Theme theme();
void setTheme(Theme theme);

} // namespace UserSettings

/*! The setting variables among TASK_MAX_CONCURRENT, TASK_TIMEOUT, TASK_BUFFER_SIZE and
 *  TASK_RETENTION_DAYS that \a env or \a flags set. */
QStringList fixedSettingVariables(const QProcessEnvironment &env,
                                  const QMap<QString, QString> &flags);

} // namespace taskdeck::ui
