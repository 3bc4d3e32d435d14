/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Migration sockets: non-blocking I/O waited for with poll() next to a cancel
 * eventfd, whole frames in and out, and the challenge-response handshake. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "migrate-io.h"
#include "util.h"

static int parse_tcp(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *msg, size_t msg_size)
{
        _cleanup_free_ char *host = NULL;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        const char *colon = strrchr(s, ':');
        unsigned port;
        size_t n;
        int r;

        if (!colon || parse_uint(colon + 1, &port) < 0 || port > 65535) {
                snprintf(msg, msg_size, "endpoint 'tcp:%s' needs HOST:PORT with a port of 0 to 65535", s);
                return -EINVAL;
        }
        n = (size_t) (colon - s);
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
                host = strndup(s + 1, n - 2);
        else
                host = strndup(s, n);
        if (!host)
                return -ENOMEM;
        r = getaddrinfo(host, colon + 1, &hints, &ai);
        if (r != 0 || !ai) {
                snprintf(msg, msg_size, "endpoint 'tcp:%s': cannot resolve '%s': %s", s, host, gai_strerror(r));
                return -EINVAL;
        }
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

int mig_endpoint_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *msg, size_t msg_size)
{
        struct sockaddr_un *un = (struct sockaddr_un *) ret;

        memset(ret, 0, sizeof(*ret));
        if (strncmp(s, "tcp:", 4) == 0)
                return parse_tcp(s + 4, ret, ret_len, msg, msg_size);
        if (strncmp(s, "unix:", 5) == 0) {
                if (s[5] != '/' || strlen(s + 5) >= sizeof(un->sun_path)) {
                        snprintf(msg, msg_size, "endpoint '%s' needs an absolute path shorter than %zu characters",
                                 s, sizeof(un->sun_path));
                        return -EINVAL;
                }
                un->sun_family = AF_UNIX;
                strcpy(un->sun_path, s + 5);
                *ret_len = sizeof(*un);
                return 0;
        }
        snprintf(msg, msg_size, "endpoint '%s' is neither tcp:HOST:PORT nor unix:PATH", s);
        return -EINVAL;
}

static int endpoint_name(int fd, const struct sockaddr_storage *sa, char **ret)
{
        struct sockaddr_storage bound;
        socklen_t len = sizeof(bound);
        char host[INET6_ADDRSTRLEN];

        if (sa->ss_family == AF_UNIX)
                return asprintf(ret, "unix:%s", ((const struct sockaddr_un *) sa)->sun_path) < 0 ? -ENOMEM : 0;
        if (getsockname(fd, (struct sockaddr *) &bound, &len) < 0)
                return negative_errno();
        if (bound.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &bound;

                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                return asprintf(ret, "tcp:[%s]:%u", host, ntohs(in6->sin6_port)) < 0 ? -ENOMEM : 0;
        }
        inet_ntop(AF_INET, &((struct sockaddr_in *) &bound)->sin_addr, host, sizeof(host));
        return asprintf(ret, "tcp:%s:%u", host, ntohs(((struct sockaddr_in *) &bound)->sin_port)) < 0 ? -ENOMEM : 0;
}

int mig_listen(const char *endpoint, int *ret_fd, char **ret_endpoint, char *msg, size_t msg_size)
{
        struct sockaddr_storage sa;
        _cleanup_close_ int fd = -1;
        socklen_t len;
        int one = 1, r;

        r = mig_endpoint_parse(endpoint, &sa, &len, msg, msg_size);
        if (r < 0)
                return r;
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (sa.ss_family != AF_UNIX)
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &sa, len) < 0 || listen(fd, 8) < 0) {
                r = negative_errno();
                snprintf(msg, msg_size, "cannot listen on '%s': %s", endpoint, strerror(-r));
                return r;
        }
        r = endpoint_name(fd, &sa, ret_endpoint);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int mig_conn_init(struct mig_conn *c, int fd, int cancel_fd, int timeout_ms)
{
        *c = (struct mig_conn) { .fd = fd, .cancel_fd = cancel_fd, .timeout_ms = timeout_ms };
        c->buf = malloc(MIG_HEADER_SIZE + MIG_FRAME_MAX);
        return c->buf ? 0 : -ENOMEM;
}

