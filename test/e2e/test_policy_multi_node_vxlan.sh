#!/usr/bin/env bash
# NetworkPolicy across two nodes, VXLAN overlay (see policy_multi_node.sh).
MODE=vxlan
. "$(dirname "$0")/policy_multi_node.sh"
