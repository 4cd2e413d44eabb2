/*
 * Loading stored states from the OpenSearch state index: one _mget of the
 * heads, then _mget requests of their committed slot documents (the form is
 * in opensearch_state.h and opensearch_state.c).
 */
#include "opensearch_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slot documents asked for in one _mget (one practitioner's are split too). */
#define SLOT_MGET_IDS 1000
/* Heads asked for in one _mget. */
#define HEAD_MGET_IDS 1000
/* Loads of a practitioner that looked corrupt before it is reported so. */
#define LOAD_ATTEMPTS 3

/* POST <state alias>/_mget of ids. On RM_ERR_OK *r is the answer (caller
 * decrefs) and *docs its array of as many documents (borrowed from *r). */
static rm_err_t mget(rm_os_sink_t *s, json_t *ids, json_t **r, json_t **docs) {
    *r = NULL;
    json_t *body = ids ? json_pack("{s:O}", "ids", ids) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        snprintf(s->err, sizeof(s->err), "out of memory building a _mget request");
        return RM_ERR_NOMEM;
    }
    char path[300];
    snprintf(path, sizeof(path), "/%s/_mget", s->state_alias);
    long st = 0;
    rm_err_t e = rm_os_request(s, "POST", path, text, strlen(text), NULL, &st, r);
    free(text);
    if (e)
        return e;
    *docs = json_object_get(*r, "docs");
    bool bad = st != 200 || json_array_size(*docs) != json_array_size(ids);
    json_t *why = *r;
    size_t i;
    json_t *d;
    json_array_foreach(*docs, i, d) if (!bad && json_object_get(d, "error")) {
        bad = true;
        why = d;
    }
    if (bad) {
        e = rm_os_reply_error(s, path, st, why);
        json_decref(*r);
        *r = NULL;
    }
    return e;
}

static rm_err_t corrupt(rm_os_sink_t *s, rm_sink_item_t *it, const char *why) {
    it->corrupt = true;
    it->partition = -1;
    it->fence = -1;
    snprintf(s->err, sizeof(s->err), "stored state of %.*s does not decode%s", (int)it->pid_len,
             it->pid, why);
    return RM_ERR_CORRUPT;
}

/* Drops the first `at` documents of *acc (the answers already decoded). */
static int acc_trim(json_t **acc, size_t *at) {
    if (*at == 0)
        return 0;
    json_t *rest = json_array();
    for (size_t k = *at; rest && k < json_array_size(*acc); k++)
        if (json_array_append(rest, json_array_get(*acc, k)))
            json_decref(rest), rest = NULL;
    if (!rest)
        return -1;
    json_decref(*acc);
    *acc = rest;
    *at = 0;
    return 0;
}

/* Reads the committed slot documents of the pending heads, in _mget
 * requests of at most SLOT_MGET_IDS ids (a practitioner with more days
 * spans several), and decodes each state once all of its answers are in. */
static rm_err_t load_slots(rm_os_sink_t *s, rm_sink_item_t *items, rm_os_head_t *hs, size_t n,
                           rm_err_t *result) {
    char id[128];
    json_t *acc = json_array();
    size_t i = 0, j = 0, done = 0, at = 0; /* next id: hs[i] day j; next to decode: hs[done] */
    rm_err_t e = acc ? RM_ERR_OK : RM_ERR_NOMEM;
    while (!e && done < n) {
        json_t *ids = json_array(), *r = NULL, *docs = NULL;
        for (; ids && i < n && json_array_size(ids) < SLOT_MGET_IDS; j = 0, i++) {
            for (; hs[i].pending && j < hs[i].n && json_array_size(ids) < SLOT_MGET_IDS; j++) {
                rm_os_head_slot_id(&items[i], &hs[i], j, id, sizeof(id));
                if (json_array_append_new(ids, json_string(id))) {
                    json_decref(ids);
                    ids = NULL;
                    break;
                }
            }
            if (!ids || (hs[i].pending && j < hs[i].n))
                break; /* this head continues in the next request */
        }
        e = !ids ? RM_ERR_NOMEM : json_array_size(ids) ? mget(s, ids, &r, &docs) : RM_ERR_OK;
        json_decref(ids);
        if (!e && docs && json_array_extend(acc, docs))
            e = RM_ERR_NOMEM;
        json_decref(r);
        for (; !e && done < n && (done < i || !hs[done].pending); done++) {
            if (!hs[done].pending)
                continue;
            if (rm_os_head_finish(&items[done], &hs[done], acc, at) < 0)
                *result = corrupt(s, &items[done],
                                  " (a committed slot document is missing or not readable)");
            at += hs[done].n;
        }
        if (!e && acc_trim(&acc, &at))
            e = RM_ERR_NOMEM;
    }
    json_decref(acc);
    return e;
}

