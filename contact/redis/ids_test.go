package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
)

// TestIDConflicts checks IDConflicts against what Apply then does with the
// same events: the events it flags are exactly those Apply refuses for
// their id, and it writes nothing itself.
func TestIDConflicts(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	call := ev("k1", "contact", "c1", t0.Add(-time.Hour), func(e *contact.Event) { e.Agent = "a.jones" })
	apply(t, s, call)

	other := call
	other.Agent = "b.lee" // the same id, other content
	later := call
	later.At = call.At.Add(time.Minute) // the same id, another time
	twinA := ev("k2", "opt_out", "c1", t0.Add(-time.Hour))
	twinB := ev("k2", "opt_in", "c1", t0.Add(-time.Hour))
	events := []contact.Event{
		call,  // a redelivery
		other, // a conflict
		later, // a conflict
		ev("k1", "contact", "c2", t0.Add(-time.Hour)), // the id of another customer's event
		ev("k9", "contact", "c1", t0.Add(-time.Hour)), // a new id
		twinA, // new
		twinB, // the same new id as the one before, other content
		twinA, // the same event twice
	}
	want := []bool{false, true, true, false, false, false, true, false}

	keys := len(r.Keys(t, r.Prefix+"*"))
	errs, err := s.IDConflicts(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Keys(t, r.Prefix+"*")); n != keys {
		t.Errorf("IDConflicts wrote: %d keys, then %d", keys, n)
	}
	for i, err := range errs {
		if got := err != nil; got != want[i] {
			t.Errorf("event %d: %v, want a conflict: %v", i, err, want[i])
		}
		if err != nil && (contact.ErrorCode(err) != contact.EConflict || err.(*contact.Error).Field != "id") {
			t.Errorf("event %d: %v, want an EConflict naming id", i, err)
		}
	}

	// Apply, one event at a time in the same order, agrees.
	for i := range events {
		applied, err := s.Apply(ctx, events[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		if got := applied[0] != nil; got != want[i] {
			t.Errorf("Apply of event %d: %v; IDConflicts said conflict: %v", i, applied[0], want[i])
		}
	}
}

func TestIDConflictsUnavailable(t *testing.T) {
	t.Parallel()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	s := redis.New(rdb, redis.Options{})
	_, err := s.IDConflicts(context.Background(), []contact.Event{ev("k1", "opt_out", "c1", t0)})
	if contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("got %v, want EUnavailable", err)
	}
}
