package main

// The flag.Value types of the command line. Each Set error says what the
// flag accepts; parseFlags puts the flag's name in front.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
)

// addrValue is a listen address, host:port; the host may be empty.
type addrValue struct {
	p       *string
	emptyOK bool
}

func (v *addrValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *addrValue) Set(s string) error {
	if s == "" && v.emptyOK {
		*v.p = ""
		return nil
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		if v.emptyOK {
			return errors.New("want host:port, :port, or empty to disable (e.g. 127.0.0.1:9901)")
		}
		return errors.New("want host:port or :port (e.g. :8080)")
	}
	*v.p = s
	return nil
}

// upstreamsValue is the repeatable --upstream.
type upstreamsValue struct {
	p *[]string
	// fromEnv is set while the list holds the environment's value, which the
	// first --upstream on the command line replaces.
	fromEnv bool
}

func (v *upstreamsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v *upstreamsValue) Set(s string) error {
	if err := checkUpstream(s); err != nil {
		return err
	}
	if v.fromEnv {
		*v.p, v.fromEnv = nil, false
	}
	*v.p = append(*v.p, s)
	return nil
}

func (v *upstreamsValue) setList(s string) error {
	var list []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if err := checkUpstream(u); err != nil {
			return err
		}
		list = append(list, u)
	}
	*v.p, v.fromEnv = list, true
	return nil
}

// checkUpstream checks one --upstream as the proxy will (proxy.ParseUpstream):
// the flag is refused at startup, or the reload refused, rather than the
// proxy's construction failing later.
func checkUpstream(s string) error {
	_, err := proxy.ParseUpstream(s)
	return err
}

// prefixesValue is a list of IP ranges (CIDR) or single addresses,
// comma-separated; the flag may be repeated. As with --upstream, the first
// one on the command line replaces the environment's list.
type prefixesValue struct {
	p       *[]netip.Prefix
	fromEnv bool
}

func (v *prefixesValue) String() string {
	if v.p == nil {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, p := range *v.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (v *prefixesValue) Set(s string) error {
	list, err := parsePrefixes(s)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("want CIDRs or addresses, comma-separated (e.g. 10.0.0.0/16,192.0.2.10)")
	}
	if v.fromEnv {
		*v.p, v.fromEnv = nil, false
	}
	*v.p = append(*v.p, list...)
	return nil
}

// setList takes the environment's value; empty is no list.
func (v *prefixesValue) setList(s string) error {
	list, err := parsePrefixes(s)
	if err != nil {
		return err
	}
	*v.p, v.fromEnv = list, true
	return nil
}

// parsePrefixes parses "10.0.0.0/8, 192.0.2.7,2001:db8::/32". A single
// address is a range of one; an IPv4-mapped IPv6 address is its IPv4 form,
// as peers are matched.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var list []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if p, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("%q is not an address range: want CIDRs or addresses, comma-separated (e.g. 10.0.0.0/16,192.0.2.10)", f)
			}
			p = p.Masked()
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an address: want CIDRs or addresses, comma-separated (e.g. 10.0.0.0/16,192.0.2.10)", f)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		list = append(list, p)
	}
	return list, nil
}

// bytesValue is a byte count: a plain integer, or a number with a unit, case
// insensitive: B; the decimal kB, MB, GB (or k, M, G), powers of 1000; the
// binary KiB, MiB, GiB, powers of 1024 (go-humanize's ParseBytes, which
// follows the SI and IEC prefixes).
type bytesValue struct {
	p        *int64
	min, max int64
}

// iecUnits are the units --help prints defaults with.
var iecUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

func (v *bytesValue) String() string {
	if v.p == nil {
		return "0"
	}
	return formatBytes(*v.p)
}

// formatBytes writes n with the largest IEC unit that divides it exactly.
func formatBytes(n int64) string {
	for _, u := range iecUnits {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (v *bytesValue) Set(s string) error {
	bad := "want a byte count: an integer, or with a unit: kB, MB, GB (or k, M, G: powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 65536, 64KiB, 1MB"
	if v.min > 0 {
		bad += fmt.Sprintf("; at least %s", formatBytes(v.min))
	}
	if v.max < math.MaxInt64 {
		bad += fmt.Sprintf("; at most %s", formatBytes(v.max))
	}
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '-' || s[0] == '+' {
		return errors.New(bad)
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n > uint64(v.max) || int64(n) < v.min {
		return errors.New(bad)
	}
	*v.p = int64(n)
	return nil
}

// upgradeBodyValue is --max-upgrade-body: a byte count where 0 means "never
// upgrade a request with a body", which gateway.Config spells
// gateway.NoUpgradeBody (its zero stands for the default).
type upgradeBodyValue struct{ bytesValue }

func (v *upgradeBodyValue) String() string {
	if v.p != nil && *v.p == gateway.NoUpgradeBody {
		return "0"
	}
	return v.bytesValue.String()
}

func (v *upgradeBodyValue) Set(s string) error {
	if err := v.bytesValue.Set(s); err != nil {
		return err
	}
	if *v.p == 0 {
		*v.p = gateway.NoUpgradeBody
	}
	return nil
}

// fileValue is a path to a file, read when it is used.
type fileValue struct{ p *string }

func (v *fileValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *fileValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("want a file's path")
	}
	*v.p = s
	return nil
}

// stringValue is any text; empty means unset.
type stringValue struct{ p *string }

func (v *stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *stringValue) Set(s string) error { *v.p = s; return nil }

// durationValue is a positive time.Duration.
type durationValue struct{ p *time.Duration }

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration such as 500ms, 30s or 2m")
	}
	*v.p = d
	return nil
}

// uint32Value is a count from 1 to 2^32-1.
type uint32Value struct{ p *uint32 }

func (v *uint32Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return errors.New("want an integer from 1 to 4294967295")
	}
	*v.p = uint32(n)
	return nil
}

// countValue is a count where 0 means "no limit".
type countValue struct{ p *int }

func (v *countValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *countValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return errors.New("want an integer from 0 (no cap) to 2147483647")
	}
	*v.p = int(n)
	return nil
}

// boolValue is a boolean flag: --name alone means true.
type boolValue struct{ p *bool }

func (v *boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

// IsBoolFlag lets the flag package accept --name without a value.
func (v *boolValue) IsBoolFlag() bool { return true }

// levelValue is one of the log levels the binary offers.
type levelValue struct{ p *zerolog.Level }

var logLevels = map[string]zerolog.Level{
	"debug": zerolog.DebugLevel,
	"info":  zerolog.InfoLevel,
	"warn":  zerolog.WarnLevel,
	"error": zerolog.ErrorLevel,
}

func (v *levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v *levelValue) Set(s string) error {
	l, ok := logLevels[strings.ToLower(s)]
	if !ok {
		return errors.New("want debug, info, warn or error")
	}
	*v.p = l
	return nil
}

// choiceValue is one of a fixed set of words.
type choiceValue struct {
	p       *string
	choices []string
}

func (v *choiceValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if strings.EqualFold(s, c) {
			*v.p = c
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(v.choices, " or "))
}
