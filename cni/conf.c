/* CNI environment and network-config parsing (see conf.h). Pure: no I/O. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <cjson/cJSON.h>
#include "cidr.h"
#include "k8sname.h"
#include "paths.h"

int pw_cni_fail(struct pw_cni_err *err, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	snprintf(err->details, sizeof(err->details), "%s", details ? details : "");
	return code;
}

/* ---- environment ---------------------------------------------------------- */

static const struct { const char *name; enum pw_cni_cmd cmd; } commands[] = {
	{ "ADD", PW_CNI_ADD }, { "DEL", PW_CNI_DEL }, { "CHECK", PW_CNI_CHECK },
	{ "VERSION", PW_CNI_VERSION }, { "STATUS", PW_CNI_STATUS }, { "GC", PW_CNI_GC },
};

int pw_cni_cmd_parse(const char *s, enum pw_cni_cmd *cmd, struct pw_cni_err *err)
{
	if (!s || !*s)
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "required env variables [CNI_COMMAND] missing");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(s, commands[i].name) == 0) {
			*cmd = commands[i].cmd;
			return 0;
		}
	}
	return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "unknown CNI_COMMAND: %.64s", s);
}

/* SPEC: alphanumeric first, then alphanumerics, '_', '.', '-'. */
static bool valid_container_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(((struct pw_cni_attachment *)0)->container_id) ||
	    !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* SPEC: not empty, not "." or "..", shorter than 16, no '/', ':' or whitespace. */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
			return false;
	return true;
}

int pw_cni_env_check(enum pw_cni_cmd cmd, const struct pw_cni_env *env, struct pw_cni_err *err)
{
	bool need_ids = cmd == PW_CNI_ADD || cmd == PW_CNI_DEL || cmd == PW_CNI_CHECK;
	bool need_netns = cmd == PW_CNI_ADD || cmd == PW_CNI_CHECK;
	char missing[128] = "";

#define NEED(cond, var, name) \
	if ((cond) && (!(var) || !*(var))) \
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), \
			 "%s%s", *missing ? " " : "", name)
	NEED(need_ids, env->container_id, "CNI_CONTAINERID");
	NEED(need_ids, env->ifname, "CNI_IFNAME");
	NEED(need_netns, env->netns, "CNI_NETNS");
#undef NEED
	if (*missing)
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "required env variables [%s] missing", missing);
	if (need_ids && !valid_container_id(env->container_id))
		return pw_cni_fail(err, PW_CNI_E_ENV, env->container_id,
				   "CNI_CONTAINERID is not a valid container ID (alphanumeric first, then [A-Za-z0-9_.-], at most 255)");
	if (need_ids && !valid_ifname(env->ifname))
		return pw_cni_fail(err, PW_CNI_E_ENV, env->ifname,
				   "CNI_IFNAME is not a valid interface name (1-15 chars, no '/', ':' or whitespace)");
	return 0;
}

/* One K8S_POD_* value: copied when valid, else code 4 with the reason. */
static int k8s_arg(const char *key, const char *val, size_t len, const char *(*rule)(const char *),
		   const char *rule_name, char *out, size_t outlen, struct pw_cni_err *err)
{
	char shown[48];
	const char *why;

	if (len >= outlen)
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "CNI_ARGS %s: must be at most %zu characters (%s)",
				   key, outlen - 1, rule_name);
	memcpy(out, val, len);
	out[len] = '\0';
	why = rule(out);
	if (!why)
		return 0;
	/* Cut the value, keep the reason: the message buffer is small. */
	snprintf(shown, sizeof(shown), "%.40s%s", out, len > 40 ? "..." : "");
	out[0] = '\0';
	return pw_cni_fail(err, PW_CNI_E_ENV, shown, "CNI_ARGS %s: \"%s\" is not a valid %s: %s",
			   key, shown, rule_name, why);
}

