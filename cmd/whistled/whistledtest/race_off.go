//go:build !race

package whistledtest

const raceEnabled = false
