/* Socket load balancing (bpf/sock.bpf.c) on real sockets. The kernel's
 * BPF_PROG_TEST_RUN has no runner for cgroup sock_addr programs (probed
 * below and reported), so the programs are attached, unpinned, to the
 * cgroup2 root for the life of this process and act only on the sandbox's
 * network namespace (cfg_netns_cookie): connect4 rewrites the tuple of TCP
 * and connected UDP, sendmsg4 of each unconnected datagram, recvmsg4 and
 * getpeername4 show the frontend, a service without backend refuses, and a
 * socket of another network namespace is not touched; hostPort frontends
 * (hostIP 127.0.0.1 and the node IP, wildcard, protocols). Backends listen on
 * loopback addresses of the sandbox. Pods: a network namespace listed in
 * pw_sock_netns (a pod of this node) is translated like the node's, with
 * the pod's IP as the client (ClientIP affinity); one not listed (another
 * node's pod) or listed with PW_EP_F_NO_SOCK_LB (opted out) is not, and a
 * pod's 127.0.0.1 is its own, never a NodePort. */
#include <fcntl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include "pwt_bpf.h"
#include "sock.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static struct sock_bpf *skel;
static struct bpf_link *links[4];
static int svc_fd, slots_fd, be_fd, rev_fd, conn_fd, netns_fd, aff_fd;

static const char *be_ip = "127.0.0.2";

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = pwt_ip(ip);
	return a;
}

static int add_service(const char *vip, uint16_t port, uint8_t proto, uint8_t scope, uint32_t id,
		       uint32_t backend_id, uint16_t backend_port)
{
	struct pw_svc_key k = { .port = port, .proto = proto, .scope = scope };
	struct pw_svc s = { .id = id, .backends = backend_id ? 1 : 0, .algorithm = PW_LB_RANDOM };
	struct pw_slot_key sk = { .svc_id = id, .slot = 0 };
	struct pw_backend b = { .port = backend_port, .state = PW_BACKEND_ACTIVE };
	uint32_t a = pwt_ip(vip), ba = pwt_ip(be_ip);

	memcpy(k.addr, &a, 4);
	memcpy(b.addr, &ba, 4);
	if (backend_id && (bpf_map_update_elem(be_fd, &backend_id, &b, BPF_ANY) ||
			   bpf_map_update_elem(slots_fd, &sk, &backend_id, BPF_ANY)))
		return -1;
	return bpf_map_update_elem(svc_fd, &k, &s, BPF_ANY);
}

