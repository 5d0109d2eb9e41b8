/* Built-in IPAM (userspace/lib/ipam.c) in a private temp dir. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pwtest.h"
#include "cidr.h"
#include "ipam.h"

#define NPROC 16

static char tmpdir[] = "/tmp/pwt-ipam-XXXXXX";

static struct pw_cidr C(const char *s)
{
	struct pw_cidr c = { 0, 0 };

	pw_cidr_parse(s, &c);
	return c;
}

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

/* A fresh ipam dir under the test's temp dir. */
static int open_pool(struct pw_ipam *ipam, const char *sub, const char *cidr)
{
	char dir[256];
	struct pw_cidr pool = C(cidr);

	snprintf(dir, sizeof(dir), "%s/%s/ipam", tmpdir, sub);
	return pw_ipam_open(ipam, dir, &pool);
}

static void test_basic(void)
{
	struct pw_ipam ipam;
	uint32_t a, b, again;
	char path[512];
	FILE *f;
	char buf[128] = "";

	PWT_EQ_INT(open_pool(&ipam, "basic", "10.244.1.0/24"), 0, "open creates dir");
	PWT_EQ_INT(pw_ipam_lock(&ipam), 0, "lock");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c1", "eth0", &a), 0, "allocate first");
	PWT_EQ_INT(a, IP("10.244.1.2"), "first address skips network and gateway");
	snprintf(path, sizeof(path), "%s/10.244.1.2", ipam.dir);
	f = fopen(path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		buf[n] = '\0';
		fclose(f);
	}
	PWT_EQ_STR(buf, "c1\neth0\n", "reservation file holds container id and ifname");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c1", "eth0", &again), -EEXIST, "duplicate (cid, ifname) refused");
	PWT_EQ_INT(again, a, "duplicate reports the held address");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c1", "eth1", &b), 0, "same container, other ifname");
	PWT_EQ_INT(b, IP("10.244.1.3"), "second address is next");
	PWT_EQ_INT(pw_ipam_find(&ipam, "c1", "eth1", &again), 0, "find");
	PWT_EQ_INT(again, b, "find returns the address");
	PWT_EQ_INT(pw_ipam_find(&ipam, "nope", "eth0", &again), -ENOENT, "find unknown -ENOENT");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "bad\nid", "eth0", &again), -EINVAL, "newline in id refused");

	PWT_EQ_INT(pw_ipam_release(&ipam, "c1", "eth0"), 0, "release");
	PWT_EQ_INT(pw_ipam_find(&ipam, "c1", "eth0", &again), -ENOENT, "released is gone");
	PWT_EQ_INT(access(path, F_OK), -1, "reservation file removed");
	PWT_EQ_INT(pw_ipam_release(&ipam, "c1", "eth0"), 0, "release twice is ok");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c2", "eth0", &again), 0, "allocate after release");
	PWT_EQ_INT(again, IP("10.244.1.4"), "round robin: released .2 not reused immediately");

	struct pw_ipam_entry *list = NULL;
	int n = pw_ipam_list(&ipam, &list);

	PWT_EQ_INT(n, 2, "list counts reservations");
	if (n == 2) {
		PWT_EQ_INT(list[0].ip, IP("10.244.1.3"), "list sorted [0] ip");
		PWT_EQ_STR(list[0].container_id, "c1", "list [0] container");
		PWT_EQ_STR(list[0].ifname, "eth1", "list [0] ifname");
		PWT_EQ_INT(list[1].ip, IP("10.244.1.4"), "list [1] ip");
		PWT_EQ_STR(list[1].container_id, "c2", "list [1] container");
	}
	free(list);
	pw_ipam_unlock(&ipam);
	pw_ipam_close(&ipam);
}

/* A file in the ipam dir with content, its mtime age_s seconds ago. */
static void put_file(const struct pw_ipam *ipam, const char *name, const char *content, int age_s)
{
	struct timeval tv[2];
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ipam->dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	fputs(content, f);
	fclose(f);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	utimes(path, tv);
}

static int exists(const struct pw_ipam *ipam, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", ipam->dir, name);
	return access(path, F_OK) == 0;
}

/* A pid that no longer exists: a child, reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

/* What a writer killed mid-way leaves: an empty or garbled reservation
 * (older podwire), a temporary file. Allocation takes over a stale
 * reservation but not a fresh one; the sweep (GC) removes stale ones and
 * dead writers' temporary files; neither is ever listed as a reservation. */
