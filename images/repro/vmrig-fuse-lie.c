// vmrig-fuse-lie: a FUSE server that lies, and a victim that believes it.
//
// Speaks the raw /dev/fuse protocol (linux/fuse.h) so the guest needs no libfuse. It mounts a
// filesystem whose root holds one entry, "x". LOOKUP describes x one way; GETATTR and READ
// may then contradict it, as a buggy or malicious server (or a virtio-fs device) could. A
// forked victim opens x, optionally puts a dnotify mark on it, fstat()s it and reads it; the
// server answers. Then the /dev/fuse descriptor is closed and the mount unmounted: a kernel
// that kept state from the lie pays for it there (seed 002: the dnotify mark on an inode that
// make_bad_inode() turned into a regular file -> kernel BUG at fs/notify/dnotify/dnotify.c).
//
// The lie is data: every reply the server gives comes from the options below, so a new lying
// server is a new set of options (vmrig keeps the named ones in harness/workloads/fuse-lies.ts).
//
//   vmrig-fuse-lie [--entry dir|file] [--lookup-size N] [--getattr-mode OCTAL]
//                  [--getattr-size N|-N] [--read-extra N] [--dnotify] [--mnt DIR]
//                  [--timeout SECONDS]
//
//   --entry         what LOOKUP says x is (default dir, 040755; file is 0100644)
//   --lookup-size   st_size LOOKUP reports (default 4096)
//   --getattr-mode  st_mode GETATTR of x reports (default: LOOKUP's)
//   --getattr-size  st_size GETATTR of x reports (default: LOOKUP's); -N is two's complement
//   --read-extra    a READ reply carries this many bytes beyond what the READ asked for
//   --dnotify       fcntl(F_NOTIFY) on the open x before fstat (x must be a directory)
//
// Prints one JSON line: "ok" says the reproducer ran to the end (not that the kernel was
// right); "steps" has "ok", an errno name, "skipped" or "timeout" for mount, open, dnotify,
// fstat, read, close, umount; "malformedRequests" counts requests shorter than their opcode
// needs (answered EIO, never read past). When it cannot even mount (no /dev/fuse: a kernel without
// FUSE) "ok" is false and "stage"/"errno" say why. Exit 0 ran, 1 could not set up, 2 usage.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json-line.h"

static int usage(const char *why) {
  fprintf(stderr,
          "vmrig-fuse-lie: %s\n"
          "usage: vmrig-fuse-lie [--entry dir|file] [--lookup-size N] [--getattr-mode OCTAL]\n"
          "                      [--getattr-size N|-N] [--read-extra N] [--dnotify] [--mnt DIR]\n"
          "                      [--timeout SECONDS]\n",
          why);
  emit(",\"ok\":false,\"stage\":\"usage\",\"error\":\"%s\"", why);
  return finish(2);
}

static int setupFailed(const char *stage, int e) {
  emit(",\"ok\":false,\"stage\":\"%s\",\"errno\":\"%s\",\"errnoNum\":%d", stage, errnoName(e), e);
  return finish(1);
}

// ---- the lie --------------------------------------------------------------------------------

#define ROOT_ID FUSE_ROOT_ID
#define X_ID 2
#define X_NAME "x"

static struct {
  bool entryIsDir;
  uint64_t lookupSize;
  uint32_t getattrMode;
  bool getattrModeSet;
  uint64_t getattrSize;
  bool getattrSizeSet;
  uint32_t readExtra;
  bool dnotify;
  const char *mnt;
  unsigned timeoutSeconds;
} lie = {true, 4096, 0, false, 0, false, 0, false, NULL, 20};

static uint32_t lookupMode(void) { return lie.entryIsDir ? (S_IFDIR | 0755) : (S_IFREG | 0644); }

static void fillAttr(struct fuse_attr *a, uint64_t ino, uint32_t mode, uint64_t size) {
  memset(a, 0, sizeof *a);
  a->ino = ino;
  a->mode = mode;
  a->size = size;
  a->blocks = (size + 511) / 512;
  a->nlink = S_ISDIR(mode) ? 2 : 1;
  a->blksize = 4096;
  a->atime = a->mtime = a->ctime = 1700000000;
}

// ---- the victim: a child process whose steps land in shared memory --------------------------

enum step { S_MOUNT, S_OPEN, S_DNOTIFY, S_FSTAT, S_READ, S_CLOSE, S_UMOUNT, S_COUNT };
static const char *stepNames[S_COUNT] = {"mount", "open", "dnotify", "fstat", "read", "close", "umount"};

