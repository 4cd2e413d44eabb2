/*
 * The OpenSearch state index's per-day form (see opensearch_state.h): what
 * a write stores (the plan, the head and slot documents), how a head and
 * its slot documents decode (also the two older forms), and the base64 of
 * the binary values.
 *
 * Head _source: {"partition", "fence", "profile", "h": base64 of the
 * rm_avail head bytes, "first": the first stored day, "days": base64 of a
 * bit set over [first, last stored day] (bit i, byte i / 8, bit i % 8: day
 * first + i is stored), "fences": base64 of the runs of stored days (in
 * ascending order) whose slot ids carry the same fence, each as two
 * varints: its length and the zigzag of (head fence - that fence)}. A whole
 * write is one run; each later write of a day splits at most one run in
 * three. Its size grows with the span of the stored days (one bit a day)
 * and the number of runs (2 to 6 bytes each, at most one a stored day), not
 * with the bookings. The earlier two-slot form
 * had "slot1" (bit k: the k-th stored day is in p:<pid>:<date>:1, else :0)
 * instead of "fences"; it is read, and rewritten whole. Slot _source:
 * {"v": base64 of the day's value}.
 */
#include "opensearch_state.h"
#include "readmodel/date.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index in st's committed list of day, or -1. */
static long committed_at(const rm_avail_t *st, uint16_t day) {
    size_t lo = 0, hi = st->os_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->os_days[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < st->os_n && st->os_days[lo] == day ? (long)lo : -1;
}

rm_err_t rm_os_plan(const rm_avail_t *st, bool whole, int64_t fence, rm_os_plan_t *p) {
    memset(p, 0, sizeof(*p));
    if (!(p->stored = roaring_bitmap_create()))
        return RM_ERR_NOMEM;
    rm_avail_state_days(st, p->stored);
    p->written = whole ? roaring_bitmap_copy(p->stored) : roaring_bitmap_and(st->sdirty, p->stored);
    p->n = (size_t)roaring_bitmap_get_cardinality(p->stored);
    p->days = malloc((p->n + 1) * sizeof(*p->days));
    p->fences = malloc((p->n + 1) * sizeof(*p->fences));
    if (!p->written || !p->days || !p->fences) {
        rm_os_plan_free(p);
        return RM_ERR_NOMEM;
    }
    roaring_uint32_iterator_t it;
    roaring_init_iterator(p->stored, &it);
    for (size_t k = 0; it.has_value; k++, roaring_advance_uint32_iterator(&it)) {
        uint16_t day = (uint16_t)it.current_value;
        long at = roaring_bitmap_contains(p->written, day) ? -1 : committed_at(st, day);
        if (at < 0) /* written now (a stored day no head names is written too) */
            roaring_bitmap_add(p->written, day);
        p->days[k] = day;
        p->fences[k] = at < 0 ? fence : st->os_fences[at];
    }
    return RM_ERR_OK;
}

void rm_os_plan_free(rm_os_plan_t *p) {
    if (p->stored)
        roaring_bitmap_free(p->stored);
    if (p->written)
        roaring_bitmap_free(p->written);
    free(p->days);
    free(p->fences);
    memset(p, 0, sizeof(*p));
}

void rm_os_plan_commit(rm_avail_t *st, rm_os_plan_t *p) {
    free(st->os_days);
    free(st->os_fences);
    st->os_days = p->days;
    st->os_fences = p->fences;
    st->os_n = (uint32_t)p->n;
    p->days = NULL;
    p->fences = NULL;
    p->n = 0;
}

int rm_os_plan_superseded(const rm_avail_t *st, const rm_os_plan_t *p,
                          int (*fn)(void *arg, uint16_t day, int64_t fence), void *arg) {
    size_t k = 0;
    for (uint32_t i = 0; i < st->os_n; i++) {
        while (k < p->n && p->days[k] < st->os_days[i])
            k++;
        bool kept = k < p->n && p->days[k] == st->os_days[i] && p->fences[k] == st->os_fences[i];
        int rc = kept ? 0 : fn(arg, st->os_days[i], st->os_fences[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void rm_os_head_id(char *out, size_t cap, const char *pid, size_t len) {
    snprintf(out, cap, "p:%.*s", (int)len, pid);
}

void rm_os_slot_id(char *out, size_t cap, const char *pid, size_t len, uint16_t day,
                   int64_t fence) {
    char date[RM_DATE_LEN + 1];
    rm_date_format(day, date);
    snprintf(out, cap, "p:%.*s:%s@%lld", (int)len, pid, date, (long long)fence);
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

static uint64_t zigzag(int64_t v) {
    return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static int64_t unzigzag(uint64_t u) {
    return u & 1 ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static size_t put_varint(uint8_t *out, uint64_t u) {
    size_t n = 0;
    for (; u >= 0x80; u >>= 7)
        out[n++] = (uint8_t)(u | 0x80);
    out[n++] = (uint8_t)u;
    return n;
}

/* The day bit set and the fence runs of a head (see the top of this file),
 * base64. */
static int head_bits(const rm_os_plan_t *p, int64_t fence, uint32_t *first, char **days,
                     char **fences) {
    *first = p->n ? p->days[0] : 0;
    size_t span = p->n ? p->days[p->n - 1] - *first + 1u : 0, fl = 0;
    uint8_t *d = calloc(span / 8 + 1, 1), *f = malloc(p->n * 20 + 1);
    for (size_t k = 0; d && f && k < p->n; k++) {
        uint32_t i = p->days[k] - *first;
        d[i / 8] |= (uint8_t)(1u << i % 8);
        if (k + 1 < p->n && p->fences[k + 1] == p->fences[k])
            continue; /* the run goes on */
        size_t run = 1;
        while (run <= k && p->fences[k - run] == p->fences[k])
            run++;
        fl += put_varint(f + fl, run);
        fl += put_varint(f + fl, zigzag(fence - p->fences[k]));
    }
    *days = d ? rm_os_b64_encode((const char *)d, (span + 7) / 8) : NULL;
    *fences = f ? rm_os_b64_encode((const char *)f, fl) : NULL;
    free(d);
    free(f);
    return *days && *fences ? 0 : -1;
}

char *rm_os_head_source(const rm_sink_item_t *it, const rm_os_plan_t *p) {
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    rm_avail_encode_head(it->st, head);
    uint32_t first;
    char *days = NULL, *fences = NULL, *h = rm_os_b64_encode((const char *)head, sizeof(head));
    int bits = head_bits(p, it->fence, &first, &days, &fences);
    json_t *prof = rm_profile_to_json(it->profile);
    json_t *o = h && bits == 0 && prof
                    ? json_pack("{s:i,s:I,s:s,s:i,s:s,s:s,s:O}", "partition", (int)it->partition,
                                "fence", (json_int_t)it->fence, "h", h, "first", (int)first, "days",
                                days, "fences", fences, "profile", prof)
                    : NULL;
    json_decref(prof);
    free(h);
    free(days);
    free(fences);
    char *src = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return src;
}

/* ---- load ---- */

void rm_os_head_free(rm_os_head_t *h) {
    free(h->days);
    free(h->fences);
    free(h->slot);
    memset(h, 0, sizeof(*h));
}

/* Base64 field `name` of src decoded into a new buffer (*len bytes). */
static char *b64_field(json_t *src, const char *name, size_t *len) {
    const char *v = json_string_value(json_object_get(src, name));
    return v ? rm_os_b64_decode(v, len) : NULL;
}

static int get_varint(const char *f, size_t fl, size_t *at, uint64_t *u) {
    *u = 0;
    for (int shift = 0;; shift += 7) {
        if (*at >= fl || shift > 63)
            return -1;
        uint8_t b = (uint8_t)f[(*at)++];
        *u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
}

/* The fences of h's n days from the runs f[0 .. fl), or in the legacy form
 * their slot bits. */
static int day_slots(rm_os_head_t *h, int64_t fence, const char *f, size_t fl) {
    if (h->slot) {
        if ((h->n + 7) / 8 != fl) /* checked before f is read */
            return -1;
        for (size_t k = 0; k < h->n; k++)
            h->slot[k] = (uint8_t)f[k / 8] >> k % 8 & 1;
        return 0;
    }
    size_t at = 0, k = 0;
    while (at < fl) {
        uint64_t run, z;
        if (get_varint(f, fl, &at, &run) || get_varint(f, fl, &at, &z) || !run || run > h->n - k)
            return -1;
        int64_t day_fence; /* garbage must not overflow the subtraction */
        if (__builtin_sub_overflow(fence, unzigzag(z), &day_fence) || day_fence < -1)
            return -1;
        for (; run; run--)
            h->fences[k++] = day_fence;
    }
    return k == h->n ? 0 : -1;
}

/* The stored days and their slots of a head in a per-day form. */
static int head_days(json_t *src, int64_t fence, rm_os_head_t *h) {
    json_t *first = json_object_get(src, "first");
    bool legacy = !json_object_get(src, "fences");
    size_t dl = 0, fl = 0, hl = 0;
    char *d = b64_field(src, "days", &dl), *f = b64_field(src, legacy ? "slot1" : "fences", &fl);
    char *hb = b64_field(src, "h", &hl);
    int rc = -1;
    if (!d || !f || !hb || hl != RM_AVAIL_HEAD_BYTES || !json_is_integer(first) ||
        json_integer_value(first) < 0 || json_integer_value(first) > RM_DAY_MAX)
        goto done;
    memcpy(h->h, hb, RM_AVAIL_HEAD_BYTES);
    uint32_t base = (uint32_t)json_integer_value(first);
    h->days = malloc(dl * 8 * sizeof(*h->days) + 1);
    if (legacy)
        h->slot = malloc(dl * 8 + 1);
    else
        h->fences = malloc(dl * 8 * sizeof(*h->fences) + 1);
    if (!h->days || (!h->slot && !h->fences))
        goto done;
    for (size_t i = 0; i < dl * 8; i++) {
        if (!((uint8_t)d[i / 8] >> i % 8 & 1))
            continue;
        if (base + i > RM_DAY_MAX)
            goto done;
        h->days[h->n++] = (uint16_t)(base + i);
    }
    rc = day_slots(h, fence, f, fl);
done:
    free(d);
    free(f);
    free(hb);
    return rc;
}

int rm_os_head_read(json_t *doc, rm_sink_item_t *it, rm_os_head_t *h) {
    json_t *src = json_object_get(doc, "_source");
    json_t *p = json_object_get(src, "partition"), *f = json_object_get(src, "fence");
    if (!json_is_integer(p) || !json_is_integer(f))
        return -1;
    if (rm_profile_from_json(it->profile, json_object_get(src, "profile")))
        return -1;
    it->partition = (int32_t)json_integer_value(p);
    it->fence = json_integer_value(f);
    const char *a = json_string_value(json_object_get(src, "avail"));
    if (!a) {
        h->pending = true;
        return head_days(src, it->fence, h);
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

void rm_os_head_slot_id(const rm_sink_item_t *it, const rm_os_head_t *h, size_t k, char *out,
                        size_t cap) {
    if (!h->slot) {
        rm_os_slot_id(out, cap, it->pid, it->pid_len, h->days[k], h->fences[k]);
        return;
    }
    char date[RM_DATE_LEN + 1];
    rm_date_format(h->days[k], date);
    snprintf(out, cap, "p:%.*s:%s:%d", (int)it->pid_len, it->pid, date, h->slot[k]);
}

int rm_os_head_finish(rm_sink_item_t *it, const rm_os_head_t *h, json_t *docs, size_t at) {
    rm_day_bytes_t *dv = calloc(h->n + 1, sizeof(*dv));
    char **bufs = calloc(h->n + 1, sizeof(*bufs));
    uint16_t *days = h->slot ? NULL : malloc((h->n + 1) * sizeof(*days));
    int64_t *fences = h->slot ? NULL : malloc((h->n + 1) * sizeof(*fences));
    int rc = dv && bufs && (h->slot || (days && fences)) ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < h->n; k++) {
        json_t *d = json_array_get(docs, at + k);
        if (!json_is_true(json_object_get(d, "found")) ||
            !(bufs[k] = b64_field(json_object_get(d, "_source"), "v", &dv[k].len))) {
            rc = -1;
            break;
        }
        dv[k].day = h->days[k];
        dv[k].p = bufs[k];
    }
    if (rc == 0)
        rc = rm_avail_decode_days(it->st, h->h, RM_AVAIL_HEAD_BYTES, dv, h->n) ? -1 : 0;
    if (rc == 0 && h->slot) {
        rm_avail_mark_rewrite(it->st); /* stored again whole, in write-once slots */
    } else if (rc == 0) {
        memcpy(days, h->days, h->n * sizeof(*days));
        memcpy(fences, h->fences, h->n * sizeof(*fences));
        free(it->st->os_days);
        free(it->st->os_fences);
        it->st->os_days = days;
        it->st->os_fences = fences;
        it->st->os_n = (uint32_t)h->n;
        days = NULL;
        fences = NULL;
    }
    for (size_t k = 0; bufs && k < h->n; k++)
        free(bufs[k]);
    free(bufs);
    free(dv);
    free(days);
    free(fences);
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
