// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

namespace taskdeck {

class TaskRegistry;

/*! "Run Command" (exec): runs one command line split into argv, without a shell. Dangerous. */
Task execTask();
/*! "File Checksum" (checksum): md5/sha1/sha256/sha512 of a file, with progress. */
Task checksumTask();

/*!
 * Adds tasks whose definitions are fixed in the program. A refusal means the definitions or
 * the registry are broken, so it stops the program with the reason.
 */
void addFixedTasks(TaskRegistry &registry, const QList<Task> &tasks);

/*! Registers every built-in task through the public API, as an embedding app would. */
void registerBuiltinTasks(TaskRegistry &registry);

} // namespace taskdeck
