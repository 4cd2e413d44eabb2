/*
 * The --help text of every command: prose kept as text here, the option
 * lines generated from the option table (options.h), so --help never lists
 * an option the parser does not take or misses one it does.
 */
#include "options.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTIONS_HEAD "Options (flags override the environment):\n"

static const struct {
    const char *head, *tail;
} usage_prose[RM_N_COMMANDS] = {
    [RM_CMD_SERVE] =
        {"Usage: readmodel serve [options]\n"
         "\n"
         "Consume the booking log and keep the Redis availability bitmaps (and, with "
         "--opensearch,\n"
         "the OpenSearch practitioner index) in step with it. Each target is its own pipeline:\n"
         "one being down or slow never delays the other.\n"
         "\n" OPTIONS_HEAD,
         "\n"
         "The topic must exist (a missing one is exit 2, not created). What is read and\n"
         "written (events, keys, bit order, documents): docs/contract.md.\n"
         "Exit codes: 0 stopped cleanly (SIGTERM/SIGINT or --until-caught-up), 1 runtime "
         "failure,\n"
         "2 bad configuration.\n"},
    [RM_CMD_REBUILD] =
        {"Usage: readmodel rebuild --target redis|opensearch|all --from-beginning [options]\n"
         "\n"
         "Repair the read model while readers keep reading: replay every partition from its\n"
         "earliest offset to the end offsets captured at start into memory, write the final "
         "value\n"
         "of every key (fences included; Redis: each partition as soon as it is replayed), "
         "delete\n"
         "keys under the prefix that should not exist, then write the checkpoints. Live "
         "`serve`\n"
         "processes pause writing while the rebuild holds its lease and resume from the "
         "rebuilt\n"
         "checkpoints. --target opensearch builds a new index generation beside the live one\n"
         "and moves the alias in one call; --target all rebuilds Redis, then OpenSearch.\n"
         "\n" OPTIONS_HEAD,
         "\n"
         "Progress: a live line on a terminal, otherwise a log line every 5 s; a summary at the "
         "end.\n"
         "Exit codes: 0 rebuilt, 1 failed (the model stays consistent; run it again), 2 bad "
         "usage,\n"
         "3 truncated history refused, 4 another rebuild holds the lease.\n"},
    [RM_CMD_VERIFY] =
        {"Usage: readmodel verify --target redis|opensearch|all [options]\n"
         "\n"
         "Replay the log as rebuild does and compare with the live model instead of writing:\n"
         "missing, extra and wrong keys, practitioner states (fences) and checkpoints, with a "
         "few\n"
         "examples of each. Practitioners that a live serve moved past the captured end "
         "offsets\n"
         "while verify ran are skipped and counted. --target opensearch compares every "
         "document\n"
         "behind the alias; --target all compares both, and the worse exit code wins.\n"
         "\n" OPTIONS_HEAD,
         "\n"
         "Exit codes: 0 identical, 1 drift found, 2 error, 3 truncated history refused.\n"},
    [RM_CMD_STATUS] =
        {"Usage: readmodel status [--target redis|opensearch|all] [options]\n"
         "\n"
         "Per partition: earliest and end offsets, checkpoint and lag; the rebuild lease holder "
         "if\n"
         "any; the time and result of the last rebuild. --target opensearch: the alias, its\n"
         "generation and its checkpoints.\n"
         "\n" OPTIONS_HEAD,
         "\n"
         "Exit codes: 0 printed, 1 a sink or Kafka could not be read, 2 bad usage.\n"},
    [RM_CMD_GEN] =
        {"Usage: readmodel gen [options]\n"
         "\n"
         "Generate a deterministic, realistic booking log (same seed, same log) and produce "
         "it,\n"
         "keyed by practitioner and lz4-compressed, into Kafka, or write it to a file as\n"
         "KEY<TAB>VALUE lines (for kcat -K'\\t').\n"
         "\n" OPTIONS_HEAD,
         ""},
    [RM_CMD_DEV_KAFKA] =
        {"Usage: readmodel dev-kafka [options]\n"
         "\n"
         "Start a local Kafka (librdkafka's mock cluster) on loopback, print its bootstrap\n"
         "servers on the first line of stdout, and run until SIGINT/SIGTERM.\n"
         "Limits of the mock: about 5 MiB or 100,000 batches kept per partition, no\n"
         "ListOffsets by timestamp, no CreateTopics (topics are created here).\n"
         "\n"
         "Options:\n",
         ""},
};

/* One line per command, for `readmodel --help`, the man page and the
 * completion; "version" is not a command of the table but is listed. */
static const char *const summaries[RM_N_COMMANDS] = {
    [RM_CMD_SERVE] = "consume the log and maintain the Redis availability bitmaps and, with "
                     "--opensearch, the OpenSearch practitioner index",
    [RM_CMD_REBUILD] = "repair a read model from the whole log while readers keep reading",
    [RM_CMD_VERIFY] = "replay the log and compare with the live model (exit 1 on drift)",
    [RM_CMD_STATUS] = "offsets, checkpoints, lag, rebuild lease and last rebuild",
    [RM_CMD_DEV_KAFKA] = "run a local Kafka (librdkafka mock cluster) and print its bootstrap "
                         "servers",
    [RM_CMD_GEN] = "generate a deterministic, realistic booking log into Kafka or a file",
};

