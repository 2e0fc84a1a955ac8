// SPDX-License-Identifier: MIT
#pragma once

#include <QString>
#include <QStringList>

namespace taskdeck {

/*!
 * Files only their owner may read: the data directory and what Taskdeck keeps in it (the
 * history with its -wal and -shm files, backups) hold run arguments and logs. Directories are
 * made 0700 and files 0600 whatever the umask, before anything is written to them.
 *
 * Pure functions on the file system; safe from any thread.
 */
class PrivateFiles final
{
public:
    /*!
     * Creates \a dir (and missing parents) when it does not exist, the directory itself with
     * mode 0700. An existing directory is left as it is. False with \a error naming the
     * directory when it cannot be created.
     */
    static bool makeDirectory(const QString &dir, QString *error);

    /*!
     * Creates \a path empty with mode 0600 unless something exists there already. Returns
     * true when it created the file; a failure is left to whoever opens the path next,
     * which reports it with more context.
     */
    static bool createFile(const QString &path);

    /*!
     * Makes \a path, a directory or file of Taskdeck's, private by clearing its group and
     * other permission bits when any is set. Leaves alone what this user does not own and
     * sticky directories (shared ones such as /tmp). Returns "PATH OLD -> NEW" (octal modes)
     * when it changed the mode, an empty string otherwise.
     */
    static QString tighten(const QString &path);

    /*! Mode bits (the 12 low bits) of \a path as 4 octal digits, for messages. */
    static QString modeText(unsigned mode);
};

} // namespace taskdeck
