/* upper: a complete out-of-tree percore module. It answers each line with
 * the line in upper case, counts lines per connection and in a metric of
 * its own, and says goodbye on "quit". Build it against the installed
 * headers:
 *
 *   cc -shared -fPIC -O2 $(pkg-config --cflags percore) upper.c -o upper.so
 *
 * and load it from the config:
 *
 *   [server]
 *   modules = /path/to/upper.so
 *   [listener shout]
 *   listen = 127.0.0.1:7010
 *   protocol = upper
 *   max_line = 200
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <percore/percore.h>

struct upper_conn {
    unsigned long lines; /* per-connection state: zeroed by percore */
};

struct upper_worker {
    size_t max_line;     /* per-worker state, from the listener's options */
    struct pc_metric *lines; /* this worker's instance of upper_lines */
};

/* On the metrics listener, summed over workers:
 *   percore_upper_lines_total{listener="shout",protocol="upper",result="upper"} 2
 * one series per value of its label "result". */
enum { LINE_UPPER, LINE_TOO_LONG, LINE_QUIT };
static const char *const line_results[] = {"upper", "too_long", "quit", NULL};
static const struct pc_metric_def upper_lines = {
    .name = "percore_upper_lines_total",
    .type = PC_METRIC_COUNTER,
    .help = "Lines received, by what was done with them",
    .label = "result",
    .values = line_results,
};

static const struct pc_option upper_options[] = {
    {"max_line", PC_OPT_SIZE, "1K", 2, 1 << 20, "longest line accepted"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int upper_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                             void **wstate)
{
    struct upper_worker *uw = malloc(sizeof *uw);
    if (!uw)
        return -1; /* percored refuses to start, naming the module */
    uw->max_line = (size_t)pc_section_int(cfg, "max_line");
    /* Labelled with this listener; NULL (counted nowhere) if it fails. */
    uw->lines = pc_metric_new(w, &upper_lines, cfg);
    *wstate = uw;
    return 0;
}

static void upper_worker_fini(struct pc_worker *w, void *wstate)
{
    free(wstate);
}

/* Writes n bytes upper-cased, through a small buffer: percore copies what
 * it queues, so the buffer is free again as soon as the call returns. */
static void write_upper(struct pc_conn *c, const char *p, size_t n)
{
    char buf[256];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        for (size_t i = 0; i < k; i++)
            buf[i] = (char)toupper((unsigned char)p[i]);
        pc_conn_write(c, buf, k);
        p += k;
        n -= k;
    }
}

static size_t upper_data(struct pc_conn *c, const char *data, size_t len)
{
    struct upper_conn *uc = pc_conn_state(c);
    struct upper_worker *uw = pc_conn_wstate(c);
    size_t used = 0;
    const char *nl;
    while ((nl = memchr(data + used, '\n', len - used))) {
        size_t n = (size_t)(nl - (data + used)) + 1;
        if (n > uw->max_line) {
            pc_metric_add(uw->lines, LINE_TOO_LONG, 1);
            pc_conn_write(c, "ERR line too long\n", 18);
        } else if (n >= 5 && memcmp(data + used, "quit", 4) == 0) {
            pc_metric_add(uw->lines, LINE_QUIT, 1);
            pc_conn_write(c, "BYE\n", 4);
            pc_conn_close(c);
            return len;
        } else {
            pc_metric_add(uw->lines, LINE_UPPER, 1); /* no lock: ours */
            write_upper(c, data + used, n);
        }
        uc->lines++;
        used += n;
    }
    /* An unfinished line stays with percore until its end arrives. */
    if (len - used > uw->max_line) {
        pc_conn_write(c, "ERR line too long\n", 18);
        pc_conn_close(c);
        return len;
    }
    return used;
}

const struct pc_proto percore_module = {
    .abi = PC_PROTO_ABI,
    .name = "upper",
    .conn_size = sizeof(struct upper_conn),
    .options = upper_options,
    .worker_init = upper_worker_init,
    .worker_fini = upper_worker_fini,
    .on_data = upper_data,
};
