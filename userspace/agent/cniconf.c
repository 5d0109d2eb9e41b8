/* The node's CNI conflist, written by the agent once its datapath is loaded
 * and its first reconcile done: kubelet (through containerd) turns a node
 * Ready when a network config appears in the CNI conf dir, so pods are
 * only sent to a node whose datapath can wire them. Where it was written
 * is recorded under the instance's state dir, so that --uninstall removes
 * it without being told the directory again. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "file.h"
#include "log.h"

#define CONFLIST_MAX 4096

/* hostPort (the CNI portMappings capability) is podwire's own: the plugin
 * writes each mapping into the service maps, where the per-packet path and
 * the socket LB (node-local and hostNetwork clients, 127.0.0.1:hostPort)
 * serve it (docs/cni.md, "hostPort"). Debian's portmap plugin was chained
 * before that; a conflist of that time is still recognised as ours by
 * --uninstall. */
#define PORTMAP_ENTRY ",\n              {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}, \"snat\": true}"

enum conflist_kind {
	CONFLIST_CURRENT,          /* podwire with the portMappings capability */
	CONFLIST_OLD,              /* podwire alone (no portmap on the node) */
	CONFLIST_OLD_PORTMAP,      /* podwire with portmap chained */
};

/* cniVersion 1.0.0: the newest containerd 1.6's libcni accepts in a result
 * (docs/kubernetes.md); the plugin answers in the version it is asked in. */
static int conflist_text(const struct pw_paths *p, enum conflist_kind kind, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "{\n"
			 "  \"cniVersion\": \"1.0.0\",\n"
			 "  \"name\": \"podwire\",\n"
			 "  \"plugins\": [{\"type\": \"podwire\", \"instance\": \"%s\"%s}%s]\n"
			 "}\n", p->instance,
			 kind == CONFLIST_CURRENT ? ", \"capabilities\": {\"portMappings\": true}" : "",
			 kind == CONFLIST_OLD_PORTMAP ? PORTMAP_ENTRY : "");

	return n > 0 && (size_t)n < len ? n : -ENAMETOOLONG;
}

static void record_path(const struct pw_paths *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cni-conflist", p->state_dir);
}

int pw_cni_conflist_write(const struct pw_paths *p, const char *dir)
{
	char path[PW_PATH_MAX * 2], record[PW_PATH_MAX + 16], text[CONFLIST_MAX];
	int n = conflist_text(p, CONFLIST_CURRENT, text, sizeof(text)), err;

	if (n < 0)
		return n;
	if (snprintf(path, sizeof(path), "%s/%s", dir, PW_CNI_CONFLIST_NAME) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = pw_mkdirs(dir, 0755);
	if (err) {
		pw_err("cannot create the CNI conf dir %s: %s", dir, strerror(-err));
		return err;
	}
	/* Recorded first: a conflist on disk is always one --uninstall finds. */
	record_path(p, record, sizeof(record));
	err = pw_file_write_atomic(record, path, strlen(path));
	if (!err)
		err = pw_file_write_atomic(path, text, (size_t)n);
	if (err) {
		pw_err("cannot write %s: %s", path, strerror(-err));
		return err;
	}
	pw_info("wrote the CNI network config %s (the node's kubelet reports it Ready now)", path);
	return 0;
}

static bool is_text(const struct pw_paths *p, const char *text, enum conflist_kind kind, char *want, size_t len)
{
	return conflist_text(p, kind, want, len) > 0 && strcmp(text, want) == 0;
}

void pw_cni_conflist_remove(const struct pw_paths *p)
{
	char record[PW_PATH_MAX + 16], want[CONFLIST_MAX];
	char *path, *text;
	int err;

	record_path(p, record, sizeof(record));
	path = pw_file_read(record, PW_PATH_MAX * 2, NULL, &err);
	if (!path)
		return;   /* never written: JSON-file mode without --cni-conf-dir */
	text = pw_file_read(path, CONFLIST_MAX, NULL, &err);
	/* Another instance (or an operator) may have put its own config there
	 * since: only the file this instance wrote is removed. */
	if (text && (is_text(p, text, CONFLIST_CURRENT, want, sizeof(want)) ||
		     is_text(p, text, CONFLIST_OLD, want, sizeof(want)) ||
		     is_text(p, text, CONFLIST_OLD_PORTMAP, want, sizeof(want)))) {
		if (unlink(path) == 0)
			pw_info("removed the CNI network config %s", path);
		else
			pw_warn("cannot remove %s: %s", path, strerror(errno));
	} else if (text) {
		pw_warn("%s is no longer the network config this instance wrote: left in place", path);
	}
	unlink(record);
	free(text);
	free(path);
}
