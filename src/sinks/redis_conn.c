/*
 * One Redis connection (include/readmodel/redis_conn.h): our socket, plain
 * or TLS (OpenSSL), hiredis' redisReader for the replies. Blocking sockets
 * with SO_RCVTIMEO/SO_SNDTIMEO: the callers are synchronous (append a
 * batch, read its replies), as they were with redisContext; the program
 * ignores SIGPIPE (main.c), so a closed peer is an error return.
 *
 * TLS: the server's certificate is verified against --redis-ca-file (or
 * the system's CAs) and its name against the host connected to (an IP
 * address is matched against the certificate's IP SANs), or against
 * --redis-tls-server-name when set; a failed verification is
 * RM_ERR_CONFIG with OpenSSL's reason, since no retry changes it (a name
 * that does not match says so and names both).
 */
#include "readmodel/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000
#define IO_TIMEOUT_S       10

struct rm_rconn_tls {
    SSL_CTX *ctx;
    char *server_name; /* NULL: the host connected to */
};

struct rm_rconn {
    int fd;
    SSL *ssl;
    redisReader *reader;
    char *obuf;
    size_t olen, ocap;
    char err[256];
};

/* OpenSSL's most recent error as text (or `fallback`). */
static const char *ssl_reason(char *buf, size_t cap, const char *fallback) {
    unsigned long code = ERR_get_error();
    if (!code) {
        snprintf(buf, cap, "%s", fallback);
        return buf;
    }
    ERR_error_string_n(code, buf, cap);
    ERR_clear_error();
    return buf;
}

