// SPDX-License-Identifier: MIT
// A small disk for one directory, without mounting one: loaded with LD_PRELOAD, this library
// makes the calls that grow files under $TASKDECK_ENOSPC_DIR fail with ENOSPC once the files
// there would take more than $TASKDECK_ENOSPC_BYTES bytes, as a full file system does.
//
// It stands in for the 1 MiB tmpfs of tests/tst_fulldisk.cpp where mounting is not allowed.
// The model is tmpfs's: every regular file under the directory (recursively) counts its size
// rounded up to whole 4 KiB pages; a write that would need more pages than are left writes
// what fits in the pages that are left (a short write) and the next one fails with ENOSPC;
// fallocate and a growing ftruncate either fit whole or fail. (A real tmpfs keeps a file
// grown by ftruncate sparse; here the growth counts, which is stricter.) Shrinking and writes
// inside a file's current size always pass. Files elsewhere, pipes and sockets are untouched.
//
// Intercepted: write, pwrite, pwrite64, writev, pwritev, pwritev64, fallocate, fallocate64,
// posix_fallocate, posix_fallocate64, ftruncate, ftruncate64. SQLite (the history, its WAL
// and its -shm) writes with pwrite64 and grows with ftruncate; Qt's QFile writes with write.
// Writes through memory maps are not seen (SQLite maps nothing with mmap_size at 0).

#ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#endif

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

constexpr off_t PageSize = 4096;

using WriteFn = ssize_t (*)(int, const void *, size_t);
using PwriteFn = ssize_t (*)(int, const void *, size_t, off_t);
using WritevFn = ssize_t (*)(int, const struct iovec *, int);
using PwritevFn = ssize_t (*)(int, const struct iovec *, int, off_t);
using FallocateFn = int (*)(int, int, off_t, off_t);
using PosixFallocateFn = int (*)(int, off_t, off_t);
using FtruncateFn = int (*)(int, off_t);

struct Real
{
    WriteFn write = nullptr;
    PwriteFn pwrite = nullptr;
    PwriteFn pwrite64 = nullptr;
    WritevFn writev = nullptr;
    PwritevFn pwritev = nullptr;
    PwritevFn pwritev64 = nullptr;
    FallocateFn fallocate = nullptr;
    FallocateFn fallocate64 = nullptr;
    PosixFallocateFn posixFallocate = nullptr;
    PosixFallocateFn posixFallocate64 = nullptr;
    FtruncateFn ftruncate = nullptr;
    FtruncateFn ftruncate64 = nullptr;
};

Real g_real;
char g_dir[PATH_MAX];      // the watched directory, resolved, without a trailing slash
size_t g_dirLength = 0;    // 0: nothing is watched, every call passes through
off_t g_budget = 0;
// One growing call at a time under the directory, so that two writers cannot both take the
// last pages.
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;

template <typename Fn>
Fn next(const char *name)
{
    return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

void resolve()
{
    g_real.write = next<WriteFn>("write");
    g_real.pwrite = next<PwriteFn>("pwrite");
    g_real.pwrite64 = next<PwriteFn>("pwrite64");
    g_real.writev = next<WritevFn>("writev");
    g_real.pwritev = next<PwritevFn>("pwritev");
    g_real.pwritev64 = next<PwritevFn>("pwritev64");
    g_real.fallocate = next<FallocateFn>("fallocate");
    g_real.fallocate64 = next<FallocateFn>("fallocate64");
    g_real.posixFallocate = next<PosixFallocateFn>("posix_fallocate");
    g_real.posixFallocate64 = next<PosixFallocateFn>("posix_fallocate64");
    g_real.ftruncate = next<FtruncateFn>("ftruncate");
    g_real.ftruncate64 = next<FtruncateFn>("ftruncate64");
}

__attribute__((constructor)) void setUp()
{
    resolve();
    const char *dir = getenv("TASKDECK_ENOSPC_DIR");
    const char *bytes = getenv("TASKDECK_ENOSPC_BYTES");
    if (!dir || !*dir || !bytes || !*bytes)
        return;
    char *end = nullptr;
    const long long budget = strtoll(bytes, &end, 10);
    if (*end != '\0' || budget < 0)
        return;
    // The directory may not exist yet (the program makes it): its parent is resolved then.
    char resolved[PATH_MAX];
    const char *path = realpath(dir, resolved) ? resolved : dir;
    const size_t length = strlen(path);
    if (length >= sizeof g_dir)
        return;
    memcpy(g_dir, path, length + 1);
    g_dirLength = length;
    while (g_dirLength > 1 && g_dir[g_dirLength - 1] == '/')
        g_dir[--g_dirLength] = '\0';
    g_budget = off_t(budget);
}

off_t pages(off_t size)
{
    return (size + PageSize - 1) / PageSize * PageSize;
}

// The bytes the regular files under \a path take, in whole pages.
off_t usage(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    off_t total = 0;
    const int dirFd = dirfd(dir);
    while (const struct dirent *entry = readdir(dir)) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirFd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            total += pages(st.st_size);
        } else if (S_ISDIR(st.st_mode)) {
            char child[PATH_MAX];
            const size_t length = strlen(path);
            const size_t nameLength = strlen(entry->d_name);
            if (length + 1 + nameLength < sizeof child) {
                memcpy(child, path, length);
                child[length] = '/';
                memcpy(child + length + 1, entry->d_name, nameLength + 1);
                total += usage(child);
            }
        }
    }
    closedir(dir);
    return total;
}

