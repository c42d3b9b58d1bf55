#!/usr/bin/env bash
# Create the places of examples/fleet/exporter.yaml on the coordinator (once), with tags
# `edgebench fleet places` shows. Usage: LG_COORDINATOR=HOST:20408 bash examples/fleet/places.sh
set -euo pipefail
: "${LG_COORDINATOR:?set LG_COORDINATOR=HOST:PORT of labgrid-coordinator}"
exporter=jetson-rack
for place in orin-agx-1 orin-agx-2 orin-nano-1; do
  labgrid-client -p "$place" create
  labgrid-client -p "$place" add-match "$exporter/$place/NetworkService"
done
for place in orin-agx-1 orin-agx-2; do
  labgrid-client -p "$place" add-match "$exporter/$place/NetworkPowerPort"
  labgrid-client -p "$place" set-tags module=orin_agx_64gb jetpack=6_2
done
labgrid-client -p orin-nano-1 set-tags module=orin_nano_8gb jetpack=6_2
labgrid-client places
