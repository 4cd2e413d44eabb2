/*
 * libFuzzer target: the Redis URL parser (rm_redis_url_parse,
 * include/readmodel/redis_url.h).
 *
 * Input: the URL's bytes (a NUL ends it early, as it would in argv). On
 * success the result is checked against the header (a host or a socket
 * path, never both; port 1..65535; db 0..2^20), redacted for logs and
 * freed; on failure *out must hold nothing and err must be one line.
 */
#include "readmodel/redis_url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_redis_url: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    rm_redis_url_t u;
    char err[200] = "", redacted[512];
    if (rm_redis_url_parse(url, &u, err, sizeof(err)) == 0) {
        if (!u.host == !u.socket_path)
            fail("exactly one of host and socket path must be set");
        if (u.port < 1 || u.port > 65535 || u.db < 0 || u.db > (1 << 20))
            fail("port or db out of range");
        rm_redis_url_redacted(&u, redacted, sizeof(redacted));
        if (!memchr(redacted, '\0', sizeof(redacted)))
            fail("redacted URL not terminated");
        rm_redis_url_free(&u);
    } else {
        if (u.host || u.socket_path || u.user || u.password)
            fail("a failed parse left something to free");
        if (!err[0] || strpbrk(err, "\r\n"))
            fail("error message empty or not one line");
    }
    free(url);
    return 0;
}
