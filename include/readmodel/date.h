/*
 * Calendar dates of the booking contract as day numbers: day 0 is
 * 2000-01-01, the last valid day (2099-12-31) is RM_DAY_MAX. Pure functions,
 * no allocation.
 *
 * Thread-safety: every function is thread-safe.
 */
#ifndef READMODEL_DATE_H
#define READMODEL_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_DAY_MAX       36524u /* 2099-12-31 */
#define RM_SLOTS_PER_DAY 288u   /* 5-minute slots */
#define RM_DAY_BYTES     36u    /* 288 bits */
#define RM_DATE_LEN      10u    /* "YYYY-MM-DD" */

/* Parses exactly "YYYY-MM-DD" (len 10) into a day number. Returns false when
 * the text is not that shape, not a real calendar date, or outside
 * 2000-01-01..2099-12-31. *day is written only on success. */
bool rm_date_parse(const char *s, size_t len, uint16_t *day);

/* Writes "YYYY-MM-DD" and a NUL into out (11 bytes) for day <= RM_DAY_MAX. */
void rm_date_format(uint16_t day, char out[RM_DATE_LEN + 1]);

/* Validates an RFC 3339 UTC timestamp "YYYY-MM-DDTHH:MM:SS[.frac]Z" (also
 * 't'/'z' and a "+00:00" offset). Any real calendar date of years 0001-9999. */
bool rm_timestamp_valid(const char *s, size_t len);

#endif
