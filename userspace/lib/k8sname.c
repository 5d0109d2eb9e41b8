/* Kubernetes name rules (see k8sname.h). The reasons follow the wording of
 * Kubernetes' own messages, so an operator recognises them. */
#include <stdbool.h>
#include <string.h>
#include "k8sname.h"

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One label in s[0..n): alphanumerics and '-', alphanumeric at both ends. */
static const char *label_chars(const char *s, size_t n)
{
	if (n == 0)
		return "must not be empty (or have an empty part between dots)";
	if (!lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return "must start and end with a lower case letter or digit";
	for (size_t i = 1; i + 1 < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return "must consist of lower case letters, digits and '-'";
	return NULL;
}

const char *pw_k8s_dns1123_label(const char *s)
{
	size_t n = strlen(s);

	if (n > PW_K8S_LABEL_MAX)
		return "must be at most 63 characters";
	return label_chars(s, n);
}

const char *pw_k8s_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n > PW_K8S_SUBDOMAIN_MAX)
		return "must be at most 253 characters";
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		const char *why = label_chars(p, len);

		if (why)
			return why;
		if (!dot)
			return NULL;
		p = dot + 1;
	}
}

const char *pw_k8s_dns1035_label(const char *s)
{
	const char *why = pw_k8s_dns1123_label(s);

	if (why)
		return why;
	if (s[0] >= '0' && s[0] <= '9')
		return "must start with a lower case letter";
	return NULL;
}
