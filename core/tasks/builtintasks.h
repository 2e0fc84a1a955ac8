// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

namespace taskdeck {

class TaskRegistry;

/*! "Run Command" (exec): runs one command line split into argv, without a shell. Dangerous. */
Task execTask();
/*! "File Checksum" (checksum): md5/sha1/sha256/sha512 of a file, with progress. */
Task checksumTask();

/*! Registers every built-in task through the public API, as an embedding app would. */
void registerBuiltinTasks(TaskRegistry &registry);

} // namespace taskdeck
