/* Flood control: a token bucket per connection. A line costs one token;
 * tokens refill at `rate` per second up to `burst`. A line that finds the
 * bucket empty waits (the connection's input is held), it is never
 * dropped. Worker-local, like the connection it belongs to. */
#ifndef PC_ROOM_BUCKET_H
#define PC_ROOM_BUCKET_H

struct room_bucket {
    double tokens;
    double stamp; /* when tokens was last brought up to date */
};

/* A full bucket at time now. */
void room_bucket_init(struct room_bucket *b, double now, double burst);

/* Takes a token at time `now` and returns 0, or takes nothing and returns
 * the seconds until a token will be there. rate <= 0 means no limit. */
double room_bucket_take(struct room_bucket *b, double now, double rate,
                        double burst);

#endif
