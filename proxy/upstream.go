package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ParseUpstream checks one Config.Upstreams entry as New does and returns
// its normalised name ("h2c://127.0.0.1:50051"), the name logs and
// OnUpstreamError use. The binary checks its --upstream flags with it. Its
// errors never quote a URL that carries credentials.
func ParseUpstream(s string) (name string, err error) {
	name, _, _, err = parseUpstream(s)
	return name, err
}

// parseUpstream checks one Config.Upstreams entry and returns its
// normalised name, its host:port and whether it is an h2c upstream. A URL
// that carries anything the proxy would silently drop (a path, a query,
// credentials) is refused rather than half-honoured.
func parseUpstream(s string) (name, host, scheme string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			// url.Parse's error quotes the URL, credentials included.
			return "", "", "", errors.New("an upstream URL must not carry credentials (user:password@): upstream addresses are logged; put credentials in the requests")
		}
		return "", "", "", fmt.Errorf("upstream %q: %w", s, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("upstream %q: %s (want http://host:port, h2c://host:port or https://host:port)", s, why)
	}
	if u.User != nil {
		// Not quoted: it holds a password.
		return "", "", "", errors.New("an upstream URL must not carry credentials (user:password@): upstream addresses are logged; put credentials in the requests")
	}
	scheme = strings.ToLower(u.Scheme)
	port := u.Port()
	switch scheme {
	case "http", "h2c":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	case "":
		return "", "", "", bad("no scheme")
	default:
		return "", "", "", bad(fmt.Sprintf("scheme %q is not served", u.Scheme))
	}
	switch {
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", "", "", bad("no host")
	case u.Path != "" && u.Path != "/":
		return "", "", "", bad("a path is not supported")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", "", "", bad("a query or fragment is not supported")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", "", bad(fmt.Sprintf("port %s is out of range", port))
	}
	host = net.JoinHostPort(strings.ToLower(u.Hostname()), port)
	return scheme + "://" + host, host, scheme, nil
}
