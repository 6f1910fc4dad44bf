// Command load drives a running outreachd over HTTP, on loopback only, and
// reports requests per second and latency: every second while it runs, and
// in a summary at the end.
//
//	go run ./bench/load -addr http://127.0.0.1:8080 -mode events -duration 10s
//
// Mode events posts batches of 100 valid events to POST /v1/events; mode
// timeline reads GET /v1/customers/{id}/contacts of random customers. Both
// use the customer ids of bench/eventgen, so a timeline run after an events
// run reads what it wrote. Mode healthz reads GET /healthz, which does no
// work: it is the baseline of the HTTP stack on the same machine, to quote
// the others against. It refuses an address that is not loopback, and
// runs at most 5 minutes. It exits with status 1 if no request succeeded.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outreach/outreach/bench/eventgen"
)

// Limits on the flags, so that a run stays bounded.
const (
	maxDuration    = 5 * time.Minute
	maxConcurrency = 256
	maxCustomers   = 10_000_000
	eventsPerPost  = 100
	requestTimeout = 10 * time.Second
)

// config is what the flags say.
type config struct {
	addr        *url.URL
	duration    time.Duration
	concurrency int
	customers   int
	mode        string
	key         string
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of outreachd; must be loopback")
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to run, at most 5m")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "requests in flight")
	fs.IntVar(&cfg.customers, "customers", 10000, "customers the events and reads spread over")
	fs.StringVar(&cfg.mode, "mode", "events", "events (POST /v1/events), timeline (GET /v1/customers/{id}/contacts) or healthz (GET /healthz, the baseline)")
	fs.StringVar(&cfg.key, "key", "", "API key, sent as Authorization: Bearer KEY")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	u, err := url.Parse(*addr)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("-addr: %v", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("-addr: want an http:// or https:// URL; got %q", *addr))
	case u.Hostname() == "":
		errs = append(errs, fmt.Errorf("-addr: no host in %q", *addr))
	}
	cfg.addr = u
	if cfg.duration <= 0 || cfg.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration: must be more than 0 and at most %v; got %v", maxDuration, cfg.duration))
	}
	if cfg.concurrency < 1 || cfg.concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("-concurrency: must be from 1 to %d; got %d", maxConcurrency, cfg.concurrency))
	}
	if cfg.customers < 1 || cfg.customers > maxCustomers {
		errs = append(errs, fmt.Errorf("-customers: must be from 1 to %d; got %d", maxCustomers, cfg.customers))
	}
	if cfg.mode != "events" && cfg.mode != "timeline" && cfg.mode != "healthz" {
		errs = append(errs, fmt.Errorf("-mode: must be events, timeline or healthz; got %q", cfg.mode))
	}
	if strings.ContainsAny(cfg.key, "\r\n") {
		errs = append(errs, errors.New("-key: must be one line"))
	}
	return cfg, errors.Join(errs...)
}

// requireLoopback resolves host and fails unless every address it has is
// a loopback address.
func requireLoopback(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address; this harness only loads this machine", host)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s has no address", host)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not loopback; this harness only loads this machine", host, a.IP)
		}
	}
	return nil
}

// newClient returns a client that only connects to loopback addresses,
// whatever a name resolves to when it dials, uses no proxy and follows no
// redirect.
func newClient(concurrency int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if ta, ok := conn.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
					conn.Close()
					return nil, fmt.Errorf("refusing %s: not a loopback address", conn.RemoteAddr())
				}
				return conn, nil
			},
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// run loads the server until ctx is done or the duration has passed, and
// reports whether any request succeeded.
func run(ctx context.Context, cfg config, out io.Writer) (bool, error) {
	if err := requireLoopback(ctx, cfg.addr.Hostname()); err != nil {
		return false, err
	}
	client := newClient(cfg.concurrency)
	defer client.CloseIdleConnections()
	runID := make([]byte, 4)
	rand.Read(runID)

	fmt.Fprintf(out, "load: %s mode, %d in flight, %d customers, for %v against %s\n",
		cfg.mode, cfg.concurrency, cfg.customers, cfg.duration, cfg.addr.Redacted())
	st := newStats()
	// Requests in flight when the duration ends are let finish (within
	// requestTimeout), so that the server sees no cancellations; an
	// interrupt cancels them.
	until, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			worker(ctx, until, cfg, client, st, w, hex.EncodeToString(runID))
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := start
	for {
		select {
		case now := <-tick.C:
			st.progress(out, cfg.mode, now.Sub(start), now.Sub(last))
			last = now
		case <-done:
			return st.summary(out, cfg.mode, time.Since(start)), nil
		}
	}
}

