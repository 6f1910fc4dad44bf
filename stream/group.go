package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// groupLoop is what the events consumer and the insights aggregator share:
// a reader in a consumer group that fetches batches, and the last failure
// of a step, which is retried with backoff and reported by Healthy.
type groupLoop struct {
	reader    *kafka.Reader
	brokers   []string
	batchSize int
	batchWait time.Duration
	storeStep string // the step that writes to the store: its failure lasts until it succeeds
	log       *slog.Logger
	retries   *prometheus.CounterVec // by step

	running     atomic.Bool
	mu          sync.Mutex
	failing     error  // the last failure of the store or Kafka, nil after a success
	failingStep string // where it failed
}

// newGroupLoop returns a groupLoop reading topics in group. A new group
// reads everything retained; offsets are committed only by CommitMessages.
func newGroupLoop(brokers, topics []string, group string, batchSize int, batchWait, maxWait time.Duration, storeStep string,
	log *slog.Logger, retries *prometheus.CounterVec) groupLoop {
	return groupLoop{
		brokers: brokers, batchSize: batchSize, batchWait: batchWait, storeStep: storeStep, log: log, retries: retries,
		reader: kafka.NewReader(kafka.ReaderConfig{
			Brokers:        brokers,
			GroupID:        group,
			GroupTopics:    topics,
			MinBytes:       1,
			MaxBytes:       10 << 20,
			MaxWait:        maxWait,
			StartOffset:    kafka.FirstOffset, // a new group reads everything retained
			CommitInterval: 0,                 // commits are synchronous and explicit
			// A crashed member holds its partitions until its session
			// times out: keep that short so a restart resumes quickly.
			SessionTimeout:   10 * time.Second,
			RebalanceTimeout: 10 * time.Second,
			ErrorLogger:      kafka.LoggerFunc(func(msg string, args ...any) { log.Warn(fmt.Sprintf(msg, args...), "component", "kafka") }),
		}),
	}
}

// Healthy returns nil while the loop runs and its last store and Kafka
// operations succeeded, else an error saying why not. A Kafka failure (a
// fetch, a commit) is forgotten as soon as the brokers answer again, so that
// a quiet topic does not keep the loop unready after an outage.
func (l *groupLoop) Healthy(ctx context.Context) error {
	if !l.running.Load() {
		return errors.New("consumer is not running")
	}
	l.mu.Lock()
	failing, step := l.failing, l.failingStep
	l.mu.Unlock()
	if failing == nil || step == l.storeStep {
		return failing
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if Ping(ctx, l.brokers) != nil {
		return failing
	}
	l.mu.Lock()
	if l.failing == failing {
		l.failing, l.failingStep = nil, ""
	}
	l.mu.Unlock()
	return nil
}

// fetch blocks for the first message of a batch, then collects more until
// the batch is full or batchWait has passed.
func (l *groupLoop) fetch(ctx context.Context) ([]kafka.Message, error) {
	first, err := l.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{first}
	wait, cancel := context.WithTimeout(ctx, l.batchWait)
	defer cancel()
	for len(batch) < l.batchSize {
		m, err := l.reader.FetchMessage(wait)
		if err != nil {
			break // the wait is over; a real fault will show on the next first fetch
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// retry calls op until it succeeds or ctx is done, backing off from 50ms to
// 5s. It reports whether op succeeded.
func (l *groupLoop) retry(ctx context.Context, step string, op func(context.Context) error) bool {
	backoff := 50 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil {
			return true
		}
		l.fail(step, err)
		if !sleep(ctx, jitter(backoff)) {
			l.log.Warn("consumer gave up a batch without committing it", "step", step)
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (l *groupLoop) fail(step string, err error) {
	l.mu.Lock()
	l.failing, l.failingStep = fmt.Errorf("%s: %w", step, err), step
	l.mu.Unlock()
	l.retries.WithLabelValues(step).Inc()
	l.log.Warn("consumer step failed; retrying", "step", step, "error", err)
}

func (l *groupLoop) setFailing(err error) {
	l.mu.Lock()
	l.failing, l.failingStep = err, ""
	l.mu.Unlock()
}
