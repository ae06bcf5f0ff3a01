// Package settings owns the HTTP2-Settings header field of an h2c upgrade
// (RFC 7540 §3.2.1).
//
// Decoding turns the field into a [Payload]: the raw body of a SETTINGS
// frame (RFC 9113 §6.5), validated before the gateway commits to
// 101 Switching Protocols, so that a value x/net would reject after the
// switch instead declines the upgrade while the request can still be
// served over HTTP/1.1. The payload is what
// [golang.org/x/net/http2.ServeConnOpts] takes as Settings.
//
// What the gateway's own HTTP/2 server advertises is read from that server
// (gateway.Gateway.AdvertisedSettings), not derived here.
//
// The package is pure: no I/O, no logging, no goroutines, nothing read from
// the environment. It reuses x/net's vocabulary
// ([http2.Setting], [http2.SettingID], [http2.Setting.Valid]) and adds
// only what x/net lacks: the header codec and its errors.
package settings
