// SPDX-License-Identifier: MIT
#include "command.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QByteArray>
#include <QByteArrayView>
#include <QFile>
#include <QMutex>
#include <QScopeGuard>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QJsonDocument>
#include <QJsonParseError>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace taskdeck {

namespace {

using Clock = std::chrono::steady_clock;

// How long to keep reading after the main child exited before deciding that whatever still
// holds the pipes open is a leftover that must be stopped.
constexpr auto kDrainAfterExit = 150ms;
// How long pipes may stay open once the group is empty before reading stops.
constexpr auto kOutsiderWait = 1s;
// Reads per stream when draining what is already buffered on the way out; bounds the work
// if something outside the group keeps writing.
constexpr int kFinalDrainReads = 16;
// Cancellation is polled at least this often while the command runs.
constexpr auto kCancelPollInterval = 50ms;
// Nothing signals when a process group empties, so it is polled at this rate while stopping.
constexpr auto kGroupPollInterval = 20ms;
// After SIGKILL the group dies almost at once; this only bounds pathological cases
// (uninterruptible sleep) so that the run still ends.
constexpr auto kGiveUpAfterKill = 2s;
// A ::result:: line may legitimately be much longer than a log line.
constexpr qsizetype kMaxResultLineBytes = 4 * 1024 * 1024;
// The shortest cap that can always hold one whole UTF-8 sequence.
constexpr qsizetype kMinLineBytes = 4;
constexpr qsizetype kStderrTailLines = 20;
constexpr qsizetype kReadChunk = 64 * 1024;
constexpr char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin";

constexpr QByteArrayView kProgressPrefix = "::progress::";
constexpr QByteArrayView kResultPrefix = "::result::";

QString errnoText(int error)
{
    // strerror() is not thread-safe; strerrordesc_np() returns a static string.
    if (const char *text = strerrordesc_np(error))
        return QString::fromUtf8(text);
    return u"error %1"_s.arg(error);
}

QString formatDuration(std::chrono::milliseconds duration)
{
    if (duration.count() % 1000 == 0)
        return u"%1s"_s.arg(duration.count() / 1000);
    return u"%1ms"_s.arg(duration.count());
}

class FileDescriptor final
{
public:
    FileDescriptor() = default;
    explicit FileDescriptor(int fd) : m_fd(fd) { }
    ~FileDescriptor() { reset(); }
    FileDescriptor(const FileDescriptor &) = delete;
    FileDescriptor &operator=(const FileDescriptor &) = delete;

    int get() const { return m_fd; }
    bool isValid() const { return m_fd >= 0; }
    void reset(int fd = -1)
    {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = fd;
    }

private:
    int m_fd = -1;
};

/*
 * Splits one stream into lines. Complete lines inside a read chunk are handed out straight
 * from the chunk; only an unfinished tail is copied. Lines longer than the cap are cut into
 * pieces on UTF-8 sequence boundaries, and when such a line ends the splitter says so.
 */
class LineSplitter final
{
public:
    // deliver(QByteArrayView piece, bool continuation): continuation is true for every piece of
    // an overlong line after the first, so such a piece is never mistaken for a control line.
    // After the last piece of a line that was split, deliver is called once more with a null
    // view and continuation true, and split() tells into how many pieces and how long it was.
    LineSplitter(qsizetype cap, bool allowLongResult)
        : m_cap(std::max(cap, kMinLineBytes)), m_allowLongResult(allowLongResult)
    {
    }

    struct Split
    {
        qint64 pieces = 0;
        qint64 bytes = 0;
    };
    Split split() const { return m_split; }

    template<typename Emit>
    void feed(const char *data, qsizetype size, Emit &&deliver)
    {
        const char *p = data;
        const char *const end = data + size;
        while (p < end) {
            const auto *newline = static_cast<const char *>(std::memchr(p, '\n', size_t(end - p)));
            if (!newline) {
                m_pending.append(p, size_t(end - p));
                emitOverlongPrefix(deliver);
                return;
            }
            if (m_pending.empty()) {
                emitComplete(QByteArrayView(p, newline - p), deliver);
            } else {
                m_pending.append(p, size_t(newline - p));
                emitComplete(QByteArrayView(m_pending.data(), qsizetype(m_pending.size())), deliver);
                m_pending.clear();
            }
            endLine(deliver);
            p = newline + 1;
        }
    }

    template<typename Emit>
    void finish(Emit &&deliver)
    {
        if (!m_pending.empty()) {
            emitComplete(QByteArrayView(m_pending.data(), qsizetype(m_pending.size())), deliver);
            m_pending.clear();
        }
        endLine(deliver);
    }

private:
    static bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

    qsizetype capFor(QByteArrayView line) const
    {
        if (!m_allowLongResult || m_continuing)
            return m_cap;
        // While fewer than the prefix's bytes have arrived, the line may still become one.
        const QByteArrayView head = line.first(std::min(line.size(), kResultPrefix.size()));
        return kResultPrefix.startsWith(head) ? std::max(m_cap, kMaxResultLineBytes) : m_cap;
    }

    // Where to end a piece of at most cap bytes of \a line (which is longer than cap).
    static qsizetype cutPosition(QByteArrayView line, qsizetype cap)
    {
        const qsizetype lowest = cap - (kMinLineBytes - 1);
        qsizetype cut = cap;
        while (cut > lowest && isContinuationByte(line[cut]))
            --cut;
        // More continuation bytes than any sequence has: the input is not UTF-8 here, so
        // cutting at the cap breaks nothing.
        if (isContinuationByte(line[cut]))
            cut = cap;
        return cut;
    }

    template<typename Emit>
    void piece(QByteArrayView bytes, Emit &deliver)
    {
        ++m_pieces;
        m_bytes += bytes.size();
        deliver(bytes, m_continuing);
    }