rm_rconn_tls_t *rm_rconn_tls_new(const rm_redis_url_t *url, char *err, size_t cap) {
    err[0] = '\0';
    if (!url->tls)
        return NULL;
    char why[200];
    rm_rconn_tls_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, cap, "redis TLS: out of memory");
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    int ok = url->tls_ca_file ? SSL_CTX_load_verify_locations(t->ctx, url->tls_ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(t->ctx);
    if (ok != 1) {
        snprintf(err, cap, "--redis-ca-file: cannot load %s (%s)",
                 url->tls_ca_file ? url->tls_ca_file : "the system CAs",
                 ssl_reason(why, sizeof(why), "?"));
        goto fail;
    }
    if (url->tls_cert_file &&
        (SSL_CTX_use_certificate_chain_file(t->ctx, url->tls_cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(t->ctx, url->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(t->ctx) != 1)) {
        snprintf(err, cap, "--redis-cert-file/--redis-key-file: cannot use %s (%s)",
                 url->tls_cert_file, ssl_reason(why, sizeof(why), "?"));
        goto fail;
    }
    if (url->tls_server_name && !(t->server_name = strdup(url->tls_server_name))) {
        snprintf(err, cap, "redis TLS: out of memory");
        goto fail;
    }
    return t;
fail:
    rm_rconn_tls_free(t);
    return NULL;
}

void rm_rconn_tls_free(rm_rconn_tls_t *t) {
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

/* Connects fd to addr within CONNECT_TIMEOUT_MS; 0 or -1 (errno set). */
static int connect_timed(int fd, const struct sockaddr *addr, socklen_t len) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    if (connect(fd, addr, len) < 0) {
        if (errno != EINPROGRESS)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, CONNECT_TIMEOUT_MS);
        if (n <= 0) {
            errno = n == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            errno = soerr ? soerr : errno;
            return -1;
        }
    }
    struct timeval tv = {IO_TIMEOUT_S, 0};
    if (fcntl(fd, F_SETFL, flags) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -1;
    return 0;
}

static int open_unix(rm_rconn_t *c, const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(c->err, sizeof(c->err), "redis: socket path too long");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect_timed(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(c->err, sizeof(c->err), "redis: cannot connect to %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_tcp(rm_rconn_t *c, const char *host, int port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        snprintf(c->err, sizeof(c->err), "redis: cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int saved = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (c->fd >= 0 && connect_timed(c->fd, a->ai_addr, a->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            freeaddrinfo(res);
            return 0;
        }
        saved = errno;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    snprintf(c->err, sizeof(c->err), "redis: cannot connect to %s:%d: %s", host, port,
             strerror(saved));
    return -1;
}

/* The TLS handshake over c->fd; RM_ERR_CONFIG when the certificate is not
 * trusted or does not name the server. */
static rm_err_t tls_handshake(rm_rconn_t *c, const rm_rconn_tls_t *t, const char *host) {
    char why[200];
    const char *name = t->server_name ? t->server_name : host;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!(c->ssl = SSL_new(t->ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(c->err, sizeof(c->err), "redis TLS: %s", ssl_reason(why, sizeof(why), "setup"));
        return RM_ERR_NOMEM;
    }
    char sni[256];
    snprintf(sni, sizeof(sni), "%s", name);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1
              : (SSL_set1_host(c->ssl, name) != 1 || SSL_set_tlsext_host_name(c->ssl, sni) != 1)) {
        snprintf(c->err, sizeof(c->err), "redis TLS: cannot verify the name %s", name);
        return RM_ERR_CONFIG;
    }
    if (SSL_connect(c->ssl) == 1)
        return RM_ERR_OK;
    long v = SSL_get_verify_result(c->ssl);
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        ERR_clear_error();
        bool other = strcmp(name, host) != 0;
        snprintf(c->err, sizeof(c->err),
                 "redis TLS: the name %s does not match the server certificate%s%s (%s; set "
                 "--redis-tls-server-name to a name the certificate holds)",
                 name, other ? " of " : "", other ? host : "", X509_verify_cert_error_string(v));
        return RM_ERR_CONFIG;
    }
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(c->err, sizeof(c->err),
                 "redis TLS: the server certificate of %s is not trusted (%s; check "
                 "--redis-ca-file and --redis-tls-server-name)",
                 host, X509_verify_cert_error_string(v));
        return RM_ERR_CONFIG;
    }
    snprintf(c->err, sizeof(c->err), "redis TLS: handshake with %s failed: %s", host,
             ssl_reason(why, sizeof(why), errno ? strerror(errno) : "connection closed"));
    return RM_ERR_IO;
}

static rm_err_t handshake(rm_rconn_t *c, const rm_redis_url_t *url, int skip_select) {
    redisReply *r = NULL;
    rm_err_t e;
    if (url->password) {
        const char *argv[] = {"AUTH", url->user ? url->user : url->password, url->password};
        size_t lens[] = {4, strlen(argv[1]), strlen(url->password)};
        if ((e = rm_rconn_command(c, &r, url->user ? 3 : 2, argv, lens)))
            return e;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(c->err, sizeof(c->err), "redis AUTH (user %s): %.*s",
                     url->user ? url->user : "default", (int)r->len, r->str);
            freeReplyObject(r);
            return RM_ERR_CONFIG;
        }
        freeReplyObject(r);
    }
    if (url->db && !skip_select) {
        char db[16];
        snprintf(db, sizeof(db), "%d", url->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        if ((e = rm_rconn_command(c, &r, 2, argv, lens)))
            return e;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(c->err, sizeof(c->err), "redis SELECT: %.*s", (int)r->len, r->str);
            freeReplyObject(r);
            return RM_ERR_CONFIG;
        }
        freeReplyObject(r);
    }
    return RM_ERR_OK;
}

rm_rconn_t *rm_rconn_open(const rm_redis_url_t *url, const char *host, int port,
                          const rm_rconn_tls_t *tls, int skip_select, rm_err_t *e, char *err,
                          size_t cap) {
    rm_rconn_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->reader = redisReaderCreate())) {
        free(c);
        snprintf(err, cap, "redis: cannot allocate a connection");
        *e = RM_ERR_NOMEM;
        return NULL;
    }
    c->fd = -1;
    if (!host && !url->socket_path) {
        host = url->host;
        port = url->port;
    }
    *e = RM_ERR_IO;
    if (host ? open_tcp(c, host, port) == 0 : open_unix(c, url->socket_path) == 0) {
        *e = tls ? tls_handshake(c, tls, host ? host : "localhost") : RM_ERR_OK;
        if (*e == RM_ERR_OK)
            *e = handshake(c, url, skip_select);
    }
    if (*e == RM_ERR_OK)
        return c;
    snprintf(err, cap, "%s", c->err);
    rm_rconn_close(c);
    return NULL;
}

