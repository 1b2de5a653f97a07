/* percored --stats: reads the running server's metrics from the metrics
 * listener of a configuration and prints them as tables, one row a
 * worker and one a listener. A client of the text format, like any
 * scraper: it needs nothing from the server but the listener. */
#include "core/stats_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listener.h"
#include "core/metrics.h"

/* The body of GET /metrics from address a, NUL-terminated, or NULL. */
static char *fetch(const struct pc_sockaddr *a, const char *where)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        fprintf(stderr,
                "percored: cannot reach the metrics listener at %s: "
                "%s\n",
                where, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    bool ok = buf && write(fd, req, strlen(req)) == (ssize_t)strlen(req);
    ssize_t n = 0;
    while (ok && (n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 4096) {
            char *grown = realloc(buf, cap *= 2);
            ok = grown != NULL;
            if (grown)
                buf = grown;
        }
    }
    close(fd);
    if (!ok || n < 0) {
        fprintf(stderr, "percored: reading the metrics from %s failed\n",
                where);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.0 200", 12) != 0 || !body) {
        fprintf(stderr, "percored: %s did not answer with metrics\n", where);
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
    return buf;
}

/* ---- the columns ------------------------------------------------------- */

struct column {
    const char *title, *metric;
};

static const struct column worker_cols[] = {
    {"open", "percore_worker_connections"},
    {"accepted", "percore_worker_connections_accepted_total"},
    {"bytes in", "percore_worker_received_bytes_total"},
    {"bytes out", "percore_worker_sent_bytes_total"},
    {"messages", "percore_worker_messages_received_total"},
    {"loops", "percore_worker_loop_iterations_total"},
    {"queued", "percore_worker_output_queued_bytes"},
    {"heap", "percore_worker_jemalloc_allocated_bytes"},
};
static const struct column listener_cols[] = {
    {"open", "percore_connections_open"},
    {"accepted", "percore_connections_accepted_total"},
    {"refused", "percore_connections_refused_total"},
    {"bytes in", "percore_received_bytes_total"},
    {"bytes out", "percore_sent_bytes_total"},
};
#define NWCOLS   (sizeof worker_cols / sizeof worker_cols[0])
#define NLCOLS   (sizeof listener_cols / sizeof listener_cols[0])
#define MAX_ROWS 1024

struct table {
    char names[MAX_ROWS][PC_NAME_MAX]; /* row names: "0", "echo (echo)" */
    double v[MAX_ROWS][NWCOLS];
    bool seen[NWCOLS]; /* a column with any value */
    unsigned rows;
};

/* The value of label `name` in "{a="x",b="y"}" into out; false if none. */
static bool label(const char *labels, const char *name, char *out, size_t size)
{
    char key[64];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *p = strstr(labels, key);
    if (!p || (p != labels && p[-1] != '{' && p[-1] != ','))
        return false;
    p += strlen(key);
    size_t n = strcspn(p, "\"");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
    return true;
}

static unsigned row_of(struct table *t, const char *name)
{
    for (unsigned i = 0; i < t->rows; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    if (t->rows == MAX_ROWS)
        return MAX_ROWS;
    snprintf(t->names[t->rows], sizeof t->names[0], "%s", name);
    return t->rows++;
}

struct facts {
    char version[32], backend[32];
    double start;
    struct table workers, listeners;
};

static void take_line(struct facts *f, char *line)
{
    if (line[0] == '#' || !line[0])
        return;
    char *space = strrchr(line, ' ');
    if (!space)
        return;
    *space = '\0';
    double value = strtod(space + 1, NULL);
    char *brace = strchr(line, '{');
    const char *labels = "";
    if (brace) {
        *brace = '\0';
        labels = brace + 1;
    }
    char a[PC_NAME_MAX], b[PC_NAME_MAX], row[PC_NAME_MAX * 2 + 4];
    if (strcmp(line, "percore_build_info") == 0) {
        label(labels, "version", f->version, sizeof f->version);
        label(labels, "backend", f->backend, sizeof f->backend);
    } else if (strcmp(line, "percore_start_time_seconds") == 0) {
        f->start = value;
    }
    for (unsigned c = 0; c < NWCOLS; c++)
        if (strcmp(line, worker_cols[c].metric) == 0 &&
            label(labels, "worker", a, sizeof a)) {
            unsigned r = row_of(&f->workers, a);
            if (r < MAX_ROWS) {
                f->workers.v[r][c] = value;
                f->workers.seen[c] = true;
            }
        }
    for (unsigned c = 0; c < NLCOLS; c++)
        if (strcmp(line, listener_cols[c].metric) == 0 &&
            label(labels, "listener", a, sizeof a) &&
            label(labels, "protocol", b, sizeof b)) {
            snprintf(row, sizeof row, "%s (%s)", a, b);
            unsigned r = row_of(&f->listeners, row);
            if (r < MAX_ROWS) {
                f->listeners.v[r][c] = value;
                f->listeners.seen[c] = true;
            }
        }
}

/* ---- printing ----------------------------------------------------------- */

static void print_table(FILE *out, const char *first, const struct column *cols,
                        unsigned ncols, const struct table *t, bool total)
{
    int width[NWCOLS + 1];
    char cell[32];
    width[0] = (int)strlen(first);
    for (unsigned r = 0; r < t->rows; r++)
        if ((int)strlen(t->names[r]) > width[0])
            width[0] = (int)strlen(t->names[r]);
    double sum[NWCOLS] = {0};
    for (unsigned c = 0; c < ncols; c++) {
        width[c + 1] = (int)strlen(cols[c].title);
        for (unsigned r = 0; r < t->rows; r++) {
            sum[c] += t->v[r][c];
            int n = snprintf(cell, sizeof cell, "%.0f", t->v[r][c]);
            if (n > width[c + 1])
                width[c + 1] = n;
        }
        int n = snprintf(cell, sizeof cell, "%.0f", sum[c]);
        if (n > width[c + 1])
            width[c + 1] = n;
    }
    fprintf(out, "%-*s", width[0], first);
    for (unsigned c = 0; c < ncols; c++)
        if (t->seen[c])
            fprintf(out, "  %*s", width[c + 1], cols[c].title);
    fputc('\n', out);
    for (unsigned r = 0; r <= t->rows; r++) {
        if (r == t->rows && !total)
            break;
        fprintf(out, "%-*s", width[0], r < t->rows ? t->names[r] : "total");
        for (unsigned c = 0; c < ncols; c++)
            if (t->seen[c])
                fprintf(out, "  %*.0f", width[c + 1],
                        r < t->rows ? t->v[r][c] : sum[c]);
        fputc('\n', out);
    }
}

int pc_stats_print(const struct pc_config *cfg, FILE *out)
{
    const struct pc_listener_config *m = NULL;
    for (unsigned i = 0; i < cfg->nlisteners && !m; i++)
        if (strcmp(cfg->listeners[i].protocol, "metrics") == 0)
            m = &cfg->listeners[i];
    if (!m) {
        fprintf(stderr, "percored: --stats needs a listener with protocol = "
                        "metrics in the config\n");
        return 1;
    }
    char err[PC_ERR_MAX];
    struct pc_sockaddr a;
    if (pc_listen_parse(m->listen, &a, err, sizeof err) < 0) {
        fprintf(stderr, "percored: %s\n", err);
        return 1;
    }
    char *text = fetch(&a, m->listen);
    if (!text)
        return 1;
    struct facts *f = calloc(1, sizeof *f);
    if (!f) {
        free(text);
        return 1;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        take_line(f, line);
    free(text);
    double up = pc_metrics_now() - f->start;
    fprintf(out, "percored %s, %u workers, backend %s, up %.0fs\n\n",
            f->version[0] ? f->version : "?", f->workers.rows,
            f->backend[0] ? f->backend : "?", up > 0 ? up : 0);
    print_table(out, "worker", worker_cols, NWCOLS, &f->workers, true);
    fputc('\n', out);
    print_table(out, "listener", listener_cols, NLCOLS, &f->listeners, false);
    free(f);
    return 0;
}
