/*
 * Redis sink: pipelined through the client of redis_cluster.c (append every
 * command, then read every reply: one write and one read per batch and
 * node), one Lua script per practitioner (a rebuild's forced write: one
 * MULTI/EXEC) so its keys, state and fence change together: all of a
 * practitioner's keys share the hash tag {pid}, so in a cluster they are in
 * one slot, on one master. After an I/O error the connections are never
 * reused: they are dropped and the next call reconnects.
 */
#include "redis_internal.h"
#include "readmodel/date.h"
#include "readmodel/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPELINE_PRACTITIONERS 256
#define WAIT_REPLICA_MS        2000

/* The state of a practitioner is the hash KEYS[1] = "<prefix>state:{pid}":
 * p and f (the fence: partition and offset of its last applied event), h
 * (rm_avail_encode_head) and one field per day that holds anything, named
 * YYYY-MM-DD, valued rm_avail_encode_days (its published slots and
 * bookings). A write carries only the days whose state changed, so its cost
 * is bounded by what the events changed, not by the history.
 *
 * KEYS[2..] day keys; ARGV[1] partition, ARGV[2] fence, ARGV[3] head,
 * ARGV[4] expected stored partition, ARGV[5] expected stored fence (""
 * and "": no stored state), ARGV[6] "1" to replace the stored state whole
 * (it was read in the old single-blob form, field s) else "", ARGV[7] the
 * number n of day fields, ARGV[8 .. 7 + 2n] day field and value pairs (""
 * deletes the field), then one value per day key ("" deletes the key). The
 * write happens only when the stored fence is the one the writer read or
 * wrote last: anything else (a replay, another writer, a Redis that lost
 * data) returns 0 and changes nothing. A rebuild's forced write does not
 * come here (append_forced). */
static const char flush_lua[] =
    "local cur = redis.call('HMGET', KEYS[1], 'p', 'f')\n"
    "if (cur[1] or '') ~= ARGV[4] or (cur[2] or '') ~= ARGV[5] then\n"
    "  return 0\n"
    "end\n"
    "local base = 7 + 2 * tonumber(ARGV[7])\n"
    "local set, del = {}, {}\n"
    "for i = 2, #KEYS do\n"
    "  local v = ARGV[base + i - 1]\n"
    "  if v == '' then del[#del + 1] = KEYS[i] else set[#set + 1] = KEYS[i]; set[#set + 1] = v "
    "end\n"
    "end\n"
    "for i = 1, #set, 512 do redis.call('MSET', unpack(set, i, math.min(i + 511, #set))) end\n"
    "for i = 1, #del, 512 do redis.call('DEL', unpack(del, i, math.min(i + 511, #del))) end\n"
    "if ARGV[6] == '1' then redis.call('DEL', KEYS[1]) end\n"
    "local hs, hd = {'p', ARGV[1], 'f', ARGV[2], 'h', ARGV[3]}, {}\n"
    "for i = 8, base, 2 do\n"
    "  if ARGV[i + 1] == '' then hd[#hd + 1] = ARGV[i] else hs[#hs + 1] = ARGV[i]; "
    "hs[#hs + 1] = ARGV[i + 1] end\n"
    "end\n"
    "for i = 1, #hs, 512 do redis.call('HSET', KEYS[1], unpack(hs, i, math.min(i + 511, #hs))) "
    "end\n"
    "for i = 1, #hd, 512 do redis.call('HDEL', KEYS[1], unpack(hd, i, math.min(i + 511, #hd))) "
    "end\n"
    "return 1\n";

/* KEYS[1] checkpoint; ARGV[1] expected ("" = absent), ARGV[2] new. */
static const char cas_lua[] = "local cur = redis.call('GET', KEYS[1]) or ''\n"
                              "if cur ~= ARGV[1] then return {0, cur} end\n"
                              "redis.call('SET', KEYS[1], ARGV[2])\n"
                              "return {1, ARGV[2]}\n";

/* "<prefix>avail:{<pid>}:<date>" without snprintf: a rebuild formats a key
 * for every practitioner-day it writes, and printf-style formatting was
 * most of its own CPU time in the write phase. */
int rm_redis_key_avail(char *out, size_t cap, const char *prefix, const char *pid, size_t pid_len,
                       uint16_t day) {
    char date[RM_DATE_LEN + 1];
    rm_date_format(day, date);
    size_t prefix_len = strlen(prefix), n = prefix_len + 7 + pid_len + 2 + RM_DATE_LEN;
    if (n >= cap) { /* does not fit: truncated as snprintf would, and refused */
        snprintf(out, cap, "%savail:{%.*s}:%s", prefix, (int)pid_len, pid, date);
        return -1;
    }
    char *at = out;
    memcpy(at, prefix, prefix_len);
    at += prefix_len;
    memcpy(at, "avail:{", 7);
    at += 7;
    memcpy(at, pid, pid_len);
    at += pid_len;
    memcpy(at, "}:", 2);
    at += 2;
    memcpy(at, date, RM_DATE_LEN + 1);
    return (int)n;
}