void rm_rconn_close(rm_rconn_t *c) {
    if (!c)
        return;
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: the socket may be broken */
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->obuf);
    free(c);
}

const char *rm_rconn_error(const rm_rconn_t *c) {
    return c->err;
}

rm_err_t rm_rconn_append(rm_rconn_t *c, const char *cmd, size_t len) {
    if (c->olen + len > c->ocap) {
        size_t ncap = (c->olen + len) * 2;
        char *p = realloc(c->obuf, ncap);
        if (!p) {
            snprintf(c->err, sizeof(c->err), "redis: out of memory");
            return RM_ERR_NOMEM;
        }
        c->obuf = p;
        c->ocap = ncap;
    }
    memcpy(c->obuf + c->olen, cmd, len);
    c->olen += len;
    return RM_ERR_OK;
}

static rm_err_t io_failed(rm_rconn_t *c, const char *what, long n) {
    if (n == 0)
        snprintf(c->err, sizeof(c->err), "redis: connection closed by the server");
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        snprintf(c->err, sizeof(c->err), "redis: %s timed out after %d s", what, IO_TIMEOUT_S);
    else
        snprintf(c->err, sizeof(c->err), "redis: %s: %s", what,
                 errno ? strerror(errno) : "TLS error");
    return RM_ERR_IO;
}

/* A TLS read or write failed: an alert about our certificate (TLS 1.3
 * servers check it after the handshake, so it arrives here) is
 * RM_ERR_CONFIG, anything else I/O. */
static rm_err_t ssl_failed(rm_rconn_t *c, const char *what, long n) {
    unsigned long code = ERR_peek_error();
    int reason = ERR_GET_REASON(code);
    if (code &&
        (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
         reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE || reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN)) {
        char why[160];
        snprintf(c->err, sizeof(c->err),
                 "redis TLS: the server refused our client certificate or its absence (%.90s; "
                 "check --redis-cert-file and --redis-key-file)",
                 ssl_reason(why, sizeof(why), "?"));
        return RM_ERR_CONFIG;
    }
    if (code) {
        char why[160];
        snprintf(c->err, sizeof(c->err), "redis TLS: %s: %s", what,
                 ssl_reason(why, sizeof(why), "?"));
        return RM_ERR_IO;
    }
    return io_failed(c, what, n);
}

static rm_err_t send_all(rm_rconn_t *c) {
    size_t off = 0;
    while (off < c->olen) {
        errno = 0;
        long n = c->ssl ? SSL_write(c->ssl, c->obuf + off, (int)(c->olen - off))
                        : send(c->fd, c->obuf + off, c->olen - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (!c->ssl && n < 0 && errno == EINTR)
                continue;
            return c->ssl ? ssl_failed(c, "write", n < 0 ? -1 : 1)
                          : io_failed(c, "write", n < 0 ? -1 : 1);
        }
        off += (size_t)n;
    }
    c->olen = 0;
    return RM_ERR_OK;
}

rm_err_t rm_rconn_read(rm_rconn_t *c, redisReply **out) {
    rm_err_t e;
    if (c->olen && (e = send_all(c)))
        return e;
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(c->err, sizeof(c->err), "redis: protocol error: %s", c->reader->errstr);
            return RM_ERR_IO;
        }
        if (reply) {
            *out = reply;
            return RM_ERR_OK;
        }
        char buf[16384];
        errno = 0;
        long n = c->ssl ? SSL_read(c->ssl, buf, sizeof(buf)) : recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && !c->ssl && errno == EINTR)
            continue;
        if (n <= 0)
            return c->ssl ? ssl_failed(c, "read", n) : io_failed(c, "read", n);
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            snprintf(c->err, sizeof(c->err), "redis: out of memory");
            return RM_ERR_NOMEM;
        }
    }
}

rm_err_t rm_rconn_command(rm_rconn_t *c, redisReply **out, int argc, const char **argv,
                          const size_t *lens) {
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        snprintf(c->err, sizeof(c->err), "redis: out of memory");
        return RM_ERR_NOMEM;
    }
    rm_err_t e = rm_rconn_append(c, cmd, (size_t)len);
    free(cmd);
    return e ? e : rm_rconn_read(c, out);
}
