/* HTTP/1.1 for percore modules: request heads parsed by http_parser (the
 * Debian package libhttp-parser-dev), limits on head, URL, headers and
 * body with their statuses, a header timeout against slow clients, and
 * response heads with Date, Content-Length and Connection. Shared by the
 * built-in modules that answer HTTP, the web face (protocols/web/) and
 * the metrics endpoint (protocols/metrics/), so that the project has one
 * request parser.
 *
 * Use. Embed a struct http_conn in the connection state, http_conn_open
 * it in on_open and http_conn_close it in on_close. In on_data call
 * http_feed until it asks for more: each HTTP_EV_REQUEST is one request
 * whose head (struct http_request) points into on_data's bytes, valid
 * until on_data returns; answer it with http_respond (or http_head and
 * body writes of your own) and call http_done once the whole answer is
 * queued. A body sent with a request is read and dropped by http_feed
 * after the request is handed over. Pipelined requests come one by one,
 * in order, because a module answers each before feeding the next.
 *
 * Threads: the connection's worker only, like the connection. */
#ifndef PC_HTTP_HTTP_H
#define PC_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "percore/percore.h"

#define HTTP_HEADERS_MAX 128 /* the most max_headers may be */
#define HTTP_HEAD_MAX (64 * 1024) /* the most max_head may be */

/* A module's limits, read from its options; kept by the module (a reload
 * updates them in place) and pointed at by each connection. */
struct http_limits {
    size_t max_head;      /* request line and headers, bytes (431) */
    size_t max_uri;       /* the request target, bytes (414) */
    size_t max_body;      /* a request body, bytes (413) */
    unsigned max_headers; /* header fields (431) */
    double header_timeout; /* first byte of a head to its end (408) */
    double keepalive_timeout; /* idle between requests: closed silently */
};

/* Options a module can list in its struct pc_option table (copy them in;
 * http_limits_read reads them back). */
#define HTTP_OPTIONS                                                          \
    {"max_head", PC_OPT_SIZE, "8K", 256, HTTP_HEAD_MAX,                       \
     "request line and headers, bytes; more is refused with 431"},            \
    {"max_uri", PC_OPT_SIZE, "4K", 64, HTTP_HEAD_MAX,                         \
     "request target, bytes; longer is refused with 414"},                    \
    {"max_headers", PC_OPT_INT, "64", 1, HTTP_HEADERS_MAX,                    \
     "header fields in a request; more is refused with 431"},                 \
    {"max_body", PC_OPT_SIZE, "64K", 0, 1LL << 30,                            \
     "request body, bytes; larger is refused with 413"},                      \
    {"header_timeout", PC_OPT_SECONDS, "10", 0.01, 3600,                      \
     "seconds a client has to send a request head (408 after)"},              \
    {"keepalive_timeout", PC_OPT_SECONDS, "75", 0.01, 86400,                  \
     "seconds an idle keep-alive connection is kept open"}

void http_limits_read(struct http_limits *l, const struct pc_section *s);

struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
};

/* One request head. Every pointer points into on_data's bytes. */
struct http_request {
    enum http_method method; /* http_parser's: HTTP_GET, HTTP_HEAD, ... */
    const char *target;      /* as sent: "/a%20b?x=1" */
    size_t target_len;
    const struct http_header *headers;
    unsigned nheaders;
    unsigned short major, minor;
    bool keep_alive; /* the client keeps the connection (1.1, or 1.0 with
                        Connection: keep-alive), and no error ends it */
    bool upgrade;    /* Connection: upgrade with an Upgrade header */
    bool has_body;
};

struct http_conn {
    http_parser parser;
    struct pc_conn *c;
    const struct http_limits *lim;
    struct pc_timer timer;
    struct http_request req;
    struct http_header headers[HTTP_HEADERS_MAX];
    unsigned nheaders;
    uint64_t body_seen; /* bytes of the body being dropped */
    int status;      /* set while parsing: a limit's status, 0 if none */
    bool in_head;    /* a head has begun: the header timer runs */
    bool in_body;    /* dropping a request's body */
    bool answering;  /* between HTTP_EV_REQUEST and http_done */
    bool closed;     /* an error was answered: nothing more is read */
    bool stopping;   /* the server is stopping: the answer being written,
                        or the request being read, is the last */
    /* Set by the module after http_conn_open: answer an HTTP/1.0 request
     * with an "HTTP/1.0" status line instead of "HTTP/1.1" (both are
     * allowed; the metrics endpoint keeps the line its scrapers match). */
    bool answer_1_0;
};

enum http_event {
    HTTP_EV_MORE,    /* feed more bytes (all that was given is consumed, or
                     what is left is an unfinished head: keep it) */
    HTTP_EV_REQUEST, /* h->req holds a request: answer it */
    HTTP_EV_ERROR,   /* the request was refused with an error status (400,
                     408, 413, 414, 431) and the connection is closing */
};

/* Starts the header timer. on_open. */
void http_conn_open(struct http_conn *h, struct pc_conn *c,
                    const struct http_limits *lim);
/* Stops the timer; on_close, or when the connection leaves HTTP (an
 * upgrade). Idempotent. */
void http_conn_close(struct http_conn *h);
/* The server is stopping (on_stop): an idle connection closes now; one
 * with a request being read or answered closes after that answer
 * (Connection: close), as nginx does. */
void http_conn_stop(struct http_conn *h);

/* Parses data[0..len): sets *used to the bytes consumed and says what
 * they were. Call again with the rest after HTTP_EV_REQUEST (and after
 * http_done, for a pipelined request). */
enum http_event http_feed(struct http_conn *h, const char *data, size_t len,
                          size_t *used);

/* The value of header `name` (case-insensitive), or NULL; *len its
 * length. */
const char *http_header(const struct http_request *r, const char *name,
                        size_t *len);
/* Whether a comma-separated header holds token (case-insensitive):
 * "Connection: keep-alive, Upgrade" holds "upgrade". */
bool http_header_has(const struct http_request *r, const char *name,
                     const char *token);

/* The reason phrase of a status ("Not Found"). */
const char *http_reason(int status);

/* Queues a response head: status line, Date, Server, Content-Type (if
 * type), Content-Length (unless length is negative: none, for 101 and
 * 304), extra (preformatted "Name: value\r\n" lines, or NULL) and
 * Connection: close when the connection ends after this response
 * (!req->keep_alive, or close), Connection: keep-alive when an HTTP/1.0
 * client asked for it and gets it. Returns pc_conn_write's result. */
int http_head(struct http_conn *h, int status, const char *type,
              int64_t length, const char *extra, bool close);
/* A whole response: the head, then the body unless the request was a
 * HEAD; closes the connection after it if the head said so. Then
 * http_done. */
void http_respond(struct http_conn *h, int status, const char *type,
                  const void *body, size_t len, const char *extra);
/* An error with a short text body; close: end the connection after it. */
void http_error(struct http_conn *h, int status, const char *extra,
                bool close);
/* The answer to the current request is queued (its last body byte):
 * starts the keep-alive timer, or closes if the connection ends. */
void http_done(struct http_conn *h);
/* Whether the current request's answer ends the connection. */
bool http_closing(const struct http_conn *h);

/* Decodes the path of a request target into out[0..size): %XX decoded,
 * query and fragment dropped. Fails (-EINVAL) on a NUL, a bad escape, a
 * path that does not start with '/', or one that does not fit. */
int http_path(const struct http_request *r, char *out, size_t size);

#endif