    template<typename Emit>
    void endLine(Emit &deliver)
    {
        if (m_pieces > 1) {
            m_split = {m_pieces, m_bytes};
            deliver(QByteArrayView(), true);
        }
        m_continuing = false;
        m_pieces = 0;
        m_bytes = 0;
    }

    template<typename Emit>
    void emitComplete(QByteArrayView line, Emit &deliver)
    {
        if (line.endsWith('\r'))
            line.chop(1);
        for (;;) {
            const qsizetype cap = capFor(line);
            if (line.size() <= cap)
                break;
            const qsizetype cut = cutPosition(line, cap);
            piece(line.first(cut), deliver);
            m_continuing = true;
            line = line.sliced(cut);
        }
        // An empty line is still a line, but not as the tail of one that was already cut up.
        if (!line.isEmpty() || !m_continuing)
            piece(line, deliver);
    }

    template<typename Emit>
    void emitOverlongPrefix(Emit &deliver)
    {
        qsizetype offset = 0;
        for (;;) {
            const QByteArrayView rest(m_pending.data() + offset, qsizetype(m_pending.size()) - offset);
            const qsizetype cap = capFor(rest);
            // One byte over the cap may still be the '\r' of a CRLF that is not complete yet.
            if (rest.size() <= cap || (rest.size() == cap + 1 && rest.endsWith('\r')))
                break;
            const qsizetype cut = cutPosition(rest, cap);
            piece(rest.first(cut), deliver);
            m_continuing = true;
            offset += cut;
        }
        if (offset > 0)
            m_pending.erase(0, size_t(offset));
    }

    std::string m_pending; // std::string keeps its capacity across clear()
    qsizetype m_cap;
    bool m_allowLongResult;
    bool m_continuing = false;
    qint64 m_pieces = 0; // of the line being read
    qint64 m_bytes = 0;
    Split m_split;       // of the last line that was split
};

// Process groups of the commands running now, for killAllCommands().
QMutex g_groupsMutex;
std::set<pid_t> g_liveGroups; // guarded by g_groupsMutex

void trackGroup(pid_t pgid, bool live)
{
    QMutexLocker locker(&g_groupsMutex);
    if (live)
        g_liveGroups.insert(pgid);
    else
        g_liveGroups.erase(pgid);
}

/*
 * One supervisor process watches the process groups of every command this process runs.
 * It is forked once, on the first command, and waits on one end of a socket pair whose other
 * end only this process holds (SOCK_CLOEXEC, so no exec'd child inherits it). Each command's
 * group is announced to it as it starts ('W') and when it is over ('U'). Should this process
 * die in any way (SIGKILL included), the kernel closes its end, the supervisor reads
 * end-of-file and kills every group still announced, so no command outlives the Taskdeck that
 * started it. (No parent-death signal: Linux sends it when the thread that forked exits,
 * and the fork happens on one of the engine's pool threads, which come and go.) One supervisor rather than one guard per command: a fork of this (large,
 * threaded) process per command cost more than the command itself.
 *
 * After fork() the supervisor only makes async-signal-safe system calls: no allocation, no
 * locks; the groups it watches are kept in a fixed table.
 */
class GroupSupervisor final
{
public:
    static GroupSupervisor &instance()
    {
        static GroupSupervisor supervisor;
        return supervisor;
    }

    // Announces \a pgid; false when no supervisor can be started (errno says why).
    bool watch(pid_t pgid) { return send('W', pgid); }
    // The group is over.
    void unwatch(pid_t pgid) { send('U', pgid); }

private:
    struct Message
    {
        char op;
        pid_t pgid;
    };
    static constexpr int kMaxGroups = 65536;
    static constexpr std::size_t kMessagesPerRead = 512;
    static constexpr long kRestNs = 5'000'000; // 5 ms

    bool send(char op, pid_t pgid)
    {
        std::lock_guard lock(m_mutex);
        const Message message{op, pgid};
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (m_writeFd < 0 && (op == 'U' || !startLocked()))
                return false;
            ssize_t n;
            do {
                n = ::send(m_writeFd, &message, sizeof message, MSG_NOSIGNAL);
            } while (n < 0 && errno == EINTR);
            if (n == ssize_t(sizeof message))
                return true;
            // The supervisor is gone (killed by someone): reap it and start another.
            ::close(m_writeFd);
            m_writeFd = -1;
            int status = 0;
            while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) { }
            m_pid = -1;
        }
        return false;
    }

    bool startLocked()
    {
        int lifeline[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, lifeline) != 0)
            return false;
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) {
            const int error = errno;
            ::close(lifeline[0]);
            ::close(lifeline[1]);
            errno = error;
            return false;
        }
        if (pid == 0)
            supervise(lifeline[0], parent); // never returns
        ::close(lifeline[0]);
        m_pid = pid;
        m_writeFd = lifeline[1];
        return true;
    }

    [[noreturn]] static void supervise(int readFd, pid_t parent)
    {
        // Keep nothing of the parent open (its stdout may be a pipe someone waits on), and
        // stay out of the terminal's and the parent's signals: only the lifeline ends it.
        // Handlers the parent installed are replaced, not only ignored, since their code
        // would write to the parent's descriptors.
        if (readFd > 0)
            ::close_range(0, static_cast<unsigned>(readFd) - 1, 0);
        ::close_range(static_cast<unsigned>(readFd) + 1, ~0U, 0);
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig != SIGKILL && sig != SIGSTOP)
                ::sigaction(sig, &ignore, nullptr);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);

        static pid_t groups[kMaxGroups]; // 0 = free slot
        const auto killAll = [] {
            for (pid_t pgid : groups) {
                if (pgid > 0)
                    ::kill(-pgid, SIGKILL);
            }
            ::_exit(0);
        };
        if (::getppid() != parent)
            killAll(); // the parent is gone already

        // Messages are read many at a time, and after each read the supervisor rests a
        // moment before it reads again: while commands start and end in quick succession,
        // their messages wait in the socket and cost it one wake-up per rest instead of two
        // per command (each a switch to this process on a machine the commands share). Idle,
        // it sleeps in read(). The parent's end is seen at most one rest late.
        static Message messages[kMessagesPerRead];
        std::size_t have = 0; // bytes in messages
        const timespec rest{0, kRestNs};
        for (;;) {
            const ssize_t n = ::read(readFd, reinterpret_cast<char *>(messages) + have, sizeof messages - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                killAll(); // end of file or an error: the parent is gone
            have += std::size_t(n);
            const std::size_t complete = have / sizeof(Message);
            for (std::size_t i = 0; i < complete; ++i)
                handle(groups, messages[i]);
            // A message cut off at the end of the read waits for its other bytes.
            const std::size_t partial = have - complete * sizeof(Message);
            if (partial > 0 && complete > 0)
                std::memmove(messages, messages + complete, partial);
            have = partial;
            if (partial == 0)
                ::nanosleep(&rest, nullptr);
        }
    }

    static void handle(pid_t (&groups)[kMaxGroups], const Message &message)
    {
        if (message.pgid <= 0)
            return;
        if (message.op == 'W') {
            for (pid_t &slot : groups) {
                if (slot == 0) {
                    slot = message.pgid;
                    return;
                }
            }
        } else if (message.op == 'U') {
            for (pid_t &slot : groups) {
                if (slot == message.pgid) {
                    slot = 0;
                    return;
                }
            }
        }
    }

    std::mutex m_mutex;
    pid_t m_pid = -1;   // guarded by m_mutex
    int m_writeFd = -1; // guarded by m_mutex
};

