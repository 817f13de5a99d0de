/*
 * powercut.c: a power-cut simulator for tests, loaded with LD_PRELOAD.
 *
 * Why: kill -9 keeps the page cache, so a test that kills the daemon cannot reveal a missing
 * fsync. With this library preloaded into the daemon, a kill -9 followed by a restart (with
 * the library preloaded again) behaves like a power cut: everything under the data directory
 * that was not made durable by an explicit fsync is lost.
 *
 * Build:  cc -shared -fPIC -O1 -o libpowercut.so Tests/PowerCut/powercut.c -ldl -lpthread
 * Use:    LD_PRELOAD=/path/libpowercut.so POWERCUT_ROOT=/data POWERCUT_STATE=/tmp/pc edgelog ...
 * Test:   Tests/PowerCut/selftest.sh
 *
 * Environment
 *   POWERCUT_ROOT    absolute path of the directory modelled (the daemon's data dir; it must
 *                    exist). A file system mounted below it is not modelled; a reboot leaves
 *                    it alone.
 *   POWERCUT_STATE   directory outside ROOT where the library keeps its shadow of the durable
 *                    state (created if missing; its parent must exist).
 *   POWERCUT_REPORT  optional file; the one-line summary written at load is appended to it.
 *   POWERCUT_EXE     optional: the library acts only in processes whose executable (from
 *                    /proc/self/exe) has this full path or base name, e.g. "edgelog". Set it
 *                    when the daemon is started through a wrapper (a shell script, a pyenv
 *                    shim): otherwise the wrapper, loaded first, owns STATE and the daemon
 *                    under it tracks nothing (see "One process at a time" below).
 *   If ROOT or STATE is unset (or empty) the library does nothing at all.
 *
 * Model (conservative, like LazyFS)
 *   - A regular file's durable content is what it held at its last fsync or fdatasync (or at
 *     a write on an O_SYNC/O_DSYNC descriptor, or a pwritev2 with RWF_SYNC/RWF_DSYNC).
 *     sync_file_range is not durable. Writes reach the real file as usual; the library only
 *     remembers, per inode, the lowest offset written since the last sync (write, pwrite,
 *     writev, pwritev, pwritev2, ftruncate, truncate, fallocate, open/creat with O_TRUNC, and
 *     their *64 names). On fsync it copies [lowest dirty offset, size) of the file into the
 *     shadow STATE/inodes/<id> and truncates the shadow to the size (first time: the whole file).
 *   - A directory's durable listing is its listing at its last fsync (a directory fd under
 *     ROOT, ROOT included): STATE/dirs/<id> records name -> (inode id, type, mode, and for a
 *     symbolic link its target). Creations, renames and unlinks in a directory become durable
 *     only when that directory is fsynced; a file never fsynced but listed comes back empty,
 *     a directory never fsynced but listed comes back empty.
 *   - sync() and syncfs() on ROOT's file system make the whole tree under ROOT durable.
 *   - Shadows are keyed by an id the library gives each inode (dev, ino, and birth time when
 *     the file system reports it, so a reused inode number is a new inode). Shadows of
 *     unlinked files are kept: their name may still be in a durable listing. ROOT's id is 1.
 *   - At load (a constructor), if STATE holds a complete state of the same ROOT from an earlier
 *     process, the library "reboots": it rebuilds ROOT from the durable state (each file entry
 *     gets its inode's shadow content, each directory its own durable listing, recursively;
 *     everything else under ROOT is removed). A file whose inode still exists is reused and
 *     its bytes are put back where they differ; otherwise it is recreated from the shadow.
 *     Then it always takes a fresh baseline: it resets STATE and records everything under
 *     ROOT as durable. It writes one summary line to stderr, for example
 *       powercut: rebooted /data: durable 3 files (120 bytes), 2 dirs; rolled back 1 files
 *       (40 bytes differed), 1 renamed back, 1 recreated; removed 2 unsynced entries
 *       (55 bytes), replaced 1 files (7 bytes); dropped 102 unsynced bytes; baseline 3 files
 *       (120 bytes), 2 dirs
 *     ("rolled back": files whose inode survived with other bytes; "recreated": files whose
 *     inode was gone; "replaced": names that now hold the durable inode instead of another.)
 *   - Every load reboots, however the previous process ended: a clean exit is treated as a
 *     power cut too (whatever it did not fsync is lost).
 *   - One process at a time owns STATE (flock on STATE/lock, released when it dies; the file
 *     names the owner). A process started while the owner lives (a child that inherited
 *     LD_PRELOAD) says so on stderr, leaves everything alone and tracks nothing; so does a
 *     child forked without exec.
 *
 * Limits
 *   - Writes that bypass the intercepted libc entry points (stdio's fwrite and fopen("w"), which
 *     use glibc-internal calls; mmap; sendfile, splice or copy_file_range into a file; raw
 *     syscalls; io_uring) are not tracked. As a safety net, an fsync of a file whose size or
 *     mtime changed with nothing tracked copies the whole file; a mixture of tracked and
 *     untracked writes to one file between two fsyncs can still lose the untracked bytes.
 *   - The shadow is copied just before the real fsync: a failed fsync (EIO) still counts as
 *     durable, and the copy includes writes that completed before it (never fewer).
 *   - Listings are per directory, so a rename between two directories of which only one was
 *     fsynced comes back under both names (a file: as hard links) or under neither, which a
 *     journaling file system would not do. A directory is rebuilt once, at its first place in
 *     a depth-first walk from ROOT; a second place (or a cycle) is dropped.
 *   - Hard links are rebuilt as hard links. Sockets, FIFOs and devices under ROOT are not
 *     recorded (they disappear at a reboot). Ownership, timestamps and xattrs are not restored;
 *     permission bits are (those of the last directory fsync).
 *   - Without birth times (statx STATX_BTIME), a reused inode number is not noticed and may
 *     mix the shadows of the two files.
 *   - Shadows of unlinked files are kept until the next load; STATE can grow to the size of
 *     everything written under ROOT in one run. Every load copies ROOT whole (the baseline).
 *   - Writes are tracked on every regular file of ROOT's file system (a cheap filter); the path
 *     (via /proc/self/fd) is checked at fsync only. One statx per write on any descriptor.
 *   - The lock is a plain mutex: a signal handler that writes to a regular file on ROOT's file
 *     system while its thread holds the lock would deadlock.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* The real functions, resolved on first use (a wrapper may run before our constructor).    */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_pwritev64v2)(int, const struct iovec *, int, off64_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_truncate64)(const char *, off64_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off64_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);

