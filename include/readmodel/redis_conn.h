/*
 * One connection to one Redis server: plain TCP, a Unix socket or TLS
 * (OpenSSL), with the connection's handshake (TLS, AUTH, SELECT). It owns
 * the socket and an output buffer; hiredis is used only for what it does
 * well: formatting commands (redisFormatCommandArgv) and parsing replies
 * (redisReader). Debian's hiredis 0.14 has neither TLS nor cluster support,
 * so the socket is ours (docs/architecture.md, "Redis connections").
 *
 * Commands are appended (buffered) and sent when a reply is read, so a
 * batch of commands is one write and its replies one or a few reads.
 * Reads and writes time out after 10 s, connecting after 2 s.
 *
 * Thread-safety: an rm_rconn_t belongs to one thread at a time. An
 * rm_rconn_tls_t (the shared TLS settings) is immutable once made and may
 * be used by connections of any thread.
 *
 * Errors: RM_ERR_IO (refused, reset, timed out, TLS failure: the
 * connection is unusable and must be closed), RM_ERR_CONFIG (the server
 * refuses these credentials or this database; the TLS certificate was not
 * trusted), RM_ERR_NOMEM. The reason is in rm_rconn_error(); it never
 * contains a password.
 */
#ifndef READMODEL_REDIS_CONN_H
#define READMODEL_REDIS_CONN_H

#include "readmodel/error.h"
#include "readmodel/redis_url.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct rm_rconn rm_rconn_t;
typedef struct rm_rconn_tls rm_rconn_tls_t;

/* The TLS settings of url (rediss://): CA bundle (or the system's),
 * client certificate and key, server name. NULL with the reason in err when
 * a file cannot be loaded, or when url is not TLS (then err is ""). The
 * caller frees with rm_rconn_tls_free (NULL is a no-op). */
rm_rconn_tls_t *rm_rconn_tls_new(const rm_redis_url_t *url, char *err, size_t cap);
void rm_rconn_tls_free(rm_rconn_tls_t *t);

/* Connects to host:port (NULL host: url's host, or its Unix socket), with
 * TLS when tls is non-NULL (borrowed; must outlive the connection), then
 * AUTH with url's user and password and SELECT url's db (when not 0;
 * skip_select omits it, for cluster nodes). Returns the connection, or NULL
 * with *e and err set. */
rm_rconn_t *rm_rconn_open(const rm_redis_url_t *url, const char *host, int port,
                          const rm_rconn_tls_t *tls, int skip_select, rm_err_t *e, char *err,
                          size_t cap);
/* Closes and frees (pending commands and replies are dropped); NULL is a
 * no-op. */
void rm_rconn_close(rm_rconn_t *c);

/* Appends an already formatted command (RESP) to the output buffer; copies
 * it. RM_ERR_NOMEM. */
rm_err_t rm_rconn_append(rm_rconn_t *c, const char *cmd, size_t len);
/* Sends what is buffered and reads the next reply into *out (caller frees
 * with freeReplyObject; an error reply is a reply, not a failure). */
rm_err_t rm_rconn_read(rm_rconn_t *c, redisReply **out);
/* Appends and reads one command: its reply, error replies included. */
rm_err_t rm_rconn_command(rm_rconn_t *c, redisReply **out, int argc, const char **argv,
                          const size_t *lens);
/* The last error of the connection (its own buffer). */
const char *rm_rconn_error(const rm_rconn_t *c);

#endif
