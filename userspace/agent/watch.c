/* Config file watch. The directory is watched, not the file: editors and
 * `podwirectl` replace the file by renaming a new one over it, which a watch
 * on the file itself would lose; Kubernetes ConfigMap volumes swap a
 * "..data" symlink, which is also caught here. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "agent.h"
#include "log.h"

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int pw_watch_open(const char *config_path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(config_path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == config_path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - config_path), config_path);
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_CREATE | IN_DELETE) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	pw_debug("watching %s for changes of %s", dir, base_name(config_path));
	return fd;
}

bool pw_watch_changed(int fd, const char *config_path)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = base_name(config_path);
	bool changed = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && (strcmp(ev->name, base) == 0 ||
					strncmp(ev->name, "..", 2) == 0))
				changed = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed;
}
