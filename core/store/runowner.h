// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

#include <optional>

namespace taskdeck {

/*!
 * The process a run belongs to, parsed from Run::owner ("pid@host#start", where start is
 * field 22 of /proc/pid/stat: the process's start time in clock ticks after boot). The start
 * time tells the owner apart from a later process that was given the same pid.
 */
class RunOwner final
{
public:
    /*! Parses \a owner; nullopt when it is not in the "pid@host#start" shape. */
    static std::optional<RunOwner> parse(const QString &owner);
    /*! The owner string of the calling process, in the shape the engine writes. */
    static QString current();
    /*! This machine's host name, as owners name it. */
    static QString localHost();
    /*!
     * Start time (field 22 of /proc/pid/stat) of process \a pid; nullopt when there is no
     * such process or it is a zombie (dead, only waiting to be reaped).
     */
    static std::optional<QString> processStartTime(qint64 pid);

    qint64 pid() const { return m_pid; }
    QString host() const { return m_host; }
    QString startTime() const { return m_start; }

    /*! True when the owner ran on this machine, so its liveness can be checked. */
    bool isOnThisHost() const;
    /*! True when the owner runs on this machine and is still the same live process. */
    bool isAlive() const;

    /*!
     * Ends what the Taskdeck process \a owner (an owner string, "pid@host#start") left running
     * when it died: every live process whose environment names it in TASKDECK_OWNER (the
     * engine gives that to each command it starts, and their children inherit it) gets
     * SIGKILL, with its whole process group when the group's leader names it too. Processes
     * of other users, and ones that cleared their environment, are not found. Call it only
     * for an owner on this host that is gone (isAlive() false). Returns how many processes
     * were found.
     */
    static int endLeftovers(const QString &owner);

private:
    qint64 m_pid = 0;
    QString m_host;
    QString m_start;
};

} // namespace taskdeck
