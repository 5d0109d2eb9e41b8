#!/usr/bin/env bash
# test_k8s_resilience.sh on the VXLAN overlay (podwired with cluster.routing vxlan).
exec env ROUTING=vxlan bash "$(dirname "$0")/test_k8s_resilience.sh"
