package http_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestScrubUnreadBodyKeepsTheConnection answers scrubs without reading
// their bodies (a bad query) on one kept-alive connection: net/http must
// not panic on the next request (golang/go#68560, with full duplex on).
func TestScrubUnreadBodyKeepsTheConnection(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	srv := httptest.NewUnstartedServer(env.h)
	var logs strings.Builder
	var mu sync.Mutex
	srv.Config.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), "", 0)
	srv.Start()
	defer srv.Close()
	for i := range 20 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/lists/scrub?only=nope", strings.NewReader("customer_id\nc1\nc2\n"))
		req.Header.Set("Content-Type", "text/csv")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("request %d: %d, want 400", i, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the server panicked:\n%.2000s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
