package http_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	httpapi "github.com/outreach/outreach/http"
)

// TestScrubConcurrency holds one scrub open under a limit of one: the next
// is refused with 429 rate_limited and a Retry-After, and counted; once
// the first ends, a scrub runs again.
func TestScrubConcurrency(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: env.checker, Registry: reg, Gatherer: reg,
		Lists: httpapi.ListsConfig{Suppressions: env.store, ScrubBatch: 1, ScrubConcurrency: 1},
	}).Handler())
	defer srv.Close()
	scrub := func(body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/lists/scrub", body)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	pr, pw := io.Pipe()
	go io.WriteString(pw, "customer_id\nc4\n")
	first := scrub(pr) // its first row is answered: it runs
	if first.StatusCode != 200 {
		t.Fatalf("first scrub: %d", first.StatusCode)
	}
	second := scrub(strings.NewReader("customer_id\nc4\n"))
	var e apiErr
	json.NewDecoder(second.Body).Decode(&e)
	second.Body.Close()
	if second.StatusCode != 429 || e.Error.Code != "rate_limited" || second.Header.Get("Retry-After") == "" {
		t.Errorf("second scrub: %d %+v, Retry-After %q; want 429 rate_limited with Retry-After", second.StatusCode, e, second.Header.Get("Retry-After"))
	}
	if got := counterValue(t, reg, "outreach_scrub_rejected_total"); got != 1 {
		t.Errorf("outreach_scrub_rejected_total = %v, want 1", got)
	}

	pw.Close()
	io.Copy(io.Discard, first.Body)
	first.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := scrub(strings.NewReader("customer_id\nc4\n"))
		io.Copy(io.Discard, third.Body)
		third.Body.Close()
		if third.StatusCode == 200 {
			break
		}
		// The first handler may take a moment to return after its answer.
		if time.Now().After(deadline) {
			t.Fatalf("after the first scrub ended: %d, want 200", third.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue returns the value of the unlabelled counter name.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
