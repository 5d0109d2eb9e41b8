/* podwirectl services: the services as the datapath holds them -- every
 * frontend (VIP:port/proto, NodePort), algorithm, affinity and the
 * backends in its slots with their state. Read through the service
 * reconciler's own loader (userspace/lib/services.h), the code the agent
 * writes with, so both see the maps the same way. The maps hold no names:
 * they are joined from the agent's config file by frontend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <podwire/abi.h>
#include "ctl.h"
#include "config.h"
#include "datapath.h"
#include "services.h"

/* The config's name of service (vip, port, proto), NULL if none. */
static const char *config_name(const struct pw_node_config *cfg, const struct pw_svc_view *v)
{
	for (int i = 0; cfg && i < cfg->n_services; i++) {
		const struct pw_service_config *s = &cfg->services[i];

		if (s->protocol == v->proto &&
		    ((s->vip == v->vip && s->port == v->port) ||
		     (!v->vip && v->node_port && s->node_port == v->node_port)))   /* a node port alone: a Local policy */
			return s->name;
	}
	return NULL;
}

static const char *backend_state_name(int state)
{
	switch (state) {
	case PW_BACKEND_ACTIVE: return "active";
	case PW_BACKEND_TERMINATING: return "terminating";
	case -1: return "missing";   /* in a slot, not in pw_backends: mid-update */
	}
	return "?";
}

/* State of backend id in pw_backends, -1 if absent. */
static int backend_state(int backends_fd, uint32_t id)
{
	struct pw_backend b;

	if (backends_fd < 0 || bpf_map_lookup_elem(backends_fd, &id, &b))
		return -1;
	return b.state;
}

static int cmp_view(const void *a, const void *b)
{
	const struct pw_svc_view *x = a, *y = b;

	if (x->vip != y->vip)
		return x->vip < y->vip ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (int)x->proto - (int)y->proto;
}

static void fmt_frontend(const struct pw_svc_view *v, char *buf, size_t len)
{
	char ip[PW_IP4_STRLEN], pb[8];

	pw_ip4_format(v->vip, ip);
	snprintf(buf, len, "%s:%u/%s", ip, v->port, ctl_proto_name(v->proto, pb));
}

static cJSON *view_json(const struct pw_services *svc, const struct pw_svc_view *v, const char *name,
			int backends_fd)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	char ip[PW_IP4_STRLEN], pb[8];

	if (name)
		cJSON_AddStringToObject(o, "name", name);
	else
		cJSON_AddNullToObject(o, "name");
	cJSON_AddNumberToObject(o, "id", v->id);
	pw_ip4_format(v->vip, ip);
	cJSON_AddStringToObject(o, "vip", ip);
	cJSON_AddNumberToObject(o, "port", v->port);
	cJSON_AddStringToObject(o, "protocol", ctl_proto_name(v->proto, pb));
	if (v->node_port)
		cJSON_AddNumberToObject(o, "nodePort", v->node_port);
	else
		cJSON_AddNullToObject(o, "nodePort");
	cJSON_AddStringToObject(o, "algorithm", v->maglev ? "maglev" : "random");
	cJSON_AddNumberToObject(o, "affinityTimeoutSeconds", v->affinity_timeout);
	arr = cJSON_AddArrayToObject(o, "backends");
	for (uint32_t i = 0; i < v->n_backends; i++) {
		cJSON *b = cJSON_CreateObject();
		uint32_t bip = 0;
		uint16_t bport = 0;

		cJSON_AddNumberToObject(b, "id", v->backend_ids[i]);
		if (pw_services_backend(svc, v->backend_ids[i], &bip, &bport) == 0) {
			pw_ip4_format(bip, ip);
			cJSON_AddStringToObject(b, "ip", ip);
			cJSON_AddNumberToObject(b, "port", bport);
		} else {
			cJSON_AddNullToObject(b, "ip");
			cJSON_AddNullToObject(b, "port");
		}
		cJSON_AddStringToObject(b, "state", backend_state_name(backend_state(backends_fd, v->backend_ids[i])));
		cJSON_AddItemToArray(arr, b);
	}
	return o;
}