int pw_cni_mac_parse(const char *s, uint8_t mac[6])
{
	static const uint8_t zero[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		char hex[3] = { p[0], p[1], '\0' };

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) || (i < 5 && p[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	/* A pod's own address: a multicast source or 00:00:... is no host's. */
	if ((mac[0] & 1) || !memcmp(mac, zero, sizeof(zero)))
		return -EADDRNOTAVAIL;
	return 0;
}

/* PODWIRE_SOCKET_LB=true|false. */
static int sock_lb_arg(const char *val, size_t len, struct pw_cni_args *out, struct pw_cni_err *err)
{
	if (len == 4 && !strncmp(val, "true", 4))
		out->no_sock_lb = false;
	else if (len == 5 && !strncmp(val, "false", 5))
		out->no_sock_lb = true;
	else
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "CNI_ARGS PODWIRE_SOCKET_LB: \"%.*s\" is not true or false",
				   (int)(len > 40 ? 40 : len), val);
	return 0;
}

/* IP=: one IPv4 address, no prefix (podman's --ip). */
static int ip_arg(const char *val, size_t len, struct pw_cni_args *out, struct pw_cni_err *err)
{
	char buf[PW_IP4_STRLEN + 1];

	if (len >= sizeof(buf) || (memcpy(buf, val, len), buf[len] = '\0', pw_ip4_parse(buf, &out->ip)))
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "CNI_ARGS IP: \"%.*s\" is not an IPv4 address "
				   "(podwire gives pods one IPv4 address)", (int)(len > 40 ? 40 : len), val);
	out->has_ip = true;
	return 0;
}

/* MAC=: a unicast MAC (podman's --mac-address). */
static int mac_arg(const char *val, size_t len, struct pw_cni_args *out, struct pw_cni_err *err)
{
	char buf[18];
	int r = -EINVAL;

	if (len < sizeof(buf)) {
		memcpy(buf, val, len);
		buf[len] = '\0';
		r = pw_cni_mac_parse(buf, out->mac);
	}
	if (r)
		return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "CNI_ARGS MAC: \"%.*s\" is not %s",
				   (int)(len > 40 ? 40 : len), val,
				   r == -EADDRNOTAVAIL ? "a unicast MAC address (multicast bit set, or all zero)"
						       : "a MAC address (aa:bb:cc:dd:ee:ff)");
	out->has_mac = true;
	return 0;
}

int pw_cni_args_parse(const char *args, struct pw_cni_args *out, struct pw_cni_err *err)
{
	const char *p = args ? args : "";

	memset(out, 0, sizeof(*out));
	while (*p) {
		size_t len = strcspn(p, ";");
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len, vlen = eq ? len - klen - 1 : 0;
		int code = 0;

		if (len > 0 && (!eq || klen == 0))
			return pw_cni_fail(err, PW_CNI_E_ENV, NULL, "CNI_ARGS: \"%.*s\" is not a KEY=VALUE pair",
					   (int)(len > 40 ? 40 : len), p);
		if (vlen > 0 && klen == 17 && !strncmp(p, "K8S_POD_NAMESPACE", klen))
			code = k8s_arg("K8S_POD_NAMESPACE", eq + 1, vlen, pw_k8s_dns1123_label,
				       "namespace (DNS-1123 label)", out->k8s_namespace,
				       sizeof(out->k8s_namespace), err);
		else if (vlen > 0 && klen == 12 && !strncmp(p, "K8S_POD_NAME", klen))
			code = k8s_arg("K8S_POD_NAME", eq + 1, vlen, pw_k8s_dns1123_subdomain,
				       "pod name (DNS-1123 subdomain)", out->k8s_pod_name,
				       sizeof(out->k8s_pod_name), err);
		else if (vlen > 0 && klen == 2 && !strncmp(p, "IP", klen))
			code = ip_arg(eq + 1, vlen, out, err);
		else if (vlen > 0 && klen == 3 && !strncmp(p, "MAC", klen))
			code = mac_arg(eq + 1, vlen, out, err);
		else if (klen == 17 && !strncmp(p, "PODWIRE_SOCKET_LB", klen))
			code = sock_lb_arg(eq + 1, vlen, out, err);
		if (code)
			return code;
		p += len;
		if (*p == ';')
			p++;
	}
	return 0;
}

