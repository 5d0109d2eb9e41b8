/* Namespace, Pod and NetworkPolicy objects -> elements of the policy model
 * (k8s_policy.h). The API server has validated the objects; what is
 * checked here is what the model (IPv4-only, docs/policy.md) cannot take. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cidr.h"
#include "k8s_policy.h"
#include "log.h"
#include "policy.h"

static const cJSON *jget(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = jget(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Adds a copy of v (if any) under key. false on ENOMEM. */
static bool add_copy(cJSON *o, const char *key, const cJSON *v)
{
	cJSON *c;

	if (!v || cJSON_IsNull(v))
		return true;
	c = cJSON_Duplicate(v, 1);
	if (c && cJSON_AddItemToObject(o, key, c))
		return true;
	cJSON_Delete(c);
	return false;
}

/* Whether the model takes elem as the only element of section: the
 * model refuses a whole text for one bad element, so each is tried alone. */
static bool model_takes(const char *section, const char *elem, char *err, size_t errlen)
{
	struct pw_policy_model m;
	char *text;
	int ret;

	if (asprintf(&text, "{\"%s\":[%s]}", section, elem) < 0)
		return false;
	ret = pw_policy_model_parse(text, &m, err, errlen);
	pw_policy_model_free(&m);
	free(text);
	return ret == 0;
}

/* o printed (then freed): 0, or -ENOMEM. */
static int print_element(cJSON *o, char **out)
{
	*out = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return *out ? 0 : -ENOMEM;
}

int pw_k8s_namespace_element(const cJSON *obj, const char *key, char **out)
{
	const cJSON *md = jget(obj, "metadata");
	cJSON *o = cJSON_CreateObject();
	char err[256];
	int ret;

	*out = NULL;
	if (!o || !cJSON_AddStringToObject(o, "name", jstr(md, "name") ? jstr(md, "name") : "") ||
	    !add_copy(o, "labels", jget(md, "labels"))) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	ret = print_element(o, out);
	if (ret || model_takes("namespaces", *out, err, sizeof(err)))
		return ret;
	free(*out);
	*out = NULL;
	pw_warn("Namespace %s: left out of network policy: %s", key, err);
	return 1;
}

/* The pod's first IPv4 address (status.podIPs, then status.podIP), or NULL. */
static const char *pod_ip4(const cJSON *status)
{
	const cJSON *ips = jget(status, "podIPs"), *it;
	const char *ip = jstr(status, "podIP");
	uint32_t a;

	if (cJSON_IsArray(ips))
		cJSON_ArrayForEach(it, ips) {
			const char *s = jstr(it, "ip");

			if (s && pw_ip4_parse(s, &a) == 0)
				return s;
		}
	return ip && pw_ip4_parse(ip, &a) == 0 ? ip : NULL;
}

/* The named ports of every container: what a policy's port name resolves to. */
static bool add_named_ports(cJSON *o, const cJSON *spec)
{
	const cJSON *cs = jget(spec, "containers"), *c, *p;
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return false;
	if (cJSON_IsArray(cs))
		cJSON_ArrayForEach(c, cs) {
			const cJSON *ports = jget(c, "ports");

			if (!cJSON_IsArray(ports))
				continue;
			cJSON_ArrayForEach(p, ports) {
				const char *name = jstr(p, "name"), *proto = jstr(p, "protocol");
				const cJSON *cp = jget(p, "containerPort");
				cJSON *e;

				if (!name || !*name || !cJSON_IsNumber(cp))
					continue;
				e = cJSON_CreateObject();
				if (!e || !cJSON_AddStringToObject(e, "name", name) ||
				    !cJSON_AddNumberToObject(e, "containerPort", cp->valuedouble) ||
				    !cJSON_AddStringToObject(e, "protocol", proto ? proto : "TCP") ||
				    !cJSON_AddItemToArray(arr, e)) {
					cJSON_Delete(e);
					cJSON_Delete(arr);
					return false;
				}
			}
		}
	if (!cJSON_GetArraySize(arr)) {
		cJSON_Delete(arr);
		return true;
	}
	if (cJSON_AddItemToObject(o, "ports", arr))
		return true;
	cJSON_Delete(arr);
	return false;
}

