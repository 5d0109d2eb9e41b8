/* Built-in IPAM (see ipam.h). Layout of the ipam dir:
 *   lock         flock'd for the duration of an ADD/DEL/GC
 *   last         dotted IP handed out last (round-robin position)
 *   10.244.1.2   one file per reservation: "<container id>\n<ifname>\n", then
 *                "<namespace>\n<pod name>\n" when the runtime named the pod
 *   *.tmp.<pid>  a file being written by process pid (never a reservation)
 * A reservation is written to a temporary file and link()ed to its IP's
 * name: it appears whole or not at all, whenever the writer dies, and link()
 * fails with EEXIST like O_EXCL, so even a caller that forgot the lock cannot
 * hand one address out twice. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "file.h"
#include "ipam.h"
#include "paths.h"

#define IPAM_LOCK "lock"
#define IPAM_LAST "last"
#define IPAM_TMP ".tmp."        /* pw_file_write_atomic's temporary names: <name>.tmp.<pid> */
#define IPAM_PENDING "reserving"

int pw_ipam_open(struct pw_ipam *ipam, const char *dir, const struct pw_cidr *pool)
{
	int err;

	memset(ipam, 0, sizeof(*ipam));
	ipam->lock_fd = -1;
	if (snprintf(ipam->dir, sizeof(ipam->dir), "%s", dir) >= (int)sizeof(ipam->dir))
		return -ENAMETOOLONG;
	ipam->pool = *pool;
	err = pw_mkdirs(ipam->dir, 0755);
	return err;
}

void pw_ipam_close(struct pw_ipam *ipam)
{
	pw_ipam_unlock(ipam);
}

