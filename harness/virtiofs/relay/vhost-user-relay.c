/*
 * vhost-user-relay: sits between a vhost-user frontend (QEMU) and a vhost-user backend
 * (virtiofsd) and forwards every message, with its file descriptors, in both directions. It
 * changes exactly two things:
 *
 *   - the backend's reply to VHOST_USER_GET_FEATURES gets the --add-features bits ORed in
 *     (default: bit 33, VIRTIO_F_ACCESS_PLATFORM), so that QEMU accepts
 *     `-device vhost-user-fs-pci,...,iommu_platform=on` with a stock virtiofsd;
 *   - VHOST_USER_SET_FEATURES from the frontend gets those added bits cleared again unless
 *     the backend offered them itself (see vu_rewrite() for why).
 *
 * Without a vIOMMU, QEMU sends no VHOST_USER_IOTLB_MSG, so the backend keeps working on
 * guest-physical addresses while the guest driver negotiates ACCESS_PLATFORM and therefore
 * maps its buffers through the DMA API (and swiotlb with `swiotlb=force`).
 *
 * Usage:
 *   vhost-user-relay --listen FRONT_SOCK --connect BACKEND_SOCK
 *                    [--add-features 0x200000000] [--log FILE] [--connect-timeout MS]
 *                    [--message-timeout MS] [--silent-timeout MS]
 *   vhost-user-relay --self-test
 *
 * Lifecycle:
 *   1. binds and listens on FRONT_SOCK, then prints "vhost-user-relay: listening on FRONT_SOCK"
 *      on stdout. Wait for that line or for FRONT_SOCK listening in /proc/net/unix. An existing
 *      FRONT_SOCK is replaced only when it is a socket nobody listens on (a killed relay's);
 *      a regular file, a directory, a symlink, another kind of file or a live socket is
 *      refused with exit 2 and left as it was.
 *   2. accepts connections until one sends a byte: that one is the frontend. Up to 4 may wait
 *      at once, so a client that connects and sends nothing (a readiness probe, a stray
 *      connect) never keeps the real QEMU waiting. A waiting client is dropped when it closes,
 *      after --silent-timeout ms without a byte (default 5000, 0: no limit) or, the oldest
 *      first, when a fifth connects. Then the listening socket is closed and FRONT_SOCK unlinked (if it is
 *      still the file the relay created).
 *   3. connects to BACKEND_SOCK (retrying ENOENT/ECONNREFUSED for --connect-timeout ms,
 *      default 5000, because virtiofsd creates its socket file a moment before it listens).
 *   4. relays until either side closes, then closes both and exits 0. Once a message's first
 *      byte has come, the rest must come within --message-timeout ms (default 10000, 0: no
 *      limit), and a peer must take a message within as long (SO_SNDTIMEO): a peer that stops
 *      mid-message cannot block both directions forever. Usage errors exit 2; SIGINT/SIGTERM/
 *      SIGHUP exit 128+signal. Unless its launcher already set one, the relay asks the kernel
 *      for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so it never outlives vmrig.
 *
 * Close reasons: the last line of the log and, for errors, the one line on stderr.
 * SIDE is "frontend" or "backend", WHERE "mid-header" or "in the middle of REQUEST".
 *   exit 0  "SIDE closed the connection"            EOF, or a reset with nothing pending,
 *                                                   at a message boundary: the peer is done
 *   exit 1  "SIDE closed the connection WHERE after N of M bytes"
 *                                                   EOF inside a message: it was cut short
 *           "SIDE reset the connection WHERE after N of M bytes"
 *                                                   ECONNRESET inside a message: the peer
 *                                                   died or closed with data unread
 *           "SIDE stalled WHERE: N of M bytes in T ms since its first byte"
 *                                                   the rest of the message never came
 *           "SIDE stopped reading: N of M bytes of REQUEST sent"
 *                                                   it took nothing for --message-timeout ms
 *           "SIDE sent a bad header: unsupported vhost-user version (...)"
 *           "SIDE sent a bad header: payload size exceeds 64 KiB (...)"
 *                                                   not a vhost-user stream (request, flags
 *                                                   and size as received)
 *           "SIDE sent more than 32 fds WHERE (MSG_CTRUNC): not a vhost-user peer"
 *                                                   the kernel dropped fds: forwarding the
 *                                                   message would silently lose them
 *           "connect to backend ...", "recvmsg/sendmsg ...", "poll ..."  host errors
 *   exit 2  "--listen PATH exists and is ...; refusing to replace it", "... is a socket
 *           another process listens on ...", a socket path too long, bad options
 *
 * The backend channel (VHOST_USER_SET_BACKEND_REQ_FD, formerly SET_SLAVE_REQ_FD) carries a
 * socket that the backend then uses to talk to QEMU directly: forwarding the fd is all the
 * relay has to do; that traffic never passes through here.
 *
 * Message I/O is one message at a time: vhost-user's main channel is strictly request/reply
 * driven by the frontend (backend-initiated requests use the backend channel), so a whole
 * message is always on its way once its first byte is readable; a peer for which that is not
 * true is broken, and --message-timeout ends the relay instead of waiting for it forever.
 *
 * Dependency-free C (libc only). Built by vmrig with `gcc -O2 -Wall -Wextra`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- protocol constants (docs/interop/vhost-user.rst) ------------------------------------ */

#define VU_HDR_SIZE 12u
#define VU_VERSION 0x1u
#define VU_VERSION_MASK 0x3u
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u
/* QEMU's largest payload (VhostUserCryptoSession) is under 2 KiB and rust-vmm caps messages
 * at 4 KiB (MAX_MSG_SIZE); anything above 64 KiB is not a vhost-user stream. */
#define VU_MAX_PAYLOAD (64u * 1024u)
/* QEMU sends at most 8 fds per message (VHOST_MEMORY_BASELINE_NREGIONS for SET_MEM_TABLE). */
#define VU_MAX_FDS 32
/* Clients that may wait, silent, for their first byte (see accept_frontend()). */
#define VU_MAX_PENDING 4
/* Defaults of --message-timeout and --silent-timeout (ms). A whole message is on its way
 * once its first byte is readable (see below), so 10 s is ample even on a loaded TCG host.
 * QEMU sends GET_FEATURES when it realizes the device, well under a second after its
 * chardev connected; 5 s leaves room for a loaded host. */
#define VU_MESSAGE_TIMEOUT_MS 10000L
#define VU_SILENT_TIMEOUT_MS 5000L

#define VU_GET_FEATURES 1u
#define VU_SET_FEATURES 2u
#define VU_IOTLB_MSG 22u
#define VIRTIO_F_ACCESS_PLATFORM 33

#define EXIT_ERROR 1
#define EXIT_USAGE 2

struct vu_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
};

enum vu_dir { VU_FRONT_TO_BACK = 0, VU_BACK_TO_FRONT = 1 };

struct vu_msg {
    struct vu_hdr hdr;
    uint8_t payload[VU_MAX_PAYLOAD];
    int fds[VU_MAX_FDS];
    int nfds;
};

