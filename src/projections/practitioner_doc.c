/*
 * Practitioner document: profile state and rendering (events.md, "Read
 * model 2"). The profile keeps each field's JSON text, checked by the
 * decoder, so the document is assembled by concatenation in a fixed field
 * order: deterministic bytes for the same state, whatever the batch or
 * restart history. Availability comes from the same rm_avail_t the Redis
 * model uses: a date is in free_dates exactly when its Redis key exists.
 */
#include "readmodel/practitioner_doc.h"
#include "readmodel/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_profile_free(rm_profile_t *p) {
    free(p->name);
    free(p->specialties);
    free(p->city);
    free(p->languages);
    free(p->lat);
    free(p->lon);
    memset(p, 0, sizeof(*p));
}

static char *dup_span(rm_span_t s) {
    char *c = malloc(s.len + 1);
    if (c) {
        memcpy(c, s.ptr, s.len);
        c[s.len] = '\0';
    }
    return c;
}

/* *fresh = a copy of s when bit is among the event's fields. */
static int take(unsigned fields, unsigned bit, rm_span_t s, char **fresh) {
    if (!(fields & bit))
        return 0;
    *fresh = dup_span(s);
    return *fresh ? 0 : RM_ERR_NOMEM;
}

int rm_profile_apply(rm_profile_t *p, const rm_event_t *ev) {
    if (ev->type != RM_EV_PRACTITIONER_REGISTERED && ev->type != RM_EV_PRACTITIONER_UPDATED)
        return 0;
    unsigned f = ev->profile;
    char *name = NULL, *spec = NULL, *city = NULL, *lang = NULL, *lat = NULL, *lon = NULL;
    int rc = take(f, RM_PROFILE_NAME, ev->name_json, &name);
    rc = rc ? rc : take(f, RM_PROFILE_SPECIALTIES, ev->specialties_json, &spec);
    rc = rc ? rc : take(f, RM_PROFILE_CITY, ev->city_json, &city);
    rc = rc ? rc : take(f, RM_PROFILE_LANGUAGES, ev->languages_json, &lang);
    rc = rc ? rc : take(f, RM_PROFILE_LOCATION, ev->lat_json, &lat);
    rc = rc ? rc : take(f, RM_PROFILE_LOCATION, ev->lon_json, &lon);
    if (rc) {
        free(name), free(spec), free(city), free(lang), free(lat), free(lon);
        return rc;
    }
#define REPLACE(field, v)                                                                          \
    if (v) {                                                                                       \
        free(p->field);                                                                            \
        p->field = v;                                                                              \
    }
    REPLACE(name, name)
    REPLACE(specialties, spec)
    REPLACE(city, city)
    REPLACE(languages, lang)
    REPLACE(lat, lat)
    REPLACE(lon, lon)
#undef REPLACE
    if (f & RM_PROFILE_ACCEPTS_NEW_PATIENTS)
        p->accepts_new_patients = ev->accepts_new_patients;
    p->set |= f;
    return 0;
}

/* ---- rendering ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = true;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void puts_(sbuf_t *b, const char *s) {
    put(b, s, strlen(s));
}

static void field(sbuf_t *b, const char *key, const char *json) {
    puts_(b, ",\"");
    puts_(b, key);
    puts_(b, "\":");
    puts_(b, json);
}

int rm_doc_render(const char *pid, size_t pid_len, const rm_profile_t *p, const rm_avail_t *st,
                  char **out, size_t *len) {
    sbuf_t b = {0};
    /* Practitioner ids are [A-Za-z0-9._-]: nothing to escape. */
    puts_(&b, "{\"practitioner_id\":\"");
    put(&b, pid, pid_len);
    puts_(&b, "\"");
    if (p->set & RM_PROFILE_NAME)
        field(&b, "name", p->name);
    if (p->set & RM_PROFILE_SPECIALTIES)
        field(&b, "specialties", p->specialties);
    if (p->set & RM_PROFILE_CITY)
        field(&b, "city", p->city);
    if (p->set & RM_PROFILE_LOCATION) {
        puts_(&b, ",\"location\":{\"lat\":");
        puts_(&b, p->lat);
        puts_(&b, ",\"lon\":");
        puts_(&b, p->lon);
        puts_(&b, "}");
    }
    if (p->set & RM_PROFILE_LANGUAGES)
        field(&b, "languages", p->languages);
    if (p->set & RM_PROFILE_ACCEPTS_NEW_PATIENTS)
        field(&b, "accepts_new_patients", p->accepts_new_patients ? "true" : "false");
    field(&b, "active", st->active ? "true" : "false");
    puts_(&b, ",\"free_dates\":[");
    unsigned long long total = 0;
    bool first = true;
    if (st->active) {
        /* Every day the state has, ascending; a day is listed when its
         * Redis value has a free slot. */
        uint32_t pos = 0;
        for (uint32_t i = 0; i < st->ndays; i++) {
            uint16_t day = st->days[i].day;
            uint8_t v[RM_DAY_BYTES];
            unsigned n = rm_avail_day_next(st, &pos, day, v);
            if (n > 0) {
                char date[RM_DATE_LEN + 1];
                rm_date_format(day, date);
                puts_(&b, first ? "\"" : ",\"");
                puts_(&b, date);
                puts_(&b, "\"");
                first = false;
                total += n;
            }
        }
    }
    char num[32];
    snprintf(num, sizeof(num), "],\"free_slots_total\":%llu}", total);
    puts_(&b, num);
    if (b.oom) {
        free(b.buf);
        return RM_ERR_NOMEM;
    }
    *out = b.buf;
    *len = b.len;
    return 0;
}

