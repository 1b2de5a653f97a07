/* metrics: the server's metrics in the Prometheus text format over HTTP
 * (GET /metrics), for an admin listener. One request per connection.
 * The text comes from the framework (pc_metrics_render), so this module,
 * like any other, uses only include/percore/. */
#include <stdio.h>
#include <string.h>

#include <percore/percore.h>

#define REQUEST_MAX 8192

static void reply_head(struct pc_conn *c, const char *status, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; "
                     "version=0.0.4\r\nContent-Length: %zu\r\nConnection: "
                     "close\r\n\r\n",
                     status, len);
    pc_conn_write(c, head, (size_t)n);
}

static void reply(struct pc_conn *c, const char *status, const char *body)
{
    reply_head(c, status, strlen(body));
    pc_conn_write(c, body, strlen(body));
    pc_conn_close(c);
}

static size_t metrics_data(struct pc_conn *c, const char *data, size_t len)
{
    /* Wait for the whole request head; framework keeps partial input. */
    const char *end = NULL;
    for (size_t i = 3; i < len && !end; i++)
        if (memcmp(data + i - 3, "\r\n\r\n", 4) == 0 ||
            (data[i] == '\n' && data[i - 1] == '\n'))
            end = data + i;
    if (!end) {
        if (len > REQUEST_MAX)
            reply(c, "431 Request Header Fields Too Large", "");
        return 0;
    }
    if (strncmp(data, "GET /metrics ", 13) == 0 ||
        strncmp(data, "GET / ", 6) == 0) {
        /* One buffer, as long as the text is: it grows with the workers.
         * Queued by reference, not copied again. */
        struct pc_sbuf *body = pc_metrics_render(pc_conn_worker(c));
        if (!body) {
            reply(c, "503 Service Unavailable", "");
        } else {
            reply_head(c, "200 OK", body->len);
            pc_conn_write_shared(c, body);
            pc_sbuf_unref(body);
            pc_conn_close(c);
        }
    } else {
        reply(c, "404 Not Found", "only GET /metrics is served here\n");
    }
    return len;
}

const struct pc_proto pc_metrics_proto = {
    .abi = PC_PROTO_ABI,
    .name = "metrics",
    .on_data = metrics_data,
};
