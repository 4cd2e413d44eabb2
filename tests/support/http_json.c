/* One JSON request over libcurl: see http_json.h. */
#include "http_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n;
    int failed;
} body_t;

static size_t collect(char *p, size_t size, size_t nmemb, void *arg) {
    body_t *b = arg;
    size_t add = size * nmemb;
    char *grown = realloc(b->p, b->n + add + 1);
    if (!grown) {
        b->failed = 1;
        return 0;
    }
    memcpy(grown + b->n, p, add);
    b->n += add;
    grown[b->n] = '\0';
    b->p = grown;
    return add;
}

json_t *test_http_json(CURL *reuse, const char *method, const char *url, const char *body,
                       const char *content_type, long *status) {
    *status = 0;
    CURL *c = reuse ? reuse : curl_easy_init();
    if (!c)
        return NULL;
    if (reuse)
        curl_easy_reset(c);
    char type[128];
    snprintf(type, sizeof(type), "Content-Type: %s",
             content_type ? content_type : "application/json");
    struct curl_slist *h = curl_slist_append(NULL, type);
    body_t got = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    if (!reuse)
        curl_easy_cleanup(c);
    json_t *j = got.p && !got.failed ? json_loads(got.p, JSON_DECODE_ANY, NULL) : NULL;
    free(got.p);
    return j;
}
