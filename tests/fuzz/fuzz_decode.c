/*
 * libFuzzer target: the event decoder (rm_decode, include/readmodel/event.h).
 *
 * Input: byte 0 says what the key is, the rest is split into key and value:
 *   0..253  key of that many bytes (fewer if the input is shorter), then the
 *           value (possibly empty);
 *   254     no key (NULL), the rest is the value;
 *   255     no key and no value: a tombstone.
 * Key and value are copied into heap buffers of their exact size, so that
 * ASan sees a read past the end of either.
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks what the
 * header promises: an accepted event has a valid practitioner id equal to
 * the key, slot ranges within the day, spans that can be read whole; a
 * rejection names a reason and a field.
 */
#include "readmodel/date.h"
#include "readmodel/event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rm_decoder_t *decoder;
static volatile unsigned sink;

static void fail(const char *what) {
    fprintf(stderr, "fuzz_decode: %s\n", what);
    abort();
}

/* Reads every byte, so that ASan checks the span points at live memory. */
static void touch(rm_span_t s) {
    unsigned sum = 0;
    if (s.len && !s.ptr)
        fail("span with a length but no pointer");
    for (size_t i = 0; i < s.len; i++)
        sum += (unsigned char)s.ptr[i];
    sink += sum;
}

static void check_range(rm_slots_t r) {
    if (r.day > RM_DAY_MAX || r.start >= RM_SLOTS_PER_DAY || r.start + r.count > RM_SLOTS_PER_DAY)
        fail("slot range outside the day");
}

static void check_event(const rm_event_t *ev, const uint8_t *key, size_t key_len) {
    if ((unsigned)ev->type >= RM_EV__COUNT)
        fail("event type out of range");
    rm_span_t pid = ev->practitioner_id;
    if (pid.len < 1 || pid.len > RM_MAX_ID_CHARS)
        fail("practitioner id length");
    for (size_t i = 0; i < pid.len; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
                    pid.ptr[i]) ||
            !pid.ptr[i])
            fail("practitioner id character");
    if (key && (key_len != pid.len || memcmp(key, pid.ptr, key_len) != 0))
        fail("accepted an event whose key is not its practitioner id");
    const rm_span_t spans[] = {ev->event_id,
                               ev->occurred_at,
                               ev->name_json,
                               ev->city_json,
                               ev->specialties_json,
                               ev->languages_json,
                               ev->lat_json,
                               ev->lon_json,
                               ev->booking_id,
                               ev->patient_id,
                               pid};
    for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++)
        touch(spans[i]);
    switch (ev->type) {
    case RM_EV_SLOTS_PUBLISHED:
    case RM_EV_SLOTS_WITHDRAWN:
    case RM_EV_BOOKING_CREATED:
    case RM_EV_BOOKING_CANCELLED:
        check_range(ev->slots);
        break;
    case RM_EV_BOOKING_RESCHEDULED:
        check_range(ev->slots);
        check_range(ev->from);
        break;
    case RM_EV_AVAILABILITY_SNAPSHOT:
        for (size_t i = 0; i < ev->n_published; i++)
            check_range(ev->published[i]);
        for (size_t i = 0; i < ev->n_bookings; i++) {
            touch(ev->bookings[i].booking_id);
            check_range((rm_slots_t){ev->slots.day, ev->bookings[i].start, ev->bookings[i].count});
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!decoder && !(decoder = rm_decoder_new()))
        fail("rm_decoder_new: out of memory");
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    size_t key_len = mode < 254 ? (mode < size ? mode : size) : 0;
    uint8_t *key = NULL, *value = NULL;
    size_t value_len = size - key_len;
    if (mode < 254) {
        key = malloc(key_len ? key_len : 1);
        memcpy(key, data, key_len);
    }
    if (mode != 255) {
        value = malloc(value_len ? value_len : 1);
        memcpy(value, data + key_len, value_len);
    }
    rm_event_t ev;
    rm_reject_t why = {RM_REASON__COUNT, NULL};
    switch (rm_decode(decoder, key, key_len, value, value_len, &ev, &why)) {
    case RM_DECODE_OK:
        check_event(&ev, key, key_len);
        break;
    case RM_DECODE_TOMBSTONE:
        if (value)
            fail("a value that is not NULL decoded as a tombstone");
        break;
    case RM_DECODE_IGNORED:
        break;
    case RM_DECODE_INVALID:
        if ((unsigned)why.reason >= RM_REASON__COUNT || !why.field)
            fail("rejection without a reason or a field");
        sink += (unsigned)strlen(why.field) + (unsigned)strlen(rm_reason_name(why.reason));
        break;
    default:
        fail("unknown result");
    }
    free(key);
    free(value);
    return 0;
}
