package main

// The stage's tests: the scripts in the workbook's testdata/ for this stage
// and every stage before it (see testdata/README.md). The same file is in
// every stage; the harness finds the stage number in the directory's name.
//
//	go test                                  # run them all
//	go test -v -run TestScripts/echo-one-line    # one, with its session

import (
	"testing"

	"github.com/kqueue-workbook/workbook/internal/harness"
)

// TestMain lets the test binary run this stage's main as the scripts' server.
func TestMain(m *testing.M) { harness.Main(m, main) }

func TestScripts(t *testing.T) { harness.Run(t) }
