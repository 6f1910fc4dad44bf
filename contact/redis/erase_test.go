package redis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
)

func forget(id, customer string, at time.Time) contact.Event {
	return ev(id, "forget", customer, at)
}

// facts reads the facts of customer, without claiming.
func facts(tb testing.TB, s *redis.Store, customer string) contact.Facts {
	tb.Helper()
	f := s.Facts(context.Background(), []contact.Lookup{{CustomerID: customer}})[0]
	if f.Err != nil {
		tb.Fatalf("Facts(%s): %v", customer, f.Err)
	}
	return f
}

// TestErasureDeletesTheClaim: an erasure deletes the claim an agent holds
// on the customer, and only on that customer.
func TestErasureDeletesTheClaim(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	for _, c := range []string{"c1", "c2"} {
		taken := s.Facts(ctx, []contact.Lookup{{CustomerID: c, ClaimTTL: time.Hour,
			Claim: &contact.Claim{Agent: "b.lee", Campaign: "winback", ExpiresAt: t0.Add(time.Hour)}}})[0]
		if taken.Err != nil || taken.Taken == nil {
			t.Fatalf("claiming %s: %+v", c, taken)
		}
	}
	if facts(t, s, "c1").Claim == nil {
		t.Fatal("the claim on c1 is not held before the erasure")
	}
	apply(t, s, forget("f1", "c1", t0))

	if cl := facts(t, s, "c1").Claim; cl != nil {
		t.Errorf("the claim on c1 outlived its erasure: %+v", cl)
	}
	if n := r.Client.Exists(ctx, r.Prefix+"{c:c1}:claim").Val(); n != 0 {
		t.Errorf("the claim key of c1 still exists after its erasure")
	}
	if cl := facts(t, s, "c2").Claim; cl == nil || cl.Agent != "b.lee" {
		t.Errorf("the claim on c2 = %+v, want it kept: c2 was not erased", cl)
	}
}

// TestErasureStripsSuppressionEntries: the customer's entries in the
// suppression index stay in force, stripped to their list and expiry; their
// reasons go. Another customer's entry on the same list is untouched.
func TestErasureStripsSuppressionEntries(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	ctx := context.Background()
	until := t0.Add(30 * 24 * time.Hour).Truncate(time.Millisecond)
	dnc := byID("c1", "asked on the phone, ticket 77")
	dnc.ExpiresAt = &until
	replace(t, s, "national", dnc, byID("c2", "registered"))
	replace(t, s, "partner", byID("c1", "complained to the partner"))
	apply(t, s, ev("k1", "contact", "c1", t0.Add(-time.Hour)))

	apply(t, s, forget("f1", "c1", t0))

	if got := suppressedBy(t, s, "c1", "", t0); got != "national,partner" && got != "partner,national" {
		t.Errorf("c1 is suppressed by %q after its erasure, want national and partner still", got)
	}
	got, err := s.GetSuppression(ctx, "national", byID("c1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got.List != "national" || got.Reason != "" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(until) {
		t.Errorf("c1's national entry = %+v, want its list and expiry %v, no reason", got, until)
	}
	if got, err := s.GetSuppression(ctx, "partner", byID("c1", "")); err != nil || got.Reason != "" || got.ExpiresAt != nil {
		t.Errorf("c1's partner entry = %+v, %v; want no reason, no expiry", got, err)
	}
	// Nothing but the list and expiry is left in the index: no reason, no id.
	raw, err := r.Client.HGetAll(ctx, r.Prefix+"{c:c1}:dnc").Result()
	if err != nil || len(raw) != 2 {
		t.Fatalf("c1's suppression index = %v, %v; want its 2 entries", raw, err)
	}
	for field, v := range raw {
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Fatalf("entry %s = %q: %v", field, v, err)
		}
		for k := range m {
			if k != "list" && k != "expires_at" {
				t.Errorf("entry %s keeps %q after the erasure: %s", field, k, v)
			}
		}
	}
	if got, err := s.GetSuppression(ctx, "national", byID("c2", "")); err != nil || got.Reason != "registered" {
		t.Errorf("c2's entry = %+v, %v; want its reason kept", got, err)
	}
	if f := facts(t, s, "c1"); len(f.State.LastContacts) != 0 {
		t.Errorf("the erased customer's state is still there: %+v", f.State)
	}
}

// TestEventsDatedUpToAnErasureAreGone: after an erasure, applying an event
// of the customer dated up to it (a replay, a late event) stores nothing and
// says so with EGone, which the consumer counts in
// outreach_events_erased_total; an event dated after it is a new contact.
func TestEventsDatedUpToAnErasureAreGone(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("k1", "contact", "c1", t0.Add(-time.Hour)), forget("f1", "c1", t0))
	if at, err := s.Erased(context.Background(), "c1"); err != nil || !at.Equal(t0) {
		t.Fatalf("Erased(c1) = %v, %v; want %v", at, err, t0)
	}

	errs, err := s.Apply(context.Background(), []contact.Event{
		ev("k1", "contact", "c1", t0.Add(-time.Hour)),       // the replay of an erased event
		ev("k2", "purchase", "c1", t0),                      // dated at the erasure
		ev("k3", "contact", "c1", t0.Add(time.Millisecond)), // after it
		ev("k4", "contact", "c2", t0.Add(-time.Hour)),       // another customer
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{contact.EGone, contact.EGone, "", ""} {
		if got := contact.ErrorCode(errs[i]); got != want {
			t.Errorf("event %d: %v, want code %q", i, errs[i], want)
		}
	}
	if events, st := timeline(t, s, "c1", 10); ids(events) != "k3" || len(st.Purchases) != 0 {
		t.Errorf("c1's timeline = %s, purchases %v; want k3 alone", ids(events), st.Purchases)
	}
	if events, _ := timeline(t, s, "c2", 10); ids(events) != "k4" {
		t.Errorf("c2's timeline = %s, want k4", ids(events))
	}
}