static void view_row(struct ctl_table *t, const struct pw_services *svc, const struct pw_svc_view *v,
		     const char *name, int backends_fd)
{
	char fe[40], np[8], aff[16], ip[PW_IP4_STRLEN];
	size_t len = 0, cap = 64 + (size_t)v->n_backends * 40;
	char *bes = malloc(cap);

	fmt_frontend(v, fe, sizeof(fe));
	snprintf(np, sizeof(np), v->node_port ? "%u" : "-", v->node_port);
	snprintf(aff, sizeof(aff), v->affinity_timeout ? "%us" : "-", v->affinity_timeout);
	if (bes) {
		bes[0] = '\0';
		for (uint32_t i = 0; i < v->n_backends; i++) {
			uint32_t bip = 0;
			uint16_t bport = 0;
			int st = backend_state(backends_fd, v->backend_ids[i]);

			if (pw_services_backend(svc, v->backend_ids[i], &bip, &bport))
				len += (size_t)snprintf(bes + len, cap - len, "%s#%u(missing)", i ? ", " : "",
							v->backend_ids[i]);
			else {
				pw_ip4_format(bip, ip);
				len += (size_t)snprintf(bes + len, cap - len, "%s%s:%u%s%s%s", i ? ", " : "", ip, bport,
							st == PW_BACKEND_ACTIVE ? "" : "(",
							st == PW_BACKEND_ACTIVE ? "" : backend_state_name(st),
							st == PW_BACKEND_ACTIVE ? "" : ")");
			}
		}
		if (!v->n_backends)
			snprintf(bes, cap, "(none)");
	}
	ctl_table_add(t, name ? name : "-", fe, np, v->maglev ? "maglev" : "random", aff, bes ? bes : "?");
	free(bes);
}

static int run_services(struct ctl *c, int argc, char **argv)
{
	struct pw_node_config cfg;
	struct pw_services svc;
	struct pw_svc_view *views;
	char path[PW_PATH_MAX + 64], err[256];
	bool have_cfg;
	int n, err_no, backends_fd, ret;

	(void)argv;
	if (argc > 1)
		return ctl_usage(&ctl_cmd_services);
	err_no = pw_services_open(&svc, &c->paths, 0);
	if (err_no == -ENOENT)
		return ctl_fail(CTL_UNSUPPORTED, "this datapath has no service maps (%s)", svc.err);
	if (err_no)
		return ctl_fail(CTL_ERROR, "cannot read the services: %s", svc.err);
	ctl_config_path(c, path, sizeof(path));
	have_cfg = pw_config_load(path, &cfg, err, sizeof(err)) == 0;
	backends_fd = pw_map_open(&c->paths, PW_MAP_BACKENDS);

	n = pw_services_count(&svc);
	views = calloc((size_t)(n ? n : 1), sizeof(*views));
	if (!views) {
		ret = ctl_fail(CTL_ERROR, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++)
		pw_services_get(&svc, i, &views[i]);
	qsort(views, (size_t)n, sizeof(*views), cmp_view);

	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, view_json(&svc, &views[i], have_cfg ? config_name(&cfg, &views[i]) : NULL,
							     backends_fd));
		ret = ctl_json_print(arr);
	} else {
		struct ctl_table *t = ctl_table_new(6, "NAME", "FRONTEND", "NODEPORT", "ALGORITHM", "AFFINITY", "BACKENDS");

		for (int i = 0; i < n; i++)
			view_row(t, &svc, &views[i], have_cfg ? config_name(&cfg, &views[i]) : NULL, backends_fd);
		ctl_table_print(t, stdout);
		ret = CTL_OK;
	}
out:
	free(views);
	if (backends_fd >= 0)
		close(backends_fd);
	if (have_cfg)
		pw_config_free(&cfg);
	pw_services_close(&svc);
	return ret;
}

/* One per service: pw_revnat has exactly one entry per service. */
static long count_services(const struct ctl *c)
{
	long n = ctl_count_map(c, PW_MAP_REVNAT);

	return n == -ENOENT ? -ENOTSUP : n;
}

const struct ctl_cmd ctl_cmd_services = {
	.name = "services",
	.args = "",
	.summary = "service frontends and their backends, as the datapath holds them",
	.run = run_services,
	.count = count_services,
};