void mig_conn_done(struct mig_conn *c)
{
        c->fd = safe_close(c->fd);
        free(c->buf);
        c->buf = NULL;
}

/* Until @fd is ready for @events: 0, -ECANCELED or -ETIMEDOUT. */
static int wait_fd(struct mig_conn *c, short events)
{
        struct pollfd p[2] = { { .fd = c->fd, .events = events }, { .fd = c->cancel_fd, .events = POLLIN } };
        int r;

        do
                r = poll(p, c->cancel_fd >= 0 ? 2 : 1, c->timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (p[1].revents & POLLIN)
                return -ECANCELED;
        if (r == 0) {
                snprintf(c->error, sizeof(c->error), "the peer sent nothing for %d ms", c->timeout_ms);
                return -ETIMEDOUT;
        }
        return 0;
}

static int gone(struct mig_conn *c, int r)
{
        snprintf(c->error, sizeof(c->error), "the connection dropped (%s)", strerror(-r));
        return -ECONNRESET;
}

static int read_all(struct mig_conn *c, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = read(c->fd, p, n);
                int r;

                if (k > 0) {
                        p += k;
                        n -= (size_t) k;
                        c->bytes_in += (uint64_t) k;
                        continue;
                }
                if (k == 0)
                        return gone(c, -EPIPE);
                if (errno != EAGAIN && errno != EINTR)
                        return gone(c, negative_errno());
                r = wait_fd(c, POLLIN);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int writev_all(struct mig_conn *c, struct iovec *iov, int n)
{
        while (n > 0) {
                /* MSG_NOSIGNAL: a peer gone is an error to handle, not SIGPIPE. */
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t) n };
                ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
                int r;

                if (k < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                return gone(c, negative_errno());
                        r = wait_fd(c, POLLOUT);
                        if (r < 0)
                                return r;
                        continue;
                }
                c->bytes_out += (uint64_t) k;
                while (n > 0 && (size_t) k >= iov->iov_len) {
                        k -= (ssize_t) iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + k;
                        iov->iov_len -= (size_t) k;
                }
        }
        return 0;
}

int mig_connect(struct mig_conn *c, const char *endpoint)
{
        struct sockaddr_storage sa;
        socklen_t len, elen = sizeof(int);
        int err = 0, one = 1, r;

        r = mig_endpoint_parse(endpoint, &sa, &len, c->error, sizeof(c->error));
        if (r < 0)
                return r;
        c->fd = safe_close(c->fd);
        c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return negative_errno();
        if (sa.ss_family != AF_UNIX)
                (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *) &sa, len) < 0) {
                if (errno != EINPROGRESS && errno != EAGAIN)
                        return gone(c, negative_errno());
                r = wait_fd(c, POLLOUT);
                if (r < 0)
                        return r;
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err)
                        return gone(c, err ? -err : negative_errno());
        }
        return 0;
}

/* DATA whose pages go where the sink says, the rest into c->buf. */
static int recv_data(struct mig_conn *c, uint32_t length, struct mig_msg *m)
{
        uint8_t *p = c->buf + MIG_HEADER_SIZE, *to;
        int r;

        r = read_all(c, p, MIG_DATA_FIXED);
        if (r >= 0)
                r = mig_data_head_decode(p, length, m, c->error, sizeof(c->error));
        if (r >= 0)
                r = read_all(c, p + MIG_DATA_FIXED, 4 * m->data.count);
        if (r < 0)
                return r;
        to = c->data_sink(c->sink_userdata, m->data.offset, m->data.count);
        if (!to)
                to = p + MIG_DATA_FIXED + 4 * m->data.count;
        m->data.pages = to;
        return read_all(c, to, (size_t) m->data.count * MIG_PAGE_SIZE);
}

