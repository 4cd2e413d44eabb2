/* Small helpers shared by the option table's parsing (config.c) and the
 * checks after it (config_check.c), in a file of their own so neither of
 * the two needs the other's symbols both ways. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rm_cli_nomem(char *err, size_t errlen) {
    snprintf(err, errlen, "out of memory");
    return -1;
}

int rm_cli_set_str(char **dst, const char *v) {
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}
