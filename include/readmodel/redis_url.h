/*
 * Redis connection URLs:
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://... the same over TLS
 *   unix:///path/to.sock[?db=N]
 * Parsed with libcurl's URL API (percent-decoding included); `unix://` is
 * split by hand because curl 7.88 reads its first path segment as a host.
 *
 * Thread-safety: parse and free are thread-safe (no shared state).
 */
#ifndef READMODEL_REDIS_URL_H
#define READMODEL_REDIS_URL_H

#include <stddef.h>

typedef struct {
    char *host;        /* owned; NULL for unix sockets */
    int port;          /* default 6379 */
    char *socket_path; /* owned; NULL for TCP */
    char *user;        /* owned; NULL when absent */
    char *password;    /* owned; NULL when absent */
    int db;            /* default 0 */
    int tls;           /* rediss:// */
    /* TLS settings from the options (--redis-ca-file, ...), not the URL;
     * owned, NULL when not set. */
    char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
} rm_redis_url_t;

/* Parses url into *out (zeroed first). Returns 0, or -1 with a one-line
 * reason in err (which never contains the password). On failure *out holds
 * nothing to free. */
int rm_redis_url_parse(const char *url, rm_redis_url_t *out, char *err, size_t errlen);
/* Sets the TLS settings (each copied; NULL: not set). 0, or -1 on ENOMEM
 * (then none is set). */
int rm_redis_url_set_tls(rm_redis_url_t *u, const char *ca_file, const char *cert_file,
                         const char *key_file, const char *server_name);
/* Deep copy of src into *dst: 0, or -1 on ENOMEM (then *dst holds nothing
 * to free: never a copy without its credentials). */
int rm_redis_url_copy(rm_redis_url_t *dst, const rm_redis_url_t *src);
/* Frees the strings; a zeroed struct is a no-op. */
void rm_redis_url_free(rm_redis_url_t *u);
/* Writes the URL with any password replaced by "***", for logs. */
void rm_redis_url_redacted(const rm_redis_url_t *u, char *out, size_t cap);

#endif