struct relay_state {
    /* Feature bits to add to GET_FEATURES replies. */
    uint64_t add_features;
    /* What the backend itself offered in its last GET_FEATURES reply. */
    uint64_t backend_features;
    int backend_features_known;
};

enum vu_rewrite_kind {
    VU_REWRITE_NONE = 0,
    VU_REWRITE_GET_FEATURES_REPLY,
    VU_REWRITE_SET_FEATURES,
};

struct vu_rewrite_result {
    enum vu_rewrite_kind kind;
    uint64_t before;
    uint64_t after;
};

struct relay {
    int fd[2]; /* [VU_FRONT_TO_BACK] = frontend socket, [VU_BACK_TO_FRONT] = backend socket */
    struct relay_state st;
    FILE *log;
    struct timespec t0;
    long message_timeout_ms; /* see struct msg_clock; also each socket's SO_SNDTIMEO */
    unsigned long count[2];
    struct vu_msg msg; /* one message buffer, reused */
};

static volatile sig_atomic_t stop_signal;

/* ---- message core: pure functions, unit-tested by --self-test ---------------------------- */

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

void vu_parse_header(const uint8_t raw[VU_HDR_SIZE], struct vu_hdr *h)
{
    h->request = get_le32(raw);
    h->flags = get_le32(raw + 4);
    h->size = get_le32(raw + 8);
}

void vu_encode_header(const struct vu_hdr *h, uint8_t raw[VU_HDR_SIZE])
{
    put_le32(raw, h->request);
    put_le32(raw + 4, h->flags);
    put_le32(raw + 8, h->size);
}

/* Returns NULL when the header is acceptable, else a description of what is wrong. */
const char *vu_check_header(const struct vu_hdr *h)
{
    if ((h->flags & VU_VERSION_MASK) != VU_VERSION) return "unsupported vhost-user version";
    if (h->size > VU_MAX_PAYLOAD) return "payload size exceeds 64 KiB";
    return NULL;
}

/* Frontend request names (the backend's replies on the main channel carry the same codes). */
const char *vu_request_name(uint32_t request)
{
    static const char *const names[] = {
        [0] = "NONE",
        [1] = "GET_FEATURES",
        [2] = "SET_FEATURES",
        [3] = "SET_OWNER",
        [4] = "RESET_OWNER",
        [5] = "SET_MEM_TABLE",
        [6] = "SET_LOG_BASE",
        [7] = "SET_LOG_FD",
        [8] = "SET_VRING_NUM",
        [9] = "SET_VRING_ADDR",
        [10] = "SET_VRING_BASE",
        [11] = "GET_VRING_BASE",
        [12] = "SET_VRING_KICK",
        [13] = "SET_VRING_CALL",
        [14] = "SET_VRING_ERR",
        [15] = "GET_PROTOCOL_FEATURES",
        [16] = "SET_PROTOCOL_FEATURES",
        [17] = "GET_QUEUE_NUM",
        [18] = "SET_VRING_ENABLE",
        [19] = "SEND_RARP",
        [20] = "NET_SET_MTU",
        [21] = "SET_BACKEND_REQ_FD",
        [22] = "IOTLB_MSG",
        [23] = "SET_VRING_ENDIAN",
        [24] = "GET_CONFIG",
        [25] = "SET_CONFIG",
        [26] = "CREATE_CRYPTO_SESSION",
        [27] = "CLOSE_CRYPTO_SESSION",
        [28] = "POSTCOPY_ADVISE",
        [29] = "POSTCOPY_LISTEN",
        [30] = "POSTCOPY_END",
        [31] = "GET_INFLIGHT_FD",
        [32] = "SET_INFLIGHT_FD",
        [33] = "GPU_SET_SOCKET",
        [34] = "RESET_DEVICE",
        [35] = "VRING_KICK",
        [36] = "GET_MAX_MEM_SLOTS",
        [37] = "ADD_MEM_REG",
        [38] = "REM_MEM_REG",
        [39] = "SET_STATUS",
        [40] = "GET_STATUS",
        [41] = "GET_SHARED_OBJECT",
        [42] = "SET_DEVICE_STATE_FD",
        [43] = "CHECK_DEVICE_STATE",
    };
    if (request < sizeof(names) / sizeof(names[0]) && names[request]) return names[request];
    return "UNKNOWN";
}

/*
 * Decides and applies the only two rewrites the relay does, in place on `payload`.
 *
 * GET_FEATURES reply (backend -> frontend, reply flag set, 8-byte payload): OR in
 * st->add_features, and remember what the backend really offered.
 *
 * SET_FEATURES (frontend -> backend, 8-byte payload): clear the added bits that the backend
 * did not offer itself. The backend would reject them: rust-vmm vhost-user-backend
 * (crate vhost-user-backend, src/handler.rs, VhostUserHandler::set_features) starts with
 *     if (features & !self.backend.features()) != 0 { return Err(VhostUserError::InvalidParam); }
 * and vhost/src/vhost_user/backend_req_handler.rs (BackendReqHandler::handle_request,
 * FrontendReq::SET_FEATURES) returns that error from handle_request() through
 * send_ack_message(), which ends VhostUserDaemon's request loop (vhost-user-backend
 * src/lib.rs, start_daemon: `handler.handle_request().map_err(Error::HandleRequest)?`):
 * virtiofsd would stop serving the device the moment the guest acks ACCESS_PLATFORM.
 * Checked against virtiofsd 1.13.2: SET_FEATURES with bit 33 makes it exit with
 * "Waiting for daemon failed: HandleRequest(InvalidParam)".
 * With the bit cleared the backend acks exactly what it offered, which is true: it works
 * on guest-physical addresses, as there is no vIOMMU translating for it.
 * QEMU itself already drops VIRTIO_F_IOMMU_PLATFORM from SET_FEATURES when the device has no
 * vIOMMU (hw/virtio/vhost.c, vhost_dev_set_features: `if (!vhost_dev_has_iommu(dev))
 * features &= ~(0x1ULL << VIRTIO_F_IOMMU_PLATFORM);`), so with QEMU 10 this rewrite is a
 * safety net (other frontends, other added bits), and its log line says "unchanged".
 */
struct vu_rewrite_result vu_rewrite(struct relay_state *st, enum vu_dir dir,
                                    const struct vu_hdr *h, uint8_t *payload)
{
    struct vu_rewrite_result r = {VU_REWRITE_NONE, 0, 0};

    if (h->size != 8) return r;
    if (dir == VU_BACK_TO_FRONT && h->request == VU_GET_FEATURES && (h->flags & VU_FLAG_REPLY)) {
        r.kind = VU_REWRITE_GET_FEATURES_REPLY;
        r.before = get_le64(payload);
        st->backend_features = r.before;
        st->backend_features_known = 1;
        r.after = r.before | st->add_features;
    } else if (dir == VU_FRONT_TO_BACK && h->request == VU_SET_FEATURES &&
               !(h->flags & VU_FLAG_REPLY)) {
        uint64_t offered = st->backend_features_known ? st->backend_features : 0;
        r.kind = VU_REWRITE_SET_FEATURES;
        r.before = get_le64(payload);
        r.after = r.before & ~(st->add_features & ~offered);
    } else {
        return r;
    }
    put_le64(payload, r.after);
    return r;
}

