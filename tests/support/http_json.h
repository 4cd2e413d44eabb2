/*
 * One JSON request over libcurl, for the tests that ask OpenSearch (the
 * test server or a real node) directly. The caller has called
 * curl_global_init. Thread-safe as long as one handle is used by one thread
 * at a time (reuse NULL: a handle of the call's own).
 */
#ifndef RM_TEST_HTTP_JSON_H
#define RM_TEST_HTTP_JSON_H

#include <curl/curl.h>
#include <jansson.h>

/* method url with body (NULL: none) sent as content_type (NULL:
 * application/json), through reuse (reset first; kept open for the next
 * request) or a handle of its own. Returns the body parsed as JSON (any
 * value; caller decrefs), NULL when it is not JSON or nothing answered; the
 * HTTP status in *status, 0 when nothing answered (90 s at most). */
json_t *test_http_json(CURL *reuse, const char *method, const char *url, const char *body,
                       const char *content_type, long *status);

#endif