// True when \a fd is a regular file under the watched directory; its size in \a size.
bool watched(int fd, off_t *size)
{
    if (g_dirLength == 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    char link[64];
    char path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t length = readlink(link, path, sizeof path - 1);
    if (length <= 0)
        return false;
    path[length] = '\0';
    if (size_t(length) <= g_dirLength || strncmp(path, g_dir, g_dirLength) != 0 || path[g_dirLength] != '/')
        return false;
    *size = st.st_size;
    return true;
}

// How many of \a length bytes at \a offset of a watched file of \a size fit (with g_mutex
// held): all of them when the file does not grow past its pages or the pages are there.
off_t room(off_t size, off_t offset, off_t length)
{
    const off_t end = offset + length;
    if (pages(end) <= pages(size))
        return length;
    const off_t others = usage(g_dir) - pages(size);
    const off_t free = g_budget - others; // the most this file may take, in bytes
    const off_t maxEnd = free < 0 ? 0 : free / PageSize * PageSize;
    if (end <= maxEnd)
        return length;
    return maxEnd > offset ? maxEnd - offset : 0;
}

// The size of \a fd now (with g_mutex held: no other growing call runs meanwhile).
off_t sizeOf(int fd, off_t fallback)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : fallback;
}

class Guard
{
public:
    Guard() { pthread_mutex_lock(&g_mutex); }
    ~Guard() { pthread_mutex_unlock(&g_mutex); }
    Guard(const Guard &) = delete;
    Guard &operator=(const Guard &) = delete;
};

off_t currentOffset(int fd, off_t size)
{
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_APPEND))
        return size;
    const off_t at = lseek(fd, 0, SEEK_CUR);
    return at < 0 ? size : at;
}

size_t total(const struct iovec *iov, int count)
{
    size_t sum = 0;
    for (int i = 0; i < count; ++i)
        sum += iov[i].iov_len;
    return sum;
}

// The first \a allowed bytes of \a iov, in \a out (at most IOV_MAX entries); its count.
int truncated(const struct iovec *iov, int count, size_t allowed, struct iovec *out)
{
    int n = 0;
    for (int i = 0; i < count && allowed > 0 && n < IOV_MAX; ++i) {
        out[n].iov_base = iov[i].iov_base;
        out[n].iov_len = iov[i].iov_len < allowed ? iov[i].iov_len : allowed;
        allowed -= out[n].iov_len;
        ++n;
    }
    return n;
}

template <typename Fn, typename... Args>
ssize_t writeAt(Fn fn, int fd, const void *buffer, size_t length, Args... offset)
{
    off_t size = 0;
    if (length == 0 || !watched(fd, &size))
        return fn(fd, buffer, length, offset...);
    Guard guard;
    size = sizeOf(fd, size);
    if constexpr (sizeof...(Args) == 0) {
        const off_t fits = room(size, currentOffset(fd, size), off_t(length));
        if (fits == 0) {
            errno = ENOSPC;
            return -1;
        }
        return fn(fd, buffer, size_t(fits));
    } else {
        const off_t fits = room(size, offset..., off_t(length));
        if (fits == 0) {
            errno = ENOSPC;
            return -1;
        }
        return fn(fd, buffer, size_t(fits), offset...);
    }
}

