// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

#include <QCryptographicHash>

namespace taskdeck {

class RunContext;
class TaskRegistry;

/*! A file's digest (lower-case hex) and how many bytes were read. */
struct FileDigest
{
    QString hex;
    qint64 size = 0;
};

/*!
 * Hashes the file at \a path with \a algorithm, a megabyte at a time, checking for cancel
 * between reads. With a \a progressMessage it reports progress as it reads (an unknown
 * total for pipes and special files). Throws TaskError ("FileError", "Canceled").
 */
FileDigest hashFile(RunContext &ctx, const QString &path, QCryptographicHash::Algorithm algorithm,
                    const QString &progressMessage = {});

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
