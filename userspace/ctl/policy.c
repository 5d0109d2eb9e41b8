/* podwirectl policy: for each pod of this node (or one), the policies that
 * select it (from the agent's config) and what the datapath's maps allow it
 * (pw_pol_ep, pw_policy); `policy check SRC DST PORT/PROTO` answers from the
 * maps, in the datapath's own lookup order. docs/policy.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "config.h"
#include "datapath.h"
#include "ipam.h"
#include "policy.h"

struct view {
	struct pw_policy_model m;
	bool have_model;
	struct pw_ipam_entry *pods;   /* this node's, from IPAM */
	int n_pods;
	struct pw_policy_fds fds;
	struct pw_policy_state maps;
	uint32_t node_ip, gateway;
};

static void view_free(struct view *v)
{
	pw_policy_model_free(&v->m);
	free(v->pods);
	pw_policy_state_free(&v->maps);
	for (int *fd = &v->fds.ids; fd <= &v->fds.rules; fd++)
		if (*fd >= 0)
			close(*fd);
}

static void load_pods(const struct ctl *c, struct view *v)
{
	struct pw_cidr any = { 0, 0 };
	struct pw_ipam ipam;

	if (access(c->paths.ipam_dir, F_OK) < 0 || pw_ipam_open(&ipam, c->paths.ipam_dir, &any))
		return;
	v->n_pods = pw_ipam_list(&ipam, &v->pods);
	if (v->n_pods < 0)
		v->n_pods = 0;
	pw_ipam_close(&ipam);
}

/* The model from the agent's config (missing or unreadable: no names,
 * the maps still answer); the maps; this node's pods. */
static int view_load(const struct ctl *c, struct view *v)
{
	struct pw_node_config cfg;
	char path[512], err[512];

	memset(v, 0, sizeof(*v));
	v->fds.ids = v->fds.ep = v->fds.rules = v->fds.gate = -1;
	ctl_config_path(c, path, sizeof(path));
	if (pw_config_load(path, &cfg, err, sizeof(err)) == 0) {
		v->have_model = pw_policy_model_parse(cfg.policy_json, &v->m, err, sizeof(err)) == 0;
		v->node_ip = cfg.ip;
		v->gateway = pw_cidr_gateway(&cfg.pod_cidr);
		pw_config_free(&cfg);
	}
	load_pods(c, v);
	v->fds.ids = pw_map_open(&c->paths, PW_MAP_POL_IDS);
	v->fds.ep = pw_map_open(&c->paths, PW_MAP_POL_EP);
	v->fds.rules = pw_map_open(&c->paths, PW_MAP_POLICY);
	if (v->fds.ids < 0 || v->fds.ep < 0 || v->fds.rules < 0)
		return ctl_fail(CTL_UNSUPPORTED, "this datapath has no NetworkPolicy maps (%s)", PW_MAP_POLICY);
	if (pw_policy_state_read(&v->fds, &v->maps))
		return ctl_fail(CTL_ERROR, "cannot read the policy maps: %s", strerror(errno));
	return CTL_OK;
}

static const struct pw_ipam_entry *pod_by_ip(const struct view *v, uint32_t ip)
{
	for (int i = 0; i < v->n_pods; i++)
		if (v->pods[i].ip == ip)
			return &v->pods[i];
	return NULL;
}

static const struct pw_pod_model *model_pod(const struct view *v, const char *ns, const char *name)
{
	for (int i = 0; i < v->m.n_pods; i++)
		if (!strcmp(v->m.pods[i].ns, ns) && !strcmp(v->m.pods[i].name, name))
			return &v->m.pods[i];
	return NULL;
}

