package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barRefresh is how often the bar's row count is redrawn.
const barRefresh = 200 * time.Millisecond

// progress reports an upload on stderr: how many bytes of the input were
// sent and how many items (rows, events) are done. On a terminal it draws a
// progress bar; elsewhere it prints a plain line every interval and one at
// the end. Its methods are safe for concurrent use.
//
// The ETA comes from the bytes sent: the lines sent so far give the bytes
// per line, and so how many items the whole input holds; the rate of items
// done gives the time the rest will take. Bytes sent alone would make a
// poor ETA, since the socket and the server read megabytes ahead of the
// rows they have answered.
type progress struct {
	w     io.Writer
	quiet bool   // --progress none: only printf writes
	label string // the command, at the start of plain lines
	unit  string // "rows", "events"; empty when only bytes count
	total int64  // bytes to send; -1 unknown
	every time.Duration
	bar   *progressbar.ProgressBar // nil in plain mode
	start time.Time

	sent, lines, done atomic.Int64

	mu      sync.Mutex // serializes writes to w and every use of bar
	stop    chan struct{}
	stopped sync.WaitGroup
	once    sync.Once
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts reporting the upload of total bytes (-1: unknown) in
// the mode of --progress; plain progress starts with the line intro. Call
// finish or abort when done.
func (a *app) newProgress(label, unit, intro string, total int64) *progress {
	mode := a.progressMode
	if mode == "auto" {
		mode = "plain"
		if isTerminal(a.stderr) {
			mode = "bar"
		}
	}
	if total <= 0 {
		total = -1
	}
	p := &progress{w: a.stderr, label: label, unit: unit, total: total, every: a.progressEvery,
		start: time.Now(), stop: make(chan struct{})}
	if mode == "none" {
		p.quiet = true
		return p
	}
	interval := p.every
	if mode == "bar" {
		interval = barRefresh
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(p.describe()),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false), // describe has the ETA
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			// No goroutine of the bar's own: it would go on drawing the
			// spinner of an unknown total after Exit. The spinner turns
			// when tick redraws.
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if p.bar == nil && intro != "" {
		p.println(label + ": " + intro)
	}
	p.stopped.Add(1)
	go p.tick(interval)
	return p
}

// sending is the intro of an upload: "sending list.csv (12.7 MB) to URL".
func (a *app) sending(name string, size int64) string {
	return "sending " + describeInput(name, size) + " to " + a.client.base
}

// describeInput names an input file and its size: "list.csv (12.7 MB)".
func describeInput(name string, size int64) string {
	if name == "-" {
		name = "stdin"
	}
	if size > 0 {
		name += " (" + humanBytes(size) + ")"
	}
	return name
}

func (p *progress) tick(interval time.Duration) {
	defer p.stopped.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if p.bar != nil {
				p.mu.Lock()
				p.bar.Describe(p.describe())
				p.mu.Unlock()
			} else {
				p.println(p.line(false))
			}
		}
	}
}

// reader counts the bytes read from r as sent.
func (p *progress) reader(r io.Reader) io.Reader {
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.sent.Add(int64(n))
		c.p.lines.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
		if c.p.bar != nil {
			c.p.mu.Lock()
			c.p.bar.Add(n)
			c.p.mu.Unlock()
		}
	}
	return n, err
}

// add counts n more items done.
func (p *progress) add(n int) {
	p.done.Add(int64(n))
}

// printf prints a message on its own line; a bar is drawn again below it.
func (p *progress) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
		fmt.Fprintln(p.w, msg)
		p.bar.Describe(p.describe())
		return
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

// finish stops reporting after a success and prints the last line.
func (p *progress) finish() {
	p.end(func() {
		if p.bar != nil {
			p.mu.Lock()
			if p.total > 0 {
				p.bar.Finish()
			}
			p.bar.Describe(p.describe())
			p.bar.Exit()
			fmt.Fprintln(p.w)
			p.mu.Unlock()
		}
		p.println(p.line(true))
	})
}