// result: 0 not reached, -1 ok, -2 skipped, >0 errno
struct shared {
  int result[S_COUNT];
  int current;
  uint32_t fstatMode;
  int64_t fstatSize;
  int64_t readBytes;
};
static struct shared *sh;

static void record(int s, int rc) { sh->result[s] = rc < 0 ? errno : -1; }

static void victim(const char *path) {
  sh->current = S_OPEN;
  int fd = open(path, O_RDONLY | O_CLOEXEC | (lie.entryIsDir ? O_DIRECTORY : 0));
  record(S_OPEN, fd);
  if (fd < 0) {
    for (int s = S_DNOTIFY; s <= S_CLOSE; s++) sh->result[s] = -2;
    return;
  }
  sh->current = S_DNOTIFY;
  if (lie.dnotify) record(S_DNOTIFY, fcntl(fd, F_NOTIFY, DN_MODIFY | DN_CREATE | DN_DELETE | DN_MULTISHOT));
  else sh->result[S_DNOTIFY] = -2;
  // attr_valid is 0, but attributes fetched in this jiffy still count as fresh: let it pass.
  usleep(50 * 1000);
  sh->current = S_FSTAT;
  struct stat st;
  int rc = fstat(fd, &st);
  record(S_FSTAT, rc);
  if (rc == 0) {
    sh->fstatMode = st.st_mode;
    sh->fstatSize = (int64_t)st.st_size;
  }
  sh->current = S_READ;
  if (!lie.entryIsDir && rc == 0) {
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    record(S_READ, (int)(n < 0 ? -1 : 0));
    sh->readBytes = n;
  } else {
    sh->result[S_READ] = -2;
  }
  sh->current = S_CLOSE;
  record(S_CLOSE, close(fd));
  sh->current = S_COUNT;
}

// ---- the server -----------------------------------------------------------------------------

static unsigned requests[64];
static int replyErrors;
static char replyErrorText[512];
static size_t replyErrorLen;

static void reply(int fuse, const struct fuse_in_header *in, int error, const void *payload, size_t len,
                  size_t extra) {
  static char pad[8192];
  struct fuse_out_header oh = {.len = (uint32_t)(sizeof oh + len + extra), .error = -error, .unique = in->unique};
  struct iovec iov[3] = {{&oh, sizeof oh}, {(void *)payload, len}, {pad, extra}};
  if (writev(fuse, iov, 3) < 0 && replyErrorLen < sizeof replyErrorText - 64) {
    replyErrors++;
    replyErrorLen += (size_t)snprintf(replyErrorText + replyErrorLen, sizeof replyErrorText - replyErrorLen,
                                      "%s{\"opcode\":%u,\"errno\":\"%s\"}", replyErrorLen ? "," : "",
                                      in->opcode, errnoName(errno));
  }
}

// The body each request this server reads must at least carry. INIT: major, minor,
// max_readahead, flags, the prefix every kernel since 7.0 sends (newer fields are not read).
// READ: fh, offset, size, read_flags (the 7.8 layout). LOOKUP: a name and its NUL.
static size_t minBody(uint32_t opcode) {
  switch (opcode) {
    case FUSE_INIT: return offsetof(struct fuse_init_in, flags) + sizeof(uint32_t);
    case FUSE_READ: return offsetof(struct fuse_read_in, read_flags) + sizeof(uint32_t);
    case FUSE_LOOKUP: return 2;
    default: return 0;
  }
}

static unsigned malformed;

// Whether the request read from /dev/fuse (n bytes) is whole and long enough for its opcode,
// so serve() never reads a body past what the kernel sent.
static bool requestIsWhole(const char *buf, size_t n) {
  const struct fuse_in_header *in = (const void *)buf;
  if (n < sizeof *in || in->len != n) return false;
  size_t body = n - sizeof *in;
  if (body < minBody(in->opcode)) return false;
  return in->opcode != FUSE_LOOKUP || memchr(buf + sizeof *in, 0, body) != NULL;
}