// Announces one command's group to the supervisor for as long as it lives.
class GroupGuard final
{
public:
    GroupGuard() = default;
    ~GroupGuard() { release(); }
    GroupGuard(const GroupGuard &) = delete;
    GroupGuard &operator=(const GroupGuard &) = delete;

    bool start(pid_t pgid)
    {
        if (!GroupSupervisor::instance().watch(pgid))
            return false;
        m_pgid = pgid;
        return true;
    }

    void release()
    {
        if (m_pgid <= 0)
            return;
        GroupSupervisor::instance().unwatch(m_pgid);
        m_pgid = -1;
    }

private:
    pid_t m_pgid = -1;
};

enum class Probe { Found, Missing, NotExecutable };

Probe probeExecutable(const QByteArray &path, bool directoryIsMissing)
{
    struct stat st {};
    if (::stat(path.constData(), &st) != 0)
        return Probe::Missing;
    if (S_ISDIR(st.st_mode))
        return directoryIsMissing ? Probe::Missing : Probe::NotExecutable;
    // exec checks the effective ids, so eaccess rather than access.
    return ::eaccess(path.constData(), X_OK) == 0 ? Probe::Found : Probe::NotExecutable;
}

struct Resolution
{
    QByteArray spawnPath; //!< what the child execs (relative paths resolve after its chdir)
    QString error;
};

// \a path is the child's PATH as bytes; null when it has none (the default path applies).
Resolution resolveExecutable(const QString &program, const QByteArray &path, const QString &workingDirectory)
{
    // Relative candidates are probed where the child will look for them: after the chdir.
    const auto probePath = [&](const QByteArray &candidate) -> QByteArray {
        if (candidate.startsWith('/') || workingDirectory.isEmpty())
            return candidate;
        return QFile::encodeName(workingDirectory) + '/' + candidate;
    };

    const QByteArray encoded = QFile::encodeName(program);
    if (program.contains(u'/')) {
        switch (probeExecutable(probePath(encoded), false)) {
        case Probe::Found:
            return {encoded, {}};
        case Probe::NotExecutable:
            return {{}, u"permission denied: "_s + program};
        case Probe::Missing:
            break;
        }
        return {{}, u"command not found: "_s + program};
    }

    // Like the shell: a file found without execute permission is reported only if no
    // executable one comes later in PATH.
    QString notExecutable;
    const QByteArray searchPath = path.isNull() ? QByteArray(kDefaultPath) : path;
    for (const QByteArray &dir : searchPath.split(':')) {
        // An empty PATH entry means the current directory.
        const QByteArray candidate = (dir.isEmpty() ? QByteArray(".") : dir) + '/' + encoded;
        switch (probeExecutable(probePath(candidate), true)) {
        case Probe::Found:
            return {candidate, {}};
        case Probe::NotExecutable:
            if (notExecutable.isEmpty())
                notExecutable = QFile::decodeName(candidate);
            break;
        case Probe::Missing:
            break;
        }
    }
    if (!notExecutable.isEmpty())
        return {{}, u"permission denied: "_s + notExecutable};
    return {{}, u"command not found: "_s + program};
}

// True when the group still has a member that is not a zombie. Zombies count as gone: a
// leftover reparented to an init that never reaps stays a zombie in the group forever.
bool groupHasLiveMembers(pid_t pgid)
{
    if (::kill(-pgid, 0) != 0)
        return false; // ESRCH: empty; EPERM: nothing in it we could signal anyway
    DIR *proc = ::opendir("/proc");
    if (!proc)
        return true;
    bool live = false;
    char path[sizeof "/proc//stat" + sizeof(dirent::d_name)];
    char buffer[512];
    while (const dirent *entry = ::readdir(proc)) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
            continue;
        std::snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
        ::close(fd);
        if (n <= 0)
            continue;
        buffer[n] = '\0';
        // "pid (comm) state ppid pgrp ...": comm may contain anything, so parse after the last ')'.
        const char *close = std::strrchr(buffer, ')');
        char state = 0;
        long ppid = 0;
        long pgrp = 0;
        if (!close || std::sscanf(close + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == pgid && state != 'Z' && state != 'X') {
            live = true;
            break;
        }
    }
    ::closedir(proc);
    return live;
}

