/* Names as the room core compares them: rfc1459 case folding (IRC's
 * CASEMAPPING=rfc1459, for nicks and rooms of every face), ban masks, and
 * what a room may be called. Pure functions, no state: any thread. */
#ifndef PC_ROOM_FOLD_H
#define PC_ROOM_FOLD_H

#include <stdbool.h>
#include <stddef.h>

/* A-Z [ ] \ ~ fold to a-z { } | ^ (in rfc1459 they are the same letters
 * in upper and lower case, from the Scandinavian ISO 646); any other
 * byte is itself. */
char room_fold_char(char c);
/* Copies src folded into dst[0..dstsize), always NUL-terminated (unless
 * dstsize is 0), cut if too long; dst may be src, to fold in place. */
void room_fold(char *dst, const char *src, size_t dstsize);
/* strcmp of the folded strings: 0 when a and b name the same nick or
 * room. Ordering is by folded unsigned bytes. */
int room_casecmp(const char *a, const char *b);

/* Whether subject ("nick!user@host") matches mask: '*' any run of bytes,
 * '?' exactly one byte (not one UTF-8 character), everything else itself
 * under rfc1459 folding. There is no escape: a nick may hold '\'. Time is
 * at most O(strlen(mask) * strlen(subject)), never exponential. */
bool room_mask_match(const char *mask, const char *subject);

/* Whether s[0..n) is a nick of the form the room core generates
 * ("guest" and digits, in any case): no face may claim one. */
bool room_nick_reserved(const char *s, size_t n);

/* Room names: 1-32 of A-Z a-z 0-9 _ - . # (IRC channels are '#' and a
 * room name; chat rooms are the name). */
bool room_name_valid(const char *s, size_t n);

#endif
