/* The web face's insides, shared by its files: web.c (the module, its
 * options, routing requests), files.c (static files and the built-in
 * page), ws.c (the WebSocket handshake and frames over wslay), json.c
 * (the JSON requests a browser sends), render.c (the room core's events
 * and answers as JSON). The rooms and nicks are the room core's
 * (protocols/room/room.h), shared with the chat and irc faces: a room
 * "x" is chat's "x" and IRC's "#x". Worker thread only. */
#ifndef PC_WEB_WEB_H
#define PC_WEB_WEB_H

#include <jansson.h>
#include <wslay/wslay.h>

#include "protocols/room/room.h"
#include "protocols/http/http.h"

#define WEB_PATH_MAX 4096
#define WEB_ROOMS_MAX 16     /* rooms one browser may be in at once */
#define WEB_CHUNK ((size_t)64 << 10) /* bytes of a file read and queued */

struct web_options {
    struct room_limits limits;
    struct http_limits http;
    char ws_path[256];
    char root[WEB_PATH_MAX];     /* "" = the built-in page */
    char origins[1024];          /* allowed_origins as configured */
    size_t max_message;          /* a WebSocket message, bytes (1009) */
    size_t max_text;             /* a line said, bytes */
    double ping_interval, ping_timeout;
    size_t high_watermark;       /* the listener's: when a file pauses */
};

struct web_worker {
    struct room_face_worker face; /* first: room_face_worker_new */
    struct pc_worker *w;
    struct web_options opt;
    int root_fd;                 /* O_PATH of root, -1 without one */
    char *chunk;                 /* WEB_CHUNK bytes for file reads */
    char page_etag[24];          /* of the built-in page */
};

enum web_mode { WEB_HTTP, WEB_FILE, WEB_WS };

struct web_conn {
    struct room_user u; /* first: the core's part (after the upgrade) */
    struct http_conn http;
    uint8_t mode;       /* enum web_mode */
    /* WEB_FILE: a file being queued, as back-pressure allows. */
    int fd;
    uint64_t file_off, file_left;
    /* WEB_WS */
    wslay_event_context_ptr ws;
    uint64_t frame_left;      /* bytes of the frame being fed to wslay */
    const char *in;           /* what wslay's recv callback may take */
    size_t in_len, in_off;
    char *out;                /* what wslay sends: queued as one unit */
    size_t out_len, out_cap;
    struct pc_timer ping;
    bool input_seen, ping_sent;
    bool closing;             /* a close frame is decided: no more input */
    uint16_t close_code;      /* the goodbye's, for PC_CLOSE_MODULE */
    char close_reason[64];
    char *quit_reason;
};

static inline struct web_worker *web_worker_of(struct web_conn *wc)
{
    return pc_conn_wstate(wc->http.c); /* set from on_open on */
}

/* ---- web.c: requests ----------------------------------------------------- */

/* A request after an earlier answer finished (a file was sent): reads
 * the input that waited. */
void web_resume(struct web_conn *wc);

/* ---- files.c ------------------------------------------------------------- */

void web_page_init(struct web_worker *ww);
/* GET or HEAD of path (decoded) from root or the built-in page. */
void web_serve(struct web_conn *wc, const char *path);
/* More of the file being sent, as far as the output queue allows. */
void web_file_pump(struct web_conn *wc);
void web_file_close(struct web_conn *wc);

/* ---- ws.c ---------------------------------------------------------------- */

/* The handshake of a request for ws_path: answers 101 and switches the
 * connection to WebSocket, or answers an error. */
void web_ws_upgrade(struct web_conn *wc);
/* WebSocket input; returns the bytes consumed (fewer while a request to
 * the core or flood control holds input). */
size_t web_ws_data(struct web_conn *wc, const char *data, size_t len);
/* Ends the connection with a close frame (the goodbye) after the last
 * whole message: code and reason as RFC 6455 section 7.4. */
void web_ws_close(struct web_conn *wc, uint16_t code, const char *reason);
size_t web_ws_goodbye(struct web_conn *wc, enum pc_close_reason why,
                      char *buf, size_t size);
void web_ws_free(struct web_conn *wc);
/* A text frame holding len bytes of JSON, as a shared buffer for every
 * member (server frames are not masked, so one frame fits all). */
struct pc_sbuf *web_ws_frame(const char *json, size_t len);
/* One JSON text (a unit) to wc, counted against its sendq. */
void web_ws_send(struct web_conn *wc, const char *json, size_t len);

/* ---- json.c -------------------------------------------------------------- */

/* One text message from the browser. */
void web_json_request(struct web_conn *wc, const char *msg, size_t len);
/* {"type":"error","for":what,"text":...} */
void web_json_error(struct web_conn *wc, const char *what, const char *room,
                    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- render.c ------------------------------------------------------------ */

/* Sends o (NULL: nothing) as one text frame and drops the reference. */
void web_json_send(struct web_conn *wc, json_t *o);

extern const struct room_face web_face;
/* {"type":"welcome",...}: the first message after the upgrade. */
void web_welcome(struct web_conn *wc);

#endif