/* ---- logging -------------------------------------------------------------------------------- */

static void log_line(struct relay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(struct relay *r, const char *fmt, ...)
{
    if (!r->log) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double t = (double)(now.tv_sec - r->t0.tv_sec) + (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
    va_list ap;
    va_start(ap, fmt);
    fprintf(r->log, "[%10.6f] ", t);
    vfprintf(r->log, fmt, ap);
    fputc('\n', r->log);
    fflush(r->log);
    va_end(ap);
}

static void die_msg(struct relay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die_msg(struct relay *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vhost-user-relay: %s\n", buf);
    if (r) log_line(r, "error: %s", buf);
}

/* ---- socket I/O ------------------------------------------------------------------------------ */

static void close_fds(int *fds, int *nfds)
{
    for (int i = 0; i < *nfds; i++) close(fds[i]);
    *nfds = 0;
}

/*
 * One recvmsg() that also collects SCM_RIGHTS fds into fds[*nfds..]. Returns bytes read,
 * 0 on EOF, -1 with errno set on error (EMSGSIZE: more fds than VU_MAX_FDS, some lost).
 * Retries EINTR unless a stop signal arrived.
 */
static ssize_t recv_some(int fd, uint8_t *buf, size_t len, int *fds, int *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = {buf, len};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl.buf;
    mh.msg_controllen = sizeof(ctrl.buf);

    ssize_t n;
    for (;;) {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n >= 0) break;
        if (errno == EINTR && !stop_signal) continue;
        return -1;
    }
    int overflow = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const uint8_t *data = CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, data + i * sizeof(int), sizeof(int));
            if (*nfds < VU_MAX_FDS)
                fds[(*nfds)++] = got;
            else {
                close(got);
                overflow = 1;
            }
        }
    }
    if (overflow || (mh.msg_flags & MSG_CTRUNC)) {
        errno = EMSGSIZE; /* the kernel closed the fds that did not fit: forwarding would lie */
        return -1;
    }
    return n;
}

/* A message's deadline. Armed by its first byte, so a peer that is idle between messages
 * (QEMU while the guest runs) never times out, while one that stops mid-message does. */
struct msg_clock {
    long timeout_ms; /* 0: no deadline */
    int armed;
    struct timespec deadline;
};

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void clock_arm(struct msg_clock *c)
{
    clock_gettime(CLOCK_MONOTONIC, &c->deadline);
    c->deadline.tv_sec += c->timeout_ms / 1000;
    c->deadline.tv_nsec += (c->timeout_ms % 1000) * 1000000;
    if (c->deadline.tv_nsec >= 1000000000) {
        c->deadline.tv_sec++;
        c->deadline.tv_nsec -= 1000000000;
    }
    c->armed = c->timeout_ms > 0;
}

/* Returns 1 when fd has something to read (data, EOF or an error), 0 when the message's
 * deadline passed first, -1 on a stop signal or a poll error (errno set). */
static int wait_readable(int fd, const struct msg_clock *c)
{
    if (!c->armed) return 1;
    for (;;) {
        long left = -ms_since(&c->deadline);
        if (left <= 0) return 0;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0) return 1;
        if (n < 0 && (errno != EINTR || stop_signal)) return -1;
    }
}

enum recv_status { RECV_OK, RECV_EOF, RECV_ERROR, RECV_TIMEOUT };

/* Reads exactly len bytes (collecting fds) within the message's deadline; *got counts what
 * arrived, so an early end can say how far the message came. errno is set on RECV_ERROR. */
static enum recv_status recv_full(int fd, uint8_t *buf, size_t len, int *fds, int *nfds,
                                  struct msg_clock *c, size_t *got)
{
    for (size_t done = 0; done < len;) {
        int w = wait_readable(fd, c);
        if (w == 0) return RECV_TIMEOUT;
        if (w < 0) return RECV_ERROR;
        ssize_t n = recv_some(fd, buf + done, len - done, fds, nfds);
        if (n < 0) return RECV_ERROR;
        if (n == 0) return RECV_EOF;
        if (!c->armed && c->timeout_ms > 0) clock_arm(c);
        done += (size_t)n;
        *got += (size_t)n;
    }
    return RECV_OK;
}

enum io_result { IO_OK = 1, IO_CLOSED = 0, IO_ERROR = -1 };

static int is_disconnect(int e)
{
    return e == ECONNRESET || e == EPIPE || e == ENOTCONN;
}

/* The close reason of a message that ended early (see the header comment for the list).
 * `where` is "mid-header" or "in the middle of REQUEST". */
static void describe_early_end(char *err, size_t errlen, const char *side, const char *where,
                               enum recv_status s, int e, size_t got, size_t want, long timeout_ms)
{
    if (s == RECV_TIMEOUT)
        snprintf(err, errlen, "%s stalled %s: %zu of %zu bytes in %ld ms since its first byte", side,
                 where, got, want, timeout_ms);
    else if (s == RECV_EOF)
        snprintf(err, errlen, "%s closed the connection %s after %zu of %zu bytes", side, where, got, want);
    else if (is_disconnect(e))
        snprintf(err, errlen, "%s reset the connection %s after %zu of %zu bytes", side, where, got, want);
    else if (e == EMSGSIZE)
        snprintf(err, errlen, "%s sent more than %d fds %s (MSG_CTRUNC): not a vhost-user peer", side,
                 VU_MAX_FDS, where);
    else
        snprintf(err, errlen, "recvmsg from the %s %s after %zu of %zu bytes: %s", side, where, got, want,
                 strerror(e));
}

/* Reads one whole message with its fds. IO_CLOSED only when the peer left at a message
 * boundary; anything else that ends a message early is IO_ERROR with a reason in err. */
enum io_result vu_recv_msg(int fd, struct vu_msg *m, long timeout_ms, const char *side, char *err,
                           size_t errlen)
{
    uint8_t raw[VU_HDR_SIZE];
    struct msg_clock clk = {timeout_ms, 0, {0, 0}};
    size_t got = 0;
    m->nfds = 0;
    enum recv_status s = recv_full(fd, raw, VU_HDR_SIZE, m->fds, &m->nfds, &clk, &got);
    int e = errno;
    if (s != RECV_OK) {
        /* A reset with nothing pending is how a killed QEMU leaves: a close, not an error. */
        if (got == 0 && m->nfds == 0 && (s == RECV_EOF || (s == RECV_ERROR && is_disconnect(e))))
            return IO_CLOSED;
        describe_early_end(err, errlen, side, "mid-header", s, e, got, VU_HDR_SIZE, timeout_ms);
        close_fds(m->fds, &m->nfds);
        return IO_ERROR;
    }
    vu_parse_header(raw, &m->hdr);
    const char *bad = vu_check_header(&m->hdr);
    if (bad) {
        snprintf(err, errlen, "%s sent a bad header: %s (request %" PRIu32 ", flags 0x%" PRIx32 ", size %" PRIu32 ")",
                 side, bad, m->hdr.request, m->hdr.flags, m->hdr.size);
        close_fds(m->fds, &m->nfds);
        return IO_ERROR;
    }
    s = recv_full(fd, m->payload, m->hdr.size, m->fds, &m->nfds, &clk, &got);
    if (s != RECV_OK) {
        e = errno;
        char where[64];
        snprintf(where, sizeof(where), "in the middle of %s", vu_request_name(m->hdr.request));
        describe_early_end(err, errlen, side, where, s, e, got, VU_HDR_SIZE + m->hdr.size, timeout_ms);
        close_fds(m->fds, &m->nfds);
        return IO_ERROR;
    }
    return IO_OK;
}

