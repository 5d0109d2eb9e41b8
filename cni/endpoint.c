/* Endpoint entries in the agent's pinned maps: pw_endpoints (pod IP ->
 * endpoint) and pw_ep_ifindex (host veth ifindex -> endpoint). */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "cidr.h"
#include "log.h"
#include "plugin.h"

static struct pw_ip4 ip_key(uint32_t ip)
{
	struct pw_ip4 k;

	pw_ip4_to_bytes(ip, k.addr);
	return k;
}

int pw_ep_register(const struct pw_cni_node *n, uint32_t ip, int host_ifindex,
		   const uint8_t pod_mac[6], const uint8_t host_mac[6], uint16_t id, uint16_t flags)
{
	struct pw_endpoint ep = { .ifindex = (__u32)host_ifindex, .id = id, .flags = flags };
	struct pw_ip4 key = ip_key(ip);
	__u32 ifx = (__u32)host_ifindex;

	memcpy(ep.ip, key.addr, sizeof(ep.ip));
	memcpy(ep.mac, pod_mac, sizeof(ep.mac));
	memcpy(ep.host_mac, host_mac, sizeof(ep.host_mac));
	/* ifindex entry first: the program on the veth looks itself up by
	 * ifindex, and delivery by IP should only start once it can. */
	if (bpf_map_update_elem(n->ep_ifidx_fd, &ifx, &ep, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(n->ep_fd, &key, &ep, BPF_ANY)) {
		int err = -errno;

		bpf_map_delete_elem(n->ep_ifidx_fd, &ifx);
		return err;
	}
	return 0;
}

int pw_ep_register_netns(const struct pw_cni_node *n, uint64_t netns_cookie, uint32_t ip, int host_ifindex,
			 uint16_t flags)
{
	struct pw_sock_netns pod = { .ifindex = (__u32)host_ifindex, .flags = flags };
	struct pw_ip4 key = ip_key(ip);
	__u64 cookie = netns_cookie;

	if (n->sock_netns_fd < 0)
		return 0;
	memcpy(pod.ip, key.addr, sizeof(pod.ip));
	return bpf_map_update_elem(n->sock_netns_fd, &cookie, &pod, BPF_ANY) ? -errno : 0;
}

/* pw_sock_netns entries of the pod with address ip (at most a few thousand). */
static void forget_netns_by_ip(const struct pw_cni_node *n, uint32_t ip)
{
	struct pw_ip4 want = ip_key(ip);
	__u64 key, next, *prev = NULL;
	__u64 stale[16];
	int nstale = 0;

	if (n->sock_netns_fd < 0)
		return;
	while (nstale < 16 && bpf_map_get_next_key(n->sock_netns_fd, prev, &next) == 0) {
		struct pw_sock_netns pod;

		if (bpf_map_lookup_elem(n->sock_netns_fd, &next, &pod) == 0 &&
		    memcmp(pod.ip, want.addr, sizeof(pod.ip)) == 0)
			stale[nstale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < nstale; i++)
		bpf_map_delete_elem(n->sock_netns_fd, &stale[i]);
}

/* pw_ep_ifindex entries whose endpoint is ip (the veth is gone, so its
 * ifindex is unknown; there are at most a few thousand entries). */
static void forget_ifindex_by_ip(const struct pw_cni_node *n, uint32_t ip)
{
	struct pw_ip4 want = ip_key(ip);
	__u32 key, next, *prev = NULL;
	__u32 stale[64];
	int nstale = 0;

	/* Collect first: deleting while iterating restarts get_next_key. */
	while (nstale < 64 && bpf_map_get_next_key(n->ep_ifidx_fd, prev, &next) == 0) {
		struct pw_endpoint ep;

		if (bpf_map_lookup_elem(n->ep_ifidx_fd, &next, &ep) == 0 &&
		    memcmp(ep.ip, want.addr, sizeof(ep.ip)) == 0)
			stale[nstale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < nstale; i++)
		bpf_map_delete_elem(n->ep_ifidx_fd, &stale[i]);
}

void pw_ep_forget(const struct pw_cni_node *n, uint32_t ip, int host_ifindex)
{
	struct pw_endpoint ep;

	if (n->ep_fd < 0 || n->ep_ifidx_fd < 0)
		return;
	if (host_ifindex > 0) {
		__u32 ifx = (__u32)host_ifindex;

		/* Without a reservation, the ifindex entry still says the IP. */
		if (!ip && bpf_map_lookup_elem(n->ep_ifidx_fd, &ifx, &ep) == 0)
			ip = pw_ip4_from_bytes(ep.ip);
		bpf_map_delete_elem(n->ep_ifidx_fd, &ifx);
	}
	if (!ip)
		return;
	forget_netns_by_ip(n, ip);
	struct pw_ip4 key = ip_key(ip);

	/* Only our own entry: with host_ifindex known, an entry for this IP
	 * that points elsewhere belongs to someone else. */
	if (bpf_map_lookup_elem(n->ep_fd, &key, &ep) == 0 &&
	    (host_ifindex <= 0 || (int)ep.ifindex == host_ifindex))
		bpf_map_delete_elem(n->ep_fd, &key);
	forget_ifindex_by_ip(n, ip);
}

int pw_ep_lookup(const struct pw_cni_node *n, uint32_t ip, int host_ifindex)
{
	struct pw_ip4 key = ip_key(ip);
	struct pw_endpoint by_ip, by_ifx;
	__u32 ifx = (__u32)host_ifindex;

	if (bpf_map_lookup_elem(n->ep_fd, &key, &by_ip) ||
	    bpf_map_lookup_elem(n->ep_ifidx_fd, &ifx, &by_ifx))
		return -ENOENT;
	if ((int)by_ip.ifindex != host_ifindex || memcmp(by_ip.ip, key.addr, 4) ||
	    memcmp(&by_ip, &by_ifx, sizeof(by_ip)))
		return -ESTALE;
	return 0;
}

int pw_ep_id(const struct pw_cni_node *n, uint32_t ip, int host_ifindex, uint16_t *id)
{
	struct pw_endpoint ep;
	struct pw_ip4 key = ip_key(ip);
	__u32 ifx = (__u32)host_ifindex;

	if (n->ep_ifidx_fd >= 0 && host_ifindex > 0 && bpf_map_lookup_elem(n->ep_ifidx_fd, &ifx, &ep) == 0 &&
	    (!ip || pw_ip4_from_bytes(ep.ip) == ip)) {
		*id = ep.id;
		return 0;
	}
	if (n->ep_fd >= 0 && ip && bpf_map_lookup_elem(n->ep_fd, &key, &ep) == 0 &&
	    (host_ifindex <= 0 || (int)ep.ifindex == host_ifindex)) {
		*id = ep.id;
		return 0;
	}
	return -ENOENT;
}
