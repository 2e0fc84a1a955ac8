// SPDX-License-Identifier: MIT
#include "systemtasks.h"

#include "builtintasks.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QLocale>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QTimer>
#include <QUrl>

#include "runcontext.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace taskdeck {

namespace {

// ---------------------------------------------------------------------------------------
// disk-usage

// A tree with a few unreadable corners should not bury the summary under error lines.
constexpr int MaxUnreadableLogged = 20;
// Checking the flag is cheap, but not free next to a readdir of a cached directory.
constexpr int CancelCheckInterval = 256;

struct Usage
{
    qint64 bytes = 0;
    qint64 files = 0;
};

struct Entry
{
    QString name;
    QString type;
    Usage usage;
};

QString entryType(mode_t mode)
{
    if (S_ISDIR(mode))
        return u"dir"_s;
    if (S_ISREG(mode))
        return u"file"_s;
    if (S_ISLNK(mode))
        return u"link"_s;
    return u"other"_s;
}

[[noreturn]] void throwCanceled()
{
    throw TaskError(u"canceled"_s, u"Canceled"_s);
}

class DirectoryHandle final
{
public:
    DirectoryHandle() = default;
    Q_DISABLE_COPY_MOVE(DirectoryHandle)
    ~DirectoryHandle() { close(); }

    // O_NOFOLLOW makes sure an entry swapped for a link after it was stat'ed is not entered.
    bool open(const QByteArray &path, bool followLink)
    {
        close();
        const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (followLink ? 0 : O_NOFOLLOW);
        int fd;
        do {
            fd = ::open(path.constData(), flags);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0)
            return false;
        m_dir = ::fdopendir(fd);
        if (!m_dir) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            return false;
        }
        return true;
    }

    void close()
    {
        if (m_dir)
            ::closedir(m_dir);
        m_dir = nullptr;
    }

    DIR *dir() const { return m_dir; }

private:
    DIR *m_dir = nullptr;
};

/*
 * Walks directory trees one directory at a time: every directory is read to its end and
 * closed before the next is opened, so a deep tree costs memory for pending paths, never
 * file descriptors.
 */
class DiskWalker final
{
public:
    explicit DiskWalker(RunContext &ctx) : m_ctx(ctx) {}

    qint64 unreadable() const { return m_unreadable; }

    /*
     * Calls \a visit(name, stat) for every entry of \a dir. Returns 0, or the errno of
     * the failure that ended the listing early (already counted and logged).
     */
    template<typename Visit>
    int forEachEntry(const QByteArray &dir, bool followLink, Visit visit)
    {
        DirectoryHandle handle;
        if (!handle.open(dir, followLink)) {
            const int error = errno;
            reportUnreadable(dir, error);
            return error;
        }
        const int fd = ::dirfd(handle.dir());
        for (;;) {
            if (++m_sinceCheck >= CancelCheckInterval) {
                m_sinceCheck = 0;
                if (m_ctx.isCanceled())
                    throwCanceled();
            }
            errno = 0;
            const dirent *entry = ::readdir(handle.dir());
            if (!entry) {
                const int error = errno;
                if (error != 0)
                    reportUnreadable(dir, error);
                return error;
            }
            const char *name = entry->d_name;
            if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0)
                continue;
            struct stat st;
            if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                reportUnreadable(join(dir, name), errno);
                continue;
            }
            visit(name, st);
        }
    }

    // Adds up everything below the directory \a root (the entry itself is not counted).
    Usage measureTree(const QByteArray &root)
    {
        Usage usage;
        std::vector<QByteArray> pending{root};
        while (!pending.empty()) {
            if (m_ctx.isCanceled())
                throwCanceled();
            const QByteArray dir = std::move(pending.back());
            pending.pop_back();
            forEachEntry(dir, false, [&](const char *name, const struct stat &st) {
                if (S_ISDIR(st.st_mode)) {
                    pending.push_back(join(dir, name));
                } else if (S_ISREG(st.st_mode)) {
                    usage.bytes += st.st_size;
                    ++usage.files;
                }
            });
        }
        return usage;
    }

    static QByteArray join(const QByteArray &dir, const char *name)
    {
        if (dir.endsWith('/'))
            return dir + name;
        return dir + '/' + name;
    }