/* Writes one whole message; its fds travel with the first byte. IO_CLOSED if the peer is gone.
 * The socket's SO_SNDTIMEO (the message timeout) turns a peer that stopped reading into an
 * error instead of a relay blocked in sendmsg() for both directions. */
enum io_result vu_send_msg(int fd, const struct vu_msg *m, const char *side, char *err, size_t errlen)
{
    uint8_t raw[VU_HDR_SIZE];
    vu_encode_header(&m->hdr, raw);
    union {
        char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
    size_t total = VU_HDR_SIZE + m->hdr.size, sent = 0;
    int fds_pending = m->nfds > 0;

    while (sent < total) {
        struct iovec iov[2];
        int niov = 0;
        if (sent < VU_HDR_SIZE) {
            iov[niov].iov_base = raw + sent;
            iov[niov++].iov_len = VU_HDR_SIZE - sent;
            if (m->hdr.size > 0) {
                iov[niov].iov_base = (void *)m->payload;
                iov[niov++].iov_len = m->hdr.size;
            }
        } else {
            iov[niov].iov_base = (void *)(m->payload + (sent - VU_HDR_SIZE));
            iov[niov++].iov_len = total - sent;
        }
        struct msghdr mh = {0};
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)niov;
        if (fds_pending) {
            memset(&ctrl, 0, sizeof(ctrl));
            mh.msg_control = ctrl.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m->nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m->nfds);
            memcpy(CMSG_DATA(c), m->fds, sizeof(int) * (size_t)m->nfds);
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR && !stop_signal) continue;
            if (is_disconnect(errno)) return IO_CLOSED;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(err, errlen, "%s stopped reading: %zu of %zu bytes of %s sent", side, sent, total,
                         vu_request_name(m->hdr.request));
            else
                snprintf(err, errlen, "sendmsg to the %s: %s", side, strerror(errno));
            return IO_ERROR;
        }
        if (n > 0) fds_pending = 0;
        sent += (size_t)n;
    }
    return IO_OK;
}

static const char *dir_name(enum vu_dir dir)
{
    return dir == VU_FRONT_TO_BACK ? "front->back" : "back->front";
}

/*
 * Relays one message from r->fd[dir] to the other socket. Returns IO_OK, IO_CLOSED when
 * either side has closed (at a message boundary), IO_ERROR after printing why.
 */
static enum io_result relay_one(struct relay *r, enum vu_dir dir)
{
    struct vu_msg *m = &r->msg;
    int from = r->fd[dir], to = r->fd[dir == VU_FRONT_TO_BACK ? VU_BACK_TO_FRONT : VU_FRONT_TO_BACK];
    const char *src = dir == VU_FRONT_TO_BACK ? "frontend" : "backend";
    const char *dst = dir == VU_FRONT_TO_BACK ? "backend" : "frontend";
    char err[256];

    enum io_result res = vu_recv_msg(from, m, r->message_timeout_ms, src, err, sizeof(err));
    if (res == IO_CLOSED) {
        log_line(r, "%s closed the connection", src);
        return IO_CLOSED;
    }
    if (res == IO_ERROR) {
        die_msg(r, "%s", err);
        return IO_ERROR;
    }
    r->count[dir]++;

    struct vu_rewrite_result rw = vu_rewrite(&r->st, dir, &m->hdr, m->payload);
    char extra[200] = "";
    if (rw.kind == VU_REWRITE_GET_FEATURES_REPLY) {
        snprintf(extra, sizeof(extra), " features 0x%" PRIx64 " -> 0x%" PRIx64 " (%s 0x%" PRIx64 ")",
                 rw.before, rw.after, rw.after == rw.before ? "already offered" : "added",
                 rw.after == rw.before ? r->st.add_features : rw.after & ~rw.before);
    } else if (rw.kind == VU_REWRITE_SET_FEATURES) {
        if (rw.after == rw.before)
            snprintf(extra, sizeof(extra), " features 0x%" PRIx64 " -> 0x%" PRIx64 " (unchanged)",
                     rw.before, rw.after);
        else
            snprintf(extra, sizeof(extra),
                     " features 0x%" PRIx64 " -> 0x%" PRIx64
                     " (cleared 0x%" PRIx64 ": not offered by the backend)",
                     rw.before, rw.after, rw.before & ~rw.after);
    }
    log_line(r, "%s %s(%" PRIu32 ") flags=0x%" PRIx32 " size=%" PRIu32 " fds=%d%s", dir_name(dir),
             vu_request_name(m->hdr.request), m->hdr.request, m->hdr.flags, m->hdr.size, m->nfds,
             extra);
    if (dir == VU_FRONT_TO_BACK && m->hdr.request == VU_IOTLB_MSG) {
        log_line(r, "warning: IOTLB_MSG means a vIOMMU translates for this device; the backend "
                    "works on guest-physical addresses and will not understand it");
    }

    res = vu_send_msg(to, m, dst, err, sizeof(err));
    close_fds(m->fds, &m->nfds); /* our copies; the receiver has its own now */
    if (res == IO_CLOSED) {
        log_line(r, "%s closed the connection (while forwarding %s)", dst,
                 vu_request_name(m->hdr.request));
        return IO_CLOSED;
    }
    if (res == IO_ERROR) {
        die_msg(r, "%s", err);
        return IO_ERROR;
    }
    return IO_OK;
}

/* Relays until either side closes. Returns an exit status. */
static int relay_loop(struct relay *r)
{
    struct pollfd p[2] = {{r->fd[0], POLLIN, 0}, {r->fd[1], POLLIN, 0}};
    for (;;) {
        int n = poll(p, 2, -1);
        if (stop_signal) return 128 + stop_signal;
        if (n < 0) {
            if (errno == EINTR) continue;
            die_msg(r, "poll: %s", strerror(errno));
            return EXIT_ERROR;
        }
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) continue;
            if (p[i].revents & POLLNVAL) {
                die_msg(r, "poll: invalid descriptor");
                return EXIT_ERROR;
            }
            enum io_result res = relay_one(r, (enum vu_dir)i);
            if (res == IO_CLOSED) return 0;
            if (res == IO_ERROR) return EXIT_ERROR;
        }
    }
}

/* ---- setup ------------------------------------------------------------------------------------ */

