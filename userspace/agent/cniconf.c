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

/* hostPort (the CNI portMappings capability) is served by Debian's portmap
 * plugin chained after podwire, when the node has it, as Flannel's and
 * Cilium's chained configs do: a node-local process or hostNetwork pod
 * reaching 127.0.0.1:hostPort is beyond what tc programs see. */
#define PORTMAP_PLUGIN PW_CNI_BIN_DIR_DEFAULT "/portmap"
#define PORTMAP_ENTRY ",\n              {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}, \"snat\": true}"

/* cniVersion 1.0.0: the newest containerd 1.6's libcni accepts in a result
 * (docs/kubernetes.md); the plugin answers in the version it is asked in. */
static int conflist_text(const struct pw_paths *p, bool portmap, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "{\n"
			 "  \"cniVersion\": \"1.0.0\",\n"
			 "  \"name\": \"podwire\",\n"
			 "  \"plugins\": [{\"type\": \"podwire\", \"instance\": \"%s\"}%s]\n"
			 "}\n", p->instance, portmap ? PORTMAP_ENTRY : "");

	return n > 0 && (size_t)n < len ? n : -ENAMETOOLONG;
}

static void record_path(const struct pw_paths *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cni-conflist", p->state_dir);
}

int pw_cni_conflist_write(const struct pw_paths *p, const char *dir)
{
	char path[PW_PATH_MAX * 2], record[PW_PATH_MAX + 16], text[CONFLIST_MAX];
	bool portmap = access(PORTMAP_PLUGIN, X_OK) == 0;
	int n = conflist_text(p, portmap, text, sizeof(text)), err;

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
	pw_info("wrote the CNI network config %s (the node's kubelet reports it Ready now); hostPort: %s", path,
		portmap ? "portmap chained" : "not served (no " PORTMAP_PLUGIN ")");
	return 0;
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
	if (text && ((conflist_text(p, false, want, sizeof(want)) > 0 && strcmp(text, want) == 0) ||
		     (conflist_text(p, true, want, sizeof(want)) > 0 && strcmp(text, want) == 0))) {
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