static void serve(int fuse, const char *buf) {
  const struct fuse_in_header *in = (const void *)buf;
  const void *arg = buf + sizeof *in;
  switch (in->opcode) {
    case FUSE_INIT: {
      const struct fuse_init_in *ii = arg;
      struct fuse_init_out io = {0};
      io.major = FUSE_KERNEL_VERSION;
      io.minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ? ii->minor : FUSE_KERNEL_MINOR_VERSION;
      io.max_readahead = ii->max_readahead;
      io.max_write = 4096;
      io.max_background = 16;
      io.congestion_threshold = 12;
      io.time_gran = 1;
      reply(fuse, in, 0, &io, io.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof io, 0);
      return;
    }
    case FUSE_LOOKUP: {
      if (in->nodeid != ROOT_ID || strcmp(arg, X_NAME) != 0) return reply(fuse, in, ENOENT, NULL, 0, 0);
      struct fuse_entry_out eo = {0};
      eo.nodeid = X_ID;
      eo.generation = 1;
      eo.entry_valid = 60;
      eo.attr_valid = 0;  // ask again next time: the next GETATTR gets to lie
      fillAttr(&eo.attr, X_ID, lookupMode(), lie.lookupSize);
      return reply(fuse, in, 0, &eo, sizeof eo, 0);
    }
    case FUSE_GETATTR: {
      struct fuse_attr_out ao = {0};
      if (in->nodeid == ROOT_ID) {
        ao.attr_valid = 60;
        fillAttr(&ao.attr, ROOT_ID, S_IFDIR | 0755, 4096);
      } else {
        fillAttr(&ao.attr, X_ID, lie.getattrModeSet ? lie.getattrMode : lookupMode(),
                 lie.getattrSizeSet ? lie.getattrSize : lie.lookupSize);
      }
      return reply(fuse, in, 0, &ao, sizeof ao, 0);
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      struct fuse_open_out oo = {.fh = 1};
      return reply(fuse, in, 0, &oo, sizeof oo, 0);
    }
    case FUSE_READ: {
      const struct fuse_read_in *ri = arg;
      static char data[65536];
      uint64_t size = lie.lookupSize;
      size_t n = ri->offset >= size ? 0 : (size_t)(size - ri->offset < ri->size ? size - ri->offset : ri->size);
      if (n > sizeof data) n = sizeof data;
      memset(data, 'v', n);
      size_t extra = lie.readExtra > 8192 ? 8192 : lie.readExtra;
      return reply(fuse, in, 0, data, n, extra);
    }
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_FLUSH:
    case FUSE_FSYNCDIR:
      return reply(fuse, in, 0, NULL, 0, 0);
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      return;  // no reply expected
    default:
      return reply(fuse, in, ENOSYS, NULL, 0, 0);
  }
}

// One request as read from /dev/fuse: counted, then served if it is whole, else answered EIO.
static void handle(int fuse, const char *buf, size_t n) {
  const struct fuse_in_header *in = (const void *)buf;
  if (n < sizeof *in) {
    malformed++;  // not even a header: nothing to answer
    return;
  }
  if (in->opcode < 64) requests[in->opcode]++;
  if (requestIsWhole(buf, n)) return serve(fuse, buf);
  malformed++;
  reply(fuse, in, EIO, NULL, 0, 0);
}

static volatile sig_atomic_t childDone;
static void onChild(int sig) { (void)sig; childDone = 1; }

static bool parseU64(const char *s, uint64_t *v) {
  char *end;
  errno = 0;
  bool neg = *s == '-';
  unsigned long long n = strtoull(neg ? s + 1 : s, &end, 0);
  if (errno || end == s || *end) return false;
  *v = neg ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
  return true;
}

