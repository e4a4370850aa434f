#!/usr/bin/env bash
# The key under which set-up caches provider/vsphere's builds (the plugin and its Go test binary):
# a hash of go.mod, go.sum, schema.json and the *.go files, tests included. One definition, for
# scripts/setup.sh and for the test that runs the test binary (it refuses one built from other sources).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../provider/vsphere"
ls go.mod go.sum schema.json *.go | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
