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

// slowStore answers Facts after delay (or at ctx's end), taking every
// claim asked for, and records the claims released.
type slowStore struct {
	delay    time.Duration
	mu       sync.Mutex
	released []string
}

func (s *slowStore) Facts(ctx context.Context, lookups []contact.Lookup) []contact.Facts {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return unavailable(len(lookups), ctx.Err())
	}
	out := make([]contact.Facts, len(lookups))
	for i, l := range lookups {
		if l.Claim != nil {
			out[i].Taken = &contact.Claim{Token: "token-" + l.CustomerID}
		}
	}
	return out
}

func (s *slowStore) ReleaseClaim(_ context.Context, token string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, token)
	return true, nil
}

func TestCoalescerAnswersByTheDeadline(t *testing.T) {
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

// TestCoalescerLateCheckDoesNotFailItsRoundTrip: a check that reaches its
// deadline while its round trip runs answers unavailable and gives back the
// claim taken for it; a check that shares the round trip with it and has
// time left gets its facts.
func TestCoalescerLateCheckDoesNotFailItsRoundTrip(t *testing.T) {
	s := &slowStore{delay: 200 * time.Millisecond}
	c := &coalescer{store: s}
	// Both checks wait for the same round trip: the first takes a round
	// trip at once only if it is alone, so queue both before any starts.
	c.running = maxRoundTrips
	var late, timely []contact.Facts
	var wg sync.WaitGroup
	wg.Go(func() {
		late = c.facts([]contact.Lookup{{CustomerID: "late", Claim: &contact.Claim{}}}, time.Now().Add(100*time.Millisecond))
	})
	wg.Go(func() { timely = c.facts([]contact.Lookup{{CustomerID: "timely"}}, time.Now().Add(time.Minute)) })
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 2 })
	c.mu.Lock()
	c.running--
	c.mu.Unlock()
	go c.drain()
	wg.Wait()
	if contact.ErrorCode(late[0].Err) != contact.EUnavailable {
		t.Errorf("late check: %+v, want unavailable", late[0])
	}
	if timely[0].Err != nil {
		t.Errorf("timely check: %v, want its facts", timely[0].Err)
	}
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.released) == 1 })
	if s.released[0] != "token-late" {
		t.Errorf("released %v, want the late check's claim", s.released)
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
