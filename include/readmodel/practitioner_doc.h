/*
 * Practitioner document projection (events.md, "Read model 2"): the profile
 * part of a practitioner's state and the OpenSearch document rendered from
 * the profile and the availability state (rm_avail_t). Pure: no I/O, no
 * clock; the same state always renders the same bytes.
 *
 * Profile fields are kept as the JSON text the event carried (validated by
 * the decoder), so rendering is concatenation and never re-formats numbers.
 *
 * Thread-safety: an rm_profile_t belongs to one thread at a time; the
 * render and JSON functions only read their arguments and are thread-safe
 * on distinct or unchanging profiles.
 */
#ifndef READMODEL_PRACTITIONER_DOC_H
#define READMODEL_PRACTITIONER_DOC_H

#include "readmodel/availability.h"
#include "readmodel/event.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    unsigned set;      /* RM_PROFILE_* bits of the fields that have a value */
    char *name;        /* owned JSON text of each field ("\"Dr A\"", "[\"en\"]") */
    char *specialties; /* NULL when the field is not set */
    char *city;
    char *languages;
    char *lat, *lon; /* JSON numbers of location */
    bool accepts_new_patients;
} rm_profile_t;

/* Frees the strings; a zeroed or freed profile is a no-op. */
void rm_profile_free(rm_profile_t *p);

/* Applies the profile part of a valid event (Registered sets every field,
 * Updated the fields it carries; other types change nothing). Returns 0, or
 * RM_ERR_NOMEM leaving the profile as it was. */
int rm_profile_apply(rm_profile_t *p, const rm_event_t *ev);

/* Renders the document of practitioner pid into a malloc'd NUL-terminated
 * string (*out, caller frees; *len its length). Field order is fixed:
 * practitioner_id, profile fields that are set, active, free_dates
 * (ascending), free_slots_total. Returns 0 or RM_ERR_NOMEM. */
int rm_doc_render(const char *pid, size_t pid_len, const rm_profile_t *p, const rm_avail_t *st,
                  char **out, size_t *len);

/* The profile as a JSON object of its set fields (new reference, caller
 * decrefs; NULL when out of memory), and back. rm_profile_from_json
 * returns RM_ERR_CORRUPT for an object it did not write; *p must be zeroed. */
json_t *rm_profile_to_json(const rm_profile_t *p);
int rm_profile_from_json(rm_profile_t *p, const json_t *obj);

#endif
