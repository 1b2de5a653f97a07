/* The room core's metrics: what the homes of this worker hold and order
 * (rooms, members, lines), and what each face listener's users received
 * (deliveries) or were held or cut for. Each worker registers and writes
 * its own instances; the exposition sums them over workers. */
#include "protocols/room/core.h"

static const char *const lines_to[] = {"room", "nick", NULL};

static const struct pc_metric_def rooms_def = {
    .name = "percore_room_rooms",
    .type = PC_METRIC_GAUGE,
    .help = "Rooms that exist now (every face's, chat and irc)",
};
static const struct pc_metric_def members_def = {
    .name = "percore_room_members",
    .type = PC_METRIC_GAUGE,
    .help = "Memberships of rooms now (a user in two rooms counts twice)",
};
static const struct pc_metric_def lines_def = {
    .name = "percore_room_lines_total",
    .type = PC_METRIC_COUNTER,
    .help = "Lines said, to a room (ordered by its home) or to a nick",
    .label = "to",
    .values = lines_to,
};
static const struct pc_metric_def deliveries_def = {
    .name = "percore_room_deliveries_total",
    .type = PC_METRIC_COUNTER,
    .help = "Events (lines, joins, parts, ...) written to a member",
};
static const struct pc_metric_def cutoffs_def = {
    .name = "percore_room_sendq_cutoffs_total",
    .type = PC_METRIC_COUNTER,
    .help = "Users cut off because their output passed the sendq",
};
static const struct pc_metric_def flood_def = {
    .name = "percore_room_flood_holds_total",
    .type = PC_METRIC_COUNTER,
    .help = "Times flood control held a user's lines (delayed, not lost)",
};

void room_metrics_init(struct room_core *core, struct pc_worker *w)
{
    core->rooms = pc_metric_new(w, &rooms_def, NULL);
    core->members = pc_metric_new(w, &members_def, NULL);
    core->lines = pc_metric_new(w, &lines_def, NULL);
}

void room_metrics_listener(struct pc_worker *w, const struct pc_section *cfg,
                           struct room_counters *counters)
{
    counters->deliveries = pc_metric_new(w, &deliveries_def, cfg);
    counters->cutoffs = pc_metric_new(w, &cutoffs_def, cfg);
    counters->flood_holds = pc_metric_new(w, &flood_def, cfg);
}
