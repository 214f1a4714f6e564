package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wgbot/service"
)

// TestLoadPlans: a plans file is read whole, and each problem names the
// file and the plan.
func TestLoadPlans(t *testing.T) {
	if plans, err := service.LoadPlans(""); err != nil || len(plans) != len(service.DefaultPlans()) {
		t.Fatalf("no file: %v %v", plans, err)
	}
	for _, tt := range []struct{ body, want string }{
		{`[{"name":"m","days":30,"devices":1,"prices":{"XTR":100}}]`, ""},
		{`[]`, "no plans"},
		{`[{"name":"m","days":30,"devices":1,"prices":{"XTR":100}},{"name":"m","days":30,"devices":1,"prices":{"XTR":1}}]`, `plan "m" appears twice`},
		{`[{"name":"trial","days":30,"devices":1,"prices":{"XTR":100}}]`, `plan "trial": name must be set`},
		{`[{"days":30,"devices":1,"prices":{"XTR":100}}]`, "plan 1: name must be set"},
		{`[{"name":"m","days":0,"devices":1,"prices":{"XTR":100}}]`, `plan "m": days and devices must be positive`},
		{`[{"name":"m","days":3,"devices":1,"prices":{"XTR":-1}}]`, `plan "m": price in XTR must be positive`},
		{`[{"name":"m","days":30,"devices":1,"prices":{"XTR":100},"titles":{"en":"Month","ru":"Месяц"}}]`, ""},
		{`[{"name":"m","days":30,"devices":1,"prices":{"XTR":100},"titles":{"ru":" "}}]`, `plan "m": title in "ru" must have 1 to 32 characters`},
		{`{`, "unexpected end"},
		{`[{"name":"m","days":30,"devices":1,"traffic_gb":0.005,"prices":{"XTR":100}},{"name":"plus50","kind":"topup","topup_gb":50,"prices":{"XTR":50}}]`, ""},
		{`[{"name":"m","days":30,"devices":1,"traffic_gb":-5,"prices":{"XTR":100}}]`, `plan "m": traffic_gb must be 0 (unlimited) or from`},
		{`[{"name":"m","days":30,"devices":1,"traffic_gb":"50","prices":{"XTR":100}}]`, "cannot unmarshal"},
		{`[{"name":"m","days":30,"devices":1,"prices":{"XTR":100}},{"name":"plus","kind":"topup","topup_gb":5,"days":30,"prices":{"XTR":50}}]`, `plan "plus": a top-up sells traffic only`},
		{`[{"name":"plus","kind":"topup","topup_gb":5,"prices":{"XTR":50}}]`, "only top-ups"},
	} {
		path := filepath.Join(t.TempDir(), "plans.json")
		if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := service.LoadPlans(path)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: error %v, want one naming the file and %q", tt.body, err, tt.want)
		}
	}
}
