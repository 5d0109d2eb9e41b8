/* podwirectl status: is the agent up, how the node is wired (node.json),
 * how many endpoints/peers/... it has, whether events are on, and how full
 * every pinned map is. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "datapath.h"
#include "inspect.h"
#include "nodeinfo.h"

static const struct ctl_cmd *const counted[] = {
	&ctl_cmd_endpoints, &ctl_cmd_peers, &ctl_cmd_services, &ctl_cmd_ct,
};
#define N_COUNTED (sizeof(counted) / sizeof(counted[0]))

static const char *label(const struct ctl_cmd *cmd)
{
	return cmd->count_label ? cmd->count_label : cmd->name;
}

struct status {
	bool have_node;
	struct pw_nodeinfo ni;
	char node_err[300];
	long counts[N_COUNTED];
	bool have_settings;
	struct pw_settings settings;
	int monitor_pid;           /* a podwirectl monitor holding the event stream, 0 = none */
	struct pw_map_fill *maps;
	size_t n_maps;
	int gate;                  /* pw_pol_gate's value, -1 = no such map */
	int n_np;                  /* NodePort addresses (pw_np_addrs), -1 = no such map */
	uint32_t np[PW_MAX_NP_ADDRS];
};

/* pw_np_addrs: the node's addresses that serve NodePorts, sorted. */
static int np_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void gather_np(struct ctl *c, struct status *s)
{
	struct pw_ip4 key, next, *prev = NULL;
	int fd = pw_map_open(&c->paths, PW_MAP_NP_ADDRS);

	s->n_np = -1;
	if (fd < 0)
		return;
	s->n_np = 0;
	while (s->n_np < PW_MAX_NP_ADDRS && bpf_map_get_next_key(fd, prev, &next) == 0) {
		s->np[s->n_np++] = pw_ip4_from_bytes(next.addr);
		key = next;
		prev = &key;
	}
	close(fd);
	qsort(s->np, (size_t)s->n_np, sizeof(s->np[0]), np_cmp);
}

static int gather(struct ctl *c, struct status *s)
{
	int fd, err;

	memset(s, 0, sizeof(*s));
	s->have_node = pw_nodeinfo_read(c->paths.node_file, &s->ni, s->node_err, sizeof(s->node_err)) == 0;
	for (size_t i = 0; i < N_COUNTED; i++)
		s->counts[i] = counted[i]->count(c);
	fd = pw_map_open(&c->paths, PW_MAP_SETTINGS);
	if (fd >= 0) {
		__u32 zero = 0;

		s->have_settings = bpf_map_lookup_elem(fd, &zero, &s->settings) == 0;
		close(fd);
	}
	s->monitor_pid = ctl_monitor_holder(c);
	s->gate = -1;
	fd = pw_map_open(&c->paths, PW_MAP_POL_GATE);
	if (fd >= 0) {
		__u32 zero = 0, v;

		if (bpf_map_lookup_elem(fd, &zero, &v) == 0)
			s->gate = (int)v;
		close(fd);
	}
	gather_np(c, s);
	err = pw_inspect_maps(c->paths.pin_dir, &s->maps, &s->n_maps);
	if (err)
		return ctl_fail(CTL_ERROR, "cannot list the maps in %s: %s", c->paths.pin_dir, strerror(-err));
	return CTL_OK;
}

static double fill_pct(const struct pw_map_fill *m)
{
	return m->entries >= 0 && m->max_entries ? 100.0 * (double)m->entries / m->max_entries : -1;
}

static void events_text(const struct status *s, char *buf, size_t len)
{
	char addr[16];

	if (!s->have_settings) {
		snprintf(buf, len, "unknown (cannot read " PW_MAP_SETTINGS ")");
		return;
	}
	ctl_fmt_ip(s->settings.trace_addr, addr);
	snprintf(buf, len, "drops %s, traces %s%s%s", s->settings.drop_events ? "on" : "off",
		 s->settings.trace_events ? "on" : "off",
		 s->settings.trace_events && strcmp(addr, "0.0.0.0") ? " for " : "",
		 s->settings.trace_events && strcmp(addr, "0.0.0.0") ? addr : "");
}

/* The datapath skips the policy maps while the gate is open; closed it
 * asks them for every packet (some pod policed, or the agent has not
 * written them yet). */
static const char *gate_text(const struct status *s)
{
	if (s->gate < 0)
		return "unknown (no " PW_MAP_POL_GATE " in this datapath)";
	if (s->gate == PW_POL_GATE_OPEN)
		return "gate open: no pod of this node is policed, packets skip the policy maps";
	return "gate closed: every packet asks " PW_MAP_POL_EP " (a pod is policed, or the agent has not written yet)";
}

