/* <state_dir>/node.json: the agent's hand-off to the CNI plugin. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "nodeinfo.h"
#include "file.h"

static cJSON *nodeinfo_to_json(const struct pw_nodeinfo *ni)
{
	char cidr[PW_CIDR_STRLEN], gw[PW_IP4_STRLEN];
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	pw_cidr_format(&ni->pod_cidr, cidr);
	pw_ip4_format(ni->gateway, gw);
	if (!cJSON_AddStringToObject(o, "node", ni->node) ||
	    !cJSON_AddStringToObject(o, "podCIDR", cidr) ||
	    !cJSON_AddStringToObject(o, "gateway", gw) ||
	    !cJSON_AddNumberToObject(o, "mtu", ni->mtu) ||
	    !cJSON_AddStringToObject(o, "attach", pw_attach_mode_name(ni->attach)) ||
	    !cJSON_AddStringToObject(o, "podAttach", pw_attach_mode_name(ni->pod_attach)) ||
	    !cJSON_AddStringToObject(o, "podDevice", pw_pod_device_name(ni->pod_device)) ||
	    (ni->uplink[0] && !cJSON_AddStringToObject(o, "uplink", ni->uplink)) ||
	    (ni->routing[0] && !cJSON_AddStringToObject(o, "routing", ni->routing)) ||
	    (ni->config[0] && !cJSON_AddStringToObject(o, "config", ni->config))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* text + "\n" into path, atomically. Frees text. */
static int write_atomic(const char *path, char *text)
{
	size_t n;
	char *line;
	int err;

	if (!text)
		return -ENOMEM;
	n = strlen(text);
	line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	memcpy(line + n, "\n", 2);
	err = pw_file_write_atomic(path, line, n + 1);
	free(line);
	return err;
}

int pw_nodeinfo_write(const char *path, const struct pw_nodeinfo *ni)
{
	cJSON *o = nodeinfo_to_json(ni);
	char *text = o ? cJSON_Print(o) : NULL;

	cJSON_Delete(o);
	return write_atomic(path, text);
}

/* node.json and applied.json are a few hundred bytes: anything past 1 MiB is not ours. */
static char *read_file(const char *path, int *err)
{
	return pw_file_read(path, 1 << 20, NULL, err);
}

static const char *get_string(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int garbled(char *err, size_t errlen, const char *path, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, what);
	return -EINVAL;
}