/* A pod given as an IP or NAMESPACE/NAME (this node's, or the model's). */
static int resolve_pod(const struct view *v, const char *arg, uint32_t *ip)
{
	const char *slash = strchr(arg, '/');

	if (pw_ip4_parse(arg, ip) == 0)
		return 0;
	if (!slash)
		return -EINVAL;
	for (int i = 0; i < v->n_pods; i++)
		if (!strncmp(v->pods[i].k8s_namespace, arg, (size_t)(slash - arg)) &&
		    !v->pods[i].k8s_namespace[slash - arg] && !strcmp(v->pods[i].k8s_pod_name, slash + 1)) {
			*ip = v->pods[i].ip;
			return 0;
		}
	for (int i = 0; i < v->m.n_pods; i++)
		if (!strncmp(v->m.pods[i].ns, arg, (size_t)(slash - arg)) && !v->m.pods[i].ns[slash - arg] &&
		    !strcmp(v->m.pods[i].name, slash + 1) && v->m.pods[i].ip) {
			*ip = v->m.pods[i].ip;
			return 0;
		}
	return -ENOENT;
}

static const char *policy_name(const struct view *v, uint32_t id, char *buf, size_t len)
{
	const struct pw_netpol *p = v->have_model ? pw_policy_find_id(&v->m, id) : NULL;

	if (p)
		snprintf(buf, len, "%s/%s", p->ns, p->name);
	else if (id)
		snprintf(buf, len, "#%08x", id);
	else
		snprintf(buf, len, "default deny");
	return buf;
}

/* What an identity stands for: a prefix (CIDR identity), or the pods
 * holding it ("prod/web", "+N" more), from pw_pol_ids and the names. */
static const char *identity_desc(const struct view *v, uint32_t id, char *buf, size_t len)
{
	int shown = 0, more = 0;
	size_t off = 0;

	if (id == PW_ID_ANY)
		return snprintf(buf, len, "any"), buf;
	buf[0] = '\0';
	for (int i = 0; i < v->maps.n_ids; i++) {
		const struct pw_pol_ids_entry *e = &v->maps.ids[i];
		uint32_t ip = pw_ip4_from_bytes(e->k.addr);
		char ipbuf[PW_IP4_STRLEN];

		if (e->v.identity != id)
			continue;
		pw_ip4_format(ip, ipbuf);
		if (id >= PW_ID_FIRST_CIDR)
			return snprintf(buf, len, "cidr %s/%u", ipbuf, e->k.prefixlen), buf;
		if (shown++) {
			more++;
			continue;
		}
		const struct pw_ipam_entry *lp = pod_by_ip(v, ip);
		const char *name = NULL, *ns = NULL;

		if (lp && lp->k8s_namespace[0]) {
			ns = lp->k8s_namespace;
			name = lp->k8s_pod_name;
		}
		for (int k = 0; !name && k < v->m.n_pods; k++)
			if (v->m.pods[k].ip == ip) {
				ns = v->m.pods[k].ns;
				name = v->m.pods[k].name;
			}
		off = (size_t)snprintf(buf, len, "%s%s%s", name ? ns : ipbuf, name ? "/" : "", name ? name : "");
	}
	if (more && off < len)
		snprintf(buf + off, len - off, " +%d", more);
	if (!buf[0])
		snprintf(buf, len, "#%u", id);
	return buf;
}

static void port_range(const struct pw_policy_entry *e, char *buf, size_t len)
{
	unsigned bits = e->k.prefixlen - PW_POLICY_FIXED_BITS;
	unsigned start = (unsigned)e->k.port[0] << 8 | e->k.port[1];

	if (!bits)
		snprintf(buf, len, "any");
	else if (bits == 16)
		snprintf(buf, len, "%u", start);
	else
		snprintf(buf, len, "%u-%u", start, start + (1u << (16 - bits)) - 1);
}

