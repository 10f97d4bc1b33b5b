package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The widths the browser test reads every page at: a laptop's, where the
// code stands beside its prose, and a phone's, where they stack.
var widths = []int{1280, 400}

// screenshotHeight is how much of a page, or of one of its sections, one
// screenshot shows.
const screenshotHeight = 1800

// chromium finds Debian's chromium (or another Chrome) to run; CHROMIUM
// names one. Without one the browser test is skipped, except under CI,
// where .ci/run installs it and its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	if exe := os.Getenv("CHROMIUM"); exe != "" {
		return exe
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if exe, err := exec.LookPath(name); err == nil {
			return exe
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium to run the browser test with (apt-get install chromium)")
	}
	t.Skip("no chromium: the browser test needs Debian's chromium (apt-get install chromium)")
	return ""
}

// TestBrowser loads every page from file:// in headless Chromium at each
// width. It fails on a console error, an exception, a failed load or a
// broken image, on a page wider than the window, and where the layout is
// wrong: at 1280 px a note must stand beside its code, at 400 px above it;
// and where the switch between a whole Go file and what changed in it does
// not work.
// It writes screenshots to SITE_SCREENSHOTS (default: site/screenshots/):
// the top of every page at each width; on a stage page, the start of its
// diff at each width, and at 1280 px the start of its main.go and of its
// "Watch it" trace; on the bench page, its charts.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	out := built(t)
	shots := os.Getenv("SITE_SCREENSHOTS")
	if shots == "" {
		shots = "screenshots"
	}
	if err := os.RemoveAll(shots); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob(filepath.Join(out, "*.html"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in %s: %v", out, err)
	}

	browser := startBrowser(t, exe)

	// One tab for each width, reading the pages at once.
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range widths {
		wg.Go(func() { readAt(t.Errorf, browser, w, pages, shots) })
	}
	wg.Wait()
	t.Logf("%d pages at %d widths in %.1fs; screenshots in %s", len(pages), len(widths), time.Since(start).Seconds(), shots)
}

// TestBrowserCatchesFaults shows the browser test's checks at work on a
// page that has every fault they look for.
func TestBrowserCatchesFaults(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "01-bad.html")
	err := os.WriteFile(bad, []byte(`<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<img src="missing.png" alt="">
<div style="width: 3000px">too wide</div>
<section class="docco" id="x"><div class="pair"><div class="code">code</div><div class="note">note</div></div></section>
<script>console.error("boom"); notDefined();</script>
</body></html>`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	browser := startBrowser(t, exe)
	var mu sync.Mutex
	var got []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf(format, args...))
	}
	readAt(report, browser, 1280, []string{bad}, "")
	all := strings.Join(got, "\n")
	for _, want := range []string{"console.error: boom", "exception: Uncaught", "missing.png", "broken image",
		"wider than the window", "not beside its note"} {
		if !strings.Contains(all, want) {
			t.Errorf("the checks did not report %q; they reported:\n%s", want, all)
		}
	}
}

// startBrowser starts a headless Chromium for the test, ended with it.
func startBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	// The flags keep a headless Chromium from reaching out to the network
	// for updates, sync and the like, which fail noisily where there is none.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	browser, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return browser
}

// reporter is where a check reports a fault: t.Errorf, or a list.
type reporter func(format string, args ...any)

// readAt loads every page in a new tab of the browser, width pixels wide,
// and checks it.
func readAt(report reporter, browser context.Context, width int, pages []string, shots string) {
	ctx, cancel := chromedp.NewContext(browser)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	// Every message of the console: calls of the console API, exceptions
	// nothing caught, and the browser's own log (a file that failed to load).
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, a.Description+strings.Trim(string(a.Value), `"`))
				}
				p = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				p += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				p = "console error: " + ev.Entry.Text + " " + ev.Entry.URL
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err == nil {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), screenshotHeight))
	}
	if err != nil {
		report("a tab %d px wide: %v", width, err)
		return
	}
	for _, p := range pages {
		name := strings.TrimSuffix(filepath.Base(p), ".html")
		at := fmt.Sprintf("%s at %d px", name, width)
		mu.Lock()
		problems = nil
		mu.Unlock()
		err := chromedp.Do(ctx, chromedp.Navigate("file://"+p))
		var check pageCheck
		if err == nil {
			check, err = chromedp.Run(ctx, chromedp.Evaluate[pageCheck](checkScript))
		}
		if err != nil {
			report("%s: %v", at, err)
			continue
		}
		mu.Lock()
		for _, pr := range problems {
			report("%s: %s", at, pr)
		}
		mu.Unlock()
		for _, img := range check.Broken {
			report("%s: broken image %s", at, img)
		}
		if check.ScrollWidth > check.Width {
			report("%s: the page is %.0f px wide, wider than the window", at, check.ScrollWidth)
		}
		for _, pair := range check.Pairs {
			checkPair(report, at+", "+pair.Where, width, pair)
		}
		if sw := check.Switch; sw != nil && (sw.Shown != sw.Changed || sw.All != sw.Total) {
			report("%s: the switch shows %d sections for what changed (want %d) and %d for the whole file (want %d)",
				at, sw.Shown, sw.Changed, sw.All, sw.Total)
		}
		if stagePageName.MatchString(name) && len(check.Pairs) == 0 {
			report("%s: no note beside its code on a stage's page", at)
		}
		if shots == "" {
			continue
		}
		shoot(report, ctx, filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, width)), 0)
		for _, sec := range check.Sections {
			// At a phone's width only the diff: the rest stacks alike.
			if width >= 700 || sec.ID == "the-diff" {
				shoot(report, ctx, filepath.Join(shots, fmt.Sprintf("%s-%d-%s.png", name, width, sec.ID)), sec.Top)
			}
		}
	}
}

