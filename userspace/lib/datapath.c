/* Attaching the datapath's programs, through libbpf only (architecture §4). */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath.h"

/* Fixed so that a re-attach replaces our filter instead of adding one. */
#define PW_TC_HANDLE   1
#define PW_TC_PRIORITY 1

const char *pw_attach_mode_name(enum pw_attach_mode m)
{
	return m == PW_ATTACH_TCX ? "tcx" : m == PW_ATTACH_NETKIT ? "netkit" : "tc";
}

/* A program that only says TCX_NEXT: attaching it changes no packet's fate. */
static int load_probe_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TCX_NEXT },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TCX_INGRESS);

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "pw_tcx_probe", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), &opts);
}

enum pw_attach_mode pw_attach_probe(void)
{
	enum pw_attach_mode mode = PW_ATTACH_TC;
	int ifindex = (int)if_nametoindex("lo");
	int prog_fd, link_fd;

	if (ifindex <= 0)
		return PW_ATTACH_TC;
	prog_fd = load_probe_prog();
	if (prog_fd < 0)
		return PW_ATTACH_TC;
	link_fd = bpf_link_create(prog_fd, ifindex, BPF_TCX_INGRESS, NULL);
	if (link_fd >= 0) {
		mode = PW_ATTACH_TCX;
		close(link_fd);  /* last reference to an unpinned link: detaches */
	}
	close(prog_fd);
	return mode;
}

static int obj_get(const char *dir, const char *name)
{
	char path[PW_PATH_MAX + 64];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int pw_map_open(const struct pw_paths *p, const char *name)
{
	return obj_get(p->pin_dir, name);
}

int pw_prog_open(const struct pw_paths *p, const char *name)
{
	return obj_get(p->prog_dir, name);
}

const char *pw_hook_name(enum pw_hook h)
{
	return h == PW_HOOK_EGRESS ? "egress" : "ingress";
}

int pw_hook_tcx_attach_type(enum pw_hook h)
{
	return h == PW_HOOK_EGRESS ? BPF_TCX_EGRESS : BPF_TCX_INGRESS;
}

/* What the pod sends is the host side's ingress: on a netkit pair that is
 * the peer's transmit, where BPF_NETKIT_PEER programs run. */
int pw_hook_netkit_attach_type(enum pw_hook h)
{
	return h == PW_HOOK_EGRESS ? BPF_NETKIT_PRIMARY : BPF_NETKIT_PEER;
}

static int link_attach_type(enum pw_attach_mode mode, enum pw_hook hook)
{
	return mode == PW_ATTACH_NETKIT ? pw_hook_netkit_attach_type(hook) : pw_hook_tcx_attach_type(hook);
}

/* The tcx link pinned at link_pin if it is still attached to ifindex at the
 * same hook; -ENOENT when there is no pin, -ESTALE when the pin outlived its
 * device (the link is detached, or the ifindex now names another device) or
 * names another hook. */
static int open_live_link(enum pw_attach_mode mode, const char *link_pin, int ifindex, enum pw_hook hook)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(link_pin);
	bool live;

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_link_get_info_by_fd(fd, &info, &len))
		live = false;
	else if (mode == PW_ATTACH_NETKIT)
		/* A BPF_NETKIT_PEER link reports the peer's ifindex (in the
		 * pod's netns), not the primary's it was created on; 0 once its
		 * device is gone. The pin is named after the primary, so a
		 * live peer link behind it is this device's. */
		live = info.type == BPF_LINK_TYPE_NETKIT && info.netkit.ifindex != 0 &&
		       info.netkit.attach_type == (__u32)pw_hook_netkit_attach_type(hook) &&
		       (hook == PW_HOOK_INGRESS || (int)info.netkit.ifindex == ifindex);
	else
		live = info.type == BPF_LINK_TYPE_TCX && (int)info.tcx.ifindex == ifindex &&
		       info.tcx.attach_type == (__u32)pw_hook_tcx_attach_type(hook);
	if (!live) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* A tcx or netkit link (both bpf_mprog hooks, same life cycle): pinned, so
 * it outlives the process; replaced in place when the pin is live. */
