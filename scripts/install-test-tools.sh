#!/usr/bin/env bash
# Installs the external clients the tests drive, when missing:
#   Debian: curl, nghttp2-client (nghttp, h2load), haproxy (/usr/sbin)
#   Go:     h2spec, kustomize (renders deploy/kubernetes in the tests)
# Safe to run again; prints what it installs.
set -euo pipefail

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v nghttp >/dev/null 2>&1 || need_apt+=(nghttp2-client)
command -v h2load >/dev/null 2>&1 || need_apt+=(nghttp2-client)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "install-test-tools: need root (or sudo) to apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-test-tools: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

GOBIN_DIR="$(go env GOPATH)/bin"
if ! command -v h2spec >/dev/null 2>&1 && [ ! -x "$GOBIN_DIR/h2spec" ]; then
  echo "install-test-tools: go install h2spec"
  go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi
if ! command -v kustomize >/dev/null 2>&1 && [ ! -x "$GOBIN_DIR/kustomize" ]; then
  echo "install-test-tools: go install kustomize"
  go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
fi
