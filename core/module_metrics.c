/* Metrics of modules (pc_metric_*): each worker keeps its own instance
 * of each metric in memory it allocated, on cache lines of its own, and
 * alone writes it; the exposition sums the instances of all workers. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/server.h"

struct pc_metric {
    struct pc_metric *next; /* the worker's list; fixed once published */
    const struct pc_metric_def *def;
    int listener; /* its listener's slot (pc_section_service), or -1 */
    unsigned nvalues;
    atomic_uint_fast64_t values[]; /* gauges: int64_t in two's complement */
};

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')))
            return false;
    return true;
}

static unsigned value_count(const struct pc_metric_def *def)
{
    unsigned n = 0;
    if (!def->label)
        return 1;
    while (def->values && def->values[n])
        n++;
    return n;
}

/* Why def cannot be exported, or NULL. */
static const char *invalid(const struct pc_metric_def *def)
{
    if (!valid_name(def->name, true))
        return "not a valid Prometheus metric name";
    if (pc_metrics_reserved(def->name))
        return "a name of percore's own metrics";
    size_t len = strlen(def->name);
    bool total = len > 6 && strcmp(def->name + len - 6, "_total") == 0;
    if ((def->type == PC_METRIC_COUNTER) != total)
        return def->type == PC_METRIC_COUNTER
                   ? "a counter's name must end in _total"
                   : "only a counter's name ends in _total";
    if (def->type != PC_METRIC_COUNTER && def->type != PC_METRIC_GAUGE)
        return "an unknown type";
    if (!def->help)
        return "no help text";
    if (def->label) {
        if (!valid_name(def->label, false) ||
            strncmp(def->label, "__", 2) == 0 ||
            strcmp(def->label, "listener") == 0 ||
            strcmp(def->label, "protocol") == 0 ||
            strcmp(def->label, "worker") == 0)
            return "its label name is invalid or reserved";
        if (value_count(def) == 0)
            return "a label without values";
    }
    return NULL;
}

static bool same_shape(const struct pc_metric_def *a,
                       const struct pc_metric_def *b)
{
    if (a->type != b->type || !a->label != !b->label)
        return false;
    if (!a->label)
        return true;
    unsigned n = value_count(a);
    if (strcmp(a->label, b->label) != 0 || n != value_count(b))
        return false;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(a->values[i], b->values[i]) != 0)
            return false;
    return true;
}

static struct pc_metric *refuse(const struct pc_worker *w,
                                const struct pc_metric_def *def,
                                const char *why)
{
    if (w->id == 0) /* every worker registers the same: say it once */
        pc_log(PC_LOG_WARN, "metric %s not exported: %s",
               def && def->name ? def->name : "(null)", why);
    return NULL;
}

struct pc_metric *pc_metric_new(struct pc_worker *w,
                                const struct pc_metric_def *def,
                                const struct pc_section *cfg)
{
    int li = cfg ? (int)cfg->service : -1;
    if (!def)
        return refuse(w, def, "no definition");
    struct pc_metric *head =
        atomic_load_explicit(&w->metrics, memory_order_relaxed);
    for (struct pc_metric *m = head; m; m = m->next) {
        if (m->def == def && m->listener == li)
            return m;
        if (strcmp(m->def->name, def->name) == 0 && !same_shape(m->def, def))
            return refuse(w, def,
                          "registered before with another type or "
                          "labels");
    }
    const char *why = invalid(def);
    if (why)
        return refuse(w, def, why);
    unsigned n = value_count(def);
    /* Whole cache lines, from this worker's arena: nothing another
     * worker writes can share them. */
    size_t size = sizeof(struct pc_metric) + n * sizeof(atomic_uint_fast64_t);
    size = (size + PC_CACHE_LINE - 1) / PC_CACHE_LINE * PC_CACHE_LINE;
    struct pc_metric *m = aligned_alloc(PC_CACHE_LINE, size);
    if (!m)
        return refuse(w, def, "out of memory");
    memset(m, 0, size);
    m->def = def;
    m->listener = li;
    m->nvalues = n;
    m->next = head;
    /* Published whole: a scrape on another worker sees the fields. */
    atomic_store_explicit(&w->metrics, m, memory_order_release);
    return m;
}

