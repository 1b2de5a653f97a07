/* The report: a few lines for people, or one JSON object for bench/run. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct pcb_proc_sample pcb_proc_sample(int pid)
{
    struct pcb_proc_sample s = {0};
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return s;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    /* NOLINTNEXTLINE(cert-err34-c): the kernel's numbers, in range */
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu",
                     &utime, &stime) != 2)
        return s;
    s.cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r"))) {
        while (fgets(buf, sizeof buf, f))
            /* NOLINTNEXTLINE(cert-err34-c): the kernel's number, in range */
            if (sscanf(buf, "VmRSS: %ld", &s.rss_kib) == 1)
                break;
        fclose(f);
    }
    s.ok = true;
    return s;
}

struct pcb_proc_sample pcb_proc_sample_all(const struct pcb_config *cfg,
                                           struct pcb_proc_sample *each)
{
    struct pcb_proc_sample sum = {.ok = cfg->npids > 0};
    for (unsigned i = 0; i < cfg->npids; i++) {
        each[i] = pcb_proc_sample(cfg->server_pid[i]);
        sum.ok = sum.ok && each[i].ok;
        sum.cpu_s += each[i].cpu_s;
        sum.rss_kib += each[i].rss_kib;
    }
    return sum;
}

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99_9"};
#define NPCTS (sizeof pcts / sizeof *pcts)

static const char *unit_of(enum pcb_mode m)
{
    static const char *const units[PCB_MODES] = {
        "messages", "connections", "messages", "deliveries", "handshakes",
        "deliveries"};
    return units[m];
}

static bool have_server(const struct pcb_result *r)
{
    return r->cfg->npids && r->start.ok && r->end.ok;
}

static double server_cpu(const struct pcb_result *r)
{
    return r->end.cpu_s - r->start.cpu_s;
}

/* Server memory per connection: what it grew while they were opened. */
static double rss_per_conn(const struct pcb_result *r)
{
    if (!r->open_at_stop || !r->before.ok || !r->start.ok)
        return 0;
    return (double)(r->start.rss_kib - r->before.rss_kib) * 1024.0 /
           (double)r->open_at_stop;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
    if (ns < 1e3)
        snprintf(buf, len, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, len, "%.2fms", ns / 1e6);
    else
        snprintf(buf, len, "%.2fs", ns / 1e9);
}

/* "host:port", with [] around an IPv6 host; several joined by ",". */
static const char *address(const struct pcb_config *c)
{
    static char buf[PCB_MAX_ADDRS * 300];
    size_t n = 0;
    for (unsigned i = 0; i < c->naddrs && n < sizeof buf; i++) {
        const struct pcb_addr *a = &c->addr[i];
        bool v6 = strchr(a->host, ':') != NULL;
        int k = snprintf(buf + n, sizeof buf - n, "%s%s%s%s:%s",
                         i ? "," : "", v6 ? "[" : "", a->host, v6 ? "]" : "",
                         a->port);
        n += k > 0 ? (size_t)k : 0;
    }
    return buf;
}

static void describe(FILE *f, const struct pcb_config *c)
{
    fprintf(f, "percore-bench %s: %s", pcb_mode_name(c->mode), address(c));
    switch (c->mode) {
    case PCB_ECHO:
        fprintf(f, ", %u connections, %llu B messages, ", c->connections,
                (unsigned long long)c->size);
        if (c->rate > 0)
            fprintf(f, "open loop %.0f msg/s", c->rate);
        else
            fprintf(f, "pipeline %u", c->pipeline);
        if (c->tls)
            fprintf(f, ", TLS 1.%u", c->tls_version % 10);
        break;
    case PCB_CHURN:
        fprintf(f, ", %u concurrent, %llu B exchange", c->connections,
                (unsigned long long)c->size);
        break;
    case PCB_IDLE:
        fprintf(f, ", %u connections", c->connections);
        break;
    case PCB_HANDSHAKE:
        fprintf(f, ", %u concurrent, TLS 1.%u%s, %llu B exchange",
                c->connections, c->tls_version % 10,
                c->resume ? " resumed" : "", (unsigned long long)c->size);
        break;
    case PCB_CHAT:
    case PCB_WS:
        fprintf(f, " (%s), %u room%s x %u members, %u sender%s each, ",
                pcb_target_name(c->target), c->rooms, c->rooms > 1 ? "s" : "",
                c->members, c->senders, c->senders > 1 ? "s" : "");
        if (c->rate > 0)
            fprintf(f, "open loop %.0f lines/s", c->rate);
        else
            fprintf(f, "%u in flight per sender", c->pipeline);
        break;
    }
    fprintf(f, ", %u thread%s\n", c->threads, c->threads > 1 ? "s" : "");
}

