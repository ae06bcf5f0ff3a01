#!/usr/bin/env bash
# Runs govulncheck over the module. Called from `make test`.
#
# - Installs golang.org/x/vuln/cmd/govulncheck@v1.9.0 (through the module proxy) when it is missing.
# - Fails when govulncheck reports a vulnerability that affects the code (its exit status 3).
# - When the vulnerability database (https://vuln.go.dev) cannot be reached — an offline or
#   proxy-only build machine — prints a note and exits 0: the version guard
#   (gateway/guard_test.go, TestGuardVersions: module floors, the go line, the toolchain floors of
#   internal/toolchain) stands
#   in for it. Set GOVULNCHECK_REQUIRE=1 to make that a failure instead.
# - GOVULNCHECK_DB=<url> points govulncheck at a mirror of the database (for example a
#   file:// copy), for machines that cannot reach vuln.go.dev.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.9.0
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"

skip() {
  echo "govulncheck: SKIPPED: $1" >&2
  echo "govulncheck: the version guard (go test ./gateway -run TestGuardVersions) stands in for it." >&2
  if [ "${GOVULNCHECK_REQUIRE:-0}" = 1 ]; then
    echo "govulncheck: GOVULNCHECK_REQUIRE=1: failing." >&2
    exit 1
  fi
  exit 0
}

bin="$(command -v govulncheck || true)"
[ -n "$bin" ] || { [ -x "$GOBIN_DIR/govulncheck" ] && bin="$GOBIN_DIR/govulncheck"; }
if [ -z "$bin" ]; then
  echo "govulncheck: go install golang.org/x/vuln/cmd/govulncheck@$VERSION"
  if ! out="$(go install "golang.org/x/vuln/cmd/govulncheck@$VERSION" 2>&1)"; then
    echo "$out" >&2
    skip "could not install govulncheck (is the module proxy reachable?)"
  fi
  bin="$GOBIN_DIR/govulncheck"
fi

args=()
[ -z "${GOVULNCHECK_DB:-}" ] || args+=(-db "$GOVULNCHECK_DB")

out="$("$bin" "${args[@]}" ./... 2>&1)"
rc=$?
echo "$out"
case $rc in
  0) exit 0 ;;
  3) echo "govulncheck: vulnerabilities affect this module (see above)" >&2; exit 3 ;;
esac
# Exit status 1 covers both "cannot fetch the database" and real errors (packages that do not
# load); only the first is excused. Offline it says, for example:
#   govulncheck: fetching vulnerabilities: Get "https://vuln.go.dev/index/modules.json.gz":
#   dial tcp: lookup vuln.go.dev on 10.255.255.53:53: no such host
if grep -q "fetching vulnerabilities" <<<"$out"; then
  skip "the vulnerability database cannot be reached"
fi
exit $rc
