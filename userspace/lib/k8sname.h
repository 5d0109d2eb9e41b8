/* Kubernetes object-name rules (k8s.io/apimachinery validation), for names
 * that come from outside: pod namespace and name in CNI_ARGS, service names
 * in the node config. Each returns NULL when s is valid, else a short reason
 * ("must be at most 63 characters", ...) to put in an error message. */
#ifndef PW_K8SNAME_H
#define PW_K8SNAME_H

#define PW_K8S_LABEL_MAX 63       /* DNS-1123 / DNS-1035 label */
#define PW_K8S_SUBDOMAIN_MAX 253  /* DNS-1123 subdomain */

/* [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63: namespaces. */
const char *pw_k8s_dns1123_label(const char *s);
/* DNS-1123 labels joined by '.', at most 253 in all: pod names. */
const char *pw_k8s_dns1123_subdomain(const char *s);
/* [a-z]([-a-z0-9]*[a-z0-9])?, at most 63: service names. */
const char *pw_k8s_dns1035_label(const char *s);
#endif
