/* HTTP/1.1 requests and responses over http_parser (http.h). A head is
 * parsed only once it is whole in the input, which the framework keeps
 * for us between reads, so the parser's callbacks can point into one
 * buffer and nothing is copied; its size is bounded (max_head) before
 * the parser sees it. */
#include "protocols/http/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void http_limits_read(struct http_limits *l, const struct pc_section *s)
{
    l->max_head = (size_t)pc_section_int(s, "max_head");
    l->max_uri = (size_t)pc_section_int(s, "max_uri");
    l->max_body = (size_t)pc_section_int(s, "max_body");
    l->max_headers = (unsigned)pc_section_int(s, "max_headers");
    l->header_timeout = pc_section_seconds(s, "header_timeout");
    l->keepalive_timeout = pc_section_seconds(s, "keepalive_timeout");
}

/* ---- the timer: slow heads and idle connections ---------------------- */

static void timer_cb(struct pc_timer *t)
{
    struct http_conn *h = t->data;
    if (h->answering || h->closed)
        return;
    if (h->in_head) {
        http_error(h, 408, NULL, true); /* too slow: slowloris */
    } else { /* idle, or a body too slow after its request's answer */
        h->closed = true;
        pc_conn_close(h->c);
    }
}

void http_conn_open(struct http_conn *h, struct pc_conn *c,
                    const struct http_limits *lim)
{
    h->c = c;
    h->lim = lim;
    pc_timer_init(&h->timer, timer_cb, h);
    /* A connection that sends nothing is a head that never comes. */
    h->in_head = true;
    pc_timer_start(pc_conn_worker(c), &h->timer, lim->header_timeout);
}

void http_conn_close(struct http_conn *h)
{
    if (h->c)
        pc_timer_stop(pc_conn_worker(h->c), &h->timer);
}

/* ---- parsing --------------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    if (!h->req.target)
        h->req.target = at;
    h->req.target_len = (size_t)(at + len - h->req.target);
    if (h->req.target_len > h->lim->max_uri) {
        h->status = 414;
        return 1;
    }
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    struct http_header *last = h->nheaders ? &h->headers[h->nheaders - 1] : 0;
    if (last && !last->value) { /* the same name, in a second piece */
        last->name_len = (size_t)(at + len - last->name);
        return 0;
    }
    if (h->nheaders == h->lim->max_headers) {
        h->status = 431;
        return 1;
    }
    h->headers[h->nheaders++] = (struct http_header){at, NULL, len, 0};
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    struct http_header *last = &h->headers[h->nheaders - 1];
    if (!last->value)
        last->value = at;
    /* A value in pieces (an obsolete folded line) spans them all. */
    last->value_len = (size_t)(at + len - last->value);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_parser_pause(p, 1); /* hand the head over before any body */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    (void)at;
    struct http_conn *h = p->data;
    /* A chunked body's size is known only as it comes. */
    h->body_seen += len;
    if (h->body_seen > h->lim->max_body) {
        h->status = 413;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *h = p->data;
    h->in_body = false;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The length of a head that ends in data (through its empty line), or 0. */
static size_t head_length(const char *d, size_t n)
{
    const char *p = d, *end = d + n;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        p++;
        if (p < end && *p == '\n')
            return (size_t)(p + 1 - d);
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
            return (size_t)(p + 2 - d);
    }
    return 0;
}

/* A head that is not whole yet may already be too big: a request line
 * longer than any allowed target (414), or more than max_head (431). */
static int unfinished_status(const struct http_conn *h, const char *d,
                             size_t n)
{
    /* Method, spaces and version around the target: 32 bytes is plenty. */
    size_t line_max = h->lim->max_uri + 32;
    const char *nl = memchr(d, '\n', n < line_max ? n : line_max);
    if (!nl && n >= line_max)
        return 414;
    return n > h->lim->max_head ? 431 : 0;
}

static void start_head(struct http_conn *h)
{
    if (h->in_head)
        return;
    h->in_head = true;
    /* The last request is answered: an error refusing this head must
     * not be shaped by it (a HEAD's missing body, its version). */
    memset(&h->req, 0, sizeof h->req);
    pc_timer_start(pc_conn_worker(h->c), &h->timer, h->lim->header_timeout);
}