static void *resolve(void **slot, const char *name)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (fn == NULL) {
        fn = dlsym(RTLD_NEXT, name);
        if (fn == NULL) {
            fprintf(stderr, "powercut: cannot resolve %s\n", name);
            abort();
        }
        __atomic_store_n(slot, fn, __ATOMIC_RELAXED);
    }
    return fn;
}
#define REAL(name) ((__typeof__(real_##name))resolve((void **)&real_##name, #name))

/* ---------------------------------------------------------------------------------------- */
/* Global state.                                                                            */

#define CLEAN INT64_MAX     /* dirty_from of an inode with nothing written since its last sync */
#define ROOT_ID 1           /* the id of ROOT's own directory listing */
#define NBUCKETS 16384

static int active;                      /* set once the constructor found ROOT and STATE usable */
static char root[PATH_MAX / 2];         /* canonical ROOT, no trailing slash */
static size_t root_len;
static char state[PATH_MAX / 2];        /* canonical STATE */
static dev_t root_dev;
static int lock_fd = -1;                /* STATE/lock, flocked while this process owns STATE */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   /* guards everything below */
static uint64_t next_id = ROOT_ID;
static __thread int in_lib;             /* > 0 while this thread runs library code */

struct finfo {                          /* what statx says about a file */
    dev_t dev;
    ino_t ino;
    mode_t mode;
    int64_t size;
    int has_btime;
    struct statx_timestamp btime, mtime;
};

struct node {                           /* an inode on ROOT's file system */
    struct node *next;
    dev_t dev;
    ino_t ino;
    int has_btime;
    struct statx_timestamp btime;
    uint64_t id;                        /* shadow id, 0 until the inode matters to the durable state */
    int64_t dirty_from;                 /* lowest offset written since the last sync, or CLEAN */
    int64_t shadow_size;                /* size of STATE/inodes/<id>, -1 when there is none */
    struct statx_timestamp synced_mtime;
};
static struct node *buckets[NBUCKETS];

/* ---------------------------------------------------------------------------------------- */
/* Small helpers.                                                                           */

static void say(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "powercut: ");
    n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    (void)!REAL(write)(2, line, n);
}

static int info_at(int dirfd, const char *path, int flags, struct finfo *fi)
{
    static int no_statx;
    if (!no_statx) {
        struct statx sx;
        if (statx(dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) == 0) {
            fi->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
            fi->ino = sx.stx_ino;
            fi->mode = sx.stx_mode;
            fi->size = (int64_t)sx.stx_size;
            fi->has_btime = (sx.stx_mask & STATX_BTIME) != 0;
            fi->btime = sx.stx_btime;
            fi->mtime = sx.stx_mtime;
            return 0;
        }
        if (errno != ENOSYS) return -1;
        no_statx = 1;                   /* old kernel or a seccomp filter: fall back to stat */
    }
    struct stat st;
    if (fstatat(dirfd, path, &st, flags) != 0) return -1;
    memset(fi, 0, sizeof *fi);
    fi->dev = st.st_dev;
    fi->ino = st.st_ino;
    fi->mode = st.st_mode;
    fi->size = st.st_size;
    fi->mtime.tv_sec = st.st_mtim.tv_sec;
    fi->mtime.tv_nsec = st.st_mtim.tv_nsec;
    return 0;
}

static int info_fd(int fd, struct finfo *fi) { return info_at(fd, "", AT_EMPTY_PATH, fi); }

static int same_time(struct statx_timestamp a, struct statx_timestamp b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* The node of an inode, created if new; a different birth time means a new inode. Lock held. */
static struct node *node_get(const struct finfo *fi)
{
    size_t h = ((size_t)fi->dev * 31u + (size_t)fi->ino) % NBUCKETS;
    struct node *n;
    for (n = buckets[h]; n != NULL; n = n->next)
        if (n->dev == fi->dev && n->ino == fi->ino) break;
    if (n != NULL && !(n->has_btime && fi->has_btime && !same_time(n->btime, fi->btime)))
        return n;
    if (n == NULL) {
        n = calloc(1, sizeof *n);
        if (n == NULL) return NULL;
        n->next = buckets[h];
        buckets[h] = n;
    }
    /* New, or the inode number was reused: start afresh (the old id's shadow stays). */
    n->dev = fi->dev;
    n->ino = fi->ino;
    n->has_btime = fi->has_btime;
    n->btime = fi->btime;
    n->id = 0;
    n->dirty_from = CLEAN;
    n->shadow_size = -1;
    return n;
}

static uint64_t node_id(struct node *n)
{
    if (n->id == 0) n->id = next_id++;
    return n->id;
}

static void nodes_clear(void)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (buckets[i] != NULL) {
            struct node *n = buckets[i];
            buckets[i] = n->next;
            free(n);
        }
    }
    next_id = ROOT_ID;
}

static void note_dirty(const struct finfo *fi, int64_t from)
{
    pthread_mutex_lock(&lock);
    struct node *n = node_get(fi);
    if (n != NULL && from < n->dirty_from) n->dirty_from = from < 0 ? 0 : from;
    pthread_mutex_unlock(&lock);
}

static int under_root(const char *path)
{
    return strncmp(path, root, root_len) == 0 && (path[root_len] == '\0' || path[root_len] == '/');
}

