/*
 * docs/contract.md's examples are what readmodel does: every event example
 * of its section 4 decodes as a valid event (all nine types), and the
 * events up to BookingCancelled, projected, give exactly the practitioner
 * document its section 5 shows. A contract edited without the code (or the
 * other way round) fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/availability.h"
#include "readmodel/event.h"
#include "readmodel/practitioner_doc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 32

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* The ```json blocks of text, cut in place; returns how many. */
static int json_blocks(char *text, char *blocks[MAX_BLOCKS]) {
    int n = 0;
    for (char *p = text; n < MAX_BLOCKS && (p = strstr(p, "```json\n"));) {
        p += strlen("```json\n");
        char *end = strstr(p, "```");
        if (!end)
            break;
        *end = '\0';
        blocks[n++] = p;
        p = end + 3;
    }
    return n;
}

static void test_examples_decode_and_project(void **state) {
    (void)state;
    char *text = read_all(RM_SOURCE_DIR "/docs/contract.md");
    assert_non_null(text);
    char *blocks[MAX_BLOCKS];
    int nb = json_blocks(text, blocks);
    assert_true(nb >= 10);

    rm_decoder_t *d = rm_decoder_new();
    assert_non_null(d);
    rm_avail_t st;
    assert_int_equal(rm_avail_init(&st), 0);
    rm_profile_t prof = {0};
    unsigned types = 0;
    int events = 0;
    bool projecting = true;
    const char *doc_example = NULL;
    for (int i = 0; i < nb; i++) {
        if (!strstr(blocks[i], "\"event_id\"")) {
            if (strstr(blocks[i], "\"free_slots_total\""))
                doc_example = blocks[i];
            continue;
        }
        rm_event_t ev;
        rm_reject_t why = {0};
        rm_decode_result_t r = rm_decode(d, "p-42", 4, blocks[i], strlen(blocks[i]), &ev, &why);
        if (r != RM_DECODE_OK)
            fail_msg("contract example %d does not decode (%s %s):\n%s", events + 1,
                     rm_reason_name(why.reason), why.field ? why.field : "", blocks[i]);
        types |= 1u << ev.type;
        events++;
        if (projecting) {
            rm_avail_apply(&st, &ev);
            assert_int_equal(rm_profile_apply(&prof, &ev), 0);
            projecting = ev.type != RM_EV_BOOKING_CANCELLED;
        }
    }
    assert_int_equal(events, 9);
    assert_int_equal(__builtin_popcount(types), 9);
    assert_false(projecting); /* BookingCancelled was among them */
    assert_non_null(doc_example);

    char *doc;
    size_t len;
    assert_int_equal(rm_doc_render("p-42", 4, &prof, &st, &doc, &len), 0);
    json_error_t err;
    json_t *got = json_loadb(doc, len, 0, &err), *want = json_loads(doc_example, 0, &err);
    assert_non_null(got);
    assert_non_null(want);
    if (!json_equal(got, want))
        fail_msg("the contract's document example differs from the projection:\n%s\nvs\n%s", doc,
                 doc_example);
    json_decref(got);
    json_decref(want);
    free(doc);
    rm_profile_free(&prof);
    rm_avail_free(&st);
    rm_decoder_free(d);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_decode_and_project),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