int mig_recv(struct mig_conn *c, struct mig_msg *m)
{
        enum mig_type type;
        uint32_t length;
        int r;

        r = read_all(c, c->buf, MIG_HEADER_SIZE);
        if (r < 0)
                return r;
        r = mig_header_decode(c->buf, &type, &length, c->error, sizeof(c->error));
        if (r < 0)
                return r;
        if (type == MIG_DATA && c->data_sink && length >= MIG_DATA_FIXED)
                return recv_data(c, length, m);
        r = read_all(c, c->buf + MIG_HEADER_SIZE, length);
        if (r < 0)
                return r;
        return mig_payload_decode(type, c->buf + MIG_HEADER_SIZE, length, m, c->error, sizeof(c->error));
}

int mig_send(struct mig_conn *c, const struct mig_msg *m)
{
        struct iovec iov;
        int n = mig_frame_encode(m, c->buf, MIG_HEADER_SIZE + MIG_FRAME_MAX);

        if (n < 0)
                return n;
        iov = (struct iovec) { .iov_base = c->buf, .iov_len = (size_t) n };
        return writev_all(c, &iov, 1);
}

int mig_send_data(struct mig_conn *c, uint64_t offset, uint32_t count, const uint8_t *pages)
{
        uint8_t *p = c->buf + MIG_HEADER_SIZE;
        struct iovec iov[2];
        uint64_t be_off = htobe64(offset);
        uint32_t be_count = htobe32(count), zero = 0;

        mig_header_encode(c->buf, MIG_DATA, mig_data_length(count));
        memcpy(p, &be_off, 8);
        memcpy(p + 8, &be_count, 4);
        memcpy(p + 12, &zero, 4);
        for (uint32_t i = 0; i < count; i++) {
                uint32_t crc = htobe32(mig_page_crc(pages + (size_t) i * MIG_PAGE_SIZE));

                memcpy(p + MIG_DATA_FIXED + 4 * i, &crc, 4);
        }
        iov[0] = (struct iovec) { .iov_base = c->buf, .iov_len = MIG_HEADER_SIZE + MIG_DATA_FIXED + 4 * count };
        iov[1] = (struct iovec) { .iov_base = (void *) pages, .iov_len = (size_t) count * MIG_PAGE_SIZE };
        return writev_all(c, iov, 2);
}

void mig_send_error(struct mig_conn *c, int r)
{
        struct mig_msg m = { .type = MIG_ERROR, .error.code = mig_error_from_errno(r) };
        char why[sizeof(c->error)];

        snprintf(m.error.text, sizeof(m.error.text), "%.*s", (int) MIG_ERROR_TEXT_MAX,
                 c->error[0] ? c->error : strerror(-r));
        /* Best effort: the stream ends after it either way, and a peer gone
         * already does not change why it ends. */
        memcpy(why, c->error, sizeof(why));
        c->timeout_ms = 1000;
        (void) mig_send(c, &m);
        memcpy(c->error, why, sizeof(why));
}

int mig_expect(struct mig_conn *c, enum mig_type type, struct mig_msg *m)
{
        int r = mig_recv(c, m);

        if (r < 0)
                return r;
        if (m->type == MIG_ERROR) {
                snprintf(c->error, sizeof(c->error), "the peer refused: %s: %s", mig_error_name(m->error.code),
                         m->error.text);
                return mig_error_to_errno(m->error.code);
        }
        if (m->type != type) {
                snprintf(c->error, sizeof(c->error), "expected a %s frame, got %s", mig_type_name(type),
                         mig_type_name(m->type));
                return -EPROTO;
        }
        return 0;
}

static int check_version(struct mig_conn *c, uint32_t version, const char *who)
{
        if (version == MIG_VERSION)
                return 0;
        snprintf(c->error, sizeof(c->error), "the %s speaks migration protocol version %u, this gmemd version %u",
                 who, version, MIG_VERSION);
        return -EPROTONOSUPPORT;
}