static cJSON *selecting_json(const struct view *v, const char *ns, const char *name, char *text, size_t len)
{
	const struct pw_pod_model *pm = model_pod(v, ns, name);
	static const struct pw_labels none;
	cJSON *arr = cJSON_CreateArray();
	size_t off = 0;

	text[0] = '\0';
	for (int i = 0; v->have_model && i < v->m.n_pols; i++) {
		const struct pw_netpol *p = &v->m.pols[i];
		char n[PW_K8S_NAME_MAX + 70];

		if (!pw_policy_selects(p, ns, pm ? &pm->labels : &none))
			continue;
		snprintf(n, sizeof(n), "%s/%s", p->ns, p->name);
		cJSON_AddItemToArray(arr, cJSON_CreateString(n));
		if (off < len)
			off += (size_t)snprintf(text + off, len - off, "%s%s", off ? "," : "", n);
	}
	if (!text[0])
		snprintf(text, len, "-");
	return arr;
}

static int show(const struct ctl *c, const struct view *v, bool filter, uint32_t only)
{
	struct ctl_table *t = c->json ? NULL : ctl_table_new(8, "POD", "IP", "POLICED", "SELECTED BY", "DIR",
							      "PEER", "PROTO/PORTS", "ALLOWED BY");
	cJSON *doc = c->json ? cJSON_CreateArray() : NULL;

	/* Every pod of this node (policed or not); with a filter, that one. */
	for (int i = 0; i < v->n_pods; i++) {
		uint32_t ip = v->pods[i].ip;
		const struct pw_ipam_entry *lp = &v->pods[i];
		const struct pw_pol_ep *ep = NULL;
		char ipbuf[PW_IP4_STRLEN], pod[PW_K8S_NAME_MAX + 70], sel[512], flags[24];
		cJSON *o = NULL, *rules = NULL;
		int rows = 0;

		if (filter && ip != only)
			continue;
		for (int k = 0; k < v->maps.n_eps; k++)
			if (pw_ip4_from_bytes(v->maps.eps[k].k.addr) == ip)
				ep = &v->maps.eps[k].v;
		pw_ip4_format(ip, ipbuf);
		snprintf(pod, sizeof(pod), "%s/%s", lp->k8s_namespace[0] ? lp->k8s_namespace : "-",
			 lp->k8s_pod_name[0] ? lp->k8s_pod_name : "-");
		snprintf(flags, sizeof(flags), "%s%s%s", !ep ? "no" : "", ep && (ep->flags & PW_POL_F_INGRESS) ? "ingress" : "",
			 ep && ep->flags == (PW_POL_F_INGRESS | PW_POL_F_EGRESS) ? ",egress"
			 : ep && ep->flags == PW_POL_F_EGRESS ? "egress" : "");
		if (doc) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "pod", pod);
			cJSON_AddStringToObject(o, "ip", ipbuf);
			cJSON_AddBoolToObject(o, "ingressPoliced", ep && (ep->flags & PW_POL_F_INGRESS));
			cJSON_AddBoolToObject(o, "egressPoliced", ep && (ep->flags & PW_POL_F_EGRESS));
			cJSON_AddItemToObject(o, "selectedBy", selecting_json(v, lp->k8s_namespace, lp->k8s_pod_name,
									    sel, sizeof(sel)));
			rules = cJSON_AddArrayToObject(o, "allow");
			cJSON_AddItemToArray(doc, o);
		} else {
			cJSON_Delete(selecting_json(v, lp->k8s_namespace, lp->k8s_pod_name, sel, sizeof(sel)));
		}
		for (int k = 0; k < v->maps.n_rules; k++) {
			const struct pw_policy_entry *e = &v->maps.rules[k];
			char peer[PW_K8S_NAME_MAX + 80], ports[32], proto[8], pp[48], by[PW_K8S_NAME_MAX + 70];

			if (pw_ip4_from_bytes(e->k.pod) != ip)
				continue;
			identity_desc(v, e->k.identity, peer, sizeof(peer));
			port_range(e, ports, sizeof(ports));
			snprintf(pp, sizeof(pp), "%s/%s", e->k.proto ? ctl_proto_name(e->k.proto, proto) : "any", ports);
			policy_name(v, e->v.policy_id, by, sizeof(by));
			if (rules) {
				cJSON *r = cJSON_CreateObject();

				cJSON_AddStringToObject(r, "direction", e->k.dir == PW_DIR_INGRESS ? "ingress" : "egress");
				cJSON_AddNumberToObject(r, "peerIdentity", e->k.identity);
				cJSON_AddStringToObject(r, "peer", peer);
				cJSON_AddStringToObject(r, "protocol", e->k.proto ? ctl_proto_name(e->k.proto, proto) : "any");
				cJSON_AddStringToObject(r, "ports", ports);
				cJSON_AddStringToObject(r, "policy", by);
				cJSON_AddItemToArray(rules, r);
			} else {
				ctl_table_add(t, rows ? "" : pod, rows ? "" : ipbuf, rows ? "" : flags, rows ? "" : sel,
					      e->k.dir == PW_DIR_INGRESS ? "ingress" : "egress", peer, pp, by);
			}
			rows++;
		}
		if (t && !rows)
			ctl_table_add(t, pod, ipbuf, flags, sel, "-", "-", "-", ep ? "(nothing: default deny)" : "-");
	}
	if (doc)
		return ctl_json_print(doc);
	ctl_table_print(t, stdout);
	return CTL_OK;
}

