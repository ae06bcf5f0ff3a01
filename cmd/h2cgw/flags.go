package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
)

// envPrefix starts every flag's environment twin: --max-upgrade-body is also
// read from H2CGW_MAX_UPGRADE_BODY.
const envPrefix = "H2CGW_"

// config is the command line, parsed. Its defaults are gateway.Config's,
// spelled out so that --help can print them.
type config struct {
	// ConfigFile is --config: a YAML file of flag values, read at start-up
	// and again on SIGHUP or POST /reload (reload.go).
	ConfigFile string

	Listen      string
	AdminListen string // "" disables the admin listener
	Upstreams   []string

	// MaxUpgradeBody is gateway.Config.MaxUpgradeBody: the flag's 0
	// ("never upgrade a request with a body") is gateway.NoUpgradeBody here
	// (upgradeBodyValue).
	MaxUpgradeBody     int64
	ShutdownTimeout    time.Duration
	ReadHeaderTimeout  time.Duration
	IdleTimeout        time.Duration
	PrefaceTimeout     time.Duration
	UpgradeBodyTimeout time.Duration
	UpstreamTimeout    time.Duration
	// UpstreamCA is a PEM file of roots for https:// upstreams ("" for the
	// system's); UpstreamServerName the name their certificates are checked
	// against ("" for each upstream's host).
	UpstreamCA           string
	UpstreamServerName   string
	MaxHeaderBytes       int64
	MaxConcurrentStreams uint32
	MaxConnections       int
	UpstreamMaxConns     int
	// The limits of README "Security". MemoryBudget 0 means half the
	// memory limit; GlitchLimit 0 and UpstreamDialRate 0 mean no limit.
	MemoryBudget     int64
	MaxHeaderFields  int
	GlitchLimit      int
	GlitchWindow     time.Duration
	UpstreamDialRate int

	NoUpgrade        bool
	NoPriorKnowledge bool

	// ProxyProtocol expects a PROXY protocol header from the peers in
	// ProxyProtocolTrusted (the load balancers), which has no default.
	ProxyProtocol        bool
	ProxyProtocolTrusted []netip.Prefix

	LogLevel       zerolog.Level
	LogFormat      string // "json" or "console"
	AccessLog      bool
	AccessLogQuery bool

	// AdminPprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener.
	AdminPprof bool

	Help    bool
	Version bool
}

func defaultConfig() config {
	return config{
		Listen:               ":8080",
		AdminListen:          "127.0.0.1:9901",
		MaxUpgradeBody:       gateway.DefaultMaxUpgradeBody,
		ShutdownTimeout:      30 * time.Second,
		ReadHeaderTimeout:    gateway.DefaultReadHeaderTimeout,
		IdleTimeout:          gateway.DefaultIdleTimeout,
		PrefaceTimeout:       gateway.DefaultPrefaceTimeout,
		UpgradeBodyTimeout:   gateway.DefaultUpgradeBodyTimeout,
		UpstreamTimeout:      proxy.DefaultTimeout,
		MaxHeaderBytes:       gateway.DefaultMaxHeaderBytes,
		MaxConcurrentStreams: gateway.DefaultMaxConcurrentStreams,
		MaxHeaderFields:      gateway.DefaultMaxHeaderFields,
		GlitchLimit:          gateway.DefaultGlitchLimit,
		GlitchWindow:         gateway.DefaultGlitchWindow,
		UpstreamDialRate:     proxy.DefaultDialRate,
		LogLevel:             zerolog.InfoLevel,
		LogFormat:            "json",
		AccessLog:            true,
	}
}

