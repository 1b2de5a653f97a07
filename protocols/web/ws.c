/* WebSocket (RFC 6455) for the web face: the handshake, and frames
 * through wslay (Debian's libwslay-dev), which checks masking (1002),
 * UTF-8 (1007), message size (1009), control frames and fragments, and
 * answers pings and closes.
 *
 * Input. wslay is fed one frame at a time: the face reads only a frame
 * header's length, so that it can stop between messages while a request
 * to the room core, or flood control, holds the input (the rest stays
 * with the framework, as in every face); wslay reassembles fragments and
 * hands over whole messages.
 *
 * Output. What wslay sends (pongs) is gathered and queued as one unit
 * per wslay_event_send; data frames are framed here, one shared buffer
 * per event for all members (a server's frames are not masked). Close
 * frames are never queued as ordinary units: every close goes through
 * pc_conn_cut, whose goodbye (web_ws_goodbye) writes the close frame
 * after the last whole message, as for a sendq cut (1008) or a shutdown
 * (1001); the framework then reads and drops what the peer still sends
 * until its EOF, so our close frame is not lost to a reset. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/web/web.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- the handshake --------------------------------------------------- */

/* Sec-WebSocket-Accept: base64(SHA-1(key GUID)). key: 24 characters. */
static void accept_of(const char *key, size_t n, char out[29])
{
    char in[24 + sizeof WS_GUID];
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    memcpy(in, key, n);
    memcpy(in + n, WS_GUID, sizeof WS_GUID - 1);
    EVP_Digest(in, n + sizeof WS_GUID - 1, sha, &len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, sha, (int)len);
}

/* A key is the base64 of 16 bytes: 22 characters and "==". */
static bool key_valid(const char *k, size_t n)
{
    unsigned char raw[24];
    if (n != 24 || k[22] != '=' || k[23] != '=')
        return false;
    return EVP_DecodeBlock(raw, (const unsigned char *)k, 24) == 18;
}

static bool token_in(const char *list, const char *s, size_t n)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != ',')
            e++;
        if ((size_t)(e - p) == n && strncasecmp(p, s, n) == 0)
            return true;
        if ((size_t)(e - p) == 1 && *p == '*')
            return true;
        p = e;
    }
    return false;
}

/* Browsers send Origin; a page of another site must not speak for its
 * visitor here. Without allowed_origins only the server's own origin (the
 * Host the request names) may; clients other than browsers send none. */
static bool origin_allowed(struct web_conn *wc, const char *allowed)
{
    const struct http_request *r = &wc->http.req;
    size_t on, hn;
    const char *origin = http_header(r, "Origin", &on);
    if (!origin)
        return true;
    if (*allowed)
        return token_in(allowed, origin, on);
    const char *host = http_header(r, "Host", &hn);
    if (!host)
        return false;
    char own[300];
    int n = snprintf(own, sizeof own, "%s://%.*s",
                     pc_conn_tls(wc->http.c, NULL) ? "https" : "http",
                     (int)hn, host);
    return n > 0 && (size_t)n == on && strncasecmp(own, origin, on) == 0;
}

/* ---- wslay's callbacks ----------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user)
{
    (void)flags;
    struct web_conn *wc = user;
    size_t n = wc->in_len - wc->in_off;
    if (!n) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n > len)
        n = len;
    memcpy(buf, wc->in + wc->in_off, n);
    wc->in_off += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user)
{
    (void)flags;
    struct web_conn *wc = user;
    if (wc->out_len + len > wc->out_cap) {
        size_t cap = (wc->out_len + len) * 2;
        char *p = realloc(wc->out, cap);
        if (!p) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        wc->out = p;
        wc->out_cap = cap;
    }
    memcpy(wc->out + wc->out_len, data, len);
    wc->out_len += len;
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *m, void *user)
{
    (void)ctx;
    struct web_conn *wc = user;
    if (wc->closing)
        return;
    if (m->opcode == WSLAY_TEXT_FRAME)
        web_json_request(wc, (const char *)m->msg, m->msg_length);
    else if (m->opcode == WSLAY_BINARY_FRAME)
        web_ws_close(wc, WSLAY_CODE_UNSUPPORTED_DATA, "text frames only");
    else if (m->opcode == WSLAY_CONNECTION_CLOSE && m->msg_length > 2) {
        /* The peer's reason is its quit text (UTF-8: wslay checked). */
        size_t n = m->msg_length - 2 < 200 ? m->msg_length - 2 : 200;
        free(wc->quit_reason);
        wc->quit_reason = strndup((const char *)m->msg + 2, n);
    }
}

/* ---- output ---------------------------------------------------------- */

/* Sends what wslay has queued (pongs) as one unit. A close wslay decided
 * (a protocol error, or the answer to the peer's close) goes out as the
 * cut's goodbye instead, after the last whole message. */
