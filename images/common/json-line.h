// One JSON line per guest program run (vmrig-probe, vmrig-fuse-lie): assembled piecewise with
// emit(), printed by finish(). errno names rather than strerror text: the harness compares them
// with scenario expectations. Included by each program; compiled with -I images/common.
#ifndef VMRIG_JSON_LINE_H
#define VMRIG_JSON_LINE_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static char out[4096];
static size_t outLen;

static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + outLen, sizeof out - outLen, fmt, ap);
  va_end(ap);
  if (n > 0) outLen += (size_t)n < sizeof out - outLen ? (size_t)n : sizeof out - outLen - 1;
}

static int finish(int status) {
  printf("{%s}\n", out);
  fflush(stdout);
  return status;
}

static const char *errnoName(int e) {
  static const struct { int num; const char *name; } names[] = {
    {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {EINTR, "EINTR"}, {EIO, "EIO"}, {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"}, {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"}, {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"},
    {EXDEV, "EXDEV"}, {ENODEV, "ENODEV"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},
    {EINVAL, "EINVAL"}, {ENFILE, "ENFILE"}, {EMFILE, "EMFILE"}, {ENOTTY, "ENOTTY"},
    {EFBIG, "EFBIG"}, {ENOSPC, "ENOSPC"}, {EROFS, "EROFS"}, {EMLINK, "EMLINK"}, {EPIPE, "EPIPE"},
    {ERANGE, "ERANGE"}, {EDEADLK, "EDEADLK"}, {ENAMETOOLONG, "ENAMETOOLONG"}, {ENOSYS, "ENOSYS"},
    {ENOTEMPTY, "ENOTEMPTY"}, {ELOOP, "ELOOP"}, {ENODATA, "ENODATA"}, {EOVERFLOW, "EOVERFLOW"},
    {EOPNOTSUPP, "EOPNOTSUPP"}, {ENOTCONN, "ENOTCONN"}, {ECONNABORTED, "ECONNABORTED"},
    {ETIMEDOUT, "ETIMEDOUT"}, {ESTALE, "ESTALE"}, {ECANCELED, "ECANCELED"}, {EDQUOT, "EDQUOT"},
    {ENOLINK, "ENOLINK"}, {EPROTO, "EPROTO"}, {EBADMSG, "EBADMSG"}, {ENOBUFS, "ENOBUFS"},
    {ESHUTDOWN, "ESHUTDOWN"}, {ECHILD, "ECHILD"}, {ESRCH, "ESRCH"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].num == e) return names[i].name;
  return "EUNKNOWN";
}

#endif
