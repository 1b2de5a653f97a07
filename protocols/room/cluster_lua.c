/* The Lua scripts the cluster runs in Redis (EVALSHA; loaded with SCRIPT
 * LOAD on every connect, so a Redis that restarted has them again). Each
 * is one atomic step, which is what makes Redis the room's sequencer:
 * the offset, the stream entry and the publication of a line happen
 * together or not at all.
 *
 * A room's keys share the hash tag {KEY}: pcr:{KEY}:m is a hash with the
 * offset (o) and the epoch (e), pcr:{KEY}:s the stream of its last
 * `history` lines under IDs OFFSET-0, and pcr:{KEY}:c its channel. The
 * epoch is made from Redis's clock the first time a room is seen; a
 * Redis that lost its data makes a new one, which is how nodes tell "the
 * offsets started again" from "I missed some". */
#include "protocols/room/cluster.h"

#define EPOCH                                                                 \
    "local e = redis.call('HGET', KEYS[1], 'e')\n"                           \
    "if not e then\n"                                                         \
    "  local t = redis.call('TIME')\n"                                        \
    "  e = t[1] .. string.format('%06d', tonumber(t[2]))\n"                   \
    "  redis.call('HSET', KEYS[1], 'e', e)\n"                                 \
    "end\n"

const char *const cl_script_source[CL_SCRIPTS] = {
    /* KEYS meta stream; ARGV history channel payload...: one or more
     * lines of the room, numbered in a row, each its own stream entry,
     * and published as one message, "FIRST EPOCH COUNT LEN,LEN,...
     * PAYLOADPAYLOAD...", so that a batch costs Redis one write per
     * subscribed node, not one per line (cluster_order.c splits it). */
    [CL_PUBLISH] = EPOCH
    "local n = #ARGV - 2\n"
    "local o = redis.call('HINCRBY', KEYS[1], 'o', n)\n"
    "local first = o - n + 1\n"
    "local lens = {}\n"
    "for i = 1, n do\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1],"
    " string.format('%d-0', first + i - 1), 'd', ARGV[i + 2])\n"
    "  lens[i] = #ARGV[i + 2]\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[2], string.format('%d ', first) .. e .. ' '"
    " .. n .. ' ' .. table.concat(lens, ',') .. ' ' .."
    " table.concat(ARGV, '', 3))\n"
    "return {o, e}\n",
    /* KEYS meta: where the room is now. */
    [CL_META] = EPOCH
    "local o = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')\n"
    "return {o, e}\n",
    /* KEYS nick [old]; ARGV value ttl_ms. SET NX PX, or a refresh of our
     * own. A rename names the old nick too: it is freed in the same step
     * (if still ours), so it is free on every node before the renamed
     * user is told, not some time after. */
    [CL_CLAIM] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and v ~= ARGV[1] then return 0 end\n"
    "if v then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "else\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "end\n"
    "if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "return 1\n",
    /* KEYS nick; ARGV value: frees a nick only if it is still ours. */
    [CL_RELEASE] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n",
    /* KEYS nick; ARGV node line: to the worker holding the nick, on its
     * channel pcw:NODE:WORKER, as "ID\tLINE". */
    [CL_TELL] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "local node, run, worker, id ="
    " string.match(v, '^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$')\n"
    "if not node then return 0 end\n"
    "if node == ARGV[1] then return -1 end\n"
    "return redis.call('PUBLISH', 'pcw:' .. node .. ':' .. worker,"
    " id .. '\t' .. ARGV[2])\n",
    /* KEYS pcm:{ROOM}:NODE pcm:{ROOM} pcl:NODE pcl; ARGV field value
     * node ttl_ms room count. A node's members of a room, the nodes with
     * members of it, a node's rooms with their counts, the nodes: each
     * node's own keys expire unless it renews them. */
    [CL_MEMBER] =
    "if ARGV[1] ~= '' then\n"
    "  if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "  else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "redis.call('SADD', KEYS[2], ARGV[3])\n"
    "if ARGV[6] == '' then redis.call('HDEL', KEYS[3], ARGV[5])\n"
    "else redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end\n"
    "redis.call('PEXPIRE', KEYS[3], ARGV[4])\n"
    "redis.call('SADD', KEYS[4], ARGV[3])\n"
    "return 1\n",
    /* KEYS pcm:{ROOM}; ARGV pcm:{ROOM}: node. The member lines of the
     * other nodes; a node whose keys expired (dead) is forgotten. (Keys
     * built here: for a single Redis, not Redis Cluster.) */
    [CL_NAMES] =
    "local out = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if n ~= ARGV[2] then\n"
    "    local v = redis.call('HVALS', ARGV[1] .. n)\n"
    "    if #v == 0 then redis.call('SREM', KEYS[1], n) end\n"
    "    for _, x in ipairs(v) do out[#out + 1] = x end\n"
    "  end\n"
    "end\n"
    "return out\n",
    /* KEYS pcl; ARGV node: the other nodes' rooms. */
    [CL_ROOMS] =
    "local out = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if n ~= ARGV[1] then\n"
    "    local v = redis.call('HGETALL', 'pcl:' .. n)\n"
    "    if #v == 0 then redis.call('SREM', KEYS[1], n) end\n"
    "    for _, x in ipairs(v) do out[#out + 1] = x end\n"
    "  end\n"
    "end\n"
    "return out\n",
};
