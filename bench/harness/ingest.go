package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/stream"
)

// span is how far back the seed's events go.
const span = 90 * 24 * time.Hour

// seed fills the store with cfg.Events events of cfg.Customers customers:
// produced to Kafka and consumed by outreachd when the ingest scenario
// runs (4), else applied directly. Either way it starts outreachd, and it
// measures memory (7) around it.
func (e *env) seed(ctx context.Context) error {
	cfg := e.cfg
	var jsonBytes int64
	if cfg.has("ingest") || cfg.has("freshness") {
		topicsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := stream.EnsureTopics(topicsCtx, e.srv.brokers, partitions, e.names.topic, e.names.dlq)
		cancel()
		if err != nil {
			return err
		}
	}
	if cfg.has("ingest") {
		var err error
		if jsonBytes, err = e.produce(ctx, cfg.Events); err != nil {
			return err
		}
		ro, err := e.readOnly(ctx, cfg.Events)
		if err != nil {
			return err
		}
		e.res.Ingest.ReadOnly = ro
	}
	before, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return err
	}
	bin, err := e.binary("outreachd")
	if err != nil {
		return err
	}
	e.pr.Printf("starting outreachd (prefix %s, topic %s)", e.names.prefix, e.names.topic)
	if e.daemon, err = startOutreachd(ctx, bin, e.srv, e.names, e.pr); err != nil {
		return err
	}
	if cfg.has("ingest") {
		if e.res.Ingest.Outreachd, err = e.ingest(ctx, cfg.Events); err != nil {
			return err
		}
		e.res.Ingest.Events = cfg.Events
	} else if jsonBytes, err = e.applyDirect(ctx); err != nil {
		return err
	}
	if !cfg.has("memory") {
		return nil
	}
	after, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return err
	}
	return e.memory(ctx, after-before, jsonBytes)
}

