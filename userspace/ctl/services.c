/* podwirectl services: service frontends with their backends and states.
 * The datapath has no service maps yet (issue 4): this file is the whole
 * command, so load balancing replaces it with the real listing (and its
 * count for `status`) without touching any other file. */
#include <errno.h>
#include "ctl.h"

static int run_services(struct ctl *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	return ctl_fail(CTL_UNSUPPORTED, "no services/conntrack maps in this datapath yet");
}

static long count_services(const struct ctl *c)
{
	(void)c;
	return -ENOTSUP;
}

const struct ctl_cmd ctl_cmd_services = {
	.name = "services",
	.args = "",
	.summary = "service frontends and backends (not in this datapath yet)",
	.run = run_services,
	.count = count_services,
};
