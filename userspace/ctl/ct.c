/* podwirectl ct: conntrack entries of load-balanced flows (pw_ct), two per
 * flow (forward: client -> frontend; reply: backend -> client), with the
 * state in words, the age since the last packet, the service frontend and
 * the backend. --addr IP keeps the entries naming IP anywhere (client,
 * frontend, backend). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "cidr.h"
#include "datapath.h"
#include "inspect.h"

struct ct_row {
	struct pw_ct_key key;
	struct pw_ct_entry e;
	bool have_backend, have_frontend;
	struct pw_backend backend;
	uint8_t fe_addr[4];
	uint16_t fe_port;
};

static int cmp_row(const void *a, const void *b)
{
	const struct ct_row *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, offsetof(struct pw_ct_key, dir));

	if (c)
		return c;
	return (int)x->key.dir - (int)y->key.dir;
}

/* Frontend and backend of a row, from pw_revnat / pw_backends (the node
 * address and port of NodePort flows from the entry itself). */
static void resolve(struct ct_row *r, int backends_fd, int revnat_fd)
{
	struct pw_revnat rn;

	r->have_backend = backends_fd >= 0 &&
			  bpf_map_lookup_elem(backends_fd, &r->e.backend_id, &r->backend) == 0;
	if (r->e.flags & PW_CT_F_NODEPORT) {
		/* the node address the client used, kept in both entries */
		memcpy(r->fe_addr, r->e.fe_addr, 4);
		r->fe_port = r->e.fe_port;
		r->have_frontend = true;
		return;
	}
	if (revnat_fd >= 0 && bpf_map_lookup_elem(revnat_fd, &r->e.svc_id, &rn) == 0) {
		memcpy(r->fe_addr, rn.addr, 4);
		r->fe_port = rn.port;
		r->have_frontend = true;
	}
}

static bool matches(const struct ct_row *r, const uint8_t addr[4])
{
	return memcmp(r->key.saddr, addr, 4) == 0 || memcmp(r->key.daddr, addr, 4) == 0 ||
	       (r->have_backend && memcmp(r->backend.addr, addr, 4) == 0) ||
	       (r->have_frontend && memcmp(r->fe_addr, addr, 4) == 0);
}

static void flags_text(uint8_t f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", f & PW_CT_F_NODEPORT ? "nodeport," : "", f & PW_CT_F_HAIRPIN ? "hairpin," : "",
		 f & PW_CT_F_SNAT ? "snat," : "", f ? "" : "-");
	if (buf[0] && buf[strlen(buf) - 1] == ',')
		buf[strlen(buf) - 1] = '\0';
}

static cJSON *row_json(const struct ct_row *r, uint64_t now)
{
	cJSON *o = cJSON_CreateObject(), *fl;
	char ip[16], pb[8], ap[32];

	cJSON_AddStringToObject(o, "direction", r->key.dir == PW_CT_REPLY ? "reply" : "forward");
	cJSON_AddStringToObject(o, "protocol", ctl_proto_name(r->key.proto, pb));
	ctl_fmt_ip(r->key.saddr, ip);
	cJSON_AddStringToObject(o, "src", ip);
	cJSON_AddNumberToObject(o, "srcPort", r->key.sport);
	ctl_fmt_ip(r->key.daddr, ip);
	cJSON_AddStringToObject(o, "dst", ip);
	cJSON_AddNumberToObject(o, "dstPort", r->key.dport);
	cJSON_AddStringToObject(o, "state", pw_ct_state_name(r->e.state));
	cJSON_AddNumberToObject(o, "ageSeconds", (double)(long long)(ctl_age_s(r->e.last_seen_ns, now) * 1000) / 1000);
	cJSON_AddNumberToObject(o, "serviceId", r->e.svc_id);
	if (r->have_frontend) {
		ctl_fmt_ip(r->fe_addr, ip);
		snprintf(ap, sizeof(ap), "%s:%u", ip, r->fe_port);
		cJSON_AddStringToObject(o, "frontend", ap);
	} else {
		cJSON_AddNullToObject(o, "frontend");
	}
	cJSON_AddNumberToObject(o, "backendId", r->e.backend_id);
	if (r->have_backend) {
		ctl_fmt_ip(r->backend.addr, ip);
		snprintf(ap, sizeof(ap), "%s:%u", ip, r->backend.port);
		cJSON_AddStringToObject(o, "backend", ap);
	} else {
		cJSON_AddNullToObject(o, "backend");
	}
	cJSON_AddNumberToObject(o, "tcpFlags", r->e.tcp_flags);
	fl = cJSON_AddArrayToObject(o, "flags");
	if (r->e.flags & PW_CT_F_NODEPORT)
		cJSON_AddItemToArray(fl, cJSON_CreateString("nodeport"));
	if (r->e.flags & PW_CT_F_HAIRPIN)
		cJSON_AddItemToArray(fl, cJSON_CreateString("hairpin"));
	if (r->e.flags & PW_CT_F_SNAT)
		cJSON_AddItemToArray(fl, cJSON_CreateString("snat"));
	return o;
}

