/*
 * libFuzzer target: the per-day stored state (rm_avail_decode_days,
 * include/readmodel/availability.h), which the Redis sink reads back from
 * the fields of a practitioner's state hash.
 *
 * Input: RM_AVAIL_HEAD_BYTES of head, then records of u16 day, u16 length
 * and that many bytes of day value (little-endian; an incomplete last
 * record is dropped). The decoder must return 0 or RM_ERR_CORRUPT; when it
 * accepts, the state must write itself back per day and decode from that to
 * the same state (whole encodings compared: they are canonical), with each
 * day's value as given (the per-day encoding is canonical too).
 */
#include "readmodel/availability.h"
#include "readmodel/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_state: %s\n", what);
    abort();
}

/* Encodes every day of st and decodes that into a fresh state; the whole
 * encodings of both must be equal. */
static void round_trip(const rm_avail_t *st) {
    roaring_bitmap_t *all = roaring_bitmap_create();
    rm_avail_state_days(st, all);
    char *buf, *a = NULL, *b = NULL;
    rm_day_bytes_t *days;
    size_t n, la = 0, lb = 0;
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    rm_avail_encode_head(st, head);
    if (rm_avail_encode_days(st, all, &buf, &days, &n) != 0)
        fail("encode_days failed");
    rm_avail_t back;
    if (rm_avail_init(&back) != 0 ||
        rm_avail_decode_days(&back, (const char *)head, sizeof(head), days, n) != 0)
        fail("its own per-day encoding does not decode");
    if (rm_avail_encode(st, &a, &la) != 0 || rm_avail_encode(&back, &b, &lb) != 0)
        fail("encode failed");
    if (la != lb || memcmp(a, b, la) != 0)
        fail("per-day round trip changed the state");
    free(a);
    free(b);
    free(buf);
    free(days);
    rm_avail_free(&back);
    roaring_bitmap_free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < RM_AVAIL_HEAD_BYTES)
        return 0;
    rm_day_bytes_t days[64];
    size_t n = 0, at = RM_AVAIL_HEAD_BYTES;
    while (n < 64 && size - at >= 4) {
        uint16_t day = (uint16_t)(data[at] | data[at + 1] << 8);
        size_t len = (size_t)(data[at + 2] | data[at + 3] << 8);
        at += 4;
        if (len > size - at)
            break;
        days[n++] = (rm_day_bytes_t){day, (const char *)data + at, len};
        at += len;
    }
    rm_avail_t st;
    if (rm_avail_init(&st) != 0)
        return 0;
    int rc = rm_avail_decode_days(&st, (const char *)data, RM_AVAIL_HEAD_BYTES, days, n);
    if (rc != 0 && rc != RM_ERR_CORRUPT)
        fail("unexpected error code");
    if (rc == 0) {
        if (rm_avail_is_dirty(&st))
            fail("a decoded state is dirty");
        round_trip(&st);
    }
    rm_avail_free(&st);
    return 0;
}
