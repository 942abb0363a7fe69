// vmrig-probe: the guest side of vmrig's workloads.
//
// Every run prints exactly one JSON line on stdout. Exit status: 0 the operation succeeded,
// 1 a syscall failed (the JSON names the errno, the syscall and how far it got), 2 usage error.
// Built static (gcc -static -O2) so the guest image needs no libc of its own for it.
//
//   vmrig-probe getdents DIR BUFSIZE
//   vmrig-probe read FILE BLOCKSIZE [--direct] [--for-ms N]
//   vmrig-probe write FILE SIZE BLOCKSIZE [--direct] [--seed N]
//   vmrig-probe alive DIR
//   vmrig-probe pagesize
//
// Sizes accept a K/M/G suffix (binary units); one that does not fit in 64 bits is a usage error,
// never a wrapped size. `calls` counts every syscall the loop made,
// including the last one (the empty read/getdents that ends it, or the one that failed).
// The write pattern is a little-endian stream of xorshift64 words (state = seed, or a fixed
// constant for seed 0), so the host can recompute it whatever the block size; the hash is
// 64-bit FNV-1a over the bytes moved. `read --for-ms N` reads the file again from the start
// until N ms have passed (at least one pass), so a fault timed against the workload lands
// mid-read however fast the host is; `bytes` and `fnv1a64` are the first pass's, and
// `differingPasses` counts later passes whose bytes or hash differed from it.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "json-line.h"

// Reports a failed syscall. The caller has already emitted the partial progress.
static int failed(const char *syscallName, int e) {
  emit(",\"ok\":false,\"errno\":\"%s\",\"errnoNum\":%d,\"syscall\":\"%s\"", errnoName(e), e,
       syscallName);
  return finish(1);
}

static int usage(const char *why) {
  fprintf(stderr,
          "vmrig-probe: %s\n"
          "usage: vmrig-probe getdents DIR BUFSIZE\n"
          "       vmrig-probe read FILE BLOCKSIZE [--direct] [--for-ms N]\n"
          "       vmrig-probe write FILE SIZE BLOCKSIZE [--direct] [--seed N]\n"
          "       vmrig-probe alive DIR\n"
          "       vmrig-probe pagesize\n",
          why);
  emit("\"op\":\"usage\",\"ok\":false,\"error\":\"%s\"", why);
  return finish(2);
}

// ---- small helpers ------------------------------------------------------------------------

// Returns NULL when `s` is a size (digits, then an optional K/M/G suffix in binary units)
// that fits in 64 bits, else why not: a wrapped size would quietly test another size.
static const char *parseSize(const char *s, uint64_t *value) {
  if (*s < '0' || *s > '9') return "not a size (digits, then K, M or G)";
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno == ERANGE) return "size does not fit in 64 bits";
  unsigned shift = 0;
  switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
  }
  if (*end) return "not a size (digits, then K, M or G)";
  if (n > (UINT64_MAX >> shift)) return "size does not fit in 64 bits";
  *value = (uint64_t)n << shift;
  return NULL;
}

// A usage error for a size argument, naming it (not quoting it: the JSON would need escaping).
static int badSize(const char *name, const char *why) {
  static char line[128];
  snprintf(line, sizeof line, "%s: %s", name, why);
  return usage(line);
}

// Parses argv[i] as the size `name` into *value; 0, or usage()'s status to return.
static int sizeArg(const char *name, const char *text, uint64_t *value) {
  const char *why = parseSize(text, value);
  return why ? badSize(name, why) : 0;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a64(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
  return h;
}

// The write pattern: xorshift64 words, emitted least significant byte first.
struct pattern { uint64_t state, word; unsigned left; };

static void patternInit(struct pattern *p, uint64_t seed) {
  p->state = seed ? seed : 0x9e3779b97f4a7c15ULL;  // xorshift must not start at 0
  p->left = 0;
}

static void patternFill(struct pattern *p, unsigned char *buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p->left == 0) {
      uint64_t x = p->state;
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p->state = p->word = x;
      p->left = 8;
    }
    buf[i] = (unsigned char)p->word;
    p->word >>= 8;
    p->left--;
  }
}

// O_DIRECT wants the buffer aligned; the page size satisfies every block device and FUSE.
static void *alignedBuffer(size_t size) {
  void *p = NULL;
  long page = sysconf(_SC_PAGESIZE);
  if (posix_memalign(&p, page > 0 ? (size_t)page : 4096, size ? size : 1)) return NULL;
  return p;
}