/* The order of `readmodel --help`. */
static const rm_command_t listed[RM_N_COMMANDS] = {RM_CMD_SERVE,  RM_CMD_REBUILD,   RM_CMD_VERIFY,
                                                   RM_CMD_STATUS, RM_CMD_DEV_KAFKA, RM_CMD_GEN};

const char *rm_usage_prose(rm_command_t cmd, bool tail) {
    if ((unsigned)cmd >= RM_N_COMMANDS)
        return "";
    return tail ? usage_prose[cmd].tail : usage_prose[cmd].head;
}

const char *rm_command_summary(rm_command_t cmd) {
    return (unsigned)cmd < RM_N_COMMANDS ? summaries[cmd] : "";
}

rm_command_t rm_command_listed(size_t i) {
    return listed[i % RM_N_COMMANDS];
}

/* ---- --help --------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len = b->len + (size_t)n < b->cap ? b->len + (size_t)n : b->cap - 1;
}

enum { HELP_COLUMN = 30, HELP_WIDTH = 96 };

/* `left`, then `text` word-wrapped in a column from `column`. */
static void sb_wrapped_at(sbuf_t *b, const char *left, const char *text, size_t column) {
    size_t col = strlen(left);
    sb_add(b, "%s", left);
    if (col + 2 > column)
        sb_add(b, "\n%*s", (int)column, "");
    else
        sb_add(b, "%*s", (int)(column - col), "");
    col = column;
    for (const char *p = text; *p;) {
        size_t w = strcspn(p, " ");
        if (col > column && col + 1 + w > HELP_WIDTH) {
            sb_add(b, "\n%*s", (int)column, "");
            col = column;
        } else if (col > column) {
            sb_add(b, " ");
            col++;
        }
        sb_add(b, "%.*s", (int)w, p);
        col += w;
        for (p += w; *p == ' '; p++)
            ;
    }
    sb_add(b, "\n");
}

static void sb_wrapped(sbuf_t *b, const char *left, const char *text) {
    sb_wrapped_at(b, left, text, HELP_COLUMN);
}

/* One option's lines: "  --name ARG   help (env VAR; default D)". */
static void usage_option(sbuf_t *b, const rm_opt_t *o) {
    char left[96], text[640], extra[256] = "";
    if (o->kind == RM_OPT_HELP)
        snprintf(left, sizeof(left), "  -h, --help");
    else if (o->name)
        snprintf(left, sizeof(left), "  --%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    else
        snprintf(left, sizeof(left), "  %s", o->env); /* environment only */
    if (o->name && o->env)
        snprintf(extra, sizeof(extra), "env %s%s", o->env,
                 o->flags & RM_OPT_ENV_PREFIX ? "<PROPERTY>" : "");
    if (o->def)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%sdefault %s",
                 *extra ? "; " : "", o->def);
    snprintf(text, sizeof(text), "%s%s%s%s", o->help, *extra ? " (" : "", extra, *extra ? ")" : "");
    sb_wrapped(b, left, text);
}

const char *rm_usage_main(void) {
    static char text[4096];
    sbuf_t b = {text, 0, sizeof(text)};
    if (text[0])
        return text;
    sb_add(&b, "Usage: readmodel COMMAND [options]\n\n"
               "Keeps the booking platform's derived read models in step with the booking log.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < RM_N_COMMANDS; i++) {
        char left[32];
        snprintf(left, sizeof(left), "  %s", rm_command_name(listed[i]));
        sb_wrapped_at(&b, left, summaries[listed[i]], 14);
    }
    sb_wrapped_at(&b, "  version", "print the version", 14);
    sb_add(&b,
           "\nRun 'readmodel COMMAND --help' for a command's options; `man readmodel` when\n"
           "installed.\n"
           "The contract (events read, keys and documents written, bit order of the bitmaps):\n"
           "docs/contract.md in the source tree, /usr/share/doc/readmodel/contract.md from the\n"
           "Debian package; examples of reading the model: examples/\n"
           "(/usr/share/doc/readmodel/examples).\n");
    return text;
}

const char *rm_usage(rm_command_t cmd) {
    static char text[RM_N_COMMANDS][12288];
    if ((unsigned)cmd >= RM_N_COMMANDS)
        cmd = RM_CMD_SERVE;
    sbuf_t b = {text[cmd], 0, sizeof(text[cmd])};
    if (text[cmd][0])
        return text[cmd];
    sb_add(&b, "%s", usage_prose[cmd].head);
    size_t n;
    const rm_opt_t *options = rm_config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (options[i].cmds & RM_ON(cmd))
            usage_option(&b, &options[i]);
    sb_add(&b, "%s", usage_prose[cmd].tail);
    return text[cmd];
}
