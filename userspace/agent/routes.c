/* Kernel routes and neighbour entries for peers (issue 3).
 *
 * Pod traffic to a peer never needs them: the datapath forwards it past the
 * FIB (native: bpf_fib_lookup + bpf_redirect_neigh; vxlan: tunnel key +
 * redirect to pw_vxlan). Traffic the node itself originates to a remote pod
 * does, and in native mode the route also gives the peer's node IP a
 * neighbour entry the datapath's FIB lookup can find:
 *
 *   native: <peer podCIDR> via <peer node IP> dev <uplink>          proto 112
 *           + a kernel-managed neighbour entry for the peer node IP
 *   vxlan:  <peer podCIDR> via <peer gateway> dev pw_vxlan onlink src <node IP>  proto 112
 *           + <peer gateway> lladdr PW_VXLAN_GW_MAC dev pw_vxlan nud permanent
 *
 * In vxlan mode the packet then meets overlay_egress on pw_vxlan's tc
 * egress, which sets the tunnel key; the inner MACs are rewritten by the
 * receiving node on delivery, so one fixed MAC serves every peer gateway.
 *
 * Everything is a sync against what the kernel holds (routes found by their
 * protocol, neighbours on pw_vxlan): entries that are right are left alone,
 * so a change of one peer never disturbs traffic to the others. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "netlink.h"

/* Locally administered, "pw": never seen outside an encapsulated frame. */
static const uint8_t PW_VXLAN_GW_MAC[6] = { 0x02, 0x70, 0x77, 0x00, 0x00, 0x01 };

static void desired_route(const struct pw_agent *a, const struct pw_peer_config *p,
			  struct pw_route *r, struct pw_route_opts *o)
{
	memset(r, 0, sizeof(*r));
	memset(o, 0, sizeof(*o));
	r->dst = p->pod_cidr;
	r->protocol = PW_RTPROT;
	r->scope = RT_SCOPE_UNIVERSE;
	if (a->cfg.routing == PW_ROUTING_VXLAN) {
		r->gw = pw_cidr_gateway(&p->pod_cidr);
		r->oif = a->overlay_ifindex;
		/* pw_vxlan has no address: the node IP as source makes the
		 * replies come back over the LAN like any node-to-node traffic. */
		o->prefsrc = a->cfg.ip;
		o->onlink = true;
	} else {
		r->gw = p->ip;
		r->oif = a->uplink_ifindex;
	}
}

static bool same_route(const struct pw_route *x, const struct pw_route *y)
{
	return x->dst.addr == y->dst.addr && x->dst.prefix == y->dst.prefix &&
	       x->gw == y->gw && x->oif == y->oif;
}

static void describe(const struct pw_route *r, char *buf, size_t len)
{
	char dst[PW_CIDR_STRLEN], gw[PW_IP4_STRLEN], dev[IF_NAMESIZE];

	pw_cidr_format(&r->dst, dst);
	pw_ip4_format(r->gw, gw);
	if (!if_indextoname((unsigned)r->oif, dev))
		snprintf(dev, sizeof(dev), "if%d", r->oif);
	snprintf(buf, len, "%s via %s dev %s", dst, gw, dev);
}

/* Adds the route when it is missing; in vxlan mode without the preferred
 * source if the node IP is not (yet) on the node: a route beats none. */
static int install_route(struct pw_nl *nl, const struct pw_route *r, struct pw_route_opts *o)
{
	int err = pw_nl_route_replace_opts(nl, r, o);

	if (err == -EINVAL && o->prefsrc) {
		o->prefsrc = 0;
		err = pw_nl_route_replace_opts(nl, r, o);
	}
	return err;
}

static int sync_route_table(struct pw_agent *a, struct pw_nl *nl, const struct pw_node_config *cfg)
{
	struct pw_route *have = NULL, want;
	struct pw_route_opts o;
	char desc[96];
	int n = 0, err, ret = 0;

	err = pw_nl_route_list(nl, 0, PW_RTPROT, &have, &n);
	if (err) {
		pw_err("cannot list routes: %s", strerror(-err));
		return err;
	}
	/* Missing ones first: a changed peer's route is replaced in place. */
	for (int i = 0; i < cfg->n_peers; i++) {
		bool present = false;

		desired_route(a, &cfg->peers[i], &want, &o);
		for (int j = 0; j < n && !present; j++)
			present = same_route(&have[j], &want);
		if (present)
			continue;
		describe(&want, desc, sizeof(desc));
		err = install_route(nl, &want, &o);
		if (err) {
			pw_err("peer %s: cannot add route %s: %s", cfg->peers[i].name, desc, strerror(-err));
			ret = err;
			continue;
		}
		pw_info("peer %s: kernel route %s", cfg->peers[i].name, desc);
		/* Native: resolve the peer's MAC now and keep it resolved, so the
		 * datapath's FIB lookup finds a neighbour from the first packet. */
		if (cfg->routing == PW_ROUTING_NATIVE &&
		    (err = pw_nl_neigh_managed(nl, a->uplink_ifindex, cfg->peers[i].ip)))
			pw_debug("peer %s: no managed neighbour entry (%s): resolved on first use",
				 cfg->peers[i].name, strerror(-err));
	}
	/* Then whatever of ours is not wanted (removed peers, old mode). */
	for (int j = 0; j < n; j++) {
		bool wanted = false;

		/* A route of a wanted destination at the default metric was just
		 * replaced in place by the loop above (mode switch, new peer IP). */
		for (int i = 0; i < cfg->n_peers && !wanted; i++) {
			desired_route(a, &cfg->peers[i], &want, &o);
			wanted = same_route(&have[j], &want) ||
				 (have[j].metric == 0 && have[j].dst.addr == want.dst.addr &&
				  have[j].dst.prefix == want.dst.prefix);
		}
		if (wanted)
			continue;
		describe(&have[j], desc, sizeof(desc));
		err = pw_nl_route_del(nl, &have[j]);
		if (err) {
			pw_err("cannot remove route %s: %s", desc, strerror(-err));
			ret = err;
			continue;
		}
		pw_info("removed kernel route %s", desc);
		/* Native: the managed entry of a peer no longer listed. Its IP may
		 * still be some other peer's gateway (native uses node IPs): ask. */
		if (have[j].oif == a->uplink_ifindex) {
			bool still = false;

			for (int i = 0; i < cfg->n_peers && !still; i++)
				still = cfg->peers[i].ip == have[j].gw;
			if (!still)
				pw_nl_neigh_del(nl, a->uplink_ifindex, have[j].gw);
		}
	}
	free(have);
	return ret;
}