static enum http_event refuse(struct http_conn *h, int status, size_t len,
                              size_t *used)
{
    http_error(h, status, NULL, true);
    *used = len; /* the rest is of no use */
    return HTTP_EV_ERROR;
}

static enum http_event drop_body(struct http_conn *h, const char *data,
                                 size_t len, size_t *used)
{
    if (!len) /* to http_parser, no bytes means the end of the stream */
        return HTTP_EV_MORE;
    http_parser_pause(&h->parser, 0);
    size_t n = http_parser_execute(&h->parser, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e != HPE_OK && e != HPE_PAUSED) {
        /* Its request is answered: a second answer would be out of
         * place. The connection just ends. */
        h->closed = true;
        pc_conn_close(h->c);
        *used = len;
        return HTTP_EV_ERROR;
    }
    *used = n;
    if (!h->in_body) /* the body is over: idle until the next head */
        pc_timer_start(pc_conn_worker(h->c), &h->timer,
                       h->lim->keepalive_timeout);
    return HTTP_EV_MORE;
}

enum http_event http_feed(struct http_conn *h, const char *data, size_t len,
                          size_t *used)
{
    *used = 0;
    if (h->closed || h->answering) {
        *used = h->closed ? len : 0;
        return HTTP_EV_MORE;
    }
    if (h->in_body)
        return drop_body(h, data, len, used);
    size_t skip = 0; /* empty lines before a request line are allowed */
    while (skip < len && (data[skip] == '\r' || data[skip] == '\n'))
        skip++;
    *used = skip;
    data += skip;
    len -= skip;
    if (!len)
        return HTTP_EV_MORE;
    start_head(h);
    size_t hlen = head_length(data, len);
    int status = hlen ? unfinished_status(h, data, hlen)
                      : unfinished_status(h, data, len);
    if (status)
        return refuse(h, status, skip + len, used);
    if (!hlen)
        return HTTP_EV_MORE; /* the framework keeps it; the timer runs */

    memset(&h->req, 0, sizeof h->req);
    h->nheaders = 0;
    h->status = 0;
    h->body_seen = 0;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    size_t n = http_parser_execute(&h->parser, &settings, data, hlen);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    /* Paused in on_headers_complete, the parser has not counted the
     * head's last LF yet: a body is read from there. */
    if (e != HPE_PAUSED || n + 1 < hlen || n > hlen || !h->req.target)
        return refuse(h, h->status ? h->status
                         : e == HPE_HEADER_OVERFLOW ? 431 : 400,
                      skip + len, used);
    if (h->parser.http_major != 1)
        return refuse(h, 505, skip + len, used);

    struct http_request *r = &h->req;
    r->method = (enum http_method)h->parser.method;
    r->headers = h->headers;
    r->nheaders = h->nheaders;
    r->major = h->parser.http_major;
    r->minor = h->parser.http_minor;
    r->keep_alive = http_should_keep_alive(&h->parser) && !h->stopping;
    r->upgrade = h->parser.upgrade;
    uint64_t cl = h->parser.content_length;
    r->has_body = (h->parser.flags & F_CHUNKED) ||
                  (cl > 0 && cl != UINT64_MAX);
    if (r->has_body && cl != UINT64_MAX && cl > h->lim->max_body)
        return refuse(h, 413, skip + len, used);
    h->in_head = false;
    h->in_body = r->has_body && !r->upgrade;
    h->answering = true;
    pc_timer_stop(pc_conn_worker(h->c), &h->timer);
    *used = skip + (h->in_body ? n : hlen);
    return HTTP_EV_REQUEST;
}

/* ---- reading a head -------------------------------------------------- */

const char *http_header(const struct http_request *r, const char *name,
                        size_t *len)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct http_header *hd = &r->headers[i];
        if (hd->name_len == n && strncasecmp(hd->name, name, n) == 0) {
            *len = hd->value ? hd->value_len : 0;
            return hd->value ? hd->value : "";
        }
    }
    *len = 0;
    return NULL;
}