static int cgroup2_fd(void)
{
	char line[4096], mnt[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int fd = -1;

	if (!f)
		return -1;
	while (fd < 0 && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
			fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	fclose(f);
	return fd;
}

static int np_addr_add(const char *ip)
{
	uint32_t a = pwt_ip(ip);
	struct pw_np_addr v = { .ifindex = 1 };

	return bpf_map_update_elem(bpf_map__fd(skel->maps.pw_np_addrs), &a, &v, BPF_ANY);
}

/* A NodePort on a node address outside pw_np_addrs is not a frontend:
 * connect() goes to that address itself, where nothing listens. */
static void check_not_nodeport(const char *ip, uint16_t port)
{
	struct sockaddr_in fe = sin_of(ip, port);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = c >= 0 ? connect(c, (struct sockaddr *)&fe, sizeof(fe)) : -1;
	char what[128];

	snprintf(what, sizeof(what), "connect4: %s:%u, an address outside the NodePort addresses, is not translated",
		 ip, port);
	PWT_CHECK(r < 0 && errno == ECONNREFUSED, what, "connect returned %d (%s)", r, strerror(errno));
	if (c >= 0)
		close(c);
}

static int setup(int *cg_fd)
{
	const char *pin_root = pwt_sandbox();
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	socklen_t len = sizeof(uint64_t);
	uint64_t cookie;
	int s;

	if (!pin_root)
		return -1;
	if (system("ip addr add 192.168.1.11/24 dev lo && ip addr add 192.168.1.21/32 dev lo && "
		   "ip addr add 192.168.1.22/32 dev lo") != 0)
		return -1;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		return -1;
	close(s);
	oopts.pin_root_path = pin_root;
	skel = sock_bpf__open_opts(&oopts);
	if (!skel)
		return -1;
	PWT_NODE1_CFG(skel->rodata);
	skel->rodata->cfg_netns_cookie = cookie;
	if (sock_bpf__load(skel))
		return -1;
	svc_fd = bpf_map__fd(skel->maps.pw_services);
	slots_fd = bpf_map__fd(skel->maps.pw_svc_slots);
	be_fd = bpf_map__fd(skel->maps.pw_backends);
	rev_fd = bpf_map__fd(skel->maps.pw_sock_revnat);
	conn_fd = bpf_map__fd(skel->maps.pw_sock_conn);
	/* NodePort addresses as the agent would list them: the node IP and a
	 * second one; 192.168.1.22 is the node's too, but left out. */
	if (np_addr_add("192.168.1.11") || np_addr_add("192.168.1.21"))
		return -1;
	netns_fd = bpf_map__fd(skel->maps.pw_sock_netns);
	aff_fd = bpf_map__fd(skel->maps.pw_affinity);
	if (add_service("10.96.0.10", 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, 1, 1, 8080) ||
	    add_service("0.0.0.0", 30080, IPPROTO_TCP, PW_SVC_NODEPORT, 2, 1, 8080) ||
	    add_service("10.96.0.12", 53, IPPROTO_UDP, PW_SVC_CLUSTERIP, 3, 2, 8081) ||
	    add_service("10.96.0.13", 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, 4, 0, 0) ||
	    add_service("127.0.0.1", 8088, IPPROTO_TCP, PW_SVC_HOSTPORT, PW_HOSTPORT_ID_BASE, 1, 8080) ||
	    add_service("192.168.1.11", 8088, IPPROTO_TCP, PW_SVC_HOSTPORT, PW_HOSTPORT_ID_BASE + 1,
			PW_HOSTPORT_ID_BASE + 1, 8082) ||
	    add_service("192.168.1.11", 8088, IPPROTO_UDP, PW_SVC_HOSTPORT, PW_HOSTPORT_ID_BASE + 2, 2, 8081) ||
	    add_service("0.0.0.0", 8089, IPPROTO_TCP, PW_SVC_HOSTPORT, PW_HOSTPORT_ID_BASE + 3, 1, 8080) ||
	    add_service("10.96.0.14", 80, IPPROTO_TCP, PW_SVC_CLUSTERIP, 5, 1, 8080))
		return -1;
	{
		/* ClientIP affinity on the last one: whose address the selection saw. */
		struct pw_svc_key k = { .addr = { 10, 96, 0, 14 }, .port = 80, .proto = IPPROTO_TCP };
		struct pw_svc v = { .id = 5, .backends = 1, .algorithm = PW_LB_RANDOM, .affinity_timeout = 60 };

		if (bpf_map_update_elem(svc_fd, &k, &v, BPF_ANY))
			return -1;
	}
	*cg_fd = cgroup2_fd();
	return 0;
}

static void test_run_probe(void)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	struct bpf_sock_addr ctx = { .user_family = AF_INET };
	int err;

	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.sock_connect4), &opts);
	/* 524: the kernel's ENOTSUPP, "no test_run for this program type". */
	if (err)
		printf("# BPF_PROG_TEST_RUN on a cgroup sock_addr program: not supported (%s)\n",
		       errno == 524 ? "ENOTSUPP" : strerror(errno));
	else
		printf("# BPF_PROG_TEST_RUN on a cgroup sock_addr program: supported\n");
}

static int attach(int cg_fd)
{
	struct bpf_program *progs[4] = { skel->progs.sock_connect4, skel->progs.sock_sendmsg4,
					 skel->progs.sock_recvmsg4, skel->progs.sock_getpeername4 };

	for (int i = 0; i < 4; i++) {
		links[i] = bpf_program__attach_cgroup(progs[i], cg_fd);
		if (!links[i])
			return -1;
	}
	return 0;
}

static int listener(int type, uint16_t port)
{
	struct sockaddr_in a = sin_of(be_ip, port);
	int one = 1, s = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || (type == SOCK_STREAM && listen(s, 8))) {
		close(s);
		return -1;
	}
	return s;
}

static const char *addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

/* connect() to fe_ip:fe_port; the listener (be_ip:be_port) must accept
 * it; the client's getpeername must show the frontend, the accepted socket
 * the backend. */
