// SPDX-License-Identifier: MIT
#pragma once

#include <QString>
#include <QStringList>

namespace taskdeck {

/*!
 * Which processes have a history open, in a small file beside it (history.owners in the
 * data directory), so that opening can tell a history whose last user closed it from one
 * left behind by a crash. Opening adds an entry ("pid@host#start serial", see RunOwner)
 * and a clean close removes it; an entry of a process of this host that is gone means that
 * process stopped without closing, and the history is checked for damage once before the
 * entry is dropped. Entries of other hosts are left alone (their liveness cannot be told).
 *
 * The file is rewritten under an exclusive lock (flock), so processes opening and closing
 * at once do not lose each other's entries. Created with mode 0600.
 *
 * Pure functions on the file system; safe from any thread.
 */
class HistoryOwners final
{
public:
    /*! The file's name inside the data directory. */
    static QString fileName();

    /*!
     * Adds \a entry to the owners file \a path. Returns false when the file cannot be read
     * or written (\a error says why); then nobody can tell whether the last close was clean.
     * Otherwise fills \a gone with the entries of processes of this host that are gone.
     */
    static bool add(const QString &path, const QString &entry, QStringList *gone, QString *error);

    /*! Removes \a entries from the owners file \a path (those that are there). */
    static bool remove(const QString &path, const QStringList &entries, QString *error);

    /*! The entry of a store of this process: its owner string and \a serial. */
    static QString entryFor(quint64 serial);
};

} // namespace taskdeck
