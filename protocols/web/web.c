/* The web face: HTTP/1.1 (http.h) for the chat page and static files,
 * and WebSocket at ws_path for the page's JSON messages to the room
 * core (docs/protocols/web.md). This file is the module: its options,
 * its connections' life, and which answer a request gets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "percore/percore.h"
#include "protocols/web/web.h"

/* ---- requests ------------------------------------------------------------- */

static void web_request(struct web_conn *wc)
{
    struct web_worker *ww = web_worker_of(wc);
    const struct http_request *r = &wc->http.req;
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        http_error(&wc->http, 405, "Allow: GET, HEAD\r\n", false);
        return;
    }
    char path[WEB_PATH_MAX];
    if (http_path(r, path, sizeof path) < 0) {
        http_error(&wc->http, 400, NULL, false);
        return;
    }
    if (strcmp(path, ww->opt.ws_path) == 0)
        web_ws_upgrade(wc);
    else
        web_serve(wc, path);
}

static size_t web_on_data(struct pc_conn *c, const char *data, size_t len)
{
    struct web_conn *wc = pc_conn_state(c);
    size_t used = 0;
    while (used < len) {
        if (wc->mode == WEB_WS)
            return used + web_ws_data(wc, data + used, len - used);
        if (wc->mode == WEB_FILE) {
            /* A pipelined request waits for the file before it. */
            pc_conn_hold_input(c);
            return used;
        }
        size_t n;
        enum http_event e = http_feed(&wc->http, data + used, len - used, &n);
        used += n;
        if (e == HTTP_EV_ERROR)
            return len;
        if (e == HTTP_EV_MORE && n == 0)
            return used;
        if (e == HTTP_EV_REQUEST)
            web_request(wc);
        if (wc->http.closed)
            return len; /* what follows a last answer is not read */
    }
    return used;
}

void web_resume(struct web_conn *wc)
{
    wc->mode = WEB_HTTP;
    http_done(&wc->http);
    pc_conn_resume_input(wc->http.c);
}

static void web_on_open(struct pc_conn *c)
{
    struct web_conn *wc = pc_conn_state(c);
    struct web_worker *ww = pc_conn_wstate(c);
    wc->fd = -1;
    http_conn_open(&wc->http, c, &ww->opt.http);
}

static void web_on_drain(struct pc_conn *c)
{
    struct web_conn *wc = pc_conn_state(c);
    if (wc->mode == WEB_FILE)
        web_file_pump(wc);
}

static const char *close_text(struct web_conn *wc, enum pc_close_reason why)
{
    switch (why) {
    case PC_CLOSE_PEER: return "connection closed";
    case PC_CLOSE_ERROR: return "connection error";
    case PC_CLOSE_MODULE:
        return wc->quit_reason ? wc->quit_reason
               : wc->close_reason[0] ? wc->close_reason : "left";
    case PC_CLOSE_IDLE: return "idle timeout";
    case PC_CLOSE_INPUT_LIMIT: return "input limit exceeded";
    case PC_CLOSE_OUTPUT_LIMIT: return "sendq exceeded";
    case PC_CLOSE_SHUTDOWN: return "server shutting down";
    case PC_CLOSE_REASONS: break;
    }
    return "closed";
}

static void web_on_close(struct pc_conn *c, enum pc_close_reason why)
{
    struct web_conn *wc = pc_conn_state(c);
    http_conn_close(&wc->http);
    web_file_close(wc);
    if (wc->mode == WEB_WS) {
        room_user_close(&wc->u, close_text(wc, why));
        web_ws_free(wc);
    }
    free(wc->quit_reason);
    wc->quit_reason = NULL;
}

/* A WebSocket member gets its close frame (1001) after what is queued;
 * an HTTP connection closes now if idle, else after its answer. */
static void web_on_stop(struct pc_conn *c)
{
    struct web_conn *wc = pc_conn_state(c);
    if (wc->mode == WEB_WS)
        pc_conn_end(c, PC_CLOSE_SHUTDOWN);
    else
        http_conn_stop(&wc->http);
}

static size_t web_goodbye(struct pc_conn *c, enum pc_close_reason why,
                          char *buf, size_t size)
{
    struct web_conn *wc = pc_conn_state(c);
    return wc->mode == WEB_WS ? web_ws_goodbye(wc, why, buf, size) : 0;
}

/* ---- the module ----------------------------------------------------------- */

static void copy_option(char *dst, size_t size, const struct pc_section *s,
                        const char *name)
{
    const char *v = pc_section_string(s, name);
    snprintf(dst, size, "%s", v ? v : "");
}

static void read_options(struct web_options *o, const struct pc_section *s)
{
    http_limits_read(&o->http, s);
    o->limits.sendq = (size_t)pc_section_int(s, "sendq");
    o->limits.flood_rate = (double)pc_section_int(s, "flood_rate");
    o->limits.flood_burst = (double)pc_section_int(s, "flood_burst");
    copy_option(o->ws_path, sizeof o->ws_path, s, "ws_path");
    copy_option(o->root, sizeof o->root, s, "root");
    copy_option(o->origins, sizeof o->origins, s, "allowed_origins");
    o->max_message = (size_t)pc_section_int(s, "max_message");
    o->max_text = (size_t)pc_section_int(s, "max_text");
    o->ping_interval = pc_section_seconds(s, "ping_interval");
    o->ping_timeout = pc_section_seconds(s, "ping_timeout");
    o->high_watermark = (size_t)pc_section_int(s, "high_watermark");
}

