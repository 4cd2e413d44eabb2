/*
 * A real redis-server for tests, started on a Unix socket in a fresh
 * temporary directory (no port to collide with), persistence off.
 */
#ifndef RM_TEST_REDIS_H
#define RM_TEST_REDIS_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char dir[128];
    char sock[192];
    char url[224];
} rm_test_redis_t;

/* Creates the directory and starts the server; 0 on success. */
int rm_test_redis_start(rm_test_redis_t *r);
/* Starts the server again on the same socket (after stop); 0 on success. */
int rm_test_redis_restart(rm_test_redis_t *r);
/* Stops the server (SIGKILL when hard) and waits for it. */
void rm_test_redis_stop(rm_test_redis_t *r, int hard);
/* Stops the server and removes the directory. */
void rm_test_redis_destroy(rm_test_redis_t *r);
/* A new client connection, or NULL. */
redisContext *rm_test_redis_connect(const rm_test_redis_t *r);

#endif
