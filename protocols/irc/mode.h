/* Channel and user MODE strings: which letters this server knows, what
 * parameter each takes and the canonical text of applied changes; and the
 * masks of +b. Pure functions, no state: any thread. Like everything in
 * text.h they read network input and never read outside it. */
#ifndef PC_IRC_MODE_H
#define PC_IRC_MODE_H

#include <stdbool.h>
#include <stddef.h>

/* The channel modes irc_mode_parse knows, as RPL_ISUPPORT (005) and
 * RPL_MYINFO (004) announce them, so the announcement and the parser
 * cannot drift apart (the unit test checks each letter's kind):
 *   b  ban list: a mask to add or remove; none to list the bans
 *   k  key: a parameter to set, optional to unset
 *   l  limit: a positive integer to set, none to unset
 *   i m n s t  flags, no parameter
 *   o v  operator and voice: a nick */
#define IRC_ISUPPORT_CHANMODES "b,k,l,imnst"
#define IRC_ISUPPORT_PREFIX    "(ov)@+"
#define IRC_MYINFO_CHANMODES   "biklmnostv"
#define IRC_MYINFO_USERMODES   "i"

/* The largest +l: nine digits, so any limit fits in an unsigned. */
#define IRC_MODE_LIMIT_MAX 999999999u

struct irc_mode_change {
    bool add;        /* '+' (or no sign yet) rather than '-' */
    char mode;       /* one of IRC_MYINFO_CHANMODES */
    const char *arg; /* one of the args given to irc_mode_parse, or NULL:
                        -k without a key, or a ban list request */
};

/* Splits a channel MODE request ("+ov-k+l", then its arguments: "nick1",
 * "nick2", "key", "10") into changes, each letter taking the next argument
 * as its kind wants (see above). The arguments are not copied: out[].arg
 * point into args, which the caller owns. Returns how many changes were
 * written to out; parsing stops at the max-th.
 *
 * - A mode string without a sign starts with '+'.
 * - 'b' with no argument left is a request for the ban list: a change with
 *   arg NULL, written once however many such 'b' there are.
 * - '-k' consumes an argument when there is one.
 * - A letter whose argument is missing is skipped and sets *missing_param
 *   (ERR_NEEDMOREPARAMS, 461); *missing_param is false otherwise.
 * - An argument that is there but unusable is consumed and its change
 *   dropped silently, as common ircds do: empty, starting with ':' or
 *   holding a space (a trailing parameter: it could not be echoed back as
 *   a middle one); a key holding ',' (JOIN could never give it); a limit
 *   that irc_mode_limit refuses. For '-k' only the key is dropped.
 * - Unknown ASCII letters go to unknown[0..unknown_size), each once,
 *   NUL-terminated (ERR_UNKNOWNMODE, 472, one reply per letter); other
 *   bytes are skipped, as they could not be named in a reply. */
unsigned irc_mode_parse(const char *modes, char *const *args, unsigned nargs,
                        struct irc_mode_change *out, unsigned max,
                        char *unknown, size_t unknown_size,
                        bool *missing_param);

/* A +l argument's value: digits only, no leading zero, 1 to
 * IRC_MODE_LIMIT_MAX; 0 when s is anything else. */
unsigned irc_mode_limit(const char *s);

/* Writes the changes actually applied as one MODE parameter list,
 * "+ov-k nick1 nick2 *", into out[0..outlen), NUL-terminated unless
 * outlen is 0: the letters in the order given, a sign only where it
 * changes, then each non-NULL arg. A '-k' without arg prints "*", as
 * clients expect a parameter for every 'k' (CHANMODES type B). Returns
 * the length of the whole text, as snprintf does: a result >= outlen
 * means out was cut. n == 0 gives "". */
size_t irc_mode_format(const struct irc_mode_change *c, unsigned n, char *out,
                       size_t outlen);

/* Applies a user MODE string ("+i", "-i", "+iw") to *invisible, the one
 * user mode this server has (no sign yet means '+'). Returns false if the
 * string held anything but '+', '-' and 'i' (ERR_UMODEUNKNOWNFLAG, 501);
 * its 'i' are applied all the same. */
bool irc_umode_apply(const char *modes, bool *invisible);

/* ---- masks (channel bans) -------------------------------------------- */

/* Completes a ban mask to nick!user@host form into out[0..outlen), always
 * NUL-terminated (unless outlen is 0):
 *   "nick" -> "nick!*@*"          "user@host" -> "*!user@host"
 *   "nick!user" -> "nick!user@*"  "a.host" or "::1" -> "*!*@a.host"
 * (a word with '.' or ':' is a host: neither can be in a nick) and an
 * empty nick, user or host becomes '*'. The nick ends at the first '!'
 * only if that comes before the first '@'; the host starts after the
 * first '@'. Case is kept. Returns the length of the whole mask, as
 * snprintf does: a result >= outlen means out was cut. */
size_t irc_mask_normalize(const char *in, char *out, size_t outlen);

#endif