/* ---- state (stored beside the availability state) ---- */

static const struct {
    const char *key;
    unsigned bit;
    size_t offset;
} text_fields[] = {
    {"name", RM_PROFILE_NAME, offsetof(rm_profile_t, name)},
    {"specialties", RM_PROFILE_SPECIALTIES, offsetof(rm_profile_t, specialties)},
    {"city", RM_PROFILE_CITY, offsetof(rm_profile_t, city)},
    {"languages", RM_PROFILE_LANGUAGES, offsetof(rm_profile_t, languages)},
    {"lat", RM_PROFILE_LOCATION, offsetof(rm_profile_t, lat)},
    {"lon", RM_PROFILE_LOCATION, offsetof(rm_profile_t, lon)},
};
#define N_TEXT_FIELDS (sizeof(text_fields) / sizeof(text_fields[0]))

static char **text_slot(rm_profile_t *p, size_t i) {
    return (char **)((char *)p + text_fields[i].offset);
}

static const char *text_value(const rm_profile_t *p, size_t i) {
    return *(char *const *)((const char *)p + text_fields[i].offset);
}

json_t *rm_profile_to_json(const rm_profile_t *p) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* Each field's JSON text as a string: kept byte for byte. */
    for (size_t i = 0; i < N_TEXT_FIELDS; i++) {
        const char *v = text_value(p, i);
        if ((p->set & text_fields[i].bit) && v &&
            json_object_set_new(o, text_fields[i].key, json_string(v)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    if ((p->set & RM_PROFILE_ACCEPTS_NEW_PATIENTS) &&
        json_object_set_new(o, "accepts_new_patients", json_boolean(p->accepts_new_patients)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int rm_profile_from_json(rm_profile_t *p, const json_t *obj) {
    if (!json_is_object(obj))
        return RM_ERR_CORRUPT;
    for (size_t i = 0; i < N_TEXT_FIELDS; i++) {
        json_t *v = json_object_get(obj, text_fields[i].key);
        if (!v)
            continue;
        /* Stored text must still be valid JSON of the right shape. */
        json_t *parsed =
            json_is_string(v) ? json_loads(json_string_value(v), JSON_DECODE_ANY, NULL) : NULL;
        bool ok = parsed &&
                  (text_fields[i].bit == RM_PROFILE_LOCATION ? json_is_number(parsed)
                   : text_fields[i].bit == RM_PROFILE_NAME || text_fields[i].bit == RM_PROFILE_CITY
                       ? json_is_string(parsed)
                       : json_is_array(parsed));
        json_decref(parsed);
        if (!ok) {
            rm_profile_free(p);
            return RM_ERR_CORRUPT;
        }
        if (!(*text_slot(p, i) = strdup(json_string_value(v)))) {
            rm_profile_free(p);
            return RM_ERR_NOMEM;
        }
        p->set |= text_fields[i].bit;
    }
    if ((p->set & RM_PROFILE_LOCATION) && (!p->lat || !p->lon)) {
        rm_profile_free(p);
        return RM_ERR_CORRUPT;
    }
    json_t *a = json_object_get(obj, "accepts_new_patients");
    if (a) {
        if (!json_is_boolean(a)) {
            rm_profile_free(p);
            return RM_ERR_CORRUPT;
        }
        p->accepts_new_patients = json_is_true(a);
        p->set |= RM_PROFILE_ACCEPTS_NEW_PATIENTS;
    }
    return 0;
}