/* The path of an open descriptor, without the " (deleted)" the kernel adds to unlinked files. */
static int fd_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0) return -1;
    out[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t d = sizeof deleted - 1;
    if ((size_t)n > d && strcmp(out + n - d, deleted) == 0) out[n - d] = '\0';
    return 0;
}

static void state_path(char *out, const char *kind, uint64_t id)
{
    snprintf(out, PATH_MAX, "%s/%s/%" PRIu64, state, kind, id);
}

struct buf { char *p; size_t len, cap; };

static int buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n < 0 || n >= (int)sizeof tmp ? -1 : buf_add(b, tmp, n);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = REAL(write)(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= w;
    }
    return 0;
}

/* Replaces a file of STATE (no fsync: kill -9 keeps the page cache). */
static int write_state_file(const char *path, const char *data, size_t n)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = REAL(open)(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int rc = write_all(fd, data, n);
    close(fd);
    if (rc == 0) rc = rename(tmp, path);
    return rc;
}

/* Reads a whole file into a malloc'd, NUL-terminated buffer; -1 (ENOENT...) if it can't. */
static int read_state_file(const char *path, char **data, size_t *len)
{
    int fd = REAL(open)(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct buf b = {0};
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || buf_add(&b, chunk, n) != 0) { close(fd); free(b.p); return -1; }
    }
    close(fd);
    if (buf_add(&b, "", 1) != 0) { free(b.p); return -1; }
    *data = b.p;
    *len = b.len - 1;
    return 0;
}

/* Copies [from, from + len) of src to the same offsets of dst. Stops at src's end. */
static int copy_range(int src, int dst, int64_t from, int64_t len)
{
    loff_t in = from, out = from;
    while (len > 0) {
        ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)len, 0);
        if (n > 0) { len -= n; continue; }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        break;                          /* EXDEV, EINVAL, ENOSYS...: copy by hand */
    }
    static char chunk[1 << 20];         /* used with the lock held, or by the constructor */
    while (len > 0) {
        ssize_t n = pread(src, chunk, len < (int64_t)sizeof chunk ? (size_t)len : sizeof chunk, in);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) return 0;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = REAL(pwrite)(dst, chunk + done, n - done, in + done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return -1;
            done += w;
        }
        in += n;
        len -= n;
    }
    return 0;
}

struct counts { uint64_t files, bytes, dirs, others, replaced, replaced_bytes; };

/* rm -r; a missing path is fine. It leaves alone what is on another file system than `dev` (a
 * mount point), unless dev is 0. With c, it counts what it removes: as replaced, a regular file
 * whose twin (the same relative path under the directory `twin`) is another inode; not at all,
 * other entries whose twin exists. */
static void remove_tree(const char *path, struct counts *c, dev_t dev, const char *twin)
{
    struct finfo fi, twin_fi;
    if (info_at(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, &fi) != 0 || (dev != 0 && fi.dev != dev)) return;
    int has_twin = twin != NULL && info_at(AT_FDCWD, twin, AT_SYMLINK_NOFOLLOW, &twin_fi) == 0;
    int count = c != NULL && !has_twin;
    if (S_ISDIR(fi.mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char child[PATH_MAX], child_twin[PATH_MAX];
                if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
                snprintf(child_twin, sizeof child_twin, "%s/%s", twin ? twin : "", e->d_name);
                remove_tree(child, c, dev, twin ? child_twin : NULL);
            }
            closedir(d);
        }
        if (rmdir(path) == 0 && count) c->dirs++;
    } else if (unlink(path) == 0 && c != NULL) {
        if (!S_ISREG(fi.mode)) c->others += count;
        else if (!has_twin) { c->files++; c->bytes += fi.size; }
        else if (twin_fi.ino != fi.ino) { c->replaced++; c->replaced_bytes += fi.size; }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Making things durable (lock held).                                                        */

/* Makes the shadow of the inode equal to the file's content; src must be readable. */
static int sync_file_locked(int src, struct node *n, const struct finfo *fi)
{
    uint64_t id = node_id(n);
    int64_t from = n->shadow_size < 0 ? 0 : n->dirty_from;
    if (from == CLEAN && (fi->size != n->shadow_size || !same_time(fi->mtime, n->synced_mtime)))
        from = 0;                       /* changed behind our back (stdio, mmap...): copy it all */
    if (from > fi->size) from = fi->size;
    char path[PATH_MAX];
    state_path(path, "inodes", id);
    int dst = REAL(open)(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int rc = dst < 0 ? -1 : copy_range(src, dst, from, fi->size - from);
    if (rc == 0) rc = REAL(ftruncate)(dst, fi->size);
    if (dst >= 0) close(dst);
    if (rc != 0) {
        say("cannot update %s: %s (the inode stays dirty)", path, strerror(errno));
        return -1;
    }
    n->shadow_size = fi->size;
    n->dirty_from = CLEAN;
    n->synced_mtime = fi->mtime;
    return 0;
}

/* Records the listing of the directory open as dirfd as its durable listing. */
static int snapshot_dir_locked(int dirfd)
{
    struct finfo self;
    struct node *dn;
    if (info_fd(dirfd, &self) != 0 || (dn = node_get(&self)) == NULL) return -1;
    uint64_t dir_id = node_id(dn);      /* before the entries: ROOT gets ROOT_ID at a baseline */
    int fd = REAL(openat)(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0) close(fd);
        return -1;
    }
    struct buf out = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct finfo fi;
        if (info_at(fd, e->d_name, AT_SYMLINK_NOFOLLOW, &fi) != 0) continue;   /* just removed */
        char type, target[PATH_MAX];
        ssize_t target_len = 0;
        uint64_t id = 0;
        if (S_ISREG(fi.mode)) type = 'f';
        else if (S_ISDIR(fi.mode)) type = 'd';
        else if (S_ISLNK(fi.mode)) type = 'l';
        else continue;                  /* sockets, FIFOs, devices: not recorded */
        if (type == 'l') {
            if ((target_len = readlinkat(fd, e->d_name, target, sizeof target)) < 0) continue;
        } else {
            struct node *n = node_get(&fi);
            if (n == NULL) { rc = -1; break; }
            id = node_id(n);
        }
        /* type id mode dev ino has_btime btime_sec btime_nsec namelen:name [targetlen:target] */
        rc |= buf_printf(&out, "%c %" PRIu64 " %o %" PRIu64 " %" PRIu64 " %d %" PRId64 " %" PRIu32 " %zu:",
                         type, id, (unsigned)(fi.mode & 07777), (uint64_t)fi.dev, (uint64_t)fi.ino,
                         fi.has_btime, (int64_t)fi.btime.tv_sec, fi.btime.tv_nsec, strlen(e->d_name));
        rc |= buf_add(&out, e->d_name, strlen(e->d_name));
        if (type == 'l') {
            rc |= buf_printf(&out, " %zd:", target_len);
            rc |= buf_add(&out, target, target_len);
        }
        rc |= buf_add(&out, "\n", 1);
    }
    closedir(d);
    char path[PATH_MAX];
    state_path(path, "dirs", dir_id);
    if (rc == 0) rc = write_state_file(path, out.p ? out.p : "", out.len);
    if (rc != 0) say("cannot record the listing of directory %" PRIu64 ": %s", dir_id, strerror(errno));
    free(out.p);
    return rc;
}