static void test_stale(void)
{
	int old = PW_IPAM_STALE_S + 5;
	struct pw_ipam_entry *list = NULL;
	struct pw_ipam ipam;
	char name[64];
	uint32_t ip;
	int n;

	/* 10.0.1.0/29: .2 .. .6 */
	PWT_EQ_INT(open_pool(&ipam, "stale", "10.0.1.0/29"), 0, "open stale pool");
	pw_ipam_lock(&ipam);
	put_file(&ipam, "10.0.1.2", "", 0);
	put_file(&ipam, "10.0.1.3", "", old);
	put_file(&ipam, "10.0.1.4", "garbage without a newline", old);
	snprintf(name, sizeof(name), "reserving.tmp.%d", (int)dead_pid());
	put_file(&ipam, name, "tmp1\neth0\n", 0);
	put_file(&ipam, "last.tmp.999999999", "10.0.1.9\n", 0);
	PWT_EQ_INT(pw_ipam_list(&ipam, &list), 0, "unreadable reservations and temporary files are not listed");
	free(list);
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "s1", "eth0", &ip), 0, "allocate next to a fresh empty reservation");
	PWT_EQ_INT(ip, IP("10.0.1.3"), "a fresh empty reservation is skipped, a stale one taken over");
	PWT_EXPECT(exists(&ipam, "10.0.1.2"), "the fresh empty reservation is left alone");
	PWT_EQ_INT(pw_ipam_find(&ipam, "s1", "eth0", &ip), 0, "the taken-over address is found");
	PWT_EXPECT(!exists(&ipam, "reserving.tmp.0") && !exists(&ipam, "10.0.1.7"), "no stray names");

	n = pw_ipam_sweep(&ipam);
	PWT_EQ_INT(n, 3, "sweep: the garbled stale reservation and two dead writers' temporary files");
	PWT_EXPECT(!exists(&ipam, "10.0.1.4"), "sweep removed the garbled stale reservation");
	PWT_EXPECT(!exists(&ipam, name), "sweep removed the dead writer's reservation temporary");
	PWT_EXPECT(!exists(&ipam, "last.tmp.999999999"), "sweep removed the dead writer's last temporary");
	PWT_EXPECT(exists(&ipam, "10.0.1.2"), "sweep kept the fresh empty reservation (a writer may be at it)");
	PWT_EXPECT(exists(&ipam, "10.0.1.3"), "sweep kept the good reservation");
	PWT_EXPECT(exists(&ipam, "lock") && exists(&ipam, "last"), "sweep kept lock and last");

	snprintf(name, sizeof(name), "reserving.tmp.%d", (int)getpid());
	put_file(&ipam, name, "x\neth0\n", 0);
	PWT_EQ_INT(pw_ipam_sweep(&ipam), 0, "a live writer's fresh temporary file stays");
	put_file(&ipam, name, "x\neth0\n", old);
	put_file(&ipam, "10.0.1.2", "", old);
	PWT_EQ_INT(pw_ipam_sweep(&ipam), 2, "an old temporary file and an empty reservation past the grace go");
	PWT_EQ_INT(pw_ipam_list(&ipam, &list), 1, "one reservation left");
	free(list);
	pw_ipam_unlock(&ipam);
}

/* The pod's namespace and name travel with the reservation. */
static void test_pod_names(void)
{
	struct pw_ipam_entry owner = { .container_id = "c9", .ifname = "eth0",
				       .k8s_namespace = "default", .k8s_pod_name = "web-0" };
	struct pw_ipam_entry *list = NULL;
	struct pw_ipam ipam;
	char path[512], buf[128] = "";
	uint32_t ip = 0;
	FILE *f;
	int n;

	PWT_EQ_INT(open_pool(&ipam, "names", "10.244.3.0/24"), 0, "open names pool");
	pw_ipam_lock(&ipam);
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), 0, "reserve with pod names");
	snprintf(path, sizeof(path), "%s/10.244.3.2", ipam.dir);
	if ((f = fopen(path, "r"))) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	PWT_EQ_STR(buf, "c9\neth0\ndefault\nweb-0\n", "reservation file holds namespace and name");
	n = pw_ipam_list(&ipam, &list);
	PWT_EQ_INT(n, 1, "listed");
	if (n == 1) {
		PWT_EQ_STR(list[0].k8s_namespace, "default", "list: namespace");
		PWT_EQ_STR(list[0].k8s_pod_name, "web-0", "list: pod name");
	}
	free(list);
	strcpy(owner.container_id, "c10");
	strcpy(owner.k8s_pod_name, "a\nb");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), -EINVAL, "newline in pod name refused");
	pw_ipam_unlock(&ipam);
}