static int fill_sockaddr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(a->sun_path, path);
    return 0;
}

/* Whether a process accepts connections on the socket file at `a` (another relay, a QEMU
 * with server=on): replacing its file would silently cut it off from new clients. */
static int socket_is_live(const struct sockaddr_un *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return 0;
    /* EAGAIN: a listener whose backlog is full, alive all the same. */
    int live = connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0 || errno == EAGAIN;
    close(fd);
    return live;
}

/* Returns 0 when `path` is free or a stale socket (now removed), else EXIT_USAGE after saying
 * why: the relay replaces only its own kind of leftover, never a file someone else owns. */
static int clear_listen_path(struct relay *r, const char *path, const struct sockaddr_un *a)
{
    struct stat sb;
    if (lstat(path, &sb) < 0) {
        if (errno == ENOENT) return 0;
        die_msg(r, "--listen %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    const char *kind = S_ISREG(sb.st_mode)   ? "a regular file"
                       : S_ISDIR(sb.st_mode) ? "a directory"
                       : S_ISLNK(sb.st_mode) ? "a symbolic link"
                       : S_ISSOCK(sb.st_mode) ? NULL
                                              : "not a socket";
    if (kind) {
        die_msg(r, "--listen %s exists and is %s; refusing to replace it", path, kind);
        return EXIT_USAGE;
    }
    if (socket_is_live(a)) {
        die_msg(r, "--listen %s is a socket another process listens on; refusing to replace it", path);
        return EXIT_USAGE;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        die_msg(r, "removing the stale socket %s: %s", path, strerror(errno));
        return EXIT_ERROR;
    }
    log_line(r, "replaced a stale socket at %s", path);
    return 0;
}

/*
 * Binds and listens on `path`. Bound directly (not under a temporary name renamed into
 * place) because /proc/net/unix keeps the name given to bind(): waiters that look for
 * `path` there with the listening flag (vmrig's waitForListeningSocket) must find it.
 * The file exists a few microseconds before listen(); the stdout line comes after it.
 * Returns the socket, or -EXIT_USAGE / -EXIT_ERROR. *own is the file it created.
 */
static int make_listener(struct relay *r, const char *path, struct stat *own)
{
    struct sockaddr_un a;
    if (fill_sockaddr(&a, path) < 0) {
        die_msg(r, "socket path too long for a UNIX socket (max %zu bytes): %s",
                sizeof(a.sun_path) - 1, path);
        return -EXIT_USAGE;
    }
    int bad = clear_listen_path(r, path, &a);
    if (bad) return -bad;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die_msg(r, "socket: %s", strerror(errno));
        return -EXIT_ERROR;
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        die_msg(r, "bind %s: %s", path, strerror(errno));
        close(fd);
        return -EXIT_ERROR;
    }
    if (lstat(path, own) < 0 || listen(fd, 4) < 0) {
        die_msg(r, "listen on %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return -EXIT_ERROR;
    }
    return fd;
}

/* Unlinks the listening socket's file unless someone has put another file there since. */
static void unlink_own(const char *path, const struct stat *own)
{
    struct stat sb;
    if (lstat(path, &sb) == 0 && sb.st_dev == own->st_dev && sb.st_ino == own->st_ino) unlink(path);
}

/* Connections accepted but silent so far. Several may wait: the first to send a byte is the
 * frontend, so a silent client (a probe, a stray connect) never blocks the real QEMU. */
struct pending {
    int n;
    int fd[VU_MAX_PENDING];
    struct timespec since[VU_MAX_PENDING];
};

static void pending_drop(struct relay *r, struct pending *p, int i, const char *why)
{
    log_line(r, "dropped a connection that %s", why);
    close(p->fd[i]);
    p->n--;
    memmove(&p->fd[i], &p->fd[i + 1], sizeof(p->fd[0]) * (size_t)(p->n - i));
    memmove(&p->since[i], &p->since[i + 1], sizeof(p->since[0]) * (size_t)(p->n - i));
}

static void pending_add(struct relay *r, struct pending *p, int fd)
{
    if (p->n == VU_MAX_PENDING) pending_drop(r, p, 0, "stayed silent while others connected");
    p->fd[p->n] = fd;
    clock_gettime(CLOCK_MONOTONIC, &p->since[p->n]);
    p->n++;
}

/* Drops clients silent for silent_ms (0: never); returns the poll timeout until the next is due. */
static int pending_expire(struct relay *r, struct pending *p, long silent_ms)
{
    long next = -1;
    if (silent_ms == 0) return -1;
    for (int i = p->n - 1; i >= 0; i--) {
        long left = silent_ms - ms_since(&p->since[i]);
        if (left <= 0)
            pending_drop(r, p, i, "sent nothing within --silent-timeout");
        else if (next < 0 || left < next)
            next = left;
    }
    return (int)next;
}

/* Looks at a pending client poll() woke for: returns 1 if it has sent data (the frontend),
 * 0 after dropping it (closed or reset before its first byte: a readiness probe). */
static int pending_check(struct relay *r, struct pending *p, int i)
{
    char c;
    ssize_t got;
    while ((got = recv(p->fd[i], &c, 1, MSG_PEEK | MSG_DONTWAIT)) < 0 && errno == EINTR && !stop_signal) {
    }
    if (got > 0) return 1;
    if (got < 0 && errno == EAGAIN) return 0;
    pending_drop(r, p, i, "closed before sending anything (readiness probe?)");
    return 0;
}

/* Among the pending clients poll() woke for, drops those that closed and returns the oldest
 * that has sent data (closing the others), or -1: oldest, because QEMU connects first. */
static int pending_pick(struct relay *r, struct pending *p, const struct pollfd *woke, int n)
{
    int ready[VU_MAX_PENDING], nready = 0;
    for (int i = p->n - 1; n > 0 && i >= 0; i--) /* downwards: a drop shifts only checked ones */
        if (woke[i].revents && pending_check(r, p, i)) ready[nready++] = p->fd[i];
    for (int i = 0; nready > 0 && i < p->n; i++) {
        int j = 0;
        while (j < nready && ready[j] != p->fd[i]) j++;
        if (j == nready) continue;
        int fd = p->fd[i];
        log_line(r, "frontend connected (first byte %ld ms after it connected)", ms_since(&p->since[i]));
        for (int k = 0; k < p->n; k++)
            if (k != i) close(p->fd[k]);
        return fd;
    }
    return -1;
}

/* Accepts until one client sends its first byte; returns it (-1 on a signal or an error). */
static int accept_frontend(struct relay *r, int lfd, long silent_ms)
{
    struct pending p = {0};
    for (;;) {
        struct pollfd fds[1 + VU_MAX_PENDING];
        int timeout = pending_expire(r, &p, silent_ms);
        fds[0] = (struct pollfd){lfd, POLLIN, 0};
        for (int i = 0; i < p.n; i++) fds[1 + i] = (struct pollfd){p.fd[i], POLLIN, 0};
        int n = poll(fds, (nfds_t)(1 + p.n), timeout);
        if (stop_signal || (n < 0 && errno != EINTR)) {
            if (!stop_signal) die_msg(r, "poll: %s", strerror(errno));
            while (p.n) pending_drop(r, &p, p.n - 1, "was waiting when the relay stopped");
            return -1;
        }
        int frontend = pending_pick(r, &p, fds + 1, n);
        if (frontend >= 0) return frontend;
        if (n > 0 && (fds[0].revents & POLLIN)) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                pending_add(r, &p, fd);
            } else if (errno != EINTR && errno != ECONNABORTED) {
                /* EMFILE and the like would repeat at once: poll() keeps saying readable. */
                die_msg(r, "accept: %s", strerror(errno));
                while (p.n) pending_drop(r, &p, p.n - 1, "was waiting when the relay stopped");
                return -1;
            }
        }
    }
}

