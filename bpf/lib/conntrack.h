/* SPDX-License-Identifier: Apache-2.0 */
/* Conntrack of load-balanced flows (pw_ct). A flow has two entries with the
 * same value (service, backend, state, flags): the forward one keyed by the
 * packet as the client sent it (client -> frontend), the reply one keyed by
 * the packet as the backend answers (backend -> client). The forward entry
 * pins the backend; the reply entry says a packet must be reverse-translated.
 * State and liveness are kept in step on both, so the agent may expire each
 * entry on its own (state timeout against last_seen_ns). */
#ifndef PW_BPF_CONNTRACK_H
#define PW_BPF_CONNTRACK_H

#include "common.h"
#include "maps.h"
#include "l4.h"

#define PW_TCP_FIN 0x01
#define PW_TCP_SYN 0x02
#define PW_TCP_RST 0x04
#define PW_TCP_ACK 0x10
#define PW_TCP_FLAGS_OFF 13

/* last_seen_ns is refreshed at most this often (as masquerade does): the
 * agent's timeouts are seconds, and a write per packet would bounce the
 * entry's cache line between CPUs. */
#define PW_CT_TOUCH_NS 1000000000ULL

static __always_inline void pw_ct_key_make(struct pw_ct_key *k, __be32 saddr, __be32 daddr, __u16 sport,
					   __u16 dport, __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->saddr, &saddr, 4);
	__builtin_memcpy(k->daddr, &daddr, 4);
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
}

/* The TCP flags byte (FIN..CWR) of a TCP packet, 0 for anything else. */
static __always_inline __u8 pw_tcp_flags(struct __sk_buff *skb, const struct pw_l4 *l4)
{
	__u8 f = 0;

	if (l4->proto != IPPROTO_TCP)
		return 0;
	if (bpf_skb_load_bytes(skb, l4->off + PW_TCP_FLAGS_OFF, &f, 1) != 0)
		return 0;
	return f;
}

/* A SYN that opens a connection (not the SYN-ACK answering one). */
static __always_inline int pw_tcp_is_syn(__u8 f)
{
	return (f & (PW_TCP_SYN | PW_TCP_ACK | PW_TCP_RST)) == PW_TCP_SYN;
}

/* The flow's state after a packet with TCP flags f in direction dir. UDP:
 * NEW until the first reply, then ESTABLISHED. TCP: ESTABLISHED once the
 * backend answered the SYN (or the client acknowledged), CLOSING at the
 * first FIN, CLOSED at a RST (both FINs: pw_ct_sync). */
static __always_inline __u8 pw_ct_next_state(__u8 state, __u8 f, __u8 proto, __u8 dir)
{
	if (proto != IPPROTO_TCP)
		return dir == PW_CT_REPLY && state == PW_CT_NEW ? PW_CT_ESTABLISHED : state;
	if (f & PW_TCP_RST)
		return PW_CT_CLOSED;
	if (f & PW_TCP_FIN)
		return state == PW_CT_CLOSED ? PW_CT_CLOSED : PW_CT_CLOSING;
	if (state == PW_CT_NEW && (f & PW_TCP_ACK) && (dir == PW_CT_REPLY || !(f & PW_TCP_SYN)))
		return PW_CT_ESTABLISHED;
	return state;
}

/* Account a packet on its own direction's entry. 1 when the other entry
 * must hear of it (a flag this direction had not sent yet, the state
 * changed, or a refresh of last_seen_ns is due), else 0: the common packet
 * costs no second lookup. */
static __always_inline int pw_ct_account(struct pw_ct_entry *e, __u8 f, __u8 proto, __u8 dir, __u64 now)
{
	__u8 state = pw_ct_next_state(e->state, f, proto, dir);
	int sync = 0;

	if ((e->tcp_flags | f) != e->tcp_flags) {
		e->tcp_flags |= f;
		sync = 1;
	}
	if (state != e->state) {
		e->state = state;
		sync = 1;
	}
	if (now - e->last_seen_ns > PW_CT_TOUCH_NS) {
		e->last_seen_ns = now;
		sync = 1;
	}
	return sync;
}

/* Bring the other entry of e's flow (key peer) in step: same state, fresh
 * last_seen_ns; both FINs seen closes the flow. A missing one (deleted by
 * the agent while the other direction was still busy) is put back, so a
 * flow whose traffic is one-sided keeps both halves. */
static __always_inline void pw_ct_sync(struct pw_ct_entry *e, const struct pw_ct_key *peer_key, __u64 now)
{
	struct pw_ct_entry *peer = bpf_map_lookup_elem(&pw_ct, peer_key);
	struct pw_ct_entry val;

	if (!peer) {
		val = *e;
		val.tcp_flags = 0;
		val.last_seen_ns = now;
		bpf_map_update_elem(&pw_ct, peer_key, &val, BPF_NOEXIST);
		return;
	}
	if (e->state == PW_CT_CLOSING && (e->tcp_flags & PW_TCP_FIN) && (peer->tcp_flags & PW_TCP_FIN))
		e->state = PW_CT_CLOSED;
	peer->state = e->state;
	peer->last_seen_ns = now;
}

/* Create a new flow's two entries. The forward one goes first with
 * BPF_NOEXIST (replace: BPF_ANY, for a new connection reusing a closed
 * flow's tuple): two CPUs racing on one new flow agree on the winner's
 * backend. 0 (created; *fwd holds what is now in the map), 1 (another CPU
 * created it first: *fwd holds its entry), or PW_DROP_CT_FULL when the table
 * refuses the entries (pw_ct is a plain hash: it fails rather than evict). */
static __always_inline int pw_ct_create(const struct pw_ct_key *fkey, const struct pw_ct_key *rkey,
					struct pw_ct_entry *fwd, int replace)
{
	struct pw_ct_entry *e, rval;
	long err;

	err = bpf_map_update_elem(&pw_ct, fkey, fwd, replace ? BPF_ANY : BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		e = bpf_map_lookup_elem(&pw_ct, fkey);
		if (!e)
			return PW_DROP_CT_FULL;
		*fwd = *e;
		return 1;
	}
	if (err)
		return PW_DROP_CT_FULL;
	rval = *fwd;
	rval.tcp_flags = 0; /* nothing seen from the backend yet */
	if (bpf_map_update_elem(&pw_ct, rkey, &rval, BPF_ANY) != 0) {
		bpf_map_delete_elem(&pw_ct, fkey);
		return PW_DROP_CT_FULL;
	}
	return 0;
}

#endif