static void check_tcp_to(int lst, uint16_t be_port, const char *fe_ip, uint16_t fe_port, const char *name)
{
	struct sockaddr_in fe = sin_of(fe_ip, fe_port), peer, local;
	socklen_t len = sizeof(peer);
	char want[64], got[64], what[160];
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a = -1;

	snprintf(what, sizeof(what), "connect4: TCP to %s:%u reaches the backend %s:%u", fe_ip, fe_port, be_ip, be_port);
	PWT_CHECK(c >= 0 && connect(c, (struct sockaddr *)&fe, sizeof(fe)) == 0 && (a = accept(lst, NULL, NULL)) >= 0,
		  what, "%s", strerror(errno));
	if (a >= 0) {
		len = sizeof(local);
		getsockname(a, (struct sockaddr *)&local, &len);
		snprintf(what, sizeof(what), "connect4: %s: the server side of the connection is the backend", name);
		snprintf(want, sizeof(want), "%s:%u", be_ip, be_port);
		PWT_EQ_STR(addr_str(&local, got, sizeof(got)), want, what);
		close(a);
	}
	len = sizeof(peer);
	snprintf(what, sizeof(what), "getpeername4: %s: the client sees the frontend as its peer", name);
	if (c >= 0 && getpeername(c, (struct sockaddr *)&peer, &len) == 0)
		PWT_EQ_STR(addr_str(&peer, got, sizeof(got)), addr_str(&fe, want, sizeof(want)), what);
	else
		PWT_CHECK(0, what, "getpeername: %s", strerror(errno));
	if (c >= 0)
		close(c);
}

static void check_tcp(int lst, const char *fe_ip, uint16_t fe_port, const char *name)
{
	check_tcp_to(lst, 8080, fe_ip, fe_port, name);
}

/* One datagram from client c (connected or not) through the frontend; the
 * server answers to whatever source it saw. What recvfrom says it came from. */
static int udp_exchange(int c, int srv, const struct sockaddr_in *fe, int connected, struct sockaddr_in *from,
			struct sockaddr_in *seen_dst)
{
	struct sockaddr_in cli;
	socklen_t len = sizeof(cli);
	struct timeval tv = { .tv_sec = 2 };
	char buf[16];

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((connected ? send(c, "hi", 2, 0) : sendto(c, "hi", 2, 0, (const struct sockaddr *)fe, sizeof(*fe))) != 2)
		return -1;
	if (recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&cli, &len) != 2)
		return -1;
	len = sizeof(*seen_dst);
	getsockname(srv, (struct sockaddr *)seen_dst, &len);
	if (sendto(srv, "ho", 2, 0, (struct sockaddr *)&cli, sizeof(cli)) != 2)
		return -1;
	len = sizeof(*from);
	return recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)from, &len) == 2 ? 0 : -1;
}

static void check_udp_to(int srv, int connected, const char *fe_ip, uint16_t fe_port, const char *kind_fe)
{
	struct sockaddr_in fe = sin_of(fe_ip, fe_port), from, dst, peer;
	socklen_t len = sizeof(peer);
	const char *kind = connected ? "connected" : "unconnected";
	char got[64], want[64], what[160];
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;

	addr_str(&fe, want, sizeof(want));
	if (connected && connect(c, (struct sockaddr *)&fe, sizeof(fe))) {
		PWT_CHECK(0, "connect4: connected UDP to a frontend", "%s", strerror(errno));
		close(c);
		return;
	}
	err = udp_exchange(c, srv, &fe, connected, &from, &dst);
	snprintf(what, sizeof(what), "%s: %s UDP to a %s reaches the backend and is answered",
		 connected ? "connect4" : "sendmsg4", kind, kind_fe);
	PWT_CHECK(err == 0, what, "%s", strerror(errno));
	if (!err) {
		snprintf(what, sizeof(what), "recvmsg4: %s UDP: the answer comes from the %s", kind, kind_fe);
		PWT_EQ_STR(addr_str(&from, got, sizeof(got)), want, what);
	}
	if (connected) {
		snprintf(what, sizeof(what), "getpeername4: connected UDP shows the %s", kind_fe);
		PWT_CHECK(getpeername(c, (struct sockaddr *)&peer, &len) == 0 &&
			  strcmp(addr_str(&peer, got, sizeof(got)), want) == 0, what, "peer %s", got);
	}
	close(c);
}

static void check_udp(int srv, int connected)
{
	check_udp_to(srv, connected, "10.96.0.12", 53, "ClusterIP");
}

