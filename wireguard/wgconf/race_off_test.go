//go:build !race

package wgconf

const raceSlowdown = 1
