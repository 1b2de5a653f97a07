/* Writing the Prometheus text format (version 0.0.4) into a buffer that
 * grows as needed: the exposition is as long as the workers and
 * listeners make it. One thread uses a buffer at a time. */
#ifndef PC_CORE_METRICS_TEXT_H
#define PC_CORE_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "percore/percore.h"

struct pc_text {
    char *buf;
    size_t len, cap;
    bool failed; /* out of memory: later writes do nothing */
};

/* One label of a sample; value is escaped when written. */
struct pc_label {
    const char *name, *value;
};

void pc_text_printf(struct pc_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name counter|gauge". */
void pc_text_family(struct pc_text *t, const char *name, bool counter,
                    const char *help);
/* name{labels} value, one line; value already formatted. */
void pc_text_sample(struct pc_text *t, const char *name,
                    const struct pc_label *labels, unsigned nlabels,
                    const char *value);
void pc_text_sample_u64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        uint64_t value);
void pc_text_sample_i64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        int64_t value);
void pc_text_sample_f64(struct pc_text *t, const char *name,
                        const struct pc_label *labels, unsigned nlabels,
                        double value);
/* The text as a shared buffer with one reference (the caller's), and the
 * buffer freed; NULL if anything failed. */
struct pc_sbuf *pc_text_finish(struct pc_text *t);

#endif