/* Makes everything under the directory `path` durable, as sync() does. */
static void snapshot_tree_locked(const char *path, struct counts *c)
{
    int dfd = REAL(open)(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return;
    snapshot_dir_locked(dfd);
    DIR *d = fdopendir(dfd);
    if (d == NULL) { close(dfd); return; }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct finfo fi;
        if (info_at(dfd, e->d_name, AT_SYMLINK_NOFOLLOW, &fi) != 0) continue;
        if (S_ISDIR(fi.mode)) {
            char child[PATH_MAX];
            c->dirs++;
            if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) < (int)sizeof child)
                snapshot_tree_locked(child, c);
        } else if (S_ISREG(fi.mode)) {
            int fd = REAL(openat)(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            struct node *n;
            if (fd >= 0 && info_fd(fd, &fi) == 0 && (n = node_get(&fi)) != NULL) {
                sync_file_locked(fd, n, &fi);
                c->files++;
                c->bytes += fi.size;
            } else {
                say("cannot read %s/%s: %s (it stays as it was)", path, e->d_name, strerror(errno));
            }
            if (fd >= 0) close(fd);
        }
    }
    closedir(d);
}

/* fsync, fdatasync, and O_SYNC writes: make the file or directory durable if under ROOT. */
static void make_durable(int fd)
{
    if (!active || in_lib) return;
    int saved = errno;
    in_lib++;
    struct finfo fi;
    char path[PATH_MAX];
    int flags;
    if (info_fd(fd, &fi) == 0 && fi.dev == root_dev && (S_ISREG(fi.mode) || S_ISDIR(fi.mode))
        && (flags = fcntl(fd, F_GETFL)) >= 0 && !(flags & O_PATH)
        && fd_path(fd, path, sizeof path) == 0 && under_root(path)) {
        pthread_mutex_lock(&lock);
        if (S_ISDIR(fi.mode)) {
            snapshot_dir_locked(fd);
        } else {
            /* A write-only (or O_DIRECT) descriptor can't be read (simply): open the file again. */
            int src = fd;
            if ((flags & O_ACCMODE) == O_WRONLY || (flags & O_DIRECT)) {
                char proc[64];
                snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                src = REAL(open)(proc, O_RDONLY | O_CLOEXEC);
            }
            struct node *n;
            if (src < 0) say("cannot read %s to make it durable: %s", path, strerror(errno));
            else if (info_fd(fd, &fi) == 0 && (n = node_get(&fi)) != NULL) sync_file_locked(src, n, &fi);
            if (src >= 0 && src != fd) close(src);
        }
        pthread_mutex_unlock(&lock);
    }
    in_lib--;
    errno = saved;
}

static void make_all_durable(void)
{
    if (!active || in_lib) return;
    int saved = errno;
    in_lib++;
    struct counts c = {0};
    pthread_mutex_lock(&lock);
    snapshot_tree_locked(root, &c);
    pthread_mutex_unlock(&lock);
    in_lib--;
    errno = saved;
}

/* ---------------------------------------------------------------------------------------- */
/* Reboot: rebuild ROOT from the durable state of the previous process.                      */

struct entry {
    char type;                          /* 'f' file, 'd' directory, 'l' symbolic link */
    uint64_t id;
    unsigned mode;
    uint64_t dev, ino;
    int has_btime;
    int64_t btime_sec;
    uint32_t btime_nsec;
    char *name, *target;                /* point into the listing's buffer, NUL-terminated */
};

/* Reads "len:bytes" followed by the separator sep at *p; NUL-terminates the bytes in place. */
static char *take_string(char **p, char *end, char sep)
{
    char *colon;
    unsigned long long len = strtoull(*p, &colon, 10);
    if (colon >= end || *colon != ':' || len > (unsigned long long)(end - colon - 1)) return NULL;
    char *s = colon + 1;
    *p = s + len;
    if (**p != sep) return NULL;
    **p = '\0';
    (*p)++;
    return s;
}

/* Parses STATE/dirs/<id>; a missing listing (directory never fsynced) is an empty one. */
static size_t read_listing(uint64_t id, char **data, struct entry **entries)
{
    char path[PATH_MAX];
    size_t len, n = 0, cap = 0;
    *entries = NULL;
    state_path(path, "dirs", id);
    if (read_state_file(path, data, &len) != 0) { *data = NULL; return 0; }
    char *p = *data, *end = *data + len;
    while (p < end) {
        struct entry e = {0};
        char *q;
        e.type = *p;
        e.id = strtoull(p + 1, &q, 10);
        e.mode = strtoul(q, &q, 8);
        e.dev = strtoull(q, &q, 10);
        e.ino = strtoull(q, &q, 10);
        e.has_btime = (int)strtol(q, &q, 10);
        e.btime_sec = strtoll(q, &q, 10);
        e.btime_nsec = strtoul(q, &q, 10);
        if (q >= end || *q != ' ') break;
        q++;
        if ((e.name = take_string(&q, end, e.type == 'l' ? ' ' : '\n')) == NULL) break;
        if (e.type == 'l' && (e.target = take_string(&q, end, '\n')) == NULL) break;
        p = q;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *grown = realloc(*entries, cap * sizeof **entries);
            if (grown == NULL) break;
            *entries = grown;
        }
        (*entries)[n++] = e;
    }
    if (p < end) say("listing %s is damaged after %zu entries", path, n);
    return n;
}

