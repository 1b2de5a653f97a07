/* Names compared as IRC compares them (CASEMAPPING=rfc1459), for every
 * face: nicks and rooms are the same whatever their case, and bans
 * match nick!user@host masks. Pure functions: any thread. */
#include "protocols/room/fold.h"
#include "protocols/room/room.h"

#include <stdbool.h>
#include <string.h>

/* ---- case mapping ---------------------------------------------------- */

char room_fold_char(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    switch (c) {
    case '[':
        return '{';
    case ']':
        return '}';
    case '\\':
        return '|';
    case '~':
        return '^';
    default:
        return c;
    }
}

void room_fold(char *dst, const char *src, size_t dstsize)
{
    if (dstsize == 0)
        return;
    size_t i = 0;
    for (; i + 1 < dstsize && src[i]; i++)
        dst[i] = room_fold_char(src[i]);
    dst[i] = '\0';
}

int room_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)room_fold_char(*a);
        unsigned char y = (unsigned char)room_fold_char(*b);
        if (x != y || x == '\0')
            return (int)x - (int)y;
    }
}

/* ---- masks ---------------------------------------------------------- */

bool room_mask_match(const char *mask, const char *subject)
{
    /* Greedy, remembering only the last '*': when the mask after it fails
     * to match, that star swallows one more byte and the rest is tried
     * again. Earlier stars never need to be revisited: anything they could
     * give up, the last star can take. Each retry moves one byte on and
     * compares at most strlen(mask) bytes: O(m * n), no backtracking
     * tree, whatever the pattern. */
    const char *p = mask, *s = subject;
    const char *star = NULL, *retry = NULL;
    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (*p == '\0')
                return true;
            star = p;
            retry = s;
        } else if (*p != '\0' &&
                   (*p == '?' || room_fold_char(*p) == room_fold_char(*s))) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++retry;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool room_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
              c == '#'))
            return false;
    }
    return true;
}

bool room_nick_reserved(const char *s, size_t n)
{
    if (n <= 5)
        return false;
    for (size_t i = 0; i < 5; i++)
        if (room_fold_char(s[i]) != "guest"[i])
            return false;
    for (size_t i = 5; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}
