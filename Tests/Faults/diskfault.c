/*
 * diskfault.c: disk faults switched on and off while a process runs, loaded with LD_PRELOAD.
 *
 * Why: a test of the real daemon needs its data directory to turn read-only, or its fsyncs
 * to fail, and then to work again, while the daemon keeps its files open. A remount
 * read-only is refused (EBUSY) while files are open for writing, and a device-mapper target
 * needs a block device; this library makes the libc calls the daemon uses fail instead, for
 * paths under one directory only.
 *
 * Build:  cc -shared -fPIC -O2 -o libdiskfault.so Tests/Faults/diskfault.c -ldl -lpthread
 * Use:    LD_PRELOAD=libdiskfault.so DISKFAULT_ROOT=/data DISKFAULT_CONTROL=/tmp/mode edgelog ...
 *
 * Environment
 *   DISKFAULT_ROOT     absolute path; only files and directories under it fail.
 *   DISKFAULT_CONTROL  a file whose first word is the mode, re-read every 20 ms:
 *                        ok (or missing, or empty)  nothing fails
 *                        read-only    opening for writing or creating, writing, truncating,
 *                                     renaming, unlinking and making directories fail with
 *                                     EROFS, as on a file system remounted read-only
 *                        fsync-eio    fsync and fdatasync fail with EIO, as when the device
 *                                     loses a write-back
 *   Without both variables the library does nothing.
 *
 * Which descriptors are under ROOT is learnt from /proc/self/fd when a descriptor is first
 * used and cached until it is closed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_OK, MODE_READ_ONLY, MODE_FSYNC_EIO };

static char root[PATH_MAX];
static size_t root_len;
static char control[PATH_MAX];
static int active;
static volatile int current_mode = MODE_OK;

/* Per descriptor: 0 unknown, 1 under ROOT, 2 elsewhere. */
#define MAX_FDS 65536
static unsigned char fd_place[MAX_FDS];

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static int path_under_root(const char *path)
{
    return strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0');
}

/* Whether a path (relative to dirfd when not absolute) names something under ROOT. */
static int at_under_root(int dirfd, const char *path)
{
    if (!active || path == NULL) return 0;
    char full[2 * PATH_MAX + 2];
    if (path[0] == '/') {
        snprintf(full, sizeof full, "%s", path);
    } else {
        char link[64], base[PATH_MAX];
        ssize_t n;
        if (dirfd == AT_FDCWD) {
            if (getcwd(base, sizeof base) == NULL) return 0;
            n = (ssize_t)strlen(base);
        } else {
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            n = readlink(link, base, sizeof base - 1);
            if (n < 0) return 0;
            base[n] = '\0';
        }
        snprintf(full, sizeof full, "%s/%s", base, path);
    }
    return path_under_root(full);
}

static int fd_under_root(int fd)
{
    if (!active || fd < 0) return 0;
    if (fd < MAX_FDS && fd_place[fd] != 0) return fd_place[fd] == 1;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = '\0';
    int under = path_under_root(target);
    if (fd < MAX_FDS) fd_place[fd] = under ? 1 : 2;
    return under;
}