struct oldfile {                        /* a file or directory under ROOT before the reboot */
    uint64_t dev, ino;
    int is_dir;
    int has_btime;
    int64_t btime_sec;
    uint32_t btime_nsec;
    char *path, *rel;
    int used;
};

struct reboot {
    struct oldfile *old;
    size_t nold, capold;
    char **built;                       /* id -> where it was rebuilt (hard links, dir loops) */
    uint64_t capbuilt;
    uint64_t files, bytes, dirs, changed, lost_bytes, recreated, renamed_back, skipped;
    struct counts removed;              /* names there before, not after */
};

static void scan_old(struct reboot *r, const char *path, const char *rel)
{
    DIR *d = opendir(path);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[PATH_MAX], child_rel[PATH_MAX];
        struct finfo fi;
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) continue;
        snprintf(child_rel, sizeof child_rel, "%s/%s", rel, e->d_name);
        if (info_at(AT_FDCWD, child, AT_SYMLINK_NOFOLLOW, &fi) != 0) continue;
        if (S_ISDIR(fi.mode) || S_ISREG(fi.mode)) {
            if (r->nold == r->capold) {
                size_t cap = r->capold ? r->capold * 2 : 256;
                struct oldfile *grown = realloc(r->old, cap * sizeof *grown);
                if (grown == NULL) continue;
                r->old = grown;
                r->capold = cap;
            }
            struct oldfile *o = &r->old[r->nold++];
            o->dev = fi.dev;
            o->ino = fi.ino;
            o->has_btime = fi.has_btime;
            o->btime_sec = fi.btime.tv_sec;
            o->btime_nsec = fi.btime.tv_nsec;
            o->path = strdup(child);
            o->rel = strdup(child_rel);
            o->used = 0;
            o->is_dir = S_ISDIR(fi.mode);
            if (o->is_dir) scan_old(r, child, child_rel);
        }
    }
    closedir(d);
}

static int cmp_old(const void *a, const void *b)
{
    const struct oldfile *x = a, *y = b;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    return 0;
}

/* The unused old file or directory that is the entry's inode (same type, dev, ino and, if
 * known, birth time). */
static struct oldfile *find_old(struct reboot *r, const struct entry *e)
{
    struct oldfile key = {.dev = e->dev, .ino = e->ino};
    if (r->nold == 0) return NULL;
    struct oldfile *o = bsearch(&key, r->old, r->nold, sizeof key, cmp_old);
    if (o == NULL) return NULL;
    while (o > r->old && cmp_old(o - 1, &key) == 0) o--;
    for (; o < r->old + r->nold && cmp_old(o, &key) == 0; o++) {
        int same_birth = !(o->has_btime && e->has_btime)
                         || (o->btime_sec == e->btime_sec && o->btime_nsec == e->btime_nsec);
        if (!o->used && o->path != NULL && o->is_dir == (e->type == 'd') && same_birth) return o;
    }
    return NULL;
}

static const char *built_path(struct reboot *r, uint64_t id)
{
    return id < r->capbuilt ? r->built[id] : NULL;
}

static void set_built(struct reboot *r, uint64_t id, const char *path)
{
    if (id >= r->capbuilt) {
        uint64_t cap = r->capbuilt ? r->capbuilt : 1024;
        while (cap <= id) cap *= 2;
        char **grown = realloc(r->built, cap * sizeof *grown);
        if (grown == NULL) return;
        memset(grown + r->capbuilt, 0, (cap - r->capbuilt) * sizeof *grown);
        r->built = grown;
        r->capbuilt = cap;
    }
    r->built[id] = strdup(path);
}

/* Makes fd's content equal to the shadow's; returns how many bytes differed. */
static uint64_t put_back(int fd, int shadow, int64_t shadow_size)
{
    static char a[65536], b[65536];
    struct finfo fi;
    if (info_fd(fd, &fi) != 0) return 0;
    int64_t common = fi.size < shadow_size ? fi.size : shadow_size;
    uint64_t differed = (uint64_t)(fi.size > shadow_size ? fi.size - shadow_size : shadow_size - fi.size);
    for (int64_t off = 0; off < common;) {
        size_t want = common - off < (int64_t)sizeof a ? (size_t)(common - off) : sizeof a;
        ssize_t na = pread(fd, a, want, off), nb = pread(shadow, b, want, off);
        if (na <= 0 || nb <= 0) break;
        size_t n = (size_t)(na < nb ? na : nb);
        if (memcmp(a, b, n) != 0) {
            for (size_t i = 0; i < n; i++) differed += a[i] != b[i];
            (void)!REAL(pwrite)(fd, b, n, off);
        }
        off += n;
    }
    if (fi.size < shadow_size) copy_range(shadow, fd, fi.size, shadow_size - fi.size);
    (void)!REAL(ftruncate)(fd, shadow_size);
    return differed;
}

