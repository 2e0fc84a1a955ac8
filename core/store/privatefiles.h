// SPDX-License-Identifier: MIT
#pragma once

#include <QFile>
#include <QSaveFile>
#include <QString>
#include <QStringList>

#include <memory>

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

/*!
 * A path a user asked Taskdeck to write to (export --output, say). A regular file, or a path
 * where nothing exists yet, is written beside and renamed over only on commit(), so it never
 * holds half an output. Anything else that is not a directory (a FIFO, a character device
 * such as /dev/null, a socket) is opened and written to as it is: never replaced by a file.
 * A directory is refused. Symbolic links are followed.
 *
 * \code
 * OutputFile out(path);
 * QString error;
 * if (!out.open(&error) || !write(out.device()) || !out.commit(&error))
 *     report(error);
 * \endcode
 */
class OutputFile final
{
public:
    explicit OutputFile(const QString &path);
    ~OutputFile();
    OutputFile(const OutputFile &) = delete;
    OutputFile &operator=(const OutputFile &) = delete;

    /*! Opens the path for writing; false with \a error ("is a directory", or why it cannot be
     *  opened) otherwise. */
    bool open(QString *error);
    /*! Where to write once open() succeeded. */
    QIODevice *device() const;
    /*! Finishes the output: renames it into place, or flushes what is written in place. False
     *  with \a error when that fails; a regular file then keeps what it held before. */
    bool commit(QString *error);
    /*! True when the path is written in place (it is not a regular file). */
    bool writesInPlace() const { return bool(m_direct); }

private:
    QString m_path;
    std::unique_ptr<QSaveFile> m_save;
    std::unique_ptr<QFile> m_direct;
};

} // namespace taskdeck