struct linuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static bool isDotOrDotDot(const char *name) {
  return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

// ---- subcommands --------------------------------------------------------------------------

struct getdentsProgress { uint64_t entries, calls; long maxReturned; };

static void emitGetdentsProgress(const struct getdentsProgress *p) {
  emit(",\"entries\":%" PRIu64 ",\"calls\":%" PRIu64 ",\"maxReturned\":%ld", p->entries,
       p->calls, p->maxReturned);
}

// Counts the records of one getdents64 result. A record must hold its header and a NUL-ended
// name and end inside what the call returned: trusting a bad d_reclen from a broken kernel
// would loop forever (0) or read past the buffer. Returns NULL, or what was wrong.
static const char *countDirents(const char *buf, long n, long bufSize, struct getdentsProgress *p) {
  static char why[128];
  const long minRecord = (long)offsetof(struct linuxDirent64, d_name) + 1;
  if (n > bufSize) {
    snprintf(why, sizeof why, "getdents64 returned %ld bytes into a %ld-byte buffer", n, bufSize);
    return why;
  }
  for (long off = 0; off < n;) {
    const struct linuxDirent64 *d = (const struct linuxDirent64 *)(buf + off);
    long reclen = n - off < minRecord ? 0 : d->d_reclen;
    if (reclen < minRecord || reclen > n - off || !memchr(d->d_name, 0, (size_t)(reclen - minRecord + 1))) {
      snprintf(why, sizeof why, "bad d_reclen %ld at offset %ld of %ld bytes", reclen, off, n);
      return why;
    }
    if (!isDotOrDotDot(d->d_name)) p->entries++;
    off += reclen;
  }
  return NULL;
}

// Calls getdents64 with exactly the caller's buffer size: the size is the lever for the
// readdir-buffer bugs.
static int cmdGetdents(int argc, char **argv) {
  uint64_t bufSize;
  if (argc != 2) return usage("getdents needs DIR BUFSIZE");
  int bad = sizeArg("BUFSIZE", argv[1], &bufSize);
  if (bad) return bad;
  if (bufSize == 0 || bufSize > UINT32_MAX) return badSize("BUFSIZE", "must be 1 to 4G-1");
  emit("\"op\":\"getdents\",\"bufferSize\":%" PRIu64, bufSize);
  struct getdentsProgress progress = {0, 0, 0};
  char *buf = malloc(bufSize);
  int fd = buf ? open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (fd < 0) {
    int e = buf ? errno : ENOMEM;
    emitGetdentsProgress(&progress);
    return failed(buf ? "open" : "malloc", e);
  }
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, (unsigned)bufSize);
    progress.calls++;
    if (n < 0) {
      int e = errno;
      emitGetdentsProgress(&progress);
      return failed("getdents64", e);
    }
    if (n == 0) break;
    if (n > progress.maxReturned) progress.maxReturned = n;
    const char *bad = countDirents(buf, n, (long)bufSize, &progress);
    if (bad) {
      emitGetdentsProgress(&progress);
      emit(",\"ok\":false,\"syscall\":\"getdents64\",\"error\":\"%s\"", bad);
      return finish(1);
    }
  }
  close(fd);
  emitGetdentsProgress(&progress);
  emit(",\"ok\":true");
  return finish(0);
}

static uint64_t monotonicMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int cmdRead(int argc, char **argv) {
  uint64_t blockSize, forMs = 0;
  bool direct = false;
  if (argc < 2) return usage("read needs FILE BLOCKSIZE [--direct] [--for-ms N]");
  int bad = sizeArg("BLOCKSIZE", argv[1], &blockSize);
  if (bad) return bad;
  if (blockSize == 0 || blockSize > (1ULL << 31)) return badSize("BLOCKSIZE", "must be 1 to 2G");
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--direct") == 0) direct = true;
    else if (strcmp(argv[i], "--for-ms") == 0 && i + 1 < argc) {
      if ((bad = sizeArg("--for-ms", argv[++i], &forMs))) return bad;
    } else return usage("read: unknown option");
  }
  emit("\"op\":\"read\",\"blockSize\":%" PRIu64 ",\"direct\":%s", blockSize,
       direct ? "true" : "false");
  unsigned char *buf = alignedBuffer(blockSize);
  if (!buf) return failed("posix_memalign", ENOMEM);
  int fd = open(argv[0], O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) {
    int e = errno;
    emit(",\"bytes\":0,\"calls\":0");
    return failed("open", e);
  }
  // One open file for every pass: a later pass only issues reads, never a new FUSE_OPEN.
  uint64_t started = monotonicMs(), calls = 0, passes = 0, differing = 0;
  uint64_t firstBytes = 0, firstHash = 0;
  do {
    uint64_t bytes = 0, hash = FNV_OFFSET;
    // Back to the start with lseek (SEEK_SET asks the server nothing), then plain read(2).
    if (passes > 0 && lseek(fd, 0, SEEK_SET) < 0) {
      int e = errno;
      emit(",\"bytes\":0,\"calls\":%" PRIu64 ",\"passes\":%" PRIu64, calls, passes);
      return failed("lseek", e);
    }
    for (;;) {
      ssize_t n = read(fd, buf, blockSize);
      calls++;
      if (n < 0) {
        int e = errno;
        emit(",\"bytes\":%" PRIu64 ",\"calls\":%" PRIu64 ",\"passes\":%" PRIu64, bytes, calls, passes);
        return failed("read", e);
      }
      if (n == 0) break;
      hash = fnv1a64(hash, buf, (size_t)n);
      bytes += (uint64_t)n;
    }
    if (passes == 0) firstBytes = bytes, firstHash = hash;
    else if (bytes != firstBytes || hash != firstHash) differing++;
    passes++;
  } while (monotonicMs() - started < forMs);
  close(fd);
  emit(",\"ok\":true,\"bytes\":%" PRIu64 ",\"calls\":%" PRIu64 ",\"fnv1a64\":\"%016" PRIx64
       "\",\"passes\":%" PRIu64 ",\"differingPasses\":%" PRIu64,
       firstBytes, calls, firstHash, passes, differing);
  return finish(0);
}

