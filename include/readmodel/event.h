/*
 * The booking event, decoded and validated against ../shared/events.md.
 *
 * The decoder is on the hot path: it owns all its working memory (token
 * array, scratch for unescaped strings, snapshot lists), allocated once in
 * rm_decoder_new(), so decoding a message performs no heap allocation.
 * A decoded rm_event_t points into the message bytes and into the decoder;
 * it stays valid until the next rm_decode() on the same decoder or until the
 * message is freed, whichever comes first.
 *
 * Thread-safety: a decoder (rm_decoder_t) and the events it returns belong
 * to one thread; use one decoder per thread. The name functions are
 * thread-safe.
 */
#ifndef READMODEL_EVENT_H
#define READMODEL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_MAX_MESSAGE_BYTES 65536u
#define RM_MAX_ID_CHARS      64u

#define RM_EVENT_TYPE_MAP(X)                                                                       \
    X(PRACTITIONER_REGISTERED, "PractitionerRegistered")                                           \
    X(PRACTITIONER_UPDATED, "PractitionerUpdated")                                                 \
    X(PRACTITIONER_DEACTIVATED, "PractitionerDeactivated")                                         \
    X(SLOTS_PUBLISHED, "SlotsPublished")                                                           \
    X(SLOTS_WITHDRAWN, "SlotsWithdrawn")                                                           \
    X(BOOKING_CREATED, "BookingCreated")                                                           \
    X(BOOKING_CANCELLED, "BookingCancelled")                                                       \
    X(BOOKING_RESCHEDULED, "BookingRescheduled")                                                   \
    X(AVAILABILITY_SNAPSHOT, "AvailabilitySnapshot")

typedef enum {
#define RM_EV_ENUM(name, str) RM_EV_##name,
    RM_EVENT_TYPE_MAP(RM_EV_ENUM)
#undef RM_EV_ENUM
        RM_EV__COUNT
} rm_event_type_t;

/* Why an event was rejected. The string form is the label used in metrics,
 * logs and the dead-letter `reason` header. */
#define RM_REASON_MAP(X)                                                                           \
    X(TOO_LARGE, "too_large")                                                                      \
    X(INVALID_UTF8, "invalid_utf8")                                                                \
    X(MALFORMED_JSON, "malformed_json")                                                            \
    X(NOT_AN_OBJECT, "not_an_object")                                                              \
    X(DUPLICATE_FIELD, "duplicate_field")                                                          \
    X(MISSING_FIELD, "missing_field")                                                              \
    X(WRONG_TYPE, "wrong_type")                                                                    \
    X(NOT_AN_INTEGER, "not_an_integer")                                                            \
    X(OUT_OF_RANGE, "out_of_range")                                                                \
    X(RANGE_PAST_END_OF_DAY, "range_past_end_of_day")                                              \
    X(INVALID_ID, "invalid_id")                                                                    \
    X(INVALID_DATE, "invalid_date")                                                                \
    X(INVALID_TIMESTAMP, "invalid_timestamp")                                                      \
    X(UNSUPPORTED_SCHEMA_VERSION, "unsupported_schema_version")                                    \
    X(KEY_MISMATCH, "key_mismatch")                                                                \
    X(EMPTY_UPDATE, "empty_update")

typedef enum {
#define RM_REASON_ENUM(name, str) RM_REASON_##name,
    RM_REASON_MAP(RM_REASON_ENUM)
#undef RM_REASON_ENUM
        RM_REASON__COUNT
} rm_reason_t;

typedef struct {
    const char *ptr; /* not NUL-terminated */
    size_t len;
} rm_span_t;

/* A slot range on one day: day number (see date.h), start slot, count. */
typedef struct {
    uint16_t day;
    uint16_t start;
    uint16_t count;
} rm_slots_t;

typedef struct {
    rm_span_t booking_id;
    uint16_t start;
    uint16_t count;
} rm_snapshot_booking_t;

/* Profile fields present in a registration or update (bit set). */
enum {
    RM_PROFILE_NAME = 1u << 0,
    RM_PROFILE_SPECIALTIES = 1u << 1,
    RM_PROFILE_CITY = 1u << 2,
    RM_PROFILE_LOCATION = 1u << 3,
    RM_PROFILE_LANGUAGES = 1u << 4,
    RM_PROFILE_ACCEPTS_NEW_PATIENTS = 1u << 5,
    RM_PROFILE_ALL = (1u << 6) - 1,
};

typedef struct {
    rm_event_type_t type;
    rm_span_t event_id;        /* unescaped */
    rm_span_t practitioner_id; /* 1..64 of [A-Za-z0-9._-] */
    rm_span_t occurred_at;

    /* Registered / Updated: which fields are set, and each one's JSON text
     * exactly as it appeared (valid JSON, quotes included). */
    unsigned profile;
    rm_span_t name_json, specialties_json, city_json, languages_json;
    rm_span_t lat_json, lon_json;
    double lat, lon;
    bool accepts_new_patients;

    /* Booking events. */
    rm_span_t booking_id; /* unescaped */
    rm_span_t patient_id; /* unescaped; BookingCreated only */
    rm_slots_t slots;     /* Slots*, BookingCreated/Cancelled; Rescheduled: `to` */
    rm_slots_t from;      /* Rescheduled: `from` */

    /* AvailabilitySnapshot: slots.day is the date; lists live in the decoder. */
    const rm_slots_t *published;
    size_t n_published;
    const rm_snapshot_booking_t *bookings;
    size_t n_bookings;
} rm_event_t;

typedef enum {
    RM_DECODE_OK,        /* *ev holds a valid event */
    RM_DECODE_TOMBSTONE, /* null value: ignored by contract */
    RM_DECODE_IGNORED,   /* valid envelope, unknown type: ignored by contract */
    RM_DECODE_INVALID,   /* *why says why */
} rm_decode_result_t;

typedef struct {
    rm_reason_t reason;
    const char *field; /* static string naming the field ("start_slot", "to.date"), or "" */
} rm_reject_t;

typedef struct rm_decoder rm_decoder_t;

/* Returns a decoder, or NULL when out of memory. Free with rm_decoder_free. */
rm_decoder_t *rm_decoder_new(void);
/* Frees the decoder; NULL is a no-op. Events decoded by it become invalid. */
void rm_decoder_free(rm_decoder_t *d);

/* Decodes one Kafka message. key may be NULL (no key); value NULL means a
 * tombstone. Never allocates, never crashes on any bytes. On
 * RM_DECODE_INVALID, *why is set; otherwise *why is untouched. */
rm_decode_result_t rm_decode(rm_decoder_t *d, const void *key, size_t key_len, const void *value,
                             size_t value_len, rm_event_t *ev, rm_reject_t *why);

/* "PractitionerRegistered" etc.; static. */
const char *rm_event_type_name(rm_event_type_t t);
/* "out_of_range" etc.; static. */
const char *rm_reason_name(rm_reason_t r);

#endif
