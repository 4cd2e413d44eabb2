/*
 * Date arithmetic for the slot grid. Day numbers count from 2000-01-01 using
 * Howard Hinnant's days_from_civil algorithm, so parsing and formatting are
 * exact for the whole contract range without calling the C library's
 * time-zone-aware functions.
 */
#include "readmodel/date.h"

static const int64_t epoch_2000 = 10957; /* days from 1970-01-01 to 2000-01-01 */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(unsigned y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m) {
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static bool digits(const char *s, size_t n, unsigned *out) {
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_ymd(const char *s, unsigned *y, unsigned *m, unsigned *d) {
    if (s[4] != '-' || s[7] != '-')
        return false;
    if (!digits(s, 4, y) || !digits(s + 5, 2, m) || !digits(s + 8, 2, d))
        return false;
    return *y >= 1 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

bool rm_date_parse(const char *s, size_t len, uint16_t *day) {
    unsigned y, m, d;
    if (len != RM_DATE_LEN || !parse_ymd(s, &y, &m, &d))
        return false;
    if (y < 2000 || y > 2099)
        return false;
    *day = (uint16_t)(days_from_civil(y, m, d) - epoch_2000);
    return true;
}

void rm_date_format(uint16_t day, char out[RM_DATE_LEN + 1]) {
    int64_t z = (int64_t)day + epoch_2000 + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const unsigned y = (unsigned)(yoe + era * 400) + (m <= 2);
    out[0] = (char)('0' + y / 1000 % 10);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

bool rm_timestamp_valid(const char *s, size_t len) {
    unsigned y, mo, d, h, mi, se;
    if (len < 20 || !parse_ymd(s, &y, &mo, &d))
        return false;
    if ((s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return false;
    if (!digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (h > 23 || mi > 59 || se > 60)
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z'))
        return true;
    return i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 1] == '0' && s[i + 2] == '0' &&
           s[i + 3] == ':' && s[i + 4] == '0' && s[i + 5] == '0';
}
