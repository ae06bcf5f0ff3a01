package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/h2cgw/h2cgw/proxy"
	"github.com/rs/zerolog"
)

// env returns a lookupEnv over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	got, err := parseFlags(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
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
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(config) bool
	}{
		{"listen", []string{"--listen", "127.0.0.1:1"}, nil, func(c config) bool { return c.Listen == "127.0.0.1:1" }},
		{"listen single dash", []string{"-listen=:9"}, nil, func(c config) bool { return c.Listen == ":9" }},
		{"admin-listen", []string{"--admin-listen", ":9901"}, nil, func(c config) bool { return c.AdminListen == ":9901" }},
		{"admin-listen empty disables", []string{"--admin-listen", ""}, nil, func(c config) bool { return c.AdminListen == "" }},
		{"upstream repeated", []string{"--upstream", "http://a:1", "--upstream", "h2c://b:2"}, nil,
			func(c config) bool { return reflect.DeepEqual(c.Upstreams, []string{"http://a:1", "h2c://b:2"}) }},
		{"max-upgrade-body plain", []string{"--max-upgrade-body", "4096"}, nil, func(c config) bool { return c.MaxUpgradeBody == 4096 }},
		{"memory-budget", []string{"--memory-budget", "64MiB"}, nil, func(c config) bool { return c.MemoryBudget == 64<<20 }},
		{"glitch-limit off", []string{"--glitch-limit", "0"}, nil, func(c config) bool { return c.GlitchLimit == 0 }},
		{"glitch-window", nil, map[string]string{"H2CGW_GLITCH_WINDOW": "1m"}, func(c config) bool { return c.GlitchWindow == time.Minute }},
		{"max-header-fields", []string{"--max-header-fields", "50"}, nil, func(c config) bool { return c.MaxHeaderFields == 50 }},
		{"upstream-dial-rate", []string{"--upstream-dial-rate", "10"}, nil, func(c config) bool { return c.UpstreamDialRate == 10 }},
		{"max-upgrade-body KiB", []string{"--max-upgrade-body", "64KiB"}, nil, func(c config) bool { return c.MaxUpgradeBody == 64<<10 }},
		{"max-upgrade-body MiB", []string{"--max-upgrade-body", "2mib"}, nil, func(c config) bool { return c.MaxUpgradeBody == 2<<20 }},
		{"max-upgrade-body zero", []string{"--max-upgrade-body", "0"}, nil, func(c config) bool { return c.MaxUpgradeBody == gateway.NoUpgradeBody }},
		{"shutdown-timeout", []string{"--shutdown-timeout", "1m"}, nil, func(c config) bool { return c.ShutdownTimeout == time.Minute }},
		{"read-header-timeout", []string{"--read-header-timeout", "3s"}, nil, func(c config) bool { return c.ReadHeaderTimeout == 3*time.Second }},
		{"idle-timeout", []string{"--idle-timeout", "5s"}, nil, func(c config) bool { return c.IdleTimeout == 5*time.Second }},
		{"preface-timeout", []string{"--preface-timeout", "2s"}, nil, func(c config) bool { return c.PrefaceTimeout == 2*time.Second }},
		{"upstream-timeout", []string{"--upstream-timeout", "200ms"}, nil, func(c config) bool { return c.UpstreamTimeout == 200*time.Millisecond }},
		{"max-header-bytes", []string{"--max-header-bytes", "1MiB"}, nil, func(c config) bool { return c.MaxHeaderBytes == 1<<20 }},
		{"max-concurrent-streams", []string{"--max-concurrent-streams", "100"}, nil, func(c config) bool { return c.MaxConcurrentStreams == 100 }},
		{"upgrade-body-timeout", []string{"--upgrade-body-timeout", "3s"}, nil, func(c config) bool { return c.UpgradeBodyTimeout == 3*time.Second }},
		{"upstream-max-conns", []string{"--upstream-max-conns", "64"}, nil, func(c config) bool { return c.UpstreamMaxConns == 64 }},
		{"max-connections", []string{"--max-connections", "5000"}, nil, func(c config) bool { return c.MaxConnections == 5000 }},
		{"max-connections env", nil, map[string]string{"H2CGW_MAX_CONNECTIONS": "10"}, func(c config) bool { return c.MaxConnections == 10 }},
		{"no-upgrade", []string{"--no-upgrade"}, nil, func(c config) bool { return c.NoUpgrade }},
		{"no-prior-knowledge", []string{"--no-prior-knowledge"}, nil, func(c config) bool { return c.NoPriorKnowledge }},
		{"proxy-protocol", []string{"--proxy-protocol", "--proxy-protocol-trusted", "10.0.0.0/8,192.0.2.7", "--proxy-protocol-trusted", "::1"}, nil,
			func(c config) bool {
				return c.ProxyProtocol && reflect.DeepEqual(c.ProxyProtocolTrusted, []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("::1/128")})
			}},
		{"log-level", []string{"--log-level", "debug"}, nil, func(c config) bool { return c.LogLevel == zerolog.DebugLevel }},
		{"log-format", []string{"--log-format", "console"}, nil, func(c config) bool { return c.LogFormat == "console" }},
		{"access-log off", []string{"--access-log=false"}, nil, func(c config) bool { return !c.AccessLog }},
		{"version", []string{"--version"}, nil, func(c config) bool { return c.Version }},
		{"help", []string{"--help"}, nil, func(c config) bool { return c.Help }},
		{"-h", []string{"-h"}, nil, func(c config) bool { return c.Help }},

		{"env twin", nil, map[string]string{"H2CGW_LISTEN": ":1234"}, func(c config) bool { return c.Listen == ":1234" }},
		{"env twin with dashes", nil, map[string]string{"H2CGW_MAX_UPGRADE_BODY": "8KiB"}, func(c config) bool { return c.MaxUpgradeBody == 8<<10 }},
		{"env empty admin disables", nil, map[string]string{"H2CGW_ADMIN_LISTEN": ""}, func(c config) bool { return c.AdminListen == "" }},
		{"env bool", nil, map[string]string{"H2CGW_NO_UPGRADE": "true", "H2CGW_ACCESS_LOG": "0"},
			func(c config) bool { return c.NoUpgrade && !c.AccessLog }},
		{"env upstreams comma-separated", nil, map[string]string{"H2CGW_UPSTREAM": "http://a:1, h2c://b:2"},
			func(c config) bool { return reflect.DeepEqual(c.Upstreams, []string{"http://a:1", "h2c://b:2"}) }},
		{"flag beats env", []string{"--listen", ":2"}, map[string]string{"H2CGW_LISTEN": ":1"}, func(c config) bool { return c.Listen == ":2" }},
		{"flag beats env bool", []string{"--access-log"}, map[string]string{"H2CGW_ACCESS_LOG": "false"}, func(c config) bool { return c.AccessLog }},
		{"upstream flag replaces env list", []string{"--upstream", "http://c:3", "--upstream", "http://d:4"},
			map[string]string{"H2CGW_UPSTREAM": "http://a:1,http://b:2"},
			func(c config) bool { return reflect.DeepEqual(c.Upstreams, []string{"http://c:3", "http://d:4"}) }},
		{"env proxy-protocol", nil, map[string]string{"H2CGW_PROXY_PROTOCOL": "true", "H2CGW_PROXY_PROTOCOL_TRUSTED": "10.0.0.0/16, 10.1.0.0/16"},
			func(c config) bool { return c.ProxyProtocol && len(c.ProxyProtocolTrusted) == 2 }},
		{"proxy-protocol-trusted flag replaces env list", []string{"--proxy-protocol-trusted", "192.0.2.1"},
			map[string]string{"H2CGW_PROXY_PROTOCOL": "1", "H2CGW_PROXY_PROTOCOL_TRUSTED": "10.0.0.0/16"},
			func(c config) bool {
				return reflect.DeepEqual(c.ProxyProtocolTrusted, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")})
			}},
		{"help with an incomplete combination", []string{"--help", "--proxy-protocol"}, nil, func(c config) bool { return c.Help }},
		{"no env twin for help", nil, map[string]string{"H2CGW_HELP": "true", "H2CGW_VERSION": "true"},
			func(c config) bool { return !c.Help && !c.Version }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("parseFlags(%q) = %v", tt.args, err)
			}
			if !tt.check(c) {
				t.Errorf("parseFlags(%q) with env %v = %+v", tt.args, tt.env, c)
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"listen without port", []string{"--listen", "8080"}, nil, []string{"--listen", "host:port"}},
		{"listen empty", []string{"--listen", ""}, nil, []string{"--listen", "host:port"}},
		{"listen missing value", []string{"--listen"}, nil, []string{"--listen", "needs an argument"}},
		{"admin-listen", []string{"--admin-listen", "nope"}, nil, []string{"--admin-listen", "empty to disable"}},
		{"upstream scheme", []string{"--upstream", "ftp://a:1"}, nil, []string{"--upstream", "http://host:port, h2c://host:port or https://host:port"}},
		{"upstream credentials", []string{"--upstream", "http://user:s3cret@host:1"}, nil, []string{"--upstream", "must not carry credentials"}},
		{"env upstream credentials", nil, map[string]string{"H2CGW_UPSTREAM": "h2c://a:1,http://user:s3cret@host:1"}, []string{"--upstream", "H2CGW_UPSTREAM", "must not carry credentials"}},
		{"upstream no host", []string{"--upstream", "http://"}, nil, []string{"--upstream", "no host"}},
		{"max-upgrade-body unit", []string{"--max-upgrade-body", "1XB"}, nil, []string{"--max-upgrade-body", "KiB, MiB, GiB"}},
		{"max-upgrade-body plus", []string{"--max-upgrade-body", "+1"}, nil, []string{"--max-upgrade-body", "byte count"}},
		{"max-upgrade-body negative", []string{"--max-upgrade-body", "-1"}, nil, []string{"--max-upgrade-body", "byte count"}},
		{"max-upgrade-body overflow", []string{"--max-upgrade-body", "9999999999GiB"}, nil, []string{"--max-upgrade-body", "byte count"}},
		{"max-header-bytes zero", []string{"--max-header-bytes", "0"}, nil, []string{"--max-header-bytes", "at least 1"}},
		{"shutdown-timeout", []string{"--shutdown-timeout", "30"}, nil, []string{"--shutdown-timeout", "positive duration"}},
		{"idle-timeout negative", []string{"--idle-timeout", "-1s"}, nil, []string{"--idle-timeout", "positive duration"}},
		{"read-header-timeout", []string{"--read-header-timeout", "soon"}, nil, []string{"--read-header-timeout", "positive duration"}},
		{"preface-timeout zero", []string{"--preface-timeout", "0s"}, nil, []string{"--preface-timeout", "positive duration"}},
		{"upstream-timeout", []string{"--upstream-timeout", "x"}, nil, []string{"--upstream-timeout", "positive duration"}},
		{"max-concurrent-streams", []string{"--max-concurrent-streams", "0"}, nil, []string{"--max-concurrent-streams", "1 to 4294967295"}},
		{"max-connections", []string{"--max-connections", "-1"}, nil, []string{"--max-connections", "0 (no cap)"}},
		{"no-upgrade", []string{"--no-upgrade=maybe"}, nil, []string{"--no-upgrade", "true or false"}},
		{"log-level", []string{"--log-level", "trace"}, nil, []string{"--log-level", "debug, info, warn or error"}},
		{"log-format", []string{"--log-format", "xml"}, nil, []string{"--log-format", "json or console"}},
		{"proxy-protocol without trusted", []string{"--proxy-protocol"}, nil, []string{"--proxy-protocol needs --proxy-protocol-trusted", "no default"}},
		{"proxy-protocol with empty env trusted", []string{"--proxy-protocol"}, map[string]string{"H2CGW_PROXY_PROTOCOL_TRUSTED": ""}, []string{"--proxy-protocol needs --proxy-protocol-trusted"}},
		{"trusted without proxy-protocol", []string{"--proxy-protocol-trusted", "10.0.0.0/8"}, nil, []string{"--proxy-protocol-trusted", "--proxy-protocol is off"}},
		{"trusted bad range", []string{"--proxy-protocol", "--proxy-protocol-trusted", "10.0.0.0/40"}, nil, []string{"--proxy-protocol-trusted", "not an address range"}},
		{"trusted empty", []string{"--proxy-protocol", "--proxy-protocol-trusted", ""}, nil, []string{"--proxy-protocol-trusted", "CIDRs or addresses"}},
		{"env trusted bad", nil, map[string]string{"H2CGW_PROXY_PROTOCOL_TRUSTED": "lb.internal"}, []string{"--proxy-protocol-trusted", "H2CGW_PROXY_PROTOCOL_TRUSTED", "not an address"}},
		{"unknown flag", []string{"--nope"}, nil, []string{"--nope", "not defined"}},
		{"positional argument", []string{"serve"}, nil, []string{`"serve"`}},
		{"env twin", nil, map[string]string{"H2CGW_MAX_UPGRADE_BODY": "lots"}, []string{"--max-upgrade-body", "H2CGW_MAX_UPGRADE_BODY", "byte count"}},
		{"env upstream list", nil, map[string]string{"H2CGW_UPSTREAM": "http://a:1,ftp://b"}, []string{"--upstream", "H2CGW_UPSTREAM", `"ftp"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, env(tt.env))
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseFlags(%q) = %v; want a usage error", tt.args, err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q; want it to contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans lines; want one", msg)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q shows the password", msg)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d; want 2", exitCode(err))
			}
		})
	}
}

func TestRunBadFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--max-upgrade-body", "huge"}, &stdout, &stderr)
	if exitCode(err) != 2 {
		t.Errorf("exit code %d; want 2", exitCode(err))
	}
	got := stderr.String()
	if strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "h2cgw: ") || !strings.Contains(got, "--max-upgrade-body") {
		t.Errorf("stderr %q; want one line naming --max-upgrade-body", got)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q; want nothing", stdout.String())
	}
}

func TestRunHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{arg}, &stdout, &stderr); err != nil {
			t.Fatalf("run %s = %v; want nil", arg, err)
		}
		help := stdout.String()
		var c config
		for _, s := range flagSpecs(&c) {
			if !strings.Contains(help, "  --"+s.name+" ") && !strings.Contains(help, "  --"+s.name+"\n") {
				t.Errorf("%s does not list --%s", arg, s.name)
			}
			if s.noEnv {
				continue
			}
			if !strings.Contains(help, "env "+envName(s.name)) {
				t.Errorf("%s does not give the env twin of --%s", arg, s.name)
			}
		}
		for _, def := range []string{
			`default ":8080"`, `default "127.0.0.1:9901"`, "default 1MiB", "default 30s", "default 10s",
			"default 2m0s", "default 64KiB", "default 250", "default 0, env H2CGW_MAX_CONNECTIONS", "default info", "default json", "default true",
			"default none, env H2CGW_PROXY_PROTOCOL_TRUSTED",
		} {
			if !strings.Contains(help, def) {
				t.Errorf("%s does not show %q", arg, def)
			}
		}
		want := 0
		for _, s := range flagSpecs(&c) {
			if !s.noEnv {
				want++
			}
		}
		if n := strings.Count(help, "\n        default "); n != want {
			t.Errorf("%s shows %d defaults; want one per flag with a value (%d)", arg, n, want)
		}
		for i, l := range strings.Split(help, "\n") {
			if len(l) > 80 {
				t.Errorf("help line %d is %d columns: %q", i+1, len(l), l)
			}
		}
	}
}

func TestRunVersion(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := "h2cgw " + version + " (" + runtime.Version() + ")\n"
	if stdout.String() != want {
		t.Errorf("--version printed %q; want %q", stdout.String(), want)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1: "1", 1023: "1023", 1024: "1KiB", 1536: "1536", 1 << 20: "1MiB", 3 << 30: "3GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q; want %q", n, got, want)
		}
	}
}

// TestBytesUnits: a byte count takes a plain number or a unit, in any case;
// kB, MB, GB (and k, M, G) are powers of 1000, KiB, MiB, GiB powers of 1024.
func TestBytesUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "1MiB": 1 << 20, "1mib": 1 << 20, "1MB": 1_000_000, "1M": 1_000_000,
		"2M": 2_000_000, "10mb": 10_000_000, "64KiB": 64 << 10, "64kB": 64_000, "1k": 1000,
		"1GiB": 1 << 30, "1gb": 1_000_000_000, "512B": 512, "0": 0, " 1 MiB ": 1 << 20,
	} {
		var n int64
		if err := (&bytesValue{p: &n, max: math.MaxInt64}).Set(in); err != nil || n != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
}

// TestUnknownEnvironment: a variable with the flags' prefix that names no
// flag is an error, exit status 2, rather than silently ignored.
func TestUnknownEnvironment(t *testing.T) {
	err := checkEnviron([]string{"PATH=/bin", "H2CGW_UPSTREAM=http://a:1", "H2CGW_UPSTREAMS=http://b:1"})
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "H2CGW_UPSTREAMS") || strings.Contains(err.Error(), "http://b:1") {
		t.Errorf("checkEnviron = %v; want a usage error naming H2CGW_UPSTREAMS", err)
	}
	if err := checkEnviron([]string{"H2CGW_LOG_LEVEL=warn", "HOME=/root"}); err != nil {
		t.Errorf("checkEnviron with known names = %v; want nil", err)
	}
}

// TestConfigFile: the file's keys are the flags' names; a flag beats its
// variable, which beats the file, which beats the default.
func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h2cgw.yaml")
	writeFile(t, path, "upstream: [http://file:1, h2c://file:2]\nlog-level: warn\naccess-log: false\nmax-upgrade-body: 2MiB\nidle-timeout: 1m\nlisten: ':9000'\n")
	c, err := parseFlags([]string{"--config", path, "--listen", ":7000"}, env(map[string]string{"H2CGW_LOG_LEVEL": "error"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":7000" {
		t.Errorf("listen = %q; want the flag's :7000", c.Listen)
	}
	if c.LogLevel != zerolog.ErrorLevel {
		t.Errorf("log-level = %v; want the variable's error", c.LogLevel)
	}
	if !reflect.DeepEqual(c.Upstreams, []string{"http://file:1", "h2c://file:2"}) || c.AccessLog || c.MaxUpgradeBody != 2<<20 || c.IdleTimeout != time.Minute {
		t.Errorf("config = %+v; want the file's upstreams, access-log false, 2MiB, 1m", c)
	}
	if c.ShutdownTimeout != 30*time.Second {
		t.Errorf("shutdown-timeout = %v; want the default", c.ShutdownTimeout)
	}

	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "upstreams: [http://a:1]\n", `unknown key "upstreams"`},
		{"bad value", "idle-timeout: soon\n", "invalid value for idle-timeout"},
		{"not yaml", "upstream: [http://a:1\n", "not a YAML mapping"},
		{"config in config", "config: other.yaml\n", `unknown key "config"`},
		{"credentials", "upstream: http://u:s3cret@a:1\n", "must not carry credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, path, tc.body)
			_, err := parseFlags([]string{"--config", path}, env(nil))
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("parseFlags = %v; want a usage error containing %q", err, tc.want)
			}
		})
	}
	if _, err := parseFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, env(nil)); err == nil {
		t.Error("a missing file: got no error")
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
