/* metrics: the server's counters in Prometheus text format over HTTP
 * (GET /metrics), for an admin listener. One request per connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/server.h"

#define REQUEST_MAX 8192

static void reply(struct pc_conn *c, const char *status, const char *body,
                  size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; "
                     "version=0.0.4\r\nContent-Length: %zu\r\nConnection: "
                     "close\r\n\r\n",
                     status, len);
    pc_conn_write(c, head, (size_t)n);
    pc_conn_write(c, body, len);
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
            reply(c, "431 Request Header Fields Too Large", "", 0);
        return 0;
    }
    if (strncmp(data, "GET /metrics ", 13) == 0 ||
        strncmp(data, "GET / ", 6) == 0) {
        size_t size = (size_t)256 * 1024;
        char *body = malloc(size);
        if (!body) {
            reply(c, "503 Service Unavailable", "", 0);
        } else {
            size_t n = pc_server_metrics(
                pc_worker_server(pc_conn_worker(c)), body, size);
            reply(c, "200 OK", body, n);
            free(body);
        }
    } else {
        const char *msg = "only GET /metrics is served here\n";
        reply(c, "404 Not Found", msg, strlen(msg));
    }
    return len;
}

const struct pc_proto pc_metrics_proto = {
    .abi = PC_PROTO_ABI,
    .name = "metrics",
    .on_data = metrics_data,
};
