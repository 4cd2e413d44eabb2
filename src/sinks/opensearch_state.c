/*
 * The OpenSearch state index's per-day form (see opensearch_state.h): what
 * a write stores (the plan, the head and slot documents), how a head and
 * its slot documents decode (also the old single-document form), and the
 * base64 of the binary values.
 *
 * Head _source: {"partition", "fence", "profile", "h": base64 of the
 * rm_avail head bytes, "first": the first stored day, "days": base64 of a
 * bit set over [first, last stored day] (bit i, byte i / 8, bit i % 8: day
 * first + i is stored), "slot1": base64 of a bit set over the stored days
 * in ascending order (bit k: the k-th stored day's committed value is in
 * slot 1)}. Its size grows with the span of the stored days (one bit a day),
 * not with the bookings. Slot _source: {"v": base64 of the day's value}.
 */
#include "opensearch_state.h"
#include "readmodel/date.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rm_err_t rm_os_plan(const rm_avail_t *st, bool whole, rm_os_plan_t *p) {
    memset(p, 0, sizeof(*p));
    if (!(p->stored = roaring_bitmap_create()))
        return RM_ERR_NOMEM;
    rm_avail_state_days(st, p->stored);
    p->written = whole ? roaring_bitmap_copy(p->stored) : roaring_bitmap_and(st->sdirty, p->stored);
    p->slot1 = st->os_slot1 ? roaring_bitmap_and(st->os_slot1, p->stored) : roaring_bitmap_create();
    if (!p->written || !p->slot1) {
        rm_os_plan_free(p);
        return RM_ERR_NOMEM;
    }
    /* A written day moves to the slot its head does not name. */
    roaring_bitmap_xor_inplace(p->slot1, p->written);
    return RM_ERR_OK;
}

void rm_os_plan_free(rm_os_plan_t *p) {
    if (p->stored)
        roaring_bitmap_free(p->stored);
    if (p->written)
        roaring_bitmap_free(p->written);
    if (p->slot1)
        roaring_bitmap_free(p->slot1);
    memset(p, 0, sizeof(*p));
}

void rm_os_plan_commit(rm_avail_t *st, rm_os_plan_t *p) {
    if (st->os_slot1)
        roaring_bitmap_free(st->os_slot1);
    st->os_slot1 = p->slot1;
    p->slot1 = NULL;
}

void rm_os_head_id(char *out, size_t cap, const char *pid, size_t len) {
    snprintf(out, cap, "p:%.*s", (int)len, pid);
}

void rm_os_slot_id(char *out, size_t cap, const char *pid, size_t len, uint16_t day, int slot) {
    char date[RM_DATE_LEN + 1];
    rm_date_format(day, date);
    snprintf(out, cap, "p:%.*s:%s:%d", (int)len, pid, date, slot);
}

char *rm_os_slot_source(const rm_day_bytes_t *day) {
    char *v = rm_os_b64_encode(day->p, day->len);
    size_t n = v ? strlen(v) + 10 : 0;
    char *out = v ? malloc(n) : NULL;
    if (out)
        snprintf(out, n, "{\"v\":\"%s\"}", v);
    free(v);
    return out;
}

/* The two bit sets of a head (see the top of this file), base64. */
static int head_bits(const rm_os_plan_t *p, uint32_t *first, char **days, char **slots) {
    uint64_t n = roaring_bitmap_get_cardinality(p->stored);
    *first = n ? roaring_bitmap_minimum(p->stored) : 0;
    size_t span = n ? roaring_bitmap_maximum(p->stored) - *first + 1 : 0;
    uint8_t *d = calloc(span / 8 + 1, 1), *s = calloc(n / 8 + 1, 1);
    if (d && s) {
        roaring_uint32_iterator_t it;
        roaring_init_iterator(p->stored, &it);
        for (size_t k = 0; it.has_value; k++, roaring_advance_uint32_iterator(&it)) {
            uint32_t i = it.current_value - *first;
            d[i / 8] |= (uint8_t)(1u << i % 8);
            if (roaring_bitmap_contains(p->slot1, it.current_value))
                s[k / 8] |= (uint8_t)(1u << k % 8);
        }
    }
    *days = d ? rm_os_b64_encode((const char *)d, (span + 7) / 8) : NULL;
    *slots = s ? rm_os_b64_encode((const char *)s, (n + 7) / 8) : NULL;
    free(d);
    free(s);
    return *days && *slots ? 0 : -1;
}

char *rm_os_head_source(const rm_sink_item_t *it, const rm_os_plan_t *p) {
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    rm_avail_encode_head(it->st, head);
    uint32_t first;
    char *days = NULL, *slots = NULL, *h = rm_os_b64_encode((const char *)head, sizeof(head));
    int bits = head_bits(p, &first, &days, &slots);
    json_t *prof = rm_profile_to_json(it->profile);
    json_t *o = h && bits == 0 && prof
                    ? json_pack("{s:i,s:I,s:s,s:i,s:s,s:s,s:O}", "partition", (int)it->partition,
                                "fence", (json_int_t)it->fence, "h", h, "first", (int)first, "days",
                                days, "slot1", slots, "profile", prof)
                    : NULL;
    json_decref(prof);
    free(h);
    free(days);
    free(slots);
    char *src = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return src;
}

/* ---- load ---- */

void rm_os_head_free(rm_os_head_t *h) {
    free(h->days);
    free(h->slot);
    memset(h, 0, sizeof(*h));
}