// A stage's page, or its plumbing.go page.
var stagePageName = regexp.MustCompile(`^[0-9][0-9]-`)

// pageCheck is what checkScript reports of a loaded page.
type pageCheck struct {
	Broken      []string    `json:"broken"`
	Width       float64     `json:"width"`
	ScrollWidth float64     `json:"scrollWidth"`
	Height      float64     `json:"height"`
	Pairs       []pairCheck `json:"pairs"`
	Switch      *struct {
		Shown, Changed, All, Total int
	} `json:"switch"`
	Sections []struct {
		ID  string  `json:"id"`
		Top float64 `json:"top"`
	} `json:"sections"`
}

type rect struct {
	Left   float64 `json:"left"`
	Right  float64 `json:"right"`
	Top    float64 `json:"top"`
	Bottom float64 `json:"bottom"`
}

type pairCheck struct {
	Where string `json:"where"`
	Note  rect   `json:"note"`
	Code  rect   `json:"code"`
}

// checkScript runs in the page: its broken images, its width, and for each
// section of notes beside code (the diff, the Go file) the first pair that
// has both, where each of the two stands.
const checkScript = `(() => {
	const box = (e) => { const r = e.getBoundingClientRect();
		return {left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY}; };
	const pairs = [];
	for (const sec of document.querySelectorAll("section.diff, section.docco")) {
		for (const p of sec.querySelectorAll(".pair")) {
			const note = p.querySelector(":scope > .note"), code = p.querySelector(":scope > .code");
			if (note && code && note.textContent.trim() !== "" && code.textContent.trim() !== "") {
				pairs.push({where: sec.id, note: box(note), code: box(code)});
				break;
			}
		}
	}
	// The switch above the Go file, if the page has one: the script must have
	// shown it, and "only what changed" must leave exactly the changed
	// sections, "the whole file" all of them.
	let sw = null;
	const form = document.querySelector("form.switch");
	if (form) {
		const target = document.getElementById(form.dataset.switch);
		const visible = () => Array.from(target.children).filter((e) => e.offsetParent !== null).length;
		sw = {Shown: -1, Changed: target.querySelectorAll(":scope > .pair.changed").length, All: -1, Total: target.children.length};
		if (!form.hidden) {
			form.querySelector("input[value=changed]").click();
			sw.Shown = visible();
			form.querySelector("input[value=all]").click();
			sw.All = visible();
		}
	}
	return {
		switch: sw,
		broken: Array.from(document.images).filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.getAttribute("src")),
		width: document.documentElement.clientWidth,
		scrollWidth: document.documentElement.scrollWidth,
		height: document.documentElement.scrollHeight,
		pairs: pairs,
		sections: Array.from(document.querySelectorAll("body.stage section[id]:not(#the-scripts), h2#watch-it, h2#the-charts")).map((s) => ({id: s.id, top: Math.max(0, box(s).top - 60)})),
	};
})()`

// checkPair checks where a note stands against its code: beside it at a
// wide window, above it at a narrow one.
func checkPair(report reporter, where string, width int, p pairCheck) {
	beside := p.Code.Left >= p.Note.Right-1 && p.Code.Top < p.Note.Bottom
	stacked := p.Code.Top >= p.Note.Bottom-1 && math.Abs(p.Code.Left-p.Note.Left) < 2
	switch {
	case width >= 1000 && !beside:
		report("%s: the code is not beside its note: note %+v, code %+v", where, p.Note, p.Code)
	case width < 700 && !stacked:
		report("%s: the code is not below its note: note %+v, code %+v", where, p.Note, p.Code)
	}
}

// shoot writes a PNG of the window scrolled to top: screenshotHeight high,
// or less where the page ends. Scrolling and taking the window is much
// faster than a clip of the whole page, which lays the page out again.
func shoot(report reporter, ctx context.Context, file string, top float64) {
	_, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf("window.scrollTo(0, %.0f), window.scrollY", top)))
	if err != nil {
		report("screenshot %s: %v", file, err)
		return
	}
	fast := true
	r, err := chromedp.Call(ctx, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{
		Format:           cdppage.CaptureScreenshotFormatPng,
		OptimizeForSpeed: &fast,
	})
	if err != nil {
		report("screenshot %s: %v", file, err)
		return
	}
	if err := os.WriteFile(file, r.Data, 0o644); err != nil {
		report("%v", err)
	}
}
