/*
 * Booking log generator. Each practitioner has a script of days; a day's
 * events are formatted into a small queue when the previous day is used up.
 * Practitioners are interleaved by a seeded xorshift, so the per-practitioner
 * order is the story's order while partitions see a realistic mix.
 */
#include "readmodel/gen.h"
#include "readmodel/date.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIVE 96
#define EV_CAP   4096

typedef struct {
    int id;
    uint16_t day, start, count;
} live_t;

typedef struct {
    char pid[24];
    int day;      /* next day index to script */
    int nbooking; /* booking id counter */
    bool active;
    live_t live[MAX_LIVE];
    int nlive;
    char **queue;
    int qn, qpos, qcap;
} gp_t;

struct rm_gen {
    rm_gen_config_t cfg;
    uint64_t rng;
    uint64_t seq; /* event ids */
    gp_t *ps;
    int *open; /* practitioners with events left */
    int nopen;
    char buf[EV_CAP];
    char key[24];
};

static uint64_t rnd(rm_gen_t *g) {
    uint64_t x = g->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g->rng = x;
}

static int rint_(rm_gen_t *g, int n) {
    return n <= 0 ? 0 : (int)(rnd(g) % (uint64_t)n);
}

static bool chance(rm_gen_t *g, double p) {
    return (double)(rnd(g) % 1000000) < p * 1000000.0;
}

static void push(gp_t *p, const char *s) {
    if (p->qn == p->qcap) {
        p->qcap = p->qcap ? p->qcap * 2 : 32;
        p->queue = realloc(p->queue, (size_t)p->qcap * sizeof(char *));
        if (!p->queue)
            abort();
    }
    p->queue[p->qn++] = strdup(s);
}

/* Envelope opening; the caller appends fields and the closing brace. */
static int env(rm_gen_t *g, char *b, const gp_t *p, const char *type, uint16_t day) {
    char date[11];
    rm_date_format(day, date);
    unsigned secs = (unsigned)(g->seq % 36000);
    return snprintf(b, EV_CAP,
                    "{\"event_id\":\"e-%llu\",\"type\":\"%s\",\"schema_version\":1,"
                    "\"occurred_at\":\"%sT%02u:%02u:%02uZ\",\"practitioner_id\":\"%s\"",
                    (unsigned long long)g->seq++, type, date, 6 + secs / 3600, secs / 60 % 60,
                    secs % 60, p->pid);
}

static const char *const cities[] = {"Dublin", "Cork", "Galway", "Limerick", "Waterford"};
static const char *const specs[] = {"dermatology", "cardiology", "general-practice", "paediatrics",
                                    "physiotherapy"};

static void registered(rm_gen_t *g, gp_t *p, uint16_t day) {
    char b[EV_CAP];
    int n = env(g, b, p, "PractitionerRegistered", day);
    snprintf(b + n, sizeof(b) - (size_t)n,
             ",\"name\":\"Dr %c. %s\",\"specialties\":[\"%s\"],\"city\":\"%s\",\"location\":"
             "{\"lat\":%.4f,\"lon\":%.4f},\"languages\":[\"en\"%s],\"accepts_new_patients\":%s}",
             'A' + rint_(g, 26), p->pid, specs[rint_(g, 5)], cities[rint_(g, 5)],
             51.5 + rint_(g, 30000) / 10000.0, -10.0 + rint_(g, 40000) / 10000.0,
             chance(g, 0.3) ? ",\"ga\"" : "", chance(g, 0.8) ? "true" : "false");
    push(p, b);
    p->active = true;
}

static void slots_event(rm_gen_t *g, gp_t *p, const char *type, uint16_t day, int start,
                        int count) {
    char b[EV_CAP], date[11];
    rm_date_format(day, date);
    int n = env(g, b, p, type, day);
    snprintf(b + n, sizeof(b) - (size_t)n, ",\"date\":\"%s\",\"start_slot\":%d,\"slot_count\":%d}",
             date, start, count);
    push(p, b);
}

static void booking_event(rm_gen_t *g, gp_t *p, const char *type, int id, uint16_t day, int start,
                          int count, const live_t *from) {
    char b[EV_CAP], date[11], fdate[11];
    rm_date_format(day, date);
    int n = env(g, b, p, type, day);
    if (from) {
        rm_date_format(from->day, fdate);
        snprintf(b + n, sizeof(b) - (size_t)n,
                 ",\"booking_id\":\"b-%s-%d\",\"from\":{\"date\":\"%s\",\"start_slot\":%d,"
                 "\"slot_count\":%d},\"to\":{\"date\":\"%s\",\"start_slot\":%d,\"slot_count\":%d}}",
                 p->pid, id, fdate, from->start, from->count, date, start, count);
    } else {
        char patient[32] = "";
        if (strcmp(type, "BookingCreated") == 0)
            snprintf(patient, sizeof(patient), ",\"patient_id\":\"pat-%d\"", rint_(g, 100000));
        snprintf(b + n, sizeof(b) - (size_t)n,
                 ",\"booking_id\":\"b-%s-%d\"%s,\"date\":\"%s\",\"start_slot\":%d,"
                 "\"slot_count\":%d}",
                 p->pid, id, patient, date, start, count);
    }
    push(p, b);
}

