/* The Prometheus text format: families, samples, label escaping. */
#include "core/metrics_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(struct pc_text *t, size_t more)
{
    if (t->failed)
        return false;
    if (t->len + more + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 16384;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *grown = realloc(t->buf, cap);
    if (!grown) {
        t->failed = true;
        return false;
    }
    t->buf = grown;
    t->cap = cap;
    return true;
}

static void put(struct pc_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

void pc_text_printf(struct pc_text *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        put(t, small, (size_t)n);
        return;
    }
    if (!reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Label values escape backslash, double quote and newline; HELP texts
 * backslash and newline (`special`). */
static void put_escaped(struct pc_text *t, const char *v, const char *special)
{
    for (const char *p = v; *p; p++) {
        size_t run = strcspn(p, special);
        put(t, p, run);
        p += run;
        if (!*p)
            break;
        put(t, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2);
    }
}

void pc_text_family(struct pc_text *t, const char *name, bool counter,
                    const char *help)
{
    pc_text_printf(t, "# HELP %s ", name);
    put_escaped(t, help, "\\\n");
    pc_text_printf(t, "\n# TYPE %s %s\n", name, counter ? "counter" : "gauge");
}

void pc_text_sample(struct pc_text *t, const char *name,
                    const struct pc_label *labels, unsigned nlabels,
                    const char *value)
{
    put(t, name, strlen(name));
    for (unsigned i = 0; i < nlabels; i++) {
        put(t, i ? "," : "{", 1);
        put(t, labels[i].name, strlen(labels[i].name));
        put(t, "=\"", 2);
        put_escaped(t, labels[i].value, "\\\"\n");
        put(t, "\"", 1);
    }
    if (nlabels)
        put(t, "}", 1);
    put(t, " ", 1);
    put(t, value, strlen(value));
    put(t, "\n", 1);
}

void pc_text_sample_u64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        uint64_t value)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRIu64, value);
    pc_text_sample(t, name, labels, nlabels, v);
}

void pc_text_sample_i64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        int64_t value)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, value);
    pc_text_sample(t, name, labels, nlabels, v);
}

void pc_text_sample_f64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        double value)
{
    char v[48];
    snprintf(v, sizeof v, "%.6f", value);
    pc_text_sample(t, name, labels, nlabels, v);
}

struct pc_sbuf *pc_text_finish(struct pc_text *t)
{
    struct pc_sbuf *b = t->failed ? NULL : pc_sbuf_new(t->len);
    if (b)
        memcpy(b->data, t->buf, t->len);
    free(t->buf);
    *t = (struct pc_text){0};
    return b;
}
