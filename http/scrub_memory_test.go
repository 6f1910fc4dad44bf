package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	httpapi "github.com/outreach/outreach/http"
)

// wideList generates a call list of about size bytes: a header of
// customer_id and cols-1 empty names, then rows of cols empty fields,
// whose empty customer_id makes them invalid (no store work), as the
// attack of issue 11 did.
type wideList struct {
	row       []byte
	remaining int64
	header    bool
}

func newWideList(cols int, size int64) *wideList {
	return &wideList{row: []byte(strings.Repeat(",", cols-1) + "\n"), remaining: size, header: true}
}

// Len is the number of bytes the list holds.
func (l *wideList) Len() int64 {
	rows := (l.remaining - int64(len("customer_id")+len(l.row))) / int64(len(l.row))
	return int64(len("customer_id")+len(l.row)) + rows*int64(len(l.row))
}

func (l *wideList) Read(p []byte) (int, error) {
	n := 0
	if l.header {
		l.header = false
		n = copy(p, "customer_id")
		l.remaining -= int64(n)
	}
	for len(p)-n >= len(l.row) && l.remaining >= int64(len(l.row)) {
		n += copy(p[n:], l.row)
		l.remaining -= int64(len(l.row))
	}
	if n == 0 {
		if l.remaining < int64(len(l.row)) {
			return 0, io.EOF
		}
		return 0, io.ErrShortBuffer
	}
	return n, nil
}

// heapPeak samples the heap every millisecond until stop, and returns the
// highest value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestScrubMemoryIsBounded uploads the wide-row list of issue 11 (98 MB of
// rows of 32,768 empty fields), and the widest list a scrub accepts (512
// columns, 32 MB), with a client that reads the answer and with one that
// never does, one at a time and three at once. The heap of the process must
// stay under 64 MiB above its baseline for one upload, and 96 MiB for three.
// Before the caps, the issue's list took the heap 662 MiB above it with a
// reading client, 585 MiB without, and 911 MiB for three at once; the
// widest list 149 MiB for three at once.
func TestScrubMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams hundreds of MB")
	}
	// Not parallel: it measures the process's heap.
	const issueSize, widestSize = 98_000_000, 32_000_000
	div := int64(1)
	if raceEnabled {
		div = 10 // the race detector is ten times slower; the batches are as large
	}
	env := newListsEnv(t, listsOptions{})
	// A client that reads gets all the time it needs; one that does not is
	// cut after a second without progress.
	var done atomic.Int64 // handlers returned
	server := func(idle time.Duration) *httptest.Server {
		api := httpapi.New(httpapi.Config{
			Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: env.checker,
			Lists: httpapi.ListsConfig{Suppressions: env.store, UploadIdle: idle},
		}).Handler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer done.Add(1)
			api.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	reading, notReading := server(time.Minute), server(time.Second)
	uploads := int64(0)

	const issueCols, widestCols = 32768, httpapi.MaxCSVColumns
	tests := []struct {
		name       string
		cols       int
		size       int64
		reading    bool
		parallel   int
		wantStatus int // from a reading client
	}{
		{"issue's list, reading", issueCols, issueSize, true, 1, 400},
		{"issue's list, not reading", issueCols, issueSize, false, 1, 0},
		{"issue's list, three at once, reading", issueCols, issueSize, true, 3, 400},
		{"issue's list, three at once, not reading", issueCols, issueSize, false, 3, 0},
		{"widest list, reading", widestCols, widestSize, true, 1, 200},
		{"widest list, not reading", widestCols, widestSize, false, 1, 0},
		{"widest list, three at once, reading", widestCols, widestSize, true, 3, 200},
		{"widest list, three at once, not reading", widestCols, widestSize, false, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the test's bound
			defer cancel()
			runtime.GC()
			base := heapObjects()
			stop := make(chan struct{})
			peak := heapPeak(stop)
			start := time.Now()
			var wg sync.WaitGroup
			var sent atomic.Int64
			for range tt.parallel {
				wg.Go(func() {
					list := newWideList(tt.cols, tt.size/div)
					sent.Add(list.Len())
					if tt.reading {
						scrubReading(ctx, t, reading.URL, list, tt.wantStatus)
					} else {
						scrubNotReading(ctx, t, notReading.Listener.Addr().String(), list)
					}
				})
			}
			wg.Wait()
			uploads += int64(tt.parallel)
			for done.Load() < uploads && ctx.Err() == nil { // the handlers are done
				time.Sleep(10 * time.Millisecond)
			}
			close(stop)
			p := <-peak
			if ctx.Err() != nil {
				t.Fatalf("not done in time")
			}
			above := int64(p) - int64(base)
			t.Logf("%d × %.0f MB in %v: peak heap %.1f MiB above a baseline of %.1f MiB",
				tt.parallel, float64(sent.Load())/float64(tt.parallel)/1e6, time.Since(start).Round(time.Millisecond),
				float64(above)/(1<<20), float64(base)/(1<<20))
			bound := int64(64 << 20)
			if tt.parallel > 1 {
				bound = 96 << 20
			}
			if above > bound {
				t.Errorf("peak heap %.1f MiB above the baseline; want under %d MiB", float64(above)/(1<<20), bound>>20)
			}
		})
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// scrubReading uploads list and reads the answer as it comes.
func scrubReading(ctx context.Context, t *testing.T, url string, list *wideList, wantStatus int) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/lists/scrub", list)
	req.ContentLength = list.Len()
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil && wantStatus == 400 {
		// The server answered before the body was sent and hung up; the
		// client, still sending, may see the reset before the answer.
		return
	}
	if err != nil {
		t.Errorf("scrub: %v", err)
		return
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != wantStatus {
		t.Errorf("status %d, want %d", resp.StatusCode, wantStatus)
	}
	if wantStatus == 200 && (err != nil || resp.Trailer.Get(httpapi.ScrubStatusTrailer) != "ok") {
		t.Errorf("answer of %d bytes ended with %v, trailer %q; want the whole answer", n, err, resp.Trailer.Get(httpapi.ScrubStatusTrailer))
	}
}

// scrubNotReading uploads list over a raw connection and never reads the
// answer; it returns when the server stops reading and hangs up.
func scrubNotReading(ctx context.Context, t *testing.T, addr string, list *wideList) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	fmt.Fprintf(conn, "POST /v1/lists/scrub HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n", list.Len())
	_, err = io.Copy(conn, list)
	var ne net.Error
	if ctxErr := ctx.Err(); ctxErr != nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the server held the upload until the test's bound: %v", err)
	}
}