/* One load of at most HEAD_MGET_IDS items: their heads, then their slots. */
static rm_err_t load_once(rm_os_sink_t *s, rm_sink_item_t *items, size_t n) {
    if (!n)
        return RM_ERR_OK;
    rm_os_head_t *hs = calloc(n, sizeof(*hs));
    json_t *ids = hs ? json_array() : NULL;
    bool nomem = !ids;
    for (size_t i = 0; i < n; i++) {
        char id[80];
        rm_os_head_id(id, sizeof(id), items[i].pid, items[i].pid_len);
        nomem = nomem || json_array_append_new(ids, json_string(id)) != 0;
        items[i].partition = -1;
        items[i].fence = -1;
        items[i].corrupt = false;
    }
    json_t *r = NULL, *docs = NULL;
    rm_err_t e = mget(s, nomem ? NULL : ids, &r, &docs), result = RM_ERR_OK;
    json_decref(ids);
    for (size_t i = 0; !e && i < n; i++) {
        json_t *d = json_array_get(docs, i);
        /* found or not: the generation its state belongs to */
        items[i].st->os_gen = (int32_t)rm_os_index_gen(
            s->state_alias, json_string_value(json_object_get(d, "_index")));
        if (json_is_true(json_object_get(d, "found")) &&
            rm_os_head_read(d, &items[i], &hs[i]) < 0) {
            rm_os_head_free(&hs[i]);
            result = corrupt(s, &items[i], "");
        }
    }
    json_decref(r);
    if (!e)
        e = load_slots(s, items, hs, n, &result);
    for (size_t i = 0; hs && i < n; i++)
        rm_os_head_free(&hs[i]);
    free(hs);
    return e ? e : result;
}

/* A load of items[i] that looked corrupt, reset to be read again (the
 * state and profile as freshly initialised). 0, or -1 out of memory. */
static int reset_item(rm_sink_item_t *it) {
    rm_avail_free(it->st);
    if (rm_avail_init(it->st) != 0)
        return -1;
    if (it->profile)
        rm_profile_free(it->profile);
    it->corrupt = false;
    return 0;
}

/* Reads again the items that looked corrupt, as one batch; *left counts
 * those still corrupt. */
static rm_err_t load_again(rm_os_sink_t *s, rm_sink_item_t *items, size_t n, size_t *left) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += items[i].corrupt;
    rm_sink_item_t *again = malloc((m ? m : 1) * sizeof(*again));
    size_t *where = malloc((m ? m : 1) * sizeof(*where));
    rm_err_t e = again && where ? RM_ERR_OK : RM_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; !e && i < n; i++)
        if (items[i].corrupt) {
            if (reset_item(&items[i]) < 0)
                e = RM_ERR_NOMEM;
            again[k] = items[i];
            where[k++] = i;
        }
    if (!e)
        e = load_once(s, again, m);
    *left = 0;
    for (size_t j = 0; j < k; j++) {
        items[where[j]] = again[j];
        *left += again[j].corrupt;
    }
    free(again);
    free(where);
    return e;
}

/* A head and its slots are read in separate requests, so a writer that
 * commits a newer head and deletes the slots the old one named, or a
 * rebuild that moves the alias, between the two makes a sound state look
 * corrupt for one read. Such items are read again (the newer head names
 * slots that exist); only a state that looks corrupt LOAD_ATTEMPTS times
 * in a row is reported corrupt. Heads are read HEAD_MGET_IDS at a time. */
rm_err_t rm_os_sink_load(rm_os_sink_t *s, rm_sink_item_t *items, size_t n) {
    rm_err_t result = RM_ERR_OK;
    for (size_t at = 0; at < n; at += HEAD_MGET_IDS) {
        size_t m = n - at < HEAD_MGET_IDS ? n - at : HEAD_MGET_IDS;
        rm_err_t e = load_once(s, items + at, m);
        size_t left = 1;
        for (int a = 1; e == RM_ERR_CORRUPT && a < LOAD_ATTEMPTS; a++) {
            e = load_again(s, items + at, m, &left);
            if (e == RM_ERR_OK && left)
                e = RM_ERR_CORRUPT;
        }
        if (e && e != RM_ERR_CORRUPT)
            return e;
        if (e)
            result = e;
    }
    return result;
}