static void flush(struct web_conn *wc)
{
    if (wslay_event_send(wc->ws) != 0) {
        pc_conn_abort(wc->u.c, PC_CLOSE_ERROR);
        return;
    }
    if (wslay_event_get_close_sent(wc->ws)) {
        uint16_t code = wslay_event_get_status_code_sent(wc->ws);
        wc->out_len = 0; /* the close frame is the goodbye's */
        if (code == WSLAY_CODE_NO_STATUS_RCVD)
            code = 0; /* a close without a code: echoed without one */
        web_ws_close(wc, code, "");
        return;
    }
    if (wc->out_len && !wc->closing)
        room_write(&wc->u, wc->out, wc->out_len);
    wc->out_len = 0;
}

void web_ws_close(struct web_conn *wc, uint16_t code, const char *reason)
{
    if (wc->closing)
        return;
    wc->closing = true;
    wc->close_code = code;
    snprintf(wc->close_reason, sizeof wc->close_reason, "%s", reason);
    pc_timer_stop(pc_conn_worker(wc->u.c), &wc->ping);
    pc_conn_cut(wc->u.c, PC_CLOSE_MODULE);
}

size_t web_ws_goodbye(struct web_conn *wc, enum pc_close_reason why,
                      char *buf, size_t size)
{
    uint16_t code = 1011; /* an unexpected condition */
    const char *reason = "";
    switch (why) {
    case PC_CLOSE_MODULE: code = wc->close_code; reason = wc->close_reason;
        break;
    case PC_CLOSE_OUTPUT_LIMIT: code = 1008; reason = "sendq exceeded"; break;
    case PC_CLOSE_SHUTDOWN: code = 1001; reason = "server shutting down";
        break;
    case PC_CLOSE_IDLE: code = 1001; reason = "idle timeout"; break;
    case PC_CLOSE_INPUT_LIMIT: code = 1009; reason = "input limit"; break;
    default: break;
    }
    size_t rlen = strlen(reason);
    size_t plen = code ? 2 + rlen : 0;
    if (size < 2 + plen || plen > 125)
        return 0;
    buf[0] = (char)0x88; /* FIN, close */
    buf[1] = (char)plen;
    if (code) {
        buf[2] = (char)(code >> 8);
        buf[3] = (char)(code & 0xff);
        memcpy(buf + 4, reason, rlen);
    }
    return 2 + plen;
}

struct pc_sbuf *web_ws_frame(const char *json, size_t len)
{
    size_t hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    struct pc_sbuf *b = pc_sbuf_new(hlen + len);
    if (!b)
        return NULL;
    unsigned char *h = (unsigned char *)b->data;
    h[0] = 0x81; /* FIN, text */
    if (hlen == 2) {
        h[1] = (unsigned char)len;
    } else if (hlen == 4) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(b->data + hlen, json, len);
    return b;
}

void web_ws_send(struct web_conn *wc, const char *json, size_t len)
{
    if (wc->closing)
        return;
    struct pc_sbuf *b = web_ws_frame(json, len);
    if (b) {
        room_write_shared(&wc->u, b);
        pc_sbuf_unref(b);
    }
}

/* ---- keep-alive ------------------------------------------------------ */

static void ping_cb(struct pc_timer *t)
{
    struct web_conn *wc = t->data;
    struct web_worker *ww = web_worker_of(wc);
    if (wc->closing)
        return;
    if (wc->input_seen) { /* alive: look again an interval later */
        wc->input_seen = wc->ping_sent = false;
        pc_timer_start(ww->w, &wc->ping, ww->opt.ping_interval);
    } else if (!wc->ping_sent) {
        struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"percore", 7};
        wslay_event_queue_msg(wc->ws, &m);
        flush(wc);
        wc->ping_sent = true;
        pc_timer_start(ww->w, &wc->ping, ww->opt.ping_timeout);
    } else {
        web_ws_close(wc, 1001, "ping timeout");
    }
}

/* ---- the upgrade ----------------------------------------------------- */

static int ws_open(struct web_conn *wc)
{
    struct web_worker *ww = web_worker_of(wc);
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = on_msg,
    };
    if (wslay_event_context_server_init(&wc->ws, &cbs, wc) != 0)
        return -1;
    wslay_event_config_set_max_recv_msg_length(wc->ws, ww->opt.max_message);
    if (room_user_open(&wc->u, ww->face.core, wc->http.c, &web_face,
                       &ww->opt.limits, &ww->face.counters) < 0)
        return -1;
    snprintf(wc->u.user, sizeof wc->u.user, "web");
    pc_timer_init(&wc->ping, ping_cb, wc);
    pc_timer_start(ww->w, &wc->ping, ww->opt.ping_interval);
    return 0;
}

