/* podwirectl endpoints: the pods of this node as the datapath sees them
 * (pw_endpoints: pod IP -> host-side veth, MACs, id), named by the IPAM
 * reservation of their IP (the Kubernetes namespace and pod name the CNI
 * plugin recorded from CNI_ARGS). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl.h"
#include "inspect.h"
#include "ipam.h"

struct pods {
	struct pw_ipam_entry *v;
	int n;
};

/* The reservations of the instance, read without the IPAM lock (each file
 * appears whole). None at all (no pod was ever added, or another netns's
 * /run) is not an error: the POD column then says "-". */
static void load_pods(const struct ctl *c, struct pods *p)
{
	struct pw_cidr any = { 0, 0 };
	struct pw_ipam ipam;

	p->v = NULL;
	p->n = 0;
	if (access(c->paths.ipam_dir, F_OK) < 0 || pw_ipam_open(&ipam, c->paths.ipam_dir, &any))
		return;
	p->n = pw_ipam_list(&ipam, &p->v);
	if (p->n < 0)
		p->n = 0;
	pw_ipam_close(&ipam);
}

/* The reservation of ip when it names a pod, else NULL. */
static const struct pw_ipam_entry *pod_of(const struct pods *p, const uint8_t ip[4])
{
	uint32_t want = pw_ip4_from_bytes(ip);

	for (int i = 0; i < p->n; i++)
		if (p->v[i].ip == want)
			return *p->v[i].k8s_namespace || *p->v[i].k8s_pod_name ? &p->v[i] : NULL;
	return NULL;
}

static void add_json_name(cJSON *o, const char *key, const char *val)
{
	if (val && *val)
		cJSON_AddStringToObject(o, key, val);
	else
		cJSON_AddNullToObject(o, key);
}

static int run_endpoints(struct ctl *c, int argc, char **argv)
{
	struct pw_endpoint *eps = NULL;
	struct pods pods;
	size_t n = 0;
	int fd, err;

	(void)argv;
	if (argc > 1)
		return ctl_usage(&ctl_cmd_endpoints);
	fd = ctl_map_open(c, PW_MAP_ENDPOINTS);
	if (fd < 0)
		return CTL_ERROR;
	err = pw_inspect_endpoints(fd, &eps, &n);
	close(fd);
	if (err)
		return ctl_fail(CTL_ERROR, "cannot read " PW_MAP_ENDPOINTS ": %s", strerror(-err));
	load_pods(c, &pods);

	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < n; i++) {
			char ip[16], mac[18], hmac[18], ifname[IF_NAMESIZE];
			const struct pw_ipam_entry *pod = pod_of(&pods, eps[i].ip);
			cJSON *o = cJSON_CreateObject();

			ctl_fmt_ip(eps[i].ip, ip);
			ctl_fmt_mac(eps[i].mac, mac);
			ctl_fmt_mac(eps[i].host_mac, hmac);
			cJSON_AddStringToObject(o, "ip", ip);
			cJSON_AddNumberToObject(o, "id", eps[i].id);
			cJSON_AddNumberToObject(o, "ifindex", eps[i].ifindex);
			cJSON_AddStringToObject(o, "ifname", ctl_ifname(eps[i].ifindex, eps[i].host_mac, ifname));
			cJSON_AddStringToObject(o, "mac", mac);
			cJSON_AddStringToObject(o, "hostMac", hmac);
			cJSON_AddNumberToObject(o, "flags", eps[i].flags);
			add_json_name(o, "namespace", pod ? pod->k8s_namespace : NULL);
			add_json_name(o, "name", pod ? pod->k8s_pod_name : NULL);
			cJSON_AddItemToArray(arr, o);
		}
		free(eps);
		free(pods.v);
		return ctl_json_print(arr);
	}

	struct ctl_table *t = ctl_table_new(7, "IP", "POD", "HOST IFNAME", "IFINDEX", "POD MAC", "GATEWAY MAC", "ID");

	for (size_t i = 0; i < n; i++) {
		char ip[16], mac[18], hmac[18], ifname[IF_NAMESIZE], idx[16], id[8], name[320] = "-";
		const struct pw_ipam_entry *pod = pod_of(&pods, eps[i].ip);

		ctl_fmt_ip(eps[i].ip, ip);
		ctl_fmt_mac(eps[i].mac, mac);
		ctl_fmt_mac(eps[i].host_mac, hmac);
		snprintf(idx, sizeof(idx), "%u", eps[i].ifindex);
		snprintf(id, sizeof(id), "%u", eps[i].id);
		if (pod)
			snprintf(name, sizeof(name), "%s/%s", *pod->k8s_namespace ? pod->k8s_namespace : "-",
				 *pod->k8s_pod_name ? pod->k8s_pod_name : "-");
		ctl_table_add(t, ip, name, ctl_ifname(eps[i].ifindex, eps[i].host_mac, ifname), idx, mac, hmac, id);
	}
	ctl_table_print(t, stdout);
	free(eps);
	free(pods.v);
	return CTL_OK;
}

static long count_endpoints(const struct ctl *c)
{
	return ctl_count_map(c, PW_MAP_ENDPOINTS);
}

const struct ctl_cmd ctl_cmd_endpoints = {
	.name = "endpoints",
	.args = "",
	.summary = "pods on this node: IP, namespace/name, host veth, MACs, id",
	.run = run_endpoints,
	.count = count_endpoints,
};