static int cmdWrite(int argc, char **argv) {
  uint64_t size, blockSize, seed = 0;
  bool direct = false;
  if (argc < 3) return usage("write needs FILE SIZE BLOCKSIZE [--direct] [--seed N]");
  int bad = sizeArg("SIZE", argv[1], &size);
  if (!bad) bad = sizeArg("BLOCKSIZE", argv[2], &blockSize);
  if (bad) return bad;
  if (blockSize == 0 || blockSize > (1ULL << 31)) return badSize("BLOCKSIZE", "must be 1 to 2G");
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--direct") == 0) direct = true;
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      if ((bad = sizeArg("--seed", argv[++i], &seed))) return bad;
    } else return usage("write: unknown option");
  }
  emit("\"op\":\"write\",\"blockSize\":%" PRIu64 ",\"direct\":%s,\"seed\":%" PRIu64, blockSize,
       direct ? "true" : "false", seed);
  unsigned char *buf = alignedBuffer(blockSize);
  if (!buf) return failed("posix_memalign", ENOMEM);
  int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0) {
    int e = errno;
    emit(",\"bytes\":0,\"calls\":0");
    return failed("open", e);
  }
  struct pattern pat;
  patternInit(&pat, seed);
  uint64_t bytes = 0, calls = 0, hash = FNV_OFFSET;
  while (bytes < size) {
    size_t chunk = size - bytes < blockSize ? (size_t)(size - bytes) : (size_t)blockSize;
    patternFill(&pat, buf, chunk);
    // A short write leaves the rest of the chunk to write again; the pattern has moved on,
    // so write the remainder from the same buffer.
    for (size_t done = 0; done < chunk;) {
      ssize_t n = write(fd, buf + done, chunk - done);
      calls++;
      if (n < 0) {
        int e = errno;
        emit(",\"bytes\":%" PRIu64 ",\"calls\":%" PRIu64, bytes, calls);
        return failed("write", e);
      }
      if (n == 0) {  // no error and no progress: asking again would spin forever
        emit(",\"bytes\":%" PRIu64 ",\"calls\":%" PRIu64, bytes, calls);
        emit(",\"ok\":false,\"syscall\":\"write\",\"error\":\"write returned 0 with %zu bytes to go\"",
             chunk - done);
        return finish(1);
      }
      hash = fnv1a64(hash, buf + done, (size_t)n);
      done += (size_t)n;
      bytes += (uint64_t)n;
    }
  }
  emit(",\"bytes\":%" PRIu64 ",\"calls\":%" PRIu64, bytes, calls);
  if (fsync(fd) < 0) return failed("fsync", errno);
  if (close(fd) < 0) return failed("close", errno);
  emit(",\"ok\":true,\"fnv1a64\":\"%016" PRIx64 "\"", hash);
  return finish(0);
}

// The liveness probe: does the mount still answer a lookup, an open and a small readdir?
static int cmdAlive(int argc, char **argv) {
  if (argc != 1) return usage("alive needs DIR");
  emit("\"op\":\"alive\"");
  struct stat st;
  if (stat(argv[0], &st) < 0) return failed("stat", errno);
  int fd = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return failed("open", errno);
  static char buf[4096];
  if (syscall(SYS_getdents64, fd, buf, sizeof buf) < 0) return failed("getdents64", errno);
  close(fd);
  emit(",\"ok\":true");
  return finish(0);
}

static int cmdPagesize(int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage("pagesize takes no arguments");
  emit("\"op\":\"pagesize\",\"ok\":true,\"pageSize\":%ld", sysconf(_SC_PAGESIZE));
  return finish(0);
}

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
  {"getdents", cmdGetdents},
  {"read", cmdRead},
  {"write", cmdWrite},
  {"alive", cmdAlive},
  {"pagesize", cmdPagesize},
};

int main(int argc, char **argv) {
  if (argc < 2) return usage("no subcommand");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
  return usage("unknown subcommand");
}
