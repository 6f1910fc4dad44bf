// Package scrub_test benchmarks POST /v1/lists/scrub end to end: the real
// outreachd binary over real Redis, holding 100,000 customers with
// realistic timelines and a suppression list, scrubs a generated call list
// streamed to it over HTTP. In the same run it measures the ceiling: the
// same Redis reads for the same rows, pipelined the same way, with nothing
// decoded, decided or written.
//
//	OUTREACH_TEST_REDIS_ADDR=127.0.0.1:16379 go test -run '^$' -bench Scrub -benchtime 1x -timeout 30m ./bench/scrub/
//
// OUTREACH_BENCH_SCRUB_ROWS sets the list's length (default 1,000,000, at
// most 10,000,000). Without a real Redis the benchmark skips.
package scrub_test

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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/internal/testenv"
)

const (
	customers       = 100_000
	eventsMin       = 5  // events per customer, uniformly from eventsMin…eventsMax
	eventsMax       = 25 // so about 15 on average, 1.5 million in all
	span            = 180 * 24 * time.Hour
	defaultRows     = 1_000_000
	maxRows         = 10_000_000
	suppressedIDs   = 2_000  // customers on the suppression list
	suppressedPhone = 10_000 // phones on it
	pipelineRows    = 500    // the scrub's batch, and the ceiling's
	inFlight        = 4      // the scrub's batches in flight, and the ceiling's pipelines
	smallRows       = 1_000  // the list whose peak RSS is the baseline
	progressEvery   = 2 * time.Second
)

// row is the i-th row of the generated list: a customer, mostly with a
// phone number, written in one of the ways people write them.
type row struct {
	customer int
	phone    string // as written; "" for none
	e164     string
}

func listRow(rng *rand.Rand) row {
	c := rng.IntN(customers)
	r := row{customer: c}
	if rng.IntN(10) < 8 {
		n := 90000000 + c // a Norwegian mobile number of the customer's own
		r.e164 = "+47" + strconv.Itoa(n)
		s := strconv.Itoa(n)
		switch rng.IntN(3) {
		case 0:
			r.phone = r.e164
		case 1:
			r.phone = "+47 " + s[:3] + " " + s[3:5] + " " + s[5:]
		default:
			r.phone = s[:3] + " " + s[3:5] + " " + s[5:] // national
		}
	}
	return r
}

func BenchmarkScrub(b *testing.B) {
	if os.Getenv(testenv.RedisEnv) == "" && os.Getenv(testenv.RedisClusterEnv) == "" {
		b.Skip("needs a real Redis: set " + testenv.RedisEnv + " or " + testenv.RedisClusterEnv)
	}
	rows := defaultRows
	if v := os.Getenv("OUTREACH_BENCH_SCRUB_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRows {
			b.Fatalf("OUTREACH_BENCH_SCRUB_ROWS=%q: want 1 to %d", v, maxRows)
		}
		rows = n
	}
	r := testenv.NewRedis(b)
	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	b.Cleanup(func() { deleteSeed(b, r) })
	seed(b, store)

	dir := b.TempDir()
	small, big := filepath.Join(dir, "small.csv"), filepath.Join(dir, "list.csv")
	writeList(b, small, smallRows, 1)
	writeList(b, big, rows, 2)
	d := startDaemon(b, r)

	smallRes := scrub(b, d, small, smallRows)
	rssSmall := d.status("VmHWM")
	progress(b, "scrubbed %d rows; peak RSS %.1f MB", smallRows, mb(rssSmall))

	var res scrubResult
	for b.Loop() {
		res = scrub(b, d, big, rows)
	}
	rssBig := d.status("VmHWM")
	progress(b, "scrubbed %d rows in %v: %.0f rows/s, %.1f%% allowed; peak RSS %.1f MB",
		rows, res.elapsed.Round(time.Millisecond), res.rowsPerSec(), 100*float64(res.allowed)/float64(rows), mb(rssBig))

	ceil := ceiling(b, r, rows, 2)
	progress(b, "ceiling: the same reads raw, %d rows in %v: %.0f rows/s", rows, ceil.elapsed.Round(time.Millisecond), ceil.rowsPerSec())

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(res.rowsPerSec(), "rows/s")
	b.ReportMetric(ceil.rowsPerSec(), "ceiling-rows/s")
	b.ReportMetric(res.rowsPerSec()/ceil.rowsPerSec(), "of-ceiling")
	b.ReportMetric(mb(rssBig), "peak-rss-MB")
	b.ReportMetric(mb(rssSmall), "peak-rss-1k-rows-MB")
	_ = smallRes
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func progress(b *testing.B, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  %s: %s\n", b.Name(), fmt.Sprintf(format, args...))
}