int pw_k8s_pod_element(const cJSON *obj, const char *key, char **out)
{
	const cJSON *md = jget(obj, "metadata"), *spec = jget(obj, "spec"), *status = jget(obj, "status");
	const char *phase = jstr(status, "phase"), *ip = pod_ip4(status);
	cJSON *o;
	char err[256];
	int ret;

	*out = NULL;
	/* A hostNetwork pod has its node's address (the node's, not a pod's
	 * identity); a finished pod's address may already be another pod's. */
	if (cJSON_IsTrue(jget(spec, "hostNetwork")) ||
	    (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
		return 1;
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "namespace", jstr(md, "namespace") ? jstr(md, "namespace") : "") ||
	    !cJSON_AddStringToObject(o, "name", jstr(md, "name") ? jstr(md, "name") : "") ||
	    !add_copy(o, "labels", jget(md, "labels")) || (ip && !cJSON_AddStringToObject(o, "ip", ip)) ||
	    !add_named_ports(o, spec)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	ret = print_element(o, out);
	if (ret || model_takes("pods", *out, err, sizeof(err)))
		return ret;
	free(*out);
	*out = NULL;
	pw_warn("Pod %s: left out of network policy: %s", key, err);
	return 1;
}

/* ---- NetworkPolicy ---- */

/* "a.b.c.d/n" with host bits cleared, as the API's own parsing does.
 * false for IPv6 or anything else. */
static bool ipv4_cidr(const char *s, struct pw_cidr *c)
{
	char addr[PW_IP4_STRLEN];
	const char *slash = s ? strchr(s, '/') : NULL;
	char *end;
	long prefix;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	prefix = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || prefix < 0 || prefix > 32 || pw_ip4_parse(addr, &c->addr))
		return false;
	c->prefix = (uint8_t)prefix;
	c->addr &= pw_cidr_mask(c->prefix);
	return true;
}

/* An ipBlock the model takes, or NULL with *none set when it can match no
 * IPv4 address (IPv6, or an except covering the whole cidr). */
static cJSON *ipblock_copy(const cJSON *ipb, bool *none, bool *nomem)
{
	const cJSON *exc = jget(ipb, "except"), *it;
	char buf[PW_CIDR_STRLEN];
	struct pw_cidr c, x;
	cJSON *o, *arr;

	if (!ipv4_cidr(jstr(ipb, "cidr"), &c)) {
		*none = true;
		return NULL;
	}
	o = cJSON_CreateObject();
	arr = cJSON_CreateArray();
	pw_cidr_format(&c, buf);
	if (!o || !arr || !cJSON_AddStringToObject(o, "cidr", buf))
		goto nomem;
	if (cJSON_IsArray(exc))
		cJSON_ArrayForEach(it, exc) {
			if (!cJSON_IsString(it) || !ipv4_cidr(it->valuestring, &x) || !pw_cidr_within(&x, &c))
				continue;   /* excludes no address of cidr */
			if (x.prefix == c.prefix) {
				*none = true;
				cJSON_Delete(arr);
				cJSON_Delete(o);
				return NULL;
			}
			pw_cidr_format(&x, buf);
			if (!cJSON_AddItemToArray(arr, cJSON_CreateString(buf)))
				goto nomem;
		}
	if (cJSON_GetArraySize(arr)) {
		if (!cJSON_AddItemToObject(o, "except", arr))
			goto nomem;
	} else {
		cJSON_Delete(arr);
	}
	return o;
nomem:
	cJSON_Delete(arr);
	cJSON_Delete(o);
	*nomem = true;
	return NULL;
}

/* The peers of a rule the model can use; *all_gone when the rule named
 * peers and none of them can match an IPv4 packet. */
static cJSON *peers_copy(const cJSON *peers, bool *all_gone, bool *nomem)
{
	cJSON *arr = cJSON_CreateArray();
	const cJSON *it;
	int named = 0;

	if (!arr) {
		*nomem = true;
		return NULL;
	}
	cJSON_ArrayForEach(it, peers) {
		const cJSON *ipb = jget(it, "ipBlock");
		cJSON *p;
		bool none = false;

		named++;
		if (ipb && !cJSON_IsNull(ipb)) {
			cJSON *b = ipblock_copy(ipb, &none, nomem);

			if (!b)
				continue;
			p = cJSON_CreateObject();
			if (!p || !cJSON_AddItemToObject(p, "ipBlock", b)) {
				cJSON_Delete(b);
				cJSON_Delete(p);
				*nomem = true;
				continue;
			}
		} else {
			p = cJSON_CreateObject();
			if (!p || !add_copy(p, "podSelector", jget(it, "podSelector")) ||
			    !add_copy(p, "namespaceSelector", jget(it, "namespaceSelector"))) {
				cJSON_Delete(p);
				*nomem = true;
				continue;
			}
		}
		if (!cJSON_AddItemToArray(arr, p)) {
			cJSON_Delete(p);
			*nomem = true;
		}
	}
	*all_gone = named > 0 && cJSON_GetArraySize(arr) == 0;
	return arr;
}

