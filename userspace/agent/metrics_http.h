/* The agent's Prometheus endpoint: GET /metrics in the text exposition
 * format on 127.0.0.1:<port> of the agent's network namespace, served by
 * libmicrohttpd from its own thread. Every scrape reads the pinned maps
 * (userspace/lib/inspect.h, the same code as podwirectl). docs/operator-guide.md
 * lists the metrics. */
#ifndef PW_METRICS_HTTP_H
#define PW_METRICS_HTTP_H
#include "paths.h"

/* Cilium's agent/operator/hubble use 9962-9965; podwire takes the next one. */
#define PW_METRICS_PORT_DEFAULT 9966
#define PW_METRICS_PORT_DEFAULT_STR "9966"

/* Starts serving (port 0: does nothing). Not fatal for the agent when it
 * fails (port taken): the datapath does not need it; the caller warns.
 * 0 or -errno. */
int pw_metrics_http_start(const struct pw_paths *p, int port);
void pw_metrics_http_stop(void);

/* podwire_agent_reconcile_errors_total += 1. Safe from any thread. */
void pw_metrics_reconcile_error(void);
/* podwire_ct_gc_deleted_total += n (conntrack entries the agent expired). */
void pw_metrics_ct_gc_deleted(unsigned long n);
#endif
