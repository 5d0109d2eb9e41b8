#!/usr/bin/env bash
# Three nodes, two pods each, cross-node paths in native mode (see multi_node.sh).
MODE=native
. "$(dirname "$0")/multi_node.sh"
