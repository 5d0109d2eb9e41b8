/* What the agent publishes for the CNI plugin in <state_dir>/node.json:
 * the node's pod CIDR (the IPAM pool), gateway, pod MTU and attach mode.
 * Written atomically (temp file + rename) by the agent at start-up. */
#ifndef PW_NODEINFO_H
#define PW_NODEINFO_H
#include <stdint.h>
#include <stddef.h>
#include "cidr.h"
#include "datapath.h"

struct pw_nodeinfo {
	char node[64];
	struct pw_cidr pod_cidr;
	uint32_t gateway;
	int mtu;                      /* pod MTU: uplink MTU less encapsulation overhead */
	enum pw_attach_mode attach;   /* the node's uplink/overlay programs */
	/* Pod veths ("podAttach"; defaults to attach when absent). Separate because
	 * creating a tcx link waits for two RCU grace periods (~15 ms per pod
	 * at HZ=250) where a cls_bpf filter does not, and a pod's host veth has
	 * no other tc user for tcx's multi-program ordering to protect. */
	enum pw_attach_mode pod_attach;
	char uplink[16];              /* node uplink ("uplink" key); "" if not published */
	char routing[8];              /* "native" / "vxlan" ("routing" key, for podwirectl); "" if not published */
};

int pw_nodeinfo_write(const char *path, const struct pw_nodeinfo *ni);
/* -ENOENT when the agent never ran for this instance; -EINVAL (err set) when garbled. */
int pw_nodeinfo_read(const char *path, struct pw_nodeinfo *ni, char *err, size_t errlen);
#endif
