/* podwirectl peers: other nodes' pod CIDRs and the node IP each is reached
 * through (pw_peers, an LPM trie the agent fills from its config). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl.h"
#include "inspect.h"

static void fmt_cidr(const struct pw_peer_key *k, char buf[24])
{
	snprintf(buf, 24, "%u.%u.%u.%u/%u", k->addr[0], k->addr[1], k->addr[2], k->addr[3], k->prefixlen);
}

static int run_peers(struct ctl *c, int argc, char **argv)
{
	struct pw_peer_entry *peers = NULL;
	size_t n = 0;
	int fd, err;

	(void)argv;
	if (argc > 1)
		return ctl_usage(&ctl_cmd_peers);
	fd = ctl_map_open(c, PW_MAP_PEERS);
	if (fd < 0)
		return CTL_ERROR;
	err = pw_inspect_peers(fd, &peers, &n);
	close(fd);
	if (err)
		return ctl_fail(CTL_ERROR, "cannot read " PW_MAP_PEERS ": %s", strerror(-err));

	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < n; i++) {
			char cidr[24], ip[16];
			cJSON *o = cJSON_CreateObject();

			fmt_cidr(&peers[i].key, cidr);
			ctl_fmt_ip(peers[i].peer.node_ip, ip);
			cJSON_AddStringToObject(o, "podCIDR", cidr);
			cJSON_AddStringToObject(o, "nodeIP", ip);
			cJSON_AddNumberToObject(o, "flags", peers[i].peer.flags);
			cJSON_AddItemToArray(arr, o);
		}
		free(peers);
		return ctl_json_print(arr);
	}

	struct ctl_table *t = ctl_table_new(2, "POD CIDR", "NODE IP");

	for (size_t i = 0; i < n; i++) {
		char cidr[24], ip[16];

		fmt_cidr(&peers[i].key, cidr);
		ctl_fmt_ip(peers[i].peer.node_ip, ip);
		ctl_table_add(t, cidr, ip);
	}
	ctl_table_print(t, stdout);
	free(peers);
	return CTL_OK;
}

static long count_peers(const struct ctl *c)
{
	return ctl_count_map(c, PW_MAP_PEERS);
}

const struct ctl_cmd ctl_cmd_peers = {
	.name = "peers",
	.args = "",
	.summary = "peer pod CIDR -> node IP",
	.run = run_peers,
	.count = count_peers,
};
