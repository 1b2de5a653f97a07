#include "hist.h"

#include <string.h>

void pcb_hist_reset(struct pcb_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* For v >= 2^BITS with its top bit at k, the bucket is one of the HALF
 * slices of [2^k, 2^(k+1)), each 2^(k-BITS+1) wide. */
unsigned pcb_hist_index(uint64_t v)
{
    if (v < PCB_HIST_SUB)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = k - PCB_HIST_BITS + 1;
    unsigned sub = (unsigned)(v >> shift) - PCB_HIST_HALF;
    return PCB_HIST_SUB + (k - PCB_HIST_BITS) * PCB_HIST_HALF + sub;
}

uint64_t pcb_hist_lowest(unsigned index)
{
    if (index < PCB_HIST_SUB)
        return index;
    unsigned rel = index - PCB_HIST_SUB;
    unsigned k = rel / PCB_HIST_HALF + PCB_HIST_BITS;
    unsigned sub = rel % PCB_HIST_HALF;
    return (uint64_t)(PCB_HIST_HALF + sub) << (k - PCB_HIST_BITS + 1);
}

uint64_t pcb_hist_highest(unsigned index)
{
    if (index + 1 >= PCB_HIST_BUCKETS)
        return UINT64_MAX;
    return pcb_hist_lowest(index + 1) - 1;
}

void pcb_hist_record(struct pcb_hist *h, uint64_t v)
{
    h->buckets[pcb_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void pcb_hist_merge(struct pcb_hist *dst, const struct pcb_hist *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < PCB_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t pcb_hist_percentile(const struct pcb_hist *h, double pct)
{
    if (!h->count)
        return 0;
    if (pct <= 0)
        return h->min;
    if (pct >= 100)
        return h->max;
    /* The rank of the value asked for, 1-based, rounded up so that p50 of
     * {1, 2} is 1 and p100 is the largest; the slack keeps 99.9% of 1000
     * at 999 despite binary fractions. */
    double want = pct / 100.0 * (double)h->count - 1e-9;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < PCB_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = pcb_hist_highest(i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}

double pcb_hist_mean(const struct pcb_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