private:
    void reportUnreadable(const QByteArray &path, int error)
    {
        ++m_unreadable;
        if (m_unreadable <= MaxUnreadableLogged) {
            m_ctx.logError(u"cannot read %1: %2"_s.arg(QFile::decodeName(path),
                                                        qt_error_string(error)));
        } else if (m_unreadable == MaxUnreadableLogged + 1) {
            m_ctx.logError(u"more unreadable entries follow; only their number is reported"_s);
        }
    }

    RunContext &m_ctx;
    qint64 m_unreadable = 0;
    int m_sinceCheck = 0;
};

QString formatBytes(qint64 bytes)
{
    // The C locale keeps the log the same whatever the machine's language.
    return u"%1 (%2 bytes)"_s.arg(QLocale::c().formattedDataSize(bytes), QString::number(bytes));
}

QJsonValue runDiskUsage(RunContext &ctx)
{
    const QString given = ctx.arg(u"path"_s).toString();
    const QFileInfo info(given);
    const QString path = info.absoluteFilePath();
    if (!info.exists())
        throw TaskError(u"%1 does not exist"_s.arg(path), u"NotADirectory"_s);
    if (!info.isDir())
        throw TaskError(u"%1 is not a directory"_s.arg(path), u"NotADirectory"_s);
    const qint64 limit = ctx.arg(u"limit"_s).toInteger(50);

    const QByteArray root = QFile::encodeName(path);
    DiskWalker walker(ctx);
    QList<Entry> entries;
    // The directory the user named may itself be a link to the directory they mean.
    const int error = walker.forEachEntry(root, true, [&](const char *name, const struct stat &st) {
        Entry entry{QFile::decodeName(name), entryType(st.st_mode), {}};
        if (S_ISREG(st.st_mode))
            entry.usage = {qint64(st.st_size), 1};
        entries.append(entry);
    });
    // Sizes of a partial listing would look complete: better no answer than a wrong one.
    if (error != 0)
        throw TaskError(u"cannot read %1: %2"_s.arg(path, qt_error_string(error)), u"FileError"_s);

    const qint64 total = entries.size();
    qint64 done = 0;
    Usage sum;
    for (Entry &entry : entries) {
        if (ctx.isCanceled())
            throwCanceled();
        if (entry.type == u"dir"_s)
            entry.usage = walker.measureTree(DiskWalker::join(root, QFile::encodeName(entry.name).constData()));
        sum.bytes += entry.usage.bytes;
        sum.files += entry.usage.files;
        ctx.progress(++done, total, entry.name);
    }

    std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
        if (a.usage.bytes != b.usage.bytes)
            return a.usage.bytes > b.usage.bytes;
        return a.name < b.name; // equal sizes in a stable, predictable order
    });

    QString summary = u"%1 entries, total %2 in %3 files"_s.arg(
        QString::number(total), formatBytes(sum.bytes), QString::number(sum.files));
    if (walker.unreadable() > 0)
        summary += u", %1 unreadable (not counted)"_s.arg(walker.unreadable());
    if (total > limit)
        summary += u"; showing the largest %1"_s.arg(limit);
    ctx.log(summary);

    QJsonArray rows;
    for (const Entry &entry : std::as_const(entries)) {
        if (rows.size() >= limit)
            break;
        rows.append(QJsonObject{
            {u"name"_s, entry.name},
            {u"type"_s, entry.type},
            {u"bytes"_s, entry.usage.bytes},
            {u"files"_s, entry.usage.files},
        });
    }
    return rows;
}

// ---------------------------------------------------------------------------------------
// http-check

// How often a request in flight looks at the cancel flag: short enough to feel immediate.
constexpr auto CancelPollInterval = 50ms;

