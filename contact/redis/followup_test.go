package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/contacttest"
	"github.com/outreach/outreach/internal/testenv"
)

// fataler is what testing.TB and rapid.T share.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// indexed reads every indexed follow-up of team, a page of n at a time.
func indexed(tb fataler, s *redis.Store, team string, n int) []contact.FollowUp {
	tb.Helper()
	var all []contact.FollowUp
	var after *contact.FollowUp
	for range 1000 {
		page, err := s.IndexedFollowUps(context.Background(), []contact.FollowUpRange{{Team: team, After: after, Limit: n}})
		if err != nil {
			tb.Fatal(err)
		}
		if len(page[0]) == 0 {
			return all
		}
		all = append(all, page[0]...)
		after = &page[0][len(page[0])-1]
	}
	tb.Fatal("paging does not end")
	return nil
}

func describe(fs []contact.FollowUp) string {
	if len(fs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(fs)
	return string(b)
}

// TestFollowUpsMatchTheModel: whatever the order events arrive in, and
// however often, the store's follow-ups are those the model derives from
// the events, and the index holds exactly those no one followed up.
func TestFollowUpsMatchTheModel(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		events := contacttest.GenHistory(rt)
		order := rapid.Permutation(events).Draw(rt, "order")
		if len(events) > 0 {
			order = append(order, rapid.SliceOfN(rapid.SampledFrom(events), 0, 5).Draw(rt, "again")...)
		}
		s := redis.New(r.Client, redis.Options{Prefix: fmt.Sprintf("%sf%d:", r.Prefix, n), Now: func() time.Time { return contacttest.T0 }})
		for _, e := range order {
			if _, err := s.Apply(context.Background(), []contact.Event{e}); err != nil {
				rt.Fatal(err)
			}
		}
		var st contact.State
		for i := range events {
			st.Apply(&events[i], contacttest.T0, contact.Limits{})
		}
		want := contact.FollowUps("c1", &st, events)
		got, err := s.FollowUps(context.Background(), "c1")
		if err != nil {
			rt.Fatal(err)
		}
		if g, w := describe(got), describe(want); g != w {
			rt.Fatalf("follow-ups differ from the model:\n got %s\nwant %s", g, w)
		}
		for _, team := range []string{"t1", "t2"} {
			wantIdx := slices.DeleteFunc(slices.Clone(want), func(f contact.FollowUp) bool { return f.Team != team || f.FollowedUp != nil })
			slices.SortFunc(wantIdx, func(a, b contact.FollowUp) int { return a.OpenedAt.Compare(b.OpenedAt)*2 + cmpStr(a.CaseID, b.CaseID) })
			if g, w := describe(indexed(rt, s, team, 2)), describe(wantIdx); g != w {
				rt.Fatalf("index of %s:\n got %s\nwant %s", team, g, w)
			}
		}
	})
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestFollowUpIndex(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	ctx := context.Background()
	complaint := func(id, customer, caseID, owner string, at time.Time) contact.Event {
		return ev(id, "complaint", customer, at, func(e *contact.Event) { e.CaseID, e.Owner, e.Team = caseID, owner, "care" })
	}
	// 30 customers with an open case each, opened an hour apart, some of
	// them at the same instant: the index pages them in order, whatever
	// shard they are in.
	var want []string
	for i := range 30 {
		c := fmt.Sprintf("cust-%02d", i)
		apply(t, s, complaint("k-"+c, c, "A", []string{"b.smith", "c.lee"}[i%2], t0.Add(-time.Duration(100-i/2)*time.Hour)))
		want = append(want, c)
	}
	got := indexed(t, s, "care", 4)
	var gotIDs []string
	for _, f := range got {
		gotIDs = append(gotIDs, f.CustomerID)
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(want) {
		t.Fatalf("index pages\n got %v\nwant %v", gotIDs, want)
	}
	if other := indexed(t, s, "sales", 4); len(other) != 0 {
		t.Errorf("team sales has %d follow-ups, want none", len(other))
	}

	// A recovery call, a resolution and an erasure each take a case out of
	// the index; a sales call by someone else does not.
	apply(t, s, ev("r1", "contact", "cust-00", t0, func(e *contact.Event) { e.Purpose = "recovery" }),
		ev("x1", "contact", "cust-01", t0, func(e *contact.Event) { e.Purpose = "sales"; e.Agent = "a.jones" }),
		ev("k2", "complaint", "cust-02", t0, func(e *contact.Event) { e.CaseID, e.Status = "A", "resolved" }),
		ev("f1", "forget", "cust-03", t0))
	counts, err := s.CountFollowUps(ctx, []contact.FollowUpRange{{Team: "care"}, {Team: "care", To: t0.Add(-99 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if counts[0] != 27 || counts[1] != 1 {
		t.Errorf("counts = %v, want 27 in all and 1 opened up to 99h ago (cust-01; 00 to 03 are out)", counts)
	}
	fu, err := s.FollowUps(ctx, "cust-00")
	if err != nil || len(fu) != 1 || fu[0].FollowedUp == nil || fu[0].FollowedUp.EventID != "r1" {
		t.Errorf("cust-00's follow-ups = %+v, %v; want case A followed up by r1", fu, err)
	}
	for _, c := range []string{"cust-02", "cust-03"} {
		if fu, err := s.FollowUps(ctx, c); err != nil || len(fu) != 0 {
			t.Errorf("%s's follow-ups = %+v, %v; want none", c, fu, err)
		}
	}
	mine, err := s.OwnerFollowUps(ctx, "b.smith")
	if err != nil {
		t.Fatal(err)
	}
	// b.smith owns the even customers; 00 was called back and 02 resolved.
	if len(mine) != 13 || mine[0].CustomerID != "cust-04" || mine[0].Owner != "b.smith" {
		t.Errorf("b.smith's follow-ups: %d, first %+v; want 13 from cust-04", len(mine), mine[0])
	}
}

// TestFollowUpIndexRebuiltByAReplay: with the index gone, applying the same
// events again (a replay: every one a redelivery) builds it again.
func TestFollowUpIndexRebuiltByAReplay(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	events := []contact.Event{
		ev("k1", "complaint", "c1", t0.Add(-50*time.Hour), func(e *contact.Event) { e.Team = "care" }),
		ev("k2", "complaint", "c2", t0.Add(-40*time.Hour), func(e *contact.Event) { e.Team = "care" }),
	}
	apply(t, s, events...)
	before := describe(indexed(t, s, "care", 10))
	for _, k := range s.IndexKeys("care") {
		r.Client.Del(context.Background(), k)
	}
	if got := indexed(t, s, "care", 10); len(got) != 0 {
		t.Fatalf("the index survived its deletion: %d", len(got))
	}
	r.Client.Del(context.Background(), r.Prefix+"{c:c1}:u")
	r.Client.Del(context.Background(), r.Prefix+"{c:c2}:u")
	apply(t, s, events...)
	if after := describe(indexed(t, s, "care", 10)); after != before {
		t.Errorf("after the replay\n got %s\nwant %s", after, before)
	}
}
