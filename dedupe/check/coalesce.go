package check

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outreach/outreach/contact"
)

// Limits of coalescing.
const (
	// coalesceAtMost is the most lookups a call may have to be coalesced:
	// larger batches (POST /v1/check/batch, scrubs) are a round trip of
	// their own already.
	coalesceAtMost = 16
	// maxRoundTrips is how many store round trips of coalesced checks run
	// at once; checks that arrive while they all run wait for the next.
	maxRoundTrips = 4
	// maxCoalesced is the most lookups of one round trip.
	maxCoalesced = 128
)

// errQueued is why a check whose facts were not read by its deadline is
// unavailable.
var errQueued = errors.New("check: the store was not read in time")

// coalescer gathers the lookups of concurrent checks into shared store
// round trips. When a round trip is free, a check's lookups go at once, so
// an idle service adds no latency; under load, the checks that arrive
// while maxRoundTrips are running share the next one, so that the store
// and the network carry one pipeline for many checks rather than one each.
// It is safe for concurrent use.
type coalescer struct {
	store Store

	mu      sync.Mutex
	waiting []*pendingFacts
	running int // round trips running or about to
}

// pendingFacts is one call's lookups, waiting for their facts.
type pendingFacts struct {
	lookups  []contact.Lookup
	deadline time.Time
	facts    []contact.Facts
	done     chan struct{}
	// state is waiting, then answered by the round trip or given up by
	// the caller at its deadline, whichever comes first.
	state atomic.Int32
}

const (
	waiting = iota
	answered
	givenUp
)

// facts returns the facts of lookups, read by deadline, in one round trip
// that other checks may share. At the deadline every lookup not yet read
// has Facts.Err set, EUnavailable; a claim the round trip takes for it
// after that is released again.
func (c *coalescer) facts(lookups []contact.Lookup, deadline time.Time) []contact.Facts {
	p := &pendingFacts{lookups: lookups, deadline: deadline, done: make(chan struct{})}
	c.mu.Lock()
	c.waiting = append(c.waiting, p)
	start := c.running < maxRoundTrips
	if start {
		c.running++
	}
	c.mu.Unlock()
	if start {
		go c.drain()
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		if p.state.CompareAndSwap(waiting, givenUp) {
			return unavailable(len(lookups), errQueued)
		}
		<-p.done // answered just now
	}
	return p.facts
}

// drain runs round trips until no check waits.
func (c *coalescer) drain() {
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.read(batch)
	}
}

// take removes from the queue the calls of the next round trip: the
// oldest, and those after it while they fit in maxCoalesced lookups. The
// caller holds c.mu.
func (c *coalescer) take() []*pendingFacts {
	n, i := 0, 0
	for i < len(c.waiting) && (i == 0 || n+len(c.waiting[i].lookups) <= maxCoalesced) {
		n += len(c.waiting[i].lookups)
		i++
	}
	batch := make([]*pendingFacts, i)
	copy(batch, c.waiting)
	c.waiting = append(c.waiting[:0], c.waiting[i:]...)
	return batch
}

// read reads the facts of batch in one call of the store, bounded by the
// latest deadline among them, so that a check near its deadline does not
// cut the round trip short for those that arrived after it, and hands each
// call its own. A call already given up is not read; one given up while
// the round trip ran has the claims it took released.
func (c *coalescer) read(batch []*pendingFacts) {
	var lookups []contact.Lookup
	var deadline time.Time
	live := batch[:0]
	for _, p := range batch {
		if p.state.Load() == givenUp {
			continue
		}
		deadline = later(deadline, p.deadline)
		lookups = append(lookups, p.lookups...)
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	facts := c.store.Facts(ctx, lookups)
	cancel()
	for _, p := range live {
		p.facts, facts = facts[:len(p.lookups):len(p.lookups)], facts[len(p.lookups):]
		if p.state.CompareAndSwap(waiting, answered) {
			close(p.done)
			continue
		}
		c.releaseTaken(p.facts)
	}
}

// releaseTaken gives back the claims taken for a check that gave up: its
// caller answered unavailable, so no one holds their tokens. They expire
// at their TTL anyway.
func (c *coalescer) releaseTaken(facts []contact.Facts) {
	for _, f := range facts {
		if f.Taken != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c.store.ReleaseClaim(ctx, f.Taken.Token)
			cancel()
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func unavailable(n int, err error) []contact.Facts {
	facts := make([]contact.Facts, n)
	for i := range facts {
		facts[i].Err = contact.Unavailable("redis", err)
	}
	return facts
}