// usageError is a bad command line or environment: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// flagSpec is one flag: its name, the placeholder and text --help shows, and
// where its value goes. Specs are listed in the order --help prints them.
type flagSpec struct {
	name  string
	arg   string // placeholder in --help; "" for a boolean
	usage string
	value flag.Value
	noEnv bool // --help and --version have no environment twin
	// noFile: the key may not stand in a config file (--config itself,
	// --help, --version).
	noFile bool
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func flagSpecs(c *config) []flagSpec {
	return []flagSpec{
		{name: "config", arg: "FILE", value: &fileValue{p: &c.ConfigFile}, noFile: true,
			usage: "a YAML file whose keys are these flags' names (upstream: [a, b],\n" +
				"log-level: warn); a flag or its variable beats the file. SIGHUP\n" +
				"or POST /reload on the admin listener reads it again and applies\n" +
				"the upstreams, the upstream settings, the log level and the\n" +
				"access log; other changes are logged as needing a restart"},
		{name: "listen", arg: "ADDR", value: &addrValue{p: &c.Listen},
			usage: "cleartext listener: HTTP/1.1, h2c upgrade, h2c prior knowledge"},
		{name: "admin-listen", arg: "ADDR", value: &addrValue{p: &c.AdminListen, emptyOK: true},
			usage: "admin listener: /metrics, /healthz, /readyz; empty disables it\n" +
				"(loopback by default: use :9901 for probes from outside the host)"},
		{name: "upstream", arg: "URL", value: &upstreamsValue{p: &c.Upstreams},
			usage: "http://host:port (HTTP/1.1), h2c://host:port (HTTP/2 prior\n" +
				"knowledge) or https://host:port (TLS; HTTP/2 or HTTP/1.1 as ALPN\n" +
				"settles); repeat it for a pool (comma-separated in the\n" +
				"environment); none serves the built-in JSON echo"},
		{name: "upstream-ca", arg: "FILE", value: &fileValue{p: &c.UpstreamCA},
			usage: "PEM certificates to verify https:// upstreams with, instead of\n" +
				"the system's roots"},
		{name: "upstream-server-name", arg: "NAME", value: &stringValue{p: &c.UpstreamServerName},
			usage: "the name https:// upstreams' certificates must carry (and SNI),\n" +
				"instead of each upstream's host"},
		{name: "max-upgrade-body", arg: "BYTES", value: &upgradeBodyValue{bytesValue{p: &c.MaxUpgradeBody, max: math.MaxInt64}},
			usage: "largest body an h2c upgrade reads before its 101; a larger one is\n" +
				"served on HTTP/1.1; 0 never upgrades a request with a body"},
		{name: "shutdown-timeout", arg: "DURATION", value: &durationValue{p: &c.ShutdownTimeout},
			usage: "grace period for in-flight requests after SIGTERM or SIGINT"},
		{name: "read-header-timeout", arg: "DURATION", value: &durationValue{p: &c.ReadHeaderTimeout},
			usage: "time to read a request head or the first line of the\n" +
				"prior-knowledge preface"},
		{name: "idle-timeout", arg: "DURATION", value: &durationValue{p: &c.IdleTimeout},
			usage: "close a connection with no request in flight for this long"},
		{name: "preface-timeout", arg: "DURATION", value: &durationValue{p: &c.PrefaceTimeout},
			usage: "time for the client preface to arrive after a 101, or for the\n" +
				"rest of a prior-knowledge preface after its first line"},
		{name: "upgrade-body-timeout", arg: "DURATION", value: &durationValue{p: &c.UpgradeBodyTimeout},
			usage: "time to read the body of an upgrade request before its 101\n" +
				"(then 408 and the connection closes)"},
		{name: "upstream-timeout", arg: "DURATION", value: &durationValue{p: &c.UpstreamTimeout},
			usage: "time for an upstream to send its response headers (then 504)"},
		{name: "upstream-max-conns", arg: "N", value: &countValue{p: &c.UpstreamMaxConns},
			usage: "cap on connections to each HTTP/1.1 upstream; past it requests\n" +
				"wait for one (504 after --upstream-timeout); 0 means " + strconv.Itoa(proxy.DefaultMaxConnsPerHost)},
		{name: "max-header-bytes", arg: "BYTES", value: &bytesValue{p: &c.MaxHeaderBytes, min: 1, max: 1 << 30},
			usage: "largest request head (HTTP/1.1), and the advertised HTTP/2\n" +
				"SETTINGS_MAX_HEADER_LIST_SIZE (this plus 320)"},
		{name: "max-concurrent-streams", arg: "N", value: &uint32Value{p: &c.MaxConcurrentStreams},
			usage: "advertised SETTINGS_MAX_CONCURRENT_STREAMS of HTTP/2 connections"},
		{name: "max-connections", arg: "N", value: &countValue{p: &c.MaxConnections},
			usage: "cap on open client connections, upgraded ones included; past it\n" +
				"new connections wait in the listen backlog; 0 means the\n" +
				"descriptor limit (RLIMIT_NOFILE) less room for the admin listener\n" +
				"and upstream connections"},
		{name: "memory-budget", arg: "BYTES", value: &bytesValue{p: &c.MemoryBudget, min: 0, max: 1 << 50},
			usage: "memory held for clients (upgrade bodies, decoded headers of\n" +
				"streams not yet answered) past which upgrades with a body are\n" +
				"declined, new streams refused and accepting paused; 0 means half\n" +
				"the memory limit (GOMEMLIMIT, else 90% of the container's), or\n" +
				"none without a limit"},
		{name: "max-header-fields", arg: "N", value: &countValue{p: &c.MaxHeaderFields},
			usage: "header field lines a request may carry, Trailer declarations\n" +
				"included (more: 431); 0 means " + strconv.Itoa(gateway.DefaultMaxHeaderFields)},
		{name: "glitch-limit", arg: "N", value: &countValue{p: &c.GlitchLimit},
			usage: "streams an HTTP/2 connection may have reset before their\n" +
				"response (by the client, or by the server for its protocol\n" +
				"errors) per --glitch-window; past it GOAWAY ENHANCE_YOUR_CALM;\n" +
				"0 means no limit"},
		{name: "glitch-window", arg: "DURATION", value: &durationValue{p: &c.GlitchWindow},
			usage: "the period --glitch-limit counts over"},
		{name: "upstream-dial-rate", arg: "N", value: &countValue{p: &c.UpstreamDialRate},
			usage: "new upstream connections per second, all upstreams together, in\n" +
				"bursts of as many; 0 means no bound"},
		{name: "no-upgrade", value: &boolValue{p: &c.NoUpgrade},
			usage: "switch off the \"Upgrade: h2c\" path (served on HTTP/1.1 instead)"},
		{name: "no-prior-knowledge", value: &boolValue{p: &c.NoPriorKnowledge},
			usage: "switch off HTTP/2 with prior knowledge (answered 505)"},
		{name: "proxy-protocol", value: &boolValue{p: &c.ProxyProtocol},
			usage: "require a PROXY protocol v1 or v2 header (HAProxy send-proxy, a\n" +
				"cloud NLB) from the --proxy-protocol-trusted peers and take the\n" +
				"client's address from it; a header from any other peer closes the\n" +
				"connection, and other peers without one are served as usual.\n" +
				"The header must arrive within --read-header-timeout"},
		{name: "proxy-protocol-trusted", arg: "CIDRS", value: &prefixesValue{p: &c.ProxyProtocolTrusted},
			usage: "the load balancers' addresses or ranges, comma-separated (e.g.\n" +
				"10.0.0.0/16,192.0.2.10); required with --proxy-protocol: there is\n" +
				"no default, not even loopback"},
		{name: "log-level", arg: "LEVEL", value: &levelValue{p: &c.LogLevel},
			usage: "debug, info, warn or error"},
		{name: "log-format", arg: "FORMAT", value: &choiceValue{p: &c.LogFormat, choices: []string{"json", "console"}},
			usage: "json (one object a line, on stderr) or console (for people)"},
		{name: "access-log", value: &boolValue{p: &c.AccessLog},
			usage: "log one line per request; --access-log=false turns it off.\n" +
				"The access log is a stream of its own: --log-level does not\n" +
				"govern it"},
		{name: "access-log-query", value: &boolValue{p: &c.AccessLogQuery},
			usage: "put the query string in the access log's path (off: a query\n" +
				"may carry tokens)"},
		{name: "admin-pprof", value: &boolValue{p: &c.AdminPprof},
			usage: "serve Go's profiler (net/http/pprof) under /debug/pprof/ on the\n" +
				"admin listener"},
		{name: "version", value: &boolValue{p: &c.Version}, noEnv: true, noFile: true,
			usage: "print the version and exit"},
		{name: "help", value: &boolValue{p: &c.Help}, noEnv: true, noFile: true,
			usage: "print this help and exit"},
	}
}

// parseFlags parses args (without the program name) over the environment
// twins found by lookupEnv, over the --config file's values, over the
// defaults: a flag on the command line beats its twin, which beats the file.
// The error is a *usageError, one line naming the flag (or the file's key)
// and what it accepts; it never quotes a credential.
func parseFlags(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	c := defaultConfig()
	specs := flagSpecs(&c)
	fs := flag.NewFlagSet("h2cgw", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, in one line
	fs.Usage = func() {}
	for _, s := range specs {
		fs.Var(s.value, s.name, s.usage)
	}

	// given holds the flags set by the command line or the environment,
	// which the file may not override.
	given := map[string]bool{}
	for _, s := range specs {
		if s.noEnv {
			continue
		}
		env := envName(s.name)
		v, ok := lookupEnv(env)
		if !ok {
			continue
		}
		if err := setFromEnv(s.value, v); err != nil {
			return c, &usageError{redact(fmt.Sprintf("invalid value %q for --%s (from %s): %v", v, s.name, env, err))}
		}
		given[s.name] = true
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h
			c.Help = true
			return c, nil
		}
		return c, &usageError{redact(flagError(err))}
	}
	if fs.NArg() > 0 {
		return c, &usageError{fmt.Sprintf("unexpected argument %q (flags start with --; see --help)", fs.Arg(0))}
	}
	if c.Help || c.Version {
		return c, nil
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if c.ConfigFile != "" {
		if err := applyFile(c.ConfigFile, specs, given); err != nil {
			return c, err
		}
	}
	return c, checkFlags(c)
}

// applyFile sets, from the YAML file at path, every flag that given does not
// hold. The file is a mapping from flag names to a value, or to a list for
// the flags that repeat (upstream, proxy-protocol-trusted).
func applyFile(path string, specs []flagSpec, given map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return &usageError{fmt.Sprintf("--config: %v", err)}
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return &usageError{fmt.Sprintf("--config %s: not a YAML mapping of flag names: %v", path, err)}
	}
	byName := make(map[string]flagSpec, len(specs))
	for _, s := range specs {
		byName[s.name] = s
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same at every reading
	for _, k := range keys {
		s, ok := byName[k]
		if !ok || s.noFile {
			return &usageError{fmt.Sprintf("--config %s: unknown key %q (the keys are the flags' names, as --help lists them)", path, k)}
		}
		if given[k] {
			continue
		}
		v, err := fileValueString(doc[k])
		if err == nil {
			err = setFromEnv(s.value, v)
		}
		if err != nil {
			return &usageError{redact(fmt.Sprintf("--config %s: invalid value for %s: %v", path, k, err))}
		}
	}
	return nil
}

// fileValueString turns a YAML value into the text its flag parses: a list
// (for the repeatable flags) is joined with commas, as their environment
// twins take it.
func fileValueString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := fileValueString(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("want a value or a list, not a mapping")
	default:
		return fmt.Sprint(v), nil
	}
}

// userinfo matches the user:password@ part of a URL in a message.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s"']*@`)

// redact removes the credentials of any URL in msg: the flag package quotes
// a refused value in its message, and a refused upstream URL may hold a
// password.
func redact(msg string) string { return userinfo.ReplaceAllString(msg, "${1}REDACTED@") }

// checkEnviron refuses a variable that looks like a flag's twin but names
// no flag (H2CGW_UPSTREAMS for H2CGW_UPSTREAM): ignored, it would silently
// change what the gateway does, as an unknown flag would.
func checkEnviron(environ []string) error {
	known := map[string]bool{}
	for _, s := range flagSpecs(new(config)) {
		if !s.noEnv {
			known[envName(s.name)] = true
		}
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			return &usageError{fmt.Sprintf("environment variable %s names no flag (each flag's variable is listed by --help)", name)}
		}
	}
	return nil
}

