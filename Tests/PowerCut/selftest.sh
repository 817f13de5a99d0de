#!/bin/sh
# Self-test of the power-cut simulator (Tests/PowerCut/powercut.c).
#
# Builds libpowercut.so and a small C program (pcops) into a temp dir. pcops runs a list of
# file operations given as arguments under the library, then kills itself with SIGKILL (the
# "power cut"); the next process loaded with the library (/bin/true) rebuilds the data dir from
# the durable state; the script then checks the files (without the library).
#
# Usage: Tests/PowerCut/selftest.sh [-v]   (from anywhere; -v shows the library's summaries;
#        KEEP=1 keeps the temp dir). Needs cc and python3. Exits non-zero if any check fails.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/powercut-selftest.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

cc -shared -fPIC -O1 -o "$TMP/libpowercut.so" "$HERE/powercut.c" -ldl -lpthread || exit 1

cat >"$TMP/pcops.c" <<'EOF'
/* pcops OP ARGS... : file operations for the power-cut self-test. Exits 3 on a failed op.
 *   open PATH FLAGS     FLAGS: letters c=O_CREAT t=O_TRUNC a=O_APPEND s=O_SYNC d=O_DSYNC
 *                       w=O_WRONLY (default O_RDWR); "-" for none
 *   write TEXT | pwrite OFF TEXT | writev TEXT (two iovecs) | pwritev OFF TEXT
 *   trunc LEN | fsync | fdatasync | close | dirsync DIR | sync | syncfs
 *   rename FROM TO | unlink PATH | mkdir PATH | rmdir PATH | creat PATH
 *   symlink TARGET PATH | link FROM TO
 *   stdio PATH TEXT      fopen(PATH, "r+"), fputs TEXT at the start, fflush, fsync, fclose:
 *                        stdio writes with glibc-internal calls the library does not see
 *   threads DIR N ROUNDS  (N threads; thread i: DIR/t<i>, rounds of a 16-byte pwrite +
 *                          fdatasync, then one unsynced pwrite of 16 'X' at the end)
 *   sleep SECONDS | kill (SIGKILL itself) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void die(const char *op, const char *arg)
{
    fprintf(stderr, "pcops: %s %s: %s\n", op, arg ? arg : "", strerror(errno));
    exit(3);
}

static const char *thread_dir;
static int rounds;

static void *writer(void *arg)
{
    long i = (long)arg;
    char path[4096], rec[17];
    snprintf(path, sizeof path, "%s/t%ld", thread_dir, i);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) die("open", path);
    for (int r = 0; r < rounds; r++) {
        snprintf(rec, sizeof rec, "t%02ld-r%05d-abcd\n", i, r);
        if (pwrite(fd, rec, 16, (off_t)r * 16) != 16) die("pwrite", path);
        if (fdatasync(fd) != 0) die("fdatasync", path);
    }
    if (pwrite(fd, "XXXXXXXXXXXXXXXX", 16, (off_t)rounds * 16) != 16) die("pwrite", path);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i];
        const char *a = i + 1 < argc ? argv[i + 1] : NULL, *b = i + 2 < argc ? argv[i + 2] : NULL;
        if (strcmp(op, "open") == 0) {
            int flags = strchr(b, 'w') ? O_WRONLY : O_RDWR;
            if (strchr(b, 'c')) flags |= O_CREAT;
            if (strchr(b, 't')) flags |= O_TRUNC;
            if (strchr(b, 'a')) flags |= O_APPEND;
            if (strchr(b, 's')) flags |= O_SYNC;
            if (strchr(b, 'd')) flags |= O_DSYNC;
            if ((fd = open(a, flags, 0644)) < 0) die(op, a);
            i += 2;
        } else if (strcmp(op, "creat") == 0) {
            if ((fd = creat(a, 0644)) < 0) die(op, a);
            i += 1;
        } else if (strcmp(op, "write") == 0) {
            if (write(fd, a, strlen(a)) != (ssize_t)strlen(a)) die(op, a);
            i += 1;
        } else if (strcmp(op, "pwrite") == 0) {
            if (pwrite(fd, b, strlen(b), atol(a)) != (ssize_t)strlen(b)) die(op, b);
            i += 2;
        } else if (strcmp(op, "writev") == 0 || strcmp(op, "pwritev") == 0) {
            const char *t = op[0] == 'p' ? b : a;
            size_t half = strlen(t) / 2;
            struct iovec iov[2] = {{(void *)t, half}, {(void *)(t + half), strlen(t) - half}};
            ssize_t n = op[0] == 'p' ? pwritev(fd, iov, 2, atol(a)) : writev(fd, iov, 2);
            if (n != (ssize_t)strlen(t)) die(op, t);
            i += op[0] == 'p' ? 2 : 1;
        } else if (strcmp(op, "trunc") == 0) {
            if (ftruncate(fd, atol(a)) != 0) die(op, a);
            i += 1;
        } else if (strcmp(op, "fsync") == 0) {
            if (fsync(fd) != 0) die(op, NULL);
        } else if (strcmp(op, "fdatasync") == 0) {
            if (fdatasync(fd) != 0) die(op, NULL);
        } else if (strcmp(op, "close") == 0) {
            close(fd);
            fd = -1;
        } else if (strcmp(op, "dirsync") == 0) {
            int d = open(a, O_RDONLY | O_DIRECTORY);
            if (d < 0 || fsync(d) != 0) die(op, a);
            close(d);
            i += 1;
        } else if (strcmp(op, "sync") == 0) {
            sync();
        } else if (strcmp(op, "syncfs") == 0) {
            if (syncfs(fd) != 0) die(op, NULL);
        } else if (strcmp(op, "rename") == 0) {
            if (rename(a, b) != 0) die(op, a);
            i += 2;
        } else if (strcmp(op, "symlink") == 0) {
            if (symlink(a, b) != 0) die(op, b);
            i += 2;
        } else if (strcmp(op, "link") == 0) {
            if (link(a, b) != 0) die(op, b);
            i += 2;
        } else if (strcmp(op, "stdio") == 0) {
            FILE *f = fopen(a, "r+");
            if (f == NULL || fputs(b, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) die(op, a);
            fclose(f);
            i += 2;
        } else if (strcmp(op, "unlink") == 0) {
            if (unlink(a) != 0) die(op, a);
            i += 1;
        } else if (strcmp(op, "mkdir") == 0) {
            if (mkdir(a, 0755) != 0) die(op, a);
            i += 1;
        } else if (strcmp(op, "rmdir") == 0) {
            if (rmdir(a) != 0) die(op, a);
            i += 1;
        } else if (strcmp(op, "threads") == 0) {
            int n = atoi(b);
            thread_dir = a;
            rounds = atoi(argv[i + 3]);
            pthread_t t[64];
            for (long k = 0; k < n; k++) pthread_create(&t[k], NULL, writer, (void *)k);
            for (int k = 0; k < n; k++) pthread_join(t[k], NULL);
            i += 3;
        } else if (strcmp(op, "sleep") == 0) {
            sleep(atoi(a));
            i += 1;
        } else if (strcmp(op, "kill") == 0) {
            kill(getpid(), SIGKILL);
        } else {
            fprintf(stderr, "pcops: unknown op %s\n", op);
            return 2;
        }
    }
    return 0;
}
EOF
cc -O1 -o "$TMP/pcops" "$TMP/pcops.c" -lpthread || exit 1

LIB=$TMP/libpowercut.so
R=$TMP/root
S=$TMP/state
REPORT=$TMP/report
failures=0
checks=0
# the interpreter itself, not a wrapper (a pyenv shim would own STATE instead)
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')

fail() { echo "FAIL [$case]: $*"; failures=$((failures + 1)); }

# Runs a command with the library loaded (stderr kept in $TMP/stderr).
under() {
    LD_PRELOAD=$LIB POWERCUT_ROOT=$R POWERCUT_STATE=$S POWERCUT_REPORT=$REPORT "$@" 2>"$TMP/stderr"
    rc=$?
    [ "$VERBOSE" = 1 ] && sed 's/^/    /' "$TMP/stderr" >&2
    return $rc
}

# A fresh case: empty ROOT and STATE, then files given as NAME=CONTENT created before the
# first load, so that the baseline holds them as durable.
fresh() {
    case=$1
    shift
    rm -rf "$R" "$S" "$REPORT"
    mkdir -p "$R"
    for spec in "$@"; do
        mkdir -p "$(dirname "$R/${spec%%=*}")"
        printf '%s' "${spec#*=}" >"$R/${spec%%=*}"
    done
    under /bin/true || fail "baseline run failed: $(cat "$TMP/stderr")"
}

# pcops OPS... then the power cut (its own SIGKILL).
power_cut() {
    under "$TMP/pcops" "$@" kill
    rc=$?
    [ $rc -eq 137 ] || fail "pcops $* ended with $rc, not SIGKILL: $(cat "$TMP/stderr")"
}

# The restart: the next process with the library loaded rebuilds ROOT.
restart() {
    under /bin/true || fail "reboot run failed"
    grep -q "^powercut: rebooted $R" "$TMP/stderr" || fail "no reboot summary: $(cat "$TMP/stderr")"
    summary=$(grep '^powercut: rebooted' "$TMP/stderr")
}

expect() {  # expect FILE CONTENT
    checks=$((checks + 1))
    if [ ! -f "$R/$1" ]; then
        fail "$1 is missing, expected '$2'"
    elif ! printf '%s' "$2" | cmp -s - "$R/$1"; then
        fail "$1 holds '$(cat "$R/$1")', expected '$2'"
    fi
}
expect_absent() {
    checks=$((checks + 1))
    [ ! -e "$R/$1" ] && [ ! -L "$R/$1" ] || fail "$1 exists, expected it gone"
}
expect_dir() {
    checks=$((checks + 1))
    [ -d "$R/$1" ] || fail "directory $1 is missing"
}
expect_only() {  # expect_only NAME... : the whole tree under ROOT, sorted
    checks=$((checks + 1))
    got=$(cd "$R" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')
    want=$([ $# -eq 0 ] || printf '%s\n' "$@" | LC_ALL=C sort | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "tree is '$got', expected '$want'"
}
expect_summary() {  # expect_summary REGEX
    checks=$((checks + 1))
    echo "$summary" | grep -Eq "$1" || fail "summary '$summary' does not match /$1/"
}

# --- (1) write without fsync: gone --------------------------------------------------------
fresh 1-unsynced-write old=old
power_cut open "$R/new" c write hello open "$R/old" a write +more
# the page cache kept it all before the reboot
checks=$((checks + 1)); [ "$(cat "$R/new" "$R/old")" = "helloold+more" ] || fail "writes not visible before the cut"
restart
expect_absent new                        # never fsynced, directory never fsynced
expect old old                           # unsynced append dropped
expect_only old
expect_summary 'rolled back 1 files \(5 bytes differed\)'
expect_summary 'removed 1 unsynced entries \(5 bytes\), replaced 0 files \(0 bytes\); dropped 10 unsynced bytes'

fresh 1b-listed-never-synced
power_cut open "$R/empty" c write data dirsync "$R"
restart
expect empty ""                          # the name is durable, the content never was

# --- (2) pwrite + fdatasync kept, later unsynced writes lost, size back to the synced one ---
fresh 2-pwrite
power_cut open "$R/seg" cw pwrite 0 AAAA pwrite 4 BBBB fdatasync dirsync "$R" \
    pwrite 8 CCCC pwrite 0 x pwritev 12 DDEE
checks=$((checks + 1)); [ "$(cat "$R/seg")" = "xAAABBBBCCCCDDEE" ] || fail "before the cut: $(cat "$R/seg")"
restart
expect seg AAAABBBB
expect_summary 'rolled back 1 files \(9 bytes differed\)'

fresh 2b-truncate-and-sync-flags f=0123456789
power_cut open "$R/f" - trunc 4 write ab fsync trunc 2 \
    open "$R/ds" cd write synced open "$R/sy" cs writev synced2 dirsync "$R" \
    open "$R/sy" - pwrite 7 -unsynced
restart
expect f ab23                            # ftruncate + write (at offset 0) synced; trunc 2 lost
expect ds synced                         # O_DSYNC write is durable by itself
expect sy synced2                        # O_SYNC writev; the later write on another fd dropped

fresh 2c-append-and-overwrite log=12345678
power_cut open "$R/log" a write 9 fdatasync write 0 open "$R/log" - pwrite 2 zz pwrite 6 yy fsync pwrite 0 Q
restart
expect log 12zz56yy90                    # the fsync on the second fd covers the append

# --- (3) new file fsynced: needs its directory fsynced too -----------------------------------
fresh 3-new-file-dir-fsync
power_cut open "$R/a" c write AAA fsync close
restart
expect_absent a
power_cut open "$R/b" c write BBB fsync close dirsync "$R"
restart
expect b BBB

# --- (4) checkpoint: temp + fsync + rename + fsync(dir) ---------------------------------------
fresh 4-checkpoint ckpt=v1
power_cut creat "$R/ckpt.tmp" write v2 fsync close rename "$R/ckpt.tmp" "$R/ckpt" dirsync "$R"
restart
expect ckpt v2
expect_only ckpt
power_cut creat "$R/ckpt.tmp" write v3 fsync close rename "$R/ckpt.tmp" "$R/ckpt"
checks=$((checks + 1)); [ "$(cat "$R/ckpt")" = v3 ] || fail "rename not visible before the cut"
restart
expect ckpt v2                           # the old content under the old name
expect_only ckpt
expect_summary '1 recreated; removed 0 unsynced entries \(0 bytes\), replaced 1 files \(2 bytes\)'

fresh 4b-rename-within-dir a=AAA
power_cut rename "$R/a" "$R/b"                 # no directory fsync
restart
expect a AAA
expect_only a
expect_summary '1 renamed back'

# --- (5) unlink without directory fsync: the file comes back with its synced content --------
fresh 5-unlink keep=kept gone=x
power_cut open "$R/keep" - pwrite 0 KEPT fsync close unlink "$R/keep" unlink "$R/gone" dirsync "$R/.." \
    open "$R/other" c write other fsync close
restart
expect keep KEPT
expect gone x
expect_absent other
power_cut unlink "$R/gone" dirsync "$R"
restart
expect_absent gone
expect keep KEPT

# --- (6) mkdir of a subdirectory without the parent's fsync: gone ---------------------------
fresh 6-mkdir
power_cut mkdir "$R/sub" open "$R/sub/f" c write F fsync close dirsync "$R/sub"
restart
expect_absent sub
power_cut mkdir "$R/sub" mkdir "$R/sub/deep" open "$R/sub/f" c write F fsync close dirsync "$R" \
    open "$R/sub/deep/g" c write G fsync close dirsync "$R/sub/deep"
restart
expect_dir sub                           # the parent was fsynced
expect_absent sub/f                      # sub itself was not: empty
expect_absent sub/deep
power_cut mkdir "$R/sub/deep" open "$R/sub/deep/g" c write G fsync close dirsync "$R/sub/deep" dirsync "$R/sub"
restart
expect sub/deep/g G

fresh 6b-dir-rename d/f=inside
power_cut rename "$R/d" "$R/e" dirsync "$R/e"
restart
expect d/f inside
expect_absent e
power_cut unlink "$R/d/f" rmdir "$R/d" dirsync "$R"
restart
expect_absent d                          # removal made durable; d's own listing still had f,
expect_only                              # but d itself is gone from ROOT's listing

# --- (7) threads: concurrent pwrite + fdatasync on different files ---------------------------
fresh 7-threads
power_cut mkdir "$R/t" dirsync "$R" threads "$R/t" 8 300 dirsync "$R/t"
restart
checks=$((checks + 1))
"$PY" - "$R/t" 8 300 <<'EOF' || fail "thread files are wrong"
import os, sys
d, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = True
for i in range(n):
    want = "".join("t%02d-r%05d-abcd\n" % (i, r) for r in range(rounds)).encode()
    got = open(os.path.join(d, "t%d" % i), "rb").read()
    if got != want:
        print("t%d: %d bytes, expected %d" % (i, len(got), len(want)))
        ok = False
sys.exit(0 if ok else 1)
EOF
expect_summary 'rolled back 8 files \(128 bytes differed\)'

# --- (8) sync() and syncfs make everything durable -----------------------------------------
fresh 8-sync
power_cut mkdir "$R/s" open "$R/s/f" c write SYNCED sync write -lost
restart
expect s/f SYNCED
power_cut open "$R/s/g" c write FS syncfs
restart
expect s/g FS

# --- (9) symbolic links, hard links, odd names ----------------------------------------------
fresh 9-links f=data
power_cut symlink f "$R/s" link "$R/f" "$R/with space" open "$R/new
line" c write NL fsync dirsync "$R" symlink f "$R/s2" link "$R/f" "$R/h2"
restart
checks=$((checks + 1))
[ -L "$R/s" ] && [ "$(readlink "$R/s")" = f ] || fail "symlink s not restored"
checks=$((checks + 1))
[ "$R/f" -ef "$R/with space" ] || fail "hard link not restored as a hard link"
expect "new
line" NL
expect_only f s "with space" "new
line"

# --- (10) random writes, truncations and syncs on a few files against a model --------------
for seed in 1 2 3 4 5 6 7 8; do
fresh "11-random-$seed"
cat >"$TMP/random.py" <<'PYEOF'
import json, os, random, signal, sys
root, model_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
names = ["f%d" % i for i in range(4)]
real, durable, fds = {}, {}, {}
for n in names:
    append = n == "f3"
    fds[n] = os.open(os.path.join(root, n), os.O_RDWR | os.O_CREAT | (os.O_APPEND if append else 0), 0o644)
    real[n] = durable[n] = b""
d = os.open(root, os.O_RDONLY)
os.fsync(d)                               # the names are durable, empty
def put(n, off, data):                    # on O_APPEND (f3) every write appends, pwrite too
    buf = real[n]
    if n == "f3": off = len(buf)
    if off > len(buf): buf += b"\0" * (off - len(buf))
    real[n] = buf[:off] + data + buf[off + len(data):]
for step in range(400):
    n = rng.choice(names); fd = fds[n]; op = rng.random()
    data = bytes(rng.randrange(97, 123) for _ in range(rng.randrange(1, 3000)))
    if n == "f3" and op < 0.6:
        os.write(fd, data); real[n] += data
    elif op < 0.3:
        off = rng.randrange(0, len(real[n]) + 5000)
        os.pwrite(fd, data, off); put(n, off, data)
    elif op < 0.45:
        off = rng.randrange(0, len(real[n]) + 10)
        half = len(data) // 2
        os.lseek(fd, off, os.SEEK_SET)
        os.writev(fd, [data[:half], data[half:]]); put(n, off, data)
    elif op < 0.55:
        size = rng.randrange(0, len(real[n]) + 4000)
        os.ftruncate(fd, size)
        real[n] = real[n][:size] + b"\0" * max(0, size - len(real[n]))
    elif op < 0.7:
        (os.fsync if rng.random() < 0.5 else os.fdatasync)(fd); durable[n] = real[n]
    elif op < 0.75:
        off = rng.randrange(0, len(real[n]) + 10)
        os.pwritev(fd, [data], off); put(n, off, data)
for n in names:
    assert open(os.path.join(root, n), "rb").read() == real[n], "real content of " + n
json.dump({n: durable[n].decode("latin-1") for n in names}, open(model_path, "w"))
os.kill(os.getpid(), signal.SIGKILL)
PYEOF
under "$PY" "$TMP/random.py" "$R" "$TMP/model.json" "$seed"
rc=$?
checks=$((checks + 1)); [ $rc -eq 137 ] || fail "random.py ended with $rc: $(cat "$TMP/stderr")"
restart
checks=$((checks + 1))
"$PY" - "$R" "$TMP/model.json" <<'PYEOF' || fail "content differs from the model after the reboot ($summary)"
import json, os, sys
root, model = sys.argv[1], json.load(open(sys.argv[2]))
bad = [n for n, d in model.items() if open(os.path.join(root, n), "rb").read() != d.encode("latin-1")]
if bad: print("differs:", bad)
sys.exit(1 if bad else 0)
PYEOF
done

# --- (11) stdio, other descriptors, a second loader, POWERCUT_EXE, no environment -----------
fresh 11-stdio p=old-content
power_cut stdio "$R/p" NEW
restart
expect p NEW-content                     # untracked writes: the fsync copied the whole file

case=11-other-fds
checks=$((checks + 1))
out=$(LD_PRELOAD=$LIB POWERCUT_ROOT=$R POWERCUT_STATE=$S POWERCUT_REPORT=$REPORT "$PY" -c '
import os, sys, socket
a, b = socket.socketpair(); a.sendall(b"sock"); assert b.recv(4) == b"sock"
r, w = os.pipe(); os.write(w, b"pipe"); assert os.read(r, 4) == b"pipe"
f = open(os.environ["POWERCUT_ROOT"] + "/py", "w"); f.write("python"); f.flush(); os.fsync(f.fileno())
d = os.open(os.environ["POWERCUT_ROOT"], os.O_RDONLY); os.fsync(d)
print("stdout ok"); sys.stdout.flush()' 2>"$TMP/stderr")
[ "$out" = "stdout ok" ] && grep -q "^powercut: rebooted" "$TMP/stderr" \
    || fail "sockets/pipes/stdout under the library: '$out' $(cat "$TMP/stderr")"
restart
expect py python                         # python's file objects write with write()

case=11-second-loader
LD_PRELOAD=$LIB POWERCUT_ROOT=$R POWERCUT_STATE=$S "$TMP/pcops" open "$R/held" c write H sleep 3 \
    2>"$TMP/owner.stderr" &
owner=$!
sleep 1
checks=$((checks + 1))
under /bin/true
grep -q "is owned by process [0-9]* .*pcops; inactive" "$TMP/stderr" || fail "second loader did not stand aside: $(cat "$TMP/stderr")"
checks=$((checks + 1))
[ -f "$R/held" ] || fail "second loader rebooted ROOT under a live owner"  # held is unsynced
wait $owner

case=11-exe-filter                       # the power cut through a wrapper shell
checks=$((checks + 1))
POWERCUT_EXE=pcops under /bin/sh -c "\"$TMP/pcops\" open \"$R/w\" c write W fsync dirsync \"$R\" \
    write -lost kill; echo the shell stays inactive >&2"
grep -q "^powercut: rebooted" "$TMP/stderr" && grep -q "the shell stays inactive" "$TMP/stderr" \
    && [ "$(grep -c '^powercut' "$TMP/stderr")" = 1 ] || fail "POWERCUT_EXE: $(cat "$TMP/stderr")"
POWERCUT_EXE=true restart
expect w W

case=11-unset
checks=$((checks + 1))
LD_PRELOAD=$LIB /bin/sh -c 'echo hi >/dev/null' 2>"$TMP/stderr"
[ ! -s "$TMP/stderr" ] || fail "library not silent without POWERCUT_ROOT: $(cat "$TMP/stderr")"

checks=$((checks + 1))
[ "$(grep -c '^powercut: ' "$REPORT")" -ge 2 ] || fail "POWERCUT_REPORT has no summary lines"

if [ $failures -eq 0 ]; then
    echo "powercut selftest: all $checks checks passed"
    exit 0
fi
echo "powercut selftest: $failures of $checks checks failed"
exit 1