int mig_handshake_dst(struct mig_conn *c, const char *token, enum mig_channel channel, uint64_t *region_size,
                      uint8_t salt[MIG_SALT_SIZE])
{
        _cleanup_free_ struct mig_msg *m = calloc(1, sizeof(*m));
        uint8_t nonce[MIG_NONCE_SIZE], want[MIG_PROOF_SIZE];
        int r;

        if (!m)
                return -ENOMEM;
        if ((r = mig_nonce_new(nonce)) < 0)
                return r;
        *m = (struct mig_msg) { .type = MIG_HELLO, .hello = { .version = MIG_VERSION, .channel = channel } };
        memcpy(m->hello.nonce, nonce, MIG_NONCE_SIZE);
        if ((r = mig_send(c, m)) < 0 || (r = mig_expect(c, MIG_CHALLENGE, m)) < 0)
                return r;
        r = check_version(c, m->challenge.version, "source");
        if (r < 0)
                return r;
        if ((r = mig_proof(token, true, nonce, m->challenge.nonce, want)) < 0)
                return r;
        if (!mig_proof_equal(want, m->challenge.proof)) {
                snprintf(c->error, sizeof(c->error), "the source does not know the token (its proof is wrong)");
                return -EKEYREJECTED;
        }
        if (m->challenge.page_size != MIG_PAGE_SIZE) {
                snprintf(c->error, sizeof(c->error), "the source's page size is %u, this host's %u",
                         m->challenge.page_size, MIG_PAGE_SIZE);
                return -EINVAL;
        }
        *region_size = m->challenge.region_size;
        memcpy(salt, m->challenge.salt, MIG_SALT_SIZE);
        r = mig_proof(token, false, m->challenge.nonce, nonce, m->auth.proof);
        m->type = MIG_AUTH;
        if (r < 0 || (r = mig_send(c, m)) < 0)
                return r;
        return mig_expect(c, MIG_READY, m);
}

int mig_handshake_src(struct mig_conn *c, const char *token, uint64_t region_size, const uint8_t salt[MIG_SALT_SIZE],
                      enum mig_channel *channel)
{
        _cleanup_free_ struct mig_msg *m = calloc(1, sizeof(*m));
        uint8_t peer[MIG_NONCE_SIZE], want[MIG_PROOF_SIZE], got[MIG_PROOF_SIZE];
        int r;

        if (!m)
                return -ENOMEM;
        r = mig_expect(c, MIG_HELLO, m);
        if (r < 0)
                return r;
        if ((r = check_version(c, m->hello.version, "destination")) < 0)
                return r;
        if (m->hello.channel > MIG_CHANNEL_FAULT) {
                snprintf(c->error, sizeof(c->error), "unknown channel %u", m->hello.channel);
                return -EPROTO;
        }
        *channel = (enum mig_channel) m->hello.channel;
        memcpy(peer, m->hello.nonce, MIG_NONCE_SIZE);
        *m = (struct mig_msg) { .type = MIG_CHALLENGE, .challenge = { .version = MIG_VERSION,
                                .page_size = MIG_PAGE_SIZE, .region_size = region_size } };
        memcpy(m->challenge.salt, salt, MIG_SALT_SIZE);
        if ((r = mig_nonce_new(m->challenge.nonce)) < 0 ||
            (r = mig_proof(token, true, peer, m->challenge.nonce, m->challenge.proof)) < 0)
                return r;
        if ((r = mig_proof(token, false, m->challenge.nonce, peer, want)) < 0)
                return r;
        if ((r = mig_send(c, m)) < 0 || (r = mig_expect(c, MIG_AUTH, m)) < 0)
                return r;
        memcpy(got, m->auth.proof, MIG_PROOF_SIZE); /* out of the union, for the compiler's sake */
        if (!mig_proof_equal(want, got)) {
                snprintf(c->error, sizeof(c->error), "the destination does not know the token (its proof is wrong)");
                return -EKEYREJECTED;
        }
        m->type = MIG_READY;
        return mig_send(c, m);
}
