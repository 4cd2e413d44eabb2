/* Reference projection: see ref_model.h. */
#include "ref_model.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char date[11];
    bool pub[288];
} rday_t;

typedef struct {
    char *id;
    char date[11];
    int start, count;
} rbook_t;

typedef struct {
    char pid[65];
    bool active;
    rday_t *days;
    size_t ndays;
    rbook_t *books;
    size_t nbooks;
    json_t *profile; /* the profile fields set so far, as the events carried them */
} rprac_t;

struct ref_model {
    rprac_t *ps;
    size_t n;
    size_t invalid;
};

ref_model_t *ref_new(void) {
    return calloc(1, sizeof(ref_model_t));
}

void ref_free(ref_model_t *m) {
    for (size_t i = 0; i < m->n; i++) {
        for (size_t b = 0; b < m->ps[i].nbooks; b++)
            free(m->ps[i].books[b].id);
        free(m->ps[i].books);
        free(m->ps[i].days);
        json_decref(m->ps[i].profile);
    }
    free(m->ps);
    free(m);
}

size_t ref_invalid_count(const ref_model_t *m) {
    return m->invalid;
}

static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool id_ok(json_t *v) {
    if (!json_is_string(v))
        return false;
    size_t n = chars(json_string_value(v));
    return n >= 1 && n <= 64;
}

/* A real calendar date, checked by a timegm/gmtime round trip. */
static bool real_date(int y, int mo, int d) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    return back.tm_year == y - 1900 && back.tm_mon == mo - 1 && back.tm_mday == d;
}

static bool date_ok(json_t *v) {
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    int y, mo, d, n = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    return y >= 2000 && y <= 2099 && real_date(y, mo, d);
}

static bool timestamp_ok(json_t *v) {
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    int y, mo, d, h, mi, se, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 19)
        return false;
    if (!real_date(y, mo, d) || h > 23 || mi > 59 || se > 60)
        return false;
    const char *r = s + 19;
    if (*r == '.') {
        r++;
        if (*r < '0' || *r > '9')
            return false;
        while (*r >= '0' && *r <= '9')
            r++;
    }
    return strcmp(r, "Z") == 0 || strcmp(r, "z") == 0 || strcmp(r, "+00:00") == 0 ||
           strcmp(r, "-00:00") == 0;
}

static bool int_in(json_t *v, long lo, long hi, long *out) {
    if (!json_is_integer(v))
        return false;
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return false;
    *out = (long)x;
    return true;
}

static bool range_ok(json_t *st, json_t *ct, long *s, long *c) {
    return int_in(st, 0, 287, s) && int_in(ct, 1, 288, c) && *s + *c <= 288;
}

static bool strings_array(json_t *a) {
    if (!json_is_array(a))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
    return true;
}

static bool coord_ok(json_t *v, double lim) {
    return json_is_number(v) && json_number_value(v) >= -lim && json_number_value(v) <= lim;
}

static bool profile_field_ok(const char *k, json_t *v) {
    if (!strcmp(k, "name") || !strcmp(k, "city"))
        return json_is_string(v);
    if (!strcmp(k, "specialties") || !strcmp(k, "languages"))
        return strings_array(v);
    if (!strcmp(k, "accepts_new_patients"))
        return json_is_boolean(v);
    if (!strcmp(k, "location"))
        return json_is_object(v) && coord_ok(json_object_get(v, "lat"), 90) &&
               coord_ok(json_object_get(v, "lon"), 180);
    return true;
}

static const char *const profile_fields[] = {"name",     "specialties", "city",
                                             "location", "languages",   "accepts_new_patients"};

static rprac_t *prac(ref_model_t *m, const char *pid) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->ps[i].pid, pid))
            return &m->ps[i];
    m->ps = realloc(m->ps, (m->n + 1) * sizeof(*m->ps));
    rprac_t *p = &m->ps[m->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->pid, sizeof(p->pid), "%s", pid);
    p->active = true;
    return p;
}

static rday_t *day(rprac_t *p, const char *date) {
    for (size_t i = 0; i < p->ndays; i++)
        if (!strcmp(p->days[i].date, date))
            return &p->days[i];
    p->days = realloc(p->days, (p->ndays + 1) * sizeof(*p->days));
    rday_t *d = &p->days[p->ndays++];
    memset(d, 0, sizeof(*d));
    snprintf(d->date, sizeof(d->date), "%s", date);
    return d;
}

static void unbook(rprac_t *p, const char *id) {
    for (size_t i = 0; i < p->nbooks; i++)
        if (!strcmp(p->books[i].id, id)) {
            free(p->books[i].id);
            p->books[i] = p->books[--p->nbooks];
            return;
        }
}

