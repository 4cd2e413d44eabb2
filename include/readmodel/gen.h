/*
 * Deterministic generator of a realistic booking log: practitioners who
 * register, publish and withdraw slots, take bookings that are cancelled or
 * rescheduled, send day snapshots, update profiles, are deactivated and
 * re-register; plus a configurable share of invalid events (every kind the
 * decoder rejects) and of unknown-type events. Same seed, same log.
 *
 * Thread-safety: a generator belongs to one thread.
 */
#ifndef READMODEL_GEN_H
#define READMODEL_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    int practitioners;
    int days;
    uint16_t start_day;   /* day number (date.h) of the first day */
    double invalid_ratio; /* 0..1: share of messages that are invalid */
    double ignored_ratio; /* 0..1: share of messages with an unknown type */
} rm_gen_config_t;

typedef struct {
    const char *key; /* practitioner id; borrowed until the next call */
    size_t key_len;
    const char *value;
    size_t value_len;
    bool invalid; /* the generator meant this message to be invalid */
} rm_gen_msg_t;

typedef struct rm_gen rm_gen_t;

/* NULL on ENOMEM or a config out of range. */
rm_gen_t *rm_gen_new(const rm_gen_config_t *cfg);
/* Next message: 1, or 0 when the log is complete. */
int rm_gen_next(rm_gen_t *g, rm_gen_msg_t *out);
void rm_gen_free(rm_gen_t *g);

#endif
