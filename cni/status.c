/* STATUS (1.1.0): ready when the agent published the node facts and its
 * pins, and the pool still has a free address. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "plugin.h"

int pw_cmd_status(struct pw_cni *c)
{
	struct pw_ipam_entry *entries = NULL;
	char cidr[PW_CIDR_STRLEN];
	struct pw_cni_node node;
	struct pw_ipam ipam;
	uint64_t usable;
	int code, n = 0;

	code = pw_node_open(c, &node, true, PW_CNI_E_NOT_AVAILABLE);
	if (code)
		return code;
	/* network, gateway and broadcast are never handed out */
	usable = pw_cidr_size(&node.info.pod_cidr);
	usable = usable > 3 ? usable - 3 : 0;
	if (pw_node_ipam_open(c, &node, &ipam, false) == 0) {
		int all = pw_ipam_list(&ipam, &entries);

		/* Only what occupies the current pool (the list spans every address). */
		for (int i = 0; i < all; i++)
			n += pw_cidr_contains(&node.info.pod_cidr, entries[i].ip);
		if (all < 0)
			n = all;
		pw_ipam_close(&ipam);
		free(entries);
		if (n < 0)
			code = pw_cni_fail(&c->err, PW_CNI_E_NOT_AVAILABLE, strerror(-n),
					   "cannot read the IPAM state of instance %s", c->paths.instance);
	}
	if (!code && (uint64_t)n >= usable) {
		pw_cidr_format(&node.info.pod_cidr, cidr);
		code = pw_cni_fail(&c->err, PW_CNI_E_NOT_AVAILABLE, NULL,
				   "pod CIDR %s of instance %s is exhausted (%d addresses in use)",
				   cidr, c->paths.instance, n);
	}
	pw_node_close(&node);
	return code;
}
