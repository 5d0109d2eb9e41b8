#!/usr/bin/env bash
# Three nodes, two pods each, cross-node paths in vxlan mode (see multi_node.sh).
MODE=vxlan
. "$(dirname "$0")/multi_node.sh"
