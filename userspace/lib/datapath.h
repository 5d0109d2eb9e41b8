/* Access to a node's pinned datapath, shared by podwired, podwirectl and the
 * CNI plugin: open pinned maps/programs, attach a program to an interface's
 * tc ingress or egress (tcx link or clsact/cls_bpf), detach. All through libbpf. */
#ifndef PW_DATAPATH_H
#define PW_DATAPATH_H
#include <stdbool.h>
#include "paths.h"

/* The two tc hooks of a device. */
enum pw_hook { PW_HOOK_INGRESS = 0, PW_HOOK_EGRESS = 1 };

/* NETKIT: pod devices only (the node's pod device mode is netkit): a
 * netkit link on the primary (host-side) device, BPF_NETKIT_PEER for
 * PW_HOOK_INGRESS (what the pod sends), BPF_NETKIT_PRIMARY for
 * PW_HOOK_EGRESS, pinned like a tcx link. */
enum pw_attach_mode { PW_ATTACH_TCX = 0, PW_ATTACH_TC = 1, PW_ATTACH_NETKIT = 2 };

const char *pw_attach_mode_name(enum pw_attach_mode m);   /* "tcx" / "tc" / "netkit" */
/* "tcx" or "tc": the modes a tc hook can be chosen with (netkit follows
 * from the device, never from a flag). */
int pw_attach_mode_parse(const char *s, enum pw_attach_mode *m);
/* The expected attach type of a program for the netkit side of hook h. */
int pw_hook_netkit_attach_type(enum pw_hook h);

/* Whether this kernel has tcx: tries a tcx link of a trivial program on the
 * loopback device of the current netns and removes it again. Probes, never
 * parses version strings. */
enum pw_attach_mode pw_attach_probe(void);

/* bpf_obj_get of <pin_dir>/<name> / <prog_dir>/<name>. fd or -errno. */
int pw_map_open(const struct pw_paths *p, const char *name);
int pw_prog_open(const struct pw_paths *p, const char *name);


const char *pw_hook_name(enum pw_hook h);   /* "ingress" / "egress" */
/* The expected attach type a program must be loaded with to be attached to
 * hook h in tcx mode (BPF_TCX_INGRESS / BPF_TCX_EGRESS): libbpf's
 * bpf_program__set_expected_attach_type before load. A plain SEC("tc")
 * program (BPF_CGROUP_INET_INGRESS = 0) would make the tcx link EINVAL. */
int pw_hook_tcx_attach_type(enum pw_hook h);

/* Attach prog_fd to tc hook `hook` of ifindex.
 * tcx: creates a link pinned at link_pin (replacing an existing pinned link's
 *      program atomically with bpf_link_update if link_pin holds a live link
 *      of the same device and hook);
 * tc:  clsact qdisc + cls_bpf direct-action filter at a fixed handle/priority
 *      on the ingress or egress side, replaced in place if present
 *      (link_pin unused).
 * 0 or -errno. */
int pw_attach(enum pw_attach_mode mode, int prog_fd, int ifindex, enum pw_hook hook,
	      const char *link_pin);
/* Undo pw_attach. Idempotent: a missing link pin, interface or filter is
 * success. Removes the link pin in both modes. */
int pw_detach(enum pw_attach_mode mode, int ifindex, enum pw_hook hook, const char *link_pin);

/* The ingress special cases (pod veths, the uplink): pw_attach/pw_detach
 * with PW_HOOK_INGRESS. */
int pw_attach_ingress(enum pw_attach_mode mode, int prog_fd, int ifindex, const char *link_pin);
int pw_detach_ingress(enum pw_attach_mode mode, int ifindex, const char *link_pin);
#endif
