/* podwirectl nat: the translations of masquerade (pw_snat), one row per
 * flow, read from the flow's reply entry: the pod (or the node, for its
 * own flows), the node IP and port it leaves from, the remote, the age
 * since the last packet and what kind of translation it is. --addr IP
 * keeps the flows naming IP (pod, node or remote). */
#include <stdlib.h>
#include <string.h>
#include "ctl.h"
#include "datapath.h"
#include "inspect.h"

struct nat_row {
	struct pw_nat_key key;      /* the reply key: remote -> node IP:port */
	struct pw_nat_entry e;      /* -> the pod (or node) address and port */
};

static int cmp_row(const void *a, const void *b)
{
	const struct nat_row *x = a, *y = b;
	int c = memcmp(x->e.addr, y->e.addr, 4);

	if (c)
		return c;
	if (x->e.port != y->e.port)
		return x->e.port < y->e.port ? -1 : 1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static bool matches(const struct nat_row *r, const uint8_t addr[4])
{
	return memcmp(r->e.addr, addr, 4) == 0 || memcmp(r->key.saddr, addr, 4) == 0 ||
	       memcmp(r->key.daddr, addr, 4) == 0;
}

/* "masquerade", "nodeport", "inbound" (replies of a flow a remote opened to
 * a pod's own address: not translated) or "node"; a node flow moved off the port the
 * kernel gave it (a pod flow held it) is "node,moved". */
static const char *kind(const struct nat_row *r)
{
	if (r->e.flags & PW_NAT_F_NODEPORT)
		return "nodeport";
	if (r->e.flags & PW_NAT_F_INBOUND)
		return "inbound";
	if (r->e.flags & PW_NAT_F_HOST)
		return r->e.port == r->key.dport ? "node" : "node,moved";
	return "masquerade";
}

static void endpoint(const uint8_t ip[4], uint16_t port, char buf[24])
{
	char s[16];

	ctl_fmt_ip(ip, s);
	snprintf(buf, 24, "%s:%u", s, port);
}

static cJSON *row_json(const struct nat_row *r, uint64_t now)
{
	cJSON *o = cJSON_CreateObject();
	char ip[16], pb[8];

	cJSON_AddStringToObject(o, "protocol", ctl_proto_name(r->key.proto, pb));
	ctl_fmt_ip(r->e.addr, ip);
	cJSON_AddStringToObject(o, "from", ip);
	cJSON_AddNumberToObject(o, "fromPort", r->e.port);
	ctl_fmt_ip(r->key.daddr, ip);
	cJSON_AddStringToObject(o, "as", ip);
	cJSON_AddNumberToObject(o, "asPort", r->key.dport);
	ctl_fmt_ip(r->key.saddr, ip);
	cJSON_AddStringToObject(o, "remote", ip);
	cJSON_AddNumberToObject(o, "remotePort", r->key.sport);
	cJSON_AddNumberToObject(o, "ageSeconds", (double)(long long)(ctl_age_s(r->e.last_seen_ns, now) * 1000) / 1000);
	cJSON_AddStringToObject(o, "kind", kind(r));
	return o;
}

static void row_add(struct ctl_table *t, const struct nat_row *r, uint64_t now)
{
	char from[24], as[24], remote[24], pb[8], age[24];

	endpoint(r->e.addr, r->e.port, from);
	endpoint(r->key.daddr, r->key.dport, as);
	endpoint(r->key.saddr, r->key.sport, remote);
	snprintf(age, sizeof(age), "%.1fs", ctl_age_s(r->e.last_seen_ns, now));
	ctl_table_add(t, ctl_proto_name(r->key.proto, pb), from, as, remote, age, kind(r));
}

/* A flow a remote opened to a pod's own address has only its replies'
 * egress entry (nothing translated): shown as the pod "AS" itself. */
static struct nat_row inbound_row(const struct pw_nat_key *k, const struct pw_nat_entry *e)
{
	struct nat_row r = { .e = *e };

	memcpy(r.key.saddr, k->daddr, 4);
	memcpy(r.key.daddr, k->saddr, 4);
	r.key.sport = k->dport;
	r.key.dport = k->sport;
	r.key.proto = k->proto;
	r.key.dir = PW_DIR_INGRESS;
	return r;
}

static int run_nat(struct ctl *c, int argc, char **argv)
{
	struct pw_nat_key *keys = NULL;
	struct pw_nat_entry *vals = NULL;
	struct nat_row *rows = NULL;
	uint8_t addr[4];
	size_t n = 0, m = 0;
	uint64_t now;
	bool filter;
	int ret;

	ret = ctl_parse_addr_filter(&ctl_cmd_nat, argc, argv, &filter, addr);
	if (ret)
		return ret;
	ret = ctl_dump_pinned(c, PW_MAP_SNAT, "masquerade", sizeof(*keys), sizeof(*vals), (void **)&keys,
			      (void **)&vals, &n, &now);
	if (ret)
		return ret;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		ret = ctl_fail(CTL_ERROR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (vals[i].flags & PW_NAT_F_INBOUND)
			rows[m] = inbound_row(&keys[i], &vals[i]);
		else if (keys[i].dir != PW_DIR_INGRESS)
			continue; /* every translated flow has one reply entry: that is its row */
		else
			rows[m] = (struct nat_row){ .key = keys[i], .e = vals[i] };
		if (!filter || matches(&rows[m], addr))
			m++;
	}
	qsort(rows, m, sizeof(*rows), cmp_row);
	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < m; i++)
			cJSON_AddItemToArray(arr, row_json(&rows[i], now));
		ret = ctl_json_print(arr);
	} else {
		struct ctl_table *t = ctl_table_new(6, "PROTO", "FROM", "AS", "REMOTE", "AGE", "KIND");

		for (size_t i = 0; i < m; i++)
			row_add(t, &rows[i], now);
		ctl_table_print(t, stdout);
		ret = CTL_OK;
	}
out:
	free(rows);
	free(keys);
	free(vals);
	return ret;
}

const struct ctl_cmd ctl_cmd_nat = {
	.name = "nat",
	.args = "[--addr IP]",
	.summary = "masquerade translations, one row per flow: who, as which node port, to which remote",
	.run = run_nat,
};
