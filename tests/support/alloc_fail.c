/* Allocation-failure injection: see alloc_fail.h. */
#include "alloc_fail.h"

#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static atomic_int armed;    /* counting (and failing) */
static atomic_long fail_at; /* the allocation number that fails; 0: none */
static atomic_long counted; /* allocations counted since arming */
static atomic_int hit;      /* the armed allocation was reached and failed */
static _Thread_local bool tls_counted, tls_paused;

/* Whether this allocation fails. */
static bool inject(void) {
    if (!tls_counted || tls_paused || !atomic_load(&armed))
        return false;
    long n = atomic_fetch_add(&counted, 1) + 1;
    if (n == atomic_load(&fail_at)) {
        atomic_store(&hit, 1);
        return true;
    }
    return false;
}

void alloc_fail_arm(long n) {
    atomic_store(&armed, 0);
    atomic_store(&counted, 0);
    atomic_store(&hit, 0);
    atomic_store(&fail_at, n);
    atomic_store(&armed, 1);
}

void alloc_fail_disarm(void) {
    atomic_store(&armed, 0);
}

bool alloc_fail_hit(void) {
    return atomic_load(&hit) != 0;
}

long alloc_fail_counted(void) {
    return atomic_load(&counted);
}

void alloc_fail_count_thread(bool on) {
    tls_counted = on;
}

void alloc_fail_pause_thread(bool paused) {
    tls_paused = paused;
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n) {
    return inject() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
    return inject() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
    return inject() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
    return inject() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
    return inject() ? NULL : __real_strndup(s, n);
}