/*
 * The environment a command starts with: this process's variables as they are at the start
 * (read from environ each time, so a change made meanwhile is seen), with the command's own
 * replacing or adding to them. Kept as bytes from end to end, in one buffer: turning every
 * variable into text and back cost more per command than the rest of the start, and bytes
 * that are not valid in the locale's encoding now reach the child unchanged.
 */
class ChildEnvironment final
{
public:
    explicit ChildEnvironment(const QMap<QString, QString> &variables)
    {
        m_bytes.reserve(4096);
        // The command's variables first; a name that is empty or holds '=' cannot be set.
        std::vector<std::pair<size_t, size_t>> overrides; // offset and length of each name
        for (auto it = variables.cbegin(); it != variables.cend(); ++it) {
            if (it.key().isEmpty() || it.key().contains(u'='))
                continue;
            const QByteArray name = it.key().toLocal8Bit();
            const QByteArray value = it.value().toLocal8Bit();
            overrides.emplace_back(m_bytes.size(), size_t(name.size()));
            if (name == "PATH")
                m_path = QByteArray(value.constData(), value.size()); // empty, not null, when set empty
            add(name, value);
        }
        for (char **entry = environ; entry && *entry; ++entry) {
            const char *text = *entry;
            const char *equal = std::strchr(text, '=');
            if (!equal)
                continue; // not a variable
            const std::string_view name(text, size_t(equal - text));
            const bool replaced = std::any_of(overrides.cbegin(), overrides.cend(), [&](const auto &o) {
                return std::string_view(m_bytes).substr(o.first, o.second) == name;
            });
            if (replaced)
                continue;
            if (name == "PATH")
                m_path = QByteArray(equal + 1);
            m_offsets.push_back(m_bytes.size());
            m_bytes.append(text);
            m_bytes.push_back('\0');
        }
    }

    /*! The child's PATH; null when it has none. */
    const QByteArray &path() const { return m_path; }

    /*! Pointers to every "NAME=value", then a null pointer, for exec; valid while this lives. */
    std::vector<char *> pointers()
    {
        std::vector<char *> envp;
        envp.reserve(m_offsets.size() + 1);
        for (size_t offset : m_offsets)
            envp.push_back(m_bytes.data() + offset);
        envp.push_back(nullptr);
        return envp;
    }

private:
    void add(const QByteArray &name, const QByteArray &value)
    {
        m_offsets.push_back(m_bytes.size());
        m_bytes.append(name.constData(), size_t(name.size()));
        m_bytes.push_back('=');
        m_bytes.append(value.constData(), size_t(value.size()));
        m_bytes.push_back('\0');
    }

    std::string m_bytes;
    std::vector<size_t> m_offsets;
    QByteArray m_path;
};

class SpawnResources final
{
public:
    SpawnResources()
    {
        m_actionsOk = posix_spawn_file_actions_init(&m_actions) == 0;
        m_attrOk = posix_spawnattr_init(&m_attr) == 0;
    }
    ~SpawnResources()
    {
        if (m_actionsOk)
            posix_spawn_file_actions_destroy(&m_actions);
        if (m_attrOk)
            posix_spawnattr_destroy(&m_attr);
    }
    SpawnResources(const SpawnResources &) = delete;
    SpawnResources &operator=(const SpawnResources &) = delete;

    bool ok() const { return m_actionsOk && m_attrOk; }
    posix_spawn_file_actions_t *actions() { return &m_actions; }
    posix_spawnattr_t *attr() { return &m_attr; }

private:
    posix_spawn_file_actions_t m_actions{};
    posix_spawnattr_t m_attr{};
    bool m_actionsOk = false;
    bool m_attrOk = false;
};

/*
 * What a command's output is read into: one buffer per thread, kept from command to command.
 * A fresh 64 KiB buffer per command was zero-filled every time, and allocating it made malloc
 * sort its free lists each time. A runner on a thread whose buffer is taken (a command started
 * from inside another one's callback) gets one of its own.
 */
class ReadBuffer final
{
public:
    ReadBuffer()
    {
        Slot &slot = threadSlot();
        if (!slot.taken) {
            slot.taken = true;
            if (!slot.data)
                slot.data.reset(new char[size_t(kReadChunk)]);
            m_slot = &slot;
            m_data = slot.data.get();
        } else {
            m_own.reset(new char[size_t(kReadChunk)]);
            m_data = m_own.get();
        }
    }
    ~ReadBuffer()
    {
        if (m_slot)
            m_slot->taken = false;
    }
    ReadBuffer(const ReadBuffer &) = delete;
    ReadBuffer &operator=(const ReadBuffer &) = delete;

    char *data() const { return m_data; }
    static constexpr size_t size() { return size_t(kReadChunk); }

private:
    struct Slot
    {
        std::unique_ptr<char[]> data;
        bool taken = false;
    };
    static Slot &threadSlot()
    {
        static thread_local Slot slot;
        return slot;
    }

    Slot *m_slot = nullptr;
    std::unique_ptr<char[]> m_own;
    char *m_data = nullptr;
};

class CommandRunner final
{
public:
    CommandRunner(const Command &cmd, const CommandSink &sink, CommandResult &result)
        : m_cmd(cmd),
          m_sink(sink),
          m_result(result),
          m_out(cmd.maxLineBytes, cmd.parseControlLines),
          m_err(cmd.maxLineBytes, false)
    {
    }

    ~CommandRunner()
    {
        if (m_pid > 0) {
            const auto untrack = qScopeGuard([this] { trackGroup(m_pid, false); });
            stopLeftovers();
        }
    }

    void stopLeftovers()
    {
        // The loop did not finish only when a sink callback threw: leave nothing behind.
        // Until the leader is reaped its id cannot be reused, and after that only while
        // kill() still finds members, so the group kill cannot hit a stranger.
        if (!m_finished) {
            if (!m_reaped || ::kill(-m_pid, 0) == 0)
                ::kill(-m_pid, SIGKILL);
            if (!m_reaped) {
                int status = 0;
                while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) { }
                recordStatus(status);
            }
            // SIGKILL lands asynchronously; the rest of the group must be down before we return.
            const auto until = Clock::now() + kGiveUpAfterKill;
            while (groupHasLiveMembers(m_pid) && Clock::now() < until)
                ::poll(nullptr, 0, 5);
        }
    }

    CommandRunner(const CommandRunner &) = delete;
    CommandRunner &operator=(const CommandRunner &) = delete;

    void run()
    {
        if (!start())
            return;
        loop();
    }