// seed stores the customers' timelines and the suppression list "bench".
func seed(b *testing.B, s *redis.Store) {
	b.Helper()
	start := time.Now()
	ctx := context.Background()
	var stored atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			gen := eventgen.New(uint64(100+w), customers, fmt.Sprintf("s%d-", w), time.Now(), span)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			batch := make([]contact.Event, 0, 2000)
			for c := w; c < customers; c += workers {
				id := eventgen.CustomerID(c)
				for range eventsMin + rng.IntN(eventsMax-eventsMin+1) {
					batch = append(batch, gen.For(id))
				}
				if len(batch) >= 1000 {
					if _, err := s.Apply(ctx, batch); err != nil {
						errs <- err
						return
					}
					stored.Add(int64(len(batch)))
					batch = batch[:0]
				}
			}
			if _, err := s.Apply(ctx, batch); err != nil {
				errs <- err
			}
			stored.Add(int64(len(batch)))
		})
	}
	stop := ticker(func() { progress(b, "seeding: %d events", stored.Load()) })
	wg.Wait()
	stop()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	rng := rand.New(rand.NewPCG(9, 9))
	entries := func(yield func(dedupe.Suppression, error) bool) {
		for range suppressedIDs {
			if !yield(dedupe.Suppression{CustomerID: eventgen.CustomerID(rng.IntN(customers)), Reason: "asked not to be called"}, nil) {
				return
			}
		}
		for range suppressedPhone {
			if !yield(dedupe.Suppression{Phone: "+47" + strconv.Itoa(90000000+rng.IntN(customers)), Reason: "national register"}, nil) {
				return
			}
		}
	}
	t := time.Now()
	n, err := s.ReplaceSuppressions(ctx, "bench", entries)
	if err != nil {
		b.Fatal(err)
	}
	progress(b, "seeded %d events of %d customers in %v; suppression list of %d entries loaded in %v",
		stored.Load(), customers, time.Since(start).Round(time.Second), n, time.Since(t).Round(time.Millisecond))
}

// deleteSeed deletes the benchmark's keys in pipelines; testenv's own
// cleanup, key by key, would take minutes.
func deleteSeed(b *testing.B, r *testenv.Redis) {
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	for c := range customers {
		id := eventgen.CustomerID(c)
		for _, kind := range []string{"c", "p", "x", "o", "f", "claim", "dnc"} {
			pipe.Unlink(ctx, r.Prefix+"{c:"+id+"}:"+kind)
		}
		pipe.Unlink(ctx, r.Prefix+"{p:+47"+strconv.Itoa(90000000+c)+"}:dnc")
		if pipe.Len() >= 8000 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Errorf("delete the seed: %v", err)
				return
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Errorf("delete the seed: %v", err)
	}
}

// writeList writes a list of n rows to file.
func writeList(b *testing.B, file string, n int, seed uint64) {
	b.Helper()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("customer_id,name,phone,segment\n")
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		r := listRow(rng)
		fmt.Fprintf(w, "%s,Customer %d,%s,%s\n", eventgen.CustomerID(r.customer), r.customer, r.phone, []string{"gold", "silver", "bronze"}[i%3])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// daemon is the outreachd under test, started by the benchmark so that it
// knows the process and can read its peak RSS.
type daemon struct {
	url string
	cmd *exec.Cmd
}

func startDaemon(b *testing.B, r *testenv.Redis) *daemon {
	b.Helper()
	bin := testenv.Build(b, "../../cmd/outreachd")
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTREACH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "OUTREACH_HTTP_ADDR=127.0.0.1:0", "OUTREACH_EMBEDDED_KAFKA_ADDR=127.0.0.1:0",
		"OUTREACH_LOG_FORMAT=text", "OUTREACH_AUTH=off",
		"OUTREACH_KAFKA_TOPICS=bench-scrub-"+testenv.Unique(b), "OUTREACH_KAFKA_GROUP=bench-scrub-"+testenv.Unique(b))
	cmd.Env = append(cmd.Env, r.DaemonEnv()...)
	if k := os.Getenv(testenv.KafkaEnv); k != "" {
		cmd.Env = append(cmd.Env, "OUTREACH_KAFKA_BROKERS="+k)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d := &daemon{cmd: cmd}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `msg="http listening"`) {
				if _, a, ok := strings.Cut(line, "addr="); ok {
					addr <- strings.Fields(a)[0]
				}
			}
			if strings.Contains(line, "level=ERROR") {
				fmt.Fprintln(os.Stderr, "  outreachd:", line)
			}
		}
	}()
	select {
	case a := <-addr:
		d.url = "http://" + a
	case <-time.After(60 * time.Second):
		b.Fatal("outreachd did not start")
	}
	return d
}