void pcb_report_text(FILE *f, const struct pcb_result *r)
{
    const struct pcb_config *c = r->cfg;
    describe(f, c);
    double w = r->window_s > 0 ? r->window_s : 1e-9;
    if (c->mode != PCB_CHURN && c->mode != PCB_HANDSHAKE)
        fprintf(f, "  setup      %.2f s, %llu connections opened\n", r->setup_s,
                (unsigned long long)r->opened);
    if (c->mode == PCB_IDLE) {
        fprintf(f, "  held       %llu connections for %.2f s\n",
                (unsigned long long)r->open_at_stop, r->window_s);
    } else {
        fprintf(f, "  %-10s %llu in %.2f s: %.0f/s", unit_of(c->mode),
                (unsigned long long)r->messages, r->window_s,
                (double)r->messages / w);
        if (r->bytes)
            fprintf(f, ", %.1f MB/s each way", (double)r->bytes / w / 1e6);
        fputc('\n', f);
    }
    if (pcb_rooms_mode(c->mode))
        fprintf(f,
                "  lines      %llu sent, %llu of %llu deliveries "
                "received (%u per line)\n",
                (unsigned long long)r->sent, (unsigned long long)r->received,
                (unsigned long long)r->expected, pcb_chat_fanout(c));
    if (pcb_rooms_mode(c->mode) && c->stalled)
        fprintf(f, "  stalled    %u members stopped reading; the server cut "
                "off %llu\n", c->stalled * c->rooms,
                (unsigned long long)r->stalled_cut);
    if (r->tls.protocol[0]) {
        fprintf(f, "  tls        %s %s %s", r->tls.protocol, r->tls.cipher,
                r->tls.group);
        if (c->mode == PCB_HANDSHAKE)
            fprintf(f, "; resumed %llu of %llu (%.1f%%)",
                    (unsigned long long)r->resumed,
                    (unsigned long long)r->messages,
                    r->messages ? 100.0 * (double)r->resumed /
                                      (double)r->messages
                                : 0.0);
        fputc('\n', f);
    }
    if (r->hist->count) {
        char b[5][16];
        for (size_t i = 0; i < NPCTS; i++)
            fmt_ns(b[i], sizeof b[i],
                   (double)pcb_hist_percentile(r->hist, pcts[i]));
        fmt_ns(b[4], sizeof b[4], (double)r->hist->max);
        fprintf(f, "  latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
                b[0], b[1], b[2], b[3], b[4]);
    }
    if (have_server(r)) {
        double cpu = server_cpu(r);
        fprintf(f, "  server     %.2f CPU-s (%.0f%% of one CPU)", cpu,
                100 * cpu / w);
        if (r->messages)
            fprintf(f, ", %.3f us per %s", cpu * 1e6 / (double)r->messages,
                    pcb_rooms_mode(c->mode) ? "delivery"
                    : c->mode == PCB_CHURN ? "connection"
                    : c->mode == PCB_HANDSHAKE ? "handshake"
                                           : "message");
        fprintf(f, ", RSS %ld KiB", r->end.rss_kib);
        if (c->mode == PCB_IDLE)
            fprintf(f, " (%.0f B per connection)", rss_per_conn(r));
        fputc('\n', f);
        for (unsigned i = 0; c->npids > 1 && i < c->npids; i++)
            fprintf(f, "    pid %-6d %.2f CPU-s\n", c->server_pid[i],
                    r->end_each[i].cpu_s - r->start_each[i].cpu_s);
    }
    fprintf(f, "  client     %.2f CPU-s (%.0f%% of one CPU per thread)\n",
            r->client_cpu_s, 100 * r->client_cpu_s / w / c->threads);
    fprintf(f, "  errors     %llu", (unsigned long long)r->errors_total);
    for (int e = 0; e < PCB_ERRORS; e++)
        if (r->errors[e])
            fprintf(f, "  %s %llu", pcb_error_names[e],
                    (unsigned long long)r->errors[e]);
    fprintf(f, "%s\n", r->interrupted ? "  (interrupted)" : "");
}

/* "tls": what was negotiated and, in handshake mode, how many of the
 * measured handshakes were resumed (null when none were measured). */
static void json_tls(FILE *f, const struct pcb_result *r)
{
    const struct pcb_config *c = r->cfg;
    fprintf(f,
            "  \"tls\": {\"version\": \"1.%u\", \"sni\": \"%s\", "
            "\"protocol\": \"%s\", \"cipher\": \"%s\", \"group\": \"%s\", "
            "\"resume\": %s, \"offered\": %llu, \"resumed\": %llu, "
            "\"resumed_fraction\": ",
            c->tls_version % 10, c->sni, r->tls.protocol, r->tls.cipher,
            r->tls.group, c->resume ? "true" : "false",
            (unsigned long long)r->offered, (unsigned long long)r->resumed);
    if (c->mode == PCB_HANDSHAKE && r->messages)
        fprintf(f, "%.6f},\n", (double)r->resumed / (double)r->messages);
    else
        fprintf(f, "null},\n");
}