/* ---- versions --------------------------------------------------------------- */

static const char *const version_names[] = {
	[PW_CNI_V_0_4_0] = "0.4.0", [PW_CNI_V_1_0_0] = "1.0.0", [PW_CNI_V_1_1_0] = "1.1.0",
};

enum pw_cni_version pw_cni_version_parse(const char *s)
{
	for (int v = PW_CNI_V_0_4_0; v <= PW_CNI_V_1_1_0; v++)
		if (s && strcmp(s, version_names[v]) == 0)
			return (enum pw_cni_version)v;
	return PW_CNI_V_NONE;
}

const char *pw_cni_version_name(enum pw_cni_version v)
{
	return v >= PW_CNI_V_0_4_0 && v <= PW_CNI_V_1_1_0 ? version_names[v] : version_names[PW_CNI_V_LATEST];
}

/* ---- network config ------------------------------------------------------------ */

/* Optional string key: 0 if absent or a string that fits, else code 7. */
static int opt_string(const cJSON *o, const char *key, char *out, size_t outlen, struct pw_cni_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"%s\" must be a string", key);
	if (strlen(v->valuestring) >= outlen)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"%s\" is too long (max %zu)",
				   key, outlen - 1);
	snprintf(out, outlen, "%s", v->valuestring);
	return 0;
}

static bool valid_instance(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static int parse_mtu(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "mtu");

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    v->valuedouble < 68 || v->valuedouble > 65535)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
				   "network config: \"mtu\" must be an integer between 68 and 65535");
	c->mtu = v->valueint;
	return 0;
}

static int parse_log(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	char level[16] = "";
	int code;

	if ((code = opt_string(o, "logFile", c->log_file, sizeof(c->log_file), err)) ||
	    (code = opt_string(o, "logLevel", level, sizeof(level), err)))
		return code;
	if (*level && pw_log_level_parse(level, &c->log_level))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, level,
				   "network config: \"logLevel\" must be error, warn, info or debug");
	return 0;
}

static int parse_valid_attachments(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "cni.dev/valid-attachments");
	const cJSON *item;
	int i = 0;

	if (!list || cJSON_IsNull(list))
		return 0;
	if (!cJSON_IsArray(list))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
				   "network config: \"cni.dev/valid-attachments\" must be an array");
	c->has_valid_attachments = true;
	c->n_valid_attachments = cJSON_GetArraySize(list);
	if (c->n_valid_attachments == 0)
		return 0;
	c->valid_attachments = calloc((size_t)c->n_valid_attachments, sizeof(*c->valid_attachments));
	if (!c->valid_attachments)
		return pw_cni_fail(err, PW_CNI_E_IO, NULL, "out of memory");
	cJSON_ArrayForEach(item, list) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "containerID");
		const cJSON *ifn = cJSON_GetObjectItemCaseSensitive(item, "ifname");
		struct pw_cni_attachment *a = &c->valid_attachments[i];

		/* The same rules as CNI_CONTAINERID and CNI_IFNAME: an entry that
		 * can name no attachment (an empty ifname, say) is a config error,
		 * not something GC silently matches against nothing. */
		if (!cJSON_IsString(id) || !cJSON_IsString(ifn) || !valid_container_id(id->valuestring) ||
		    !valid_ifname(ifn->valuestring))
			return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
					   "network config: \"cni.dev/valid-attachments\"[%d] needs a valid "
					   "\"containerID\" and \"ifname\"", i);
		strcpy(a->container_id, id->valuestring);
		strcpy(a->ifname, ifn->valuestring);
		i++;
	}
	return 0;
}

