package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// config is what one build needs: the workbook's checkout, where the site
// goes, and where links to source files that are not pages should point.
type config struct {
	root string // the workbook's root directory
	out  string // the site's directory; emptied and written anew
	// source is the base URL of the repository's files, such as
	// https://github.com/OWNER/REPO/blob/SHA; empty, links to files that are
	// not part of the site point into the checkout, relative to out.
	source string
	warn   io.Writer // where dangling links in the READMEs are reported
}

// stage is one stage directory, as the tree has it: NN-name.
type stage struct {
	dir   string // 02-kqueue-basic
	num   string // 02
	name  string // kqueue-basic
	title string // the README's first heading, after its "NN-name: "
	prev  *stage
	next  *stage
}

func (s *stage) page() string         { return s.dir + ".html" }
func (s *stage) plumbingPage() string { return s.dir + "-plumbing.html" }

var stageDir = regexp.MustCompile(`^([0-9][0-9])-(.+)$`)

// findStages lists the stage directories in order: every directory of the
// root whose name is two digits, a dash and a name, as scripts/diffs does.
func findStages(root string) ([]*stage, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var stages []*stage
	for _, e := range entries {
		m := stageDir.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		s := &stage{dir: e.Name(), num: m[1], name: m[2], title: e.Name()}
		if readme, err := os.ReadFile(filepath.Join(root, s.dir, "README.md")); err == nil {
			s.title = stageTitle(s.dir, readme)
		}
		stages = append(stages, s)
	}
	slices.SortFunc(stages, func(a, b *stage) int { return strings.Compare(a.dir, b.dir) })
	for i, s := range stages {
		if i > 0 {
			s.prev = stages[i-1]
			stages[i-1].next = s
		}
	}
	return stages, nil
}

// stageTitle is the idea in a stage README's first heading: "the smallest
// correct kqueue loop" from "# 02-kqueue-basic: the smallest correct kqueue
// loop". A heading without a colon is taken whole.
func stageTitle(dir string, readme []byte) string {
	for line := range strings.SplitSeq(string(readme), "\n") {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			if _, idea, ok := strings.Cut(h, ": "); ok {
				return strings.TrimSpace(idea)
			}
			return strings.TrimSpace(h)
		}
	}
	return dir
}

// site is one build in progress: the stages, the Markdown documents that
// become pages, and the files the pages link to, copied as they are.
type site struct {
	config
	stages []*stage
	byDir  map[string]*stage
	docs   map[string]*doc // by the repository path of the Markdown file
	queue  []string        // documents found by links, not parsed yet
	mu     sync.Mutex      // for copies and warned, written by pages made at once
	copies map[string]bool // repository paths copied under files/
	warned map[string]bool
}

// build writes the whole site to cfg.out and returns how many pages it has.
func build(cfg config) (int, error) {
	if cfg.warn == nil {
		cfg.warn = io.Discard
	}
	var err error
	if cfg.root, err = filepath.Abs(cfg.root); err != nil {
		return 0, err
	}
	if cfg.out, err = filepath.Abs(cfg.out); err != nil {
		return 0, err
	}
	stages, err := findStages(cfg.root)
	if err != nil {
		return 0, err
	}
	if len(stages) == 0 {
		return 0, fmt.Errorf("no stage directories (NN-name) in %s", cfg.root)
	}
	s := &site{config: cfg, stages: stages, byDir: map[string]*stage{}, docs: map[string]*doc{},
		copies: map[string]bool{}, warned: map[string]bool{}}
	for _, st := range stages {
		s.byDir[st.dir] = st
	}

	// Parse every Markdown page first, so that a link's anchor can be
	// checked against the page it points to; links to other Markdown files
	// of the workbook add them to the queue.
	s.want("README.md")
	for _, st := range stages {
		s.want(path.Join(st.dir, "README.md"))
	}
	s.want("kqueue/README.md")
	s.want("bench/README.md")
	for len(s.queue) > 0 {
		p := s.queue[0]
		s.queue = s.queue[1:]
		if err := s.parse(p); err != nil {
			return 0, err
		}
	}

	// The pages are made at once, one goroutine each: what each makes is
	// its own, and only the list of files to copy and the warnings are
	// shared.
	pages := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	add := func(name string, page []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		} else if page != nil {
			pages[name] = page
		}
	}
	for _, st := range stages {
		wg.Go(func() {
			page, plumbing, err := s.stagePages(st)
			add(st.page(), page, err)
			add(st.plumbingPage(), plumbing, nil)
		})
	}
	for _, p := range sortedKeys(s.docs) {
		if s.isStageReadme(p) {
			continue // part of the stage's page
		}
		d := s.docs[p]
		wg.Go(func() {
			page, err := s.docPage(d)
			add(d.page, page, err)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return 0, errs[0]
	}

	if err := os.RemoveAll(cfg.out); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return 0, err
	}
	for name, b := range pages {
		if err := os.WriteFile(filepath.Join(cfg.out, name), b, 0o644); err != nil {
			return 0, err
		}
	}
	for name, b := range assets() {
		if err := os.WriteFile(filepath.Join(cfg.out, name), b, 0o644); err != nil {
			return 0, err
		}
	}
	for _, p := range sortedKeys(s.copies) {
		if err := copyFile(filepath.Join(cfg.root, p), filepath.Join(cfg.out, "files", p)); err != nil {
			return 0, err
		}
	}
	for _, msg := range sortedKeys(s.warned) {
		fmt.Fprintln(s.warn, "site: "+msg)
	}
	return len(pages), nil
}

// isStageReadme says whether repository path p is a stage's README.
func (s *site) isStageReadme(p string) bool {
	dir, file := path.Split(p)
	return file == "README.md" && s.byDir[strings.TrimSuffix(dir, "/")] != nil
}

// pageFor is the page a Markdown file of the workbook becomes: README.md is
// index.html, a stage's README its stage page, and any other file its path
// with the slashes made dashes: kqueue/README.md is kqueue.html,
// kqueue/MUTANTS.md kqueue-MUTANTS.html.
func (s *site) pageFor(p string) string {
	if p == "README.md" {
		return "index.html"
	}
	name := strings.TrimSuffix(strings.TrimSuffix(p, ".md"), "/README")
	return strings.ReplaceAll(name, "/", "-") + ".html"
}

// want queues a Markdown file to be parsed and made a page.
func (s *site) want(p string) {
	if _, ok := s.docs[p]; ok || slices.Contains(s.queue, p) {
		return
	}
	if _, err := os.Stat(filepath.Join(s.root, p)); err != nil {
		return
	}
	s.queue = append(s.queue, p)
}

// warnf notes something wrong in the sources, such as a README link to a
// file that is not there; the build goes on without that link, and reports
// each such thing once, in order, when it is done.
func (s *site) warnf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warned[fmt.Sprintf(format, args...)] = true
}

// copy has a file of the checkout copied into the site, under files/.
func (s *site) copy(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copies[p] = true
}

// sourceLink is the address of a file or directory of the checkout that is
// not part of the site.
func (s *site) sourceLink(p string) string {
	if s.source != "" {
		return strings.TrimSuffix(s.source, "/") + "/" + p
	}
	rel, err := filepath.Rel(s.out, s.root)
	if err != nil {
		rel = s.root
	}
	return filepath.ToSlash(filepath.Join(rel, p))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// readFile reads a file of the checkout, or returns nil if it is not there.
func (s *site) readFile(p string) []byte {
	b, err := os.ReadFile(filepath.Join(s.root, p))
	if err != nil {
		return nil
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}