static int open_root(const char *root)
{
    return root[0] ? open(root, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
}

static int web_check(const struct pc_section *cfg, char *err, size_t errlen)
{
    const char *ws = pc_section_string(cfg, "ws_path");
    if (!ws || ws[0] != '/' || strlen(ws) >= 256) {
        snprintf(err, errlen, "ws_path: must be a path starting with '/'");
        return -1;
    }
    const char *root = pc_section_string(cfg, "root");
    if (root && root[0]) {
        struct stat st;
        if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "root: '%s' is not a directory", root);
            return -1;
        }
        if (strlen(root) >= WEB_PATH_MAX) {
            snprintf(err, errlen, "root: too long");
            return -1;
        }
    }
    /* A whole head must fit in what the framework keeps unconsumed. */
    int64_t head = pc_section_int(cfg, "max_head");
    int64_t input = pc_section_int(cfg, "max_input");
    if (head > input) {
        snprintf(err, errlen, "max_head (%lld) must not exceed max_input "
                 "(%lld)", (long long)head, (long long)input);
        return -1;
    }
    /* A file is queued up to the high watermark, a chunk at a time. */
    int64_t high = pc_section_int(cfg, "high_watermark");
    int64_t out = pc_section_int(cfg, "max_output");
    if (high + (int64_t)WEB_CHUNK > out) {
        snprintf(err, errlen, "max_output (%lld) must be at least %zu bytes "
                 "above high_watermark (%lld)", (long long)out, WEB_CHUNK,
                 (long long)high);
        return -1;
    }
    return 0;
}

static void web_worker_fini(struct pc_worker *w, void *wstate)
{
    struct web_worker *ww = wstate;
    if (ww->root_fd >= 0)
        close(ww->root_fd);
    free(ww->chunk);
    room_face_worker_fini(w, ww);
}

static int web_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                           void **wstate)
{
    struct web_worker *ww = room_face_worker_new(w, cfg, sizeof *ww);
    if (!ww)
        return -1;
    ww->w = w;
    read_options(&ww->opt, cfg);
    ww->chunk = malloc(WEB_CHUNK);
    ww->root_fd = open_root(ww->opt.root);
    if (!ww->chunk || (ww->opt.root[0] && ww->root_fd < 0)) {
        if (ww->opt.root[0] && ww->root_fd < 0)
            pc_log(PC_LOG_ERR, "web: cannot open root %s: %s", ww->opt.root,
                   strerror(errno));
        web_worker_fini(w, ww);
        return -1;
    }
    web_page_init(ww);
    *wstate = ww;
    return 0;
}

/* web_check has passed on the new values. A root that cannot be opened
 * now keeps the old one (logged). */
static void web_reload(struct pc_worker *w, void *wstate,
                       const struct pc_section *cfg)
{
    (void)w;
    struct web_worker *ww = wstate;
    read_options(&ww->opt, cfg);
    int fd = open_root(ww->opt.root);
    if (ww->opt.root[0] && fd < 0) {
        pc_log(PC_LOG_WARN, "web: cannot open root %s: %s; keeping the old "
               "one", ww->opt.root, strerror(errno));
        return;
    }
    if (ww->root_fd >= 0)
        close(ww->root_fd);
    ww->root_fd = fd;
}

static const struct pc_option web_options[] = {
    HTTP_OPTIONS,
    {"root", PC_OPT_STRING, "", 0, 0,
     "directory of static files; empty: the built-in chat page at /"},
    {"ws_path", PC_OPT_STRING, "/chat", 0, 0,
     "path of the WebSocket endpoint"},
    {"allowed_origins", PC_OPT_STRING, "", 0, 0,
     "space-separated origins that may open a WebSocket ('*': any); "
     "empty: only the server's own origin"},
    {"max_message", PC_OPT_SIZE, "64K", 125, 1 << 24,
     "longest WebSocket message, bytes; longer closes with 1009"},
    {"max_text", PC_OPT_SIZE, "4K", 16, 1 << 20,
     "longest text said in one message, bytes"},
    {"sendq", PC_OPT_SIZE, "1M", 4096, 1LL << 32,
     "unsent output after which a member is disconnected (1008)"},
    {"flood_rate", PC_OPT_INT, "20", 0, 1e9,
     "messages per second a connection may send on average; 0 = unlimited"},
    {"flood_burst", PC_OPT_INT, "40", 1, 1e9,
     "messages a connection may send at once"},
    {"ping_interval", PC_OPT_SECONDS, "30", 0.05, 86400,
     "seconds of silence after which the server pings"},
    {"ping_timeout", PC_OPT_SECONDS, "30", 0.05, 86400,
     "seconds a ping may go unanswered before the connection closes"},
    {NULL, 0, NULL, 0, 0, NULL},
};

const struct pc_proto pc_web_proto = {
    .abi = PC_PROTO_ABI,
    .name = "web",
    .conn_size = sizeof(struct web_conn),
    .options = web_options,
    .worker_init = web_worker_init,
    .worker_fini = web_worker_fini,
    .on_open = web_on_open,
    .on_data = web_on_data,
    .on_drain = web_on_drain,
    .on_close = web_on_close,
    .reload = web_reload,
    .check = web_check,
    .refuse_text = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n",
    .goodbye = web_goodbye,
    .on_stop = web_on_stop,
};
