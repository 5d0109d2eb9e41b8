#!/usr/bin/env bash
# NetworkPolicy across two nodes, native routing (see policy_multi_node.sh).
MODE=native
. "$(dirname "$0")/policy_multi_node.sh"
