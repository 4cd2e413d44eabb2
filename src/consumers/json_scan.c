/*
 * Strict JSON tokenizer: one pass, a loop with no recursion and no depth
 * limit (nesting is bounded only by the input's length), writing a flat
 * token array. Each token records where its subtree ends
 * (`next`), so the decoder skips unknown members in O(1). Strings are checked
 * for control characters, escapes, surrogate pairs and UTF-8 (no overlongs,
 * no encoded surrogates, nothing above U+10FFFF); numbers follow the JSON
 * grammar exactly.
 */
#include "json_scan.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    const char *s;
    size_t len, pos;
    rm_json_tok_t *toks;
    size_t max, n;
    rm_json_err_t err;
    size_t blk_base;   /* offset of the 64-byte block blk_mask describes, or SIZE_MAX */
    uint64_t blk_mask; /* bit i: byte blk_base + i is not plain (see block_mask) */
} scanner_t;

/* Hot loops keep the position in a local: the bytes are chars, which may
 * alias sc->pos, so a loop on sc->pos would store and reload it per byte. */
static inline void skip_ws(scanner_t *sc) {
    const char *s = sc->s;
    size_t pos = sc->pos, len = sc->len;
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
        pos++;
    sc->pos = pos;
}

static int fail(scanner_t *sc, rm_json_err_t err) {
    if (sc->err == RM_JSON_OK)
        sc->err = err;
    return -1;
}

static long new_tok(scanner_t *sc, rm_json_type_t type) {
    if (sc->n >= sc->max)
        return fail(sc, RM_JSON_ERR_NOMEM);
    rm_json_tok_t *t = &sc->toks[sc->n];
    memset(t, 0, sizeof(*t));
    t->type = (uint8_t)type;
    t->start = (uint32_t)sc->pos;
    return (long)sc->n++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* Plain bytes can stand alone inside a string: printable ASCII other than
 * '"' and '\\' (0x7f DEL is allowed by JSON). block_mask returns the bytes
 * of s[base, base + 64) that are not plain as a bit mask (bit i for byte
 * base + i); positions at or past len count as not plain, so a search stops
 * there. With SSE2, sixteen bytes per step: a byte is special when it is '"'
 * or '\\' or, compared as signed, below 0x20 (which takes in control
 * characters and every non-ASCII byte). The last, partial block is copied
 * into zeros (control characters, so not plain) first: nothing past len is
 * read. */
static uint64_t block_mask(const unsigned char *s, size_t base, size_t len) {
    unsigned char tail[64];
    const unsigned char *b = s + base;
    if (len - base < 64) {
        memset(tail, 0, sizeof(tail));
        memcpy(tail, b, len - base);
        b = tail;
    }
    uint64_t m = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    for (unsigned i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * i));
        __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmplt_epi8(v, space));
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(special) << (16 * i);
    }
#else
    for (unsigned i = 0; i < 64; i++)
        m |= (uint64_t)(b[i] == '"' || b[i] == '\\' || b[i] < 0x20 || b[i] > 0x7f) << i;
#endif
    return m;
}

/* The first position at or after pos holding a byte that is not plain, or
 * len. Strings are scanned front to back, so each block's mask is computed
 * once per message and a string's end is usually one shift and one
 * count-trailing-zeros away. */
static inline size_t next_special(scanner_t *sc, size_t pos) {
    for (;;) {
        if (pos >= sc->len)
            return sc->len;
        size_t base = pos & ~(size_t)63;
        if (base != sc->blk_base) {
            sc->blk_base = base;
            sc->blk_mask = block_mask((const unsigned char *)sc->s, base, sc->len);
        }
        uint64_t m = sc->blk_mask >> (pos & 63);
        if (m)
            return pos + (size_t)__builtin_ctzll(m);
        pos = base + 64;
    }
}

