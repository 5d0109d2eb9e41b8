#!/usr/bin/env bash
# test_k8s_netpol.sh's smaller set of cases on the VXLAN overlay.
# run-timeout: 900
exec env ROUTING=vxlan SUBSET=1 bash "$(dirname "$0")/test_k8s_netpol.sh"