static void book(rprac_t *p, const char *id, const char *date, long s, long c) {
    unbook(p, id);
    p->books = realloc(p->books, (p->nbooks + 1) * sizeof(*p->books));
    rbook_t *b = &p->books[p->nbooks++];
    b->id = strdup(id);
    snprintf(b->date, sizeof(b->date), "%s", date);
    b->start = (int)s;
    b->count = (int)c;
}

static int invalid(ref_model_t *m, json_t *root) {
    m->invalid++;
    json_decref(root);
    return -1;
}

int ref_apply(ref_model_t *m, const char *key, size_t key_len, const char *value,
              size_t value_len) {
    if (!value)
        return 0;
    if (value_len > 65536) {
        m->invalid++;
        return -1;
    }
    json_error_t e;
    json_t *o = json_loadb(value, value_len, JSON_REJECT_DUPLICATES, &e);
    if (!o || !json_is_object(o))
        return invalid(m, o);
    long ver;
    json_t *pidv = json_object_get(o, "practitioner_id");
    if (!int_in(json_object_get(o, "schema_version"), 1, 1, &ver) ||
        !id_ok(json_object_get(o, "event_id")) ||
        !timestamp_ok(json_object_get(o, "occurred_at")) || !id_ok(pidv))
        return invalid(m, o);
    const char *pid = json_string_value(pidv);
    if (strspn(pid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
        strlen(pid))
        return invalid(m, o);
    if (key && (key_len != strlen(pid) || memcmp(key, pid, key_len)))
        return invalid(m, o);
    json_t *tv = json_object_get(o, "type");
    if (!json_is_string(tv))
        return invalid(m, o);
    const char *t = json_string_value(tv);
    json_t *date = json_object_get(o, "date");
    long s = 0, c = 0;

    if (!strcmp(t, "PractitionerRegistered") || !strcmp(t, "PractitionerUpdated")) {
        int present = 0;
        for (int i = 0; i < 6; i++) {
            json_t *v = json_object_get(o, profile_fields[i]);
            if (!v && !strcmp(t, "PractitionerRegistered"))
                return invalid(m, o);
            if (v && !profile_field_ok(profile_fields[i], v))
                return invalid(m, o);
            present += v != NULL;
        }
        if (!present)
            return invalid(m, o);
        rprac_t *p = prac(m, pid);
        if (!strcmp(t, "PractitionerRegistered"))
            p->active = true;
        if (!p->profile)
            p->profile = json_object();
        for (int i = 0; i < 6; i++) {
            json_t *v = json_object_get(o, profile_fields[i]);
            if (v)
                json_object_set(p->profile, profile_fields[i], v);
        }
    } else if (!strcmp(t, "PractitionerDeactivated")) {
        prac(m, pid)->active = false;
    } else if (!strcmp(t, "SlotsPublished") || !strcmp(t, "SlotsWithdrawn")) {
        if (!date_ok(date) ||
            !range_ok(json_object_get(o, "start_slot"), json_object_get(o, "slot_count"), &s, &c))
            return invalid(m, o);
        rday_t *d = day(prac(m, pid), json_string_value(date));
        for (long i = s; i < s + c; i++)
            d->pub[i] = t[5] == 'P';
    } else if (!strcmp(t, "BookingCreated") || !strcmp(t, "BookingCancelled")) {
        bool create = t[7] == 'C' && t[8] == 'r';
        json_t *bid = json_object_get(o, "booking_id");
        if (!id_ok(bid) || (create && !id_ok(json_object_get(o, "patient_id"))) || !date_ok(date) ||
            !range_ok(json_object_get(o, "start_slot"), json_object_get(o, "slot_count"), &s, &c))
            return invalid(m, o);
        rprac_t *p = prac(m, pid);
        if (create)
            book(p, json_string_value(bid), json_string_value(date), s, c);
        else
            unbook(p, json_string_value(bid));
    } else if (!strcmp(t, "BookingRescheduled")) {
        json_t *bid = json_object_get(o, "booking_id"), *from = json_object_get(o, "from"),
               *to = json_object_get(o, "to");
        long fs, fc;
        if (!id_ok(bid) || !json_is_object(from) || !json_is_object(to) ||
            !date_ok(json_object_get(from, "date")) || !date_ok(json_object_get(to, "date")) ||
            !range_ok(json_object_get(from, "start_slot"), json_object_get(from, "slot_count"), &fs,
                      &fc) ||
            !range_ok(json_object_get(to, "start_slot"), json_object_get(to, "slot_count"), &s, &c))
            return invalid(m, o);
        book(prac(m, pid), json_string_value(bid), json_string_value(json_object_get(to, "date")),
             s, c);
    } else if (!strcmp(t, "AvailabilitySnapshot")) {
        json_t *pub = json_object_get(o, "published"), *bks = json_object_get(o, "bookings");
        if (!date_ok(date) || !json_is_array(pub) || !json_is_array(bks))
            return invalid(m, o);
        size_t i;
        json_t *v;
        json_array_foreach(pub, i, v) {
            if (!json_is_array(v) || json_array_size(v) != 2 ||
                !range_ok(json_array_get(v, 0), json_array_get(v, 1), &s, &c))
                return invalid(m, o);
        }
        json_array_foreach(bks, i, v) {
            if (!json_is_object(v) || !id_ok(json_object_get(v, "booking_id")) ||
                !range_ok(json_object_get(v, "start_slot"), json_object_get(v, "slot_count"), &s,
                          &c))
                return invalid(m, o);
        }
        rprac_t *p = prac(m, pid);
        const char *ds = json_string_value(date);
        rday_t *d = day(p, ds);
        memset(d->pub, 0, sizeof(d->pub));
        json_array_foreach(pub, i, v) {
            long a = (long)json_integer_value(json_array_get(v, 0));
            long n = (long)json_integer_value(json_array_get(v, 1));
            for (long k = a; k < a + n; k++)
                d->pub[k] = true;
        }
        for (size_t b = 0; b < p->nbooks;) {
            if (!strcmp(p->books[b].date, ds)) {
                free(p->books[b].id);
                p->books[b] = p->books[--p->nbooks];
            } else {
                b++;
            }
        }
        json_array_foreach(bks, i, v) {
            book(p, json_string_value(json_object_get(v, "booking_id")), ds,
                 (long)json_integer_value(json_object_get(v, "start_slot")),
                 (long)json_integer_value(json_object_get(v, "slot_count")));
        }
    } else {
        json_decref(o);
        return 0; /* unknown type: ignored */
    }
    json_decref(o);
    return 1;
}

void ref_each_key(const ref_model_t *m, void (*fn)(const char *, const unsigned char[36], void *),
                  void *arg) {
    for (size_t i = 0; i < m->n; i++) {
        const rprac_t *p = &m->ps[i];
        if (!p->active)
            continue;
        for (size_t d = 0; d < p->ndays; d++) {
            bool free_slot[288];
            memcpy(free_slot, p->days[d].pub, sizeof(free_slot));
            for (size_t b = 0; b < p->nbooks; b++)
                if (!strcmp(p->books[b].date, p->days[d].date))
                    for (int s = p->books[b].start; s < p->books[b].start + p->books[b].count; s++)
                        free_slot[s] = false;
            unsigned char v[36] = {0};
            int any = 0;
            for (int s = 0; s < 288; s++)
                if (free_slot[s]) {
                    v[s / 8] |= (unsigned char)(0x80 >> (s % 8));
                    any = 1;
                }
            if (any) {
                char key[128];
                snprintf(key, sizeof(key), "avail:{%s}:%s", p->pid, p->days[d].date);
                fn(key, v, arg);
            }
        }
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ref_each_doc(const ref_model_t *m, void (*fn)(const char *pid, json_t *doc, void *arg),
                  void *arg) {
    for (size_t i = 0; i < m->n; i++) {
        const rprac_t *p = &m->ps[i];
        json_t *doc = p->profile ? json_deep_copy(p->profile) : json_object();
        json_object_set_new(doc, "practitioner_id", json_string(p->pid));
        json_object_set_new(doc, "active", json_boolean(p->active));
        char **dates = calloc(p->ndays + 1, sizeof(*dates));
        size_t nd = 0;
        long total = 0;
        for (size_t d = 0; p->active && d < p->ndays; d++) {
            bool free_slot[288];
            memcpy(free_slot, p->days[d].pub, sizeof(free_slot));
            for (size_t b = 0; b < p->nbooks; b++)
                if (!strcmp(p->books[b].date, p->days[d].date))
                    for (int s = p->books[b].start; s < p->books[b].start + p->books[b].count; s++)
                        free_slot[s] = false;
            int n = 0;
            for (int s = 0; s < 288; s++)
                n += free_slot[s];
            if (n) {
                dates[nd++] = (char *)p->days[d].date;
                total += n;
            }
        }
        qsort(dates, nd, sizeof(*dates), cmp_str);
        json_t *fd = json_array();
        for (size_t d = 0; d < nd; d++)
            json_array_append_new(fd, json_string(dates[d]));
        json_object_set_new(doc, "free_dates", fd);
        json_object_set_new(doc, "free_slots_total", json_integer(total));
        free(dates);
        fn(p->pid, doc, arg);
        json_decref(doc);
    }
}
