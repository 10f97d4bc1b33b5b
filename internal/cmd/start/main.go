// Command start begins an exercise: `make start STAGE=03` runs
//
//	go run ./internal/cmd/start 03
//
// in the workbook's root, which copies stage 02 into work/03-connpool for the
// learner to turn into 03, and says what to read and how to check it.
//
//	-from NN   copy stage NN instead of the one before (for the smaller
//	           exercises, which change a stage itself: -from 03 for 03)
//	-dir PATH  the exercise's directory (default work/NN-name); it must not
//	           exist yet
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kqueue-workbook/workbook/internal/exercise"
)

func main() {
	fromFlag := flag.String("from", "", "copy this stage instead of the one before `NN`")
	dirFlag := flag.String("dir", "", "the exercise's directory (default work/NN-name)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: make start STAGE=NN [FROM=NN] [DIR=path]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}

	stages, err := exercise.Stages(".")
	if err != nil {
		fail("%v", err)
	}
	if len(stages) == 0 {
		fail("no stages here; run make in the workbook's root directory")
	}
	stage := lookup(stages, "STAGE", flag.Arg(0))
	var from exercise.Stage
	switch {
	case *fromFlag != "":
		from = lookup(stages, "FROM", *fromFlag)
	case stage.Num == stages[0].Num:
		fail("%s is the first stage: there is none before it to start from.\n"+
			"  Read %s/README.md and build it from nothing, or start from a copy of it for its\n"+
			"  smaller exercises: make start STAGE=%02d FROM=%02d DIR=work/%02d-mine",
			stage.Name, stage.Name, stage.Num, stage.Num, stage.Num)
	default:
		var ok bool
		if from, ok = exercise.Find(stages, stage.Num-1); !ok {
			fail("there is no stage %02d to start %s from", stage.Num-1, stage.Name)
		}
	}
	dir := *dirFlag
	if dir == "" {
		dir = filepath.Join("work", stage.Name)
	}
	dir = filepath.Clean(dir)

	if err := exercise.Start(".", from, dir); errors.Is(err, exercise.ErrExists) {
		fail("%s already exists, and may hold your work: nothing was copied.\n"+
			"  To carry on, edit it and check it:  make watch STAGE=%02d DIR=%s\n"+
			"  To start over, remove it first:     rm -r %s && make start STAGE=%02d",
			dir, stage.Num, dir, dir, stage.Num)
	} else if err != nil {
		fail("%v", err)
	}

	what := "turn it into " + stage.Name
	if from == stage {
		what = "change it as the exercise asks"
	}
	fmt.Printf("%s is a copy of %s: %s.\n\n", dir, from.Name, what)
	fmt.Printf("Read first:\n")
	fmt.Printf("  %-36s the lesson, and its exercises at the end\n", stage.Name+"/README.md")
	if from != stage {
		fmt.Printf("  %-36s the reference's change: the answer, to compare with yours\n",
			fmt.Sprintf("make diff FROM=%02d TO=%02d", from.Num, stage.Num))
	}
	fmt.Printf("\nRun your server:\n")
	fmt.Printf("  make run DIR=%s ARGS='-addr localhost:8080'\n", dir)
	fmt.Printf("\nCheck it with the tests of stage %02d and of every stage before it, after every save\n", stage.Num)
	fmt.Printf("(keep it open in a second terminal) or once:\n")
	fmt.Printf("  make watch STAGE=%02d DIR=%s\n", stage.Num, dir)
	fmt.Printf("  make check STAGE=%02d DIR=%s\n", stage.Num, dir)
	if strings.HasPrefix(filepath.Base(dir), fmt.Sprintf("%02d-", stage.Num)) {
		fmt.Printf("  (without make: cd %s && go test)\n", dir)
	} else {
		fmt.Printf("  (without make: cd %s && WORKBOOK_STAGE=%02d go test)\n", dir, stage.Num)
	}
	if from == stage {
		checks, _ := filepath.Glob(filepath.Join("testdata", "exercises", stage.Name, "*.txt"))
		if len(checks) > 0 {
			fmt.Printf("\nThe smaller exercises of %s with a check of their own:\n", stage.Name)
		}
		for _, c := range checks {
			fmt.Printf("  make check STAGE=%02d DIR=%s EXERCISE=%s\n", stage.Num, dir, strings.TrimSuffix(filepath.Base(c), ".txt"))
		}
	}
	fmt.Printf("\nTo start over: rm -r %s && make start STAGE=%02d", dir, stage.Num)
	if *fromFlag != "" {
		fmt.Printf(" FROM=%02d", from.Num)
	}
	if *dirFlag != "" {
		fmt.Printf(" DIR=%s", dir)
	}
	fmt.Println()
}

// lookup returns the stage a make variable (STAGE or FROM) names, or stops
// with the list of stages.
func lookup(stages []exercise.Stage, name, value string) exercise.Stage {
	num, err := strconv.Atoi(value)
	st, ok := exercise.Find(stages, num)
	if err != nil || !ok {
		names := ""
		for _, st := range stages {
			names += " " + st.Name
		}
		fail("%s=%s: no such stage; the stages are%s", name, value, names)
	}
	return st
}

// fail says what went wrong, as make's own errors do, and exits.
func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "make start: "+format+"\n", args...)
	os.Exit(1)
}
