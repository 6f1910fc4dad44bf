package testenv

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// Progress prints a benchmark's progress lines to stderr, at most one every
// 10s: a run that takes longer shows that it is alive, and a run that does
// not prints nothing, as a line in the middle of a result line would break
// it for benchstat (go test merges stderr into the result stream).
type Progress struct {
	b    *testing.B
	next time.Time
}

// NewProgress returns the progress printer of b.
func NewProgress(b *testing.B) *Progress {
	return &Progress{b: b, next: time.Now().Add(10 * time.Second)}
}

// Printf prints a progress line if 10s have passed since the last one.
func (p *Progress) Printf(format string, args ...any) {
	if now := time.Now(); now.After(p.next) {
		p.next = now.Add(10 * time.Second)
		fmt.Fprintf(os.Stderr, "\n  %s: %s\n", p.b.Name(), fmt.Sprintf(format, args...))
	}
}
