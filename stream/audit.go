package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// AuditWriter writes decision records to the decisions topic, keyed by
// customer id. It is safe for concurrent use.
//
// In best-effort mode (the default), Record never blocks and never fails:
// records go to a bounded buffer that a background writer sends in batches;
// when the buffer is full or Kafka cannot take a batch, the records are
// dropped, counted in outreach_audit_dropped_total, and logged at most once
// a minute. In required mode, Record writes synchronously and returns
// Kafka's error, and the check service answers unavailable for checks it
// could not record.
type AuditWriter struct {
	w        *kafka.Writer
	required bool
	buf      chan kafka.Message
	log      *slog.Logger
	written  atomic.Int64
	dropped  atomic.Int64
	lastLog  atomic.Int64 // unix seconds of the last drop logged
	done     chan struct{}
	stopOnce sync.Once
}

// AuditConfig configures an AuditWriter.
type AuditConfig struct {
	Brokers  []string
	Topic    string
	Required bool // write synchronously; see AuditWriter
	Buffer   int  // records held for the background writer; default 10,000
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// NewAuditWriter returns an AuditWriter; Close stops it.
func NewAuditWriter(cfg AuditConfig) *AuditWriter {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &AuditWriter{
		w: &kafka.Writer{
			Addr: kafka.TCP(cfg.Brokers...), Topic: cfg.Topic, Balancer: &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 500, MaxAttempts: 2,
			WriteTimeout: 5 * time.Second,
		},
		required: cfg.Required,
		buf:      make(chan kafka.Message, cfg.Buffer),
		log:      cfg.Logger,
		done:     make(chan struct{}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "outreach_audit_written_total", Help: "Decision records written to the decisions topic.",
			}, func() float64 { return float64(a.written.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "outreach_audit_dropped_total", Help: "Decision records dropped: the buffer was full or Kafka could not take them (best-effort mode).",
			}, func() float64 { return float64(a.dropped.Load()) }))
	}
	if a.required {
		close(a.done)
	} else {
		go a.run()
	}
	return a
}

// Record hands records to the trail; see AuditWriter.
func (a *AuditWriter) Record(ctx context.Context, recs []dedupe.Record) error {
	msgs := make([]kafka.Message, 0, len(recs))
	for i := range recs {
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("stream: unable to encode a decision record: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(recs[i].CustomerID), Value: b})
	}
	if a.required {
		if err := a.w.WriteMessages(ctx, msgs...); err != nil {
			return contact.Unavailable("kafka", fmt.Errorf("stream: unable to write %d decision records: %w", len(msgs), err))
		}
		a.written.Add(int64(len(msgs)))
		return nil
	}
	for _, m := range msgs {
		select {
		case a.buf <- m:
		default:
			a.drop(1, "the audit buffer is full")
		}
	}
	return nil
}

// auditLinger is how long the background writer gathers records into a
// batch after the first one.
const auditLinger = 50 * time.Millisecond

// run sends the buffered records in batches until Close.
func (a *AuditWriter) run() {
	defer close(a.done)
	batch := make([]kafka.Message, 0, 500)
	for {
		m, ok := <-a.buf
		if !ok {
			return
		}
		batch = append(batch[:0], m)
		// Gather for a while: fewer, larger produce requests cost Kafka
		// (and this process) less per record.
		linger := time.NewTimer(auditLinger)
	fill:
		for len(batch) < cap(batch) {
			select {
			case m, ok := <-a.buf:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.w.WriteMessages(ctx, batch...)
		cancel()
		if err != nil {
			a.drop(len(batch), err.Error())
			continue
		}
		a.written.Add(int64(len(batch)))
	}
}

func (a *AuditWriter) drop(n int, why string) {
	a.dropped.Add(int64(n))
	now := time.Now().Unix()
	if last := a.lastLog.Load(); now-last >= 60 && a.lastLog.CompareAndSwap(last, now) {
		a.log.Warn("audit: decision records dropped (best-effort mode); see outreach_audit_dropped_total", "records", n, "reason", why)
	}
}

// Counts returns how many records were written and dropped so far.
func (a *AuditWriter) Counts() (written, dropped int64) {
	return a.written.Load(), a.dropped.Load()
}

// Close sends what is buffered, within ctx, and closes the writer.
func (a *AuditWriter) Close(ctx context.Context) error {
	a.stopOnce.Do(func() {
		if !a.required {
			close(a.buf)
		}
	})
	select {
	case <-a.done:
	case <-ctx.Done():
	}
	return a.w.Close()
}

// AuditReader reads a customer's decision records back from the decisions
// topic. It reads only the partition the customer's key maps to.
type AuditReader struct {
	Brokers []string
	Topic   string
}

// MaxAuditScan bounds the records Decisions reads from a partition.
const MaxAuditScan = 200_000

// Decisions returns the customer's records since the given time, newest
// first, at most limit of them. It reads the customer's partition from the
// offset of since; partial is true when it stopped early (ctx ended or
// MaxAuditScan records were read). EUnavailable when Kafka cannot be read.
func (r *AuditReader) Decisions(ctx context.Context, customerID string, since time.Time, limit int) (recs []dedupe.Record, partial bool, err error) {
	partition, last, err := r.partitionOf(ctx, customerID)
	if err != nil {
		return nil, false, err
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.Brokers, Topic: r.Topic, Partition: partition, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	if err := rd.SetOffsetAt(ctx, since); err != nil {
		return nil, false, contact.Unavailable("kafka", fmt.Errorf("stream: unable to seek the decisions: %w", err))
	}
	if rd.Offset() < 0 {
		// No record of the partition is as recent as since: the seek gave
		// the end (kafka.LastOffset), where a read would wait for new ones.
		return nil, false, nil
	}
	for n := 0; ; n++ {
		if n >= MaxAuditScan {
			partial = true
			break
		}
		if rd.Offset() >= last {
			break
		}
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				partial = true
				break
			}
			return nil, false, contact.Unavailable("kafka", fmt.Errorf("stream: unable to read the decisions: %w", err))
		}
		if string(m.Key) != customerID {
			continue
		}
		var rec dedupe.Record
		if json.Unmarshal(m.Value, &rec) == nil && !rec.Time.Before(since) {
			recs = append(recs, rec)
		}
		if m.Offset+1 >= last {
			break
		}
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs[:min(len(recs), limit)], partial, nil
}

// partitionOf returns the partition of the customer's key, as the writer's
// balancer picks it, and its end offset now.
func (r *AuditReader) partitionOf(ctx context.Context, customerID string) (int, int64, error) {
	cl := &kafka.Client{Addr: kafka.TCP(r.Brokers...)}
	parts, err := partitions(ctx, cl, []string{r.Topic})
	if err != nil {
		return 0, 0, contact.Unavailable("kafka", err)
	}
	ids := parts[r.Topic]
	slices.Sort(ids) // as the writer hands them to its balancer
	if len(ids) == 0 {
		return 0, 0, contact.Unavailable("kafka", fmt.Errorf("stream: the decisions topic %s has no partitions", r.Topic))
	}
	p := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(customerID)}, ids...)
	ends, err := EndOffsets(ctx, r.Brokers, r.Topic)
	if err != nil {
		return 0, 0, contact.Unavailable("kafka", err)
	}
	return p, ends[Position{r.Topic, p}], nil
}