void pcb_report_json(FILE *f, const struct pcb_result *r)
{
    const struct pcb_config *c = r->cfg;
    double w = r->window_s > 0 ? r->window_s : 1e-9;
    fprintf(f, "{\n  \"tool\": \"percore-bench\",\n  \"mode\": \"%s\",\n",
            pcb_mode_name(c->mode));
    fprintf(f,
            "  \"config\": {\"address\": \"%s\", \"target\": \"%s\", "
            "\"connections\": %u, \"threads\": %u, \"size\": %llu, "
            "\"pipeline\": %u, \"rate\": %.17g, \"duration_s\": %.17g, "
            "\"warmup_s\": %.17g, \"messages\": %llu, \"rooms\": %u, "
            "\"members\": %u, \"senders\": %u},\n",
            address(c), pcb_target_name(c->target), c->connections, c->threads,
            (unsigned long long)c->size, c->pipeline, c->rate, c->duration,
            c->warmup, (unsigned long long)c->messages, c->rooms, c->members,
            c->senders);
    fprintf(f,
            "  \"interrupted\": %s,\n  \"setup_s\": %.6f,\n"
            "  \"elapsed_s\": %.6f,\n",
            r->interrupted ? "true" : "false", r->setup_s, r->window_s);
    fprintf(f,
            "  \"connections\": {\"opened\": %llu, \"open_at_end\": "
            "%llu},\n",
            (unsigned long long)r->opened, (unsigned long long)r->open_at_stop);
    fprintf(f,
            "  \"messages\": %llu,\n  \"messages_per_s\": %.3f,\n"
            "  \"bytes\": %llu,\n  \"mb_per_s\": %.3f,\n",
            (unsigned long long)r->messages, (double)r->messages / w,
            (unsigned long long)r->bytes, (double)r->bytes / w / 1e6);
    if (pcb_rooms_mode(c->mode))
        fprintf(f,
                "  \"chat\": {\"sent\": %llu, \"received\": %llu, "
                "\"expected\": %llu, \"per_line\": %u, "
                "\"deliveries_per_s\": %.3f, "
                "\"stalled\": %u, \"stalled_cut\": %llu},\n",
                (unsigned long long)r->sent, (unsigned long long)r->received,
                (unsigned long long)r->expected, pcb_chat_fanout(c),
                (double)r->messages / w, c->stalled * c->rooms,
                (unsigned long long)r->stalled_cut);
    if (c->tls)
        json_tls(f, r);
    fprintf(f,
            "  \"latency_us\": {\"count\": %llu, \"min\": %.3f, "
            "\"mean\": %.3f",
            (unsigned long long)r->hist->count,
            r->hist->count ? (double)r->hist->min / 1e3 : 0.0,
            pcb_hist_mean(r->hist) / 1e3);
    for (size_t i = 0; i < NPCTS; i++)
        fprintf(f, ", \"%s\": %.3f", pct_names[i],
                (double)pcb_hist_percentile(r->hist, pcts[i]) / 1e3);
    fprintf(f, ", \"max\": %.3f},\n", (double)r->hist->max / 1e3);
    if (have_server(r)) {
        double cpu = server_cpu(r);
        fprintf(f,
                "  \"server\": {\"pid\": %d, \"cpu_s\": %.3f, "
                "\"cpu_util\": %.4f, \"cpu_us_per_message\": %.4f, "
                "\"rss_kib_before\": %ld, \"rss_kib_start\": %ld, "
                "\"rss_kib_end\": %ld, \"rss_bytes_per_connection\": %.1f, "
                "\"pids\": [",
                c->server_pid[0], cpu, cpu / w,
                r->messages ? cpu * 1e6 / (double)r->messages : 0.0,
                r->before.rss_kib, r->start.rss_kib, r->end.rss_kib,
                rss_per_conn(r));
        for (unsigned i = 0; i < c->npids; i++)
            fprintf(f, "%s%d", i ? ", " : "", c->server_pid[i]);
        fprintf(f, "], \"cpu_s_each\": [");
        for (unsigned i = 0; i < c->npids; i++)
            fprintf(f, "%s%.3f", i ? ", " : "",
                    r->end_each[i].cpu_s - r->start_each[i].cpu_s);
        fprintf(f, "]},\n");
    }
    fprintf(f, "  \"client\": {\"cpu_s\": %.3f, \"cpu_util\": %.4f},\n",
            r->client_cpu_s, r->client_cpu_s / w);
    fprintf(f, "  \"errors\": {\"total\": %llu",
            (unsigned long long)r->errors_total);
    for (int e = 0; e < PCB_ERRORS; e++)
        fprintf(f, ", \"%s\": %llu", pcb_error_names[e],
                (unsigned long long)r->errors[e]);
    fprintf(f, "}\n}\n");
}
