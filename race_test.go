//go:build race

package workbook_test

// raceEnabled is true when the test itself runs with the race detector
// (go test -race); the stages are then built with it too.
const raceEnabled = true
