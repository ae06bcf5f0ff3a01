// Package integration holds h2cgw's end-to-end tests: they build cmd/h2cgw
// once, start it on loopback port 0 and drive it with real clients — curl,
// nghttp, h2load, h2spec, Go's http2.Transport, grpc-go and a WebSocket
// client — asserting both what the client saw and, through the built-in
// JSON handler of README "Running it" or an upstream the test owns, what the handler
// saw.
//
// Run them with
//
//	./scripts/install-test-tools.sh   # curl, nghttp2-client, h2spec
//	go test -count=1 ./integration/
//
// A test whose external client is missing is skipped with the command that
// installs it; with CI=true it fails instead. H2CGW_BIN, when set, names a
// prebuilt binary to test instead of building cmd/h2cgw (a release build,
// say).
//
// The package holds tests only; this file exists for the documentation.
package integration