/* prevResult.ips[0].address, when present: what CHECK compares against. */
static int parse_prev_result(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prevResult");
	const cJSON *ips, *ip;

	if (!prev || cJSON_IsNull(prev))
		return 0;
	if (!cJSON_IsObject(prev))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"prevResult\" must be an object");
	ips = cJSON_GetObjectItemCaseSensitive(prev, "ips");
	if (!ips || cJSON_IsNull(ips))
		return 0;
	if (!cJSON_IsArray(ips))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"prevResult.ips\" must be an array");
	cJSON_ArrayForEach(ip, ips) {
		const cJSON *addr = cJSON_GetObjectItemCaseSensitive(ip, "address");
		char buf[PW_CIDR_STRLEN], *slash;
		long prefix;

		if (!cJSON_IsString(addr) || strlen(addr->valuestring) >= sizeof(buf))
			goto bad;
		strcpy(buf, addr->valuestring);
		if (strchr(buf, ':'))
			continue;                       /* IPv6: not ours to check */
		slash = strchr(buf, '/');
		if (!slash)
			goto bad;
		*slash = '\0';
		prefix = strtol(slash + 1, NULL, 10);
		if (pw_ip4_parse(buf, &c->prev_ip) || prefix < 0 || prefix > 32)
			goto bad;
		c->prev_prefix = (uint8_t)prefix;
		c->has_prev_ip = true;
		return 0;
	}
	return 0;
bad:
	return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
			   "network config: \"prevResult.ips\" entries need an \"address\" in CIDR form");
}

/* runtimeConfig "ips": at most one IPv4 address ("a.b.c.d/n" as the
 * conventions write it, or bare); IPv6 entries are not ours. */
static int parse_rt_ips(const cJSON *ips, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *it;

	if (!cJSON_IsArray(ips))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"runtimeConfig.ips\" must be an array");
	cJSON_ArrayForEach(it, ips) {
		char buf[PW_CIDR_STRLEN + 1];

		if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof(buf))
			goto bad;
		if (strchr(it->valuestring, ':'))
			continue;
		strcpy(buf, it->valuestring);
		buf[strcspn(buf, "/")] = '\0';
		if (pw_ip4_parse(buf, &c->rt_ip))
			goto bad;
		if (c->has_rt_ip)
			return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"runtimeConfig.ips\" asks for "
					   "more than one IPv4 address; podwire gives a pod one");
		c->has_rt_ip = true;
	}
	return 0;
bad:
	return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
			   "network config: \"runtimeConfig.ips\" entries must be addresses like \"10.244.1.7/24\"");
}

/* An integer port 1-65535 under key of mapping i. */
static int portmap_port(const cJSON *m, const char *key, int i, uint16_t *out, struct pw_cni_err *err)
{
	const cJSON *v = cJSON_GetObjectItem(m, key);

	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 65535) ||
	    v->valuedouble != floor(v->valuedouble))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, v && cJSON_IsNumber(v) ? NULL : key,
				   "network config: \"runtimeConfig.portMappings[%d].%s\" must be a port 1-65535%s", i,
				   key, cJSON_IsNumber(v) ? "" : " (missing or not a number)");
	*out = (uint16_t)v->valueint;
	return 0;
}

/* "tcp" (also when absent or "") or "udp", in any case. */
static int portmap_proto(const cJSON *m, int i, uint8_t *out, struct pw_cni_err *err)
{
	const cJSON *v = cJSON_GetObjectItem(m, "protocol");

	if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring))
		*out = IPPROTO_TCP;
	else if (cJSON_IsString(v) && !strcasecmp(v->valuestring, "tcp"))
		*out = IPPROTO_TCP;
	else if (cJSON_IsString(v) && !strcasecmp(v->valuestring, "udp"))
		*out = IPPROTO_UDP;
	else
		return pw_cni_fail(err, PW_CNI_E_CONFIG, cJSON_IsString(v) ? v->valuestring : NULL,
				   "network config: \"runtimeConfig.portMappings[%d].protocol\" must be \"tcp\" or "
				   "\"udp\" (the datapath serves no other protocol)", i);
	return 0;
}

