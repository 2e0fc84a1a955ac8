// SPDX-License-Identifier: MIT
#pragma once

#include <QProcessEnvironment>
#include <QString>

namespace taskdeck {

struct CommandLine;

/*!
 * Why no window can be opened with \a env, or an empty string when a display is there (or
 * QT_QPA_PLATFORM names a platform that needs none, such as offscreen).
 */
QString displayProblem(const QProcessEnvironment &env);

/*!
 * `taskdeck` and `taskdeck gui`: opens the desktop window on the engine, the history, the
 * tasks and the admin server, and returns when it closes. With no display it says so and
 * returns 2 before Qt would abort.
 */
int runGui(int &argc, char **argv, const CommandLine &commandLine);

} // namespace taskdeck