static int print_table(struct ctl *c, const struct status *s)
{
	char buf[256], cidr[PW_CIDR_STRLEN], gw[PW_IP4_STRLEN];
	struct ctl_table *t;

	printf("instance:   %s (pins in %s)\n", c->paths.instance, c->paths.pin_dir);
	if (c->agent_running)
		printf("agent:      running (pid %d)\n", c->agent_pid);
	else
		printf("agent:      not running (reading pinned maps directly)\n");
	if (s->have_node) {
		pw_cidr_format(&s->ni.pod_cidr, cidr);
		pw_ip4_format(s->ni.gateway, gw);
		printf("node:       %s\n", s->ni.node);
		printf("pod CIDR:   %s (gateway %s, pod MTU %d)\n", cidr, gw, s->ni.mtu);
		printf("routing:    %s\n", s->ni.routing[0] ? s->ni.routing : "unknown (not in node.json)");
		printf("attach:     %s (uplink), %s (pods)\n", pw_attach_mode_name(s->ni.attach),
		       pw_attach_mode_name(s->ni.pod_attach));
		printf("uplink:     %s\n", s->ni.uplink[0] ? s->ni.uplink : "unknown");
	} else {
		printf("node:       unknown (%s)\n", s->node_err);
	}
	for (size_t i = 0; i < N_COUNTED; i++) {
		long n = s->counts[i];

		if (n >= 0)
			snprintf(buf, sizeof(buf), "%ld", n);
		else if (n == -ENOTSUP)
			snprintf(buf, sizeof(buf), "- (not in this datapath yet)");
		else
			snprintf(buf, sizeof(buf), "? (%s)", strerror((int)-n));
		char lbl[32];

		snprintf(lbl, sizeof(lbl), "%s:", label(counted[i]));
		printf("%-11s %s\n", lbl, buf);
	}
	if (s->n_np >= 0) {
		printf("nodeports:  ");
		for (int i = 0; i < s->n_np; i++) {
			char ip[PW_IP4_STRLEN];

			pw_ip4_format(s->np[i], ip);
			printf("%s%s", i ? " " : "", ip);
		}
		printf("%s\n", s->n_np ? "" : "none (no address of the node serves NodePorts)");
	}
	events_text(s, buf, sizeof(buf));
	printf("events:     %s", buf);
	if (s->monitor_pid)
		printf(" (podwirectl monitor, pid %d)\n", s->monitor_pid);
	else if (s->have_settings && (s->settings.drop_events || s->settings.trace_events))
		printf(" (no monitor runs: left on by a killed one; any monitor run turns them off on exit)\n");
	else
		printf("\n");
	printf("policy:     %s\n", gate_text(s));
	if (!c->in_agent_netns)
		printf("note:       interface names may not resolve: this is not the node's network namespace%s\n",
		       c->agent_running ? " (could not join the agent's)" : " (run podwirectl in it)");

	printf("\n");
	t = ctl_table_new(6, "MAP", "TYPE", "ENTRIES", "MAX", "FILL", "BTF");
	for (size_t i = 0; i < s->n_maps; i++) {
		const struct pw_map_fill *m = &s->maps[i];
		char entries[24], max[24], fill[16], btf[16];
		double pct = fill_pct(m);

		snprintf(entries, sizeof(entries), m->entries >= 0 ? "%ld" : "-", m->entries);
		snprintf(max, sizeof(max), m->type == BPF_MAP_TYPE_RINGBUF ? "%u bytes" : "%u", m->max_entries);
		if (pct >= 0)
			snprintf(fill, sizeof(fill), pct < 1 && pct > 0 ? "%.2f%%" : "%.1f%%", pct);
		else
			snprintf(fill, sizeof(fill), "-");
		snprintf(btf, sizeof(btf), m->btf_id ? "yes" : "no");
		ctl_table_add(t, m->name, pw_map_type_name(m->type), entries, max, fill, btf);
	}
	ctl_table_print(t, stdout);
	return CTL_OK;
}

