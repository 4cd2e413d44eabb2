/*
 * The item every sink reads and writes (see readmodel/sink.h): one
 * practitioner on its way to a store (flush, forced rebuild write) or back
 * from it (load). The same type for every sink, so the worker and the
 * admin commands never copy between per-sink structs.
 *
 * Thread-safety: plain data; an item array belongs to the thread that
 * filled it for the duration of the call.
 */
#ifndef READMODEL_SINK_ITEM_H
#define READMODEL_SINK_ITEM_H

#include "readmodel/availability.h"
#include "readmodel/practitioner_doc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *pid; /* borrowed */
    size_t pid_len;
    rm_avail_t *st;           /* load: in initialised, out the stored state; flush: dirty days */
    rm_profile_t *profile;    /* the practitioner's profile; NULL when the sink keeps none */
    int32_t partition;        /* load: out, partition of the stored fence (-1 none); flush: in */
    int64_t fence;            /* load: out, stored fence (-1 none); flush: in, the new fence */
    int32_t expect_partition; /* flush: the stored fence the writer believes is there */
    int64_t expect_fence;     /* (-1: no stored state) */
    bool force;               /* flush: write whatever is stored (rebuild) */
    bool corrupt;             /* load, out: stored state present but undecodable */
    bool written;  /* flush, out: stored (false: the stored fence was not the expected one) */
    bool stale;    /* flush, out: the stored version is newer: resynchronise */
    bool rejected; /* flush, out: the document was refused for good (counted, state kept) */
} rm_sink_item_t;

#endif