/* Rebuilds the file entry e at dst: its inode if it still exists, else a new file. */
static void rebuild_file(struct reboot *r, const struct entry *e, const char *dst, const char *rel)
{
    char shadow_name[PATH_MAX];
    state_path(shadow_name, "inodes", e->id);
    int shadow = REAL(open)(shadow_name, O_RDONLY | O_CLOEXEC);
    struct finfo si = {0};
    if (shadow >= 0 && info_fd(shadow, &si) != 0) si.size = 0;   /* no shadow: never fsynced */
    r->files++;
    r->bytes += si.size;
    struct oldfile *o = find_old(r, e);
    int fd = -1;
    if (o != NULL && rename(o->path, dst) == 0) {
        o->used = 1;
        if (strcmp(o->rel, rel) != 0) r->renamed_back++;
        fd = REAL(open)(dst, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            uint64_t differed = put_back(fd, shadow, si.size);
            if (differed > 0) { r->changed++; r->lost_bytes += differed; }
        } else {
            unlink(dst);                /* not writable: recreate it below */
        }
    }
    if (fd < 0) {
        fd = REAL(open)(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, e->mode & 07777);
        if (fd < 0) {
            say("cannot create %s: %s", dst, strerror(errno));
        } else {
            r->recreated++;
            if (si.size > 0 && copy_range(shadow, fd, 0, si.size) != 0)
                say("cannot restore %s: %s", dst, strerror(errno));
        }
    }
    if (fd >= 0) close(fd);
    if (shadow >= 0) close(shadow);
    set_built(r, e->id, dst);
}

/* Fills the empty directory dst with the durable listing of directory dir_id, recursively. */
static void rebuild_dir(struct reboot *r, uint64_t dir_id, const char *dst, const char *rel, int depth)
{
    char *data;
    struct entry *entries;
    size_t n = read_listing(dir_id, &data, &entries);
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &entries[i];
        char path[PATH_MAX], child_rel[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dst, e->name) >= (int)sizeof path) { r->skipped++; continue; }
        snprintf(child_rel, sizeof child_rel, "%s/%s", rel, e->name);
        const char *earlier = e->type == 'l' ? NULL : built_path(r, e->id);
        if (e->type == 'f' && earlier != NULL) {
            struct finfo fi;                                   /* a hard link */
            if (link(earlier, path) != 0) { r->skipped++; continue; }
            r->files++;
            if (info_at(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, &fi) == 0) r->bytes += fi.size;
        } else if (e->type == 'f') {
            rebuild_file(r, e, path, child_rel);
        } else if (e->type == 'd') {
            if (earlier != NULL || depth > 200 || mkdir(path, 0700) != 0) { r->skipped++; continue; }
            set_built(r, e->id, path);
            r->dirs++;
            struct oldfile *o = find_old(r, e);   /* only to tell that it moved back */
            if (o != NULL) {
                o->used = 1;
                if (strcmp(o->rel, child_rel) != 0) r->renamed_back++;
            }
            rebuild_dir(r, e->id, path, child_rel, depth + 1);
            chmod(path, e->mode & 07777);
        } else if (e->type == 'l') {
            if (symlink(e->target, path) != 0) r->skipped++;
        }
    }
    free(entries);
    free(data);
}

static void reboot(struct reboot *r)
{
    char staging[PATH_MAX], name[64];
    snprintf(name, sizeof name, ".powercut-reboot-%d", (int)getpid());
    snprintf(staging, sizeof staging, "%s/%s", root, name);
    remove_tree(staging, NULL, root_dev, NULL);

    /* What is there now, so that surviving inodes can be reused (and what is dropped told). */
    scan_old(r, root, "");
    if (r->nold > 0) qsort(r->old, r->nold, sizeof *r->old, cmp_old);

    /* Build the durable tree beside the current one, drop the current one, move it in. */
    if (mkdir(staging, 0700) != 0) { say("cannot create %s: %s", staging, strerror(errno)); return; }
    set_built(r, ROOT_ID, staging);
    rebuild_dir(r, ROOT_ID, staging, "", 0);
    DIR *d = opendir(root);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, name) == 0) continue;
        char path[PATH_MAX], twin[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", root, e->d_name) < (int)sizeof path
            && snprintf(twin, sizeof twin, "%s/%s", staging, e->d_name) < (int)sizeof twin)
            remove_tree(path, &r->removed, root_dev, twin);
    }
    if (d != NULL) closedir(d);
    d = opendir(staging);
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char from[PATH_MAX], to[PATH_MAX];
        if (snprintf(from, sizeof from, "%s/%s", staging, e->d_name) >= (int)sizeof from
            || snprintf(to, sizeof to, "%s/%s", root, e->d_name) >= (int)sizeof to || rename(from, to) != 0) say("cannot move %s to %s: %s", from, to, strerror(errno));
    }
    if (d != NULL) closedir(d);
    if (rmdir(staging) != 0) say("cannot remove %s: %s", staging, strerror(errno));
}

static void reboot_free(struct reboot *r)
{
    for (size_t i = 0; i < r->nold; i++) { free(r->old[i].path); free(r->old[i].rel); }
    free(r->old);
    for (uint64_t i = 0; i < r->capbuilt; i++) free(r->built[i]);
    free(r->built);
}

/* ---------------------------------------------------------------------------------------- */
/* Load: reboot if there is a previous state, then take a fresh baseline.                    */

static void baseline(struct counts *c)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/complete", state);
    unlink(path);
    const char *kinds[] = {"inodes", "dirs"};
    for (int i = 0; i < 2; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", state, kinds[i]);
        remove_tree(dir, NULL, 0, NULL);
        mkdir(dir, 0700);
    }
    nodes_clear();
    snapshot_tree_locked(root, c);
    write_state_file(path, root, root_len);
}

/* realpath into out, if it fits. */
static int canonical(const char *path, char *out, size_t cap)
{
    char *full = realpath(path, NULL);
    int ok = full != NULL && strlen(full) < cap;
    if (ok) strcpy(out, full);
    else if (full != NULL) errno = ENAMETOOLONG;
    free(full);
    return ok;
}

