/*
 * readmodel(1) and the bash completion, generated from the option table and
 * the --help prose (usage.c), so that the installed documentation can never
 * list an option the parser does not take, or miss one. The build runs the
 * hidden commands `readmodel help-man` and `readmodel help-completion` and
 * installs their output (CMakeLists.txt).
 */
#include "options.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef RM_VERSION
#define RM_VERSION "dev"
#endif

/* Text as roff: backslashes and hyphens escaped, a line starting with a
 * control character protected, a blank line a new paragraph. Lines of
 * `skip_prefix` (e.g. "Usage:") are left out. */
static void roff_text(FILE *out, const char *text, const char *skip_prefix) {
    bool bol = true;
    for (const char *p = text; *p; p++) {
        if (bol && skip_prefix && strncmp(p, skip_prefix, strlen(skip_prefix)) == 0) {
            p += strcspn(p, "\n");
            if (!*p)
                break;
            continue;
        }
        if (bol && *p == '\n') {
            fputs(".PP\n", out);
            continue;
        }
        if (bol && (*p == '.' || *p == '\''))
            fputs("\\&", out);
        if (*p == '\\')
            fputs("\\e", out);
        else if (*p == '-')
            fputs("\\-", out);
        else
            fputc(*p, out);
        bol = *p == '\n';
    }
    if (!bol)
        fputc('\n', out);
}

/* The prose before a command's options, without its "Usage:" line and the
 * "Options" heading that introduces the option list. */
static void command_head(FILE *out, rm_command_t cmd) {
    char head[2048];
    snprintf(head, sizeof(head), "%s", rm_usage_prose(cmd, false));
    char *opts = strstr(head, "Options");
    if (opts)
        *opts = '\0';
    while (*head && head[strlen(head) - 1] == '\n')
        head[strlen(head) - 1] = '\0';
    char *body = head;
    while (*body == '\n' || strncmp(body, "Usage:", 6) == 0)
        body += *body == '\n' ? 1 : strcspn(body, "\n");
    roff_text(out, body, NULL);
}

/* s with each '-' as roff's "\-" (a hyphen-minus that copies as one). */
static void roff_word(FILE *out, const char *s) {
    for (; *s; s++)
        if (*s == '-')
            fputs("\\-", out);
        else if (*s == '\\')
            fputs("\\e", out);
        else
            fputc(*s, out);
}

static void option_item(FILE *out, const rm_opt_t *o) {
    fputs(".TP\n", out);
    if (o->kind == RM_OPT_HELP) {
        fputs("\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n", out);
    } else if (o->name) {
        fputs("\\fB\\-\\-", out);
        roff_word(out, o->name);
        fputs("\\fR", out);
        if (o->arg) {
            fputs(" \\fI", out);
            roff_word(out, o->arg);
            fputs("\\fR", out);
        }
        fputc('\n', out);
    } else {
        fputs("\\fB", out);
        roff_word(out, o->env);
        fputs("\\fR (environment)\n", out);
    }
    char text[1024], extra[256] = "";
    if (o->name && o->env)
        snprintf(extra, sizeof(extra), "environment %s%s", o->env,
                 o->flags & RM_OPT_ENV_PREFIX ? "<PROPERTY>" : "");
    if (o->def)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%sdefault %s",
                 *extra ? "; " : "", o->def);
    snprintf(text, sizeof(text), "%s%s%s%s", o->help, *extra ? " (" : "", extra, *extra ? ")" : "");
    roff_text(out, text, NULL);
}

static void man_commands(FILE *out) {
    size_t n;
    const rm_opt_t *t = rm_config_options(&n);
    fputs(".SH COMMANDS\n", out);
    for (size_t i = 0; i < RM_N_COMMANDS; i++) {
        rm_command_t cmd = rm_command_listed(i);
        fputs(".SS \"readmodel ", out);
        roff_word(out, rm_command_name(cmd));
        fputs("\"\n", out);
        command_head(out, cmd);
        fputs(".PP\nOptions (flags override the environment):\n", out);
        for (size_t k = 0; k < n; k++)
            if (t[k].cmds & RM_ON(cmd))
                option_item(out, &t[k]);
        const char *tail = rm_usage_prose(cmd, true);
        while (*tail == '\n')
            tail++;
        if (*tail) {
            fputs(".PP\n", out);
            roff_text(out, tail, NULL);
        }
    }
    fputs(".SS \"readmodel version\"\nPrints the version (also \\fB\\-\\-version\\fR).\n", out);
}

/* Every environment variable once, with the commands that read it. */
static void man_environment(FILE *out) {
    size_t n;
    const rm_opt_t *t = rm_config_options(&n);
    fputs(".SH ENVIRONMENT\nFlags override these; an empty variable is unset.\n", out);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = t[j].env && t[i].env && strcmp(t[j].env, t[i].env) == 0;
        if (!t[i].env || seen)
            continue;
        fprintf(out, ".TP\n\\fB%s%s\\fR\n", t[i].env,
                t[i].flags & RM_OPT_ENV_PREFIX ? "<PROPERTY>" : "");
        char text[1024];
        snprintf(text, sizeof(text), "%s%s%s", t[i].name ? "as --" : "", t[i].name ? t[i].name : "",
                 t[i].name ? ": " : "");
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s", t[i].help);
        roff_text(out, text, NULL);
    }
}

