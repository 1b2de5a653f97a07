/* The config reader (core/config.c) on a file and command-line overrides.
 *
 * Input: the INI text, then optionally a NUL byte and override lines,
 * one per '\n': "--listen SPEC" (or "-l SPEC") is a --listen, "--set
 * SPEC" (or "-s SPEC") and any other line a --set. An input that starts
 * with the NUL has no file: built-in defaults plus the overrides.
 *
 * pc_config_load must either succeed with a config that holds every
 * documented limit, or fail with one line that says where: the file and
 * a line of it ("f:3: [server] workers: ..."), "--set S.K" or
 * "--listen", and, for a line of the file, a section and key that are on
 * it. Loading the same input twice gives the same answer. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "tests/fuzz/fuzz.h"

#define CHECK_ERR(cond, err)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\nerror: %s\n",        \
                    __FILE__, __LINE__, #cond, err);                           \
            abort();                                                           \
        }                                                                      \
    } while (0)

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pc_log_init();
    /* The file lives in memory; fopen reaches it through /proc. */
    memfd = memfd_create("fuzz.ini", 0);
    CHECK(memfd >= 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    return 0;
}

struct input {
    const char *ini;
    size_t ini_len, nlines;
    bool has_file;
    struct pc_config_overrides ov;
    char *lines; /* the override lines, NUL-separated, owned */
    const char *whole;
    size_t whole_len;
};