static void row_add(struct ctl_table *t, const struct ct_row *r, uint64_t now)
{
	char src[24], dst[24], ip[16], pb[8], age[24], fe[24], be[24], fl[32];

	ctl_fmt_ip(r->key.saddr, ip);
	snprintf(src, sizeof(src), "%s:%u", ip, r->key.sport);
	ctl_fmt_ip(r->key.daddr, ip);
	snprintf(dst, sizeof(dst), "%s:%u", ip, r->key.dport);
	snprintf(age, sizeof(age), "%.1fs", ctl_age_s(r->e.last_seen_ns, now));
	if (r->have_frontend) {
		ctl_fmt_ip(r->fe_addr, ip);
		snprintf(fe, sizeof(fe), "%s:%u", ip, r->fe_port);
	} else {
		snprintf(fe, sizeof(fe), "#%u", r->e.svc_id);
	}
	if (r->have_backend) {
		ctl_fmt_ip(r->backend.addr, ip);
		snprintf(be, sizeof(be), "%s:%u", ip, r->backend.port);
	} else {
		snprintf(be, sizeof(be), "#%u(gone)", r->e.backend_id);
	}
	flags_text(r->e.flags, fl, sizeof(fl));
	ctl_table_add(t, r->key.dir == PW_CT_REPLY ? "reply" : "forward", ctl_proto_name(r->key.proto, pb), src, dst,
		      pw_ct_state_name(r->e.state), age, fe, be, fl);
}

static int run_ct(struct ctl *c, int argc, char **argv)
{
	struct pw_ct_key *keys = NULL;
	struct pw_ct_entry *vals = NULL;
	struct ct_row *rows = NULL;
	uint8_t addr[4];
	size_t n = 0, m = 0;
	int backends_fd, revnat_fd, ret;
	uint64_t now;
	bool filter;

	ret = ctl_parse_addr_filter(&ctl_cmd_ct, argc, argv, &filter, addr);
	if (ret)
		return ret;
	ret = ctl_dump_pinned(c, PW_MAP_CT, "conntrack", sizeof(*keys), sizeof(*vals), (void **)&keys,
			      (void **)&vals, &n, &now);
	if (ret)
		return ret;
	backends_fd = pw_map_open(&c->paths, PW_MAP_BACKENDS);
	revnat_fd = pw_map_open(&c->paths, PW_MAP_REVNAT);
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		ret = ctl_fail(CTL_ERROR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rows[m].key = keys[i];
		rows[m].e = vals[i];
		resolve(&rows[m], backends_fd, revnat_fd);
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
		struct ctl_table *t = ctl_table_new(9, "DIR", "PROTO", "SRC", "DST", "STATE", "AGE", "FRONTEND",
						    "BACKEND", "FLAGS");

		for (size_t i = 0; i < m; i++)
			row_add(t, &rows[i], now);
		ctl_table_print(t, stdout);
		ret = CTL_OK;
	}
out:
	free(rows);
	free(keys);
	free(vals);
	if (backends_fd >= 0)
		close(backends_fd);
	if (revnat_fd >= 0)
		close(revnat_fd);
	return ret;
}

static long count_ct(const struct ctl *c)
{
	long n = ctl_count_map(c, PW_MAP_CT);

	return n == -ENOENT ? -ENOTSUP : n;
}

const struct ctl_cmd ctl_cmd_ct = {
	.name = "ct",
	.args = "[--addr IP]",
	.summary = "conntrack entries of load-balanced flows (two per flow), state and age",
	.run = run_ct,
	.count = count_ct,
	.count_label = "conntrack",
};
