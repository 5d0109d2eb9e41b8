/* podwirectl endpoints: the pods of this node as the datapath sees them
 * (pw_endpoints: pod IP -> host-side veth, MACs, id). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl.h"
#include "inspect.h"

static int run_endpoints(struct ctl *c, int argc, char **argv)
{
	struct pw_endpoint *eps = NULL;
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

	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < n; i++) {
			char ip[16], mac[18], hmac[18], ifname[IF_NAMESIZE];
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
			cJSON_AddItemToArray(arr, o);
		}
		free(eps);
		return ctl_json_print(arr);
	}

	struct ctl_table *t = ctl_table_new(6, "IP", "HOST IFNAME", "IFINDEX", "POD MAC", "GATEWAY MAC", "ID");

	for (size_t i = 0; i < n; i++) {
		char ip[16], mac[18], hmac[18], ifname[IF_NAMESIZE], idx[16], id[8];

		ctl_fmt_ip(eps[i].ip, ip);
		ctl_fmt_mac(eps[i].mac, mac);
		ctl_fmt_mac(eps[i].host_mac, hmac);
		snprintf(idx, sizeof(idx), "%u", eps[i].ifindex);
		snprintf(id, sizeof(id), "%u", eps[i].id);
		ctl_table_add(t, ip, ctl_ifname(eps[i].ifindex, eps[i].host_mac, ifname), idx, mac, hmac, id);
	}
	ctl_table_print(t, stdout);
	free(eps);
	return CTL_OK;
}

static long count_endpoints(const struct ctl *c)
{
	return ctl_count_map(c, PW_MAP_ENDPOINTS);
}

const struct ctl_cmd ctl_cmd_endpoints = {
	.name = "endpoints",
	.args = "",
	.summary = "pods on this node: IP, host veth, MACs, id",
	.run = run_endpoints,
	.count = count_endpoints,
};
