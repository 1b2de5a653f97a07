#include "protocols/irc/mode.h"

#include <string.h>

#include "protocols/irc/text.h"

enum kind {
    KIND_UNKNOWN,
    KIND_FLAG,   /* no parameter */
    KIND_LIST,   /* b: a mask, or none to list */
    KIND_KEY,    /* k: a key to set, optional to unset */
    KIND_LIMIT,  /* l: a number to set, none to unset */
    KIND_PREFIX, /* o v: a nick */
};

static enum kind kind_of(char c)
{
    switch (c) {
    case 'i':
    case 'm':
    case 'n':
    case 's':
    case 't':
        return KIND_FLAG;
    case 'b':
        return KIND_LIST;
    case 'k':
        return KIND_KEY;
    case 'l':
        return KIND_LIMIT;
    case 'o':
    case 'v':
        return KIND_PREFIX;
    default:
        return KIND_UNKNOWN;
    }
}

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether an argument can go back out in a reply as a middle parameter. */
static bool sendable(const char *a)
{
    return a[0] != '\0' && a[0] != ':' && strchr(a, ' ') == NULL;
}

static void note_unknown(char c, char *unknown, size_t size)
{
    if (size == 0 || !is_letter(c))
        return;
    size_t n = strlen(unknown);
    if (memchr(unknown, c, n) == NULL && n + 1 < size) {
        unknown[n] = c;
        unknown[n + 1] = '\0';
    }
}

unsigned irc_mode_limit(const char *s)
{
    if (s[0] < '1' || s[0] > '9')
        return 0;
    unsigned v = 0;
    for (size_t i = 0; s[i]; i++) {
        /* Ten digits could pass UINT_MAX: refuse before multiplying. */
        if (i == 9 || s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v;
}

static bool takes_arg(enum kind k, bool add)
{
    return k == KIND_LIST || k == KIND_KEY || k == KIND_PREFIX ||
           (k == KIND_LIMIT && add);
}

/* Whether an argument that is there may be used by the letter's kind. */
static bool usable(enum kind k, bool add, const char *a)
{
    if (!sendable(a))
        return false;
    if (k == KIND_KEY && add)
        return strchr(a, ',') == NULL;
    if (k == KIND_LIMIT)
        return irc_mode_limit(a) != 0;
    return true;
}

unsigned irc_mode_parse(const char *modes, char *const *args, unsigned nargs,
                        struct irc_mode_change *out, unsigned max,
                        char *unknown, size_t unknown_size, bool *missing_param)
{
    unsigned n = 0, next = 0;
    bool add = true, listed = false;

    *missing_param = false;
    if (unknown_size)
        unknown[0] = '\0';
    for (const char *p = modes; *p && n < max; p++) {
        char c = *p;
        if (c == '+' || c == '-') {
            add = c == '+';
            continue;
        }
        enum kind k = kind_of(c);
        if (k == KIND_UNKNOWN) {
            note_unknown(c, unknown, unknown_size);
            continue;
        }
        /* -k is the one letter whose argument is welcome but optional. */
        bool optional = k == KIND_KEY && !add;
        const char *arg = NULL;
        if (takes_arg(k, add) && next < nargs) {
            arg = args[next++];
            if (!usable(k, add, arg)) {
                if (!optional)
                    continue;
                arg = NULL;
            }
        } else if (k == KIND_LIST) {
            if (listed)
                continue;
            listed = true;
        } else if (takes_arg(k, add) && !optional) {
            *missing_param = true;
            continue;
        }
        out[n++] = (struct irc_mode_change){add, c, arg};
    }
    return n;
}

/* Appends to out[0..cap) snprintf-style: len counts everything appended,
 * whether it fitted or not, and out stays NUL-terminated. */
struct sink {
    char *out;
    size_t cap, len;
};

static void put(struct sink *k, const char *s, size_t n)
{
    if (k->len + 1 < k->cap) {
        size_t room = k->cap - 1 - k->len;
        memcpy(k->out + k->len, s, n < room ? n : room);
    }
    k->len += n;
    if (k->cap)
        k->out[k->len < k->cap ? k->len : k->cap - 1] = '\0';
}

size_t irc_mode_format(const struct irc_mode_change *c, unsigned n, char *out,
                       size_t outlen)
{
    struct sink k = {out, outlen, 0};
    put(&k, "", 0);
    for (unsigned i = 0; i < n; i++) {
        if (i == 0 || c[i].add != c[i - 1].add)
            put(&k, c[i].add ? "+" : "-", 1);
        put(&k, &c[i].mode, 1);
    }
    for (unsigned i = 0; i < n; i++) {
        const char *arg = c[i].arg;
        if (!arg && c[i].mode == 'k' && !c[i].add)
            arg = "*";
        if (arg) {
            put(&k, " ", 1);
            put(&k, arg, strlen(arg));
        }
    }
    return k.len;
}

bool irc_umode_apply(const char *modes, bool *invisible)
{
    bool add = true, known = true;
    for (const char *p = modes; *p; p++) {
        if (*p == '+' || *p == '-')
            add = *p == '+';
        else if (*p == 'i')
            *invisible = add;
        else
            known = false;
    }
    return known;
}

/* ---- masks ----------------------------------------------------------- */

/* A piece of a mask, '*' when empty. */
static void put_piece(struct sink *k, const char *s, size_t n)
{
    if (n == 0)
        put(k, "*", 1);
    else
        put(k, s, n);
}

size_t irc_mask_normalize(const char *in, char *out, size_t outlen)
{
    struct sink k = {out, outlen, 0};
    size_t n = strlen(in);
    const char *at = strchr(in, '@');
    const char *bang = memchr(in, '!', at ? (size_t)(at - in) : n);
    const char *user = bang ? bang + 1 : in;

    if (!bang && !at) {
        /* One word: a host if it has what only hosts have. */
        if (strpbrk(in, ".:")) {
            put(&k, "*!*@", 4);
            put(&k, in, n);
        } else {
            put_piece(&k, in, n);
            put(&k, "!*@*", 4);
        }
        return k.len;
    }
    put_piece(&k, in, bang ? (size_t)(bang - in) : 0);
    put(&k, "!", 1);
    put_piece(&k, user, at ? (size_t)(at - user) : strlen(user));
    put(&k, "@", 1);
    put_piece(&k, at ? at + 1 : "", at ? strlen(at + 1) : 0);
    return k.len;
}