static int attach_link(enum pw_attach_mode mode, int prog_fd, int ifindex, enum pw_hook hook,
		       const char *link_pin)
{
	int link_fd, err;

	if (!link_pin)
		return -EINVAL;
	link_fd = open_live_link(mode, link_pin, ifindex, hook);
	if (link_fd >= 0) {
		/* Atomic program swap: no packet sees the hook empty. */
		err = bpf_link_update(link_fd, prog_fd, NULL) ? -errno : 0;
		close(link_fd);
		return err;
	}
	if (link_fd != -ENOENT && unlink(link_pin) && errno != ENOENT)
		return -errno;

	link_fd = bpf_link_create(prog_fd, ifindex, link_attach_type(mode, hook), NULL);
	if (link_fd < 0)
		return -errno;
	err = bpf_obj_pin(link_fd, link_pin) ? -errno : 0;
	/* Without the pin, closing the fd detaches again: nothing half-done remains. */
	close(link_fd);
	return err;
}

static enum bpf_tc_attach_point tc_point(enum pw_hook hook)
{
	return hook == PW_HOOK_EGRESS ? BPF_TC_EGRESS : BPF_TC_INGRESS;
}

static int attach_tc(int prog_fd, int ifindex, enum pw_hook hook)
{
	LIBBPF_OPTS(bpf_tc_hook, tch, .ifindex = ifindex, .attach_point = tc_point(hook));
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = PW_TC_HANDLE, .priority = PW_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	/* One clsact qdisc serves both hooks: EEXIST for the second. */
	err = bpf_tc_hook_create(&tch);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&tch, &opts);
}

int pw_attach(enum pw_attach_mode mode, int prog_fd, int ifindex, enum pw_hook hook,
	      const char *link_pin)
{
	if (prog_fd < 0 || ifindex <= 0)
		return -EINVAL;
	return mode == PW_ATTACH_TC ? attach_tc(prog_fd, ifindex, hook)
				    : attach_link(mode, prog_fd, ifindex, hook, link_pin);
}

int pw_attach_ingress(enum pw_attach_mode mode, int prog_fd, int ifindex, const char *link_pin)
{
	return pw_attach(mode, prog_fd, ifindex, PW_HOOK_INGRESS, link_pin);
}

static int detach_tcx(const char *link_pin)
{
	int fd;

	if (!link_pin)
		return 0;
	fd = bpf_obj_get(link_pin);
	if (fd >= 0) {
		/* Detach now rather than when the last fd goes, in case someone
		 * else (bpftool, a test) holds the link open. Fails harmlessly
		 * on a link whose device is already gone. */
		bpf_link_detach(fd);
		close(fd);
	}
	if (unlink(link_pin) && errno != ENOENT)
		return -errno;
	return 0;
}

static int detach_tc(int ifindex, enum pw_hook hook)
{
	LIBBPF_OPTS(bpf_tc_hook, tch, .ifindex = ifindex, .attach_point = tc_point(hook));
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = PW_TC_HANDLE, .priority = PW_TC_PRIORITY);
	int err;

	if (ifindex <= 0)
		return 0;
	err = bpf_tc_detach(&tch, &opts);
	/* Gone interface, gone clsact or gone filter: already detached. */
	if (err == -ENOENT || err == -ENODEV || err == -EINVAL)
		return 0;
	return err;
}

int pw_detach(enum pw_attach_mode mode, int ifindex, enum pw_hook hook, const char *link_pin)
{
	int err = 0, err2;

	if (mode == PW_ATTACH_TC)
		err = detach_tc(ifindex, hook);
	err2 = detach_tcx(link_pin);
	return err ? err : err2;
}

int pw_detach_ingress(enum pw_attach_mode mode, int ifindex, const char *link_pin)
{
	return pw_detach(mode, ifindex, PW_HOOK_INGRESS, link_pin);
}