static void on_fork_prepare(void) { pthread_mutex_lock(&lock); }
static void on_fork_parent(void) { pthread_mutex_unlock(&lock); }
static void on_fork_child(void)
{
    /* The child would assign ids the parent also assigns: it leaves STATE alone. */
    active = 0;
    if (lock_fd >= 0) close(lock_fd);   /* the parent's descriptor keeps the flock */
    lock_fd = -1;
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void powercut_init(void)
{
    const char *root_env = getenv("POWERCUT_ROOT"), *state_env = getenv("POWERCUT_STATE");
    if (root_env == NULL || *root_env == '\0' || state_env == NULL || *state_env == '\0') return;
    in_lib++;
    char exe[PATH_MAX];
    const char *only = getenv("POWERCUT_EXE");
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len < 0 ? 0 : exe_len] = '\0';
    const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    if (only != NULL && *only != '\0' && strcmp(only, exe) != 0 && strcmp(only, base) != 0)
        goto out;                       /* not the program under test: stay out of the way */
    struct finfo fi;
    mkdir(state_env, 0700);
    if (!canonical(root_env, root, sizeof root) || info_at(AT_FDCWD, root, 0, &fi) != 0 || !S_ISDIR(fi.mode)) {
        say("POWERCUT_ROOT %s is not a directory; inactive", root_env);
        goto out;
    }
    if (!canonical(state_env, state, sizeof state)) {
        say("POWERCUT_STATE %s: %s; inactive", state_env, strerror(errno));
        goto out;
    }
    root_len = strlen(root);
    root_dev = fi.dev;
    size_t state_len = strlen(state);
    if (root_len <= 1 || under_root(state)
        || (strncmp(root, state, state_len) == 0 && root[state_len] == '/')) {
        say("POWERCUT_ROOT %s and POWERCUT_STATE %s must be apart (and ROOT not /); inactive", root, state);
        goto out;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/lock", state);
    lock_fd = REAL(open)(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char owner[256] = "?";
        ssize_t n = lock_fd < 0 ? -1 : pread(lock_fd, owner, sizeof owner - 1, 0);
        if (n > 0) owner[n - (owner[n - 1] == '\n')] = '\0';
        say("%s is owned by process %s; inactive in this one (pid %d, %s)", state, owner, (int)getpid(), exe);
        if (lock_fd >= 0) close(lock_fd);
        lock_fd = -1;
        goto out;
    }
    char owner[PATH_MAX + 32];
    int owner_len = snprintf(owner, sizeof owner, "%d %s\n", (int)getpid(), exe);
    if (REAL(ftruncate)(lock_fd, 0) == 0) (void)!REAL(pwrite)(lock_fd, owner, owner_len, 0);
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);

    char summary[1024];
    int n = 0;
    char *previous = NULL;
    size_t previous_len;
    snprintf(path, sizeof path, "%s/complete", state);
    int have_previous = read_state_file(path, &previous, &previous_len) == 0;
    if (have_previous && strcmp(previous, root) != 0) {
        say("%s holds the state of %s, not of %s: not rebooting from it", state, previous, root);
        have_previous = 0;
    }
    free(previous);
    if (have_previous) {
        struct reboot r = {0};
        reboot(&r);
        n = snprintf(summary, sizeof summary,
                     "rebooted %s: durable %" PRIu64 " files (%" PRIu64 " bytes), %" PRIu64 " dirs; "
                     "rolled back %" PRIu64 " files (%" PRIu64 " bytes differed), %" PRIu64 " renamed back, "
                     "%" PRIu64 " recreated; removed %" PRIu64 " unsynced entries (%" PRIu64 " bytes), "
                     "replaced %" PRIu64 " files (%" PRIu64 " bytes); "
                     "dropped %" PRIu64 " unsynced bytes",
                     root, r.files, r.bytes, r.dirs, r.changed, r.lost_bytes, r.renamed_back, r.recreated,
                     r.removed.files + r.removed.dirs + r.removed.others, r.removed.bytes,
                     r.removed.replaced, r.removed.replaced_bytes,
                     r.lost_bytes + r.removed.bytes + r.removed.replaced_bytes);
        if (r.skipped > 0)
            n += snprintf(summary + n, sizeof summary - n, "; %" PRIu64 " entries skipped", r.skipped);
        reboot_free(&r);
    } else {
        n = snprintf(summary, sizeof summary, "no previous state for %s", root);
    }
    struct counts c = {0};
    baseline(&c);
    snprintf(summary + n, sizeof summary - n, "; baseline %" PRIu64 " files (%" PRIu64 " bytes), %" PRIu64 " dirs",
             c.files, c.bytes, c.dirs);
    say("%s", summary);
    const char *report = getenv("POWERCUT_REPORT");
    if (report != NULL && *report != '\0') {
        int fd = REAL(open)(report, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[1100];
            int len = snprintf(line, sizeof line, "powercut: %s\n", summary);
            write_all(fd, line, len < (int)sizeof line ? (size_t)len : sizeof line - 1);
            close(fd);
        }
    }
    active = 1;
out:
    in_lib--;
}

/* ---------------------------------------------------------------------------------------- */
/* The wrappers.                                                                             */

struct wctx {                           /* what a write wrapper learns before the real call */
    int tracked, sync_now;
    struct finfo fi;
    int64_t start;                      /* a lower bound of where the bytes land */
};

/* offset: the write's position, or -1 for the descriptor's current position. */
static void before_write(int fd, int64_t offset, int rwf, struct wctx *w)
{
    w->tracked = 0;
    if (!active || in_lib) return;
    int flags;
    if (info_fd(fd, &w->fi) != 0 || !S_ISREG(w->fi.mode) || w->fi.dev != root_dev
        || (flags = fcntl(fd, F_GETFL)) < 0)
        return;
    w->tracked = 1;
    w->sync_now = (flags & O_DSYNC) || (rwf & (RWF_DSYNC | RWF_SYNC));
    if ((flags & O_APPEND) || (rwf & RWF_APPEND)) {
        w->start = w->fi.size;          /* Linux appends even for pwrite on O_APPEND */
    } else if (offset >= 0) {
        w->start = offset;
    } else {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        w->start = pos < 0 ? 0 : pos;
    }
}

/* Marks the range dirty after the real write (never before: an fsync in between would clear
 * the mark while the bytes were still on their way). */