QList<QUrl> parseUrlList(const QString &text)
{
    QList<QUrl> urls;
    QStringList invalid;
    const QStringList lines = text.split(u'\n');
    for (qsizetype i = 0; i < lines.size(); ++i) {
        const QString line = lines.at(i).trimmed();
        if (line.isEmpty() || line.startsWith(u'#'))
            continue;
        const QUrl url(line, QUrl::StrictMode);
        const QString scheme = url.scheme();
        if (url.isValid() && (scheme == u"http"_s || scheme == u"https"_s) && !url.host().isEmpty())
            urls.append(url);
        else
            invalid.append(u"line %1: %2"_s.arg(i + 1).arg(line));
    }
    if (!invalid.isEmpty()) {
        throw TaskError(u"not an http or https URL with a host: "_s + invalid.join(u"; "_s),
                        u"InvalidUrl"_s, false, invalid.join(u'\n'));
    }
    if (urls.isEmpty())
        throw TaskError(u"no URLs to check: every line is blank or a comment"_s, u"InvalidUrl"_s);
    return urls;
}

struct Check
{
    QUrl url;
    int status = 0;
    bool ok = false;
    qint64 bytes = 0;
    qint64 latencyMs = 0;
    QString error; // empty: no error

    QJsonObject toJson() const
    {
        return QJsonObject{
            {u"url"_s, url.toString()},
            {u"status"_s, status},
            {u"ok"_s, ok},
            {u"bytes"_s, bytes},
            {u"latencyMs"_s, latencyMs},
            {u"error"_s, error.isEmpty() ? QJsonValue(QJsonValue::Null) : QJsonValue(error)},
        };
    }
};

Check fetch(RunContext &ctx, QNetworkAccessManager &manager, const QUrl &url, bool head,
            std::chrono::seconds timeout)
{
    QNetworkRequest request(url);
    request.setAttribute(QNetworkRequest::RedirectPolicyAttribute,
                         QNetworkRequest::NoLessSafeRedirectPolicy);
    request.setTransferTimeout(int(std::chrono::milliseconds(timeout).count()));
    request.setHeader(QNetworkRequest::UserAgentHeader, u"Taskdeck http-check"_s);

    Check check;
    check.url = url;
    QElapsedTimer clock;
    clock.start();
    const std::unique_ptr<QNetworkReply> reply(head ? manager.head(request) : manager.get(request));
    bool canceled = false;

    // A worker thread runs no event loop of its own: this one carries the request.
    QEventLoop loop;
    // Bodies are counted, never kept: a large download must not grow memory.
    QObject::connect(reply.get(), &QNetworkReply::readyRead, &loop,
                     [&] { check.bytes += reply->readAll().size(); });
    QObject::connect(reply.get(), &QNetworkReply::finished, &loop, &QEventLoop::quit);
    QTimer poll;
    poll.setInterval(CancelPollInterval);
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
        if (ctx.isCanceled()) {
            canceled = true;
            reply->abort();
        }
    });
    poll.start();
    if (!reply->isFinished())
        loop.exec();
    poll.stop();
    check.latencyMs = clock.elapsed();
    if (canceled || ctx.isCanceled())
        throwCanceled();
    // An aborted reply (the transfer timeout) is closed and has nothing left to read.
    if (reply->isOpen())
        check.bytes += reply->readAll().size();

    check.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const QNetworkReply::NetworkError error = reply->error();
    check.ok = check.status >= 200 && check.status < 400 && error == QNetworkReply::NoError;
    if (check.status >= 400) {
        const QString reason = reply->attribute(QNetworkRequest::HttpReasonPhraseAttribute).toString();
        check.error = reason.isEmpty() ? u"HTTP %1"_s.arg(check.status)
                                       : u"HTTP %1 %2"_s.arg(QString::number(check.status), reason);
    } else if (error == QNetworkReply::TimeoutError || error == QNetworkReply::OperationCanceledError) {
        // Only the transfer timeout aborts a request we did not cancel ourselves; Qt 6.4
        // reports it as a cancel.
        check.error = u"timed out after %1 s without data"_s.arg(timeout.count());
    } else if (error != QNetworkReply::NoError) {
        check.error = reply->errorString();
    }
    return check;
}

