package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact/redis"
)

// partitions of the run's topic, as outreachd creates its topics.
const partitions = 6

// runNames are the key prefix, topics and group of one run, unique to it.
type runNames struct {
	id, prefix, topic, dlq, decisions, group string
}

func newRunNames() *runNames {
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return &runNames{id: id, prefix: "bench:" + id + ":", topic: "bench." + id + ".events",
		dlq: "bench." + id + ".dlq", decisions: "bench." + id + ".decisions", group: "bench-" + id}
}

// progress prints timestamped progress lines. It is safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[harness %6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// every calls f every d until the returned stop is called: the progress
// line of a long step.
func every(d time.Duration, f func()) (stop func()) {
	t := time.NewTicker(d)
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
	return func() { t.Stop(); close(quit); wg.Wait() }
}

// env is what the scenarios share.
type env struct {
	cfg      config
	pr       *progress
	srv      *servers
	names    *runNames
	rdb      *goredis.Client
	store    *redis.Store      // the store outreachd runs, for seeding
	bins     map[string]string // once built is closed, with buildErr
	built    chan struct{}
	buildErr error
	daemon   *proc
	floor    *proc
	res      *results
}

// run runs the scenarios of cfg and writes their results.
func run(ctx context.Context, cfg config, w io.Writer) (*results, error) {
	pr := &progress{w: w, start: time.Now()}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&cfg.OutDir, &cfg.PlotFile} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	e := &env{cfg: cfg, pr: pr, names: newRunNames(), res: newResults(cfg)}
	pr.Printf("run %s: scenarios %s; %d customers, %d events, rates %v, %d CPUs", e.names.id,
		strings.Join(cfg.Scenarios, ","), cfg.Customers, cfg.Events, cfg.Rates, runtime.NumCPU())
	e.srv, err = startServers(ctx, cfg, root, pr)
	if err != nil {
		return nil, err
	}
	defer e.srv.stop(pr)
	defer e.cleanup()
	if err := e.setUp(ctx, root); err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"seed", e.seed}, // ingest (4) and memory (7)
		{"check", e.checkRates},
		{"saturation", e.saturation},
		{"history", e.history},
		{"timeline", e.timeline},
		{"freshness", e.freshness},
		{"scrub", e.scrub},
	}
	for _, s := range steps {
		if s.name != "seed" && !cfg.has(s.name) {
			continue
		}
		began := time.Now()
		if err := s.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		pr.Printf("%s done in %v", s.name, time.Since(began).Round(100*time.Millisecond))
	}
	e.res.finish(e)
	if err := e.res.write(cfg, pr); err != nil {
		return nil, err
	}
	pr.Printf("done in %v", time.Since(pr.start).Round(time.Second))
	return e.res, nil
}

// setUp connects to Redis and builds outreachd and the floor in the
// background, while the seed is produced: wait for them with binary.
func (e *env) setUp(ctx context.Context, root string) error {
	e.rdb = goredis.NewClient(&goredis.Options{Addr: e.srv.redis, PoolSize: 64, MaxRetries: -1,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	e.store = redis.New(e.rdb, redis.Options{Prefix: e.names.prefix})
	if err := e.store.LoadScripts(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "outreach-harness")
	if err != nil {
		return err
	}
	e.pr.Printf("building outreachd and the floor server")
	e.built = make(chan struct{})
	go func() {
		defer close(e.built)
		bins, err := build(ctx, root, dir, "cmd/outreachd", "bench/floor")
		if err != nil {
			e.buildErr = err
			return
		}
		e.bins = map[string]string{"outreachd": bins[0], "floor": bins[1]}
	}()
	return nil
}

// binary returns the path of a built server, once the build is done.
func (e *env) binary(name string) (string, error) {
	<-e.built
	if e.buildErr != nil {
		return "", e.buildErr
	}
	return e.bins[name], nil
}

// cleanup stops the servers and deletes the run's keys and topics.
func (e *env) cleanup() {
	if e.built != nil {
		<-e.built
	}
	for _, p := range []*proc{e.daemon, e.floor} {
		if p != nil {
			p.stop()
		}
	}
	if e.rdb == nil {
		return
	}
	defer e.rdb.Close()
	if e.cfg.Keep {
		e.pr.Printf("kept keys %s* and topics %s, %s, %s", e.names.prefix, e.names.topic, e.names.dlq, e.names.decisions)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := deleteKeys(ctx, e.rdb, e.names.prefix)
	e.pr.Printf("deleted %d keys under %s (%v)", n, e.names.prefix, err)
	cl := &kafka.Client{Addr: kafka.TCP(e.srv.brokers...), Timeout: 30 * time.Second}
	if _, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.names.topic, e.names.dlq, e.names.decisions}}); err != nil {
		e.pr.Printf("delete topics: %v", err)
	}
}

// deleteKeys unlinks every key under prefix.
func deleteKeys(ctx context.Context, rdb *goredis.Client, prefix string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 20000).Iterator()
	pipe := rdb.Pipeline()
	for iter.Next(ctx) {
		pipe.Unlink(ctx, iter.Val())
		n++
		if pipe.Len() >= 5000 {
			if _, err := pipe.Exec(ctx); err != nil {
				return n, err
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return n, err
	}
	return n, iter.Err()
}
