/*
 * The registry of sinks: the one place that lists every read model this
 * program maintains. Adding a sink is adding its ops file and a line here.
 */
#include "readmodel/sink.h"

#include <string.h>

const rm_sink_ops_t *const rm_sinks[] = {&rm_redis_sink_ops, &rm_os_sink_ops, NULL};

const rm_sink_ops_t *rm_sink_find(const char *name) {
    for (size_t i = 0; name && rm_sinks[i]; i++)
        if (strcmp(rm_sinks[i]->name, name) == 0)
            return rm_sinks[i];
    return NULL;
}

size_t rm_sinks_configured(const rm_config_t *cfg, const rm_sink_ops_t **out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; rm_sinks[i] && n < cap; i++)
        if (rm_sinks[i]->configured(cfg))
            out[n++] = rm_sinks[i];
    return n;
}

size_t rm_sinks_targeted(const rm_config_t *cfg, const rm_sink_ops_t **out, size_t cap) {
    if (cfg->target && strcmp(cfg->target, "all") == 0)
        return rm_sinks_configured(cfg, out, cap);
    const rm_sink_ops_t *one = rm_sink_find(cfg->target ? cfg->target : "redis");
    if (!one || cap == 0)
        return 0;
    out[0] = one;
    return 1;
}

rm_err_t rm_sink_open(rm_sink_t *s, const rm_sink_ops_t *ops, const rm_config_t *cfg, char *err,
                      size_t errlen) {
    s->ops = ops;
    s->impl = ops->open(cfg, err, errlen);
    return s->impl ? RM_ERR_OK : RM_ERR_INVAL;
}

void rm_sink_close(rm_sink_t *s) {
    if (s->ops && s->impl)
        s->ops->free(s->impl);
    s->impl = NULL;
}
