/* Connection input through the real framework: a percored started in
 * this process (pc_config_load, pc_server_start: two worker threads, the
 * acceptor, a chat and an irc listener on loopback ports the kernel
 * picks), and, per input, one or two TCP clients that send the input's
 * bytes with its split points, pauses, half-closes and resets. Nothing of
 * percore is faked: the bytes go through accept, the worker's read
 * buffer, the face's on_data, the room core's messages between the
 * workers, the output queue and its cuts.
 *
 * Input: byte 0 picks the clients (bit 0: A is irc, else chat; bit 1: B
 * is irc; bit 2: B exists). Then the records of fuzz_conn.h (server,
 * clients and record loop shared with fuzz_web_input), operations 0-3
 * all plain writes (fuzz_raw_write).
 *
 * At the end the clients read until the server is quiet for 1 ms, then
 * every client still open half-closes and reads to the end.
 *
 * Checked: the server closes every connection it was left with, within a
 * deadline, and its connection gauge comes back to zero (nothing held for
 * a gone client); what a chat client receives starts with the welcome and
 * is whole lines of valid UTF-8 without control characters or '\r'
 * (docs/protocols/chat.md); what an irc client receives is lines of at
 * most 512 bytes ending in CR LF, with no NUL, CR or LF inside
 * (docs/protocols/irc.md). Sanitizers watch the server's threads too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/line.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conn.h"

#define LINE_CAP (1 << 20)

static struct sockaddr_in addr[2]; /* chat, irc */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Two workers, so rooms and nicks live on one and members on the
     * other; the acceptor deals the clients round-robin. No flood
     * control (it only delays), small line, sendq and socket buffers so
     * that short inputs reach the long-line and slow-reader paths. */
    static struct pc_config_overrides ov = {
        .listen = {"chat=chat@127.0.0.1:0", "irc=irc@127.0.0.1:0"},
        .nlisten = 2,
        .set = {"server.workers=2", "server.distribution=acceptor",
                "server.log_level=err", "chat.flood_rate=0", "irc.flood_rate=0",
                "chat.max_line=200", "chat.sendq=4096", "irc.sendq=4096",
                "chat.sndbuf=4096", "irc.sndbuf=4096"},
        .nset = 10,
    };
    fuzz_server_start("fuzz_conn_input", &ov);
    fuzz_listener_addr(0, &addr[0]);
    fuzz_listener_addr(1, &addr[1]);
    return 0;
}

/* ---- one client ------------------------------------------------------ */

struct client {
    struct fuzz_client base; /* first: take() casts back */
    bool irc;
    size_t received; /* bytes */
    size_t lines;
    char *line; /* the unfinished line */
    size_t len;
    struct client *first; /* client A, for PC_FUZZ_VERBOSE */
};

static void check_line(struct client *c, const char *s, size_t n)
{
    /* PC_FUZZ_VERBOSE=1 shows the conversation when reproducing. */
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("PC_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s %c| %.*s", c->irc ? "irc " : "chat",
                c == c->first ? 'A' : 'B', (int)n, s);
    if (c->irc) {
        /* n counts the '\n'. */
        CHECK(n >= 3 && n <= 512);
        CHECK(s[n - 2] == '\r' && s[n - 1] == '\n');
        CHECK(!memchr(s, '\0', n - 2) && !memchr(s, '\r', n - 2));
    } else {
        CHECK(!memchr(s, '\r', n - 1));
        enum chat_text_check t = chat_text_check(s, n - 1);
        if (t != CHAT_TEXT_OK) {
            fprintf(stderr, "chat line: %.*s\n", (int)n, s);
            CHECK(!"chat output is valid UTF-8 without controls");
        }
        if (c->lines == 0) {
            static const char welcome[] = "*** welcome to percore chat, ";
            CHECK(n > sizeof welcome - 1 &&
                  memcmp(s, welcome, sizeof welcome - 1) == 0);
        }
    }
    c->lines++;
}

static void take(struct fuzz_client *base, const char *data, size_t n)
{
    struct client *c = (struct client *)base;
    c->received += n;
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t part = nl ? (size_t)(nl - data) + 1 : n;
        CHECK(c->len + part <= LINE_CAP);
        if (c->len + part > 0) {
            char *grown = realloc(c->line, c->len + part);
            CHECK(grown);
            c->line = grown;
        }
        memcpy(c->line + c->len, data, part);
        c->len += part;
        if (nl) {
            check_line(c, c->line, c->len);
            c->len = 0;
        }
        data += part;
        n -= part;
    }
}

static void client_open(struct client *c, bool irc)
{
    memset(c, 0, sizeof *c);
    c->irc = irc;
    c->base.take = take;
    fuzz_client_connect(&c->base, &addr[irc ? 1 : 0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    struct client cl[2];
    struct fuzz_session s = {.clients = {&cl[0].base, &cl[1].base},
                             .n = data[0] & 4 ? 2 : 1};
    client_open(&cl[0], data[0] & 1);
    if (s.n == 2)
        client_open(&cl[1], data[0] & 2);
    cl[0].first = cl[1].first = &cl[0];
    fuzz_run_records(&s, data, size, 1, fuzz_raw_write);
    /* Events still between the workers reach the clients before they
     * leave: an input replays the same conversation. */
    fuzz_settle(&s);
    fuzz_finish(&s);
    for (unsigned i = 0; i < s.n; i++) {
        struct client *c = &cl[i];
        if (c->base.fd >= 0 && !c->base.aborted) {
            /* Output ends on a line end, a cut included (whole units). */
            CHECK(c->len == 0);
            if (!c->irc)
                CHECK(c->lines >= 1); /* the welcome, at least */
        }
        fuzz_client_close(&c->base);
        free(c->line);
    }
    fuzz_wait_no_connections();
    return 0;
}
