/* podwirectl metrics: the datapath's per-CPU counters (pw_metrics) summed:
 * forwarded / passed to the host / ARP answered, and every drop reason, per
 * direction, in packets and bytes. */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>
#include "ctl.h"
#include "inspect.h"

static const char *outcome_text(uint32_t slot)
{
	switch (slot) {
	case PW_METRIC_FORWARDED: return "redirected by the datapath (into a local pod)";
	case PW_METRIC_PASSED:    return "handed to the host stack";
	case PW_METRIC_ARP_REPLY: return "ARP request for the gateway answered in BPF";
	case PW_METRIC_MASQUERADED: return "source rewritten to the node IP (already counted as passed)";
	}
	return "";
}

static const struct pw_counter *dir_counter(const struct pw_metric *m, int dir)
{
	return dir == PW_DIR_INGRESS ? &m->ingress : &m->egress;
}

static cJSON *row_json(uint32_t slot, enum pw_slot_kind kind, const char *name, int dir,
		       const struct pw_counter *cnt)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "kind", kind == PW_SLOT_DROP ? "drop" : "outcome");
	cJSON_AddStringToObject(o, "name", name);
	if (kind == PW_SLOT_DROP)
		cJSON_AddNumberToObject(o, "code", -(int)slot);
	cJSON_AddNumberToObject(o, "slot", slot);
	cJSON_AddStringToObject(o, "direction", pw_dir_name(dir));
	cJSON_AddNumberToObject(o, "packets", (double)cnt->packets);
	cJSON_AddNumberToObject(o, "bytes", (double)cnt->bytes);
	return o;
}

static int run_metrics(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct pw_metric m[PW_METRIC_MAX];
	struct ctl_table *t = NULL;
	cJSON *doc = NULL, *rows = NULL;
	bool all = false;
	int fd, err, opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "a", longopts, NULL)) != -1) {
		if (opt != 'a')
			return ctl_usage(&ctl_cmd_metrics);
		all = true;
	}
	if (optind < argc)
		return ctl_usage(&ctl_cmd_metrics);
	fd = ctl_map_open(c, PW_MAP_METRICS);
	if (fd < 0)
		return CTL_ERROR;
	err = pw_inspect_metrics(fd, m);
	close(fd);
	if (err)
		return ctl_fail(CTL_ERROR, "cannot read " PW_MAP_METRICS ": %s", strerror(-err));

	if (c->json) {
		doc = cJSON_CreateObject();
		rows = cJSON_AddArrayToObject(doc, "counters");
	} else {
		t = ctl_table_new(6, "KIND", "NAME", "DIRECTION", "PACKETS", "BYTES", "MEANING");
	}
	/* Outcomes first (forwarded, passed, arp-reply), then drops by code. */
	static const uint32_t outcomes[] = { PW_METRIC_FORWARDED, PW_METRIC_PASSED, PW_METRIC_ARP_REPLY,
					     PW_METRIC_MASQUERADED };
	uint32_t order[PW_METRIC_MAX];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		order[n++] = outcomes[i];
	for (uint32_t slot = 1; slot < PW_DROP_REASON_COUNT; slot++)
		order[n++] = slot;
	for (size_t i = 0; i < n; i++) {
		uint32_t slot = order[i];
		const char *name;
		enum pw_slot_kind kind = pw_metric_slot_info(slot, &name);

		for (int dir = PW_DIR_EGRESS; dir <= PW_DIR_INGRESS; dir++) {
			const struct pw_counter *cnt = dir_counter(&m[slot], dir);
			char pk[24], by[24];

			if (kind == PW_SLOT_UNUSED || (!all && !cnt->packets))
				continue;
			if (c->json) {
				cJSON_AddItemToArray(rows, row_json(slot, kind, name, dir, cnt));
				continue;
			}
			snprintf(pk, sizeof(pk), "%llu", (unsigned long long)cnt->packets);
			snprintf(by, sizeof(by), "%llu", (unsigned long long)cnt->bytes);
			ctl_table_add(t, kind == PW_SLOT_DROP ? "drop" : "outcome", name, pw_dir_name(dir), pk, by,
				      kind == PW_SLOT_DROP ? pw_drop_reason_text(-(int)slot) : outcome_text(slot));
		}
	}
	if (c->json)
		return ctl_json_print(doc);
	ctl_table_print(t, stdout);
	if (!all)
		printf("(counters that are zero are not shown: --all shows every one)\n");
	return CTL_OK;
}

const struct ctl_cmd ctl_cmd_metrics = {
	.name = "metrics",
	.args = "[--all]",
	.summary = "forward/drop counters per reason and direction",
	.run = run_metrics,
};