/* An IPv4 address of the node, or every one ("", "0.0.0.0" or absent).
 * Not a multicast, broadcast or IPv6 address: podwire is IPv4-only. */
static int portmap_host_ip(const cJSON *m, int i, uint32_t *out, struct pw_cni_err *err)
{
	const cJSON *v = cJSON_GetObjectItem(m, "hostIP");

	*out = 0;
	if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring))
		return 0;
	if (!cJSON_IsString(v) || pw_ip4_parse(v->valuestring, out) || (*out >> 28) >= 0xe)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, cJSON_IsString(v) ? v->valuestring : NULL,
				   "network config: \"runtimeConfig.portMappings[%d].hostIP\" must be a unicast IPv4 "
				   "address or \"\" for every address of the node (podwire is IPv4-only)", i);
	return 0;
}

/* Two mappings of one pod on the same hostPort and protocol, on the same
 * hostIP or one of them on every address, would make the frontend's
 * backend depend on lookup order: refused as the scheduler refuses it. */
static int portmap_overlap(const struct pw_cni_portmap *a, const struct pw_cni_portmap *b)
{
	return a->host_port == b->host_port && a->proto == b->proto &&
	       (a->host_ip == b->host_ip || !a->host_ip || !b->host_ip);
}

/* runtimeConfig "portMappings": [{hostPort, containerPort, protocol, hostIP}].
 * Keys match in any case, as Go's encoding/json matches them in the portmap
 * plugin: containerd (go-cni) sends its struct's field names, "HostPort",
 * "ContainerPort", "Protocol", "HostIP". */
static int parse_rt_portmaps(const cJSON *pm, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *m;
	int i = 0, r;

	if (!cJSON_IsArray(pm))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
				   "network config: \"runtimeConfig.portMappings\" must be an array");
	if (cJSON_GetArraySize(pm) > PW_CNI_MAX_PORTMAPS)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
				   "network config: \"runtimeConfig.portMappings\" has more than %d entries",
				   PW_CNI_MAX_PORTMAPS);
	cJSON_ArrayForEach(m, pm) {
		struct pw_cni_portmap *p = &c->portmaps[i];

		if (!cJSON_IsObject(m))
			return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
					   "network config: \"runtimeConfig.portMappings[%d]\" must be an object", i);
		if ((r = portmap_port(m, "hostPort", i, &p->host_port, err)) ||
		    (r = portmap_port(m, "containerPort", i, &p->container_port, err)) ||
		    (r = portmap_proto(m, i, &p->proto, err)) || (r = portmap_host_ip(m, i, &p->host_ip, err)))
			return r;
		for (int j = 0; j < i; j++)
			if (portmap_overlap(&c->portmaps[j], p))
				return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
						   "network config: \"runtimeConfig.portMappings[%d]\" and [%d] both "
						   "map %s hostPort %u on the same host address", j, i,
						   p->proto == IPPROTO_UDP ? "udp" : "tcp", p->host_port);
		i++;
	}
	c->n_portmaps = i;
	return 0;
}

/* runtimeConfig: the capabilities the conflist advertises ("ips", "mac",
 * "portMappings"). */
static int parse_runtime_config(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(o, "runtimeConfig"), *ips, *mac, *pm;
	int r;

	if (!rt || cJSON_IsNull(rt))
		return 0;
	if (!cJSON_IsObject(rt))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"runtimeConfig\" must be an object");
	ips = cJSON_GetObjectItemCaseSensitive(rt, "ips");
	if (ips && !cJSON_IsNull(ips) && (r = parse_rt_ips(ips, c, err)))
		return r;
	pm = cJSON_GetObjectItemCaseSensitive(rt, "portMappings");
	if (pm && !cJSON_IsNull(pm) && (r = parse_rt_portmaps(pm, c, err)))
		return r;
	mac = cJSON_GetObjectItemCaseSensitive(rt, "mac");
	if (!mac || cJSON_IsNull(mac))
		return 0;
	r = cJSON_IsString(mac) ? pw_cni_mac_parse(mac->valuestring, c->rt_mac) : -EINVAL;
	if (r)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, cJSON_IsString(mac) ? mac->valuestring : NULL,
				   "network config: \"runtimeConfig.mac\" must be %s",
				   r == -EADDRNOTAVAIL ? "a unicast MAC address (multicast bit clear, not all zero)"
						       : "a MAC address string (aa:bb:cc:dd:ee:ff)");
	c->has_rt_mac = true;
	return 0;
}

