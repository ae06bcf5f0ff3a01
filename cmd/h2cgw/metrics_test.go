package main

import (
	"errors"
	"testing"

	"github.com/h2cgw/h2cgw/gateway"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsOnEvent(t *testing.T) {
	m := newMetrics("test")
	events := []gateway.Event{
		{Kind: gateway.EventConnOpen, Path: gateway.PathH1},
		{Kind: gateway.EventConnOpen, Path: gateway.PathH1},
		{Kind: gateway.EventConnClose, Path: gateway.PathH1},
		{Kind: gateway.EventUpgradeAccepted, Path: gateway.PathUpgrade},
		{Kind: gateway.EventUpgradeDeclined, Path: gateway.PathH1, Reason: gateway.ReasonBodyTooLarge},
		{Kind: gateway.EventUpgradeRejected, Path: gateway.PathPriorKnowledge, Reason: gateway.ReasonUpgradeOnHTTP2},
		{Kind: gateway.EventProtocolError, Path: gateway.PathUpgrade, Reason: gateway.ReasonBadPreface, Err: errors.New("x")},
		{Kind: gateway.EventHTTP2Error, Reason: "frame_too_large"},
	}
	for _, e := range events {
		m.onEvent(e)
	}
	m.upstreamError("http://a:1", "connect")

	for _, tt := range []struct {
		name string
		got  float64
		want float64
	}{
		{"connections_total{h1}", testutil.ToFloat64(m.connsTotal.WithLabelValues("h1")), 2},
		{"connections_open{h1}", testutil.ToFloat64(m.connsOpen.WithLabelValues("h1")), 1},
		{"upgrades{accepted}", testutil.ToFloat64(m.upgrades.WithLabelValues("accepted", "")), 1},
		{"upgrades{declined,body_too_large}", testutil.ToFloat64(m.upgrades.WithLabelValues("declined", "body_too_large")), 1},
		{"upgrades{declined,missing_settings}", testutil.ToFloat64(m.upgrades.WithLabelValues("declined", "missing_settings")), 0},
		{"upgrades{rejected,upgrade_on_http2}", testutil.ToFloat64(m.upgrades.WithLabelValues("rejected", "upgrade_on_http2")), 1},
		{"protocol_errors{bad_preface}", testutil.ToFloat64(m.protocolErrors.WithLabelValues("bad_preface")), 1},
		{"http2_errors{frame_too_large}", testutil.ToFloat64(m.http2Errors.WithLabelValues("frame_too_large")), 1},
		{"upstream_errors{http://a:1,connect}", testutil.ToFloat64(m.upstreamErrors.WithLabelValues("http://a:1", "connect")), 1},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	if _, err := m.reg.Gather(); err != nil {
		t.Errorf("registry does not gather cleanly: %v", err)
	}
}
