package check

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

// gateStore answers Facts with each lookup's customer id as the state's
// profile time zone, once its gate opens, and records every call.
type gateStore struct {
	gate  chan struct{}
	mu    sync.Mutex
	calls [][]string
}

func (g *gateStore) Facts(ctx context.Context, lookups []contact.Lookup) []contact.Facts {
	var ids []string
	out := make([]contact.Facts, len(lookups))
	for i, l := range lookups {
		ids = append(ids, l.CustomerID)
		out[i].State.Profile = &contact.Event{Timezone: l.CustomerID}
	}
	g.mu.Lock()
	g.calls = append(g.calls, ids)
	g.mu.Unlock()
	select {
	case <-g.gate:
	case <-ctx.Done():
		for i := range out {
			out[i] = contact.Facts{Err: contact.Unavailable("redis", ctx.Err())}
		}
	}
	return out
}

func (g *gateStore) ReleaseClaim(context.Context, string) (bool, error) { return false, nil }

func TestCoalescerSharesRoundTrips(t *testing.T) {
	g := &gateStore{gate: make(chan struct{})}
	c := &coalescer{store: g}
	const checks = maxRoundTrips + 20
	results := make([][]contact.Facts, checks)
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for i := range checks {
		wg.Go(func() {
			results[i] = c.facts([]contact.Lookup{{CustomerID: fmt.Sprint("c", i)}}, deadline)
		})
		if i < maxRoundTrips {
			// The first checks each take a round trip, and block in it.
			waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.calls) == i+1 })
		}
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == checks-maxRoundTrips })
	close(g.gate)
	wg.Wait()

	if n := len(g.calls); n != maxRoundTrips+1 {
		t.Errorf("%d round trips, want %d: the %d checks that waited share one; calls %v", n, maxRoundTrips+1, checks-maxRoundTrips, g.calls)
	}
	for i, f := range results {
		if len(f) != 1 || f[0].Err != nil || f[0].State.Profile.Timezone != fmt.Sprint("c", i) {
			t.Errorf("check %d got %+v, want its own facts", i, f)
		}
	}
}

func TestCoalescerCheckPastItsDeadlineIsUnavailable(t *testing.T) {
	g := &gateStore{gate: make(chan struct{})}
	c := &coalescer{store: g}
	var wg sync.WaitGroup
	for i := range maxRoundTrips {
		wg.Go(func() { c.facts([]contact.Lookup{{CustomerID: "busy"}}, time.Now().Add(time.Minute)) })
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.calls) == i+1 })
	}
	got := make(chan []contact.Facts)
	go func() { got <- c.facts([]contact.Lookup{{CustomerID: "late"}}, time.Now().Add(20*time.Millisecond)) }()
	time.Sleep(50 * time.Millisecond)
	close(g.gate)
	f := <-got
	wg.Wait()
	if len(f) != 1 || contact.ErrorCode(f[0].Err) != contact.EUnavailable {
		t.Fatalf("got %+v, want unavailable", f)
	}
	for _, call := range g.calls {
		for _, id := range call {
			if id == "late" {
				t.Error("the store was read for a check whose deadline had passed")
			}
		}
	}
}

func TestCoalescerRoundTripEndsAtTheEarliestDeadline(t *testing.T) {
	g := &gateStore{gate: make(chan struct{})} // never opens
	c := &coalescer{store: g}
	start := time.Now()
	f := c.facts([]contact.Lookup{{CustomerID: "a"}}, start.Add(30*time.Millisecond))
	if contact.ErrorCode(f[0].Err) != contact.EUnavailable {
		t.Fatalf("got %+v, want unavailable", f)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the check took %v, past its deadline", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
