/* podwirectl ct: conntrack entries, filterable by address. The datapath has
 * no conntrack yet (issue 4): this file is the whole command, so conntrack
 * replaces it with the real listing (and its count for `status`) without
 * touching any other file. */
#include <errno.h>
#include "ctl.h"

static int run_ct(struct ctl *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	return ctl_fail(CTL_UNSUPPORTED, "no services/conntrack maps in this datapath yet");
}

static long count_ct(const struct ctl *c)
{
	(void)c;
	return -ENOTSUP;
}

const struct ctl_cmd ctl_cmd_ct = {
	.name = "ct",
	.args = "[--addr IP]",
	.summary = "conntrack entries (not in this datapath yet)",
	.run = run_ct,
	.count = count_ct,
	.count_label = "conntrack",
};