private:
    enum class Stop { None, Term, Kill };

    bool start();
    void loop();
    void waitForEvents(std::chrono::milliseconds timeout);
    void readFrom(LogStream stream);
    void drainReadable();
    void tryReap();
    void recordStatus(int status);
    bool beginStop(const QString &reason, Clock::time_point now);
    void handleLine(LogStream stream, QByteArrayView bytes, bool continuation);
    void handleProgress(QByteArrayView payload);
    void handleResult(QByteArrayView payload);
    void logLine(LogStream stream, const QString &text);
    void logSystem(const QString &text)
    {
        logLine(LogStream::System, text);
        flushLines();
    }
    void flushLines();
    bool pipesOpen() const { return m_outFd.isValid() || m_errFd.isValid(); }
    void closeStream(LogStream stream);

    const Command &m_cmd;
    const CommandSink &m_sink;
    OutputLines m_batch; // lines of the current read, for CommandSink::lines
    CommandResult &m_result;

    pid_t m_pid = -1; // also the process group id
    FileDescriptor m_pidFd;
    GroupGuard m_guard; // ends the group should this process die before the command
    FileDescriptor m_outFd;
    FileDescriptor m_errFd;
    LineSplitter m_out;
    LineSplitter m_err;
    ReadBuffer m_buffer;

    bool m_reaped = false;
    bool m_finished = false; // the loop ran to its end
    Clock::time_point m_reapedAt;
    Stop m_stop = Stop::None;
    QString m_stopReason;
    Clock::time_point m_killAt;
    Clock::time_point m_killSentAt;
    std::optional<Clock::time_point> m_groupGoneAt;
};

bool CommandRunner::start()
{
    if (m_cmd.argv.isEmpty() || m_cmd.argv.constFirst().isEmpty()) {
        m_result.startError = u"empty command"_s;
        return false;
    }
    const QString &workDir = m_cmd.workingDirectory;
    QByteArray encodedWorkDir;
    if (!workDir.isEmpty()) {
        const QFileInfo info(workDir);
        if (!info.exists()) {
            m_result.startError = u"working directory does not exist: "_s + workDir;
            return false;
        }
        if (!info.isDir()) {
            m_result.startError = u"working directory is not a directory: "_s + workDir;
            return false;
        }
        encodedWorkDir = QFile::encodeName(workDir);
        if (::eaccess(encodedWorkDir.constData(), X_OK) != 0) {
            m_result.startError = u"permission denied: "_s + workDir;
            return false;
        }
    }

    // The kernel ends every argument and variable at its first NUL: refuse rather than cut.
    for (qsizetype i = 0; i < m_cmd.argv.size(); ++i) {
        if (m_cmd.argv.at(i).contains(QChar::Null)) {
            m_result.startError = u"argument %1 contains a NUL character"_s.arg(i);
            return false;
        }
    }
    for (auto it = m_cmd.env.cbegin(); it != m_cmd.env.cend(); ++it) {
        if (it.key().contains(QChar::Null) || it.value().contains(QChar::Null)) {
            m_result.startError = u"environment variable %1 contains a NUL character"_s.arg(
                    QString(it.key()).replace(QChar::Null, u"\\0"_s));
            return false;
        }
    }
    if (workDir.contains(QChar::Null)) {
        m_result.startError = u"working directory contains a NUL character"_s;
        return false;
    }

    // A private copy of the process environment with the command's variables: nothing here
    // touches `environ`, so runs on other threads never see each other's variables.
    ChildEnvironment environment(m_cmd.env);

    const QString program = m_cmd.argv.constFirst();
    const Resolution resolved = resolveExecutable(program, environment.path(), workDir);
    if (!resolved.error.isEmpty()) {
        m_result.startError = resolved.error;
        return false;
    }

    QByteArrayList argvStorage;
    argvStorage.reserve(m_cmd.argv.size());
    for (const QString &arg : m_cmd.argv)
        argvStorage.append(arg.toLocal8Bit());
    std::vector<char *> argv;
    argv.reserve(size_t(argvStorage.size()) + 1);
    for (QByteArray &arg : argvStorage)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    std::vector<char *> envp = environment.pointers();

    // O_CLOEXEC so that children spawned concurrently by other threads never inherit our
    // pipe ends (which would hold them open and delay EOF); dup2 in the child clears it.
    int outPipe[2];
    int errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) {
        m_result.startError = u"cannot create pipe: "_s + errnoText(errno);
        return false;
    }
    m_outFd.reset(outPipe[0]);
    FileDescriptor outWrite(outPipe[1]);
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
        m_result.startError = u"cannot create pipe: "_s + errnoText(errno);
        return false;
    }
    m_errFd.reset(errPipe[0]);
    FileDescriptor errWrite(errPipe[1]);

    SpawnResources spawn;
    if (!spawn.ok()) {
        m_result.startError = u"cannot prepare process spawn"_s;
        return false;
    }
    posix_spawn_file_actions_t *actions = spawn.actions();
    posix_spawnattr_t *attr = spawn.attr();

    sigset_t emptyMask;
    sigemptyset(&emptyMask);
    // The calling thread (a pool worker) may block or ignore signals; the child must start
    // with the defaults or it could, say, survive our SIGTERM or die silently on SIGPIPE.
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2,
                    SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU, SIGURG, SIGWINCH}) {
        sigaddset(&defaults, sig);
    }

    int rc = posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(actions, outWrite.get(), STDOUT_FILENO);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(actions, errWrite.get(), STDERR_FILENO);
    if (rc == 0 && !encodedWorkDir.isEmpty())
        rc = posix_spawn_file_actions_addchdir_np(actions, encodedWorkDir.constData());
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                                | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(attr, 0); // the child leads a new group: kill(-pid) reaches all
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(attr, &emptyMask);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &defaults);
    if (rc != 0) {
        m_result.startError = u"cannot prepare process spawn: "_s + errnoText(rc);
        return false;
    }

    pid_t pid = -1;
    rc = ::posix_spawn(&pid, resolved.spawnPath.constData(), actions, attr, argv.data(), envp.data());
    if (rc != 0) {
        const QString path = QFile::decodeName(resolved.spawnPath);
        m_result.startError = rc == EACCES ? u"permission denied: "_s + path
                                           : u"cannot start %1: %2"_s.arg(path, errnoText(rc));
        return false;
    }
    m_pid = pid;
    m_result.started = true;
    trackGroup(pid, true);
    if (!m_guard.start(pid))
        logSystem(u"cannot start the guard of process group %1 (%2): the command will not be "
                  "stopped should Taskdeck be killed"_s.arg(QString::number(pid), errnoText(errno)));

    // Our copies of the write ends must go, or EOF would never arrive.
    outWrite.reset();
    errWrite.reset();

    // Without a pidfd (old kernel, seccomp) the loop falls back to polling waitpid.
    const long pidFd = ::syscall(SYS_pidfd_open, pid, 0);
    if (pidFd >= 0)
        m_pidFd.reset(static_cast<int>(pidFd));

    return true;
}

