//go:build race

package harness

// raceDetector says whether the tests run under the race detector.
const raceDetector = true
