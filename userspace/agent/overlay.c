/* The VXLAN overlay device (architecture §5, issue 3): one collect-metadata
 * ("external") VXLAN device per node. It carries no VNI, remote or local
 * of its own: the datapath sets the whole tunnel key (peer node IP, VNI)
 * per packet with bpf_skb_set_tunnel_key, and the program on its tc ingress
 * delivers decapsulated packets into pods. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "netlink.h"

int pw_agent_nl(struct pw_agent *a, struct pw_nl **out)
{
	int err;

	if (!a->nl) {
		err = pw_nl_open(&a->nl);
		if (err) {
			pw_err("cannot open an rtnetlink socket: %s", strerror(-err));
			a->nl = NULL;
			return err;
		}
	}
	*out = a->nl;
	return 0;
}

/* Decapsulated packets come from a device with no route back to their
 * source pod CIDR; loose or no reverse-path filtering on it. */
static void disable_rp_filter(const char *ifname)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		pw_warn("cannot set %s = 0: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* An existing pw_vxlan is ours from a previous run: reused as it is, so the
 * links on it and the routes through it stay and traffic keeps flowing. */
static int vxlan_get_or_create(struct pw_nl *nl, int mtu, struct pw_link_info *li)
{
	struct pw_vxlan_opts o = {
		.name = PW_VXLAN_DEV,
		.vni = PW_VXLAN_VNI,
		.port = PW_VXLAN_PORT,
		.external = true,
		.mtu = mtu,
	};
	int err = pw_nl_link_get(nl, PW_VXLAN_DEV, li);

	if (err == 0) {
		if (strcmp(li->kind, "vxlan")) {
			pw_err("%s exists and is a \"%s\" device, not vxlan: remove it or use native routing",
			       PW_VXLAN_DEV, li->kind);
			return -EEXIST;
		}
		pw_info("reusing %s (ifindex %d)", PW_VXLAN_DEV, li->ifindex);
		return 0;
	}
	if (err != -ENODEV)
		return err;
	err = pw_nl_vxlan_add(nl, &o);
	if (err) {
		pw_err("cannot create %s (external, dstport %d): %s", PW_VXLAN_DEV, PW_VXLAN_PORT,
		       strerror(-err));
		return err;
	}
	err = pw_nl_link_get(nl, PW_VXLAN_DEV, li);
	if (!err)
		pw_info("created %s (collect-metadata vxlan, dstport %d, ifindex %d)", PW_VXLAN_DEV,
			PW_VXLAN_PORT, li->ifindex);
	return err;
}

int pw_overlay_setup(struct pw_agent *a)
{
	struct pw_link_info up, li;
	struct pw_nl *nl;
	int err, mtu;

	err = pw_agent_nl(a, &nl);
	if (err)
		return err;
	err = pw_nl_link_get(nl, a->cfg.uplink, &up);
	if (err) {
		pw_err("cannot read %s: %s", a->cfg.uplink, strerror(-err));
		return err;
	}
	/* The device's MTU is the inner (pod) packet size: what fits in one
	 * uplink frame after the encapsulation. */
	mtu = up.mtu - PW_VXLAN_OVERHEAD;
	err = vxlan_get_or_create(nl, mtu, &li);
	if (err)
		return err;
	if (li.mtu != mtu && (err = pw_nl_link_set_mtu(nl, li.ifindex, mtu))) {
		pw_err("cannot set the MTU of %s to %d: %s", PW_VXLAN_DEV, mtu, strerror(-err));
		return err;
	}
	disable_rp_filter(PW_VXLAN_DEV);
	if (!li.up && (err = pw_nl_link_set_up(nl, li.ifindex, true))) {
		pw_err("cannot bring %s up: %s", PW_VXLAN_DEV, strerror(-err));
		return err;
	}
	a->overlay_ifindex = li.ifindex;
	return 0;
}

int pw_overlay_remove(const struct pw_paths *p, struct pw_nl *nl)
{
	const char *pins[] = { PW_LINK_OVERLAY, PW_LINK_OVERLAY_EGRESS };
	struct pw_link_info li;
	char pin[PW_PATH_MAX + 32];
	int err;

	/* Link pins first: a tcx link whose device is gone lingers until
	 * its pin goes. In tc mode the filters go with the device. */
	for (unsigned i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		if (pw_link_pin_path(p, pins[i], pin, sizeof(pin)) == 0)
			pw_detach(PW_ATTACH_TCX, 0, PW_HOOK_INGRESS, pin);
	err = pw_nl_link_get(nl, PW_VXLAN_DEV, &li);
	if (err == -ENODEV)
		return 0;
	if (err)
		return err;
	if (strcmp(li.kind, "vxlan")) {
		pw_warn("%s is a \"%s\" device, not ours: left alone", PW_VXLAN_DEV, li.kind);
		return 0;
	}
	/* Routes and neighbour entries through it go with it. */
	err = pw_nl_link_del(nl, PW_VXLAN_DEV);
	if (err)
		pw_warn("cannot delete %s: %s", PW_VXLAN_DEV, strerror(-err));
	else
		pw_info("removed %s", PW_VXLAN_DEV);
	return err;
}