void CommandRunner::loop()
{
    const std::chrono::milliseconds grace = std::max(m_cmd.killGrace, std::chrono::milliseconds(0));
    const QString group = QString::number(m_pid);

    for (;;) {
        const auto now = Clock::now();

        if (!m_result.canceled && m_sink.isCanceled && m_sink.isCanceled()) {
            m_result.canceled = true;
            if (m_stop == Stop::None)
                beginStop(u"canceled"_s, now);
        }

        bool watchingGroup = false;
        if (m_reaped) {
            const bool open = pipesOpen();
            // Give the output a moment to reach EOF before suspecting anything.
            watchingGroup = m_stop != Stop::None || !open || m_result.canceled
                    || now >= m_reapedAt + kDrainAfterExit;
            if (watchingGroup) {
                if (groupHasLiveMembers(m_pid)) {
                    m_groupGoneAt.reset();
                    if (m_stop == Stop::None) {
                        logSystem(u"process %1 exited but left processes running in its group"_s.arg(group));
                        beginStop(u"left-behind processes"_s, now);
                    }
                } else {
                    if (!open)
                        break;
                    // Someone outside the group holds the pipes: a daemon that left the group,
                    // or (briefly) a child another thread is spawning that has not reached
                    // exec yet and so still has our descriptors. Wait a little for the latter.
                    if (!m_groupGoneAt)
                        m_groupGoneAt = now;
                    if (m_result.canceled || now >= *m_groupGoneAt + kOutsiderWait) {
                        drainReadable();
                        if (pipesOpen())
                            logSystem(u"stopped reading output: it is still held open by a process "
                                      "outside process group %1"_s.arg(group));
                        break;
                    }
                }
            }
        }

        if (m_stop == Stop::Term && now >= m_killAt) {
            ::kill(-m_pid, SIGKILL);
            logSystem(u"%1: sent SIGKILL to process group %2 after %3 grace"_s.arg(
                    m_stopReason, group, formatDuration(grace)));
            m_stop = Stop::Kill;
            m_killSentAt = now;
        }
        if (m_stop == Stop::Kill && m_reaped && now >= m_killSentAt + kGiveUpAfterKill) {
            drainReadable();
            logSystem(u"process group %1 still has processes after SIGKILL; no longer waiting"_s.arg(group));
            break;
        }

        // Nothing signals when the group empties, so it is polled faster while that matters.
        std::chrono::milliseconds timeout = kCancelPollInterval;
        if (watchingGroup || m_stop != Stop::None || (!m_pidFd.isValid() && !m_reaped))
            timeout = kGroupPollInterval;
        std::optional<Clock::time_point> deadline;
        const auto consider = [&](Clock::time_point t) {
            if (!deadline || t < *deadline)
                deadline = t;
        };
        if (m_stop == Stop::Term)
            consider(m_killAt);
        if (m_stop == Stop::Kill && m_reaped)
            consider(m_killSentAt + kGiveUpAfterKill);
        if (m_reaped && !watchingGroup)
            consider(m_reapedAt + kDrainAfterExit);
        if (m_groupGoneAt)
            consider(*m_groupGoneAt + kOutsiderWait);
        if (deadline) {
            // Round up so that the deadline has passed when poll returns, avoiding a spin.
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now);
            timeout = std::clamp(left, std::chrono::milliseconds(0), timeout);
        }
        waitForEvents(timeout);
    }

    // Whatever was cut off mid-line still belongs in the log.
    closeStream(LogStream::Out);
    closeStream(LogStream::Err);

    // A last sweep for anything that slipped past (for instance a member /proc could not
    // show us); the group id cannot have been reused while kill() still finds members.
    if (m_stop != Stop::None && ::kill(-m_pid, 0) == 0)
        ::kill(-m_pid, SIGKILL);
    m_finished = true;
}

bool CommandRunner::beginStop(const QString &reason, Clock::time_point now)
{
    if (m_reaped && !groupHasLiveMembers(m_pid))
        return false;
    ::kill(-m_pid, SIGTERM);
    logSystem(u"%1: sent SIGTERM to process group %2"_s.arg(reason, QString::number(m_pid)));
    m_stopReason = reason;
    m_stop = Stop::Term;
    m_killAt = now + std::max(m_cmd.killGrace, std::chrono::milliseconds(0));
    return true;
}