// status reads a field of the daemon's /proc/PID/status, in kB; -1 if it
// cannot.
func (d *daemon) status(field string) int64 {
	pid := os.Getpid()
	if d.cmd != nil {
		pid = d.cmd.Process.Pid
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

type scrubResult struct {
	rows, allowed int
	elapsed       time.Duration
}

func (r scrubResult) rowsPerSec() float64 { return float64(r.rows) / r.elapsed.Seconds() }

// scrub streams file to the daemon and reads the scrubbed list back as it
// comes, counting rows.
func scrub(b *testing.B, d *daemon, file string, want int) scrubResult {
	b.Helper()
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	req, _ := http.NewRequest("POST", d.url+"/v1/lists/scrub?channel=call&product=fiber-500&price=39&currency=EUR", f)
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "text/csv")
	var done, allowed atomic.Int64
	start := time.Now()
	stop := ticker(func() {
		n := done.Load()
		progress(b, "scrub: %d of %d rows, %.0f rows/s, RSS %.1f MB (peak %.1f MB)", n, want,
			float64(n)/time.Since(start).Seconds(), mb(d.status("VmRSS")), mb(d.status("VmHWM")))
	})
	defer stop()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("scrub: %d %s", resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		if bytes.Contains(sc.Bytes(), []byte(",true,")) {
			allowed.Add(1)
		}
		done.Add(1)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if st := resp.Trailer.Get("X-Outreach-Scrub-Status"); st != "ok" || done.Load() != int64(want) {
		b.Fatalf("scrub: %d rows of %d, status %q", done.Load(), want, st)
	}
	return scrubResult{rows: want, allowed: int(allowed.Load()), elapsed: elapsed}
}

// ceiling reads, for the rows of the list of the given seed, exactly the
// keys and ranges that the scrub's checks read, in pipelines of
// pipelineRows rows with inFlight pipelines at once, and nothing else.
func ceiling(b *testing.B, r *testenv.Redis, n int, seed uint64) scrubResult {
	b.Helper()
	ctx := context.Background()
	p := dedupe.DefaultPolicy()
	now := time.Now()
	floor := now.Add(-redis.DefaultRetention).UnixMilli()
	contactsMin := strconv.FormatInt(max(floor, now.Add(-p.ContactWindow()).UnixMilli()), 10)
	purchasesMin := strconv.FormatInt(max(floor, now.Add(-p.PurchaseLookback()).UnixMilli()), 10)
	retained := strconv.FormatInt(floor, 10)

	batches := make(chan []row, inFlight)
	go func() {
		defer close(batches)
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := 0; i < n; i += pipelineRows {
			batch := make([]row, 0, pipelineRows)
			for range min(pipelineRows, n-i) {
				batch = append(batch, listRow(rng))
			}
			batches <- batch
		}
	}()
	var done atomic.Int64
	start := time.Now()
	stop := ticker(func() {
		m := done.Load()
		progress(b, "ceiling: %d of %d rows, %.0f rows/s", m, n, float64(m)/time.Since(start).Seconds())
	})
	defer stop()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for batch := range batches {
				pipe := r.Client.Pipeline()
				pipe.HGetAll(ctx, r.Prefix+"{dnc}:lists")
				for _, row := range batch {
					k := r.Prefix + "{c:" + eventgen.CustomerID(row.customer) + "}:"
					pipe.ZRevRangeByScore(ctx, k+"c", &goredis.ZRangeBy{Min: contactsMin, Max: "+inf", Count: redis.DefaultMaxEvents})
					pipe.ZRevRangeByScore(ctx, k+"f", &goredis.ZRangeBy{Min: retained, Max: "+inf"})
					pipe.ZRevRangeByScore(ctx, k+"p", &goredis.ZRangeBy{Min: purchasesMin, Max: "+inf"})
					pipe.ZRevRangeByScore(ctx, k+"x", &goredis.ZRangeBy{Min: retained, Max: "+inf"})
					pipe.ZRevRangeByScore(ctx, k+"o", &goredis.ZRangeBy{Min: "-inf", Max: "+inf"})
					pipe.Get(ctx, k+"claim")
					pipe.HGetAll(ctx, k+"dnc")
					if row.e164 != "" {
						pipe.HGetAll(ctx, r.Prefix+"{p:"+row.e164+"}:dnc")
					}
				}
				if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
					b.Error(err)
					return
				}
				done.Add(int64(len(batch)))
			}
		})
	}
	wg.Wait()
	return scrubResult{rows: n, elapsed: time.Since(start)}
}

// ticker calls f every progressEvery until the returned stop is called.
func ticker(f func()) (stop func()) {
	t := time.NewTicker(progressEvery)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-t.C:
				f()
			case <-quit:
				return
			}
		}
	})
	return func() {
		t.Stop()
		close(quit)
		wg.Wait()
	}
}
