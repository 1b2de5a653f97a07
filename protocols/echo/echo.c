/* echo: every byte back, in order (RFC 862 over TCP). Back-pressure comes
 * from the framework: once the client stops reading, output reaches the
 * high watermark and the framework stops reading from it. */
#include <percore/percore.h>

static size_t echo_data(struct pc_conn *c, const char *data, size_t len)
{
    pc_conn_write(c, data, len);
    return len;
}

const struct pc_proto pc_echo_proto = {
    .abi = PC_PROTO_ABI,
    .name = "echo",
    .on_data = echo_data,
};
