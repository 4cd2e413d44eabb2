/*
 * Reference projection for tests, written separately from the production
 * code: jansson for parsing and validation, plain arrays for state, date
 * strings as day identities. Slow and obvious on purpose.
 */
#ifndef RM_REF_MODEL_H
#define RM_REF_MODEL_H

#include <stddef.h>

typedef struct ref_model ref_model_t;

ref_model_t *ref_new(void);
void ref_free(ref_model_t *m);
/* Applies one message (value NULL: tombstone). Returns 1 applied, 0
 * ignored/tombstone, -1 invalid. Messages of one practitioner must come in
 * log order. */
int ref_apply(ref_model_t *m, const char *key, size_t key_len, const char *value, size_t value_len);
size_t ref_invalid_count(const ref_model_t *m);

/* Visits every key that must exist (without prefix: "avail:{id}:date") with
 * its 36-byte value. */
void ref_each_key(const ref_model_t *m,
                  void (*fn)(const char *key, const unsigned char v[36], void *arg), void *arg);

/* Visits every practitioner's expected OpenSearch document (events.md,
 * "Read model 2"); doc is borrowed for the call. */
#include <jansson.h>
void ref_each_doc(const ref_model_t *m, void (*fn)(const char *pid, json_t *doc, void *arg),
                  void *arg);

#endif