/* hostPort frontends (PW_SVC_HOSTPORT, the CNI plugin's): the conformance
 * case of one hostPort on 127.0.0.1 and on the node IP to two servers, and
 * on another protocol; a wildcard hostIP on loopback and the node IP. */
static void test_hostport(int tcp, int udp)
{
	int tcp2 = listener(SOCK_STREAM, 8082);

	if (tcp2 < 0) {
		PWT_CHECK(0, "hostport: second backend listens", "%s", strerror(errno));
		return;
	}
	check_tcp_to(tcp, 8080, "127.0.0.1", 8088, "hostPort on hostIP 127.0.0.1");
	check_tcp_to(tcp2, 8082, "192.168.1.11", 8088, "the same hostPort on hostIP = the node IP, another pod");
	check_udp_to(udp, 0, "192.168.1.11", 8088, "udp hostPort on the port of a tcp one");
	check_tcp_to(tcp, 8080, "127.0.0.1", 8089, "wildcard hostPort on 127.0.0.1");
	check_tcp_to(tcp, 8080, "192.168.1.11", 8089, "wildcard hostPort on the node IP");
	close(tcp2);
}

/* Unconnected UDP (two datagrams so far, the ClusterIP and the hostPort
 * one) leaves its way back in pw_sock_revnat; a connect()ed socket in its
 * own storage (pw_sock_conn, looked up by the socket's fd), never in the
 * LRU, whose eviction would cost every connect() once it is full. */
static void test_revnat_entries(int tcp)
{
	struct sockaddr_in fe = sin_of("10.96.0.10", 80);
	struct pw_sock_rev_key k, next;
	struct pw_sock_rev v;
	struct pw_sock_conn conn = {};
	int n = 0, vip_ok = 1, before, c, a = -1;
	void *prev = NULL;
	char got[64];

	while (bpf_map_get_next_key(rev_fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(rev_fd, &k, &v) == 0) {
			n++;
			if (memcmp(k.addr, (uint8_t[]){ 127, 0, 0, 2 }, 4) != 0)
				vip_ok = 0;
		}
	}
	PWT_CHECK(n == 2 && vip_ok, "pw_sock_revnat: one entry per unconnected UDP translation, keyed by the backend",
		  "%d entries, backend keys %s", n, vip_ok ? "right" : "wrong");
	before = n;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	PWT_CHECK(c >= 0 && connect(c, (struct sockaddr *)&fe, sizeof(fe)) == 0 && (a = accept(tcp, NULL, NULL)) >= 0, "connect4: a TCP client for the storage check", "%s",
		  strerror(errno));
	snprintf(got, sizeof(got), "none");
	if (c >= 0 && bpf_map_lookup_elem(conn_fd, &c, &conn) == 0)
		snprintf(got, sizeof(got), "%u.%u.%u.%u:%u -> %u.%u.%u.%u:%u", conn.frontend.addr[0],
			 conn.frontend.addr[1], conn.frontend.addr[2], conn.frontend.addr[3], conn.frontend.port,
			 conn.backend[0], conn.backend[1], conn.backend[2], conn.backend[3], conn.backend_port);
	PWT_EQ_STR(got, "10.96.0.10:80 -> 127.0.0.2:8080", "pw_sock_conn: a connected TCP socket holds its translation");
	for (n = 0, prev = NULL; bpf_map_get_next_key(rev_fd, prev, &next) == 0; n++) {
		k = next;
		prev = &k;
	}
	PWT_EQ_INT(n, before, "pw_sock_revnat: connect() adds no entry");
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
}

static void test_no_backend(void)
{
	struct sockaddr_in fe = sin_of("10.96.0.13", 80);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = connect(c, (struct sockaddr *)&fe, sizeof(fe));

	PWT_CHECK(r < 0 && errno == ECONNREFUSED, "connect4: a ClusterIP without backends: ECONNREFUSED",
		  "connect returned %d (%s)", r, r ? strerror(errno) : "connected");
	close(c);
}

/* A socket of another network namespace (another node on this machine),
 * where the same backend address listens: a translated connect would
 * succeed, an untouched one finds no route to the VIP. */
