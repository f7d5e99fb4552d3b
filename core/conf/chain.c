/* chain.c - plugin chains: which instance of each plugin runs for a
 * route/service/consumer, with Kong's precedence (plugins_iterator.lua
 * lookup_cfg), in run order (priority desc, ties reverse alphabetical).
 *
 * Chains are computed once per configuration generation: one per route,
 * service and the global one, plus, for each consumer that has plugins
 * scoped to it, one per route.  A request switches to its consumer's chain
 * when an auth plugin sets the consumer (plugin/phase.c). */

#include <stdlib.h>

#include "conf/config_check.h"

int
sl_conf_chain_order(const sl_plugin_inst_t *a, const sl_plugin_inst_t *b)
{
    const sl_plugin_t *x = a->plugin->desc, *y = b->plugin->desc;

    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return -strcmp(x->name, y->name);
}

static int
chain_cmp(const void *a, const void *b)
{
    return sl_conf_chain_order(*(sl_plugin_inst_t *const *)a, *(sl_plugin_inst_t *const *)b);
}

/* Kong's lookup order, most specific first: route+service+consumer,
 * route+consumer, service+consumer, route+service, consumer, route,
 * service, global.  -1: the instance does not apply. */
static int
score(const sl_plugin_inst_t *in, const sl_route_t *r, const sl_service_t *s,
      const sl_consumer_t *c)
{
    if (in->route && (r == NULL || in->route != r))
        return -1;
    if (in->service && (s == NULL || in->service != s))
        return -1;
    if (in->consumer && (c == NULL || in->consumer != c))
        return -1;
    if (in->consumer) {
        if (in->route && in->service)
            return 7;
        return in->route ? 6 : in->service ? 5 : 3;
    }
    if (in->route && in->service)
        return 4;
    return in->route ? 2 : in->service ? 1 : 0;
}

void
sl_conf_chain_build(sl_conf_t *conf, sl_chain_t *ch, const sl_route_t *r, const sl_service_t *s,
                    const sl_consumer_t *c)
{
    int *best = sl_xcalloc(conf->nplugins ? conf->nplugins : 1, sizeof(int));

    ch->items = sl_xcalloc(conf->nplugins ? conf->nplugins : 1, sizeof(*ch->items));
    ch->n = 0;
    for (size_t i = 0; i < conf->nplugins; i++) {
        sl_plugin_inst_t *in = conf->plugins[i];
        int sc;
        size_t k;

        if (!in->enabled || (sc = score(in, r, s, c)) < 0)
            continue;
        for (k = 0; k < ch->n; k++)
            if (!strcmp(ch->items[k]->plugin->desc->name, in->plugin->desc->name))
                break;
        if (k == ch->n) {
            ch->items[ch->n] = in;
            best[ch->n++] = sc;
        } else if (sc > best[k]) {
            ch->items[k] = in;
            best[k] = sc;
        }
    }
    free(best);
    if (ch->n > 0)
        qsort(ch->items, ch->n, sizeof(*ch->items), chain_cmp);
    sl_conf_chain_flags(ch);
}

void
sl_conf_chain_flags(sl_chain_t *ch)
{
    ch->has_body = ch->has_body_filter = ch->has_header_filter = ch->has_balancer = 0;
    for (size_t i = 0; i < ch->n; i++) {
        const sl_plugin_t *d = ch->items[i]->plugin->desc;
        unsigned skip = ch->items[i]->skip; /* ABI 1.8: phases the instance said it never needs */
        ch->has_body |= d->body != NULL && !(skip & SL_PLUGIN_PHASE_BODY);
        ch->has_body_filter |= d->body_filter != NULL && !(skip & SL_PLUGIN_PHASE_BODY_FILTER);
        ch->has_header_filter |=
            d->header_filter != NULL && !(skip & SL_PLUGIN_PHASE_HEADER_FILTER);
        ch->has_balancer |=
            d->abi_minor >= 2 && d->balancer != NULL && !(skip & SL_PLUGIN_PHASE_BALANCER);
    }
}

void
sl_conf_chains_build(sl_conf_t *conf)
{
    for (size_t i = 0; i < conf->nroutes; i++) {
        conf->routes[i]->idx = i;
        sl_conf_chain_build(conf, &conf->routes[i]->chain, conf->routes[i],
                            conf->routes[i]->service, NULL);
    }
    for (size_t i = 0; i < conf->nservices; i++)
        sl_conf_chain_build(conf, &conf->services[i]->chain, NULL, conf->services[i], NULL);
    sl_conf_chain_build(conf, &conf->global_chain, NULL, NULL, NULL);
    for (size_t k = 0; k < conf->nconsumers; k++) {
        sl_consumer_t *c = conf->consumers[k];
        if (c->nplugins == 0 || conf->nroutes == 0)
            continue;
        c->chains = sl_xcalloc(conf->nroutes, sizeof(*c->chains));
        for (size_t i = 0; i < conf->nroutes; i++)
            sl_conf_chain_build(conf, &c->chains[i], conf->routes[i], conf->routes[i]->service, c);
    }
}

const sl_chain_t *
sl_conf_consumer_chain(const sl_consumer_t *c, const sl_route_t *r)
{
    if (c == NULL || r == NULL || c->chains == NULL)
        return NULL;
    return &c->chains[r->idx];
}