bool http_header_has(const struct http_request *r, const char *name,
                     const char *token)
{
    size_t tlen = strlen(token);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct http_header *hd = &r->headers[i];
        if (hd->name_len != strlen(name) ||
            strncasecmp(hd->name, name, hd->name_len) != 0 || !hd->value)
            continue;
        const char *s = hd->value, *end = s + hd->value_len;
        while (s < end) {
            while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
                s++;
            const char *w = s;
            while (s < end && *s != ',' && *s != ' ' && *s != '\t')
                s++;
            if ((size_t)(s - w) == tlen && strncasecmp(w, token, tlen) == 0)
                return true;
            while (s < end && *s != ',')
                s++;
        }
    }
    return false;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_path(const struct http_request *r, char *out, size_t size)
{
    const char *s = r->target, *end = s + r->target_len;
    if (s == end || *s != '/')
        return -EINVAL; /* "*" or an absolute form: not a file */
    size_t n = 0;
    for (; s < end && *s != '?' && *s != '#'; s++) {
        char c = *s;
        if (c == '%') {
            int hi = end - s > 2 ? hex(s[1]) : -1;
            int lo = hi >= 0 ? hex(s[2]) : -1;
            if (lo < 0)
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            s += 2;
        }
        if (c == '\0' || n + 1 >= size)
            return -EINVAL;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* ---- responses ------------------------------------------------------- */

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* "Date: ..." for this second, formatted once a second per thread: each
 * worker has its own copy and no lock. */
static const char *date_now(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t at;
    time_t t = time(NULL);
    if (t != at || !buf[0]) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = t;
    }
    return buf;
}

bool http_closing(const struct http_conn *h)
{
    return h->closed || h->stopping || !h->req.keep_alive;
}

void http_conn_stop(struct http_conn *h)
{
    h->stopping = true;
    if (h->answering || h->closed || h->in_head)
        return; /* http_closing now says that answer is the last */
    h->closed = true;
    pc_timer_stop(pc_conn_worker(h->c), &h->timer);
    pc_conn_close(h->c);
}

int http_head(struct http_conn *h, int status, const char *type,
              int64_t length, const char *extra, bool close)
{
    if (close || h->stopping)
        h->req.keep_alive = false;
    bool v10 = h->req.major == 1 && h->req.minor == 0;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "HTTP/1.%d %d %s\r\nDate: %s\r\n"
                     "Server: percore/" PC_VERSION "\r\n",
                     v10 && h->answer_1_0 ? 0 : 1, status,
                     http_reason(status), date_now());
    if (type)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "Content-Type: %s\r\n", type);
    if (length >= 0)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "Content-Length: %lld\r\n", (long long)length);
    if (!h->req.keep_alive && status != 101)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "Connection: close\r\n");
    else if (v10 && h->req.keep_alive) /* 1.0 keeps only when told so */
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "Connection: keep-alive\r\n");
    if (extra)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s", extra);
    if (n < 0 || (size_t)n + 2 >= sizeof buf)
        return -EOVERFLOW;
    memcpy(buf + n, "\r\n", 2);
    return pc_conn_write(h->c, buf, (size_t)n + 2);
}

void http_respond(struct http_conn *h, int status, const char *type,
                  const void *body, size_t len, const char *extra)
{
    if (http_head(h, status, type, (int64_t)len, extra, false) == 0 &&
        h->req.method != HTTP_HEAD && len)
        pc_conn_write(h->c, body, len);
    http_done(h);
}

void http_error(struct http_conn *h, int status, const char *extra,
                bool close)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status,
                     http_reason(status));
    if (close) {
        h->closed = true;
        h->req.keep_alive = false;
    }
    if (http_head(h, status, "text/plain; charset=utf-8", n, extra, close) ==
            0 && h->req.method != HTTP_HEAD)
        pc_conn_write(h->c, body, (size_t)n);
    http_done(h);
}

void http_done(struct http_conn *h)
{
    h->answering = false;
    if (http_closing(h)) {
        h->closed = true;
        pc_timer_stop(pc_conn_worker(h->c), &h->timer);
        pc_conn_close(h->c);
        return;
    }
    if (!h->in_body) /* a body still coming keeps the header timeout */
        pc_timer_start(pc_conn_worker(h->c), &h->timer,
                       h->lim->keepalive_timeout);
    else
        pc_timer_start(pc_conn_worker(h->c), &h->timer,
                       h->lim->header_timeout);
}