// worker sends requests under ctx, one after another, until until is done.
func worker(ctx, until context.Context, cfg config, client *http.Client, st *stats, w int, runID string) {
	gen := eventgen.New(uint64(w)+1, cfg.customers, fmt.Sprintf("load-%s-%d-", runID, w), time.Now(), 30*24*time.Hour)
	rng := mrand.New(mrand.NewPCG(uint64(w), 42))
	for until.Err() == nil {
		var req *http.Request
		var err error
		want := http.StatusOK
		events := 0
		switch cfg.mode {
		case "events":
			body, merr := json.Marshal(gen.Batch(eventsPerPost))
			if merr != nil {
				panic(merr) // eventgen makes only valid events
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, cfg.addr.JoinPath("v1", "events").String(), bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			want, events = http.StatusAccepted, eventsPerPost
		case "healthz":
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, cfg.addr.JoinPath("healthz").String(), nil)
		default:
			id := eventgen.CustomerID(rng.IntN(cfg.customers))
			req, err = http.NewRequestWithContext(ctx, http.MethodGet,
				cfg.addr.JoinPath("v1", "customers", id, "contacts").String(), nil)
		}
		if err != nil {
			st.fail("build request: "+err.Error(), "")
			return
		}
		if cfg.key != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.key)
		}
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted; this request does not count
			}
			st.fail(transportError(err), "")
			pause(until)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if resp.StatusCode != want {
			st.fail(fmt.Sprintf("HTTP %d", resp.StatusCode), string(bytes.TrimSpace(body)))
			pause(until)
			continue
		}
		st.ok(time.Since(began), events)
	}
}

// pause waits a little after a failed request, so that a server that
// fails fast is not hammered in a tight loop.
func pause(ctx context.Context) {
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
	}
}

// transportError names a failed request without its URL, so that like
// errors count together.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// stats counts requests. It is safe for concurrent use.
type stats struct {
	mu            sync.Mutex
	window, total histogram
	windowErrs    int
	totalErrs     int
	events        int
	errs          map[string]int
	firstBody     map[string]string
}

func newStats() *stats {
	return &stats{errs: map[string]int{}, firstBody: map[string]string{}}
}

func (s *stats) ok(d time.Duration, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window.add(d)
	s.total.add(d)
	s.events += events
}

func (s *stats) fail(kind, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windowErrs++
	s.totalErrs++
	if s.errs[kind]++; s.errs[kind] == 1 && body != "" {
		s.firstBody[kind] = body
	}
}

// progress prints the last window and starts a new one.
func (s *stats) progress(out io.Writer, mode string, elapsed, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := window.Seconds()
	line := fmt.Sprintf("%6.1fs  %8.1f req/s", elapsed.Seconds(), float64(s.window.n)/secs)
	if mode == "events" {
		line += fmt.Sprintf("  %9.0f events/s", float64(s.window.n*eventsPerPost)/secs)
	}
	line += fmt.Sprintf("  p50 %s  p99 %s  errors %d", ms(s.window.quantile(.50)), ms(s.window.quantile(.99)), s.windowErrs)
	fmt.Fprintln(out, line)
	s.window = histogram{}
	s.windowErrs = 0
}

// summary prints the whole run and reports whether any request succeeded.
func (s *stats) summary(out io.Writer, mode string, elapsed time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := elapsed.Seconds()
	fmt.Fprintf(out, "\nsummary: %d ok requests in %.1fs, %.1f req/s\n", s.total.n, secs, float64(s.total.n)/secs)
	if mode == "events" {
		fmt.Fprintf(out, "  events accepted: %d, %.0f events/s\n", s.events, float64(s.events)/secs)
	}
	fmt.Fprintf(out, "  latency of ok requests: p50 %s  p90 %s  p99 %s  max %s\n",
		ms(s.total.quantile(.50)), ms(s.total.quantile(.90)), ms(s.total.quantile(.99)), ms(s.total.max))
	fmt.Fprintf(out, "  errors: %d\n", s.totalErrs)
	kinds := make([]string, 0, len(s.errs))
	for k := range s.errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(out, "    %s: %d", k, s.errs[k])
		if b := s.firstBody[k]; b != "" {
			fmt.Fprintf(out, "  (first: %.200s)", b)
		}
		fmt.Fprintln(out)
	}
	return s.total.n > 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// histogram counts durations in buckets 2% wide from 1µs to about 100s, so
// that quantiles are within 2% and memory is fixed however long the run.
type histogram struct {
	counts [nBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	growth   = 1.02
	nBuckets = 932 // 1µs·1.02^i reaches 100s at i = ln(1e8)/ln(1.02) ≈ 930.2
)

var logGrowth = math.Log(growth)

func (h *histogram) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Log(us)/logGrowth), nBuckets-1)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding the q-quantile,
// capped at the largest duration seen; 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= max(rank, 1) {
			return min(time.Duration(math.Pow(growth, float64(i+1))*float64(time.Microsecond)), h.max)
		}
	}
	return h.max
}