static ssize_t after_write(int fd, ssize_t result, struct wctx *w)
{
    if (!w->tracked || result <= 0) return result;
    int saved = errno;
    in_lib++;
    note_dirty(&w->fi, w->start);
    in_lib--;
    if (w->sync_now) make_durable(fd);
    errno = saved;
    return result;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    struct wctx w;
    before_write(fd, -1, 0, &w);
    return after_write(fd, REAL(write)(fd, buf, n), &w);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset)
{
    struct wctx w;
    before_write(fd, offset, 0, &w);
    return after_write(fd, REAL(pwrite)(fd, buf, n, offset), &w);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset)
{
    struct wctx w;
    before_write(fd, offset, 0, &w);
    return after_write(fd, REAL(pwrite64)(fd, buf, n, offset), &w);
}

ssize_t writev(int fd, const struct iovec *iov, int count)
{
    struct wctx w;
    before_write(fd, -1, 0, &w);
    return after_write(fd, REAL(writev)(fd, iov, count), &w);
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset)
{
    struct wctx w;
    before_write(fd, offset, 0, &w);
    return after_write(fd, REAL(pwritev)(fd, iov, count, offset), &w);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int count, off64_t offset)
{
    struct wctx w;
    before_write(fd, offset, 0, &w);
    return after_write(fd, REAL(pwritev64)(fd, iov, count, offset), &w);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int count, off_t offset, int rwf)
{
    struct wctx w;
    before_write(fd, offset, rwf, &w);
    return after_write(fd, REAL(pwritev2)(fd, iov, count, offset, rwf), &w);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int count, off64_t offset, int rwf)
{
    struct wctx w;
    before_write(fd, offset, rwf, &w);
    return after_write(fd, REAL(pwritev64v2)(fd, iov, count, offset, rwf), &w);
}

/* ftruncate and fallocate change bytes from `from` on (a shrink, zeros, a punched hole). */
static int after_resize(int fd, int result, int64_t from)
{
    struct finfo fi;
    if (result != 0 || !active || in_lib) return result;
    int saved = errno;
    in_lib++;
    if (info_fd(fd, &fi) == 0 && S_ISREG(fi.mode) && fi.dev == root_dev) note_dirty(&fi, from);
    in_lib--;
    errno = saved;
    return result;
}

/* The size before the call: a shrink followed by an extension leaves zeros from there. */
static int64_t size_of_fd(int fd)
{
    struct finfo fi;
    if (!active || in_lib || info_fd(fd, &fi) != 0) return 0;
    return fi.size;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int ftruncate(int fd, off_t length)
{
    int64_t before = size_of_fd(fd);
    return after_resize(fd, REAL(ftruncate)(fd, length), min64(before, length));
}

int ftruncate64(int fd, off64_t length)
{
    int64_t before = size_of_fd(fd);
    return after_resize(fd, REAL(ftruncate64)(fd, length), min64(before, length));
}

int fallocate(int fd, int mode, off_t offset, off_t len)
{
    return after_resize(fd, REAL(fallocate)(fd, mode, offset, len), offset);
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len)
{
    return after_resize(fd, REAL(fallocate64)(fd, mode, offset, len), offset);
}

/* truncate by path: like ftruncate, with the size taken from the path. */
static int truncate_path(const char *path, int64_t length, int (*call)(const char *, int64_t))
{
    struct finfo fi;
    int tracked = active && !in_lib && info_at(AT_FDCWD, path, 0, &fi) == 0 && S_ISREG(fi.mode)
                  && fi.dev == root_dev;
    int result = call(path, length);
    if (result == 0 && tracked) {
        int saved = errno;
        in_lib++;
        note_dirty(&fi, min64(fi.size, length));
        in_lib--;
        errno = saved;
    }
    return result;
}
static int call_truncate(const char *path, int64_t length) { return REAL(truncate)(path, length); }
static int call_truncate64(const char *path, int64_t length) { return REAL(truncate64)(path, length); }
int truncate(const char *path, off_t length) { return truncate_path(path, length, call_truncate); }
int truncate64(const char *path, off64_t length) { return truncate_path(path, length, call_truncate64); }

/* open with O_TRUNC empties the file: dirty from 0. */
static int after_open(int fd, int flags)
{
    if (fd >= 0 && (flags & O_TRUNC)) after_resize(fd, 0, 0);
    return fd;
}

#define NEEDS_MODE(flags) (((flags) & O_CREAT) != 0 || ((flags) & O_TMPFILE) == O_TMPFILE)
#define GET_MODE(flags, mode)                                                                  \
    do {                                                                                       \
        if (NEEDS_MODE(flags)) {                                                               \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            mode = va_arg(ap, mode_t);                                                         \
            va_end(ap);                                                                        \
        }                                                                                      \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    GET_MODE(flags, mode);
    return after_open(REAL(open)(path, flags, mode), flags);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    GET_MODE(flags, mode);
    return after_open(REAL(open64)(path, flags, mode), flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    GET_MODE(flags, mode);
    return after_open(REAL(openat)(dirfd, path, flags, mode), flags);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    GET_MODE(flags, mode);
    return after_open(REAL(openat64)(dirfd, path, flags, mode), flags);
}

int creat(const char *path, mode_t mode)
{
    return after_open(REAL(creat)(path, mode), O_TRUNC);
}

int creat64(const char *path, mode_t mode)
{
    return after_open(REAL(creat64)(path, mode), O_TRUNC);
}

/* The copy happens before the real call: writes that end before fsync starts are in it. */
int fsync(int fd)
{
    make_durable(fd);
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    make_durable(fd);
    return REAL(fdatasync)(fd);
}

void sync(void)
{
    make_all_durable();
    REAL(sync)();
}

int syncfs(int fd)
{
    struct finfo fi;
    if (active && !in_lib && info_fd(fd, &fi) == 0 && fi.dev == root_dev) make_all_durable();
    return REAL(syncfs)(fd);
}