void pc_metric_add(struct pc_metric *m, unsigned i, int64_t n)
{
    if (!m || i >= m->nvalues || (n < 0 && m->def->type == PC_METRIC_COUNTER))
        return;
    PC_STAT_BUMP(m->values[i], (uint64_t)n);
}

void pc_metric_set(struct pc_metric *m, unsigned i, int64_t v)
{
    if (!m || i >= m->nvalues || m->def->type != PC_METRIC_GAUGE)
        return;
    atomic_store_explicit(&m->values[i], (uint64_t)v, memory_order_relaxed);
}

void pc_module_metrics_free(struct pc_worker *w)
{
    struct pc_metric *m =
        atomic_load_explicit(&w->metrics, memory_order_acquire);
    while (m) {
        struct pc_metric *next = m->next;
        free(m);
        m = next;
    }
    atomic_store_explicit(&w->metrics, NULL, memory_order_relaxed);
}

/* ---- exposition ------------------------------------------------------- */

static int by_name_listener(const void *pa, const void *pb)
{
    const struct pc_metric *a = *(const struct pc_metric *const *)pa;
    const struct pc_metric *b = *(const struct pc_metric *const *)pb;
    int c = strcmp(a->def->name, b->def->name);
    return c ? c : (a->listener > b->listener) - (a->listener < b->listener);
}

/* The instances [from, to) share a name and a listener: one series per
 * value, summed over workers. */
static void put_series(struct pc_text *t, const struct pc_config *cfg,
                       struct pc_metric **all, size_t from, size_t to)
{
    const struct pc_metric_def *def = all[from]->def;
    struct pc_label l[3];
    unsigned nl = 0;
    int slot = all[from]->listener;
    if (slot >= 0) {
        /* A removed listener's series go with it (its slot is in no
         * listener of this config). */
        const struct pc_listener_config *lc = NULL;
        for (unsigned li = 0; li < cfg->nlisteners && !lc; li++)
            if ((int)cfg->listeners[li].slot == slot)
                lc = &cfg->listeners[li];
        if (!lc)
            return;
        l[nl++] = (struct pc_label){"listener", lc->name};
        l[nl++] = (struct pc_label){"protocol", lc->protocol};
    }
    for (unsigned i = 0; i < all[from]->nvalues; i++) {
        uint64_t sum = 0;
        for (size_t k = from; k < to; k++)
            if (same_shape(all[k]->def, def))
                sum += atomic_load_explicit(&all[k]->values[i],
                                            memory_order_relaxed);
        if (def->label)
            l[nl] = (struct pc_label){def->label, def->values[i]};
        unsigned n = nl + (def->label ? 1 : 0);
        if (def->type == PC_METRIC_GAUGE)
            pc_text_sample_i64(t, def->name, l, n, (int64_t)sum);
        else
            pc_text_sample_u64(t, def->name, l, n, sum);
    }
}

void pc_module_metrics_render(struct pc_text *t, const struct pc_server *srv,
                              const struct pc_config *cfg)
{
    size_t count = 0;
    for (unsigned k = 0; k < srv->nworkers; k++)
        for (const struct pc_metric *m = atomic_load_explicit(
                 &srv->workers[k].metrics, memory_order_acquire);
             m; m = m->next)
            count++;
    if (count == 0)
        return;
    struct pc_metric **all = malloc(count * sizeof *all);
    if (!all) {
        t->failed = true;
        return;
    }
    /* A worker may have registered more since the count: take at most
     * what was counted. */
    size_t n = 0;
    for (unsigned k = 0; k < srv->nworkers && n < count; k++)
        for (struct pc_metric *m = atomic_load_explicit(
                 &srv->workers[k].metrics, memory_order_acquire);
             m && n < count; m = m->next)
            all[n++] = m;
    qsort(all, n, sizeof *all, by_name_listener);
    for (size_t i = 0; i < n;) {
        const struct pc_metric_def *def = all[i]->def;
        pc_text_family(t, def->name, def->type == PC_METRIC_COUNTER, def->help);
        while (i < n && strcmp(all[i]->def->name, def->name) == 0) {
            size_t j = i;
            while (j < n && strcmp(all[j]->def->name, def->name) == 0 &&
                   all[j]->listener == all[i]->listener)
                j++;
            put_series(t, cfg, all, i, j);
            i = j;
        }
    }
    free(all);
}
