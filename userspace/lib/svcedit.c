/* Service edits on a node config's JSON text (see svcedit.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cidr.h"
#include "config.h"
#include "svcedit.h"

int pw_ip_port_parse(const char *s, uint32_t *ip, uint16_t *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	char addr[PW_IP4_STRLEN];
	unsigned long p = 0;
	size_t n;

	if (!colon || colon == s || !colon[1])
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = '\0';
	/* Digits only: strtoul would take "+80", " 80" or "0x50". */
	for (const char *d = colon + 1; *d; d++) {
		if (*d < '0' || *d > '9' || p > 65535)
			return -EINVAL;
		p = p * 10 + (unsigned long)(*d - '0');
	}
	if (p < 1 || p > 65535 || pw_ip4_parse(addr, ip))
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* The file as it is must be a valid config: an edit never launders a
 * broken file into a "valid" one, nor blames the service for it. Checked
 * only when the edited result fails (a parse of 10,000 services costs
 * ~150 ms): a result that parses came from a file that did, bar the one
 * service changed. */
static int blame_original(const char *json, char *err, size_t errlen)
{
	struct pw_node_config cfg;
	char msg[512];
	int ret = pw_config_parse(json, &cfg, msg, sizeof(msg));

	if (ret == 0) {
		pw_config_free(&cfg);
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "the config is invalid as it is (%s): fix it first", msg);
	return ret;
}

/* The root object and its services array (created if absent). */
static int open_doc(const char *json, cJSON **root, cJSON **arr, char *err, size_t errlen)
{
	*root = cJSON_Parse(json);
	if (!*root || !cJSON_IsObject(*root)) {
		int ret = blame_original(json, err, errlen);

		cJSON_Delete(*root);
		return ret ? ret : -EINVAL;
	}
	*arr = cJSON_GetObjectItemCaseSensitive(*root, "services");
	if (*arr && !cJSON_IsArray(*arr) && !cJSON_IsNull(*arr)) {
		cJSON_Delete(*root);
		return blame_original(json, err, errlen);
	}
	if (!*arr || cJSON_IsNull(*arr)) {
		cJSON_DeleteItemFromObjectCaseSensitive(*root, "services");
		*arr = cJSON_AddArrayToObject(*root, "services");
		if (!*arr) {
			cJSON_Delete(*root);
			return -ENOMEM;
		}
	}
	return 0;
}

static int find_by_name(const cJSON *arr, const char *name)
{
	const cJSON *it;
	int i = 0;

	cJSON_ArrayForEach(it, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return i;
		i++;
	}
	return -1;
}

static cJSON *service_json(const struct pw_svc_edit *e)
{
	cJSON *o = cJSON_CreateObject(), *bes = NULL;
	char ip[PW_IP4_STRLEN];
	bool ok;

	if (!o)
		return NULL;
	ok = cJSON_AddStringToObject(o, "name", e->name ? e->name : "") &&
	     cJSON_AddStringToObject(o, "vip", e->vip ? e->vip : "") &&
	     cJSON_AddNumberToObject(o, "port", (double)e->port) &&
	     (!e->protocol || cJSON_AddStringToObject(o, "protocol", e->protocol)) &&
	     (e->node_port < 0 || cJSON_AddNumberToObject(o, "nodePort", (double)e->node_port)) &&
	     (!e->algorithm || cJSON_AddStringToObject(o, "algorithm", e->algorithm)) &&
	     (e->affinity_timeout < 0 ||
	      cJSON_AddNumberToObject(o, "affinityTimeoutSeconds", (double)e->affinity_timeout)) &&
	     (bes = cJSON_AddArrayToObject(o, "backends"));
	for (int i = 0; ok && i < e->n_backends; i++) {
		cJSON *b = cJSON_CreateObject();

		pw_ip4_format(e->backends[i].ip, ip);
		ok = b && cJSON_AddStringToObject(b, "ip", ip) &&
		     cJSON_AddNumberToObject(b, "port", e->backends[i].port);
		if (b)
			cJSON_AddItemToArray(bes, b);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Beyond this, the file is written without indentation: 10,000 services
 * indented are over 2 MiB of mostly whitespace. */
#define PRETTY_MAX (512u << 10)

/* Prints root, checks the result with the parser, hands it out. Deletes
 * root. original: the text before the edit, blamed instead of the edit
 * when it was invalid already. */
static int finish(cJSON *root, const char *original, char **out, char *err, size_t errlen)
{
	struct pw_node_config cfg;
	char *text = cJSON_Print(root), *nl;
	size_t len;
	int ret;

	if (text && strlen(text) > PRETTY_MAX) {
		free(text);
		text = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	ret = pw_config_parse(text, &cfg, err, errlen);
	if (ret) {
		free(text);
		if (ret == -EINVAL && blame_original(original, err, errlen))
			return -EINVAL;
		return ret;
	}
	pw_config_free(&cfg);
	len = strlen(text);
	nl = realloc(text, len + 2);
	if (!nl) {
		free(text);
		return -ENOMEM;
	}
	nl[len] = '\n';
	nl[len + 1] = '\0';
	*out = nl;
	return 0;
}

int pw_svcedit_put(const char *json, const struct pw_svc_edit *e, bool replace, char **out,
		   bool *replaced, char *err, size_t errlen)
{
	cJSON *root, *arr, *svc;
	int ret, at;

	*out = NULL;
	if (replaced)
		*replaced = false;
	ret = open_doc(json, &root, &arr, err, errlen);
	if (ret)
		return ret;
	at = e->name ? find_by_name(arr, e->name) : -1;
	if (at >= 0 && !replace) {
		cJSON_Delete(root);
		if (err && errlen)
			snprintf(err, errlen, "service \"%s\" exists already", e->name);
		return -EEXIST;
	}
	svc = service_json(e);
	if (!svc) {
		cJSON_Delete(root);
		return -ENOMEM;
	}
	if (at >= 0) {
		/* In place: the file's order of services stays what it was. */
		if (!cJSON_ReplaceItemInArray(arr, at, svc)) {
			cJSON_Delete(svc);
			cJSON_Delete(root);
			return -ENOMEM;
		}
		if (replaced)
			*replaced = true;
	} else if (!cJSON_AddItemToArray(arr, svc)) {
		cJSON_Delete(svc);
		cJSON_Delete(root);
		return -ENOMEM;
	}
	return finish(root, json, out, err, errlen);
}

int pw_svcedit_del(const char *json, const char *name, char **out, char *err, size_t errlen)
{
	cJSON *root, *arr;
	int ret, at;

	*out = NULL;
	ret = open_doc(json, &root, &arr, err, errlen);
	if (ret)
		return ret;
	at = find_by_name(arr, name);
	if (at < 0) {
		cJSON_Delete(root);
		if (err && errlen)
			snprintf(err, errlen, "no service \"%s\" in the config", name);
		return -ENOENT;
	}
	cJSON_DeleteItemFromArray(arr, at);
	return finish(root, json, out, err, errlen);
}
