/* The JSON the plugin prints: ADD results, VERSION, errors. Each in the
 * format of the spec version it was asked in (0.4.0 ips carry "version";
 * 1.x do not; 1.1.0 interfaces carry "mtu"). */
#include <stdio.h>
#include <string.h>
#include "cidr.h"
#include "plugin.h"

void pw_mac_format(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static cJSON *interface_json(enum pw_cni_version v, const char *name, const uint8_t mac[6],
			     const char *sandbox, int mtu)
{
	cJSON *o = cJSON_CreateObject();
	char macs[18];

	pw_mac_format(mac, macs);
	if (!o || !cJSON_AddStringToObject(o, "name", name) || !cJSON_AddStringToObject(o, "mac", macs) ||
	    (v >= PW_CNI_V_1_1_0 && mtu > 0 && !cJSON_AddNumberToObject(o, "mtu", mtu)) ||
	    (sandbox && !cJSON_AddStringToObject(o, "sandbox", sandbox))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *pw_result_json(enum pw_cni_version v, const struct pw_attachment *a)
{
	cJSON *o = cJSON_CreateObject(), *ifs, *ips, *ip, *routes, *rt;
	char addr[PW_CIDR_STRLEN + 4], gw[PW_IP4_STRLEN];

	if (!o)
		return NULL;
	pw_ip4_format(a->ip, addr);
	snprintf(addr + strlen(addr), sizeof(addr) - strlen(addr), "/32");
	pw_ip4_format(a->gateway, gw);
	if (!cJSON_AddStringToObject(o, "cniVersion", pw_cni_version_name(v)) ||
	    !(ifs = cJSON_AddArrayToObject(o, "interfaces")) ||
	    !cJSON_AddItemToArray(ifs, interface_json(v, a->host_if, a->host_mac, NULL, a->mtu)) ||
	    !cJSON_AddItemToArray(ifs, interface_json(v, a->pod_if, a->pod_mac, a->sandbox, a->mtu)) ||
	    !(ips = cJSON_AddArrayToObject(o, "ips")) ||
	    !(ip = cJSON_CreateObject()) || !cJSON_AddItemToArray(ips, ip) ||
	    (v == PW_CNI_V_0_4_0 && !cJSON_AddStringToObject(ip, "version", "4")) ||
	    !cJSON_AddStringToObject(ip, "address", addr) ||
	    !cJSON_AddStringToObject(ip, "gateway", gw) ||
	    !cJSON_AddNumberToObject(ip, "interface", 1) ||   /* index into interfaces: the pod end */
	    !(routes = cJSON_AddArrayToObject(o, "routes")) ||
	    !(rt = cJSON_CreateObject()) || !cJSON_AddItemToArray(routes, rt) ||
	    !cJSON_AddStringToObject(rt, "dst", "0.0.0.0/0") ||
	    !cJSON_AddStringToObject(rt, "gw", gw) ||
	    !cJSON_AddObjectToObject(o, "dns")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *pw_version_json(enum pw_cni_version v)
{
	cJSON *o = cJSON_CreateObject(), *list;

	if (!o || !cJSON_AddStringToObject(o, "cniVersion", pw_cni_version_name(v)) ||
	    !(list = cJSON_AddArrayToObject(o, "supportedVersions"))) {
		cJSON_Delete(o);
		return NULL;
	}
	for (int i = PW_CNI_V_0_4_0; i <= PW_CNI_V_1_1_0; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(pw_cni_version_name((enum pw_cni_version)i)));
	return o;
}

cJSON *pw_error_json(enum pw_cni_version v, const struct pw_cni_err *err)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "cniVersion", pw_cni_version_name(v)) ||
	    !cJSON_AddNumberToObject(o, "code", err->code) ||
	    !cJSON_AddStringToObject(o, "msg", err->msg) ||
	    (err->details[0] && !cJSON_AddStringToObject(o, "details", err->details))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