static int connect_backend(struct relay *r, const char *path, long timeout_ms)
{
    struct sockaddr_un a;
    if (fill_sockaddr(&a, path) < 0) {
        die_msg(r, "backend socket path too long (max %zu bytes): %s", sizeof(a.sun_path) - 1, path);
        return -1;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            die_msg(r, "socket: %s", strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            log_line(r, "connected to backend %s", path);
            return fd;
        }
        int e = errno;
        close(fd);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (stop_signal) return -1;
        if ((e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EINTR) && elapsed < timeout_ms) {
            struct timespec d = {0, 50 * 1000 * 1000};
            nanosleep(&d, NULL);
            continue;
        }
        die_msg(r, "connect to backend %s: %s (after %ld ms)", path, strerror(e), elapsed);
        return -1;
    }
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int self_test(void);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vhost-user-relay --listen FRONT_SOCK --connect BACKEND_SOCK\n"
            "                        [--add-features MASK] [--log FILE] [--connect-timeout MS]\n"
            "                        [--message-timeout MS] [--silent-timeout MS]\n"
            "       vhost-user-relay --self-test\n"
            "Relays one vhost-user connection from FRONT_SOCK (QEMU connects there) to\n"
            "BACKEND_SOCK, adding MASK (default 0x%" PRIx64 ", VIRTIO_F_ACCESS_PLATFORM) to\n"
            "the backend's GET_FEATURES reply.\n",
            (uint64_t)1 << VIRTIO_F_ACCESS_PLATFORM);
}

struct options {
    const char *listen_path, *connect_path, *log_path;
    uint64_t add;
    long connect_timeout_ms, message_timeout_ms, silent_timeout_ms;
};

