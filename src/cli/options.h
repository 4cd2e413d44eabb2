/*
 * The option table of every command (config.c), internal to src/cli and its
 * tests. One row per option: its flag, environment variable, the commands
 * it belongs to, its kind and bounds, the field of rm_config_t it fills, its
 * default and its help line. Parsing, the "--x is not an option of status"
 * check, the option lines of --help and the lines of --check-config all
 * read these rows; nothing else lists options.
 *
 * Thread-safety: the table is constant. rm_usage builds each command's text
 * once, on its first call (not thread-safe; call it from main).
 */
#ifndef READMODEL_CLI_OPTIONS_H
#define READMODEL_CLI_OPTIONS_H

#include "readmodel/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { RM_N_COMMANDS = RM_CMD_DEV_KAFKA + 1 };

/* Bit of a command in rm_opt_t.cmds. */
#define RM_ON(cmd) (1u << (cmd))

typedef enum {
    RM_OPT_STRING, /* char *: an owned copy, not empty unless RM_OPT_EMPTY_OK;
                    * at most `max` bytes when max > 0 */
    RM_OPT_SECRET, /* char *: as STRING, never printed nor echoed in errors */
    RM_OPT_FILE,   /* char *: a path, not empty; read by the validation */
    RM_OPT_CHOICE, /* char *: one of `choices` ("a|b|c") */
    RM_OPT_INT,    /* int in min..max */
    RM_OPT_SIZE,   /* size_t in min..max */
    RM_OPT_RATIO,  /* double in 0..1 */
    RM_OPT_BOOL,   /* bool: a switch without a value; sets true */
    RM_OPT_LIST,   /* char ** and its size_t count at count_offset: repeatable,
                    * each value appended (after `check`, if any) */
    RM_OPT_CUSTOM, /* `set` parses and stores the value */
    RM_OPT_HELP,   /* -h, --help */
} rm_opt_kind_t;

enum {
    RM_OPT_EMPTY_OK = 1u << 0,      /* STRING: "" is a value (from a flag) */
    RM_OPT_ENV_PREFIX = 1u << 1,    /* env is a prefix: <env><PROPERTY>=V is "property=V" */
    RM_OPT_PRINT = 1u << 2,         /* a line of rm_config_print */
    RM_OPT_IF_OPENSEARCH = 1u << 3, /* printed only when --opensearch is set */
    RM_OPT_OWN_DEFAULT = 1u << 4,   /* the default holds only for the row's commands; other
                                     * defaults fill their field for every command */
};

typedef struct rm_opt rm_opt_t;

/* Stores value v of option o into cfg; `who` names the source in errors
 * ("--workers" or "READMODEL_REDIS_PREFIX"). 0, or -1 with one line in err. */
typedef int (*rm_opt_set_fn)(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                             char *err, size_t errlen);
/* Checks one value of a LIST before it is appended. 0, or -1 with err. */
typedef int (*rm_opt_check_fn)(const char *who, const char *v, char *err, size_t errlen);
/* Writes the --check-config line(s) of o. */
typedef void (*rm_opt_print_fn)(const rm_opt_t *o, const rm_config_t *cfg, FILE *out);

struct rm_opt {
    const char *name;      /* flag without "--"; NULL: environment only */
    const char *arg;       /* value's name in --help ("LIST"); NULL: a switch */
    const char *env;       /* environment variable (or prefix), or NULL */
    unsigned cmds;         /* RM_ON() bits of the commands that take it */
    rm_opt_kind_t kind;    /* how the value is parsed and stored */
    size_t offset;         /* of the field in rm_config_t (not CUSTOM/HELP) */
    size_t count_offset;   /* LIST: of the size_t count */
    long min, max;         /* INT/SIZE bounds; STRING: max bytes when max > 0 */
    const char *def;       /* default, parsed like a value; NULL: none */
    const char *choices;   /* CHOICE and CUSTOM enumerations: "a|b|c" */
    rm_opt_set_fn set;     /* CUSTOM */
    rm_opt_check_fn check; /* LIST */
    rm_opt_print_fn print; /* PRINT rows with a line of their own format */
    const char *unset;     /* PRINT: shown when a string is NULL ("(none)") */
    unsigned flags;        /* RM_OPT_* flags above */
    const char *help;      /* one sentence, wrapped by rm_usage */
};

/* The table, in --help and --check-config order; *n gets its length. */
const rm_opt_t *rm_config_options(size_t *n);
/* "serve", "rebuild", ..., "dev-kafka". */
const char *rm_command_name(rm_command_t cmd);
/* Parses a whole number in min..max; else -1 with
 * "<who>: must be a whole number MIN..MAX (got 'V')" in err. */
int rm_opt_parse_long(const char *who, const char *v, long min, long max, long *out, char *err,
                      size_t errlen);

/* Writes "out of memory" into err and returns -1. */
int rm_cli_nomem(char *err, size_t errlen);
/* Replaces *dst (freed) with a copy of v. 0, or -1 when out of memory
 * (*dst unchanged). */
int rm_cli_set_str(char **dst, const char *v);

/* The prose of cmd's --help before (tail false) or after its option lines. */
const char *rm_usage_prose(rm_command_t cmd, bool tail);
/* One line saying what cmd does. */
const char *rm_command_summary(rm_command_t cmd);
/* The i-th command in the order `readmodel --help` lists them. */
rm_command_t rm_command_listed(size_t i);

/* The checks after parsing (config_check.c). 0, or -1 with one line in err. */
int rm_config_validate(rm_command_t cmd, rm_config_t *cfg, char *err, size_t errlen);

#endif
