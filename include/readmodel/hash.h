/*
 * Hash of short byte strings (practitioner and booking ids) for the
 * in-memory tables. Eight bytes per step and a final avalanche, so the low
 * bits the tables mask with depend on every byte. In memory only: never
 * stored or sent, so it may change between releases.
 *
 * Thread-safety: pure functions, thread-safe.
 */
#ifndef READMODEL_HASH_H
#define READMODEL_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rm_hash_bytes(const char *s, size_t n) {
    const uint64_t k = 0xff51afd7ed558ccdull;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

#endif