void web_ws_upgrade(struct web_conn *wc)
{
    struct web_worker *ww = web_worker_of(wc);
    struct http_conn *h = &wc->http;
    const struct http_request *r = &h->req;
    size_t kn, vn;
    const char *key = http_header(r, "Sec-WebSocket-Key", &kn);
    const char *ver = http_header(r, "Sec-WebSocket-Version", &vn);
    if (!r->upgrade || !http_header_has(r, "Upgrade", "websocket") ||
        r->method != HTTP_GET || r->minor < 1) {
        http_error(h, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: "
                   "13\r\n", false);
        return;
    }
    if (!ver || vn != 2 || memcmp(ver, "13", 2) != 0) {
        http_error(h, 426, "Sec-WebSocket-Version: 13\r\n", false);
        return;
    }
    if (!key || !key_valid(key, kn)) {
        http_error(h, 400, NULL, false);
        return;
    }
    if (!origin_allowed(wc, ww->opt.origins)) {
        http_error(h, 403, NULL, false);
        return;
    }
    char accept[29];
    char extra[128];
    accept_of(key, kn, accept);
    snprintf(extra, sizeof extra, "Upgrade: websocket\r\nConnection: Upgrade"
             "\r\nSec-WebSocket-Accept: %s\r\n", accept);
    if (ws_open(wc) < 0) {
        http_error(h, 503, NULL, true);
        room_user_close(&wc->u, "out of memory");
        web_ws_free(wc);
        return;
    }
    h->req.keep_alive = true; /* no "Connection: close" on a 101 */
    http_head(h, 101, NULL, -1, extra, false);
    h->answering = false;
    http_conn_close(h); /* no HTTP timers from here on */
    wc->mode = WEB_WS;
    room_user_guest(&wc->u);
    web_welcome(wc);
}

void web_ws_free(struct web_conn *wc)
{
    if (wc->u.c)
        pc_timer_stop(pc_conn_worker(wc->u.c), &wc->ping);
    wslay_event_context_free(wc->ws);
    wc->ws = NULL;
    free(wc->out);
    wc->out = NULL;
    wc->out_len = wc->out_cap = 0;
}

/* ---- input ----------------------------------------------------------- */

/* The bytes of the frame that starts at d (header, mask, payload), or 0
 * while its header is not all there. *message_end: a data frame with
 * FIN, which completes a message. */
static uint64_t frame_size(const unsigned char *d, size_t n, bool *message_end)
{
    if (n < 2)
        return 0;
    unsigned len7 = d[1] & 0x7f;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t head = 2 + ext + ((d[1] & 0x80) ? 4 : 0);
    if (n < head)
        return 0;
    uint64_t payload = len7;
    if (ext) {
        payload = 0;
        for (size_t i = 0; i < ext; i++)
            payload = payload << 8 | d[2 + i];
    }
    /* A length beyond 2^63 is a protocol error that wslay reports from
     * the header alone: hand over just the header. */
    if (payload > (UINT64_MAX >> 1))
        payload = 0;
    *message_end = (d[0] & 0x80) && (d[0] & 0x0f) < 8;
    return head + payload;
}

size_t web_ws_data(struct web_conn *wc, const char *data, size_t len)
{
    size_t used = 0;
    wc->input_seen = true;
    while (used < len && !wc->closing) {
        if (!wc->frame_left) {
            bool message_end = false;
            uint64_t size = frame_size((const unsigned char *)data + used,
                                       len - used, &message_end);
            if (!size)
                return used; /* the framework keeps the partial header */
            /* One token a message; held input waits for the next. */
            if (message_end && !room_user_admit(&wc->u))
                return used;
            wc->frame_left = size;
        }
        size_t n = len - used;
        if (n > wc->frame_left)
            n = (size_t)wc->frame_left;
        wc->in = data + used;
        wc->in_len = n;
        wc->in_off = 0;
        int r = wslay_event_recv(wc->ws);
        size_t took = wc->in_off;
        wc->in = NULL;
        wc->in_len = wc->in_off = 0;
        wc->frame_left -= took;
        used += took;
        if (r == WSLAY_ERR_CALLBACK_FAILURE) { /* a frame wslay refused */
            web_ws_close(wc, WSLAY_CODE_PROTOCOL_ERROR, "");
            return len;
        }
        if (r != 0) {
            pc_conn_abort(wc->u.c, PC_CLOSE_ERROR); /* out of memory */
            return len;
        }
        flush(wc);
        if (wc->closing || !wslay_event_get_read_enabled(wc->ws))
            break;
        if (took < n) /* cannot happen while wslay reads: be safe */
            break;
        if (room_user_waiting(&wc->u))
            return used;
    }
    /* Once a close is decided what follows is dropped. */
    if (wc->closing || !wslay_event_get_read_enabled(wc->ws)) {
        if (!wc->closing)
            web_ws_close(wc, WSLAY_CODE_PROTOCOL_ERROR, "");
        return len;
    }
    return used;
}
