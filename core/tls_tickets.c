/* Session ticket keys: a two-key ring rotated by time (tls_tickets.h). */
#include "core/tls_tickets.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

static int key_new(struct pc_ticket_key *k, double now)
{
    if (RAND_bytes(k->name, sizeof k->name) != 1 ||
        RAND_priv_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_priv_bytes(k->hmac, sizeof k->hmac) != 1)
        return -1;
    k->born = now;
    return 0;
}

const struct pc_ticket_key *pc_ticket_ring_seal(struct pc_ticket_ring *r,
                                                double now)
{
    if (r->count == 0 || now - r->keys[0].born >= r->period) {
        struct pc_ticket_key fresh;
        if (key_new(&fresh, now) < 0)
            return NULL;
        /* The current key becomes the previous one; the previous one is
         * gone (wiped: its sessions are past their timeout). */
        OPENSSL_cleanse(&r->keys[1], sizeof r->keys[1]);
        if (r->count)
            r->keys[1] = r->keys[0];
        r->keys[0] = fresh;
        OPENSSL_cleanse(&fresh, sizeof fresh);
        r->count = r->count ? 2 : 1;
    }
    return &r->keys[0];
}

const struct pc_ticket_key *pc_ticket_ring_open(struct pc_ticket_ring *r,
                                                const unsigned char *name,
                                                double now, bool *renew)
{
    (void)pc_ticket_ring_seal(r, now); /* rotate first if due */
    for (unsigned i = 0; i < r->count; i++)
        if (memcmp(r->keys[i].name, name, PC_TICKET_NAME) == 0) {
            /* The previous key lives one more period only. */
            if (i > 0 && now - r->keys[i].born >= 2 * r->period)
                return NULL;
            *renew = i > 0;
            return &r->keys[i];
        }
    return NULL;
}

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pc_ticket_ring ring = {.period = 3600};

void pc_tls_tickets_period(double seconds)
{
    pthread_mutex_lock(&ring_lock);
    if (seconds > 0 && seconds < ring.period)
        ring.period = seconds;
    pthread_mutex_unlock(&ring_lock);
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int set_mac_key(EVP_MAC_CTX *mac, const unsigned char *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key,
                                          PC_TICKET_KEY),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1 ? 0 : -1;
}

/* Returns as OpenSSL asks: 1 ticket sealed or opened, 2 opened and a
 * new one to be issued (sealed with the previous key, or TLS 1.3), 0
 * unknown key (full handshake), -1 error. */
int pc_tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
                     EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc)
{
    struct pc_ticket_key k;
    bool renew = false;
    pthread_mutex_lock(&ring_lock);
    const struct pc_ticket_key *found =
        enc ? pc_ticket_ring_seal(&ring, monotonic_now())
            : pc_ticket_ring_open(&ring, name, monotonic_now(), &renew);
    if (found)
        k = *found; /* used outside the lock */
    pthread_mutex_unlock(&ring_lock);
    if (!found)
        return enc ? -1 : 0;
    int r = -1;
    if (enc) {
        memcpy(name, k.name, PC_TICKET_NAME);
        if (RAND_bytes(iv, 16) == 1 &&
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k.aes, iv) ==
                1 &&
            set_mac_key(mac, k.hmac) == 0)
            r = 1;
    } else if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k.aes,
                                  iv) == 1 &&
               set_mac_key(mac, k.hmac) == 0) {
        /* TLS 1.3 clients should use a ticket once (RFC 8446 C.4): a
         * resumption always gets a fresh one, or the next resumption
         * of a careful client is a full handshake. */
        r = renew || SSL_version(ssl) >= TLS1_3_VERSION ? 2 : 1;
    }
    OPENSSL_cleanse(&k, sizeof k);
    return r;
}