/* snprintf's result as a key length: -1 when it failed or truncated. */
static int key_len(int n, size_t cap) {
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int rm_redis_key_state(char *out, size_t cap, const char *prefix, const char *pid, size_t pid_len) {
    return key_len(snprintf(out, cap, "%sstate:{%.*s}", prefix, (int)pid_len, pid), cap);
}

int rm_redis_key_checkpoint(char *out, size_t cap, const char *prefix, const char *topic,
                            int32_t partition) {
    return key_len(snprintf(out, cap, "%scheckpoint:%s:%d", prefix, topic, (int)partition), cap);
}

rm_err_t rm_redis_key_error(rm_redis_sink_t *s, const char *what, size_t cap, bool queued) {
    snprintf(s->err, sizeof(s->err),
             "redis: %s key too long (over %zu bytes, of which the prefix is %zu)", what, cap - 1,
             strlen(s->prefix));
    if (queued) /* commands appended but not sent: never send them */
        rm_rclient_reset(s->cl);
    return RM_ERR_INVAL;
}

rm_redis_sink_t *rm_redis_sink_new(const rm_redis_url_t *url, const char *prefix) {
    rm_redis_sink_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    /* Every copy or none: a lost user or password would connect without
     * authentication. */
    if (rm_redis_url_copy(&s->url, url) < 0) {
        free(s);
        return NULL;
    }
    s->prefix = strdup(prefix);
    s->cl = rm_rclient_new(&s->url); /* borrows s->url */
    if (!s->prefix || !s->cl) {
        rm_redis_sink_free(s);
        return NULL;
    }
    return s;
}

void rm_redis_sink_free(rm_redis_sink_t *s) {
    if (!s)
        return;
    rm_rclient_free(s->cl);
    rm_redis_url_free(&s->url);
    free(s->prefix);
    free(s);
}

const char *rm_redis_sink_last_error(const rm_redis_sink_t *s) {
    return s->err;
}

rm_err_t rm_redis_io_error(rm_redis_sink_t *s, rm_err_t e) {
    const char *why = rm_rclient_error(s->cl);
    snprintf(s->err, sizeof(s->err), "%s", why[0] ? why : "redis: I/O error");
    rm_rclient_reset(s->cl);
    return e;
}

/* Whether an error reply says the server refuses this client as configured
 * (credentials, ACL permissions, database), which no retry will change. */
static bool refuses_configuration(const redisReply *r, const char *what) {
    static const char *const prefixes[] = {"WRONGPASS", "NOAUTH",
                                           "NOPERM",    "ERR invalid password",
                                           "ERR AUTH",  "ERR Client sent AUTH"};
    if (strcmp(what, "AUTH") == 0 || strcmp(what, "SELECT") == 0)
        return true;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (r->len >= strlen(prefixes[i]) && strncmp(r->str, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

rm_err_t rm_redis_reply_error(rm_redis_sink_t *s, const redisReply *r, const char *what) {
    bool is_error = r && r->type == REDIS_REPLY_ERROR;
    snprintf(s->err, sizeof(s->err), "redis %s: %.*s", what, is_error ? (int)r->len : 16,
             is_error ? r->str : "unexpected reply");
    return is_error && refuses_configuration(r, what) ? RM_ERR_CONFIG : RM_ERR_REPLY;
}

/* Runs one command; on success *out is the reply (caller frees). */
rm_err_t rm_redis_command(rm_redis_sink_t *s, redisReply **out, int key_arg, int argc,
                          const char **argv, const size_t *lens) {
    redisReply *r = NULL;
    rm_err_t ce = rm_rclient_command(s->cl, &r, key_arg ? argv[key_arg] : NULL,
                                     key_arg ? lens[key_arg] : 0, argc, argv, lens);
    if (ce)
        return rm_redis_io_error(s, ce);
    if (r->type == REDIS_REPLY_ERROR) {
        rm_err_t e = rm_redis_reply_error(s, r, argv[0]);
        freeReplyObject(r);
        return e;
    }
    *out = r;
    return RM_ERR_OK;
}

/* SCRIPT LOAD on every master (a script is not replicated: a promoted
 * replica answers NOSCRIPT, and the caller loads it again). */
rm_err_t rm_redis_load_script(rm_redis_sink_t *s, const char *src, char sha[48]) {
    const char *argv[] = {"SCRIPT", "LOAD", src};
    size_t lens[] = {6, 4, strlen(src)};
    size_t n = rm_rclient_masters(s->cl);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        rm_err_t e = rm_rclient_master_command(s->cl, i, &r, 3, argv, lens);
        if (e)
            return rm_redis_io_error(s, e);
        if (r->type != REDIS_REPLY_STRING || r->len >= 48) {
            e = rm_redis_reply_error(s, r, "SCRIPT LOAD");
            freeReplyObject(r);
            return e;
        }
        memcpy(sha, r->str, r->len + 1);
        freeReplyObject(r);
    }
    return n ? RM_ERR_OK : rm_redis_io_error(s, RM_ERR_IO);
}

static rm_err_t load_script(rm_redis_sink_t *s, const char *src, char sha[48]) {
    return rm_redis_load_script(s, src, sha);
}

/* Connects (TLS, AUTH and SELECT in redis_conn.c; the mode and slot map
 * in redis_cluster.c) and, on every new connection or map, loads the
 * scripts on every master. */
rm_err_t rm_redis_sink_connect(rm_redis_sink_t *s) {
    bool fresh;
    rm_err_t e = rm_rclient_connect(s->cl, &fresh);
    if (e)
        return rm_redis_io_error(s, e);
    if (fresh && ((e = load_script(s, flush_lua, s->flush_sha)) ||
                  (e = load_script(s, cas_lua, s->cas_sha)))) {
        rm_rclient_reset(s->cl);
        return e;
    }
    return RM_ERR_OK;
}

static int64_t parse_i64(const char *str, size_t len, bool *ok) {
    char buf[32];
    if (len == 0 || len >= sizeof(buf)) {
        *ok = false;
        return -1;
    }
    memcpy(buf, str, len);
    buf[len] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    *ok = *end == '\0';
    return v;
}

int64_t rm_redis_parse_i64(const char *str, size_t len, bool *ok) {
    return parse_i64(str, len, ok);
}

/* Whether the field name is a day (YYYY-MM-DD); its number in *day. */
static bool day_field(const redisReply *name, uint16_t *day) {
    return name->type == REDIS_REPLY_STRING && name->len == RM_DATE_LEN &&
           rm_date_parse(name->str, name->len, day);
}

/* Decodes one HGETALL reply of a state hash into it (see flush_lua for the
 * layout). A hash with the old single blob (field s, no head h) is decoded
 * and marked for a whole rewrite (rm_avail_mark_rewrite) so the next write
 * replaces it in the per-day form; a hash with neither (a bare fence) holds
 * no state. 0, or -1 when it does not decode. */
static int decode_state(rm_sink_item_t *it, const redisReply *r) {
    const redisReply *p = NULL, *f = NULL, *h = NULL, *blob = NULL;
    size_t ndays = 0;
    for (size_t k = 0; k + 1 < r->elements; k += 2) {
        const redisReply *name = r->element[k], *v = r->element[k + 1];
        uint16_t day;
        if (name->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        if (name->len == 1 && (name->str[0] == 'p' || name->str[0] == 'f' || name->str[0] == 'h' ||
                               name->str[0] == 's')) {
            const redisReply **slot = name->str[0] == 'p'   ? &p
                                      : name->str[0] == 'f' ? &f
                                      : name->str[0] == 'h' ? &h
                                                            : &blob;
            *slot = v;
        } else if (day_field(name, &day)) {
            ndays++;
        } else {
            return -1; /* a field this program never writes */
        }
    }
    if (r->elements % 2)
        return -1;
    if (!h && !blob) /* a bare fence is no state; days without a head are not ours */
        return ndays ? -1 : 0;
    bool ok1 = false, ok2 = false;
    if (p && f) {
        it->partition = (int32_t)parse_i64(p->str, p->len, &ok1);
        it->fence = parse_i64(f->str, f->len, &ok2);
    }
    if (!ok1 || !ok2)
        return -1;
    if (!h) { /* the old form: one blob of the whole state */
        if (ndays || rm_avail_decode(it->st, blob->str, blob->len) != 0)
            return -1;
        rm_avail_mark_rewrite(it->st);
        return 0;
    }
    rm_day_bytes_t *days = malloc((ndays ? ndays : 1) * sizeof(*days));
    if (!days)
        return -1;
    size_t nd = 0;
    for (size_t k = 0; k + 1 < r->elements; k += 2)
        if (day_field(r->element[k], &days[nd].day)) {
            days[nd].p = r->element[k + 1]->str;
            days[nd++].len = r->element[k + 1]->len;
        }
    int rc = rm_avail_decode_days(it->st, h->str, h->len, days, nd);
    free(days);
    return rc ? -1 : 0;
}

rm_err_t rm_redis_sink_load(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256];
    for (size_t i = 0; i < n; i++) {
        int kl = rm_redis_key_state(key, sizeof(key), s->prefix, items[i].pid, items[i].pid_len);
        if (kl < 0)
            return rm_redis_key_error(s, "state", sizeof(key), i > 0);
        const char *argv[] = {"HGETALL", key};
        size_t lens[] = {7, (size_t)kl};
        if ((e = rm_rclient_append(s->cl, key, (size_t)kl, 2, argv, lens)))
            return rm_redis_io_error(s, e);
    }
    rm_err_t result = RM_ERR_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if ((e = rm_rclient_reply(s->cl, &r)))
            return rm_redis_io_error(s, e);
        rm_sink_item_t *it = &items[i];
        it->partition = -1;
        it->fence = -1;
        it->corrupt = false;
        if (r->type != REDIS_REPLY_ARRAY) {
            if (result == RM_ERR_OK)
                result = rm_redis_reply_error(s, r, "HGETALL");
        } else if (decode_state(it, r) < 0) {
            snprintf(s->err, sizeof(s->err), "redis: stored state of %.*s is corrupt",
                     (int)it->pid_len, it->pid);
            it->partition = -1;
            it->fence = -1;
            it->corrupt = true;
            result = RM_ERR_CORRUPT;
        }
        freeReplyObject(r);
    }
    return result;
}

/* A growing buffer of RESP (the Redis protocol) for commands built by hand:
 * hiredis' redisAppendCommandArgv formats each argument with a printf-like
 * routine, a large part of a rebuild's own CPU time in its write phase. */
typedef struct {
    char *p;
    size_t len, cap;
    bool nomem;
} resp_t;

static char *resp_room(resp_t *b, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *p = b->nomem ? NULL : realloc(b->p, cap);
        if (!p) {
            b->nomem = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    char *at = b->p + b->len;
    b->len += n;
    return at;
}

/* `c` (one of '*' and '$') then decimal v then CRLF. */
static void resp_head(resp_t *b, char c, size_t v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char *at = resp_room(b, (size_t)n + 3);
    if (!at)
        return;
    *at++ = c;
    while (n)
        *at++ = digits[--n];
    at[0] = '\r';
    at[1] = '\n';
}

static void resp_bulk(resp_t *b, const void *p, size_t n) {
    resp_head(b, '$', n);
    char *at = resp_room(b, n + 2);
    if (!at)
        return;
    memcpy(at, p, n);
    at[n] = '\r';
    at[n + 1] = '\n';
}

static void resp_command(resp_t *b, int argc, const char *const *argv) {
    resp_head(b, '*', (size_t)argc);
    for (int i = 0; i < argc; i++)
        resp_bulk(b, argv[i], strlen(argv[i]));
}

/* The stored values of the days a write carries: every day with a stored
 * value for a whole write, else the days whose state changed. The bytes
 * into *buf, the days into *days and *n, their field names (YYYY-MM-DD,
 * RM_DATE_LEN + 1 bytes each) into *names; the caller frees all three. */
static rm_err_t state_fields(const rm_avail_t *st, bool whole, char **buf, rm_day_bytes_t **days,
                             size_t *n, char **names) {
    roaring_bitmap_t *all = whole ? roaring_bitmap_create() : NULL;
    if (whole && !all)
        return RM_ERR_NOMEM;
    if (all)
        rm_avail_state_days(st, all);
    int rc = rm_avail_encode_days(st, all ? all : st->sdirty, buf, days, n);
    if (all)
        roaring_bitmap_free(all);
    *names = rc ? NULL : malloc(*n * (RM_DATE_LEN + 1) + 1);
    if (!*names) {
        if (!rc) {
            free(*buf);
            free(*days);
            *buf = NULL;
            *days = NULL;
        }
        return RM_ERR_NOMEM;
    }
    for (size_t i = 0; i < *n; i++)
        rm_date_format((*days)[i].day, *names + i * (RM_DATE_LEN + 1));
    return RM_ERR_OK;
}

#define HSET_PAIRS 512

/* HSET commands of the whole state into b: the fence and head, then every
 * day of sd with a value, at most HSET_PAIRS fields a command. Returns how
 * many commands (one at least). */
static size_t resp_state_hset(resp_t *b, const char *skey, size_t skl, const char *part,
                              const char *fence, const uint8_t head[RM_AVAIL_HEAD_BYTES],
                              const rm_day_bytes_t *sd, size_t nsd, const char *names) {
    size_t left = 0, k = 0, ncmd = 0;
    for (size_t i = 0; i < nsd; i++)
        left += sd[i].len > 0;
    for (bool first = true; first || left; first = false, ncmd++) {
        size_t room = HSET_PAIRS - (first ? 3 : 0), ndays = left < room ? left : room;
        resp_head(b, '*', 2 + 2 * (ndays + (first ? 3 : 0)));
        resp_bulk(b, "HSET", 4);
        resp_bulk(b, skey, skl);
        if (first) {
            resp_bulk(b, "p", 1);
            resp_bulk(b, part, strlen(part));
            resp_bulk(b, "f", 1);
            resp_bulk(b, fence, strlen(fence));
            resp_bulk(b, "h", 1);
            resp_bulk(b, head, RM_AVAIL_HEAD_BYTES);
        }
        for (size_t m = 0; m < ndays; k++) {
            if (!sd[k].len)
                continue;
            resp_bulk(b, names + k * (RM_DATE_LEN + 1), RM_DATE_LEN);
            resp_bulk(b, sd[k].p, sd[k].len);
            m++;
        }
        left -= ndays;
    }
    return ncmd;
}

/* A forced write (rebuild, under its lease) compares nothing, so it needs
 * no script: MULTI, MSET of the days with free slots, DEL of the others,
 * DEL of the state, HSET of the fence, head and every day's state (in
 * commands of HSET_PAIRS fields), EXEC. As atomic as the script, and Redis
 * spends about a third less CPU per key than on the script's Lua tables.
 * The commands are written as RESP directly (one pass over the days, which
 * arrive in ascending order). Sets *replies to the number of replies it
 * will produce. RM_ERR_NOMEM, RM_ERR_IO (the client's), RM_ERR_INVAL when
 * a key does not fit. */
static rm_err_t append_forced(rm_redis_sink_t *s, const rm_sink_item_t *it, char **state,
                              int *replies) {
    uint64_t ndays = roaring_bitmap_get_cardinality(it->st->dirty);
    uint16_t *del = malloc((ndays + 1) * sizeof(*del));
    uint8_t *vals = malloc((ndays + 1) * RM_DAY_BYTES);
    uint16_t *set = malloc((ndays + 1) * sizeof(*set));
    resp_t b = {NULL, 0, 0, false};
    char key[256], *names = NULL;
    rm_day_bytes_t *sd = NULL;
    size_t nsd = 0;
    rm_err_t rc = RM_ERR_NOMEM;
    if (!del || !vals || !set || state_fields(it->st, true, state, &sd, &nsd, &names))
        goto done;
    size_t ns = 0, nd = 0;
    uint32_t pos = 0;
    roaring_uint32_iterator_t iter;
    roaring_init_iterator(it->st->dirty, &iter);
    for (; iter.has_value; roaring_advance_uint32_iterator(&iter)) {
        uint16_t day = (uint16_t)iter.current_value;
        if (rm_avail_day_next(it->st, &pos, day, vals + ns * RM_DAY_BYTES))
            set[ns++] = day;
        else
            del[nd++] = day;
    }
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    resp_command(&b, 1, multi);
    if (ns) {
        resp_head(&b, '*', 1 + 2 * ns);
        resp_bulk(&b, "MSET", 4);
        for (size_t i = 0; i < ns; i++) {
            int kl = rm_redis_key_avail(key, sizeof(key), s->prefix, it->pid, it->pid_len, set[i]);
            if (kl < 0) {
                rc = rm_redis_key_error(s, "day", sizeof(key), false);
                goto done;
            }
            resp_bulk(&b, key, (size_t)kl);
            resp_bulk(&b, vals + i * RM_DAY_BYTES, RM_DAY_BYTES);
        }
    }
    if (nd) {
        resp_head(&b, '*', 1 + nd);
        resp_bulk(&b, "DEL", 3);
        for (size_t i = 0; i < nd; i++) {
            int kl = rm_redis_key_avail(key, sizeof(key), s->prefix, it->pid, it->pid_len, del[i]);
            if (kl < 0) {
                rc = rm_redis_key_error(s, "day", sizeof(key), false);
                goto done;
            }
            resp_bulk(&b, key, (size_t)kl);
        }
    }
    char skey[256], part[16], fence[24];
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    int skl = rm_redis_key_state(skey, sizeof(skey), s->prefix, it->pid, it->pid_len);
    if (skl < 0) {
        rc = rm_redis_key_error(s, "state", sizeof(skey), false);
        goto done;
    }
    snprintf(part, sizeof(part), "%d", (int)it->partition);
    snprintf(fence, sizeof(fence), "%lld", (long long)it->fence);
    rm_avail_encode_head(it->st, head);
    resp_head(&b, '*', 2);
    resp_bulk(&b, "DEL", 3);
    resp_bulk(&b, skey, (size_t)skl);
    size_t nhset = resp_state_hset(&b, skey, (size_t)skl, part, fence, head, sd, nsd, names);
    resp_command(&b, 1, exec);
    if (b.nomem)
        goto done;
    *replies = 3 + (ns > 0) + (nd > 0) + (int)nhset; /* MULTI, MSET, DEL, DEL, HSETs, EXEC */
    rc = rm_rclient_append_owned(s->cl, skey, (size_t)skl, b.p, b.len, *replies);
    b.p = NULL; /* now owned by the client */
done:
    free(b.p);
    free(del);
    free(vals);
    free(set);
    free(sd);
    free(names);
    return rc;
}

/* Appends the flush script call for one practitioner (or, forced, the
 * transaction of append_forced); *replies is how many replies follow. The
 * bytes of the days' state are left in *state (the caller frees). Errors
 * as append_forced. */
static rm_err_t append_flush(rm_redis_sink_t *s, const rm_sink_item_t *it, char **state,
                             int *replies) {
    if (it->force)
        return append_forced(s, it, state, replies);
    *replies = 1;
    rm_day_bytes_t *sd = NULL;
    size_t nsd = 0;
    char *names = NULL;
    if (state_fields(it->st, it->st->rewrite, state, &sd, &nsd, &names))
        return RM_ERR_NOMEM;
    uint64_t ndays = roaring_bitmap_get_cardinality(it->st->dirty);
    /* EVALSHA sha numkeys, the keys, 7 args, day fields and values, day values */
    size_t argc = 3 + 1 + ndays + 7 + 2 * nsd + ndays;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    char *keys = malloc((ndays + 1) * 256);
    uint8_t *vals = malloc(ndays * RM_DAY_BYTES + 1);
    char nk[24], part[16], fence[24], epart[16] = "", efence[24] = "", nf[24];
    uint8_t head[RM_AVAIL_HEAD_BYTES];
    rm_err_t rc = RM_ERR_NOMEM;
    int kl;
    if (!argv || !lens || !keys || !vals)
        goto done;
    size_t a = 0;
    argv[a] = "EVALSHA", lens[a++] = 7;
    argv[a] = s->flush_sha, lens[a++] = strlen(s->flush_sha);
    snprintf(nk, sizeof(nk), "%llu", (unsigned long long)ndays + 1);
    argv[a] = nk, lens[a++] = strlen(nk);
    argv[a] = keys;
    if ((kl = rm_redis_key_state(keys, 256, s->prefix, it->pid, it->pid_len)) < 0) {
        rc = rm_redis_key_error(s, "state", 256, false);
        goto done;
    }
    lens[a++] = (size_t)kl;
    roaring_uint32_iterator_t iter;
    roaring_init_iterator(it->st->dirty, &iter);
    for (size_t d = 0; iter.has_value; d++, roaring_advance_uint32_iterator(&iter)) {
        char *k = keys + (d + 1) * 256;
        argv[a] = k;
        if ((kl = rm_redis_key_avail(k, 256, s->prefix, it->pid, it->pid_len,
                                     (uint16_t)iter.current_value)) < 0) {
            rc = rm_redis_key_error(s, "day", 256, false);
            goto done;
        }
        lens[a++] = (size_t)kl;
    }
    snprintf(part, sizeof(part), "%d", (int)it->partition);
    snprintf(fence, sizeof(fence), "%lld", (long long)it->fence);
    rm_avail_encode_head(it->st, head);
    if (it->expect_fence >= 0) {
        snprintf(epart, sizeof(epart), "%d", (int)it->expect_partition);
        snprintf(efence, sizeof(efence), "%lld", (long long)it->expect_fence);
    }
    snprintf(nf, sizeof(nf), "%zu", nsd);
    const char *fixed[] = {
        part, fence, (const char *)head, epart, efence, it->st->rewrite ? "1" : "", nf};
    for (size_t i = 0; i < 7; i++)
        argv[a] = fixed[i], lens[a++] = i == 2 ? sizeof(head) : strlen(fixed[i]);
    for (size_t i = 0; i < nsd; i++) {
        argv[a] = names + i * (RM_DATE_LEN + 1), lens[a++] = RM_DATE_LEN;
        argv[a] = sd[i].p, lens[a++] = sd[i].len;
    }
    roaring_init_iterator(it->st->dirty, &iter);
    for (size_t d = 0; iter.has_value; d++, roaring_advance_uint32_iterator(&iter)) {
        uint8_t *v = vals + d * RM_DAY_BYTES;
        unsigned nfree = rm_avail_day(it->st, (uint16_t)iter.current_value, v);
        argv[a] = (const char *)v;
        lens[a++] = nfree ? RM_DAY_BYTES : 0;
    }
    rc = rm_rclient_append(s->cl, argv[3], lens[3], (int)a, argv, lens);
done:
    free(argv);
    free(lens);
    free(keys);
    free(vals);
    free(sd);
    free(names);
    return rc;
}

/* Whether r is NOSCRIPT: the script is not in the server's cache (a SCRIPT
 * FLUSH, a restart, a failover) and the call did not run. */
static bool is_noscript(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR && r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Flushes the items of a chunk: every one when only is NULL, else those with
 * only[i]. Script calls answered NOSCRIPT are sent again, once, after the
 * script is loaded again. */
static rm_err_t flush_items(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n, const bool *only) {
    char *states[PIPELINE_PRACTITIONERS] = {0};
    int replies[PIPELINE_PRACTITIONERS] = {0}; /* 0: not appended */
    bool noscript[PIPELINE_PRACTITIONERS] = {false};
    size_t nnoscript = 0;
    rm_err_t e = RM_ERR_OK, ce;
    size_t appended = 0;
    bool broken = false; /* the connections were dropped: nothing to read */
    for (; appended < n; appended++) {
        if (only && !only[appended])
            continue;
        if ((e = append_flush(s, &items[appended], &states[appended], &replies[appended])) !=
            RM_ERR_OK) {
            if (e == RM_ERR_IO || e == RM_ERR_CONFIG) {
                e = rm_redis_io_error(s, e);
                broken = true;
            }
            break;
        }
    }
    for (size_t i = 0; i < appended && !broken; i++) {
        if (!replies[i])
            continue;
        redisReply *r = NULL;
        /* A transaction: +OK and +QUEUED, then EXEC's array of results. */
        for (int q = 1; q < replies[i] && !broken; q++) {
            if ((ce = rm_rclient_reply(s->cl, &r))) {
                e = rm_redis_io_error(s, ce);
                broken = true;
                break;
            }
            if (r->type == REDIS_REPLY_ERROR && e == RM_ERR_OK)
                e = rm_redis_reply_error(s, r, "MULTI");
            freeReplyObject(r);
        }
        if (broken)
            break;
        if ((ce = rm_rclient_reply(s->cl, &r))) {
            e = rm_redis_io_error(s, ce);
            break;
        }
        if (replies[i] > 1 && r->type == REDIS_REPLY_ARRAY) {
            bool failed = false;
            for (size_t k = 0; k < r->elements; k++)
                failed |= r->element[k]->type == REDIS_REPLY_ERROR;
            items[i].written = !failed && e == RM_ERR_OK;
            if (failed && e == RM_ERR_OK)
                e = rm_redis_reply_error(s, NULL, "EXEC");
        } else if (r->type == REDIS_REPLY_INTEGER) {
            items[i].written = r->integer == 1;
        } else if (replies[i] == 1 && is_noscript(r)) {
            noscript[i] = true;
            nnoscript++;
        } else if (e == RM_ERR_OK) {
            e = rm_redis_reply_error(s, r, "flush script");
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++) /* with the state of an item that failed to append */
        free(states[i]);
    if (nnoscript && e == RM_ERR_OK) {
        if (only) {
            snprintf(s->err, sizeof(s->err), "redis flush script: NOSCRIPT again after reloading");
            e = RM_ERR_REPLY;
        } else if ((e = load_script(s, flush_lua, s->flush_sha)) == RM_ERR_OK) {
            e = flush_items(s, items, n, noscript);
        }
    }
    return e;
}

static rm_err_t flush_chunk(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n) {
    return flush_items(s, items, n, NULL);
}

/* In a cluster, the checkpoint that follows a flush is on another master
 * than most of the states it covers, so a failover that loses a master's
 * last writes must not lose states whose checkpoint survived elsewhere:
 * every master written to waits (WAIT 1) until a replica has the writes
 * before the flush counts as done. A master without a replica, or one that
 * lags past the timeout, is logged; the fences still detect a loss. */
static rm_err_t wait_replicas(rm_redis_sink_t *s) {
    int lagging = 0;
    rm_err_t e = rm_rclient_wait_replicas(s->cl, WAIT_REPLICA_MS, &lagging);
    if (e)
        return rm_redis_io_error(s, e);
    if (lagging && s->lagging++ % 1000 == 0)
        rm_warn("redis: %d master(s) did not replicate a flush within %d ms (seen %lu times)",
                lagging, WAIT_REPLICA_MS, s->lagging);
    return RM_ERR_OK;
}

rm_err_t rm_redis_sink_flush(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n) {
    rm_err_t e = rm_redis_sink_connect(s);
    for (size_t i = 0; i < n; i++)
        items[i].written = false;
    for (size_t off = 0; e == RM_ERR_OK && off < n; off += PIPELINE_PRACTITIONERS) {
        size_t m = n - off < PIPELINE_PRACTITIONERS ? n - off : PIPELINE_PRACTITIONERS;
        e = flush_chunk(s, items + off, m);
    }
    if (e == RM_ERR_OK)
        e = wait_replicas(s);
    if (e != RM_ERR_OK)
        for (size_t i = 0; i < n; i++)
            items[i].written = false;
    return e;
}

rm_err_t rm_redis_sink_checkpoint_get(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                      int64_t *next) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[512];
    int kl = rm_redis_key_checkpoint(key, sizeof(key), s->prefix, topic, partition);
    if (kl < 0)
        return rm_redis_key_error(s, "checkpoint", sizeof(key), false);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, (size_t)kl};
    redisReply *r = NULL;
    if ((e = rm_redis_command(s, &r, 1, 2, argv, lens)))
        return e;
    *next = -1;
    if (r->type == REDIS_REPLY_STRING) {
        bool ok;
        *next = parse_i64(r->str, r->len, &ok);
        if (!ok || *next < 0) {
            snprintf(s->err, sizeof(s->err), "redis: checkpoint of partition %d is not an offset",
                     (int)partition);
            e = RM_ERR_CORRUPT;
        }
    }
    freeReplyObject(r);
    return e;
}

/* EVALSHA of the script src whose sha is in sha (argv[1] and lens[1] are
 * set here). On NOSCRIPT the script is loaded again and the call sent
 * again, once. As rm_redis_command otherwise. */
static rm_err_t evalsha(rm_redis_sink_t *s, redisReply **out, int argc, const char **argv,
                        size_t *lens, const char *src, char sha[48]) {
    for (int attempt = 0;; attempt++) {
        argv[1] = sha;
        lens[1] = strlen(sha);
        redisReply *r = NULL;
        rm_err_t ce = rm_rclient_command(s->cl, &r, argv[3], lens[3], argc, argv, lens);
        if (ce)
            return rm_redis_io_error(s, ce);
        rm_err_t e = RM_ERR_OK;
        if (attempt == 0 && is_noscript(r)) {
            freeReplyObject(r);
            if ((e = load_script(s, src, sha)))
                return e;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            e = rm_redis_reply_error(s, r, "EVALSHA");
            freeReplyObject(r);
            return e;
        }
        *out = r;
        return RM_ERR_OK;
    }
}

rm_err_t rm_redis_sink_checkpoint_cas(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                      int64_t expected, int64_t next, bool *ok, int64_t *current) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[512], exp[24] = "", nx[24];
    int kl = rm_redis_key_checkpoint(key, sizeof(key), s->prefix, topic, partition);
    if (kl < 0)
        return rm_redis_key_error(s, "checkpoint", sizeof(key), false);
    if (expected >= 0)
        snprintf(exp, sizeof(exp), "%lld", (long long)expected);
    snprintf(nx, sizeof(nx), "%lld", (long long)next);
    const char *argv[] = {"EVALSHA", s->cas_sha, "1", key, exp, nx};
    size_t lens[] = {7, strlen(s->cas_sha), 1, (size_t)kl, strlen(exp), strlen(nx)};
    redisReply *r = NULL;
    if ((e = evalsha(s, &r, 6, argv, lens, cas_lua, s->cas_sha)))
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return rm_redis_reply_error(s, NULL, "checkpoint script");
    }
    bool parsed = true; /* "": no checkpoint stored */
    *current = -1;
    if (r->element[1]->len) {
        *current = parse_i64(r->element[1]->str, r->element[1]->len, &parsed);
        parsed = parsed && *current >= 0;
    }
    *ok = parsed && r->element[0]->integer == 1;
    freeReplyObject(r);
    if (!parsed) {
        snprintf(s->err, sizeof(s->err), "redis: checkpoint of partition %d is not an offset",
                 (int)partition);
        return RM_ERR_CORRUPT;
    }
    return RM_ERR_OK;
}
