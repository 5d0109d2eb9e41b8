/* DEL and GC: release everything an attachment holds, whether or not its
 * netns, veth, reservation or the agent still exist. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "plugin.h"

int pw_cmd_del(struct pw_cni *c)
{
	struct pw_cni_node node;
	struct pw_ipam ipam;
	struct pw_nl *nl = NULL;
	bool have_ipam;
	int err, code;

	/* CNI_NETNS is not needed: deleting the host end destroys the pod end,
	 * wherever (and whether) its netns still is. */
	pw_node_open_partial(c, &node);
	err = pw_node_ipam_open(c, &node, &ipam, false);
	have_ipam = err == 0;
	if (have_ipam && (err = pw_ipam_lock(&ipam))) {
		code = pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-err), "cannot lock %s", c->paths.ipam_dir);
		goto out;
	}
	err = pw_nl_open(&nl);
	if (err) {
		code = pw_cni_fail(&c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot open a netlink socket");
		goto out;
	}
	code = pw_teardown(c, &node, have_ipam ? &ipam : NULL, nl, c->env.container_id, c->env.ifname);
	if (!code)
		pw_info("DEL %s/%s: done", c->env.container_id, c->env.ifname);
out:
	pw_nl_close(nl);
	if (have_ipam)
		pw_ipam_close(&ipam);
	pw_node_close(&node);
	return code;
}

int pw_cmd_gc(struct pw_cni *c)
{
	struct pw_ipam_entry *entries = NULL;
	struct pw_cni_node node;
	struct pw_ipam ipam;
	struct pw_nl *nl = NULL;
	int err, n, code = 0, freed = 0, swept;

	pw_node_open_partial(c, &node);
	err = pw_node_ipam_open(c, &node, &ipam, false);
	if (err == -ENOENT)
		goto out_node;                 /* no reservation was ever made */
	if (err || (err = pw_ipam_lock(&ipam))) {
		code = pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-err), "cannot lock %s", c->paths.ipam_dir);
		goto out_node;
	}
	if ((err = pw_nl_open(&nl))) {
		code = pw_cni_fail(&c->err, PW_CNI_E_NETLINK, strerror(-err), "cannot open a netlink socket");
		goto out;
	}
	/* What a plugin killed mid-write left: no attachment to tear down,
	 * only files (an unreadable reservation would otherwise hold its
	 * address until reboot). */
	swept = pw_ipam_sweep(&ipam);
	if (swept > 0)
		pw_info("GC: removed %d stale IPAM files", swept);
	else if (swept < 0)
		pw_warn("GC: cannot sweep %s: %s", c->paths.ipam_dir, strerror(-swept));
	n = pw_ipam_list(&ipam, &entries);
	if (n < 0) {
		code = pw_cni_fail(&c->err, PW_CNI_E_IPAM, strerror(-n), "cannot list %s", c->paths.ipam_dir);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (pw_cni_conf_attachment_valid(&c->conf, entries[i].container_id, entries[i].ifname))
			continue;
		/* Keep going on errors: one stuck attachment must not pin the rest. */
		if (pw_teardown(c, &node, &ipam, nl, entries[i].container_id, entries[i].ifname)) {
			pw_warn("GC %s/%s: %s", entries[i].container_id, entries[i].ifname, c->err.msg);
			if (!code)
				code = c->err.code;
			continue;
		}
		freed++;
	}
	pw_info("GC: %d of %d attachments released", freed, n);
	if (code)
		pw_cni_fail(&c->err, code, NULL, "GC could not release every stale attachment (see the log)");
out:
	free(entries);
	pw_nl_close(nl);
	pw_ipam_close(&ipam);
out_node:
	pw_node_close(&node);
	return code;
}