/* Base64 field `name` of src decoded into a new buffer (*len bytes). */
static char *b64_field(json_t *src, const char *name, size_t *len) {
    const char *v = json_string_value(json_object_get(src, name));
    return v ? rm_os_b64_decode(v, len) : NULL;
}

/* The stored days and their slots of a head in the per-day form. */
static int head_days(json_t *src, rm_os_head_t *h) {
    json_t *first = json_object_get(src, "first");
    size_t dl = 0, sl = 0, hl = 0;
    char *d = b64_field(src, "days", &dl), *s = b64_field(src, "slot1", &sl);
    char *hb = b64_field(src, "h", &hl);
    int rc = -1;
    if (!d || !s || !hb || hl != RM_AVAIL_HEAD_BYTES || !json_is_integer(first) ||
        json_integer_value(first) < 0 || json_integer_value(first) > RM_DAY_MAX)
        goto done;
    memcpy(h->h, hb, RM_AVAIL_HEAD_BYTES);
    uint32_t base = (uint32_t)json_integer_value(first);
    h->days = malloc(dl * 8 * sizeof(*h->days) + 1);
    h->slot = malloc(dl * 8 + 1);
    if (!h->days || !h->slot)
        goto done;
    for (size_t i = 0; i < dl * 8; i++) {
        if (!((uint8_t)d[i / 8] >> i % 8 & 1))
            continue;
        if (base + i > RM_DAY_MAX || h->n / 8 >= sl)
            goto done;
        h->days[h->n] = (uint16_t)(base + i);
        h->slot[h->n] = (uint8_t)s[h->n / 8] >> h->n % 8 & 1;
        h->n++;
    }
    rc = (h->n + 7) / 8 == sl ? 0 : -1;
done:
    free(d);
    free(s);
    free(hb);
    return rc;
}

int rm_os_head_read(json_t *doc, rm_sink_item_t *it, rm_os_head_t *h) {
    json_t *src = json_object_get(doc, "_source");
    json_t *p = json_object_get(src, "partition"), *f = json_object_get(src, "fence");
    if (!json_is_integer(p) || !json_is_integer(f) ||
        !json_is_integer(json_object_get(doc, "_version")))
        return -1;
    if (rm_profile_from_json(it->profile, json_object_get(src, "profile")))
        return -1;
    it->partition = (int32_t)json_integer_value(p);
    it->fence = json_integer_value(f);
    h->version = json_integer_value(json_object_get(doc, "_version"));
    const char *a = json_string_value(json_object_get(src, "avail"));
    if (!a) {
        h->pending = true;
        return head_days(src, h);
    }
    size_t len;
    char *bytes = rm_os_b64_decode(a, &len);
    int rc = bytes ? rm_avail_decode(it->st, bytes, len) : -1;
    free(bytes);
    if (rc)
        return -1;
    rm_avail_mark_rewrite(it->st); /* the next write stores it per day */
    return 0;
}

int rm_os_head_finish(rm_sink_item_t *it, const rm_os_head_t *h, json_t *docs, size_t at) {
    rm_day_bytes_t *dv = calloc(h->n + 1, sizeof(*dv));
    char **bufs = calloc(h->n + 1, sizeof(*bufs));
    roaring_bitmap_t *slot1 = roaring_bitmap_create();
    int rc = dv && bufs && slot1 ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < h->n; k++) {
        json_t *d = json_array_get(docs, at + k);
        json_t *ver = json_object_get(d, "_version");
        /* A slot newer than its head was written by a writer with a higher
         * fence that never committed: its value is not the head's. */
        if (!json_is_true(json_object_get(d, "found")) || !json_is_integer(ver) ||
            json_integer_value(ver) > h->version ||
            !(bufs[k] = b64_field(json_object_get(d, "_source"), "v", &dv[k].len))) {
            rc = -1;
            break;
        }
        dv[k].day = h->days[k];
        dv[k].p = bufs[k];
        if (h->slot[k])
            roaring_bitmap_add(slot1, h->days[k]);
    }
    if (rc == 0)
        rc = rm_avail_decode_days(it->st, h->h, RM_AVAIL_HEAD_BYTES, dv, h->n) ? -1 : 0;
    if (rc == 0) {
        if (it->st->os_slot1)
            roaring_bitmap_free(it->st->os_slot1);
        it->st->os_slot1 = slot1;
        slot1 = NULL;
    }
    for (size_t k = 0; bufs && k < h->n; k++)
        free(bufs[k]);
    free(bufs);
    free(dv);
    if (slot1)
        roaring_bitmap_free(slot1);
    return rc;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *rm_os_b64_encode(const char *in, size_t len) {
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

char *rm_os_b64_decode(const char *in, size_t *len) {
    size_t n = strlen(in);
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *c = in[i + k] == '=' ? NULL : strchr(b64, in[i + k]);
            if (in[i + k] == '=' && i + 4 == n && k >= 2)
                pad++;
            else if (!c || !in[i + k] || pad) {
                free(out);
                return NULL;
            }
            v = v << 6 | (c ? (unsigned)(c - b64) : 0);
        }
        out[o++] = (char)(v >> 16);
        if (pad < 2)
            out[o++] = (char)(v >> 8 & 255);
        if (pad < 1)
            out[o++] = (char)(v & 255);
    }
    *len = o;
    return out;
}