static void split_input(const uint8_t *data, size_t size, struct input *in)
{
    memset(in, 0, sizeof *in);
    in->whole = (const char *)data;
    in->whole_len = size;
    const char *z = memchr(data, '\0', size);
    in->ini = (const char *)data;
    in->ini_len = z ? (size_t)(z - in->ini) : size;
    in->has_file = !(z && z == in->ini);
    for (size_t i = 0; i < in->ini_len; i++)
        in->nlines += in->ini[i] == '\n';
    if (in->ini_len && in->ini[in->ini_len - 1] != '\n')
        in->nlines++;
    if (!z)
        return;
    size_t rest = size - in->ini_len - 1;
    in->lines = malloc(rest + 1);
    CHECK(in->lines);
    memcpy(in->lines, z + 1, rest);
    in->lines[rest] = '\0';
    for (char *save, *l = strtok_r(in->lines, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        static const char *const lp[] = {"--listen ", "-l "};
        static const char *const sp[] = {"--set ", "-s "};
        bool listen = false;
        for (int k = 0; k < 2; k++) {
            size_t n = strlen(lp[k]);
            if (strncmp(l, lp[k], n) == 0)
                l += n, listen = true;
        }
        for (int k = 0; k < 2 && !listen; k++) {
            size_t n = strlen(sp[k]);
            if (strncmp(l, sp[k], n) == 0)
                l += n;
        }
        /* percored refuses more than these on its command line. */
        if (listen && in->ov.nlisten < PC_MAX_LISTENERS)
            in->ov.listen[in->ov.nlisten++] = l;
        else if (!listen && in->ov.nset < 128)
            in->ov.set[in->ov.nset++] = l;
    }
}

static void write_file(const struct input *in)
{
    CHECK(ftruncate(memfd, 0) == 0);
    size_t done = 0;
    while (done < in->ini_len) {
        ssize_t w =
            pwrite(memfd, in->ini + done, in->ini_len - done, (off_t)done);
        CHECK(w > 0);
        done += (size_t)w;
    }
}

/* Whether the bytes s[0..n) occur in the file's text. */
static bool in_file(const struct input *in, const char *s, size_t n)
{
    return n == 0 || memmem(in->ini, in->ini_len, s, n) != NULL;
}

/* Line `line` (1-based) of the file, without its line end. */
static const char *file_line(const struct input *in, long line, size_t *len)
{
    const char *p = in->ini, *end = in->ini + in->ini_len;
    for (long i = 1; i < line && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

static void check_error(const struct input *in, const char *err, size_t cap)
{
    size_t len = strnlen(err, cap);
    CHECK_ERR(len > 0 && len < cap, err);
    CHECK_ERR(!strchr(err, '\n'), err); /* one line */
    if (strncmp(err, "--set ", 6) == 0 || strncmp(err, "--listen", 8) == 0)
        return; /* the command line's spec is named */
    size_t pl = strlen(path);
    CHECK_ERR(in->has_file && strncmp(err, path, pl) == 0 && err[pl] == ':',
              err);
    char *end;
    long line = strtol(err + pl + 1, &end, 10);
    CHECK_ERR(end > err + pl + 1 && *end == ':', err);
    CHECK_ERR(line >= 1 && (size_t)line <= in->nlines, err);
    const char *what = end + 1;
    CHECK_ERR(*what == ' ', err);
    what++;

    size_t ll;
    const char *text = file_line(in, line, &ll);
    if (strncmp(what, "line longer than ", 17) == 0) {
        long max = strtol(what + 17, NULL, 10);
        CHECK_ERR((long)ll > max, err); /* F2, fixed: == max fits */
        return;
    }
    if (strncmp(what, "syntax error", 12) == 0 ||
        strncmp(what, "too many listeners", 18) == 0)
        return;
    /* "[SECTION] KEY: ..." or "[SECTION]: ...": both from the file. */
    CHECK_ERR(what[0] == '[', err);
    const char *close = strchr(what, ']');
    CHECK_ERR(close != NULL, err);
    const char *section = what + 1;
    size_t slen = (size_t)(close - section);
    if (strncmp(section, "listener ", 9) == 0)
        section += 9, slen -= 9;
    CHECK_ERR(in_file(in, section, slen), err);
    if (close[1] != ' ')
        return;
    const char *key = close + 2, *colon = strchr(key, ':');
    CHECK_ERR(colon != NULL, err);
    size_t klen = (size_t)(colon - key);
    static const char unknown[] = "protocol: unknown protocol '";
    if (strncmp(key, unknown, sizeof unknown - 1) == 0) {
        /* The listener's error, named at its first line; the protocol
         * may come from the file or from a --listen or --set. */
        const char *name = key + sizeof unknown - 1;
        const char *q = strchr(name, '\'');
        CHECK_ERR(
            q && memmem(in->whole, in->whole_len, name, (size_t)(q - name)),
            err);
        return;
    }
    /* The key named is in the file and on the line named, unless that
     * line continues a value (inih's multi-line values: a line that
     * starts with white space, \v and \f included). */
    CHECK_ERR(in_file(in, key, klen), err);
    bool continued = ll && isspace((unsigned char)text[0]);
    CHECK_ERR(continued || memmem(text, ll, key, klen), err);
}

static void check_config(const struct pc_config *cfg)
{
    CHECK(cfg->nlisteners >= 1 && cfg->nlisteners <= PC_MAX_LISTENERS);
    CHECK(cfg->workers >= 0 && cfg->workers <= 1024);
    CHECK(cfg->distribution == PC_DIST_REUSEPORT ||
          cfg->distribution == PC_DIST_ACCEPTOR);
    CHECK(cfg->balance == PC_BALANCE_ROUND_ROBIN ||
          cfg->balance == PC_BALANCE_LEAST_CONN);
    CHECK(cfg->log_level >= PC_LOG_ERR && cfg->log_level <= PC_LOG_DEBUG);
    CHECK(cfg->backend[0] != '\0');
    CHECK(cfg->max_connections >= 0 && cfg->drain_timeout >= 0);
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *l = &cfg->listeners[i];
        CHECK(l->name[0] && l->listen[0] && l->proto);
        CHECK(strcmp(l->proto->name, l->protocol) == 0);
        for (unsigned k = 0; k < i; k++)
            CHECK(strcmp(cfg->listeners[k].name, l->name) != 0);
        CHECK(l->backlog >= 1 && l->backlog <= 1 << 20);
        CHECK(l->distribution == PC_DIST_REUSEPORT ||
              l->distribution == PC_DIST_ACCEPTOR);
        if (strncmp(l->listen, "unix:", 5) == 0)
            CHECK(l->distribution == PC_DIST_ACCEPTOR);
        CHECK(l->idle_timeout >= 0 && l->idle_timeout <= 1e7);
        CHECK(l->flush_delay >= 0 && l->flush_delay <= 1);
        CHECK(l->max_input >= 64 && l->max_input <= 1LL << 32);
        CHECK(l->low_watermark < l->high_watermark &&
              l->high_watermark <= l->max_output);
        CHECK(l->sndbuf >= 0 && l->rcvbuf >= 0);
        const struct pc_section *s = &l->section;
        CHECK(strcmp(pc_section_listener(s), l->name) == 0);
        CHECK(pc_section_service(s) == i);
        CHECK(pc_section_int(s, "max_input") == l->max_input);
        CHECK(pc_section_int(s, "max_output") == l->max_output);
        CHECK(pc_section_seconds(s, "idle_timeout") == l->idle_timeout);
        for (const struct pc_option *o = l->proto->options; o && o->name; o++) {
            switch (o->type) {
            case PC_OPT_INT:
            case PC_OPT_SIZE: {
                int64_t v = pc_section_int(s, o->name);
                CHECK((double)v >= o->min && (double)v <= o->max);
                break;
            }
            case PC_OPT_SECONDS: {
                double v = pc_section_seconds(s, o->name);
                CHECK(v >= o->min && v <= o->max);
                break;
            }
            case PC_OPT_BOOL:
                (void)pc_section_bool(s, o->name);
                break;
            case PC_OPT_STRING:
                CHECK(!o->default_value || pc_section_string(s, o->name));
                break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct input in;
    split_input(data, size, &in);
    write_file(&in);

    static struct pc_config a, b;
    char err_a[PC_ERR_MAX], err_b[PC_ERR_MAX];
    memset(err_a, 0, sizeof err_a);
    memset(err_b, 0, sizeof err_b);
    const char *file = in.has_file ? path : NULL;
    int ra = pc_config_load(&a, file, &in.ov, err_a, sizeof err_a);
    CHECK(ra == 0 || ra < 0);
    if (ra == 0)
        check_config(&a);
    else
        check_error(&in, err_a, sizeof err_a);

    /* The same input, the same answer. */
    int rb = pc_config_load(&b, file, &in.ov, err_b, sizeof err_b);
    CHECK(rb == ra);
    if (ra < 0) {
        CHECK(strcmp(err_a, err_b) == 0);
    } else {
        CHECK(a.nlisteners == b.nlisteners && a.workers == b.workers);
        for (unsigned i = 0; i < a.nlisteners; i++) {
            CHECK(strcmp(a.listeners[i].name, b.listeners[i].name) == 0);
            CHECK(strcmp(a.listeners[i].listen, b.listeners[i].listen) == 0);
            CHECK(a.listeners[i].max_output == b.listeners[i].max_output);
        }
        pc_config_free(&a);
        pc_config_free(&b);
    }
    free(in.lines);
    return 0;
}
