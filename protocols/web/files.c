/* Static files: from the listener's root, or the chat page built into
 * the module (protocols/web/page.html, embedded by cmake/embed.cmake).
 *
 * No path leaves root: the decoded path may not hold a "." or ".."
 * segment, and the file is opened with openat2(RESOLVE_BENEATH), so the
 * kernel refuses any symlink that points out of root (a symlink inside
 * it is followed). A file is read a chunk at a time and queued with
 * pc_conn_write up to the high watermark, then on_drain asks for more:
 * the framework's output queue owns every byte that leaves, which is
 * what lets TLS listeners and cuts work unchanged (sendfile would write
 * around it). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "protocols/web/web.h"

extern const unsigned char web_page[];
extern const size_t web_page_len;

void web_page_init(struct web_worker *ww)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: a tag, not security */
    for (size_t i = 0; i < web_page_len; i++)
        h = (h ^ web_page[i]) * 1099511628211ull;
    snprintf(ww->page_etag, sizeof ww->page_etag, "\"%016llx\"",
             (unsigned long long)h);
}

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"}, {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"}, {"xml", "application/xml"},
    {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"}, {"wasm", "application/wasm"},
    {"woff", "font/woff"}, {"woff2", "font/woff2"}, {"pdf", "application/pdf"},
    {"mp4", "video/mp4"}, {"webm", "video/webm"}, {"mp3", "audio/mpeg"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* Whether the client already has this version: If-None-Match holds the
 * tag (or "*"). */
static bool not_modified(const struct http_request *r, const char *etag)
{
    size_t n;
    const char *v = http_header(r, "If-None-Match", &n);
    if (!v)
        return false;
    size_t elen = strlen(etag);
    for (size_t i = 0; i + elen <= n; i++)
        if (memcmp(v + i, etag, elen) == 0)
            return true;
    return n == 1 && v[0] == '*';
}

/* A path with a "." or ".." segment (after %-decoding, so "%2e%2e"
 * too), or a backslash, never names a file under root. */
static bool safe_path(const char *p)
{
    if (strchr(p, '\\'))
        return false;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *e = strchrnul(s, '/');
        size_t n = (size_t)(e - s);
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s = e;
    }
    return true;
}

static int open_beneath(int root, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, root, rel, &how, sizeof how);
}

void web_file_close(struct web_conn *wc)
{
    if (wc->fd >= 0)
        close(wc->fd);
    wc->fd = -1;
    wc->file_left = 0;
}

void web_file_pump(struct web_conn *wc)
{
    struct web_worker *ww = web_worker_of(wc);
    struct pc_conn *c = wc->http.c;
    while (wc->file_left && pc_conn_queued(c) < ww->opt.high_watermark) {
        size_t want = wc->file_left < WEB_CHUNK ? wc->file_left : WEB_CHUNK;
        ssize_t n = pread(wc->fd, ww->chunk, want, (off_t)wc->file_off);
        if (n <= 0) {
            /* The file shrank or failed under us: the length we sent is
             * wrong now, and only closing tells the client. */
            pc_log(PC_LOG_WARN, "web: a file being sent %s, closing",
                   n < 0 ? strerror(errno) : "shrank");
            web_file_close(wc);
            pc_conn_abort(c, PC_CLOSE_ERROR);
            return;
        }
        if (pc_conn_write(c, ww->chunk, (size_t)n) < 0)
            return; /* closing: on_close closes the file */
        wc->file_off += (uint64_t)n;
        wc->file_left -= (uint64_t)n;
    }
    if (!wc->file_left) { /* the rest waits for on_drain otherwise */
        web_file_close(wc);
        web_resume(wc);
    }
}

static void serve_page(struct web_conn *wc, struct web_worker *ww)
{
    char extra[96];
    snprintf(extra, sizeof extra, "ETag: %s\r\nCache-Control: no-cache\r\n",
             ww->page_etag);
    if (not_modified(&wc->http.req, ww->page_etag)) {
        http_head(&wc->http, 304, NULL, -1, extra, false);
        http_done(&wc->http);
        return;
    }
    http_respond(&wc->http, 200, "text/html; charset=utf-8", web_page,
                 web_page_len, extra);
}

/* Opens rel under root, its index.html if it is a directory (*index). */
static int open_file(struct web_worker *ww, const char *rel, struct stat *st,
                     bool *index_html)
{
    int fd = open_beneath(ww->root_fd, *rel ? rel : ".");
    if (fd >= 0 && fstat(fd, st) < 0) {
        close(fd);
        return -1;
    }
    *index_html = fd >= 0 && S_ISDIR(st->st_mode);
    if (*index_html) {
        char index[WEB_PATH_MAX + 16];
        close(fd);
        snprintf(index, sizeof index, "%s%sindex.html", rel,
                 !*rel || rel[strlen(rel) - 1] == '/' ? "" : "/");
        fd = open_beneath(ww->root_fd, index);
        if (fd >= 0 && fstat(fd, st) < 0) {
            close(fd);
            return -1;
        }
    }
    if (fd >= 0 && !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

void web_serve(struct web_conn *wc, const char *path)
{
    struct web_worker *ww = web_worker_of(wc);
    if (ww->root_fd < 0) {
        if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
            serve_page(wc, ww);
        else
            http_error(&wc->http, 404, NULL, false);
        return;
    }
    struct stat st;
    bool index_html = false;
    int fd = safe_path(path) ? open_file(ww, path + 1, &st, &index_html) : -1;
    if (fd < 0) {
        http_error(&wc->http, 404, NULL, false);
        return;
    }
    char extra[128];
    char etag[48];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    snprintf(extra, sizeof extra, "ETag: %s\r\n", etag);
    if (not_modified(&wc->http.req, etag)) {
        close(fd);
        http_head(&wc->http, 304, NULL, -1, extra, false);
        http_done(&wc->http);
        return;
    }
    const char *type = index_html ? "text/html; charset=utf-8"
                                  : type_of(path);
    if (http_head(&wc->http, 200, type, (int64_t)st.st_size, extra, false) <
            0 || wc->http.req.method == HTTP_HEAD || st.st_size == 0) {
        close(fd);
        http_done(&wc->http);
        return;
    }
    wc->fd = fd;
    wc->file_off = 0;
    wc->file_left = (uint64_t)st.st_size;
    wc->mode = WEB_FILE;
    pc_conn_hold_input(wc->http.c); /* the next request waits for it */
    web_file_pump(wc);
}