static void live_remove(gp_t *p, int i) {
    p->live[i] = p->live[--p->nlive];
}

static void live_add(gp_t *p, int id, uint16_t day, int start, int count) {
    if (p->nlive == MAX_LIVE)
        live_remove(p, 0);
    p->live[p->nlive++] = (live_t){id, day, (uint16_t)start, (uint16_t)count};
}

static void snapshot(rm_gen_t *g, gp_t *p, uint16_t day) {
    char b[EV_CAP], date[11];
    rm_date_format(day, date);
    int n = env(g, b, p, "AvailabilitySnapshot", day);
    int s1 = 90 + rint_(g, 20), c1 = 20 + rint_(g, 30);
    n += snprintf(b + n, sizeof(b) - (size_t)n, ",\"date\":\"%s\",\"published\":[[%d,%d]", date, s1,
                  c1);
    if (chance(g, 0.5))
        n += snprintf(b + n, sizeof(b) - (size_t)n, ",[%d,%d]", 160 + rint_(g, 20),
                      10 + rint_(g, 30));
    n += snprintf(b + n, sizeof(b) - (size_t)n, "],\"bookings\":[");
    /* The day's bookings are replaced: keep some live ones of that day. */
    int kept = 0;
    for (int i = 0; i < p->nlive;) {
        if (p->live[i].day == day && chance(g, 0.5)) {
            n += snprintf(b + n, sizeof(b) - (size_t)n,
                          "%s{\"booking_id\":\"b-%s-%d\",\"start_slot\":%d,\"slot_count\":%d}",
                          kept++ ? "," : "", p->pid, p->live[i].id, p->live[i].start,
                          p->live[i].count);
            i++;
        } else if (p->live[i].day == day) {
            live_remove(p, i);
        } else {
            i++;
        }
    }
    int id = ++p->nbooking, st = s1 + rint_(g, c1 - 2);
    snprintf(b + n, sizeof(b) - (size_t)n,
             "%s{\"booking_id\":\"b-%s-%d\",\"start_slot\":%d,\"slot_count\":2}]}", kept ? "," : "",
             p->pid, id, st);
    live_add(p, id, day, st, 2);
    push(p, b);
}

/* Scripts one day of practitioner p into its queue. */
static void script_day(rm_gen_t *g, gp_t *p) {
    uint16_t day = (uint16_t)(g->cfg.start_day + p->day);
    if (p->day == 0)
        registered(g, p, day);
    int s1 = 84 + rint_(g, 24), c1 = 36 + rint_(g, 24);
    slots_event(g, p, "SlotsPublished", day, s1, c1);
    int s2 = 156 + rint_(g, 12), c2 = 30 + rint_(g, 40);
    bool two = chance(g, 0.7);
    if (two)
        slots_event(g, p, "SlotsPublished", day, s2, c2);
    if (chance(g, 0.1))
        slots_event(g, p, "SlotsWithdrawn", day, s1 + rint_(g, c1 / 2), 1 + rint_(g, 6));
    int k = 2 + rint_(g, 7);
    for (int i = 0; i < k; i++) {
        bool second = two && chance(g, 0.5);
        int base = second ? s2 : s1, span = second ? c2 : c1, count = 1 + rint_(g, 4);
        int start = base + rint_(g, span - count);
        int id = ++p->nbooking;
        booking_event(g, p, "BookingCreated", id, day, start, count, NULL);
        live_add(p, id, day, start, count);
    }
    for (int i = 0; i < p->nlive; i++) {
        if (chance(g, 0.12)) {
            booking_event(g, p, "BookingCancelled", p->live[i].id, p->live[i].day, p->live[i].start,
                          p->live[i].count, NULL);
            live_remove(p, i--);
        } else if (chance(g, 0.08)) {
            live_t from = p->live[i];
            uint16_t to_day = (uint16_t)(day + rint_(g, 2));
            int start = 100 + rint_(g, 90), count = from.count;
            booking_event(g, p, "BookingRescheduled", from.id, to_day, start, count, &from);
            p->live[i] = (live_t){from.id, to_day, (uint16_t)start, (uint16_t)count};
        }
    }
    if (chance(g, 0.02))
        booking_event(g, p, "BookingCancelled", 900000 + rint_(g, 1000), day, 10, 2, NULL);
    if (chance(g, 0.04))
        snapshot(g, p, day);
    if (chance(g, 0.03)) {
        char b[EV_CAP];
        int n = env(g, b, p, "PractitionerUpdated", day);
        snprintf(b + n, sizeof(b) - (size_t)n, ",\"city\":\"%s\",\"accepts_new_patients\":%s}",
                 cities[rint_(g, 5)], chance(g, 0.5) ? "true" : "false");
        push(p, b);
    }
    if (p->active && chance(g, 0.01)) {
        char b[EV_CAP];
        int n = env(g, b, p, "PractitionerDeactivated", day);
        snprintf(b + n, sizeof(b) - (size_t)n, "}");
        push(p, b);
        p->active = false;
    } else if (!p->active && chance(g, 0.4)) {
        registered(g, p, day);
    }
    p->day++;
}