const char *ctl_policy_name(const struct ctl *c, uint32_t id, char *buf, size_t len)
{
	static struct view v;
	static bool loaded;

	if (!loaded) {
		struct pw_node_config cfg;
		char path[512], err[512];

		loaded = true;
		ctl_config_path(c, path, sizeof(path));
		if (pw_config_load(path, &cfg, err, sizeof(err)) == 0) {
			v.have_model = pw_policy_model_parse(cfg.policy_json, &v.m, err, sizeof(err)) == 0;
			pw_config_free(&cfg);
		}
	}
	return policy_name(&v, id, buf, len);
}

static int parse_port_proto(const char *s, uint16_t *port, uint8_t *proto)
{
	char *end;
	long p = strtol(s, &end, 10);

	if (end == s || p < 0 || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	*proto = IPPROTO_TCP;
	if (!*end)
		return 0;
	if (!strcmp(end, "/tcp") || !strcmp(end, "/TCP"))
		return 0;
	if (!strcmp(end, "/udp") || !strcmp(end, "/UDP")) {
		*proto = IPPROTO_UDP;
		return 0;
	}
	return -EINVAL;
}

static cJSON *verdict_json(const struct view *v, const char *dir, const struct pw_policy_verdict *pv)
{
	cJSON *o = cJSON_CreateObject();
	char by[PW_K8S_NAME_MAX + 70], peer[PW_K8S_NAME_MAX + 80];

	cJSON_AddStringToObject(o, "direction", dir);
	cJSON_AddBoolToObject(o, "policed", pv->policed);
	cJSON_AddBoolToObject(o, "allowed", pv->allowed);
	cJSON_AddNumberToObject(o, "peerIdentity", pv->peer_identity);
	cJSON_AddStringToObject(o, "peer", identity_desc(v, pv->peer_identity, peer, sizeof(peer)));
	if (pv->policed)
		cJSON_AddStringToObject(o, "policy", policy_name(v, pv->policy_id, by, sizeof(by)));
	return o;
}

static void verdict_text(const struct view *v, const char *what, const struct pw_policy_verdict *pv)
{
	char by[PW_K8S_NAME_MAX + 70];

	if (!pv->policed)
		printf("  %s: not policed\n", what);
	else
		printf("  %s: %s by %s\n", what, pv->allowed ? "allowed" : "denied",
		       policy_name(v, pv->policy_id, by, sizeof(by)));
}

/* SRC's egress (if SRC is this node's) and DST's ingress (if DST is). */
static int check(const struct ctl *c, const struct view *v, int argc, char **argv)
{
	struct pw_policy_verdict eg = { .allowed = true }, in = { .allowed = true };
	uint32_t src, dst;
	uint16_t port;
	uint8_t proto;
	bool src_local, dst_local;
	int ret = 0;

	if (argc != 4)
		return ctl_fail(CTL_USAGE, "usage: podwirectl policy check SRC DST PORT[/tcp|/udp] "
				"(SRC, DST: an IP or NAMESPACE/POD)");
	if (resolve_pod(v, argv[1], &src) || resolve_pod(v, argv[2], &dst))
		return ctl_fail(CTL_USAGE, "policy check: \"%s\" or \"%s\" is neither an IPv4 address nor a known "
				"NAMESPACE/POD", argv[1], argv[2]);
	if (parse_port_proto(argv[3], &port, &proto))
		return ctl_fail(CTL_USAGE, "policy check: \"%s\" is not PORT, PORT/tcp or PORT/udp", argv[3]);
	src_local = pod_by_ip(v, src) != NULL;
	dst_local = pod_by_ip(v, dst) != NULL;
	if (src_local)
		ret = pw_policy_map_check(&v->fds, src, dst, v->node_ip, v->gateway, PW_DIR_EGRESS, proto, port, &eg);
	if (!ret && dst_local)
		ret = pw_policy_map_check(&v->fds, dst, src, v->node_ip, v->gateway, PW_DIR_INGRESS, proto, port, &in);
	if (ret)
		return ctl_fail(CTL_ERROR, "cannot read the policy maps: %s", strerror(-ret));
	if (c->json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddBoolToObject(o, "allowed", eg.allowed && in.allowed);
		if (src_local)
			cJSON_AddItemToObject(o, "egress", verdict_json(v, "egress", &eg));
		if (dst_local)
			cJSON_AddItemToObject(o, "ingress", verdict_json(v, "ingress", &in));
		ret = ctl_json_print(o);
	} else {
		printf("%s -> %s %s: %s\n", argv[1], argv[2], argv[3], eg.allowed && in.allowed ? "allowed" : "denied");
		if (src_local)
			verdict_text(v, "egress of the source", &eg);
		else
			printf("  egress of the source: not on this node (its node decides)\n");
		if (dst_local)
			verdict_text(v, "ingress of the destination", &in);
		else
			printf("  ingress of the destination: not on this node (its node decides)\n");
	}
	if (ret)
		return ret;
	return eg.allowed && in.allowed ? CTL_OK : CTL_DENIED;
}

static int run_policy(struct ctl *c, int argc, char **argv)
{
	struct view v;
	uint32_t only = 0;
	int ret;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return ctl_usage(&ctl_cmd_policy);
	ret = view_load(c, &v);
	if (ret == CTL_OK) {
		if (argc > 1 && !strcmp(argv[1], "check"))
			ret = check(c, &v, argc - 1, argv + 1);
		else if (argc > 2)
			ret = ctl_usage(&ctl_cmd_policy);
		else if (argc == 2 && resolve_pod(&v, argv[1], &only))
			ret = ctl_fail(CTL_USAGE, "policy: \"%s\" is neither an IPv4 address nor a pod of this node "
				       "(NAMESPACE/POD)", argv[1]);
		else
			ret = show(c, &v, argc == 2, only);
	}
	view_free(&v);
	return ret;
}

static long count_policed(const struct ctl *c)
{
	int fd = pw_map_open(&c->paths, PW_MAP_POL_EP);
	long n;

	if (fd < 0)
		return fd;
	n = pw_policy_ep_count(fd);
	close(fd);
	return n;
}

const struct ctl_cmd ctl_cmd_policy = {
	.name = "policy",
	.args = "[NAMESPACE/POD|IP] | check SRC DST PORT[/tcp|/udp]",
	.summary = "NetworkPolicy: what selects each pod and what the maps allow it; would SRC reach DST?",
	.run = run_policy,
	.count = count_policed,
	.count_label = "policed pods",
};
