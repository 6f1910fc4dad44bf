package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
)

// TestStoreReset: a store whose data is gone, wholly or for one slot, says
// so, and its checks fail, until a new epoch is written.
func TestStoreReset(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{Epoch: true})
	ctx := context.Background()
	if state, _, err := s.Epoch(ctx); err != nil || state != redis.EpochFresh {
		t.Fatalf("Epoch of a new store = %v, %v; want fresh", state, err)
	}
	if f := s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}}); !errors.Is(f[0].Err, redis.ErrStoreReset) {
		t.Fatalf("facts before any epoch: %v, want the store reset", f[0].Err)
	}
	epoch, err := s.NewEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if state, got, err := s.Epoch(ctx); err != nil || state != redis.EpochOK || got != epoch {
		t.Fatalf("Epoch = %v %q, %v; want ok %q", state, got, err, epoch)
	}
	apply(t, s, ev("o1", "opt_out", "c1", t0.Add(-time.Hour)), ev("o2", "opt_out", "c2", t0.Add(-time.Hour)))
	if err := s.EpochSample(ctx); err != nil {
		t.Fatalf("EpochSample = %v", err)
	}
	f := s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}, {CustomerID: "c2"}})
	if f[0].Err != nil || f[1].Err != nil {
		t.Fatalf("facts with the epoch in place: %v, %v", f[0].Err, f[1].Err)
	}

	// The node that holds c1's slot comes back empty: c1's keys and the
	// slot's epoch are gone; c2 lives on.
	keys, _ := r.Client.Keys(ctx, r.Prefix+"{c:c1}:*").Result()
	r.Client.Del(ctx, append(keys, epochKeyOf(r.Prefix, "c1"))...)
	f = s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}, {CustomerID: "c2"}})
	if !errors.Is(f[0].Err, redis.ErrStoreReset) || contact.ErrorCode(f[0].Err) != contact.EUnavailable {
		t.Errorf("facts of c1 after its slot was reset: %+v, want unavailable: the store was reset", f[0])
	}
	if f[1].Err != nil {
		t.Errorf("facts of c2: %v", f[1].Err)
	}
	if state, _, _ := s.Epoch(ctx); state != redis.EpochReset {
		t.Errorf("Epoch after one slot lost its key = %v, want reset", state)
	}
	if err := s.EpochSample(ctx); !errors.Is(err, redis.ErrStoreReset) {
		t.Errorf("EpochSample after a check met the reset = %v", err)
	}
	// An operator acknowledges the loss.
	if _, err := s.NewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EpochSample(ctx); err != nil {
		t.Errorf("EpochSample after a new epoch = %v", err)
	}
	if f := s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}}); f[0].Err != nil {
		t.Errorf("facts of c1 after a new epoch: %v", f[0].Err)
	}
}

// TestStoreResetOfSuppressionSlots: a phone's suppression entries, and the
// lists in force, live in slots of their own, not in the customer's. A node
// that comes back without them fails the checks that read them; before, the
// check found no entry and allowed the call.
func TestStoreResetOfSuppressionSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const phone = "+4791234567"
	for _, tc := range []struct {
		name, tag string
		keys      []string // the keys in the tag's slot, but the epoch
	}{
		{"the phone's entries", "p:" + phone, []string{"{p:" + phone + "}:dnc"}},
		{"the lists in force", "dnc", []string{"{dnc}:lists", "{dnc}:ver"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, r := newStore(t, redis.Options{Epoch: true})
			if _, err := s.NewEpoch(ctx); err != nil {
				t.Fatal(err)
			}
			replace(t, s, "internal", byPhone(phone, "asked"))
			lookup := []contact.Lookup{{CustomerID: "c1", Phones: []string{phone}}}
			if f := s.Facts(ctx, lookup); f[0].Err != nil || len(f[0].Suppressions) != 1 {
				t.Fatalf("facts before the reset: %+v, want the entry", f[0])
			}
			// The node of the tag's slot comes back empty.
			keys := []string{r.Prefix + "{" + redis.SlotEpochTag(tc.tag) + "}:epoch"}
			for _, k := range tc.keys {
				keys = append(keys, r.Prefix+k)
			}
			if err := r.Client.Del(ctx, keys...).Err(); err != nil {
				t.Fatal(err)
			}
			// A process that starts now has no copy of the lists.
			fresh := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Epoch: true})
			if f := fresh.Facts(ctx, lookup); !errors.Is(f[0].Err, redis.ErrStoreReset) || contact.ErrorCode(f[0].Err) != contact.EUnavailable {
				t.Errorf("facts after the slot was reset: %+v, want unavailable: the store was reset", f[0])
			}
		})
	}
}

// epochKeyOf finds the epoch key in the slot of a customer's keys: the one
// key of the store's epoch keys that Redis puts in that slot. On a single
// Redis it is found by the store's own naming, through Facts.
func epochKeyOf(prefix, customerID string) string {
	return prefix + "{" + redis.EpochTag(customerID) + "}:epoch"
}

// TestStoreResetEndsForEveryProcess: a process whose checks met a reset
// is ready again once another process (outreachd replay, or the instance
// an operator's acknowledgement reached) has written a new epoch.
func TestStoreResetEndsForEveryProcess(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{Epoch: true})
	other := redis.New(r.Client, redis.Options{Prefix: r.Prefix, Epoch: true})
	ctx := context.Background()
	if f := s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}}); !errors.Is(f[0].Err, redis.ErrStoreReset) {
		t.Fatalf("facts before any epoch: %v, want the store reset", f[0].Err)
	}
	if err := s.EpochSample(ctx); !errors.Is(err, redis.ErrStoreReset) {
		t.Fatalf("EpochSample after a check met the reset = %v", err)
	}
	if _, err := other.NewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EpochSample(ctx); err != nil {
		t.Errorf("EpochSample after another process wrote a new epoch = %v, want nil", err)
	}
	if f := s.Facts(ctx, []contact.Lookup{{CustomerID: "c1"}}); f[0].Err != nil {
		t.Errorf("facts after the new epoch: %v", f[0].Err)
	}
}
