// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

class QApplication;

namespace taskdeck::ui {

/*! The window's colour scheme: the system's palette, or Fusion with a light or dark one. */
enum class Theme { System, Light, Dark };

QString themeName(Theme theme);
Theme themeFromName(const QString &name); //!< unknown names give System

/*! Applies \a theme to \a app: the system style and palette, or Fusion with ours. */
void applyTheme(QApplication &app, Theme theme);

/*! True when the application's current window colour is dark. */
bool paletteIsDark();

} // namespace taskdeck::ui