int pw_ipam_lock(struct pw_ipam *ipam)
{
	char path[PW_PATH_MAX + 16];
	int fd;

	if (ipam->lock_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/" IPAM_LOCK, ipam->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	ipam->lock_fd = fd;
	return 0;
}

void pw_ipam_unlock(struct pw_ipam *ipam)
{
	if (ipam->lock_fd >= 0) {
		/* Closing the only fd of the open file description drops the flock. */
		close(ipam->lock_fd);
		ipam->lock_fd = -1;
	}
}

/* The names end up as file content lines: no newline, no NUL, bounded. */
static int valid_owner(const char *container_id, const char *ifname)
{
	if (!container_id || !*container_id || !ifname || !*ifname)
		return 0;
	if (strlen(container_id) >= sizeof(((struct pw_ipam_entry *)0)->container_id) ||
	    strlen(ifname) >= sizeof(((struct pw_ipam_entry *)0)->ifname))
		return 0;
	return !strchr(container_id, '\n') && !strchr(ifname, '\n');
}

static int valid_pod(const struct pw_ipam_entry *o)
{
	return strnlen(o->k8s_namespace, sizeof(o->k8s_namespace)) < sizeof(o->k8s_namespace) &&
	       strnlen(o->k8s_pod_name, sizeof(o->k8s_pod_name)) < sizeof(o->k8s_pod_name) &&
	       !strchr(o->k8s_namespace, '\n') && !strchr(o->k8s_pod_name, '\n');
}

/* Next line of *p into out (at most outlen - 1 characters); "" past the end.
 * -EINVAL when the line is too long for out. */
static int take_line(char **p, char *out, size_t outlen)
{
	char *nl = strchr(*p, '\n');
	size_t n = nl ? (size_t)(nl - *p) : strlen(*p);

	if (n >= outlen)
		return -EINVAL;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += nl ? n + 1 : n;
	return 0;
}

/* Reads a reservation file into e; 0 or -errno/-EINVAL for a garbled file. */
static int read_reservation(const char *dir, struct pw_ipam_entry *e)
{
	char path[PW_PATH_MAX + 32], name[PW_IP4_STRLEN], buf[1024], *p = buf;
	ssize_t n;
	int fd;

	pw_ip4_format(e->ip, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	/* At least "<id>\n<ifname>": anything shorter is not a reservation. */
	if (!strchr(buf, '\n') || take_line(&p, e->container_id, sizeof(e->container_id)) ||
	    take_line(&p, e->ifname, sizeof(e->ifname)) || !*e->container_id || !*e->ifname ||
	    take_line(&p, e->k8s_namespace, sizeof(e->k8s_namespace)) ||
	    take_line(&p, e->k8s_pod_name, sizeof(e->k8s_pod_name)))
		return -EINVAL;
	return 0;
}

/* Calls fn for every reservation file (name parses as an IP in the pool).
 * fn returns non-zero to stop; that value is returned. */
static int for_each_reservation(struct pw_ipam *ipam,
				int (*fn)(const struct pw_ipam_entry *e, void *arg), void *arg)
{
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir(ipam->dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct pw_ipam_entry e;

		memset(&e, 0, sizeof(e));
		if (pw_ip4_parse(de->d_name, &e.ip) || !pw_cidr_contains(&ipam->pool, e.ip))
			continue;
		if (read_reservation(ipam->dir, &e))
			continue;
		ret = fn(&e, arg);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

struct owner_match {
	const char *container_id;
	const char *ifname;       /* NULL: any */
	struct pw_ipam_entry found;
};

static int match_owner(const struct pw_ipam_entry *e, void *arg)
{
	struct owner_match *m = arg;

	if (strcmp(e->container_id, m->container_id) || (m->ifname && strcmp(e->ifname, m->ifname)))
		return 0;
	m->found = *e;
	return 1;
}

/* The reservation of (container_id, ifname), ifname NULL = any. */
static int find_owner(struct pw_ipam *ipam, const char *container_id, const char *ifname,
		      struct pw_ipam_entry *out)
{
	struct owner_match m = { .container_id = container_id, .ifname = ifname };
	int ret;

	if (!valid_owner(container_id, ifname ? ifname : "-"))
		return -EINVAL;
	ret = for_each_reservation(ipam, match_owner, &m);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ENOENT;
	*out = m.found;
	return 0;
}

int pw_ipam_find_container(struct pw_ipam *ipam, const char *container_id, struct pw_ipam_entry *out)
{
	return find_owner(ipam, container_id, NULL, out);
}

int pw_ipam_find(struct pw_ipam *ipam, const char *container_id, const char *ifname, uint32_t *ip)
{
	struct pw_ipam_entry e;
	int ret = find_owner(ipam, container_id, ifname, &e);

	if (!ret)
		*ip = e.ip;
	return ret;
}

static int read_last(struct pw_ipam *ipam, uint32_t *last)
{
	char path[PW_PATH_MAX + 16], buf[PW_IP4_STRLEN + 2];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" IPAM_LAST, ipam->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return pw_ip4_parse(buf, last);
}

/* Best effort: losing the round-robin position only makes reuse earlier. */
static void write_last(struct pw_ipam *ipam, uint32_t ip)
{
	char path[PW_PATH_MAX + 16], buf[PW_IP4_STRLEN + 1];

	snprintf(path, sizeof(path), "%s/" IPAM_LAST, ipam->dir);
	pw_ip4_format(ip, buf);
	strcat(buf, "\n");
	pw_file_write_atomic(path, buf, strlen(buf));
}

/* Whether path was last written more than PW_IPAM_STALE_S seconds ago. */
static bool older_than_grace(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && time(NULL) - st.st_mtime > PW_IPAM_STALE_S;
}

/* A reservation nobody can own: its content is not "<id>\n<ifname>..."
 * (a writer of an older podwire killed between create and write, a hand
 * edit) and it is old enough that no such writer is still at work. */
static bool stale_reservation(const char *dir, uint32_t ip, const char *path)
{
	struct pw_ipam_entry e = { .ip = ip };
	int err = read_reservation(dir, &e);

	return (err == -EINVAL || err == -EIO) && older_than_grace(path);
}

/* A temporary file (<name>.tmp.<pid>) whose writer is gone: the process
 * no longer exists, or it has been at it far longer than a write takes. */
static bool stale_temporary(const char *name, const char *path)
{
	const char *tmp = strstr(name, IPAM_TMP);
	char *end;
	long pid;

	if (!tmp)
		return false;
	pid = strtol(tmp + strlen(IPAM_TMP), &end, 10);
	if (*end || pid <= 0)
		return older_than_grace(path);
	return (kill((pid_t)pid, 0) < 0 && errno == ESRCH) || older_than_grace(path);
}

/* The reservation content of o in <dir>/reserving.tmp.<pid>, ready to be
 * linked to an address's name. */
static int write_pending(struct pw_ipam *ipam, const struct pw_ipam_entry *o, char *tmp, size_t tmplen)
{
	char content[700];
	int fd, len;

	snprintf(tmp, tmplen, "%s/" IPAM_PENDING IPAM_TMP "%d", ipam->dir, (int)getpid());
	len = snprintf(content, sizeof(content), "%s\n%s\n", o->container_id, o->ifname);
	if (*o->k8s_namespace || *o->k8s_pod_name)
		len += snprintf(content + len, sizeof(content) - (size_t)len, "%s\n%s\n",
				o->k8s_namespace, o->k8s_pod_name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, content, (size_t)len) != len) {
		int err = errno ? -errno : -EIO;

		close(fd);
		unlink(tmp);
		return err;
	}
	close(fd);
	return 0;
}

/* Makes the pending file the reservation of ip; -EEXIST if ip is taken.
 * A stale reservation in the way is removed first. */
static int place(struct pw_ipam *ipam, const char *tmp, uint32_t ip)
{
	char path[PW_PATH_MAX + 32], name[PW_IP4_STRLEN];

	pw_ip4_format(ip, name);
	snprintf(path, sizeof(path), "%s/%s", ipam->dir, name);
	if (link(tmp, path) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (!stale_reservation(ipam->dir, ip, path))
		return -EEXIST;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return link(tmp, path) ? -errno : 0;
}

static int allocatable(const struct pw_cidr *pool, uint32_t ip)
{
	return ip != pool->addr && ip != pw_cidr_gateway(pool) && ip != pw_cidr_broadcast(pool);
}

/* owner->ip exactly (the round-robin position stays where it was). */
static int reserve_requested(struct pw_ipam *ipam, const struct pw_ipam_entry *owner, uint32_t *ip)
{
	char tmp[PW_PATH_MAX + 32];
	int err;

	if (pw_cidr_size(&ipam->pool) < 4 || !pw_cidr_contains(&ipam->pool, owner->ip) ||
	    !allocatable(&ipam->pool, owner->ip))
		return -EADDRNOTAVAIL;
	if ((err = write_pending(ipam, owner, tmp, sizeof(tmp))))
		return err;
	err = place(ipam, tmp, owner->ip);
	unlink(tmp);
	if (err)
		return err == -EEXIST ? -EADDRINUSE : err;
	*ip = owner->ip;
	return 0;
}

int pw_ipam_reserve(struct pw_ipam *ipam, const struct pw_ipam_entry *owner, uint32_t *ip)
{
	uint64_t size = pw_cidr_size(&ipam->pool);
	char tmp[PW_PATH_MAX + 32];
	uint32_t last, cand;
	int err;

	if (!valid_owner(owner->container_id, owner->ifname) || !valid_pod(owner))
		return -EINVAL;
	err = pw_ipam_find(ipam, owner->container_id, owner->ifname, ip);
	if (err == 0)
		return -EEXIST;
	if (err != -ENOENT)
		return err;
	if (owner->ip)
		return reserve_requested(ipam, owner, ip);
	/* No network/gateway/broadcast triple fits in a /31 or /32. */
	if (size < 4)
		return -ENOSPC;
	if (read_last(ipam, &last) || !pw_cidr_contains(&ipam->pool, last))
		last = pw_cidr_gateway(&ipam->pool);
	if ((err = write_pending(ipam, owner, tmp, sizeof(tmp))))
		return err;

	cand = last;
	err = -ENOSPC;
	for (uint64_t i = 0; i < size; i++) {
		cand = ipam->pool.addr + (uint32_t)(((uint64_t)(cand - ipam->pool.addr) + 1) % size);
		if (!allocatable(&ipam->pool, cand))
			continue;
		err = place(ipam, tmp, cand);
		if (err != -EEXIST)
			break;
		err = -ENOSPC;
	}
	unlink(tmp);
	if (err)
		return err;
	write_last(ipam, cand);
	*ip = cand;
	return 0;
}

int pw_ipam_allocate(struct pw_ipam *ipam, const char *container_id, const char *ifname, uint32_t *ip)
{
	struct pw_ipam_entry owner = { 0 };

	if (!valid_owner(container_id, ifname))
		return -EINVAL;
	strcpy(owner.container_id, container_id);
	strcpy(owner.ifname, ifname);
	return pw_ipam_reserve(ipam, &owner, ip);
}

int pw_ipam_release(struct pw_ipam *ipam, const char *container_id, const char *ifname)
{
	char path[PW_PATH_MAX + 32], name[PW_IP4_STRLEN];
	uint32_t ip;
	int err;

	/* Loop: a stray duplicate (hand edits, a crash mid-ADD) goes too. */
	while ((err = pw_ipam_find(ipam, container_id, ifname, &ip)) == 0) {
		pw_ip4_format(ip, name);
		snprintf(path, sizeof(path), "%s/%s", ipam->dir, name);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	return err == -ENOENT ? 0 : err;
}

struct list_acc {
	struct pw_ipam_entry *v;
	int n, cap;
};

static int collect(const struct pw_ipam_entry *e, void *arg)
{
	struct list_acc *acc = arg;

	if (acc->n == acc->cap) {
		int cap = acc->cap ? acc->cap * 2 : 16;
		struct pw_ipam_entry *v = realloc(acc->v, (size_t)cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		acc->v = v;
		acc->cap = cap;
	}
	acc->v[acc->n++] = *e;
	return 0;
}

static int cmp_entry_ip(const void *a, const void *b)
{
	uint32_t x = ((const struct pw_ipam_entry *)a)->ip, y = ((const struct pw_ipam_entry *)b)->ip;

	return x < y ? -1 : x > y;
}

int pw_ipam_list(struct pw_ipam *ipam, struct pw_ipam_entry **out)
{
	struct list_acc acc = { 0 };
	int err;

	err = for_each_reservation(ipam, collect, &acc);
	if (err < 0) {
		free(acc.v);
		return err;
	}
	if (acc.n > 1)
		qsort(acc.v, (size_t)acc.n, sizeof(*acc.v), cmp_entry_ip);
	*out = acc.v;
	return acc.n;
}

int pw_ipam_sweep(struct pw_ipam *ipam)
{
	char path[PW_PATH_MAX + 300];
	struct dirent *de;
	int removed = 0;
	uint32_t ip;
	DIR *d;

	d = opendir(ipam->dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		bool stale;

		snprintf(path, sizeof(path), "%s/%s", ipam->dir, de->d_name);
		if (strstr(de->d_name, IPAM_TMP))
			stale = stale_temporary(de->d_name, path);
		else if (pw_ip4_parse(de->d_name, &ip) == 0)
			stale = stale_reservation(ipam->dir, ip, path);
		else
			continue;
		if (stale && unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