QString describe(const Check &check, const QString &method)
{
    const QString url = check.url.toString();
    if (check.ok) {
        return u"%1 %2: %3, %4 bytes, %5 ms"_s.arg(method, url, QString::number(check.status),
                                                  QString::number(check.bytes),
                                                  QString::number(check.latencyMs));
    }
    return u"%1 %2: failed (%3), %4 ms"_s.arg(method, url, check.error,
                                             QString::number(check.latencyMs));
}

QJsonValue runHttpCheck(RunContext &ctx)
{
    const QList<QUrl> urls = parseUrlList(ctx.arg(u"urls"_s).toString());
    const std::chrono::seconds timeout(ctx.arg(u"timeout"_s).toInteger(10));
    const QString method = ctx.arg(u"method"_s).toString(u"GET"_s);
    const bool head = method == u"HEAD"_s;

    // Created here so it belongs to this worker thread, like every reply it makes.
    QNetworkAccessManager manager;
    QJsonArray rows;
    QStringList summary;
    qint64 failed = 0;
    for (qsizetype i = 0; i < urls.size(); ++i) {
        if (ctx.isCanceled())
            throwCanceled();
        const Check check = fetch(ctx, manager, urls.at(i), head, timeout);
        const QString line = describe(check, method);
        if (check.ok) {
            ctx.log(line);
        } else {
            ctx.logError(line);
            ++failed;
        }
        summary.append(line);
        rows.append(check.toJson());
        ctx.progress(i + 1, urls.size(), check.url.toString());
    }

    if (failed == urls.size()) {
        throw TaskError(u"all %1 URLs failed"_s.arg(urls.size()), u"HttpCheckFailed"_s, false,
                        summary.join(u'\n'));
    }
    return rows;
}

} // namespace

Task diskUsageTask()
{
    Task task;
    task.key = u"disk-usage"_s;
    task.title = u"Disk Usage"_s;
    task.description = u"Lists what takes the space in a directory: the size of each of its "
                       u"entries, directories added up recursively, largest first. Symbolic "
                       u"links are not followed."_s;
    task.category = u"report"_s;
    task.icon = u"pie-chart"_s;
    task.tags = {u"disk"_s, u"files"_s};
    task.fields = {
        Field(u"path"_s, FieldType::Text)
            .withTitle(u"Directory"_s)
            .withDescription(u"The directory whose entries are measured."_s)
            .withPlaceholder(u"/var/log"_s)
            .withRequired(),
        Field(u"limit"_s, FieldType::Integer)
            .withTitle(u"Rows"_s)
            .withDescription(u"How many of the largest entries to list."_s)
            .withMin(1)
            .withMax(10000)
            .withDefault(50),
    };
    task.fn = runDiskUsage;
    return task;
}

Task httpCheckTask()
{
    Task task;
    task.key = u"http-check"_s;
    task.title = u"HTTP Check"_s;
    task.description = u"Requests each URL of a list and reports its status, size and "
                       u"response time. The run fails only when no URL answered well."_s;
    task.category = u"admin"_s;
    task.icon = u"globe"_s;
    task.tags = {u"network"_s, u"http"_s, u"monitoring"_s};
    task.fields = {
        Field(u"urls"_s, FieldType::Textarea)
            .withTitle(u"URLs"_s)
            .withDescription(u"One http or https URL a line. Blank lines and lines starting "
                             u"with # are ignored."_s)
            .withPlaceholder(u"https://example.org/healthz"_s)
            .withRequired(),
        Field(u"timeout"_s, FieldType::Integer)
            .withTitle(u"Timeout (seconds)"_s)
            .withDescription(u"A request that receives no data for this long is abandoned."_s)
            .withMin(1)
            .withMax(300)
            .withDefault(10),
        Field(u"method"_s, FieldType::Select)
            .withTitle(u"Method"_s)
            .withDescription(u"HEAD asks for the headers only."_s)
            .withChoices({{u"GET"_s, u"GET"_s}, {u"HEAD"_s, u"HEAD"_s}})
            .withDefault(u"GET"_s),
    };
    task.fn = runHttpCheck;
    return task;
}

void registerSystemTasks(TaskRegistry &registry)
{
    addFixedTasks(registry, {diskUsageTask(), httpCheckTask()});
}

} // namespace taskdeck