/* spec.ingress or spec.egress, rules that can allow nothing left out. */
static cJSON *rules_copy(const cJSON *rules, const char *peers_key, bool *nomem)
{
	cJSON *arr = cJSON_CreateArray();
	const cJSON *it;

	if (!arr) {
		*nomem = true;
		return NULL;
	}
	cJSON_ArrayForEach(it, rules) {
		const cJSON *peers = jget(it, peers_key);
		cJSON *r = cJSON_CreateObject(), *p = NULL;
		bool all_gone = false;

		if (!r) {
			*nomem = true;
			continue;
		}
		if (cJSON_IsArray(peers) && cJSON_GetArraySize(peers))
			p = peers_copy(peers, &all_gone, nomem);
		if (p && !cJSON_AddItemToObject(r, peers_key, p)) {
			cJSON_Delete(p);
			p = NULL;
			*nomem = true;
		}
		if (*nomem || !add_copy(r, "ports", jget(it, "ports"))) {
			cJSON_Delete(r);
			*nomem = true;
			continue;
		}
		if (all_gone || !cJSON_AddItemToArray(arr, r))
			cJSON_Delete(r);
	}
	return arr;
}

/* policyTypes as the API defaults them: Ingress always, Egress when the
 * policy has egress rules (decided on the rules as written, before any is
 * left out here). */
static cJSON *policy_types(const cJSON *spec)
{
	const cJSON *types = jget(spec, "policyTypes"), *eg = jget(spec, "egress");
	cJSON *arr;

	if (cJSON_IsArray(types) && cJSON_GetArraySize(types))
		return cJSON_Duplicate(types, 1);
	arr = cJSON_CreateArray();
	if (arr && !cJSON_AddItemToArray(arr, cJSON_CreateString("Ingress"))) {
		cJSON_Delete(arr);
		return NULL;
	}
	if (arr && cJSON_IsArray(eg) && cJSON_GetArraySize(eg) &&
	    !cJSON_AddItemToArray(arr, cJSON_CreateString("Egress"))) {
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

/* {"metadata": {namespace, name}, "spec": {podSelector, policyTypes, [rules]}}. */
static cJSON *netpol_object(const cJSON *obj, bool with_rules, bool *nomem)
{
	const cJSON *md = jget(obj, "metadata"), *spec = jget(obj, "spec");
	const cJSON *sel = jget(spec, "podSelector");
	cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject(), *s = cJSON_CreateObject();
	cJSON *types = policy_types(spec), *in = NULL, *eg = NULL;

	if (with_rules) {
		in = rules_copy(jget(spec, "ingress"), "from", nomem);
		eg = rules_copy(jget(spec, "egress"), "to", nomem);
	}
	if (!o || !m || !s || !types || (with_rules && (!in || !eg)) ||
	    !cJSON_AddStringToObject(m, "namespace", jstr(md, "namespace") ? jstr(md, "namespace") : "") ||
	    !cJSON_AddStringToObject(m, "name", jstr(md, "name") ? jstr(md, "name") : "") ||
	    !cJSON_AddItemToObject(o, "metadata", m)) {
		cJSON_Delete(m);
		goto nomem;
	}
	if (sel && !cJSON_IsNull(sel) ? !add_copy(s, "podSelector", sel) : !cJSON_AddObjectToObject(s, "podSelector"))
		goto nomem;
	if (!cJSON_AddItemToObject(s, "policyTypes", types))
		goto nomem;
	types = NULL;
	if (in && cJSON_GetArraySize(in) && !cJSON_AddItemToObject(s, "ingress", in))
		goto nomem;
	if (in && cJSON_GetArraySize(in))
		in = NULL;
	if (eg && cJSON_GetArraySize(eg) && !cJSON_AddItemToObject(s, "egress", eg))
		goto nomem;
	if (eg && cJSON_GetArraySize(eg))
		eg = NULL;
	if (!cJSON_AddItemToObject(o, "spec", s))
		goto nomem;
	cJSON_Delete(in);
	cJSON_Delete(eg);
	return o;
nomem:
	*nomem = true;
	cJSON_Delete(types);
	cJSON_Delete(in);
	cJSON_Delete(eg);
	cJSON_Delete(s);
	cJSON_Delete(o);
	return NULL;
}

/* The element with or without its rules: 0 when the model takes it (*out
 * set), 1 when it does not (err says why), -ENOMEM. */
static int netpol_try(const cJSON *obj, bool with_rules, char **out, char *err, size_t errlen)
{
	bool nomem = false;
	int ret = print_element(netpol_object(obj, with_rules, &nomem), out);

	if (!ret && !nomem && model_takes("networkPolicies", *out, err, errlen))
		return 0;
	free(*out);
	*out = NULL;
	return ret || nomem ? -ENOMEM : 1;
}

int pw_k8s_netpol_element(const cJSON *obj, const char *key, char **out)
{
	char err[256];
	int ret = netpol_try(obj, true, out, err, sizeof(err));

	if (ret <= 0)
		return ret;
	/* Fail closed: the pods it selects are isolated as it says, with
	 * nothing allowed, rather than open to everything. */
	pw_warn("NetworkPolicy %s: %s: enforced as allowing nothing to the pods it selects", key, err);
	ret = netpol_try(obj, false, out, err, sizeof(err));
	if (ret == 1)
		pw_err("NetworkPolicy %s: %s: left out", key, err);
	return ret;
}