template <typename Fn, typename... Args>
ssize_t writeVector(Fn fn, int fd, const struct iovec *iov, int count, Args... offset)
{
    off_t size = 0;
    const size_t length = count > 0 ? total(iov, count) : 0;
    if (length == 0 || !watched(fd, &size))
        return fn(fd, iov, count, offset...);
    Guard guard;
    size = sizeOf(fd, size);
    off_t fits = 0;
    if constexpr (sizeof...(Args) == 0)
        fits = room(size, currentOffset(fd, size), off_t(length));
    else
        fits = room(size, offset..., off_t(length));
    if (fits == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (size_t(fits) == length)
        return fn(fd, iov, count, offset...);
    struct iovec part[IOV_MAX];
    const int n = truncated(iov, count, size_t(fits), part);
    return fn(fd, part, n, offset...);
}

// 0 when the watched file \a fd, of \a size bytes, may grow to \a end bytes, else ENOSPC
// (whole or nothing); with g_mutex held.
int mayGrowTo(off_t size, off_t end)
{
    if (end <= size)
        return 0;
    return room(size, size, end - size) == end - size ? 0 : ENOSPC;
}

template <typename Fn>
int allocate(Fn fn, int fd, int mode, off_t offset, off_t length)
{
    // Only a call that makes the file longer takes room here: one that keeps the size,
    // punches a hole or collapses a range does not.
    off_t size = 0;
    if ((mode & (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)) != 0
        || !watched(fd, &size) || offset + length <= size) {
        return fn(fd, mode, offset, length);
    }
    Guard guard;
    size = sizeOf(fd, size);
    if (const int error = mayGrowTo(size, offset + length)) {
        errno = error;
        return -1;
    }
    return fn(fd, mode, offset, length);
}

template <typename Fn>
int posixAllocate(Fn fn, int fd, off_t offset, off_t length)
{
    off_t size = 0;
    if (!watched(fd, &size) || offset + length <= size)
        return fn(fd, offset, length);
    Guard guard;
    size = sizeOf(fd, size);
    if (const int error = mayGrowTo(size, offset + length))
        return error; // posix_fallocate returns the error and leaves errno alone
    return fn(fd, offset, length);
}

template <typename Fn>
int truncateTo(Fn fn, int fd, off_t length)
{
    off_t size = 0;
    if (!watched(fd, &size) || length <= size)
        return fn(fd, length);
    Guard guard;
    size = sizeOf(fd, size);
    if (const int error = mayGrowTo(size, length)) {
        errno = error;
        return -1;
    }
    return fn(fd, length);
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) ssize_t write(int fd, const void *buffer, size_t length)
{
    if (!g_real.write)
        resolve();
    return writeAt(g_real.write, fd, buffer, length);
}

__attribute__((visibility("default"))) ssize_t pwrite(int fd, const void *buffer, size_t length, off_t offset)
{
    if (!g_real.write)
        resolve();
    return writeAt(g_real.pwrite, fd, buffer, length, offset);
}

__attribute__((visibility("default"))) ssize_t pwrite64(int fd, const void *buffer, size_t length, off_t offset)
{
    if (!g_real.write)
        resolve();
    return writeAt(g_real.pwrite64, fd, buffer, length, offset);
}

__attribute__((visibility("default"))) ssize_t writev(int fd, const struct iovec *iov, int count)
{
    if (!g_real.write)
        resolve();
    return writeVector(g_real.writev, fd, iov, count);
}

__attribute__((visibility("default"))) ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset)
{
    if (!g_real.write)
        resolve();
    return writeVector(g_real.pwritev, fd, iov, count, offset);
}

__attribute__((visibility("default"))) ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset)
{
    if (!g_real.write)
        resolve();
    return writeVector(g_real.pwritev64, fd, iov, count, offset);
}

__attribute__((visibility("default"))) int fallocate(int fd, int mode, off_t offset, off_t length)
{
    if (!g_real.write)
        resolve();
    return allocate(g_real.fallocate, fd, mode, offset, length);
}

__attribute__((visibility("default"))) int fallocate64(int fd, int mode, off_t offset, off_t length)
{
    if (!g_real.write)
        resolve();
    return allocate(g_real.fallocate64, fd, mode, offset, length);
}

__attribute__((visibility("default"))) int posix_fallocate(int fd, off_t offset, off_t length)
{
    if (!g_real.write)
        resolve();
    return posixAllocate(g_real.posixFallocate, fd, offset, length);
}

__attribute__((visibility("default"))) int posix_fallocate64(int fd, off_t offset, off_t length)
{
    if (!g_real.write)
        resolve();
    return posixAllocate(g_real.posixFallocate64, fd, offset, length);
}

__attribute__((visibility("default"))) int ftruncate(int fd, off_t length)
{
    if (!g_real.write)
        resolve();
    return truncateTo(g_real.ftruncate, fd, length);
}

__attribute__((visibility("default"))) int ftruncate64(int fd, off_t length)
{
    if (!g_real.write)
        resolve();
    return truncateTo(g_real.ftruncate64, fd, length);
}

} // extern "C"