int main(int argc, char **argv) {
  emit("\"op\":\"fuse-lie\"");
  char mntBuf[64];
  snprintf(mntBuf, sizeof mntBuf, "/tmp/vmrig-fuse-lie-%d", (int)getpid());
  lie.mnt = mntBuf;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(a, "--dnotify") == 0) { lie.dnotify = true; continue; }
    if (!v) return usage("option needs a value");
    i++;
    if (strcmp(a, "--entry") == 0) {
      if (strcmp(v, "dir") && strcmp(v, "file")) return usage("--entry is dir or file");
      lie.entryIsDir = strcmp(v, "dir") == 0;
    } else if (strcmp(a, "--lookup-size") == 0 && parseU64(v, &n)) {
      lie.lookupSize = n;
    } else if (strcmp(a, "--getattr-mode") == 0) {
      char *end;
      unsigned long m = strtoul(v, &end, 8);
      if (*end || end == v) return usage("--getattr-mode is octal");
      lie.getattrMode = (uint32_t)m;
      lie.getattrModeSet = true;
    } else if (strcmp(a, "--getattr-size") == 0 && parseU64(v, &n)) {
      lie.getattrSize = n;
      lie.getattrSizeSet = true;
    } else if (strcmp(a, "--read-extra") == 0 && parseU64(v, &n)) {
      lie.readExtra = (uint32_t)n;
    } else if (strcmp(a, "--mnt") == 0) {
      lie.mnt = v;
    } else if (strcmp(a, "--timeout") == 0 && parseU64(v, &n) && n > 0) {
      lie.timeoutSeconds = (unsigned)n;
    } else {
      return usage("unknown option or bad value");
    }
  }
  if (lie.dnotify && !lie.entryIsDir) return usage("--dnotify needs --entry dir");
  emit(",\"entry\":\"%s\",\"dnotify\":%s,\"mnt\":\"%s\"", lie.entryIsDir ? "dir" : "file",
       lie.dnotify ? "true" : "false", lie.mnt);

  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return setupFailed("mmap", errno);
  memset(sh, 0, sizeof *sh);

  int fuse = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse < 0) return setupFailed("open /dev/fuse", errno);
  if (mkdir(lie.mnt, 0755) < 0 && errno != EEXIST) return setupFailed("mkdir", errno);
  char opts[128];
  snprintf(opts, sizeof opts, "fd=%d,rootmode=040000,user_id=0,group_id=0", fuse);
  if (mount("vmrig-fuse-lie", lie.mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) return setupFailed("mount", errno);
  sh->result[S_MOUNT] = -1;

  // SIGCHLD only while waiting in ppoll: no lost wake-up between the check and the wait.
  sigset_t block, waitMask;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &waitMask);
  sigdelset(&waitMask, SIGCHLD);
  struct sigaction sa = {0};
  sa.sa_handler = onChild;
  sigaction(SIGCHLD, &sa, NULL);

  char path[256];
  snprintf(path, sizeof path, "%s/%s", lie.mnt, X_NAME);
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) return setupFailed("fork", errno);
  if (child == 0) {
    close(fuse);
    victim(path);
    _exit(0);
  }

  static char buf[FUSE_MIN_READ_BUFFER + 65536];
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool timedOut = false;
  while (!childDone) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left = (long)lie.timeoutSeconds * 1000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
    if (left <= 0) { timedOut = true; break; }
    struct pollfd p = {.fd = fuse, .events = POLLIN};
    struct timespec ts = {left / 1000, (left % 1000) * 1000000};
    int r = ppoll(&p, 1, &ts, &waitMask);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fuse, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;  // ENOENT: request interrupted
      break;  // ENODEV: the connection was aborted
    }
    handle(fuse, buf, (size_t)n);
  }
  if (timedOut) {
    sh->result[sh->current < S_COUNT ? sh->current : S_CLOSE] = -3;
    kill(child, SIGKILL);
  }
  // Close, then unmount: whatever the kernel kept from the lie is torn down here.
  close(fuse);
  waitpid(child, NULL, 0);
  sh->result[S_UMOUNT] = umount2(lie.mnt, 0) < 0 ? errno : -1;
  rmdir(lie.mnt);

  emit(",\"ok\":true,\"steps\":{");
  for (int s = 0; s < S_COUNT; s++) {
    int r = sh->result[s];
    const char *v = r == -1 ? "ok" : r == -2 ? "skipped" : r == -3 ? "timeout" : r == 0 ? "not-reached" : errnoName(r);
    emit("%s\"%s\":\"%s\"", s ? "," : "", stepNames[s], v);
  }
  emit("}");
  if (sh->result[S_FSTAT] == -1) emit(",\"fstatMode\":\"0%o\",\"fstatSize\":%" PRId64, sh->fstatMode, sh->fstatSize);
  if (sh->result[S_READ] == -1) emit(",\"readBytes\":%" PRId64, sh->readBytes);
  emit(",\"requests\":{\"lookup\":%u,\"getattr\":%u,\"open\":%u,\"read\":%u,\"release\":%u}",
       requests[FUSE_LOOKUP], requests[FUSE_GETATTR], requests[FUSE_OPEN] + requests[FUSE_OPENDIR],
       requests[FUSE_READ], requests[FUSE_RELEASE] + requests[FUSE_RELEASEDIR]);
  emit(",\"replyErrors\":[%s],\"malformedRequests\":%u", replyErrorText, malformed);
  return finish(0);
}
