/*
 * Error codes shared by every module. One X-macro generates the enum, the
 * names and the messages, so they never drift apart (as libuv does).
 * Functions below the command layer (src/cli) return an rm_err_t and never
 * exit(); src/cli maps them to exit codes in one place (rm_exit_code). The
 * reason of an I/O or reply error is in the failing object's last_error().
 *
 * Thread-safety: the name functions are thread-safe.
 */
#ifndef READMODEL_ERROR_H
#define READMODEL_ERROR_H

#define RM_ERR_MAP(X)                                                                              \
    X(OK, "success")                                                                               \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(IO, "connection or I/O error")                                                               \
    X(REPLY, "unexpected reply from the server")                                                   \
    X(CORRUPT, "stored data could not be decoded")                                                 \
    X(CONFIG, "refused by the server as configured (credentials, permissions or database)")        \
    X(DRIFT, "the read model differs from the log")                                                \
    X(TRUNCATED, "history before the earliest offset is gone")                                     \
    X(LEASE_HELD, "another rebuild holds the lease")

typedef enum {
#define RM_ERR_ENUM(name, msg) RM_ERR_##name,
    RM_ERR_MAP(RM_ERR_ENUM)
#undef RM_ERR_ENUM
        RM_ERR__COUNT
} rm_err_t;

/* Static string naming the code ("IO"); never NULL, never to be freed. */
const char *rm_err_name(rm_err_t err);
/* Static human message for the code; never NULL, never to be freed. */
const char *rm_err_str(rm_err_t err);

#endif