/* A requested address: taken when free and a pod address of the pool. */
static void test_requested(void)
{
	struct pw_ipam_entry owner = { .container_id = "r1", .ifname = "eth0" }, held;
	struct pw_ipam ipam;
	uint32_t ip = 0, next = 0;

	PWT_EQ_INT(open_pool(&ipam, "req", "10.244.4.0/24"), 0, "open requested pool");
	pw_ipam_lock(&ipam);
	owner.ip = IP("10.244.4.77");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), 0, "requested free address");
	PWT_EQ_INT(ip, IP("10.244.4.77"), "got the requested address");
	strcpy(owner.container_id, "r2");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), -EADDRINUSE, "requested address held by another");
	owner.ip = IP("10.244.5.7");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), -EADDRNOTAVAIL, "requested address outside the pool");
	owner.ip = IP("10.244.4.1");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), -EADDRNOTAVAIL, "requested gateway refused");
	owner.ip = IP("10.244.4.255");
	PWT_EQ_INT(pw_ipam_reserve(&ipam, &owner, &ip), -EADDRNOTAVAIL, "requested broadcast refused");
	PWT_EQ_INT(pw_ipam_find_container(&ipam, "r2", &held), -ENOENT, "refused requests reserved nothing");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "r3", "eth0", &next), 0, "allocate after a requested one");
	PWT_EQ_INT(next, IP("10.244.4.2"), "round robin not moved by the requested address");
	PWT_EQ_INT(pw_ipam_find_container(&ipam, "r1", &held), 0, "find by container");
	PWT_EQ_STR(held.ifname, "eth0", "find by container: its ifname");
	PWT_EQ_INT(held.ip, IP("10.244.4.77"), "find by container: its address");
	pw_ipam_unlock(&ipam);
}

static void test_exhaustion_and_wrap(void)
{
	struct pw_ipam ipam;
	uint32_t ip, seen[8];
	char cid[16];
	int ok = 1;

	/* 10.0.0.8/29: .8 network, .9 gateway, .15 broadcast, 5 usable. */
	PWT_EQ_INT(open_pool(&ipam, "small", "10.0.0.8/29"), 0, "open /29");
	pw_ipam_lock(&ipam);
	for (int i = 0; i < 5; i++) {
		snprintf(cid, sizeof(cid), "c%d", i);
		if (pw_ipam_allocate(&ipam, cid, "eth0", &seen[i]) != 0)
			ok = 0;
		else if (seen[i] == IP("10.0.0.8") || seen[i] == IP("10.0.0.9") || seen[i] == IP("10.0.0.15"))
			ok = 0;
	}
	PWT_EXPECT(ok, "5 allocations in a /29, none network/gateway/broadcast");
	PWT_EQ_INT(seen[0], IP("10.0.0.10"), "/29 first");
	PWT_EQ_INT(seen[4], IP("10.0.0.14"), "/29 last");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c5", "eth0", &ip), -ENOSPC, "exhausted /29 gives -ENOSPC");
	PWT_EQ_INT(pw_ipam_release(&ipam, "c2", "eth0"), 0, "release middle");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c6", "eth0", &ip), 0, "allocate wraps around");
	PWT_EQ_INT(ip, IP("10.0.0.12"), "wrapped onto the only free address");
	pw_ipam_unlock(&ipam);

	PWT_EQ_INT(open_pool(&ipam, "tiny", "10.0.0.4/31"), 0, "open /31");
	PWT_EQ_INT(pw_ipam_allocate(&ipam, "c", "eth0", &ip), -ENOSPC, "/31 has no pod address");
}

/* 16 processes allocate concurrently, each under the lock: 16 distinct IPs. */
static void test_concurrency(void)
{
	struct pw_ipam ipam;
	pid_t pids[NPROC];
	int fds[2], ok = 1;
	uint32_t got[NPROC];
	int n = 0;

	PWT_EQ_INT(open_pool(&ipam, "conc", "10.244.9.0/24"), 0, "open concurrency pool");
	if (pipe(fds))
		return;
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct pw_ipam mine;
			char cid[32];
			uint32_t ip = 0;
			int rc;

			close(fds[0]);
			open_pool(&mine, "conc", "10.244.9.0/24");
			snprintf(cid, sizeof(cid), "container-%d", i);
			if (pw_ipam_lock(&mine))
				_exit(2);
			rc = pw_ipam_allocate(&mine, cid, "eth0", &ip);
			usleep(1000);   /* hold the lock a little: makes races visible */
			pw_ipam_unlock(&mine);
			if (rc == 0 && write(fds[1], &ip, sizeof(ip)) != sizeof(ip))
				_exit(3);
			_exit(rc ? 1 : 0);
		}
	}
	close(fds[1]);
	for (int i = 0; i < NPROC; i++) {
		int st = 0;

		if (pids[i] < 0 || waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
	}
	while (n < NPROC && read(fds[0], &got[n], sizeof(got[n])) == sizeof(got[n]))
		n++;
	close(fds[0]);
	PWT_EXPECT(ok, "16 concurrent allocators all succeed");
	PWT_EQ_INT(n, NPROC, "16 addresses reported");
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (got[i] == got[j])
				ok = 0;
	PWT_EXPECT(ok, "16 concurrent allocations are distinct");

	struct pw_ipam_entry *list = NULL;
	int cnt = pw_ipam_list(&ipam, &list);

	PWT_EQ_INT(cnt, NPROC, "16 reservations on disk");
	free(list);
}

int main(void)
{
	char cmd[300];

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_basic();
	test_pod_names();
	test_stale();
	test_requested();
	test_exhaustion_and_wrap();
	test_concurrency();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return pwt_done();
}
