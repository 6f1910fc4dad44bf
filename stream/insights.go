package stream

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// InsightCounter keeps the insight counters; dedupe/insight/redis.Counters
// is one.
type InsightCounter interface {
	// Count adds the tallies of each partition, in offset (Seq) order,
	// each at most once however often it is given, and returns how many
	// it skipped as counted before. On an error, counting the same
	// tallies again is safe.
	Count(ctx context.Context, tallies map[int][]dedupe.Tally) (skipped int, err error)
}

// AggregatorConfig configures an Aggregator. Zero values take the defaults.
type AggregatorConfig struct {
	Brokers     []string
	Topic       string        // the decisions topic; required
	Group       string        // consumer group; required
	BatchSize   int           // most records counted in one round trip; default 500
	BatchWait   time.Duration // how long a batch waits to fill; default 5ms
	MaxWait     time.Duration // how long a fetch waits at the broker; default 250ms
	StopTimeout time.Duration // how long a stop may take to finish the batch in flight; default 10s
	// MaxFuture is how far a record's time may lie after the time of its
	// message; one further ahead is malformed. Default 5m.
	MaxFuture time.Duration
	Logger    *slog.Logger
	Registry  prometheus.Registerer // nil: no metrics
}

// Results of a record, the label of outreach_insights_records_total.
const (
	InsightCounted   = "counted"   // its counters were added
	InsightDuplicate = "duplicate" // delivered again and skipped: it was counted before
	InsightSkipped   = "skipped"   // it counts nothing: a scrub, an erasure, a planned check
	InsightMalformed = "malformed" // it cannot be read; logged, and consumption goes on
)

// Aggregator counts the decision records of the decisions topic into the
// insight counters, in its own consumer group: every replica may run one,
// and each partition is counted by one of them at a time. Delivery is at
// least once and counting exactly once: offsets are committed after the
// counters, and the counters skip what they counted before.
//
// A record that cannot be read is counted in
// outreach_insights_records_total{result="malformed"}, logged with its
// partition and offset, and passed over: it stays in the decisions topic,
// which is the trail itself, so there is no dead-letter topic. While Redis
// fails, the batch is retried with backoff and nothing is committed.
type Aggregator struct {
	groupLoop
	cfg     AggregatorConfig
	store   InsightCounter
	records *prometheus.CounterVec
	lag     *prometheus.GaugeVec
	counted atomic.Int64
}

// NewAggregator returns an aggregator that counts into store. Call Run to
// start it.
func NewAggregator(cfg AggregatorConfig, store InsightCounter) (*Aggregator, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("stream: no brokers"))
	}
	if cfg.Topic == "" {
		errs = append(errs, errors.New("stream: no decisions topic"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("stream: no consumer group"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.BatchSize = cmpOr(cfg.BatchSize, 500)
	cfg.BatchWait = cmpOr(cfg.BatchWait, 5*time.Millisecond)
	cfg.MaxWait = cmpOr(cfg.MaxWait, 250*time.Millisecond)
	cfg.StopTimeout = cmpOr(cfg.StopTimeout, 10*time.Second)
	cfg.MaxFuture = cmpOr(cfg.MaxFuture, DefaultMaxFuture)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Aggregator{
		cfg:   cfg,
		store: store,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_insights_records_total", Help: "Decision records read by the insights aggregator, by result (a redelivery counts again, as duplicate).",
		}, []string{"result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outreach_insights_lag", Help: "Decision records behind the high-water mark, by partition, as of the aggregator's last batch.",
		}, []string{"partition"}),
	}
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outreach_insights_retries_total", Help: "Failed insights aggregator steps that it retried, by step.",
	}, []string{"step"})
	for _, r := range []string{InsightCounted, InsightDuplicate, InsightSkipped, InsightMalformed} {
		a.records.WithLabelValues(r)
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(a.records, a.lag, retries)
	}
	a.groupLoop = newGroupLoop(cfg.Brokers, []string{cfg.Topic}, cfg.Group, cfg.BatchSize, cfg.BatchWait, cfg.MaxWait, "count", cfg.Logger, retries)
	return a, nil
}

// cmpOr returns v if it is positive, else def.
func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Counted returns how many records this aggregator has counted (not
// skipped as duplicates) since it started.
func (a *Aggregator) Counted() int64 { return a.counted.Load() }

// Run counts until ctx is done, then finishes the batch in flight (within
// StopTimeout), commits it and returns nil. Run closes the reader when it
// returns.
func (a *Aggregator) Run(ctx context.Context) error {
	a.running.Store(true)
	defer a.running.Store(false)
	defer func() {
		if err := a.reader.Close(); err != nil {
			a.log.Warn("insights: closing the reader", "error", err)
		}
	}()
	a.log.Info("insights aggregator started", "topic", a.cfg.Topic, "group", a.cfg.Group)
	for {
		batch, err := a.fetch(ctx)
		if len(batch) > 0 {
			a.process(ctx, batch)
		}
		if ctx.Err() != nil {
			a.log.Info("insights aggregator stopped")
			return nil
		}
		if err != nil {
			a.fail("fetch", err)
			if !sleep(ctx, jitter(time.Second)) {
				return nil
			}
		}
	}
}

// process counts a batch and commits it. While the store or Kafka fails it
// retries with backoff; once ctx is done it keeps trying for StopTimeout,
// then gives up without committing.
func (a *Aggregator) process(ctx context.Context, batch []kafka.Message) {
	tallies := map[int][]dedupe.Tally{}
	results := map[string]int{}
	for _, m := range batch {
		t, result := a.tally(m)
		results[result]++
		if result == InsightCounted {
			tallies[m.Partition] = append(tallies[m.Partition], t)
		}
	}
	finish, cancel := stopAfter(ctx, a.cfg.StopTimeout)
	defer cancel()
	var dup int
	if !a.retry(finish, "count", func(ctx context.Context) (err error) {
		dup, err = a.store.Count(ctx, tallies)
		return err
	}) {
		return
	}
	if err := a.reader.CommitMessages(finish, batch...); err != nil {
		// Nothing is lost: the batch comes again and its counted records
		// are skipped.
		a.fail("commit", err)
		return
	}
	a.setFailing(nil)
	results[InsightCounted] -= dup
	results[InsightDuplicate] += dup
	a.counted.Add(int64(results[InsightCounted]))
	for r, n := range results {
		a.records.WithLabelValues(r).Add(float64(n))
	}
	for _, m := range lastPerPartition(batch) {
		a.lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
	}
}

// tally reads what the record of m counts, and says what becomes of it.
func (a *Aggregator) tally(m kafka.Message) (dedupe.Tally, string) {
	var rec dedupe.Record
	err := json.Unmarshal(m.Value, &rec)
	if err == nil && !m.Time.IsZero() && rec.Time.Sub(m.Time) > a.cfg.MaxFuture {
		err = contact.Invalid("time", "is %s after the message was written: the writer's clock is wrong", rec.Time.Sub(m.Time).Round(time.Second))
	}
	var t dedupe.Tally
	ok := false
	if err == nil {
		t, ok, err = dedupe.TallyRecord(&rec, m.Offset)
	}
	switch {
	case err != nil:
		a.log.Warn("insights: a decision record cannot be counted; passed over", "topic", m.Topic, "partition", m.Partition,
			"offset", m.Offset, "error", errorText(err))
		return t, InsightMalformed
	case !ok:
		return t, InsightSkipped
	}
	return t, InsightCounted
}

// errorText describes err without echoing the record's content beyond what
// its validation message clips.
func errorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10)
	}
	return err.Error()
}