static void *watch_control(void *unused)
{
    (void)unused;
    for (;;) {
        int mode = MODE_OK;
        int fd = REAL(open)(control, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char word[32] = {0};
            ssize_t n = read(fd, word, sizeof word - 1);
            close(fd);
            if (n > 0) {
                if (strncmp(word, "read-only", 9) == 0) mode = MODE_READ_ONLY;
                else if (strncmp(word, "fsync-eio", 9) == 0) mode = MODE_FSYNC_EIO;
            }
        }
        current_mode = mode;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void)
{
    const char *r = getenv("DISKFAULT_ROOT"), *c = getenv("DISKFAULT_CONTROL");
    if (r == NULL || c == NULL || r[0] != '/' || c[0] == '\0') return;
    if (realpath(r, root) == NULL) snprintf(root, sizeof root, "%s", r);
    root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = '\0';
    snprintf(control, sizeof control, "%s", c);
    active = 1;
    pthread_t thread;
    pthread_create(&thread, NULL, watch_control, NULL);
    pthread_detach(thread);
}

static int refuse(int error)
{
    errno = error;
    return -1;
}

#define READ_ONLY() (active && current_mode == MODE_READ_ONLY)
#define WRITES(flags) (((flags) & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0)

static int opened(int fd)
{
    if (fd >= 0 && fd < MAX_FDS) fd_place[fd] = 0;
    return fd;
}

static mode_t mode_argument(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    if (READ_ONLY() && WRITES(flags) && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return opened(REAL(open)(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    if (READ_ONLY() && WRITES(flags) && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return opened(REAL(open64)(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    if (READ_ONLY() && WRITES(flags) && at_under_root(dirfd, path)) return refuse(EROFS);
    return opened(REAL(openat)(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_argument(flags, ap);
    va_end(ap);
    if (READ_ONLY() && WRITES(flags) && at_under_root(dirfd, path)) return refuse(EROFS);
    return opened(REAL(openat64)(dirfd, path, flags, mode));
}

int creat(const char *path, mode_t mode)
{
    if (READ_ONLY() && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return opened(REAL(creat)(path, mode));
}

int close(int fd)
{
    if (fd >= 0 && fd < MAX_FDS) fd_place[fd] = 0;
    return REAL(close)(fd);
}

ssize_t write(int fd, const void *bytes, size_t count)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(write)(fd, bytes, count);
}

ssize_t pwrite(int fd, const void *bytes, size_t count, off_t offset)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(pwrite)(fd, bytes, count, offset);
}

ssize_t pwrite64(int fd, const void *bytes, size_t count, off64_t offset)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(pwrite64)(fd, bytes, count, offset);
}

ssize_t writev(int fd, const struct iovec *vectors, int count)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(writev)(fd, vectors, count);
}

ssize_t pwritev(int fd, const struct iovec *vectors, int count, off_t offset)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(pwritev)(fd, vectors, count, offset);
}

int ftruncate(int fd, off_t length)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(ftruncate)(fd, length);
}

int ftruncate64(int fd, off64_t length)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(ftruncate64)(fd, length);
}

int fallocate(int fd, int mode, off_t offset, off_t length)
{
    if (READ_ONLY() && fd_under_root(fd)) return refuse(EROFS);
    return REAL(fallocate)(fd, mode, offset, length);
}

int rename(const char *from, const char *to)
{
    if (READ_ONLY() && (at_under_root(AT_FDCWD, from) || at_under_root(AT_FDCWD, to))) return refuse(EROFS);
    return REAL(rename)(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    if (READ_ONLY() && (at_under_root(fromfd, from) || at_under_root(tofd, to))) return refuse(EROFS);
    return REAL(renameat)(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags)
{
    if (READ_ONLY() && (at_under_root(fromfd, from) || at_under_root(tofd, to))) return refuse(EROFS);
    return REAL(renameat2)(fromfd, from, tofd, to, flags);
}

int unlink(const char *path)
{
    if (READ_ONLY() && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(unlink)(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (READ_ONLY() && at_under_root(dirfd, path)) return refuse(EROFS);
    return REAL(unlinkat)(dirfd, path, flags);
}

int rmdir(const char *path)
{
    if (READ_ONLY() && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(rmdir)(path);
}

int mkdir(const char *path, mode_t mode)
{
    if (READ_ONLY() && at_under_root(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(mkdir)(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    if (READ_ONLY() && at_under_root(dirfd, path)) return refuse(EROFS);
    return REAL(mkdirat)(dirfd, path, mode);
}

int fsync(int fd)
{
    if (active && current_mode == MODE_FSYNC_EIO && fd_under_root(fd)) return refuse(EIO);
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (active && current_mode == MODE_FSYNC_EIO && fd_under_root(fd)) return refuse(EIO);
    return REAL(fdatasync)(fd);
}
