package check_test

import (
	"context"
	"io"
	"testing"

	"github.com/outreach/outreach/dedupe/check"
)

// TestScrubBatchCountsEveryField scrubs rows of a thousand empty fields
// under a 64 KiB batch size: each field costs its string header, so a batch
// closes after a few rows, not after Batch rows of "nothing".
func TestScrubBatchCountsEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const rows, fields = 100, 1000
	read := 0
	next := func() (check.Row, error) {
		if read == rows {
			return check.Row{}, io.EOF
		}
		read++
		return check.Row{Record: make([]string, fields)}, nil // no customer_id: invalid, no store work
	}
	var batches, most int
	err := e.svc.Scrub(context.Background(), check.ScrubOptions{BatchSize: 64 << 10}, next, func(vs []check.Verdict, end error) error {
		batches++
		most = max(most, len(vs))
		return end
	})
	if err != nil {
		t.Fatal(err)
	}
	// A row costs over 16 KB: four fill a batch, and a fifth closes it.
	if most > 5 || batches < rows/5 {
		t.Errorf("%d batches of at most %d rows; want batches of at most 5 rows", batches, most)
	}
}