/* A number of milliseconds, at most a day (poll() takes an int). */
static int parse_ms(const char *arg, const char *name, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || *end || !*arg || v < 0 || v > 86400000L) {
        fprintf(stderr, "vhost-user-relay: %s: not a number of ms (0..86400000): %s\n", name, arg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns -1 to go on, else the exit status (usage errors, --help, --self-test). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},          {"connect", required_argument, NULL, 'c'},
        {"add-features", required_argument, NULL, 'a'},    {"log", required_argument, NULL, 'L'},
        {"connect-timeout", required_argument, NULL, 't'}, {"message-timeout", required_argument, NULL, 'm'},
        {"silent-timeout", required_argument, NULL, 's'},  {"self-test", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},                  {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen_path = optarg; break;
        case 'c': o->connect_path = optarg; break;
        case 'L': o->log_path = optarg; break;
        case 'a':
            errno = 0;
            o->add = strtoull(optarg, &end, 0);
            if (errno || *end || !*optarg || optarg[0] == '-') {
                fprintf(stderr, "vhost-user-relay: --add-features: not a number: %s\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't': if (parse_ms(optarg, "--connect-timeout", &o->connect_timeout_ms)) return EXIT_USAGE; break;
        case 'm': if (parse_ms(optarg, "--message-timeout", &o->message_timeout_ms)) return EXIT_USAGE; break;
        case 's': if (parse_ms(optarg, "--silent-timeout", &o->silent_timeout_ms)) return EXIT_USAGE; break;
        case 'T': return self_test();
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc || !o->listen_path || !o->connect_path) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* A peer that stops reading makes sendmsg() fail with EAGAIN instead of blocking forever. */
static void set_send_timeout(int fd, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (ms > 0) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Accepts the frontend, connects the backend and relays. Returns the exit status. */
static int serve(struct relay *r, const struct options *o)
{
    struct stat own;
    int lfd = make_listener(r, o->listen_path, &own);
    if (lfd < 0) return -lfd;
    printf("vhost-user-relay: listening on %s\n", o->listen_path);
    fflush(stdout);

    r->fd[VU_FRONT_TO_BACK] = accept_frontend(r, lfd, o->silent_timeout_ms);
    close(lfd);
    unlink_own(o->listen_path, &own);
    if (r->fd[VU_FRONT_TO_BACK] < 0) return EXIT_ERROR;
    r->fd[VU_BACK_TO_FRONT] = connect_backend(r, o->connect_path, o->connect_timeout_ms);
    if (r->fd[VU_BACK_TO_FRONT] < 0) return EXIT_ERROR;
    for (int i = 0; i < 2; i++) set_send_timeout(r->fd[i], r->message_timeout_ms);
    return relay_loop(r);
}

int main(int argc, char **argv)
{
    struct options o = {NULL, NULL, NULL, (uint64_t)1 << VIRTIO_F_ACCESS_PLATFORM, 5000,
                        VU_MESSAGE_TIMEOUT_MS, VU_SILENT_TIMEOUT_MS};
    int done = parse_options(argc, argv, &o);
    if (done >= 0) return done;

    static struct relay r; /* static: the message buffer is 64 KiB */
    r.fd[0] = r.fd[1] = -1;
    r.st.add_features = o.add;
    r.message_timeout_ms = o.message_timeout_ms;
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    if (o.log_path) {
        r.log = fopen(o.log_path, "a");
        if (!r.log) {
            fprintf(stderr, "vhost-user-relay: cannot open log %s: %s\n", o.log_path, strerror(errno));
            return EXIT_USAGE;
        }
    }
    install_signals();
    /* Die with the parent unless a launcher (e.g. setpriv --pdeathsig KILL) chose already. */
    int pdeathsig = 0;
    if (prctl(PR_GET_PDEATHSIG, &pdeathsig) == 0 && pdeathsig == 0) {
        pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) return 128 + SIGTERM; /* parent already gone */
    }

    log_line(&r, "relay pid %ld: listen %s, backend %s, add features 0x%" PRIx64, (long)getpid(),
             o.listen_path, o.connect_path, o.add);
    int status = serve(&r, &o);
    if (stop_signal) {
        status = 128 + stop_signal;
        log_line(&r, "stopped by signal %d", (int)stop_signal);
    }
    for (int i = 0; i < 2; i++)
        if (r.fd[i] >= 0) close(r.fd[i]);
    log_line(&r, "exit %d (%lu messages front->back, %lu back->front)", status,
             r.count[VU_FRONT_TO_BACK], r.count[VU_BACK_TO_FRONT]);
    if (r.log) fclose(r.log);
    return status;
}

/* ---- --self-test: the message core and fd forwarding over socketpairs ------------------------ */

static int st_checks, st_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        st_checks++;                                                                 \
        if (!(cond)) {                                                               \
            st_failures++;                                                           \
            fprintf(stderr, "self-test: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

static void st_header(void)
{
    uint8_t raw[VU_HDR_SIZE] = {5, 0, 0, 0, 9, 0, 0, 0, 0x08, 0x01, 0, 0};
    struct vu_hdr h;
    vu_parse_header(raw, &h);
    CHECK(h.request == 5 && h.flags == 9 && h.size == 0x108);
    uint8_t back[VU_HDR_SIZE];
    vu_encode_header(&h, back);
    CHECK(memcmp(raw, back, VU_HDR_SIZE) == 0);
    CHECK(vu_check_header(&h) == NULL);
    h.flags = 0x6;
    CHECK(vu_check_header(&h) != NULL);
    h.flags = 0x1;
    h.size = VU_MAX_PAYLOAD + 1;
    CHECK(vu_check_header(&h) != NULL);
    CHECK(strcmp(vu_request_name(1), "GET_FEATURES") == 0);
    CHECK(strcmp(vu_request_name(21), "SET_BACKEND_REQ_FD") == 0);
    CHECK(strcmp(vu_request_name(43), "CHECK_DEVICE_STATE") == 0);
    CHECK(strcmp(vu_request_name(44), "UNKNOWN") == 0);
    CHECK(strcmp(vu_request_name(0xffffffffu), "UNKNOWN") == 0);
}

static void st_rewrite(void)
{
    const uint64_t bit33 = (uint64_t)1 << 33, offered = 0x140000003ull;
    struct relay_state st = {bit33, 0, 0};
    uint8_t p[8];
    struct vu_hdr reply = {VU_GET_FEATURES, VU_VERSION | VU_FLAG_REPLY, 8};
    struct vu_hdr set = {VU_SET_FEATURES, VU_VERSION, 8};

    /* SET_FEATURES before any GET_FEATURES reply: every added bit is cleared. */
    put_le64(p, offered | bit33);
    struct vu_rewrite_result r = vu_rewrite(&st, VU_FRONT_TO_BACK, &set, p);
    CHECK(r.kind == VU_REWRITE_SET_FEATURES && get_le64(p) == offered);

    put_le64(p, offered);
    r = vu_rewrite(&st, VU_BACK_TO_FRONT, &reply, p);
    CHECK(r.kind == VU_REWRITE_GET_FEATURES_REPLY);
    CHECK(r.before == offered && r.after == (offered | bit33) && get_le64(p) == (offered | bit33));
    CHECK(st.backend_features_known && st.backend_features == offered);

    put_le64(p, offered | bit33);
    r = vu_rewrite(&st, VU_FRONT_TO_BACK, &set, p);
    CHECK(r.kind == VU_REWRITE_SET_FEATURES && r.after == offered && get_le64(p) == offered);

    /* A backend that offers the bit itself gets it acked. */
    put_le64(p, offered | bit33);
    vu_rewrite(&st, VU_BACK_TO_FRONT, &reply, p);
    put_le64(p, offered | bit33);
    r = vu_rewrite(&st, VU_FRONT_TO_BACK, &set, p);
    CHECK(r.after == (offered | bit33) && get_le64(p) == (offered | bit33));

    /* Not rewritten: the request itself, the wrong direction, odd sizes, other requests. */
    struct vu_hdr get_req = {VU_GET_FEATURES, VU_VERSION, 0};
    CHECK(vu_rewrite(&st, VU_FRONT_TO_BACK, &get_req, p).kind == VU_REWRITE_NONE);
    put_le64(p, offered);
    CHECK(vu_rewrite(&st, VU_FRONT_TO_BACK, &reply, p).kind == VU_REWRITE_NONE);
    CHECK(vu_rewrite(&st, VU_BACK_TO_FRONT, &set, p).kind == VU_REWRITE_NONE);
    struct vu_hdr odd = {VU_GET_FEATURES, VU_VERSION | VU_FLAG_REPLY, 4};
    CHECK(vu_rewrite(&st, VU_BACK_TO_FRONT, &odd, p).kind == VU_REWRITE_NONE);
    struct vu_hdr proto = {15, VU_VERSION | VU_FLAG_REPLY, 8};
    CHECK(vu_rewrite(&st, VU_BACK_TO_FRONT, &proto, p).kind == VU_REWRITE_NONE);
    CHECK(get_le64(p) == offered);
}

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Writes `raw` (header+payload) to fd in pieces of at most `chunk` bytes, attaching fds to the
 * piece that starts at byte offset `fd_at`, pausing between pieces: forces partial reads. */
static void st_send_pieces(int fd, const uint8_t *raw, size_t len, size_t chunk, const int *fds,
                           int nfds, size_t fd_at)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < chunk ? len - off : chunk;
        struct iovec iov = {(void *)(raw + off), n};
        union {
            char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
            struct cmsghdr align;
        } ctrl;
        struct msghdr mh = {0};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (nfds > 0 && off == fd_at) {
            memset(&ctrl, 0, sizeof(ctrl));
            mh.msg_control = ctrl.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w <= 0) _exit(3);
        off += (size_t)w;
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
}

/* Sends a message with nfds fds and a payload through relay_one() and checks what arrives. */
static void st_forward(uint32_t request, uint32_t size, int nfds, size_t chunk, size_t fd_at)
{
    int front[2], back[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, front) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, back) < 0) {
        CHECK(!"socketpair");
        return;
    }
    static struct relay r;
    memset(&r, 0, sizeof(r));
    r.fd[VU_FRONT_TO_BACK] = front[1];
    r.fd[VU_BACK_TO_FRONT] = back[1];

    static uint8_t raw[VU_HDR_SIZE + VU_MAX_PAYLOAD];
    struct vu_hdr h = {request, VU_VERSION, size};
    vu_encode_header(&h, raw);
    for (uint32_t i = 0; i < size; i++) raw[VU_HDR_SIZE + i] = (uint8_t)(i * 7 + request);
    int fds[VU_MAX_FDS];
    for (int i = 0; i < nfds; i++) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);

    pid_t child = fork();
    if (child == 0) {
        close(front[1]);
        st_send_pieces(front[0], raw, VU_HDR_SIZE + size, chunk, fds, nfds, fd_at);
        _exit(0);
    }
    CHECK(relay_one(&r, VU_FRONT_TO_BACK) == IO_OK);
    static struct vu_msg got;
    char err[256];
    CHECK(vu_recv_msg(back[0], &got, 0, "backend", err, sizeof(err)) == IO_OK);
    CHECK(got.hdr.request == request && got.hdr.size == size && got.hdr.flags == VU_VERSION);
    CHECK(memcmp(got.payload, raw + VU_HDR_SIZE, size) == 0);
    CHECK(got.nfds == nfds);
    int all_same = got.nfds == nfds;
    for (int i = 0; i < nfds && i < got.nfds; i++) all_same &= same_file(fds[i], got.fds[i]);
    CHECK(all_same);
    close_fds(got.fds, &got.nfds);
    int wst = 0;
    waitpid(child, &wst, 0);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

    /* EOF at a boundary is a close; EOF inside a message is an error. */
    close(front[0]);
    CHECK(relay_one(&r, VU_FRONT_TO_BACK) == IO_CLOSED);
    for (int i = 0; i < nfds; i++) close(fds[i]);
    close(front[1]);
    close(back[0]);
    close(back[1]);
}

/* Reads one message from a socketpair end after `feed` has written to the other end. */
static enum io_result st_recv(int sp[2], long timeout_ms, char *err, size_t errlen)
{
    static struct vu_msg m;
    enum io_result res = vu_recv_msg(sp[1], &m, timeout_ms, "frontend", err, errlen);
    close_fds(m.fds, &m.nfds);
    return res;
}

static void st_truncated(void)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    uint8_t raw[VU_HDR_SIZE + 4];
    struct vu_hdr h = {8, VU_VERSION, 8};
    vu_encode_header(&h, raw);
    memset(raw + VU_HDR_SIZE, 0, 4);
    CHECK(write(sp[0], raw, sizeof(raw)) == (ssize_t)sizeof(raw));
    close(sp[0]);
    char err[256];
    CHECK(st_recv(sp, 0, err, sizeof(err)) == IO_ERROR);
    CHECK(strstr(err, "frontend closed the connection in the middle of SET_VRING_NUM after 16 of 20 bytes"));
    close(sp[1]);
}

