//go:build !race

package querycmp

const raceEnabled = false