static cJSON *node_json(const struct status *s)
{
	char cidr[PW_CIDR_STRLEN], gw[PW_IP4_STRLEN];
	cJSON *n;

	if (!s->have_node)
		return cJSON_CreateNull();
	n = cJSON_CreateObject();
	pw_cidr_format(&s->ni.pod_cidr, cidr);
	pw_ip4_format(s->ni.gateway, gw);
	cJSON_AddStringToObject(n, "name", s->ni.node);
	cJSON_AddStringToObject(n, "podCIDR", cidr);
	cJSON_AddStringToObject(n, "gateway", gw);
	cJSON_AddNumberToObject(n, "mtu", s->ni.mtu);
	cJSON_AddStringToObject(n, "attach", pw_attach_mode_name(s->ni.attach));
	cJSON_AddStringToObject(n, "podAttach", pw_attach_mode_name(s->ni.pod_attach));
	if (s->ni.routing[0])
		cJSON_AddStringToObject(n, "routing", s->ni.routing);
	else
		cJSON_AddNullToObject(n, "routing");
	cJSON_AddStringToObject(n, "uplink", s->ni.uplink);
	return n;
}

static int print_json(struct ctl *c, const struct status *s)
{
	cJSON *doc = cJSON_CreateObject(), *agent, *counts, *ev, *maps;
	char addr[16];

	cJSON_AddStringToObject(doc, "instance", c->paths.instance);
	cJSON_AddStringToObject(doc, "pinDir", c->paths.pin_dir);
	agent = cJSON_AddObjectToObject(doc, "agent");
	cJSON_AddBoolToObject(agent, "running", c->agent_running);
	if (c->agent_running && c->agent_pid)
		cJSON_AddNumberToObject(agent, "pid", c->agent_pid);
	cJSON_AddItemToObject(doc, "node", node_json(s));
	if (s->n_np >= 0) {
		cJSON *np = cJSON_AddArrayToObject(doc, "nodePortAddresses");

		for (int i = 0; i < s->n_np; i++) {
			char ip[PW_IP4_STRLEN];

			pw_ip4_format(s->np[i], ip);
			cJSON_AddItemToArray(np, cJSON_CreateString(ip));
		}
	} else {
		cJSON_AddNullToObject(doc, "nodePortAddresses");
	}
	counts = cJSON_AddObjectToObject(doc, "counts");
	for (size_t i = 0; i < N_COUNTED; i++) {
		if (s->counts[i] >= 0)
			cJSON_AddNumberToObject(counts, label(counted[i]), (double)s->counts[i]);
		else
			cJSON_AddNullToObject(counts, label(counted[i]));   /* not in this datapath, or unreadable */
	}
	ev = cJSON_AddObjectToObject(doc, "events");
	cJSON_AddBoolToObject(ev, "drops", s->have_settings && s->settings.drop_events);
	cJSON_AddBoolToObject(ev, "traces", s->have_settings && s->settings.trace_events);
	ctl_fmt_ip(s->settings.trace_addr, addr);
	cJSON_AddStringToObject(ev, "traceAddr", addr);
	cJSON_AddNumberToObject(ev, "traceSample", s->settings.trace_sample);
	if (s->monitor_pid)
		cJSON_AddNumberToObject(ev, "monitorPid", s->monitor_pid);
	else
		cJSON_AddNullToObject(ev, "monitorPid");
	if (s->gate >= 0)
		cJSON_AddStringToObject(doc, "policyGate", s->gate == PW_POL_GATE_OPEN ? "open" : "closed");
	else
		cJSON_AddNullToObject(doc, "policyGate");
	maps = cJSON_AddArrayToObject(doc, "maps");
	for (size_t i = 0; i < s->n_maps; i++) {
		const struct pw_map_fill *m = &s->maps[i];
		cJSON *o = cJSON_CreateObject();
		double pct = fill_pct(m);

		cJSON_AddStringToObject(o, "name", m->name);
		cJSON_AddStringToObject(o, "type", pw_map_type_name(m->type));
		if (m->entries >= 0)
			cJSON_AddNumberToObject(o, "entries", (double)m->entries);
		else
			cJSON_AddNullToObject(o, "entries");
		cJSON_AddNumberToObject(o, "maxEntries", m->max_entries);
		if (pct >= 0)
			cJSON_AddNumberToObject(o, "fill", pct / 100.0);
		else
			cJSON_AddNullToObject(o, "fill");
		cJSON_AddNumberToObject(o, "id", m->id);
		cJSON_AddNumberToObject(o, "btfId", m->btf_id);
		cJSON_AddItemToArray(maps, o);
	}
	return ctl_json_print(doc);
}

static int run_status(struct ctl *c, int argc, char **argv)
{
	struct status s;
	int ret;

	(void)argv;
	if (argc > 1)
		return ctl_usage(&ctl_cmd_status);
	ret = gather(c, &s);
	if (!ret)
		ret = c->json ? print_json(c, &s) : print_table(c, &s);
	free(s.maps);
	return ret;
}

const struct ctl_cmd ctl_cmd_status = {
	.name = "status",
	.args = "",
	.summary = "agent, node, counts, events, map fill levels",
	.run = run_status,
};
