/* Node-level kernel settings and node.json (architecture §3, §10). */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "nodeinfo.h"

int pw_node_check(const struct pw_node_config *cfg, int *uplink_ifindex)
{
	unsigned idx = if_nametoindex(cfg->uplink);

	if (!idx) {
		pw_err("node.uplink: interface \"%s\" does not exist in this network namespace",
		       cfg->uplink);
		return -ENODEV;
	}
	*uplink_ifindex = (int)idx;
	return 0;
}

/* Not fatal: the node IP may be added to the uplink after the agent starts. */
static void warn_if_node_ip_missing(const struct pw_node_config *cfg)
{
	struct ifaddrs *ifa, *it;
	char ip[PW_IP4_STRLEN];
	bool found = false;

	if (getifaddrs(&ifa))
		return;
	for (it = ifa; it; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET ||
		    strcmp(it->ifa_name, cfg->uplink))
			continue;
		if (ntohl(((struct sockaddr_in *)it->ifa_addr)->sin_addr.s_addr) == cfg->ip)
			found = true;
	}
	freeifaddrs(ifa);
	if (!found) {
		pw_ip4_format(cfg->ip, ip);
		pw_warn("node.ip %s is not (yet) an address of %s", ip, cfg->uplink);
	}
}

static int uplink_mtu(const char *ifname)
{
	struct ifreq ifr;
	int fd, mtu;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	mtu = ioctl(fd, SIOCGIFMTU, &ifr) ? -errno : ifr.ifr_mtu;
	close(fd);
	return mtu;
}

static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n == (ssize_t)strlen(value) ? 0 : -EIO;
}

/* Pods' traffic is forwarded by this netns, and replies come back on a
 * different device than the route to the source (the datapath redirects past
 * the FIB), which strict reverse-path filtering would drop. */
static int setup_sysctls(const char *uplink)
{
	char path[128];
	const char *files[] = {
		"/proc/sys/net/ipv4/ip_forward",
		"/proc/sys/net/ipv4/conf/all/rp_filter",
		"/proc/sys/net/ipv4/conf/default/rp_filter",
		path,
	};
	const char *values[] = { "1", "0", "0", "0" };
	int err;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", uplink);
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		err = write_sysctl(files[i], values[i]);
		if (err) {
			pw_err("cannot set %s = %s: %s", files[i], values[i], strerror(-err));
			return err;
		}
	}
	return 0;
}

/* A pod keeps the MTU it was created with: after a switch to vxlan routing
 * (or a smaller uplink MTU) older pods send frames the tunnel cannot carry. */
static void warn_if_mtu_lowered(const struct pw_agent *a, int mtu)
{
	struct pw_nodeinfo prev;
	char err[128];

	if (pw_nodeinfo_read(a->paths.node_file, &prev, err, sizeof(err)) == 0 && prev.mtu > mtu)
		pw_warn("pod MTU lowered from %d to %d: pods created before keep %d and must be "
			"re-created for full-size packets to reach other nodes", prev.mtu, mtu, prev.mtu);
}

/* The config file's absolute path ("config" in node.json): where
 * `podwirectl service add|del` edits services for this instance. */
static void publish_config_path(const struct pw_agent *a, struct pw_nodeinfo *ni)
{
	char *abs = a->config_path ? realpath(a->config_path, NULL) : NULL;
	const char *path = abs ? abs : a->config_path ? a->config_path : "";

	if (strlen(path) < sizeof(ni->config))
		strcpy(ni->config, path);
	else
		pw_warn("config path too long to publish in node.json: podwirectl service needs --config");
	free(abs);
}

int pw_node_setup(struct pw_agent *a)
{
	struct pw_nodeinfo ni;
	int mtu, err;

	warn_if_node_ip_missing(&a->cfg);
	err = setup_sysctls(a->cfg.uplink);
	if (err)
		return err;
	mtu = a->cfg.mtu;
	if (!mtu) {
		mtu = uplink_mtu(a->cfg.uplink);
		if (mtu < 0) {
			pw_err("cannot read the MTU of %s: %s", a->cfg.uplink, strerror(-mtu));
			return mtu;
		}
		if (a->cfg.routing == PW_ROUTING_VXLAN)
			mtu -= PW_VXLAN_OVERHEAD;
	}
	a->pod_mtu = mtu;
	warn_if_mtu_lowered(a, mtu);

	memset(&ni, 0, sizeof(ni));
	snprintf(ni.node, sizeof(ni.node), "%s", a->cfg.name);
	snprintf(ni.uplink, sizeof(ni.uplink), "%s", a->cfg.uplink);
	snprintf(ni.routing, sizeof(ni.routing), "%s", a->cfg.routing == PW_ROUTING_VXLAN ? "vxlan" : "native");
	ni.pod_cidr = a->cfg.pod_cidr;
	ni.gateway = pw_cidr_gateway(&a->cfg.pod_cidr);
	ni.mtu = mtu;
	ni.attach = a->mode;
	ni.pod_attach = a->pod_mode;
	ni.pod_device = a->pod_device;
	publish_config_path(a, &ni);
	err = pw_nodeinfo_write(a->paths.node_file, &ni);
	if (err)
		pw_err("cannot write %s: %s", a->paths.node_file, strerror(-err));
	return err;
}

int pw_agent_lock(struct pw_agent *a)
{
	char path[PW_PATH_MAX + 16], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s/agent.lock", a->paths.state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = -errno;
		ssize_t n = read(fd, pid, sizeof(pid) - 1);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		pw_err("another podwired runs for instance %s (pid %s)", a->paths.instance,
		       pid[0] ? pid : "?");
		close(fd);
		return err == -EWOULDBLOCK ? -EBUSY : err;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0 && write(fd, pid, strlen(pid)) < 0)
		pw_debug("cannot record pid in %s", path);
	a->lock_fd = fd;
	return 0;
}