int pw_nodeinfo_read(const char *path, struct pw_nodeinfo *ni, char *err, size_t errlen)
{
	const char *node, *cidr, *gw, *attach, *pod_attach, *pod_device, *uplink;
	const cJSON *mtu;
	int ret;
	char *text = read_file(path, &ret);
	cJSON *o;

	if (err && errlen)
		err[0] = '\0';
	if (!text) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	o = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return garbled(err, errlen, path, "not a JSON object");
	}
	memset(ni, 0, sizeof(*ni));
	node = get_string(o, "node");
	cidr = get_string(o, "podCIDR");
	gw = get_string(o, "gateway");
	attach = get_string(o, "attach");
	pod_attach = get_string(o, "podAttach");
	uplink = get_string(o, "uplink");
	pod_device = get_string(o, "podDevice");
	mtu = cJSON_GetObjectItemCaseSensitive(o, "mtu");
	if (!node || strlen(node) >= sizeof(ni->node))
		ret = garbled(err, errlen, path, "node: missing or too long");
	else if (!cidr || pw_cidr_parse(cidr, &ni->pod_cidr))
		ret = garbled(err, errlen, path, "podCIDR: missing or not a CIDR");
	else if (!gw || pw_ip4_parse(gw, &ni->gateway) || !pw_cidr_contains(&ni->pod_cidr, ni->gateway))
		ret = garbled(err, errlen, path, "gateway: missing or not an IP in podCIDR");
	else if (!cJSON_IsNumber(mtu) || mtu->valuedouble < 68 || mtu->valuedouble > 65535)
		ret = garbled(err, errlen, path, "mtu: missing or out of range");
	else if (!attach || pw_attach_mode_parse(attach, &ni->attach))
		ret = garbled(err, errlen, path, "attach: missing or not tcx/tc");
	else if (pod_attach && strcmp(pod_attach, "netkit") && pw_attach_mode_parse(pod_attach, &ni->pod_attach))
		ret = garbled(err, errlen, path, "podAttach: not tcx/tc/netkit");
	else if (pod_device && (pw_pod_device_parse(pod_device, &ni->pod_device) ||
				ni->pod_device == PW_POD_DEVICE_AUTO))
		ret = garbled(err, errlen, path, "podDevice: not veth/netkit");
	else if ((pod_attach && !strcmp(pod_attach, "netkit")) != (ni->pod_device == PW_POD_DEVICE_NETKIT))
		ret = garbled(err, errlen, path, "podAttach netkit goes with podDevice netkit, and only with it");
	else if (uplink && strlen(uplink) >= sizeof(ni->uplink))
		ret = garbled(err, errlen, path, "uplink: too long");
	else {
		if (uplink)
			strcpy(ni->uplink, uplink);
		/* optional and informational (podwirectl status): cut, never refused */
		const char *routing = get_string(o, "routing"), *config = get_string(o, "config");

		if (routing)
			snprintf(ni->routing, sizeof(ni->routing), "%s", routing);
		if (config && strlen(config) < sizeof(ni->config))
			strcpy(ni->config, config);
		if (!pod_attach)
			ni->pod_attach = ni->attach;
		else if (ni->pod_device == PW_POD_DEVICE_NETKIT)
			ni->pod_attach = PW_ATTACH_NETKIT;
		strcpy(ni->node, node);
		ni->mtu = mtu->valueint;
		ret = 0;
	}
	cJSON_Delete(o);
	return ret;
}

/* ---------- applied.json ---------- */

void pw_applied_path(const char *state_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/applied.json", state_dir);
}

int pw_applied_write(const char *path, const struct pw_applied *ap)
{
	char digest[24];
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;

	snprintf(digest, sizeof(digest), "%016llx", (unsigned long long)ap->digest);
	if (o && cJSON_AddStringToObject(o, "digest", digest) &&
	    cJSON_AddBoolToObject(o, "ok", ap->ok) &&
	    cJSON_AddBoolToObject(o, "servicesOk", ap->services_ok) &&
	    cJSON_AddNumberToObject(o, "services", ap->services) &&
	    cJSON_AddStringToObject(o, "error", ap->error) &&
	    cJSON_AddStringToObject(o, "restartPending", ap->restart_pending))
		text = cJSON_Print(o);
	cJSON_Delete(o);
	return write_atomic(path, text);
}

int pw_applied_read(const char *path, struct pw_applied *ap)
{
	const cJSON *ok, *sok, *n;
	const char *digest, *error, *pending;
	char *text, *end;
	int ret;
	cJSON *o;

	text = read_file(path, &ret);
	if (!text)
		return ret;
	o = cJSON_Parse(text);
	free(text);
	memset(ap, 0, sizeof(*ap));
	digest = get_string(o, "digest");
	error = get_string(o, "error");
	pending = get_string(o, "restartPending");   /* absent from older agents */
	ok = cJSON_GetObjectItemCaseSensitive(o, "ok");
	sok = cJSON_GetObjectItemCaseSensitive(o, "servicesOk");
	n = cJSON_GetObjectItemCaseSensitive(o, "services");
	ret = -EINVAL;
	if (digest && cJSON_IsBool(ok) && cJSON_IsBool(sok) && cJSON_IsNumber(n)) {
		ap->digest = strtoull(digest, &end, 16);
		if (*digest && !*end) {
			ap->ok = cJSON_IsTrue(ok);
			ap->services_ok = cJSON_IsTrue(sok);
			ap->services = n->valueint;
			snprintf(ap->error, sizeof(ap->error), "%s", error ? error : "");
			snprintf(ap->restart_pending, sizeof(ap->restart_pending), "%s", pending ? pending : "");
			ret = 0;
		}
	}
	cJSON_Delete(o);
	return ret;
}
