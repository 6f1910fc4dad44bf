package check_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// TestScrubRowsAreNotCountedAsChecks: outreach_checks_total counts the
// live checks, never a scrub's rows, whatever OUTREACH_CHECK_TIMEOUT is,
// even the scrub's own read timeout (30s).
func TestScrubRowsAreNotCountedAsChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	reg := prometheus.NewRegistry()
	e.svc = check.New(check.Config{Store: e.store, Policy: dedupe.DefaultPolicy, Now: func() time.Time { return t0 },
		Timeout: 30 * time.Second, Metrics: check.NewMetrics(reg)})
	checks := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "outreach_checks_total" {
				for _, m := range mf.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return int(total)
	}

	rows := []check.Row{{CustomerID: "c1"}, {CustomerID: "c2"}, {CustomerID: "c3"}}
	next := func() (check.Row, error) {
		if len(rows) == 0 {
			return check.Row{}, io.EOF
		}
		r := rows[0]
		rows = rows[1:]
		return r, nil
	}
	o := check.ScrubOptions{Defaults: dedupe.Request{Channel: contact.Call, Purpose: "sales"}}
	if err := e.svc.Scrub(context.Background(), o, next, func(_ []check.Verdict, end error) error { return end }); err != nil {
		t.Fatal(err)
	}
	if n := checks(); n != 0 {
		t.Errorf("after a scrub of 3 rows, outreach_checks_total = %d, want 0", n)
	}
	if _, err := e.svc.Check(context.Background(), []dedupe.Request{{CustomerID: "c1", Channel: contact.Call}}, check.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := checks(); n != 1 {
		t.Errorf("after one live check, outreach_checks_total = %d, want 1", n)
	}
}