void CommandRunner::waitForEvents(std::chrono::milliseconds timeout)
{
    pollfd fds[3];
    LogStream streams[3] = {LogStream::Out, LogStream::Out, LogStream::Out};
    nfds_t count = 0;
    int pidIndex = -1;
    if (m_outFd.isValid()) {
        fds[count] = {m_outFd.get(), POLLIN, 0};
        streams[count++] = LogStream::Out;
    }
    if (m_errFd.isValid()) {
        fds[count] = {m_errFd.get(), POLLIN, 0};
        streams[count++] = LogStream::Err;
    }
    if (m_pidFd.isValid() && !m_reaped) {
        pidIndex = int(count);
        fds[count++] = {m_pidFd.get(), POLLIN, 0};
    }

    const int ready = ::poll(fds, count, int(timeout.count()));
    if (ready > 0) {
        for (nfds_t i = 0; i < count; ++i) {
            if (fds[i].revents == 0)
                continue;
            if (int(i) == pidIndex)
                tryReap();
            else
                readFrom(streams[i]);
        }
    }
    if (!m_pidFd.isValid() && !m_reaped)
        tryReap();
}

void CommandRunner::drainReadable()
{
    for (LogStream stream : {LogStream::Out, LogStream::Err}) {
        for (int i = 0; i < kFinalDrainReads; ++i) {
            const FileDescriptor &fd = stream == LogStream::Out ? m_outFd : m_errFd;
            if (!fd.isValid())
                break;
            pollfd pfd{fd.get(), POLLIN, 0};
            if (::poll(&pfd, 1, 0) <= 0 || pfd.revents == 0)
                break;
            readFrom(stream);
        }
    }
}

void CommandRunner::readFrom(LogStream stream)
{
    FileDescriptor &fd = stream == LogStream::Out ? m_outFd : m_errFd;
    if (!fd.isValid())
        return;
    ssize_t n;
    do {
        n = ::read(fd.get(), m_buffer.data(), m_buffer.size());
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        LineSplitter &splitter = stream == LogStream::Out ? m_out : m_err;
        splitter.feed(m_buffer.data(), qsizetype(n), [&](QByteArrayView line, bool continuation) {
            handleLine(stream, line, continuation);
        });
        flushLines();
        return;
    }
    if (n < 0 && errno == EAGAIN)
        return;
    // EOF, or an error that will not go away: either way this stream is finished.
    closeStream(stream);
}

void CommandRunner::closeStream(LogStream stream)
{
    FileDescriptor &fd = stream == LogStream::Out ? m_outFd : m_errFd;
    if (!fd.isValid())
        return;
    fd.reset();
    LineSplitter &splitter = stream == LogStream::Out ? m_out : m_err;
    splitter.finish([&](QByteArrayView line, bool continuation) { handleLine(stream, line, continuation); });
    flushLines();
}

