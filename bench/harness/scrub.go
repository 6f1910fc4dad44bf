package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
)

// The scrub's batch and batches in flight (dedupe/check's defaults), and
// the ceiling's.
const (
	scrubPipeline = 500
	scrubInFlight = 4
)

// scrubFigure is one pass over the list.
type scrubFigure struct {
	Rows       int     `json:"rows"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_s"`
	Allowed    int     `json:"allowed,omitempty"`
}

// phoneOf is the Norwegian mobile number of seed customer c.
func phoneOf(c int) string { return strconv.Itoa(90000000 + c) }

// listCustomer is the customer of the i-th row of the list.
func listCustomer(rng *rand.Rand, customers int) int { return rng.IntN(customers) }

// scrub is scenario 6: a list of cfg.ScrubRows rows over the seed's
// customers, most with a phone number written one of three ways, streamed
// to outreachd's POST /v1/lists/scrub and read back as it comes, with a
// suppression list of cfg.Suppressed entries in force. Its ceiling is one
// GET of a 200-byte value per row, pipelined as the scrub pipelines its
// reads. It also reports outreachd's peak RSS over the scrub.
func (e *env) scrub(ctx context.Context) error {
	if err := e.startFloor(ctx); err != nil { // writes the 200-byte values
		return err
	}
	if err := e.suppressions(ctx); err != nil {
		return err
	}
	file := filepath.Join(os.TempDir(), "outreach-harness-"+e.names.id+".csv")
	defer os.Remove(file)
	if err := writeList(file, e.cfg.ScrubRows, e.cfg.Customers); err != nil {
		return err
	}
	// A fresh outreachd, so that its peak RSS is the scrub's and not what
	// the load of the scenarios before left in its heap.
	e.daemon.stop()
	bin, err := e.binary("outreachd")
	if err != nil {
		return err
	}
	if e.daemon, err = startOutreachd(ctx, bin, e.srv, e.names, e.pr); err != nil {
		return err
	}
	rssBefore, _ := e.daemon.statusKB("VmRSS")
	reset := e.daemon.resetPeakRSS()
	f, err := e.scrubList(ctx, file)
	if err != nil {
		return err
	}
	peak, err := e.daemon.statusKB("VmHWM")
	if err != nil {
		return err
	}
	e.res.Scrub.Service = f
	e.res.Scrub.PeakRSSMB, e.res.Scrub.RSSBeforeMB = float64(peak)/1024, float64(rssBefore)/1024
	e.res.Scrub.PeakIsScrubs = reset
	e.pause(ctx)
	if e.res.Scrub.Ceiling, err = e.ceiling(ctx); err != nil {
		return err
	}
	return nil
}

// suppressions loads the list "bench": a sixth of the entries name
// customers, the rest their phone numbers.
func (e *env) suppressions(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(9, 9))
	n := e.cfg.Suppressed
	entries := func(yield func(contact.Suppression, error) bool) {
		for i := range n {
			c := rng.IntN(e.cfg.Customers)
			s := contact.Suppression{Phone: "+47" + phoneOf(c), Reason: "national register"}
			if i%6 == 0 {
				s = contact.Suppression{CustomerID: eventgen.CustomerID(c), Reason: "asked not to be called"}
			}
			if !yield(s, nil) {
				return
			}
		}
	}
	got, err := e.store.ReplaceSuppressions(ctx, "bench", entries)
	e.pr.Printf("scrub: suppression list of %d entries loaded", got)
	return err
}

func writeList(file string, rows, customers int) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("customer_id,name,phone,segment\n")
	rng := rand.New(rand.NewPCG(2, 1))
	for i := range rows {
		c := listCustomer(rng, customers)
		p := phoneOf(c)
		switch rng.IntN(10) {
		case 0, 1:
			p = ""
		case 2, 3, 4:
			p = "+47" + p
		case 5, 6:
			p = "+47 " + p[:3] + " " + p[3:5] + " " + p[5:]
		default:
			p = p[:3] + " " + p[3:5] + " " + p[5:] // national
		}
		fmt.Fprintf(w, "%s,Customer %d,%s,%s\n", eventgen.CustomerID(c), c, p, [3]string{"gold", "silver", "bronze"}[i%3])
	}
	return w.Flush()
}

