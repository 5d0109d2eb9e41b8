/* Paths of one node instance (architecture §3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "paths.h"

static int valid_instance(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static const char *root_from_env(const char *var, const char *def)
{
	const char *v = getenv(var);

	return v && *v ? v : def;
}

/* snprintf into a path buffer; -ENAMETOOLONG instead of a silently cut path. */
#define PATHF(buf, ...) \
	(snprintf(buf, sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf) ? -ENAMETOOLONG : 0)

int pw_paths_init(struct pw_paths *p, const char *instance)
{
	const char *bpffs = root_from_env("PODWIRE_BPFFS_ROOT", PW_BPFFS_ROOT);
	const char *run = root_from_env("PODWIRE_RUN_ROOT", PW_RUN_ROOT);

	memset(p, 0, sizeof(*p));
	if (!valid_instance(instance))
		return -EINVAL;
	snprintf(p->instance, sizeof(p->instance), "%s", instance);
	if (PATHF(p->pin_dir, "%s/%s", bpffs, instance) ||
	    PATHF(p->prog_dir, "%s/progs", p->pin_dir) ||
	    PATHF(p->link_dir, "%s/links", p->pin_dir) ||
	    PATHF(p->state_dir, "%s/%s", run, instance) ||
	    PATHF(p->node_file, "%s/node.json", p->state_dir) ||
	    PATHF(p->ipam_dir, "%s/ipam", p->state_dir) ||
	    PATHF(p->sock_path, "%s/agent.sock", p->state_dir))
		return -ENAMETOOLONG;
	return 0;
}

int pw_mkdirs(const char *path, unsigned mode)
{
	char buf[PW_PATH_MAX * 2];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;

		*s = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*s = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

int pw_link_pin_path(const struct pw_paths *p, const char *ifname, char *buf, size_t len)
{
	size_t n;

	if (!ifname || !*ifname || strchr(ifname, '/'))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "%s/%s", p->link_dir, ifname) >= len)
		return -ENAMETOOLONG;
	/* bpffs refuses '.' in names (reserved); interface names may hold one
	 * (eth0.100) but never ':', so this mapping cannot collide. */
	n = strlen(p->link_dir) + 1;
	for (char *s = buf + n; *s; s++)
		if (*s == '.')
			*s = ':';
	return 0;
}
