/* A log-linear latency histogram, in the manner of HdrHistogram: values
 * below 2^PCB_HIST_BITS are counted exactly; above, every power of two is
 * split into 2^(PCB_HIST_BITS-1) equal sub-buckets, so a reported value is
 * within 1/2^(PCB_HIST_BITS-1) (0.8%) of the true one, from nanoseconds to
 * centuries, in a fixed 59 KiB with no allocation while recording.
 *
 * One histogram belongs to one thread; merge them when the threads are
 * done. */
#ifndef PCB_HIST_H
#define PCB_HIST_H

#include <stdint.h>

#define PCB_HIST_BITS    8
#define PCB_HIST_SUB     (1u << PCB_HIST_BITS)       /* exact range */
#define PCB_HIST_HALF    (1u << (PCB_HIST_BITS - 1)) /* per power of two */
#define PCB_HIST_BUCKETS (PCB_HIST_SUB + (64 - PCB_HIST_BITS) * PCB_HIST_HALF)

struct pcb_hist {
    uint64_t count;
    uint64_t min, max;
    double sum; /* for the mean; double so it cannot overflow */
    uint64_t buckets[PCB_HIST_BUCKETS];
};

/* Empties h. */
void pcb_hist_reset(struct pcb_hist *h);
/* Counts one value. */
void pcb_hist_record(struct pcb_hist *h, uint64_t v);
/* Adds every count of src to dst. */
void pcb_hist_merge(struct pcb_hist *dst, const struct pcb_hist *src);
/* The value below or at which `pct` percent (0..100) of the values lie:
 * the highest value of the bucket that holds that rank, never more than
 * the largest value recorded. 0 for an empty histogram. */
uint64_t pcb_hist_percentile(const struct pcb_hist *h, double pct);
double pcb_hist_mean(const struct pcb_hist *h);

/* Bucket arithmetic, exposed for the tests. */
unsigned pcb_hist_index(uint64_t v);
uint64_t pcb_hist_lowest(unsigned index);  /* smallest value in a bucket */
uint64_t pcb_hist_highest(unsigned index); /* largest value in a bucket */

#endif