// abort stops reporting after a failure, leaving the cursor on a new line.
func (p *progress) abort() {
	p.end(func() {
		if p.bar != nil {
			p.mu.Lock()
			p.bar.Exit()
			fmt.Fprintln(p.w)
			p.mu.Unlock()
		}
	})
}

func (p *progress) end(last func()) {
	p.once.Do(func() {
		close(p.stop)
		p.stopped.Wait()
		if !p.quiet {
			last()
		}
	})
}

// describe is the bar's description: the items done, their rate and the
// ETA.
func (p *progress) describe() string {
	el := time.Since(p.start)
	var parts []string
	if p.unit != "" {
		done := p.done.Load()
		parts = append(parts, commas(done)+" "+p.unit)
		if el >= time.Second {
			parts = append(parts, commas(int64(float64(done)/el.Seconds()))+"/s")
		}
	}
	if eta, ok := p.eta(el); ok {
		parts = append(parts, "ETA "+roundDuration(eta).String())
	}
	return strings.Join(parts, ", ")
}

// eta estimates the time left, elapsed el after the start.
func (p *progress) eta(el time.Duration) (time.Duration, bool) {
	sent, lines, done := p.sent.Load(), p.lines.Load(), p.done.Load()
	if p.total <= 0 || sent <= 0 || el < 500*time.Millisecond {
		return 0, false
	}
	if p.unit != "" {
		if done <= 0 || lines <= 0 {
			return 0, false
		}
		items := float64(p.total) * float64(lines) / float64(sent) // in the whole input
		left := max(items-float64(done), 0)
		return time.Duration(left / float64(done) * float64(el)), true
	}
	if sent >= p.total {
		return 0, false
	}
	return time.Duration(float64(el) * float64(p.total-sent) / float64(sent)), true
}

// line is a plain progress line, or the last one when final is set:
//
//	scrub: 12,000 rows, 5,800 rows/s; sent 1.4 MB of 3.1 MB (45%), ETA 4s
//	scrub: 24,000 rows, 5,810 rows/s; sent all 3.1 MB
//	scrub: done: 25,000 rows in 4.3s, 5,814 rows/s; sent 3.1 MB
func (p *progress) line(final bool) string {
	var b strings.Builder
	b.WriteString(p.label + ": ")
	el := time.Since(p.start)
	done, sent := p.done.Load(), p.sent.Load()
	if final {
		b.WriteString("done: ")
	}
	if p.unit != "" {
		b.WriteString(commas(done) + " " + p.unit)
		if final {
			b.WriteString(" in " + roundDuration(el).String())
		}
		if el >= 100*time.Millisecond {
			b.WriteString(", " + commas(int64(float64(done)/el.Seconds())) + " " + p.unit + "/s")
		}
		b.WriteString("; ")
	}
	switch {
	case final:
		b.WriteString("sent " + humanBytes(sent))
		if p.unit == "" {
			b.WriteString(" in " + roundDuration(el).String())
		}
		return b.String()
	case p.total > 0 && sent >= p.total:
		b.WriteString("sent all " + humanBytes(p.total))
	case p.total > 0:
		b.WriteString("sent " + humanBytes(sent) + " of " + humanBytes(p.total) + " (" + strconv.FormatInt(sent*100/p.total, 10) + "%)")
	default:
		b.WriteString("sent " + humanBytes(sent))
	}
	if p.unit == "" && el >= 100*time.Millisecond {
		b.WriteString(", " + humanBytes(int64(float64(sent)/el.Seconds())) + "/s")
	}
	if eta, ok := p.eta(el); ok {
		b.WriteString(", ETA " + roundDuration(eta).String())
	}
	return b.String()
}

// roundDuration rounds d for people: to the second, or to 0.1s under 10s,
// or to the millisecond under 1s.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// commas writes n with thousands separators: 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// humanBytes writes n in SI units, as the progress bar does: 3.1 MB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, exp := float64(n), 0
	for v >= unit && exp < 6 {
		v /= unit
		exp++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + "kMGTPE"[exp-1:exp] + "B"
}