/* A peer that closes with data unread in its own queue makes our next read fail with
 * ECONNRESET (unix_release_sock()): that is a reset, mid-header here, never a clean close. */
static void st_reset_mid_header(void)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    CHECK(write(sp[1], "unread", 6) == 6);
    CHECK(write(sp[0], "\x01\x00\x00\x00\x01", 5) == 5);
    close(sp[0]);
    char err[256];
    CHECK(st_recv(sp, 0, err, sizeof(err)) == IO_ERROR);
    CHECK(strstr(err, "frontend reset the connection mid-header after 5 of 12 bytes"));
    close(sp[1]);

    /* The same reset before any byte is how a killed QEMU leaves: a close. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    CHECK(write(sp[1], "unread", 6) == 6);
    close(sp[0]);
    CHECK(st_recv(sp, 0, err, sizeof(err)) == IO_CLOSED);
    close(sp[1]);
}

static void st_stalled(void)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    uint8_t raw[VU_HDR_SIZE + 3] = {8, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3};
    CHECK(write(sp[0], raw, sizeof(raw)) == (ssize_t)sizeof(raw));
    char err[256];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(st_recv(sp, 100, err, sizeof(err)) == IO_ERROR);
    long took = ms_since(&t0);
    CHECK(took >= 90 && took < 2000);
    CHECK(strstr(err, "frontend stalled in the middle of SET_VRING_NUM: 15 of 20 bytes in 100 ms"));
    close(sp[0]);
    close(sp[1]);
}

/* More fds than VU_MAX_FDS in one message: the kernel truncates them (MSG_CTRUNC). */
static void st_too_many_fds(void)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    enum { N = VU_MAX_FDS + 8 };
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    union {
        char buf[CMSG_SPACE(sizeof(int) * N)];
        struct cmsghdr align;
    } ctrl;
    memset(&ctrl, 0, sizeof(ctrl));
    uint8_t raw[VU_HDR_SIZE] = {5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    struct iovec iov = {raw, sizeof(raw)};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl.buf;
    mh.msg_controllen = sizeof(ctrl.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * N);
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    CHECK(sendmsg(sp[0], &mh, 0) == (ssize_t)sizeof(raw));
    char err[256];
    CHECK(st_recv(sp, 0, err, sizeof(err)) == IO_ERROR);
    CHECK(strstr(err, "frontend sent more than 32 fds mid-header (MSG_CTRUNC)"));
    for (int i = 0; i < N; i++) close(fds[i]);
    close(sp[0]);
    close(sp[1]);
}

/* A peer that takes nothing: sends fill its socket buffer, then SO_SNDTIMEO ends the wait. */
static void st_send_stalled(void)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) return;
    set_send_timeout(sp[0], 100);
    static struct vu_msg m;
    m.hdr = (struct vu_hdr){25, VU_VERSION, 60000};
    m.nfds = 0;
    char err[256] = "";
    enum io_result res = IO_OK;
    for (int i = 0; i < 100 && res == IO_OK; i++) res = vu_send_msg(sp[0], &m, "backend", err, sizeof(err));
    CHECK(res == IO_ERROR);
    CHECK(strstr(err, "backend stopped reading: ") && strstr(err, " bytes of SET_CONFIG sent"));
    close(sp[0]);
    close(sp[1]);
}

/* Random headers: the check accepts exactly version 1 with a payload of at most 64 KiB, and
 * parse/encode round-trip every byte. A seeded xorshift keeps failures reproducible. */
static void st_fuzz_header(void)
{
    uint64_t x = 0x2545f4914f6cdd1dull;
    int wrong = 0;
    for (int i = 0; i < 100000; i++) {
        uint8_t raw[VU_HDR_SIZE], back[VU_HDR_SIZE];
        for (unsigned j = 0; j < VU_HDR_SIZE; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            raw[j] = (uint8_t)x;
        }
        if (i & 1) raw[9] = raw[10] = raw[11] = 0, raw[4] = (raw[4] & ~3u) | 1; /* plausible ones too */
        struct vu_hdr h;
        vu_parse_header(raw, &h);
        vu_encode_header(&h, back);
        int valid = (raw[4] & 3) == 1 && get_le32(raw + 8) <= VU_MAX_PAYLOAD;
        wrong += memcmp(raw, back, VU_HDR_SIZE) != 0 || (vu_check_header(&h) == NULL) != valid;
        wrong += vu_request_name(h.request) == NULL;
    }
    CHECK(wrong == 0);
}

static int self_test(void)
{
    signal(SIGPIPE, SIG_IGN);
    st_header();
    st_rewrite();
    st_forward(8, 8, 0, 5, 0);                   /* SET_VRING_NUM, header split after 5 bytes */
    st_forward(5, 8 + 8 * 32, 8, 7, 0);          /* SET_MEM_TABLE shape: 8 regions, 8 fds */
    st_forward(37, 40, 1, 3, 3);                 /* ADD_MEM_REG: fd arrives with a later piece */
    st_forward(32, 24, 1, 4096, 0);              /* SET_INFLIGHT_FD */
    st_forward(25, 60000, 0, 16384, 0);          /* large payload in several pieces */
    st_truncated();
    st_reset_mid_header();
    st_stalled();
    st_too_many_fds();
    st_send_stalled();
    st_fuzz_header();
    if (st_failures) {
        fprintf(stderr, "self-test: %d of %d checks failed\n", st_failures, st_checks);
        return EXIT_ERROR;
    }
    printf("self-test ok (%d checks)\n", st_checks);
    return 0;
}
