package stream

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
)

// Applier stores a batch of valid events. Applying the same events again
// must be safe. It returns one error per event, nil or the reason the event
// was refused (such as an EConflict for a reused id), and an error when it
// could not apply the batch at all.
type Applier interface {
	Apply(ctx context.Context, events []contact.Event) ([]error, error)
}

// Headers set on dead-lettered messages, beside the original key and value.
const (
	HeaderError     = "x-outreach-error"     // why the message was rejected
	HeaderField     = "x-outreach-field"     // the field at fault, if any
	HeaderTopic     = "x-outreach-topic"     // where it came from
	HeaderPartition = "x-outreach-partition" //
	HeaderOffset    = "x-outreach-offset"    //
)

// Dead-letter reasons that are not validation errors: an event whose id is
// stored with other content, and one the store refused MaxAttempts times.
const (
	ReasonIDConflict  = "id_conflict"
	ReasonApplyFailed = "apply_failed"
)

// ConsumerConfig configures a Consumer. Zero values take the defaults.
type ConsumerConfig struct {
	Brokers   []string
	Topics    []string      // topics to consume; required
	Group     string        // consumer group; required
	DLQTopic  string        // dead-letter topic; required
	BatchSize int           // most messages applied in one pipeline; default 500
	BatchWait time.Duration // how long a batch waits to fill after its first message; default 5ms
	MaxWait   time.Duration // how long a fetch waits at the broker for data; default 250ms
	// StopTimeout bounds how long a stopping consumer keeps trying to
	// finish its batch in flight; default 10s.
	StopTimeout time.Duration
	// Defaults are the currency and phone region events are read with.
	Defaults contact.Defaults
	// Until, if set, are the offsets to read up to (exclusive), per
	// partition: CaughtUp is closed once every one is committed. A replay
	// uses it to know when it has read the topics whole.
	Until map[Position]int64
	// MaxAttempts is how many times a batch is applied when the store
	// refuses some of its events (not an outage): after that, those
	// events go to the dead-letter topic, so that one poison event cannot
	// block its partition. An outage is retried without limit. Default 5.
	MaxAttempts int
	// MaxFuture is how far an event's at may lie after the time of its
	// message; one further ahead is dead-lettered, so that a wrong clock
	// cannot block a customer for weeks. Default 5m.
	MaxFuture time.Duration
	Logger    *slog.Logger
	Metrics   *Metrics
}

// DefaultMaxFuture is ConsumerConfig.MaxFuture's default.
const DefaultMaxFuture = 5 * time.Minute

// Consumer reads events from Kafka in a consumer group and applies them to
// the store, at least once: offsets are committed only after the batch they
// end is in the store or in the dead-letter topic.
type Consumer struct {
	groupLoop // the reader, fetch, retry and Healthy (group.go)
	cfg       ConsumerConfig
	dlq       *kafka.Writer
	store     Applier
	metrics   *Metrics

	caughtUp chan struct{}     // closed when Until is reached; nil without Until
	reached  map[Position]bool // the positions of Until committed so far
	applied  atomic.Int64      // events applied since the start
}

