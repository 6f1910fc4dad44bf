package check

import (
	"context"
	"errors"
	"sync"
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

// errQueued is why a check that waited past its deadline for a round trip
// is unavailable.
var errQueued = errors.New("check: the store was not read in time: too many checks waiting")

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
}

// facts returns the facts of lookups, read by deadline, in one round trip
// that other checks may share. Past the deadline every lookup has
// Facts.Err set, EUnavailable.
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
	<-p.done
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
// earliest deadline among them, and hands each call its own. A call whose
// deadline passed while it waited is unavailable without a read.
func (c *coalescer) read(batch []*pendingFacts) {
	now := time.Now()
	var lookups []contact.Lookup
	var deadline time.Time
	live := batch[:0]
	for _, p := range batch {
		if !p.deadline.After(now) {
			p.facts = unavailable(len(p.lookups), errQueued)
			close(p.done)
			continue
		}
		if deadline.IsZero() || p.deadline.Before(deadline) {
			deadline = p.deadline
		}
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
		close(p.done)
	}
}

func unavailable(n int, err error) []contact.Facts {
	facts := make([]contact.Facts, n)
	for i := range facts {
		facts[i].Err = contact.Unavailable("redis", err)
	}
	return facts
}
