/* metrics: the server's metrics in the Prometheus text format over HTTP
 * (GET /metrics, or GET /), for an admin listener. The requests are read
 * by the project's HTTP layer (protocols/http/http.h, shared with the web
 * face): HTTP/1.1 keep-alive and pipelining, HEAD, the limits and their
 * statuses, the header timeout. An HTTP/1.0 request is answered with an
 * HTTP/1.0 status line, as this endpoint always did. The text comes from
 * the framework (pc_metrics_render), so this module, like any other, uses
 * only include/percore/ (and the shared HTTP layer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <percore/percore.h>

#include "protocols/http/http.h"

#define METRICS_TYPE "text/plain; version=0.0.4"
#define METRICS_PATH_MAX 256

struct metrics_worker {
    struct http_limits http; /* this listener's, updated by a reload */
};

struct metrics_conn {
    struct http_conn http;
};

static void not_found(struct http_conn *h)
{
    static const char text[] = "only GET /metrics is served here\n";
    http_respond(h, 404, "text/plain; charset=utf-8", text, sizeof text - 1,
                 NULL);
}

static void metrics_request(struct metrics_conn *mc)
{
    struct http_conn *h = &mc->http;
    const struct http_request *r = &h->req;
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        http_error(h, 405, "Allow: GET, HEAD\r\n", false);
        return;
    }
    char path[METRICS_PATH_MAX];
    if (http_path(r, path, sizeof path) < 0) {
        /* Too long for either path is simply not one of them. */
        if (r->target_len >= sizeof path && r->target[0] == '/')
            not_found(h);
        else
            http_error(h, 400, NULL, false);
        return;
    }
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0) {
        not_found(h);
        return;
    }
    /* One buffer, as long as the text is: it grows with the workers.
     * Queued by reference, not copied again. A HEAD renders it too, for
     * its Content-Length. */
    struct pc_sbuf *body = pc_metrics_render(pc_conn_worker(h->c));
    if (!body) {
        http_error(h, 503, NULL, false);
        return;
    }
    if (http_head(h, 200, METRICS_TYPE, (int64_t)body->len, NULL, false) ==
            0 && r->method != HTTP_HEAD)
        pc_conn_write_shared(h->c, body);
    pc_sbuf_unref(body);
    http_done(h);
}

static size_t metrics_data(struct pc_conn *c, const char *data, size_t len)
{
    struct metrics_conn *mc = pc_conn_state(c);
    size_t used = 0;
    while (used < len) {
        size_t n;
        enum http_event e = http_feed(&mc->http, data + used, len - used, &n);
        used += n;
        if (e == HTTP_EV_ERROR)
            return len;
        if (e == HTTP_EV_MORE && n == 0)
            return used; /* an unfinished head: the framework keeps it */
        if (e == HTTP_EV_REQUEST)
            metrics_request(mc);
        if (mc->http.closed)
            return len; /* what follows a last answer is not read */
    }
    return used;
}

static void metrics_open(struct pc_conn *c)
{
    struct metrics_conn *mc = pc_conn_state(c);
    struct metrics_worker *mw = pc_conn_wstate(c);
    http_conn_open(&mc->http, c, &mw->http);
    mc->http.answer_1_0 = true; /* scrapers match "HTTP/1.0 200" */
}

static void metrics_close(struct pc_conn *c, enum pc_close_reason why)
{
    (void)why;
    struct metrics_conn *mc = pc_conn_state(c);
    http_conn_close(&mc->http);
}

static int metrics_check(const struct pc_section *cfg, char *err,
                         size_t errlen)
{
    /* A whole head must fit in what the framework keeps unconsumed. */
    int64_t head = pc_section_int(cfg, "max_head");
    int64_t input = pc_section_int(cfg, "max_input");
    if (head > input) {
        snprintf(err, errlen, "max_head (%lld) must not exceed max_input "
                 "(%lld)", (long long)head, (long long)input);
        return -1;
    }
    return 0;
}

static int metrics_worker_init(struct pc_worker *w,
                               const struct pc_section *cfg, void **wstate)
{
    (void)w;
    struct metrics_worker *mw = calloc(1, sizeof *mw);
    if (!mw)
        return -1;
    http_limits_read(&mw->http, cfg);
    *wstate = mw;
    return 0;
}

static void metrics_worker_fini(struct pc_worker *w, void *wstate)
{
    (void)w;
    free(wstate);
}

static void metrics_reload(struct pc_worker *w, void *wstate,
                           const struct pc_section *cfg)
{
    (void)w;
    http_limits_read(&((struct metrics_worker *)wstate)->http, cfg);
}

static void metrics_stop(struct pc_conn *c)
{
    http_conn_stop(&((struct metrics_conn *)pc_conn_state(c))->http);
}

static const struct pc_option metrics_options[] = {
    HTTP_OPTIONS,
    {NULL, 0, NULL, 0, 0, NULL},
};

const struct pc_proto pc_metrics_proto = {
    .abi = PC_PROTO_ABI,
    .name = "metrics",
    .conn_size = sizeof(struct metrics_conn),
    .options = metrics_options,
    .worker_init = metrics_worker_init,
    .worker_fini = metrics_worker_fini,
    .on_open = metrics_open,
    .on_data = metrics_data,
    .on_close = metrics_close,
    .reload = metrics_reload,
    .check = metrics_check,
    .on_stop = metrics_stop,
    .refuse_text = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n",
};