// produce writes n events of the run's customers to its topic, keyed by
// customer as stream.Producer does, and returns their JSON bytes.
func (e *env) produce(ctx context.Context, n int) (int64, error) {
	w := &kafka.Writer{Addr: kafka.TCP(e.srv.brokers...), Topic: e.names.topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 2000, BatchBytes: 4 << 20, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	gen := eventgen.New(1, e.cfg.Customers, "ev-"+e.names.id+"-", time.Now(), span)
	const chunk = 10_000
	chunks := make(chan []kafka.Message, 2)
	var done, bytes atomic.Int64
	start := time.Now()
	stop := every(5*time.Second, func() {
		d := done.Load()
		e.pr.Printf("produce: %d of %d events, %.0f/s", d, n, float64(d)/time.Since(start).Seconds())
	})
	defer stop()
	go func() {
		defer close(chunks)
		for i := 0; i < n; i += chunk {
			msgs := make([]kafka.Message, min(chunk, n-i))
			for j := range msgs {
				ev := gen.Next()
				v, _ := json.Marshal(&ev)
				bytes.Add(int64(len(v)))
				msgs[j] = kafka.Message{Key: []byte(ev.CustomerID), Value: v}
			}
			select {
			case chunks <- msgs:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for msgs := range chunks {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					errs <- err
					return
				}
				done.Add(int64(len(msgs)))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	if int(done.Load()) != n {
		return 0, fmt.Errorf("produce: %d of %d events written", done.Load(), n)
	}
	e.pr.Printf("produced %d events in %v", n, time.Since(start).Round(100*time.Millisecond))
	return bytes.Load(), nil
}

// ingestFigure is a consumer's throughput over a backlog, from its first
// event to its last.
type ingestFigure struct {
	EventsPerSec float64 `json:"events_per_s"`
	Seconds      float64 `json:"seconds"`
	FirstEventMs float64 `json:"first_event_ms"` // from the start to the first event: the group's join
}

// readOnly is the ingest baseline: a kafka-go group reader in a new group,
// with the settings of stream.NewConsumer, that only fetches and commits in
// batches of 500.
func (e *env) readOnly(ctx context.Context, n int) (ingestFigure, error) {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: e.srv.brokers, GroupID: e.names.group + "-read-only", GroupTopics: []string{e.names.topic},
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, StartOffset: kafka.FirstOffset,
		CommitInterval: 0, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
	})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	began := time.Now()
	var first time.Time
	var read atomic.Int64
	stop := every(5*time.Second, func() { e.pr.Printf("read-only group: %d of %d events", read.Load(), n) })
	defer stop()
	batch := make([]kafka.Message, 0, 500)
	for i := range n {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			return ingestFigure{}, fmt.Errorf("read-only group after %d events: %w", i, err)
		}
		if i == 0 {
			first = time.Now()
		}
		batch = append(batch, m)
		if len(batch) == cap(batch) || i == n-1 {
			if err := rd.CommitMessages(ctx, batch...); err != nil {
				return ingestFigure{}, err
			}
			batch = batch[:0]
		}
		read.Add(1)
	}
	f := figureOf(n, first, time.Now(), began)
	e.pr.Printf("read-only group: %d events in %.1fs, %.0f events/s", n, f.Seconds, f.EventsPerSec)
	return f, nil
}

func figureOf(n int, first, last, began time.Time) ingestFigure {
	s := last.Sub(first).Seconds()
	return ingestFigure{EventsPerSec: float64(n) / s, Seconds: s, FirstEventMs: float64(first.Sub(began).Milliseconds())}
}

// ingest waits until outreachd, just started, has applied the n events of
// the backlog, and times it from the first applied event to the last by its
// outreach_events_applied_total.
func (e *env) ingest(ctx context.Context, n int) (ingestFigure, error) {
	began := time.Now()
	deadline := began.Add(max(8*time.Minute, time.Duration(n/2000)*time.Second)) // a loaded machine is slow
	var t0 time.Time
	var a0 float64
	last := time.Now()
	for {
		applied, err := metric(ctx, e.daemon.url, "outreach_events_applied_total")
		if err != nil {
			return ingestFigure{}, err
		}
		now := time.Now()
		if applied > 0 && t0.IsZero() {
			t0, a0 = now, applied
		}
		if int(applied) >= n {
			dead, _ := metric(ctx, e.daemon.url, "outreach_events_dead_lettered_total")
			if dead > 0 {
				return ingestFigure{}, fmt.Errorf("outreachd dead-lettered %v events of the seed", dead)
			}
			s := now.Sub(t0).Seconds()
			f := ingestFigure{EventsPerSec: (float64(n) - a0) / s, Seconds: s, FirstEventMs: float64(t0.Sub(began).Milliseconds())}
			e.pr.Printf("outreachd ingest: %d events in %.1fs, %.0f events/s", n, s, f.EventsPerSec)
			return f, nil
		}
		if now.After(deadline) {
			return ingestFigure{}, fmt.Errorf("outreachd applied %v of %d events in %v", applied, n, now.Sub(began).Round(time.Second))
		}
		if now.Sub(last) >= 5*time.Second {
			e.pr.Printf("outreachd ingest: %.0f of %d events applied", applied, n)
			last = now
		}
		select {
		case <-ctx.Done():
			return ingestFigure{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// applyDirect seeds the store without Kafka, through Store.Apply, when the
// ingest scenario does not run. It returns the events' JSON bytes.
func (e *env) applyDirect(ctx context.Context) (int64, error) {
	const workers = 4
	var done, bytes atomic.Int64
	errs := make([]error, workers)
	stop := every(5*time.Second, func() { e.pr.Printf("seed: %d of %d events applied", done.Load(), e.cfg.Events) })
	defer stop()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			gen := eventgen.New(uint64(1+w), e.cfg.Customers, fmt.Sprintf("ev-%s-%d-", e.names.id, w), time.Now(), span)
			for n := w * e.cfg.Events / workers; n < (w+1)*e.cfg.Events/workers; n += 500 {
				batch := gen.Batch(min(500, (w+1)*e.cfg.Events/workers-n))
				for i := range batch {
					v, _ := json.Marshal(&batch[i])
					bytes.Add(int64(len(v)))
				}
				if _, err := e.store.Apply(ctx, batch); err != nil {
					errs[w] = err
					return
				}
				done.Add(int64(len(batch)))
			}
		})
	}
	wg.Wait()
	return bytes.Load(), errors.Join(errs...)
}

// usedMemory returns used_memory of INFO memory.
func usedMemory(ctx context.Context, rdb *goredis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO memory has no used_memory")
}

// customerKinds are the keys the store keeps per customer (contact/redis):
// history, ids, state, recent contacts, offers and follow-ups.
var customerKinds = []string{"h", "i", "s", "r", "f", "u"}

// memory measures (7) what Redis holds per event and per customer: MEMORY
// USAGE of every key of a sample of customers, against their stored
// events, and the change of used_memory over the seed (the whole server:
// other clients add noise). Its baseline is the events' JSON.
func (e *env) memory(ctx context.Context, usedDelta, jsonBytes int64) error {
	sample := min(e.cfg.Customers, 20_000)
	pipe := e.rdb.Pipeline()
	usage := make([]*goredis.IntCmd, 0, sample*len(customerKinds))
	counts := make([]*goredis.IntCmd, 0, sample)
	for i := range sample {
		k := e.names.prefix + "{c:" + eventgen.CustomerID(i) + "}:"
		for _, kind := range customerKinds {
			usage = append(usage, pipe.MemoryUsage(ctx, k+kind, 0))
		}
		counts = append(counts, pipe.ZCard(ctx, k+"h"))
	}
	enc := pipe.ObjectEncoding(ctx, e.names.prefix+"{c:"+eventgen.CustomerID(0)+"}:h")
	encState := pipe.ObjectEncoding(ctx, e.names.prefix+"{c:"+eventgen.CustomerID(0)+"}:s")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("MEMORY USAGE: %w", err)
	}
	var bytes, events int64
	for _, c := range usage {
		bytes += c.Val() // 0 for a key that does not exist
	}
	for _, c := range counts {
		events += c.Val()
	}
	if events == 0 {
		return errors.New("memory: the sampled customers hold no events")
	}
	m := &e.res.Memory
	m.SampledCustomers, m.SampledEvents = sample, events
	m.UsageBytesPerEvent = float64(bytes) / float64(events)
	m.UsageBytesPerCustomer = float64(bytes) / float64(sample)
	m.UsedMemoryBytesPerEvent = float64(usedDelta) / float64(e.cfg.Events)
	m.UsedMemoryBytesPerCustomer = float64(usedDelta) / float64(e.cfg.Customers)
	m.JSONBytesPerEvent = float64(jsonBytes) / float64(e.cfg.Events)
	m.HistoryEncoding, m.StateEncoding = enc.Val(), encState.Val()
	e.pr.Printf("memory: %.0f B/event, %.0f B/customer by MEMORY USAGE; %.0f B/event by used_memory; JSON %.0f B/event; history %s, state %s",
		m.UsageBytesPerEvent, m.UsageBytesPerCustomer, m.UsedMemoryBytesPerEvent, m.JSONBytesPerEvent, m.HistoryEncoding, m.StateEncoding)
	return nil
}