// scrubList streams file to outreachd and reads the scrubbed list back as
// it comes, counting rows.
func (e *env) scrubList(ctx context.Context, file string) (scrubFigure, error) {
	f, err := os.Open(file)
	if err != nil {
		return scrubFigure{}, err
	}
	defer f.Close()
	fi, _ := f.Stat()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.daemon.url+"/v1/lists/scrub?channel=call&product=fiber-500&price=39&currency=EUR", f)
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "text/csv")
	var done atomic.Int64
	start := time.Now()
	stop := every(5*time.Second, func() {
		n := done.Load()
		rss, _ := e.daemon.statusKB("VmRSS")
		e.pr.Printf("scrub: %d of %d rows, %.0f rows/s, outreachd RSS %.0f MB", n, e.cfg.ScrubRows, float64(n)/time.Since(start).Seconds(), float64(rss)/1024)
	})
	defer stop()
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return scrubFigure{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return scrubFigure{}, fmt.Errorf("scrub: %d %s", resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	allowed := 0
	for header := true; sc.Scan(); header = false {
		if header {
			continue
		}
		if bytes.Contains(sc.Bytes(), []byte(",true,")) {
			allowed++
		}
		done.Add(1)
	}
	if err := sc.Err(); err != nil {
		return scrubFigure{}, err
	}
	elapsed := time.Since(start).Seconds()
	if st := resp.Trailer.Get("X-Outreach-Scrub-Status"); st != "ok" || int(done.Load()) != e.cfg.ScrubRows {
		return scrubFigure{}, fmt.Errorf("scrub: %d rows of %d, status %q", done.Load(), e.cfg.ScrubRows, st)
	}
	res := scrubFigure{Rows: e.cfg.ScrubRows, Seconds: elapsed, RowsPerSec: float64(e.cfg.ScrubRows) / elapsed, Allowed: allowed}
	e.pr.Printf("scrub: %d rows in %.1fs, %.0f rows/s, %.1f%% allowed", res.Rows, elapsed, res.RowsPerSec, 100*float64(allowed)/float64(res.Rows))
	return res, nil
}

// ceiling reads, for the customers of the list's rows in order, one
// 200-byte value each, in pipelines of scrubPipeline rows with
// scrubInFlight pipelines at once, and nothing else.
func (e *env) ceiling(ctx context.Context) (scrubFigure, error) {
	n := e.cfg.ScrubRows
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []int, scrubInFlight)
	go func() {
		defer close(batches)
		rng := rand.New(rand.NewPCG(2, 1))
		for i := 0; i < n; i += scrubPipeline {
			batch := make([]int, min(scrubPipeline, n-i))
			for j := range batch {
				batch[j] = listCustomer(rng, e.cfg.Customers)
				rng.IntN(10) // the phone's form, as writeList draws it
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return
			}
		}
	}()
	var done atomic.Int64
	start := time.Now()
	stop := every(5*time.Second, func() {
		e.pr.Printf("ceiling: %d of %d rows, %.0f rows/s", done.Load(), n, float64(done.Load())/time.Since(start).Seconds())
	})
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, scrubInFlight)
	for w := range scrubInFlight {
		wg.Go(func() {
			for batch := range batches {
				pipe := e.rdb.Pipeline()
				for _, c := range batch {
					pipe.Get(ctx, e.valueKey(eventgen.CustomerID(c)))
				}
				if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
					errs[w] = err
					cancel()
					return
				}
				done.Add(int64(len(batch)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return scrubFigure{}, err
	}
	s := time.Since(start).Seconds()
	f := scrubFigure{Rows: n, Seconds: s, RowsPerSec: float64(n) / s}
	e.pr.Printf("ceiling: %d rows in %.1fs, %.0f rows/s", n, s, f.RowsPerSec)
	return f, nil
}
