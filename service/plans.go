package service

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"wgbot"
)

// DefaultPlans is the set a fresh install sells: prices in minor units,
// XTR (Telegram Stars) first because Telegram requires Stars for digital
// goods sold inside bots. Titles name them for people.
func DefaultPlans() []wgbot.Plan {
	return []wgbot.Plan{
		{Name: "month", Days: 30, Devices: 3, Prices: map[string]int64{"XTR": 150, "RUB": 19900, "USD": 199},
			Titles: map[string]string{"en": "Month", "ru": "Месяц"}},
		{Name: "quarter", Days: 90, Devices: 3, Prices: map[string]int64{"XTR": 400, "RUB": 49900, "USD": 499},
			Titles: map[string]string{"en": "3 months", "ru": "3 месяца"}},
		{Name: "year", Days: 365, Devices: 5, Prices: map[string]int64{"XTR": 1400, "RUB": 179900, "USD": 1799},
			Titles: map[string]string{"en": "Year", "ru": "Год"}},
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
		if seen[p.Name] {
			return nil, fmt.Errorf("plans file %s: plan %q appears twice", path, p.Name)
		}
		if err := wgbot.ValidatePlan(p); err != nil && p.Name == "" {
			return nil, fmt.Errorf("plans file %s: plan %d: %w", path, i+1, err)
		} else if err != nil {
			return nil, fmt.Errorf("plans file %s: plan %q: %w", path, p.Name, err)
		}
		seen[p.Name] = true
	}
	if !slices.ContainsFunc(plans, func(p wgbot.Plan) bool { return !p.IsTopUp() }) {
		return nil, fmt.Errorf("plans file %s: only top-ups, no plan to subscribe to", path)
	}
	return plans, nil
}