static void test_other_netns(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct sockaddr_in fe = sin_of("10.96.0.10", 80);
		int lst, c, r;

		if (unshare(CLONE_NEWNET) || system("ip link set lo up") != 0)
			_exit(2);
		lst = listener(SOCK_STREAM, 8080);
		c = socket(AF_INET, SOCK_STREAM, 0);
		r = connect(c, (struct sockaddr *)&fe, sizeof(fe));
		_exit(lst >= 0 && r < 0 && errno == ENETUNREACH ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	PWT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "another network namespace: its connect to the ClusterIP is not translated",
		  "child status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ---- pods: namespaces of pw_sock_netns ---- */

#define POD_IP "10.244.1.5"
#define POD_TRANSLATED 0
#define POD_UNTOUCHED  10    /* the kernel saw the frontend itself */
#define POD_BROKEN     1

/* A TCP connect from the pod to ip:port. Translated: it reaches the
 * backend (127.0.0.2:8080 in the pod's own namespace) and getpeername
 * shows ip:port; untouched: the error the frontend itself gives (untouched_errno). */
static int pod_connect(const char *ip, uint16_t port, int untouched_errno)
{
	struct sockaddr_in fe = sin_of(ip, port), peer;
	socklen_t len = sizeof(peer);
	char got[64], want[64];
	int lst = listener(SOCK_STREAM, 8080), c = socket(AF_INET, SOCK_STREAM, 0), a;

	if (lst < 0 || c < 0)
		return POD_BROKEN;
	if (connect(c, (struct sockaddr *)&fe, sizeof(fe)))
		return errno == untouched_errno ? POD_UNTOUCHED : POD_BROKEN;
	a = accept(lst, NULL, NULL);
	if (a < 0 || getpeername(c, (struct sockaddr *)&peer, &len))
		return POD_BROKEN;
	return strcmp(addr_str(&peer, got, sizeof(got)), addr_str(&fe, want, sizeof(want))) ? POD_BROKEN
											     : POD_TRANSLATED;
}

static int probe_clusterip(void) { return pod_connect("10.96.0.10", 80, ENETUNREACH); }
static int probe_affinity(void) { return pod_connect("10.96.0.14", 80, ENETUNREACH); }
static int probe_loopback_nodeport(void) { return pod_connect("127.0.0.1", 30080, ECONNREFUSED); }
static int probe_nodeip_nodeport(void) { return pod_connect("192.168.1.11", 30080, ENETUNREACH); }

/* Unconnected UDP from the pod: the datagram reaches the backend and the
 * answer's source is shown as the ClusterIP. */
static int probe_udp(void)
{
	struct sockaddr_in fe = sin_of("10.96.0.12", 53), from, dst;
	char got[64];
	int srv = listener(SOCK_DGRAM, 8081), c = socket(AF_INET, SOCK_DGRAM, 0);

	if (srv < 0 || c < 0)
		return POD_BROKEN;
	if (udp_exchange(c, srv, &fe, 0, &from, &dst))
		return errno == ENETUNREACH ? POD_UNTOUCHED : POD_BROKEN;
	return strcmp(addr_str(&from, got, sizeof(got)), "10.96.0.12:53") ? POD_BROKEN : POD_TRANSLATED;
}

/* probe() in a new network namespace (a pod), whose cookie is listed in
 * pw_sock_netns with flags first when listed is set. Its result, or -1. */
static int in_pod(int listed, uint16_t flags, int (*probe)(void))
{
	int up[2], down[2], status = 0;
	uint64_t cookie = 0;
	char go = 0;
	pid_t pid;

	if (pipe(up) || pipe(down))
		return -1;
	pid = fork();
	if (pid == 0) {
		socklen_t len = sizeof(cookie);
		int s;

		if (unshare(CLONE_NEWNET) || system("ip link set lo up") != 0 ||
		    system("ip addr add 127.0.0.2/8 dev lo 2>/dev/null; true") != 0)
			_exit(2);
		s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
			_exit(2);
		close(s);
		if (write(up[1], &cookie, sizeof(cookie)) != sizeof(cookie) || read(down[0], &go, 1) != 1)
			_exit(2);
		_exit(probe());
	}
	if (read(up[0], &cookie, sizeof(cookie)) == sizeof(cookie) && listed) {
		struct pw_sock_netns pod = { .ifindex = 7, .flags = flags };
		uint32_t ip = pwt_ip(POD_IP);

		memcpy(pod.ip, &ip, 4);
		bpf_map_update_elem(netns_fd, &cookie, &pod, BPF_ANY);
	}
	go = 1;
	if (write(down[1], &go, 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	bpf_map_delete_elem(netns_fd, &cookie);
	for (int i = 0; i < 2; i++) {
		close(up[i]);
		close(down[i]);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *pod_result(int r)
{
	return r == POD_TRANSLATED ? "translated" : r == POD_UNTOUCHED ? "untouched" : "broken (setup or a wrong peer)";
}

static void test_pods(void)
{
	struct pw_affinity_key ak = { .svc_id = 5 };
	struct pw_affinity av;
	uint32_t ip = pwt_ip(POD_IP);
	int r;

	r = in_pod(1, 0, probe_clusterip);
	PWT_CHECK(r == POD_TRANSLATED, "connect4: a pod of this node (pw_sock_netns): TCP to a ClusterIP goes "
		  "to the backend, getpeername shows the ClusterIP", "%s", pod_result(r));
	r = in_pod(1, 0, probe_udp);
	PWT_CHECK(r == POD_TRANSLATED, "sendmsg4/recvmsg4: a pod of this node: unconnected UDP to a ClusterIP, "
		  "the answer from the ClusterIP", "%s", pod_result(r));
	r = in_pod(1, 0, probe_nodeip_nodeport);
	PWT_CHECK(r == POD_TRANSLATED, "connect4: a pod of this node: NodePort on the node IP translated",
		  "%s", pod_result(r));
	r = in_pod(1, 0, probe_loopback_nodeport);
	PWT_CHECK(r == POD_UNTOUCHED, "connect4: a pod's 127.0.0.1:nodePort is the pod's own loopback, "
		  "not translated", "%s", pod_result(r));
	memcpy(ak.client, &ip, 4);
	r = in_pod(1, 0, probe_affinity);
	PWT_CHECK(r == POD_TRANSLATED && bpf_map_lookup_elem(aff_fd, &ak, &av) == 0 && av.backend_id == 1,
		  "connect4: a pod's ClientIP affinity is keyed by the pod's IP", "%s, affinity entry %s",
		  pod_result(r), bpf_map_lookup_elem(aff_fd, &ak, &av) == 0 ? "present" : "absent");
	r = in_pod(0, 0, probe_clusterip);
	PWT_CHECK(r == POD_UNTOUCHED, "connect4: a netns not in pw_sock_netns (another node's pod) is untouched",
		  "%s", pod_result(r));
	r = in_pod(1, PW_EP_F_NO_SOCK_LB, probe_clusterip);
	PWT_CHECK(r == POD_UNTOUCHED, "connect4: an opted-out pod (PW_EP_F_NO_SOCK_LB) is untouched",
		  "%s", pod_result(r));
	r = in_pod(1, PW_EP_F_NO_SOCK_LB, probe_udp);
	PWT_CHECK(r == POD_UNTOUCHED, "sendmsg4: an opted-out pod's unconnected UDP is untouched",
		  "%s", pod_result(r));
}

int main(void)
{
	int cg_fd = -1, tcp, udp;

	if (setup(&cg_fd) != 0) {
		PWT_CHECK(0, "socket LB: sandbox and load", "setup failed: %s", strerror(errno));
		return pwt_done();
	}
	test_run_probe();
	if (cg_fd < 0) {
		printf("ok - # SKIP no cgroup2 mount: the socket hooks cannot be attached\n");
		sock_bpf__destroy(skel);
		return pwt_done();
	}
	PWT_CHECK(attach(cg_fd) == 0, "socket LB: the four programs attach to the cgroup2 root", "%s", strerror(errno));
	tcp = listener(SOCK_STREAM, 8080);
	udp = listener(SOCK_DGRAM, 8081);
	if (tcp < 0 || udp < 0) {
		PWT_CHECK(0, "socket LB: backends listen", "%s", strerror(errno));
	} else {
		check_tcp(tcp, "10.96.0.10", 80, "ClusterIP");
		check_tcp(tcp, "127.0.0.1", 30080, "NodePort on 127.0.0.1");
		check_tcp(tcp, "192.168.1.11", 30080, "NodePort on the node IP");
		check_tcp(tcp, "192.168.1.21", 30080, "NodePort on a second address of the node");
		check_not_nodeport("192.168.1.22", 30080);
		check_udp(udp, 0);
		check_udp(udp, 1);
		test_hostport(tcp, udp);
		test_revnat_entries(tcp);
		test_no_backend();
		test_other_netns();
		test_pods();
	}
	for (int i = 0; i < 4; i++)
		bpf_link__destroy(links[i]);
	close(cg_fd);
	sock_bpf__destroy(skel);
	return pwt_done();
}