static int parse_object(const cJSON *o, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "cniVersion");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
	char type[64] = "";
	int code;

	if (!ver)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: missing \"cniVersion\"");
	if (!cJSON_IsString(ver))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: \"cniVersion\" must be a string");
	c->version = pw_cni_version_parse(ver->valuestring);
	if (c->version == PW_CNI_V_NONE)
		return pw_cni_fail(err, PW_CNI_E_VERSION, NULL,
				   "incompatible CNI versions; config is \"%.32s\", plugin supports " PW_CNI_SUPPORTED_JSON,
				   ver->valuestring);
	if (!name)
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL, "network config: missing \"name\"");
	if (!cJSON_IsString(name) || !*name->valuestring || strlen(name->valuestring) >= sizeof(c->name))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, NULL,
				   "network config: \"name\" must be a non-empty string (max %zu)", sizeof(c->name) - 1);
	strcpy(c->name, name->valuestring);
	if ((code = opt_string(o, "type", type, sizeof(type), err)) ||
	    (code = opt_string(o, "instance", c->instance, sizeof(c->instance), err)))
		return code;
	if (!valid_instance(c->instance))
		return pw_cni_fail(err, PW_CNI_E_CONFIG, c->instance,
				   "network config: \"instance\" must match [A-Za-z0-9_-]{1,63}");
	if ((code = parse_mtu(o, c, err)) || (code = parse_log(o, c, err)) ||
	    (code = parse_valid_attachments(o, c, err)) || (code = parse_prev_result(o, c, err)))
		return code;
	if (parse_runtime_config(o, c, &c->rt_err)) {
		c->has_rt_ip = c->has_rt_mac = false;
		c->n_portmaps = 0;
	}
	return 0;
}

int pw_cni_conf_parse(const char *json, struct pw_cni_conf *c, struct pw_cni_err *err)
{
	const char *where = NULL;
	cJSON *o;
	int code;

	memset(c, 0, sizeof(*c));
	snprintf(c->instance, sizeof(c->instance), "%s", PW_DEFAULT_INSTANCE);
	c->log_level = PW_LOG_INFO;
	o = cJSON_ParseWithOpts(json ? json : "", &where, true);
	if (!o) {
		char near[40] = "";

		if (where)
			snprintf(near, sizeof(near), "%.32s", where);
		return pw_cni_fail(err, PW_CNI_E_DECODE, *near ? near : NULL,
				   "failed to decode network config: invalid JSON");
	}
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return pw_cni_fail(err, PW_CNI_E_DECODE, NULL,
				   "failed to decode network config: not a JSON object");
	}
	code = parse_object(o, c, err);
	cJSON_Delete(o);
	if (code)
		pw_cni_conf_free(c);
	return code;
}

void pw_cni_conf_free(struct pw_cni_conf *c)
{
	free(c->valid_attachments);
	c->valid_attachments = NULL;
	c->n_valid_attachments = 0;
}

bool pw_cni_conf_attachment_valid(const struct pw_cni_conf *c, const char *container_id,
				  const char *ifname)
{
	for (int i = 0; i < c->n_valid_attachments; i++)
		if (!strcmp(c->valid_attachments[i].container_id, container_id) &&
		    !strcmp(c->valid_attachments[i].ifname, ifname))
			return true;
	return false;
}
