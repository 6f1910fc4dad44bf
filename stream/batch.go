package stream

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
)

// inflight is a batch being applied, then waiting for its commit.
type inflight struct {
	batch   []kafka.Message
	start   time.Time
	finish  context.Context // ctx, and StopTimeout after it ends
	cancel  context.CancelFunc
	done    chan struct{} // closed once the batch is applied, or given up
	ok      bool          // applied, and its bad messages dead-lettered
	applied int
	dead    int
	erased  int // events dated up to an erasure of their customer, dropped
}

// launch applies batch in a goroutine of its own, which releases applying
// once the batch is applied or given up.
func (c *Consumer) launch(ctx context.Context, batch []kafka.Message, applying <-chan struct{}) *inflight {
	p := &inflight{batch: batch, start: time.Now(), done: make(chan struct{})}
	// Finish the batch even if ctx ends now, but not forever.
	p.finish, p.cancel = stopAfter(ctx, c.cfg.StopTimeout)
	go func() {
		defer close(p.done)
		p.ok = c.process(p)
		<-applying
	}()
	return p
}

// commitInOrder commits the batches of queue in order, each once it is
// applied. After a batch that was given up (ctx ended before it could be
// applied), none is committed: their messages will be delivered again.
func (c *Consumer) commitInOrder(queue <-chan *inflight) {
	gaveUp := false
	for p := range queue {
		<-p.done
		gaveUp = gaveUp || !p.ok
		if !gaveUp {
			c.commit(p)
		}
		p.cancel()
	}
}

// process applies a batch and sends its bad messages to the dead-letter
// topic. While the store or Kafka fails it retries with backoff; once ctx
// is done it keeps trying for StopTimeout, then gives up, and the batch is
// not committed, so it is delivered again to the next consumer. It
// reports whether the batch may be committed.
func (c *Consumer) process(p *inflight) bool {
	events := make([]contact.Event, 0, len(p.batch))
	from := make([]kafka.Message, 0, len(p.batch)) // the message of each event
	var dead []kafka.Message
	for _, m := range p.batch {
		e, err := c.decode(m)
		if err != nil {
			dead = append(dead, deadLetter(m, err))
			continue
		}
		events, from = append(events, e), append(from, m)
	}
	refused, ok := c.apply(p.finish, events)
	if !ok {
		return false
	}
	p.applied = len(events)
	for i, err := range refused {
		switch {
		case err == nil:
		case contact.ErrorCode(err) == contact.EGone:
			p.erased++
			p.applied--
		default:
			dead = append(dead, deadLetter(from[i], err))
			p.applied--
		}
	}
	p.dead = len(dead)
	if len(dead) > 0 {
		if !c.retry(p.finish, "dead_letter", func(ctx context.Context) error { return c.dlq.WriteMessages(ctx, dead...) }) {
			return false
		}
		for _, m := range dead {
			c.log.Warn("message dead-lettered", "topic", headerValue(m, HeaderTopic), "reason", headerValue(m, HeaderError),
				"partition", headerValue(m, HeaderPartition), "offset", headerValue(m, HeaderOffset))
		}
	}
	return true
}

// commit commits an applied batch and counts it.
func (c *Consumer) commit(p *inflight) {
	if err := c.reader.CommitMessages(p.finish, p.batch...); err != nil {
		// A failed commit loses nothing: the batch is in the store and will
		// be delivered again, and applying it again is harmless.
		c.fail("commit", err)
		return
	}
	c.setFailing(nil)
	c.track(p.batch)
	c.applied.Add(int64(p.applied))
	c.metrics.Applied.Add(float64(p.applied))
	c.metrics.DeadLettered.Add(float64(p.dead))
	c.metrics.Erased.Add(float64(p.erased))
	c.metrics.BatchSeconds.Observe(time.Since(p.start).Seconds())
	for _, m := range lastPerPartition(p.batch) {
		c.metrics.Lag.WithLabelValues(m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
	}
}