// checkFlags rejects combinations that no single flag can see.
func checkFlags(c config) error {
	switch {
	case c.ProxyProtocol && len(c.ProxyProtocolTrusted) == 0:
		// Trusting a default range would let whoever sits in it choose
		// the client address of every request it sends.
		return &usageError{"--proxy-protocol needs --proxy-protocol-trusted: the addresses of the load balancers that send the header (there is no default)"}
	case !c.ProxyProtocol && len(c.ProxyProtocolTrusted) > 0:
		return &usageError{"--proxy-protocol-trusted is set but --proxy-protocol is off"}
	}
	return nil
}

// flagError rewrites the flag package's messages ("invalid value "x" for flag
// -name: ...", "flag provided but not defined: -name") with the double-dash
// spelling --help uses.
func flagError(err error) string {
	msg := err.Error()
	for _, r := range [...][2]string{
		{"for flag -", "for --"}, // invalid value
		{"for -", "for --"},      // invalid boolean value
		{": -", ": --"},          // not defined, needs an argument
	} {
		if strings.Contains(msg, r[0]) {
			msg = strings.Replace(msg, r[0], r[1], 1)
			break
		}
	}
	return msg + " (see --help)"
}

// setFromEnv applies an environment twin. A list flag takes a comma-separated
// list; a later command-line flag replaces it rather than adding to it.
func setFromEnv(v flag.Value, s string) error {
	if l, ok := v.(interface{ setList(string) error }); ok {
		return l.setList(s)
	}
	return v.Set(s)
}

