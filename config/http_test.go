package config

import (
	"os"
	"strings"
	"testing"
)

// The HTTP settings: one listener by default (METRICS_ADDR follows
// HTTP_ADDR, so no second port such as Prometheus's own 9090 is taken, nor
// one port by every serve process on a host), the operator's listener apart
// when set, and bad values named.
func TestHTTPSettings(t *testing.T) {
	s, err := Load(env(nil), os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr != "127.0.0.1:8080" || s.MetricsAddr != "127.0.0.1:8080" || s.HTTPMaxConns != 512 {
		t.Errorf("defaults: HTTP_ADDR %s, METRICS_ADDR %s, HTTP_MAX_CONNECTIONS %d", s.HTTPAddr, s.MetricsAddr, s.HTTPMaxConns)
	}
	s, err = Load(env(map[string]string{"HTTP_ADDR": "0.0.0.0:8443"}), os.DevNull)
	if err != nil || s.MetricsAddr != "0.0.0.0:8443" {
		t.Errorf("METRICS_ADDR unset follows HTTP_ADDR: %q %v", s.MetricsAddr, err)
	}
	s, err = Load(env(map[string]string{"HTTP_ADDR": "0.0.0.0:8443", "METRICS_ADDR": "127.0.0.1:9100", "HTTP_MAX_CONNECTIONS": "64"}), os.DevNull)
	if err != nil || s.MetricsAddr != "127.0.0.1:9100" || s.HTTPAddr != "0.0.0.0:8443" || s.HTTPMaxConns != 64 {
		t.Errorf("set: %+v %v", s, err)
	}
	for name, value := range map[string]string{"METRICS_ADDR": "9090", "HTTP_MAX_CONNECTIONS": "0"} {
		_, err := Load(env(map[string]string{name: value}), os.DevNull)
		if !IsConfigError(err) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
}
