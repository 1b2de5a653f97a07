#include "protocols/room/bucket.h"

void room_bucket_init(struct room_bucket *b, double now, double burst)
{
    b->tokens = burst;
    b->stamp = now;
}

double room_bucket_take(struct room_bucket *b, double now, double rate,
                        double burst)
{
    if (rate <= 0)
        return 0;
    if (burst < 1)
        burst = 1;
    if (now > b->stamp) {
        b->tokens += (now - b->stamp) * rate;
        b->stamp = now;
    }
    if (b->tokens > burst) /* also after a reload lowered the burst */
        b->tokens = burst;
    /* The epsilon: refills are sums of small floating-point products, and
     * a token short by 1e-15 would ask for a wait the clock cannot show. */
    if (b->tokens >= 1 - 1e-9) {
        b->tokens -= 1;
        return 0;
    }
    return (1 - b->tokens) / rate;
}