static void replace(char *s, const char *from, const char *to) {
    char *at = strstr(s, from);
    if (!at)
        return;
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    if (strlen(s) - fl + tl >= EV_CAP)
        return;
    memmove(at + tl, at + fl, rest + 1);
    memcpy(at, to, tl);
}

/* An invalid message about practitioner p, one kind of rejection each. */
static void invalid_message(rm_gen_t *g, gp_t *p, char *b) {
    uint16_t day = (uint16_t)(g->cfg.start_day + (p->day ? p->day - 1 : 0));
    char date[11];
    rm_date_format(day, date);
    int n = env(g, b, p, "SlotsPublished", day);
    snprintf(b + n, EV_CAP - (size_t)n, ",\"date\":\"%s\",\"start_slot\":10,\"slot_count\":5}",
             date);
    switch (rint_(g, 10)) {
    case 0:
        b[strlen(b) / 2] = '\0'; /* truncated JSON */
        break;
    case 1:
        replace(b, "\"schema_version\":1", "\"schema_version\":2");
        break;
    case 2:
        replace(b, "\"start_slot\":10", "\"start_slot\":10.0");
        break;
    case 3:
        replace(b, date, "2026-02-30");
        break;
    case 4:
        replace(b, "\"start_slot\":10", "\"start_slot\":280");
        replace(b, "\"slot_count\":5", "\"slot_count\":20");
        break;
    case 5: {
        char other[64];
        snprintf(other, sizeof(other), "\"practitioner_id\":\"%s-x\"", p->pid);
        char mine[64];
        snprintf(mine, sizeof(mine), "\"practitioner_id\":\"%s\"", p->pid);
        replace(b, mine, other);
        break;
    }
    case 6:
        replace(b, "SlotsPublished", "BookingCancelled");
        break; /* no booking_id */
    case 7:
        replace(b, "\"slot_count\":5", "\"slot_count\":5,\"note\":\"\xff\xfe\"");
        break;
    case 8:
        replace(b, "\"slot_count\":5", "\"slot_count\":\"5\"");
        break;
    default:
        snprintf(b, EV_CAP, "not json at all");
        break;
    }
}

rm_gen_t *rm_gen_new(const rm_gen_config_t *cfg) {
    if (cfg->practitioners < 1 || cfg->days < 1 ||
        (unsigned)cfg->start_day + (unsigned)cfg->days > RM_DAY_MAX + 1 || cfg->invalid_ratio < 0 ||
        cfg->invalid_ratio > 1 || cfg->ignored_ratio < 0 || cfg->ignored_ratio > 1)
        return NULL;
    rm_gen_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->cfg = *cfg;
    g->rng = cfg->seed * 2654435761u + 88172645463325252ull;
    g->ps = calloc((size_t)cfg->practitioners, sizeof(gp_t));
    g->open = calloc((size_t)cfg->practitioners, sizeof(int));
    if (!g->ps || !g->open) {
        rm_gen_free(g);
        return NULL;
    }
    for (int i = 0; i < cfg->practitioners; i++) {
        snprintf(g->ps[i].pid, sizeof(g->ps[i].pid), "p-%05d", i);
        g->open[i] = i;
    }
    g->nopen = cfg->practitioners;
    return g;
}

int rm_gen_next(rm_gen_t *g, rm_gen_msg_t *out) {
    while (g->nopen > 0) {
        int oi = rint_(g, g->nopen);
        gp_t *p = &g->ps[g->open[oi]];
        if (p->qpos == p->qn) {
            for (int i = 0; i < p->qn; i++)
                free(p->queue[i]);
            p->qn = p->qpos = 0;
            if (p->day >= g->cfg.days) {
                free(p->queue);
                p->queue = NULL;
                g->open[oi] = g->open[--g->nopen];
                continue;
            }
            script_day(g, p);
        }
        memcpy(g->key, p->pid, sizeof(g->key));
        *out = (rm_gen_msg_t){g->key, strlen(g->key), g->buf, 0, false};
        if (chance(g, g->cfg.invalid_ratio)) {
            invalid_message(g, p, g->buf);
            out->invalid = true;
        } else if (chance(g, g->cfg.ignored_ratio)) {
            int n = env(g, g->buf, p, "PractitionerRated", g->cfg.start_day);
            snprintf(g->buf + n, EV_CAP - (size_t)n, ",\"stars\":5}");
        } else {
            snprintf(g->buf, EV_CAP, "%s", p->queue[p->qpos++]);
        }
        out->value_len = strlen(g->buf);
        return 1;
    }
    return 0;
}

void rm_gen_free(rm_gen_t *g) {
    if (!g)
        return;
    for (int i = 0; g->ps && i < g->cfg.practitioners; i++) {
        for (int k = 0; k < g->ps[i].qn; k++)
            free(g->ps[i].queue[k]);
        free(g->ps[i].queue);
    }
    free(g->ps);
    free(g->open);
    free(g);
}
