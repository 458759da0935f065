//go:build race

package whistledtest

// raceEnabled builds whistled with the race detector when the tests run with it.
const raceEnabled = true