static bool gw_wanted(const struct pw_node_config *cfg, uint32_t ip)
{
	for (int i = 0; i < cfg->n_peers; i++)
		if (pw_cidr_gateway(&cfg->peers[i].pod_cidr) == ip)
			return true;
	return false;
}

/* vxlan mode: one permanent entry per peer gateway on pw_vxlan, nothing else. */
static int sync_overlay_neighbours(struct pw_agent *a, struct pw_nl *nl, const struct pw_node_config *cfg)
{
	struct pw_neigh *have = NULL;
	char ip[PW_IP4_STRLEN];
	int n = 0, err, ret = 0;

	err = pw_nl_neigh_list(nl, a->overlay_ifindex, &have, &n);
	if (err) {
		pw_err("cannot list neighbours of %s: %s", PW_VXLAN_DEV, strerror(-err));
		return err;
	}
	for (int i = 0; i < cfg->n_peers; i++) {
		uint32_t gw = pw_cidr_gateway(&cfg->peers[i].pod_cidr);
		bool ok = false;

		for (int j = 0; j < n && !ok; j++)
			ok = have[j].ip == gw && (have[j].state & NUD_PERMANENT) && have[j].has_mac &&
			     memcmp(have[j].mac, PW_VXLAN_GW_MAC, sizeof(PW_VXLAN_GW_MAC)) == 0;
		if (ok)
			continue;
		pw_ip4_format(gw, ip);
		err = pw_nl_neigh_replace(nl, a->overlay_ifindex, gw, PW_VXLAN_GW_MAC);
		if (err) {
			pw_err("peer %s: cannot add neighbour %s on %s: %s", cfg->peers[i].name, ip,
			       PW_VXLAN_DEV, strerror(-err));
			ret = err;
		}
	}
	for (int j = 0; j < n; j++) {
		if (gw_wanted(cfg, have[j].ip))
			continue;
		pw_ip4_format(have[j].ip, ip);
		err = pw_nl_neigh_del(nl, a->overlay_ifindex, have[j].ip);
		if (err) {
			pw_err("cannot remove neighbour %s on %s: %s", ip, PW_VXLAN_DEV, strerror(-err));
			ret = err;
		}
	}
	free(have);
	return ret;
}

int pw_routes_sync(struct pw_agent *a, const struct pw_node_config *cfg)
{
	struct pw_nl *nl;
	int err, err2 = 0;

	err = pw_agent_nl(a, &nl);
	if (err)
		return err;
	/* Neighbours before routes: a new route is usable at once. */
	if (cfg->routing == PW_ROUTING_VXLAN && a->overlay_ifindex > 0)
		err2 = sync_overlay_neighbours(a, nl, cfg);
	err = sync_route_table(a, nl, cfg);
	return err ? err : err2;
}

/* Native mode: a route of ours through the uplink names a peer's node IP,
 * whose managed neighbour entry sync_route_table made with it. */
static bool peer_neighbour_of(const struct pw_route *r, int uplink_ifindex)
{
	return uplink_ifindex > 0 && r->oif == uplink_ifindex && r->gw;
}

void pw_routes_uninstall(struct pw_nl *nl, const struct pw_node_config *cfg, int uplink_ifindex)
{
	struct pw_route *have = NULL;
	int n = 0, removed = 0, neighbours = 0;

	/* The kernel's routes say which peers had entries even when the config
	 * is gone or lists fewer peers now; the config adds those whose route
	 * never made it. */
	if (pw_nl_route_list(nl, 0, PW_RTPROT, &have, &n) == 0) {
		for (int j = 0; j < n; j++) {
			if (pw_nl_route_del(nl, &have[j]) == 0)
				removed++;
			if (peer_neighbour_of(&have[j], uplink_ifindex) &&
			    pw_nl_neigh_del(nl, uplink_ifindex, have[j].gw) == 0)
				neighbours++;
		}
		free(have);
	}
	for (int i = 0; cfg && uplink_ifindex > 0 && i < cfg->n_peers; i++)
		pw_nl_neigh_del(nl, uplink_ifindex, cfg->peers[i].ip);
	if (removed)
		pw_info("removed %d peer route(s) and the neighbour entries of %d peer(s)", removed, neighbours);
}
