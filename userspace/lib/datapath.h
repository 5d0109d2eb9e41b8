/* Access to a node's pinned datapath, shared by podwired, podwirectl and the
 * CNI plugin: open pinned maps/programs, attach a program to an interface's
 * tc ingress (tcx link or clsact/cls_bpf), detach. All through libbpf. */
#ifndef PW_DATAPATH_H
#define PW_DATAPATH_H
#include <stdbool.h>
#include "paths.h"

enum pw_attach_mode { PW_ATTACH_TCX = 0, PW_ATTACH_TC = 1 };

const char *pw_attach_mode_name(enum pw_attach_mode m);   /* "tcx" / "tc" */
int pw_attach_mode_parse(const char *s, enum pw_attach_mode *m);

/* Whether this kernel has tcx: tries a tcx link of a trivial program on the
 * loopback device of the current netns and removes it again. Probes, never
 * parses version strings. */
enum pw_attach_mode pw_attach_probe(void);

/* bpf_obj_get of <pin_dir>/<name> / <prog_dir>/<name>. fd or -errno. */
int pw_map_open(const struct pw_paths *p, const char *name);
int pw_prog_open(const struct pw_paths *p, const char *name);

/* Attach prog_fd to the tc ingress hook of ifindex.
 * tcx: creates a link pinned at link_pin (replacing an existing pinned link's
 *      program atomically with bpf_link_update if link_pin exists);
 * tc:  clsact qdisc + cls_bpf direct-action filter at a fixed handle/priority,
 *      replaced in place if present (link_pin unused).
 * 0 or -errno. */
int pw_attach_ingress(enum pw_attach_mode mode, int prog_fd, int ifindex, const char *link_pin);
/* Undo pw_attach_ingress. Idempotent: a missing link pin, interface or
 * filter is success. Removes the link pin in both modes. */
int pw_detach_ingress(enum pw_attach_mode mode, int ifindex, const char *link_pin);
#endif
