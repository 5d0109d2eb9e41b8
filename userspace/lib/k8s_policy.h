/* The Kubernetes source's NetworkPolicy part (k8s_model.c uses it):
 * Namespace, Pod and networking.k8s.io/v1 NetworkPolicy objects, as the
 * API serves them, turned into the elements of the policy model that the
 * JSON config carries (docs/policy.md, pw_policy_model_parse): one JSON
 * text per object, which the model caches instead of the object and joins
 * into pw_node_config.policy_json at build time. Each text is checked
 * alone by pw_policy_model_parse, so one object the model cannot take
 * never makes the whole model unusable. */
#ifndef PW_K8S_POLICY_H
#define PW_K8S_POLICY_H
#include <stdint.h>
#include <cjson/cJSON.h>

/* Each returns 0 with *out the element (malloc'ed), 1 when the object is
 * not part of the model (*out NULL: a hostNetwork pod, a pod that has
 * finished, a policy nothing can be made of), or -ENOMEM. key names the
 * object in logs. */

/* {"name", "labels"}. */
int pw_k8s_namespace_element(const cJSON *obj, const char *key, char **out);
/* {"namespace", "name", "labels", "ip" (status.podIPs' first IPv4; absent
 * before the pod has one), "ports" (the named container ports)}. */
int pw_k8s_pod_element(const cJSON *obj, const char *key, char **out);
/* {"metadata": {"namespace", "name"}, "spec"}: the spec with policyTypes
 * made explicit, IPv6 ipBlocks left out (a rule whose peers were all IPv6
 * is left out whole: it can allow no IPv4 packet). A spec the model
 * refuses becomes a policy that selects the same pods and allows nothing
 * (fail closed, with a warning). */
int pw_k8s_netpol_element(const cJSON *obj, const char *key, char **out);
#endif
