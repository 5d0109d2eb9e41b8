/* Editing the services of a node config's JSON text, for `podwirectl
 * service add|del` (architecture §10: services change through the agent's
 * config source, never behind its back). Pure text -> text functions: the
 * caller reads and writes the file (under its lock) and waits for the
 * agent. Everything in the document other than the one service is kept
 * (keys, order, unknown values); the result is checked with
 * pw_config_parse, so a service the agent would refuse is refused here
 * with the parser's own message and nothing is written. */
#ifndef PW_SVCEDIT_H
#define PW_SVCEDIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "a.b.c.d:port", port 1..65535. 0 or -EINVAL. */
int pw_ip_port_parse(const char *s, uint32_t *ip, uint16_t *port);

struct pw_svc_backend_edit {
	uint32_t ip;                 /* host byte order */
	uint16_t port;
};

/* A service as given on the command line. Strings go into the JSON as
 * they are (the parser judges them: a bad VIP is the parser's message);
 * numbers < 0 are left out of the JSON (the parser's default applies). */
struct pw_svc_edit {
	const char *name;
	const char *vip;
	long port;
	const char *protocol;        /* NULL: left out ("tcp") */
	long node_port;              /* < 0: none */
	const char *algorithm;       /* NULL: left out ("random") */
	long affinity_timeout;       /* < 0: left out (0) */
	const struct pw_svc_backend_edit *backends;
	int n_backends;
};

/* The config text with service e added, or (replace) put in place of the
 * service of the same name. *out is malloc'ed text ending in a newline.
 * 0; -EEXIST (name taken, !replace); -EINVAL (the config as given or the
 * result does not parse: err says why, e.g. "services[2].vip: 10.1.0.1 is
 * not inside cluster.serviceCIDR 10.96.0.0/12"); -ENOMEM.
 * *replaced tells whether a service of that name was there (may be NULL). */
int pw_svcedit_put(const char *json, const struct pw_svc_edit *e, bool replace, char **out,
		   bool *replaced, char *err, size_t errlen);

/* The config text without service name. -ENOENT if there is none; else as
 * pw_svcedit_put. */
int pw_svcedit_del(const char *json, const char *name, char **out, char *err, size_t errlen);
#endif