void rm_usage_man(FILE *out) {
    fprintf(out, ".TH READMODEL 1 \"\" \"readmodel %s\" \"User Commands\"\n", RM_VERSION);
    fputs(".SH NAME\nreadmodel \\- keep the booking platform's read models in step with the "
          "booking log\n"
          ".SH SYNOPSIS\n.B readmodel\n.I command\n.RI [ options ]\n"
          ".SH DESCRIPTION\n",
          out);
    roff_text(out,
              "readmodel projects the booking event log (a Kafka topic keyed by practitioner) "
              "into the Redis availability bitmaps (one 36-byte bitmap per practitioner and day) "
              "and, when configured, the OpenSearch practitioner index. serve keeps them up to "
              "date; rebuild repairs them from the whole log while readers keep reading; verify "
              "compares them with the log; status shows offsets, lag and the last repair.",
              NULL);
    for (size_t i = 0; i < RM_N_COMMANDS; i++) {
        rm_command_t cmd = rm_command_listed(i);
        fputs(".TP\n.B ", out);
        roff_word(out, rm_command_name(cmd));
        fputc('\n', out);
        roff_text(out, rm_command_summary(cmd), NULL);
    }
    man_commands(out);
    man_environment(out);
    fputs(".SH \"EXIT STATUS\"\n0 success; 1 runtime failure (logged); 2 bad usage or "
          "configuration (one line on stderr naming the setting). rebuild: 3 truncated history "
          "refused, 4 another rebuild holds the lease. verify: 1 drift found, 2 could not "
          "compare, 3 truncated history refused.\n"
          ".SH FILES\n.TP\n/usr/share/doc/readmodel/contract.md\nThe contract: event types and "
          "fields, the bitmap's slots, bit order and key format, the document's fields.\n"
          ".TP\n/usr/share/doc/readmodel/output\\-json.md\nThe JSON of \\fB\\-\\-output json\\fR.\n"
          ".TP\n/usr/share/doc/readmodel/examples/\nReading the model with redis\\-cli, C and "
          "Python.\n"
          ".TP\n/usr/share/readmodel/prometheus/readmodel\\-rules.yaml\nPrometheus alert rules.\n"
          ".TP\n/usr/share/readmodel/grafana/readmodel\\-dashboard.json\nGrafana dashboard.\n"
          ".SH \"SEE ALSO\"\n\\fBredis\\-cli\\fR(1), \\fBkcat\\fR(1)\n",
          out);
}

/* ---- bash completion ------------------------------------------------------- */

/* The words completing a value of option o: its choices, or NULL. */
static void choice_words(const rm_opt_t *o, char *out, size_t cap) {
    snprintf(out, cap, "%s", o->choices ? o->choices : "");
    for (char *p = out; *p; p++)
        if (*p == '|')
            *p = ' ';
}

static void completion_values(FILE *out, const rm_opt_t *t, size_t n) {
    fputs("    case \"$cmd $prev\" in\n", out);
    for (size_t i = 0; i < n; i++) {
        const rm_opt_t *o = &t[i];
        if (!o->name || o->kind == RM_OPT_BOOL || o->kind == RM_OPT_HELP)
            continue;
        char words[256];
        choice_words(o, words, sizeof(words));
        for (size_t c = 0; c < RM_N_COMMANDS; c++) {
            if (!(o->cmds & RM_ON(c)))
                continue;
            if (*words)
                fprintf(
                    out,
                    "    \"%s --%s\") COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n",
                    rm_command_name((rm_command_t)c), o->name, words);
            else if (o->kind == RM_OPT_FILE || (c == RM_CMD_GEN && strcmp(o->name, "output") == 0))
                fprintf(out, "    \"%s --%s\") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n",
                        rm_command_name((rm_command_t)c), o->name);
            else
                fprintf(out, "    \"%s --%s\") return ;;\n", rm_command_name((rm_command_t)c),
                        o->name);
        }
    }
    fputs("    esac\n", out);
}

void rm_usage_bash_completion(FILE *out) {
    size_t n;
    const rm_opt_t *t = rm_config_options(&n);
    fputs("# bash completion for readmodel, generated from its option table "
          "(readmodel help-completion)\n"
          "_readmodel() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
          "        COMPREPLY=($(compgen -W \"",
          out);
    for (size_t i = 0; i < RM_N_COMMANDS; i++)
        fprintf(out, "%s ", rm_command_name(rm_command_listed(i)));
    fputs("version --help\" -- \"$cur\"))\n        return\n    fi\n"
          "    local cmd=${COMP_WORDS[1]} opts=\n",
          out);
    completion_values(out, t, n);
    fputs("    case \"$cmd\" in\n", out);
    for (size_t c = 0; c < RM_N_COMMANDS; c++) {
        fprintf(out, "    %s) opts=\"", rm_command_name((rm_command_t)c));
        bool first = true;
        for (size_t i = 0; i < n; i++)
            if (t[i].name && (t[i].cmds & RM_ON(c))) {
                fprintf(out, "%s--%s", first ? "" : " ", t[i].name);
                first = false;
            }
        fputs("\" ;;\n", out);
    }
    fputs("    esac\n"
          "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
          "}\n"
          "complete -F _readmodel readmodel\n",
          out);
}
