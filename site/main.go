// Command site builds the kqueue workbook's site: a static site of plain
// HTML pages, readable from file:// and offline, with one page per stage (its
// README, the diff from the stage before, and main.go with its comments
// beside its code), the kqueue package's README and the bench page.
//
//	cd site && go run . -out ../_site      # what make site runs
//
// Everything comes from the tree: the stage directories (NN-name), their
// README.md, main.go and plumbing.go, and the diffs that scripts/diffs
// prints. A README link to nothing is reported on stderr and left as text.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

func main() {
	root := flag.String("root", "..", "the workbook's root `directory`")
	out := flag.String("out", "../_site", "the `directory` to write the site to; what is in it is replaced")
	source := flag.String("source", "", "base `URL` for links to the workbook's files that are not pages "+
		"(such as https://github.com/OWNER/REPO/blob/COMMIT); empty, they point into the checkout")
	flag.Parse()
	log.SetFlags(0)
	start := time.Now()
	n, err := build(config{root: *root, out: *out, source: *source, warn: os.Stderr})
	if err != nil {
		log.Fatalf("site: %v", err)
	}
	fmt.Printf("site: %d pages in %s (%.1fs); open %s\n", n, *out, time.Since(start).Seconds(),
		filepath.Join(*out, "index.html"))
}