// NewConsumer returns a consumer that applies to store. Call Run to start it.
func NewConsumer(cfg ConsumerConfig, store Applier) (*Consumer, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("stream: no brokers"))
	}
	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("stream: no topics"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("stream: no consumer group"))
	}
	if cfg.DLQTopic == "" {
		errs = append(errs, errors.New("stream: no dead-letter topic"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 250 * time.Millisecond
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = DefaultMaxFuture
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	c := &Consumer{
		groupLoop: newGroupLoop(cfg.Brokers, cfg.Topics, cfg.Group, cfg.BatchSize, cfg.BatchWait, cfg.MaxWait, "apply",
			cfg.Logger, cfg.Metrics.Retries),
		caughtUp: make(chan struct{}),
		reached:  map[Position]bool{},
		cfg:      cfg,
		store:    store,
		dlq: &kafka.Writer{
			Addr:                   kafka.TCP(cfg.Brokers...),
			Topic:                  cfg.DLQTopic,
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			BatchTimeout:           time.Millisecond,
			MaxAttempts:            3,
		},
		metrics: cfg.Metrics,
	}
	c.track(nil)
	return c, nil
}

// Applied returns how many events the consumer has applied since it
// started.
func (c *Consumer) Applied() int64 { return c.applied.Load() }

// CaughtUp is closed once every offset of ConsumerConfig.Until is committed;
// without Until it never is.
func (c *Consumer) CaughtUp() <-chan struct{} { return c.caughtUp }

// track records the batch committed, and closes caughtUp once every
// position of Until is reached.
func (c *Consumer) track(batch []kafka.Message) {
	if c.cfg.Until == nil {
		return
	}
	for pos, end := range c.cfg.Until {
		if end <= 0 {
			c.reached[pos] = true
		}
	}
	for _, m := range batch {
		pos := Position{m.Topic, m.Partition}
		if end, ok := c.cfg.Until[pos]; ok && m.Offset+1 >= end {
			c.reached[pos] = true
		}
	}
	if len(c.reached) == len(c.cfg.Until) {
		select {
		case <-c.caughtUp:
		default:
			close(c.caughtUp)
		}
	}
}

// Run consumes until ctx is done, then finishes the batches in flight
// (within StopTimeout), commits them and returns nil. It returns an error
// only if the consumer cannot go on. Run closes the consumer when it
// returns.
//
// Fetching, applying and committing overlap: while a batch is applied,
// the next is fetched and the one before it committed, so that Redis need
// not wait for Kafka. Batches are applied one at a time, in order (the
// follow-ups the store derives after a batch are read and then written, not
// merged), and committed in order once applied.
func (c *Consumer) Run(ctx context.Context) error {
	c.running.Store(true)
	defer c.running.Store(false)
	defer c.close()
	c.log.Info("consumer started", "topics", c.cfg.Topics, "group", c.cfg.Group)
	applying := make(chan struct{}, 1) // held while a batch is applied
	queue := make(chan *inflight, 2)   // applied or being applied, in order, for the committer
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		c.commitInOrder(queue)
	}()
	defer func() {
		close(queue)
		<-committed
		c.log.Info("consumer stopped")
	}()
	for {
		batch, err := c.fetch(ctx)
		if len(batch) > 0 {
			applying <- struct{}{} // the batch before ends within StopTimeout of ctx
			queue <- c.launch(ctx, batch, applying)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// kafka-go retries broker failures itself; an error here is
			// from the reader, such as a closed group. Back off and go on.
			c.fail("fetch", err)
			if !sleep(ctx, jitter(time.Second)) {
				return nil
			}
		}
	}
}

// apply applies events until the store takes them, retrying an outage
// without limit (until ctx ends) and a refusal of some events MaxAttempts
// times. It returns one error per event: those still refused, with the
// conflicts, go to the dead-letter topic.
func (c *Consumer) apply(ctx context.Context, events []contact.Event) ([]error, bool) {
	var refused []error
	for attempt := 1; ; attempt++ {
		ok := c.retry(ctx, "apply", func(ctx context.Context) (err error) {
			refused, err = c.store.Apply(ctx, events)
			return err
		})
		if !ok {
			return nil, false
		}
		var failed error
		for _, err := range refused {
			if code := contact.ErrorCode(err); err != nil && code != contact.EConflict && code != contact.EGone {
				failed = err
			}
		}
		if failed == nil || attempt >= c.cfg.MaxAttempts {
			return refused, true
		}
		c.fail("apply", failed)
		if !sleep(ctx, jitter(time.Duration(attempt)*100*time.Millisecond)) {
			return nil, false
		}
	}
}

// decode reads the event of m. An event dated more than MaxFuture after its
// message was written is refused: its clock is wrong.
func (c *Consumer) decode(m kafka.Message) (contact.Event, error) {
	e, err := contact.Decode(m.Value, c.cfg.Defaults)
	if err != nil {
		return e, err
	}
	if !m.Time.IsZero() && e.At.Sub(m.Time) > c.cfg.MaxFuture {
		return e, contact.Invalid("at", "is %s after the message was written, more than the %s allowed (OUTREACH_MAX_FUTURE): the producer's clock is wrong",
			e.At.Sub(m.Time).Round(time.Second), c.cfg.MaxFuture)
	}
	return e, nil
}

// jitter returns a duration between d/2 and d, so that replicas that failed
// together do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func (c *Consumer) close() {
	if err := c.reader.Close(); err != nil {
		c.log.Warn("closing the reader", "error", err)
	}
	if err := c.dlq.Close(); err != nil {
		c.log.Warn("closing the dead-letter writer", "error", err)
	}
}

// deadLetter turns a rejected message into its dead-letter copy. A reused
// event id has the reason "id_conflict: …".
func deadLetter(m kafka.Message, err error) kafka.Message {
	reason := err.Error()
	var field string
	var ce *contact.Error
	if errors.As(err, &ce) {
		field = ce.Field
		switch ce.Code {
		case contact.EConflict:
			reason = ReasonIDConflict + ": " + ce.Message
		case contact.EInternal:
			reason = ReasonApplyFailed + ": " + err.Error()
		}
	}
	headers := append([]kafka.Header{}, m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(reason)},
		kafka.Header{Key: HeaderField, Value: []byte(field)},
		kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func lastPerPartition(batch []kafka.Message) map[string]kafka.Message {
	last := make(map[string]kafka.Message)
	for _, m := range batch {
		last[m.Topic+"/"+strconv.Itoa(m.Partition)] = m
	}
	return last
}

// stopAfter returns a context that ends timeout after parent does.
func stopAfter(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(timeout, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// sleep waits for d or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