// printUsage writes --help: every flag with its default and environment twin.
func printUsage(w io.Writer) {
	const indent = "\n        "
	c := defaultConfig()
	var b strings.Builder
	b.WriteString(`Usage: h2cgw [flags]
       h2cgw healthcheck URL

h2cgw serves HTTP/1.1, the "Upgrade: h2c" handshake and HTTP/2 with prior
knowledge on one cleartext listener, in front of upstreams (gateway mode) or
a built-in JSON echo. "h2cgw healthcheck URL" GETs URL and exits 0 on 2xx.

Flags (each is also read from the environment variable shown; the command
line wins):
`)
	for _, s := range flagSpecs(&c) {
		b.WriteString("  --" + s.name)
		if s.arg != "" {
			b.WriteString(" " + s.arg)
		}
		b.WriteString(indent + strings.ReplaceAll(s.usage, "\n", indent))
		if !s.noEnv {
			b.WriteString(indent + "default " + defaultText(s.value) + ", env " + envName(s.name))
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

func defaultText(v flag.Value) string {
	s := v.String()
	switch v.(type) {
	case *upstreamsValue, *prefixesValue:
		if s == "" {
			return "none"
		}
		return strconv.Quote(s)
	case *addrValue:
		return strconv.Quote(s)
	case *fileValue, *stringValue:
		if s == "" {
			return "none"
		}
		return strconv.Quote(s)
	}
	return s
}
