/* What the agent publishes for the CNI plugin in <state_dir>/node.json:
 * the node's pod CIDR (the IPAM pool), gateway, pod MTU and attach mode.
 * Written atomically (temp file + rename) by the agent at start-up. */
#ifndef PW_NODEINFO_H
#define PW_NODEINFO_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "cidr.h"
#include "config.h"
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
	/* Pod devices ("podDevice", veth when absent): never auto here, the
	 * agent publishes what it resolved. netkit goes with podAttach netkit. */
	enum pw_pod_device pod_device;
	char uplink[16];              /* node uplink ("uplink" key); "" if not published */
	char routing[8];              /* "native" / "vxlan" ("routing" key, for podwirectl); "" if not published */
	/* The agent's config file, absolute ("config" key): where `podwirectl
	 * service add|del` edits services. "" if not published. */
	char config[256];
};

int pw_nodeinfo_write(const char *path, const struct pw_nodeinfo *ni);
/* -ENOENT when the agent never ran for this instance; -EINVAL (err set) when garbled. */
int pw_nodeinfo_read(const char *path, struct pw_nodeinfo *ni, char *err, size_t errlen);

/* <state_dir>/applied.json: what the agent did with its config file the
 * last time it read it, so that `podwirectl service add|del` can tell when
 * its edit is in the datapath (or why the agent refused it). Written
 * atomically by the agent after every (re)load. */
struct pw_applied {
	uint64_t digest;              /* pw_config_digest of the bytes the agent read */
	bool ok;                      /* the config parsed and every section applied */
	bool services_ok;             /* the services section applied (pw_services_apply) */
	int services;                 /* services in the config */
	char error[512];              /* why not ok ("" if ok): the parser's or reconciler's message */
	/* Changed fields that wait for a restart of the agent ("node.uplink,
	 * node.mtu"; "" if none). ok is false when that restart would fail,
	 * error says why, naming the field. */
	char restart_pending[256];
};
int pw_applied_write(const char *path, const struct pw_applied *ap);
/* -ENOENT when no agent wrote it yet; -EINVAL when garbled. */
int pw_applied_read(const char *path, struct pw_applied *ap);
/* <state_dir>/applied.json */
void pw_applied_path(const char *state_dir, char *buf, size_t len);
#endif