void CommandRunner::tryReap()
{
    if (m_reaped)
        return;
    int status = 0;
    pid_t rc;
    do {
        rc = ::waitpid(m_pid, &status, WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return;
    m_reaped = true;
    m_reapedAt = Clock::now();
    m_pidFd.reset();
    if (rc == m_pid) {
        recordStatus(status);
    } else {
        // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN in this process, say).
        m_result.exitCode = -1;
        logSystem(u"exit status of process %1 is unknown: %2"_s.arg(QString::number(m_pid), errnoText(errno)));
    }
}

void CommandRunner::recordStatus(int status)
{
    m_reaped = true;
    if (WIFEXITED(status)) {
        m_result.exitCode = WEXITSTATUS(status);
        m_result.signal = 0;
    } else if (WIFSIGNALED(status)) {
        m_result.exitCode = -1;
        m_result.signal = WTERMSIG(status);
    }
}

void CommandRunner::handleLine(LogStream stream, QByteArrayView bytes, bool continuation)
{
    if (bytes.isNull()) {
        // The end of a line longer than the limit, which went out in pieces: the log says so
        // right after them (the pieces themselves are the command's bytes, unchanged).
        const LineSplitter::Split split = (stream == LogStream::Out ? m_out : m_err).split();
        logSystem(u"the last %1 lines of %2 were one line of %3 bytes, split at the limit of %4 bytes a line"_s
                      .arg(split.pieces).arg(stream == LogStream::Out ? u"stdout"_s : u"stderr"_s)
                      .arg(split.bytes).arg(m_cmd.maxLineBytes));
        return;
    }
    if (stream == LogStream::Out && m_cmd.parseControlLines && !continuation && bytes.startsWith("::")) {
        if (bytes.startsWith(kProgressPrefix)) {
            handleProgress(bytes.sliced(kProgressPrefix.size()));
            return;
        }
        if (bytes.startsWith(kResultPrefix)) {
            handleResult(bytes.sliced(kResultPrefix.size()));
            return;
        }
    }
    const QString text = QString::fromUtf8(bytes);
    if (stream == LogStream::Out) {
        ++m_result.stdoutLines;
    } else if (stream == LogStream::Err) {
        ++m_result.stderrLines;
        if (m_result.stderrTail.size() >= kStderrTailLines)
            m_result.stderrTail.removeFirst();
        m_result.stderrTail.append(text);
    }
    logLine(stream, text);
}

void CommandRunner::handleProgress(QByteArrayView payload)
{
    const QByteArrayView body = payload.trimmed();
    qsizetype tokenEnd = 0;
    while (tokenEnd < body.size() && !std::isspace(static_cast<unsigned char>(body[tokenEnd])))
        ++tokenEnd;
    const QByteArrayView token = body.first(tokenEnd);

    // Digits only: toLongLong alone would accept signs and surrounding blanks.
    const auto parseCount = [](QByteArrayView digits, qint64 *value) {
        if (digits.isEmpty()
            || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return false;
        }
        bool ok = false;
        *value = digits.toLongLong(&ok);
        return ok;
    };

    Progress progress;
    const qsizetype slash = token.indexOf('/');
    const bool valid = slash < 0
            ? parseCount(token, &progress.done)
            : parseCount(token.first(slash), &progress.done)
                    && parseCount(token.sliced(slash + 1), &progress.total);
    if (!valid) {
        logSystem(u"ignored ::progress:: line: expected DONE/TOTAL"_s);
        return;
    }
    progress.message = QString::fromUtf8(body.sliced(tokenEnd).trimmed());
    // The lines before it come first.
    flushLines();
    if (m_sink.progress)
        m_sink.progress(progress);
}

void CommandRunner::handleResult(QByteArrayView payload)
{
    const QByteArray json = payload.trimmed().toByteArray();
    if (json.isEmpty()) {
        logSystem(u"ignored ::result:: line: no JSON value"_s);
        return;
    }
    const auto reject = [this](const QString &error, qsizetype offset) {
        logSystem(u"ignored ::result:: line: invalid JSON (%1 at offset %2)"_s.arg(error).arg(offset));
    };
    QJsonParseError error{};
    if (json.startsWith('{') || json.startsWith('[')) {
        // Parsed as they are, so errors and offsets are exactly Qt's for this text.
        const QJsonDocument doc = QJsonDocument::fromJson(json, &error);
        if (error.error != QJsonParseError::NoError)
            return reject(error.errorString(), error.offset);
        m_result.result = doc.isObject() ? QJsonValue(doc.object()) : QJsonValue(doc.array());
        return;
    }
    // QJsonDocument in Qt 6.4 parses only objects and arrays: a scalar is parsed as the one
    // element of an array, and the offset is shifted back to undo the added '['.
    const QJsonDocument doc = QJsonDocument::fromJson('[' + json + ']', &error);
    if (error.error != QJsonParseError::NoError)
        return reject(error.errorString(), std::clamp<qsizetype>(error.offset - 1, 0, json.size()));
    const QJsonArray array = doc.array();
    if (array.size() != 1) {
        logSystem(u"ignored ::result:: line: expected one JSON value, got %1"_s.arg(array.size()));
        return;
    }
    m_result.result = array.at(0);
}

void CommandRunner::logLine(LogStream stream, const QString &text)
{
    if (m_sink.lines)
        m_batch.append(OutputLine{stream, text});
    else if (m_sink.line)
        m_sink.line(stream, text);
}

void CommandRunner::flushLines()
{
    if (m_batch.isEmpty())
        return;
    m_sink.lines(m_batch);
    m_batch.clear();
}

bool isBlank(QChar c)
{
    return c == u' ' || c == u'\t' || c == u'\n' || c == u'\r';
}

} // namespace

void killAllCommands()
{
    QMutexLocker locker(&g_groupsMutex);
    for (pid_t pgid : g_liveGroups)
        ::kill(-pgid, SIGKILL);
}

CommandResult runCommand(const Command &cmd, const CommandSink &sink)
{
    CommandResult result;
    try {
        CommandRunner runner(cmd, sink, result);
        runner.run();
    } catch (...) {
        // A sink callback threw. The runner's destructor has already killed and reaped the
        // group; make sure the outcome cannot read as success.
        result.exitCode = -1;
        try {
            std::rethrow_exception(std::current_exception());
        } catch (const std::exception &e) {
            result.startError = u"internal error: "_s + QString::fromUtf8(e.what());
        } catch (...) {
            result.startError = u"internal error"_s;
        }
    }
    return result;
}

QString signalName(int signal)
{
    if (signal > 0 && signal < NSIG) {
        // glibc has no abbreviations for the real-time range.
        if (signal >= SIGRTMIN && signal <= SIGRTMAX) {
            if (signal == SIGRTMIN)
                return u"SIGRTMIN"_s;
            return u"SIGRTMIN+%1"_s.arg(signal - SIGRTMIN);
        }
        if (const char *abbrev = sigabbrev_np(signal))
            return "SIG"_L1 + QLatin1StringView(abbrev);
    }
    return u"signal %1"_s.arg(signal);
}

std::optional<QStringList> splitCommandLine(const QString &line, QString *error)
{
    const auto fail = [error](const QString &message) -> std::optional<QStringList> {
        if (error)
            *error = message;
        return std::nullopt;
    };

    QStringList words;
    QString word;
    // Separate from word.isEmpty(): '' and "" produce a real, empty word.
    bool inWord = false;
    const qsizetype size = line.size();
    for (qsizetype i = 0; i < size; ++i) {
        const QChar c = line.at(i);
        if (isBlank(c)) {
            if (inWord) {
                words.append(word);
                word.clear();
                inWord = false;
            }
            continue;
        }
        if (c == u'\\') {
            if (i + 1 >= size)
                return fail(u"trailing backslash"_s);
            ++i;
            // Backslash-newline is a line continuation: it vanishes without starting a word.
            if (line.at(i) != u'\n') {
                word += line.at(i);
                inWord = true;
            }
            continue;
        }
        if (c == u'\'') {
            const qsizetype close = line.indexOf(u'\'', i + 1);
            if (close < 0)
                return fail(u"unterminated single quote"_s);
            word += QStringView(line).sliced(i + 1, close - i - 1);
            inWord = true;
            i = close;
            continue;
        }
        if (c == u'"') {
            inWord = true;
            for (++i;; ++i) {
                if (i >= size)
                    return fail(u"unterminated double quote"_s);
                const QChar d = line.at(i);
                if (d == u'"')
                    break;
                if (d == u'\\' && i + 1 < size) {
                    const QChar next = line.at(i + 1);
                    if (next == u'\n') {
                        ++i;
                        continue;
                    }
                    if (next == u'$' || next == u'`' || next == u'"' || next == u'\\') {
                        word += next;
                        ++i;
                        continue;
                    }
                }
                word += d;
            }
            continue;
        }
        word += c;
        inWord = true;
    }
    if (inWord)
        words.append(word);
    if (error)
        error->clear();
    return words;
}

} // namespace taskdeck
