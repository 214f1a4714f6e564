//go:build race

package wgconf

// raceSlowdown stretches kill windows tuned for a normal build: under the
// race detector a child process writes several times slower.
const raceSlowdown = 10
