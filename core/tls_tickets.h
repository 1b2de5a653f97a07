/* Session ticket keys shared by every TLS listener of the process, rotated
 * so that a stolen key opens only recent sessions: a new key every
 * `period` seconds encrypts new tickets; the one before it still opens
 * (and renews) the tickets it sealed; older ones are forgotten. Kept
 * across reloads, so a reload does not end resumption. Any thread: the
 * ring is behind a mutex, taken once per ticket sealed or opened. */
#ifndef PC_CORE_TLS_TICKETS_H
#define PC_CORE_TLS_TICKETS_H

#include <stdbool.h>
#include <stdint.h>

#define PC_TICKET_NAME 16
#define PC_TICKET_KEY 32

struct pc_ticket_key {
    unsigned char name[PC_TICKET_NAME]; /* sent in the clear in the ticket */
    unsigned char aes[PC_TICKET_KEY];   /* AES-256-CBC */
    unsigned char hmac[PC_TICKET_KEY];  /* HMAC-SHA256 */
    double born;                        /* seconds (CLOCK_MONOTONIC) */
};

/* The current key and its predecessor, newest first. */
struct pc_ticket_ring {
    struct pc_ticket_key keys[2];
    unsigned count;
    double period;
};

/* The key to seal a new ticket with at time `now`, making a new one first
 * if the current is `period` old. NULL if no random bytes could be had. */
const struct pc_ticket_key *pc_ticket_ring_seal(struct pc_ticket_ring *r,
                                                double now);
/* The key named `name`, if the ring still has it at `now`; *renew is set
 * when it is not the current one (the client should get a new ticket). */
const struct pc_ticket_key *pc_ticket_ring_open(struct pc_ticket_ring *r,
                                                const unsigned char *name,
                                                double now, bool *renew);

/* Sets the rotation period of the process's ring (the shortest
 * tls_session_timeout configured wins, so that no key outlives twice the
 * shortest session). Main thread. */
void pc_tls_tickets_period(double seconds);
/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb)
 * over the process's ring. Any thread. */
struct ssl_st;
struct evp_cipher_ctx_st;
struct evp_mac_ctx_st;
int pc_tls_ticket_cb(struct ssl_st *ssl, unsigned char *name,
                     unsigned char *iv, struct evp_cipher_ctx_st *cipher,
                     struct evp_mac_ctx_st *mac, int enc);

#endif