static int scan_string(scanner_t *sc) {
    sc->pos++; /* opening quote */
    long ti = new_tok(sc, RM_JSON_STRING);
    if (ti < 0)
        return -1;
    rm_json_tok_t *t = &sc->toks[ti];
    const unsigned char *s = (const unsigned char *)sc->s;
    size_t pos = sc->pos, len = sc->len;
    for (;;) {
        /* Plain ASCII needs no further checks: jump to the next other byte. */
        pos = next_special(sc, pos);
        if (pos >= len)
            return fail(sc, RM_JSON_ERR_SYNTAX);
        unsigned char c = s[pos];
        if (c == '"') {
            t->end = (uint32_t)pos;
            t->next = (uint32_t)sc->n;
            sc->pos = pos + 1;
            return 0;
        }
        if (c < 0x20)
            return fail(sc, RM_JSON_ERR_SYNTAX);
        if (c == '\\') {
            t->escaped = 1;
            if (pos + 1 >= len)
                return fail(sc, RM_JSON_ERR_SYNTAX);
            char e = (char)s[pos + 1];
            if (strchr("\"\\/bfnrt", e) && e != '\0') {
                pos += 2;
                continue;
            }
            if (e != 'u')
                return fail(sc, RM_JSON_ERR_SYNTAX);
            unsigned cp;
            if (pos + 6 > len || hex4(sc->s + pos + 2, &cp) < 0)
                return fail(sc, RM_JSON_ERR_SYNTAX);
            pos += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(sc, RM_JSON_ERR_UTF8); /* lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (pos + 6 > len || s[pos] != '\\' || s[pos + 1] != 'u' ||
                    hex4(sc->s + pos + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(sc, RM_JSON_ERR_UTF8);
                pos += 6;
            }
            continue;
        }
        t->non_ascii = 1;
        size_t n = utf8_seq(s + pos, len - pos);
        if (n == 0)
            return fail(sc, RM_JSON_ERR_UTF8);
        pos += n;
    }
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int scan_number(scanner_t *sc) {
    long ti = new_tok(sc, RM_JSON_NUMBER);
    if (ti < 0)
        return -1;
    const char *s = sc->s;
    size_t p = sc->pos;
    int integer = 1;
    if (p < sc->len && s[p] == '-')
        p++;
    if (p >= sc->len)
        return fail(sc, RM_JSON_ERR_SYNTAX);
    if (s[p] == '0') {
        p++;
    } else if (s[p] >= '1' && s[p] <= '9') {
        while (p < sc->len && is_digit(s[p]))
            p++;
    } else {
        return fail(sc, RM_JSON_ERR_SYNTAX);
    }
    if (p < sc->len && s[p] == '.') {
        integer = 0;
        p++;
        if (p >= sc->len || !is_digit(s[p]))
            return fail(sc, RM_JSON_ERR_SYNTAX);
        while (p < sc->len && is_digit(s[p]))
            p++;
    }
    if (p < sc->len && (s[p] == 'e' || s[p] == 'E')) {
        integer = 0;
        p++;
        if (p < sc->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= sc->len || !is_digit(s[p]))
            return fail(sc, RM_JSON_ERR_SYNTAX);
        while (p < sc->len && is_digit(s[p]))
            p++;
    }
    rm_json_tok_t *t = &sc->toks[ti];
    t->integer = (uint8_t)integer;
    t->end = (uint32_t)p;
    t->next = (uint32_t)sc->n;
    sc->pos = p;
    return 0;
}

static int scan_literal(scanner_t *sc, const char *word, rm_json_type_t type) {
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return fail(sc, RM_JSON_ERR_SYNTAX);
    long ti = new_tok(sc, type);
    if (ti < 0)
        return -1;
    sc->pos += n;
    sc->toks[ti].end = (uint32_t)sc->pos;
    sc->toks[ti].next = (uint32_t)sc->n;
    return 0;
}

/* A member name and its colon, at sc->pos (whitespace before it skipped). */
static int scan_key(scanner_t *sc) {
    if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
        return fail(sc, RM_JSON_ERR_SYNTAX);
    if (scan_string(sc) < 0)
        return -1;
    skip_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
        return fail(sc, RM_JSON_ERR_SYNTAX);
    sc->pos++;
    return 0;
}

#define NO_PARENT UINT32_MAX

/* The whole value, as a loop rather than a recursion, so that nesting is
 * limited by nothing but the input's length (and the token array): no call
 * stack grows with depth. While a container is open, its token's `next`
 * holds the index of the container around it (NO_PARENT for the root), the
 * chain jsmn keeps in `parent`; closing it pops that link and stores the
 * real `next`. `size` counts the values completed inside it. */
static int scan_document(scanner_t *sc) {
    uint32_t open = NO_PARENT; /* innermost open container */
    for (;;) {
        /* A value is expected. */
        skip_ws(sc);
        if (sc->pos >= sc->len)
            return fail(sc, RM_JSON_ERR_SYNTAX);
        char c = sc->s[sc->pos];
        if (c == '{' || c == '[') {
            long ti = new_tok(sc, c == '{' ? RM_JSON_OBJECT : RM_JSON_ARRAY);
            if (ti < 0)
                return -1;
            sc->toks[ti].next = open;
            open = (uint32_t)ti;
            sc->pos++;
            skip_ws(sc);
            if (sc->pos >= sc->len || sc->s[sc->pos] != (c == '{' ? '}' : ']')) {
                if (c == '{' && scan_key(sc) < 0)
                    return -1;
                continue; /* its first value */
            }
            /* Empty: closed at once, below, as a value of its parent. */
            sc->pos++;
            rm_json_tok_t *t = &sc->toks[open];
            open = t->next;
            t->end = (uint32_t)sc->pos;
            t->next = (uint32_t)sc->n;
        } else {
            int r;
            switch (c) {
            case '"':
                r = scan_string(sc);
                break;
            case 't':
                r = scan_literal(sc, "true", RM_JSON_TRUE);
                break;
            case 'f':
                r = scan_literal(sc, "false", RM_JSON_FALSE);
                break;
            case 'n':
                r = scan_literal(sc, "null", RM_JSON_NULL);
                break;
            default:
                r = scan_number(sc);
            }
            if (r < 0)
                return -1;
        }
        /* A value is complete: it counts in the open container, which then
         * continues with a comma or ends, possibly completing its parent. */
        for (;;) {
            if (open == NO_PARENT)
                return 0;
            rm_json_tok_t *t = &sc->toks[open];
            t->size++;
            skip_ws(sc);
            if (sc->pos >= sc->len)
                return fail(sc, RM_JSON_ERR_SYNTAX);
            char d = sc->s[sc->pos++];
            if (d == ',') {
                if (t->type == RM_JSON_OBJECT) {
                    skip_ws(sc);
                    if (scan_key(sc) < 0)
                        return -1;
                }
                break;
            }
            if (d != (t->type == RM_JSON_OBJECT ? '}' : ']'))
                return fail(sc, RM_JSON_ERR_SYNTAX);
            open = t->next;
            t->end = (uint32_t)sc->pos;
            t->next = (uint32_t)sc->n;
        }
    }
}

rm_json_err_t rm_json_scan(const char *s, size_t len, rm_json_tok_t *toks, size_t max_toks,
                           size_t *ntok) {
    scanner_t sc = {
        .s = s, .len = len, .toks = toks, .max = max_toks, .err = RM_JSON_OK, .blk_base = SIZE_MAX};
    if (scan_document(&sc) < 0)
        return sc.err;
    skip_ws(&sc);
    if (sc.pos != len)
        return RM_JSON_ERR_SYNTAX;
    *ntok = sc.n;
    return RM_JSON_OK;
}

static size_t put_utf8(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t rm_json_unescape(const char *s, const rm_json_tok_t *t, char *out) {
    size_t o = 0;
    for (size_t i = t->start; i < t->end;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            hex4(s + i, &cp);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                hex4(s + i + 2, &lo);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8(cp, out + o);
            break;
        }
        default:
            out[o++] = e;
        }
    }
    return o;
}
