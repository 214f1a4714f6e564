package service

import (
	"encoding/json"
	"fmt"
	"os"

	"wgbot"
)

// DefaultPlans is the set a fresh install sells: prices in minor units,
// XTR (Telegram Stars) first because Telegram requires Stars for digital
// goods sold inside bots.
func DefaultPlans() []wgbot.Plan {
	return []wgbot.Plan{
		{Name: "month", Days: 30, Devices: 3, Prices: map[string]int64{"XTR": 150, "RUB": 19900, "USD": 199}},
		{Name: "quarter", Days: 90, Devices: 3, Prices: map[string]int64{"XTR": 400, "RUB": 49900, "USD": 499}},
		{Name: "year", Days: 365, Devices: 5, Prices: map[string]int64{"XTR": 1400, "RUB": 179900, "USD": 1799}},
	}
}

// LoadPlans reads the operator's plans file (a JSON array of plans), or
// returns DefaultPlans when path is empty. Every problem is reported.
func LoadPlans(path string) ([]wgbot.Plan, error) {
	if path == "" {
		return DefaultPlans(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plans file: %w", err)
	}
	var plans []wgbot.Plan
	if err := json.Unmarshal(raw, &plans); err != nil {
		return nil, fmt.Errorf("plans file %s: %w", path, err)
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("plans file %s: no plans", path)
	}
	seen := map[string]bool{}
	for i, p := range plans {
		switch {
		case p.Name == "" || p.Name == "trial" || p.Name == "grant":
			return nil, fmt.Errorf("plans file %s: plan %d: name must be set and not \"trial\" or \"grant\"", path, i+1)
		case seen[p.Name]:
			return nil, fmt.Errorf("plans file %s: plan %q appears twice", path, p.Name)
		case p.Days <= 0 || p.Devices <= 0:
			return nil, fmt.Errorf("plans file %s: plan %q: days and devices must be positive", path, p.Name)
		case len(p.Prices) == 0:
			return nil, fmt.Errorf("plans file %s: plan %q has no prices", path, p.Name)
		}
		for cur, amount := range p.Prices {
			if amount <= 0 {
				return nil, fmt.Errorf("plans file %s: plan %q: price in %s must be positive", path, p.Name, cur)
			}
		}
		seen[p.Name] = true
	}
	return plans, nil
}
