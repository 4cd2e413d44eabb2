/*
 * Strict, allocation-free JSON tokenizer (RFC 8259) for the event decoder.
 *
 * Why not jsmn alone: jsmn (Debian libjsmn-dev 1.1.0) accepts malformed JSON
 * such as `{"a":1,}`, `{"a" 1}` and `[1 2]`, does not check number grammar or
 * UTF-8, and the contract requires every malformed message to be rejected.
 * This scanner keeps jsmn's idea (a flat array of tokens into the caller's
 * buffer, no heap) and validates grammar, escapes and UTF-8 in the same pass.
 */
#ifndef READMODEL_JSON_SCAN_H
#define READMODEL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_JSON_OBJECT,
    RM_JSON_ARRAY,
    RM_JSON_STRING,
    RM_JSON_NUMBER,
    RM_JSON_TRUE,
    RM_JSON_FALSE,
    RM_JSON_NULL,
} rm_json_type_t;

typedef struct {
    uint8_t type;      /* rm_json_type_t */
    uint8_t escaped;   /* string: contains a backslash escape */
    uint8_t non_ascii; /* string: contains a byte above 0x7f (not counting escapes) */
    uint8_t integer;   /* number: no fraction and no exponent */
    uint32_t start;    /* string: first byte after the quote; else first byte */
    uint32_t end;      /* string: the closing quote; else one past the value */
    uint32_t size;     /* object: number of members; array: number of elements */
    uint32_t next;     /* index of the token after this value's subtree */
} rm_json_tok_t;

typedef enum {
    RM_JSON_OK,
    RM_JSON_ERR_SYNTAX, /* not JSON */
    RM_JSON_ERR_UTF8,   /* invalid UTF-8 in a string, or an unpaired \u surrogate */
    RM_JSON_ERR_NOMEM,  /* more tokens than the caller's array holds */
} rm_json_err_t;

/* Tokenizes exactly one JSON value filling s[0..len) (whitespace around it is
 * allowed). Object members are stored key token then value token. On success
 * *ntok is the token count. Never reads past len, never allocates, never
 * recurses: there is no depth limit, a value may nest as deep as len allows
 * (len / 2 levels; the caller's token array bounds it too, one token per
 * level). */
rm_json_err_t rm_json_scan(const char *s, size_t len, rm_json_tok_t *toks, size_t max_toks,
                           size_t *ntok);

/* Copies the decoded text of string token t into out (capacity at least
 * t->end - t->start bytes) and returns its length in bytes. Only valid for a
 * token that rm_json_scan accepted. */
size_t rm_json_unescape(const char *s, const rm_json_tok_t *t, char *out);

#endif
