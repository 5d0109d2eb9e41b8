/* Running a program as if the kernel's VXLAN receive had decapsulated the
 * frame (with tunnel metadata), through test/bpf/pwt_tunnel_key.bpf.c. For
 * the BPF tests of overlay_ingress. */
#ifndef PWT_TUNNEL_H
#define PWT_TUNNEL_H

#include "pwt_bpf.h"
#include "pwt_tunnel_key.skel.h"

/* Loads the wrapper with prog_fd as its target; NULL on failure. */
static inline struct pwt_tunnel_key_bpf *pwt_tunnel_open(int prog_fd)
{
	struct pwt_tunnel_key_bpf *tk = pwt_tunnel_key_bpf__open_and_load();
	uint32_t zero = 0;

	if (!tk)
		return NULL;
	if (bpf_map_update_elem(bpf_map__fd(tk->maps.pwt_next), &zero, &prog_fd, BPF_ANY) != 0) {
		pwt_tunnel_key_bpf__destroy(tk);
		return NULL;
	}
	return tk;
}

/* The wrapper's program fd, set up so that the target runs on the next
 * packet as received from sender (dotted quad; NULL: no tunnel metadata at
 * all) with VNI vni. */
static inline int pwt_tunnel_from(struct pwt_tunnel_key_bpf *tk, const char *sender, uint32_t vni)
{
	tk->bss->pwt_sender = sender ? ntohl(pwt_ip(sender)) : 0;
	tk->bss->pwt_vni = vni;
	return bpf_program__fd(tk->progs.with_tunnel_key);
}

#endif
