// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

#include <optional>

namespace taskdeck {

/*!
 * The process a run belongs to, parsed from Run::owner ("pid@host#start;boot=ID;pidns=INODE",
 * see currentOwner(); start is field 22 of /proc/pid/stat: the process's start time in clock
 * ticks after boot). The start time tells the owner apart from a later process that was given
 * the same pid. The boot id and the PID namespace, which owners written by older versions do
 * not carry, tell whether the pid means anything here: an owner of an earlier boot is gone
 * whatever its pid; one in another PID namespace cannot be looked up from this one, so it is
 * taken to be alive (recovery leaves its runs to a Taskdeck of its own namespace, or to the
 * next boot).
 */
class RunOwner final
{
public:
    /*! Parses \a owner; nullopt when it is not in the "pid@host#start[;boot=ID][;pidns=INODE]"
     *  shape (other ";key=value" parts are ignored). */
    static std::optional<RunOwner> parse(const QString &owner);
    /*! \a owner for a person: "process PID on HOST", or as written when it does not parse. */
    static QString describe(const QString &owner);
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
    QString bootId() const { return m_boot; }              //!< empty when not recorded
    QString pidNamespace() const { return m_pidNamespace; } //!< empty when not recorded

    /*! This boot's id (/proc/sys/kernel/random/boot_id). */
    static QString localBootId();
    /*! The calling process's PID namespace inode (/proc/self/ns/pid), as digits. */
    static QString localPidNamespace();

    /*! True when the owner ran on this machine (by host name). */
    bool isOnThisHost() const;
    /*! True when the owner ran on this machine in an earlier boot: it is gone. */
    bool isFromEarlierBoot() const;
    /*! True when the owner runs on this machine, in this boot, in another PID namespace:
     *  its pid cannot be looked up from here. */
    bool isInOtherPidNamespace() const;
    /*!
     * True when the owner runs on this machine and is still the same live process, or runs
     * in another PID namespace of this boot (where it cannot be checked, so it is not
     * declared dead). False for an owner of an earlier boot.
     */
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
    QString m_boot;
    QString m_pidNamespace;
};

} // namespace taskdeck
