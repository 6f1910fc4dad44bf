package check_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// followUpEnv is a check service with the follow-up index, under a policy
// whose team fast has a 4h SLA and team never none.
func followUpEnv(tb testing.TB) *env {
	tb.Helper()
	e := newEnv(tb, nil)
	p, err := dedupe.ParsePolicy([]byte("followup_sla: 48h\nteams: {fast: {followup_sla: 4h}, never: {followup_sla: 0}}"))
	if err != nil {
		tb.Fatal(err)
	}
	e.svc = check.New(check.Config{Store: e.store, FollowUps: e.store, Policy: func() *dedupe.Policy { return p }, Now: func() time.Time { return t0 }})
	return e
}

func complaintOf(id, customer, team, owner string, ago time.Duration) contact.Event {
	return ev(id, "complaint", customer, t0.Add(-ago), func(e *contact.Event) { e.CaseID, e.Team, e.Owner = "K-"+id, team, owner })
}

func listed(tb testing.TB, e *env, q check.FollowUpQuery) []string {
	tb.Helper()
	var out []string
	for range 100 {
		page, err := e.svc.FollowUps(context.Background(), q)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range page.FollowUps {
			out = append(out, fmt.Sprintf("%s@%s", f.CustomerID, f.DueAt.Sub(t0)))
		}
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
	tb.Fatal("paging does not end")
	return nil
}

// TestFollowUpsByDueTime: due follow-ups come longest overdue first across
// teams of different SLAs, a page at a time; upcoming ones soonest first;
// followed-up cases and teams without an SLA never.
func TestFollowUpsByDueTime(t *testing.T) {
	t.Parallel()
	e := followUpEnv(t)
	h := time.Hour
	e.apply(t,
		complaintOf("1", "c1", "care", "b.smith", 60*h), // due 12h ago
		complaintOf("2", "c2", "fast", "b.smith", 20*h), // due 16h ago
		complaintOf("3", "c3", "care", "c.lee", 50*h),   // due 2h ago
		complaintOf("4", "c4", "fast", "c.lee", 2*h),    // due in 2h
		complaintOf("5", "c5", "care", "", 10*h),        // due in 38h
		complaintOf("6", "c6", "never", "c.lee", 90*h),  // never due
		complaintOf("7", "c7", "care", "c.lee", 70*h),   // followed up below
		ev("r7", "contact", "c7", t0.Add(-h), func(e *contact.Event) { e.Purpose = "service" }),
	)
	due := check.FollowUpQuery{State: dedupe.FollowUpDue, Limit: 1}
	if got, want := fmt.Sprint(listed(t, e, due)), "[c2@-16h0m0s c1@-12h0m0s c3@-2h0m0s]"; got != want {
		t.Errorf("due: %s, want %s", got, want)
	}
	upcoming := check.FollowUpQuery{State: dedupe.FollowUpUpcoming, Limit: 2}
	if got, want := fmt.Sprint(listed(t, e, upcoming)), "[c4@2h0m0s c5@38h0m0s]"; got != want {
		t.Errorf("upcoming: %s, want %s", got, want)
	}
	care := "care"
	byTeam := check.FollowUpQuery{State: dedupe.FollowUpDue, Team: &care, Limit: 10}
	if got, want := fmt.Sprint(listed(t, e, byTeam)), "[c1@-12h0m0s c3@-2h0m0s]"; got != want {
		t.Errorf("due of care: %s, want %s", got, want)
	}
	byOwner := check.FollowUpQuery{State: dedupe.FollowUpDue, Owner: "c.lee", Limit: 10}
	if got, want := fmt.Sprint(listed(t, e, byOwner)), "[c3@-2h0m0s]"; got != want {
		t.Errorf("due of c.lee: %s, want %s", got, want)
	}
	counts, err := e.svc.FollowUpsDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(counts); got != "map[care:2 fast:1 never:0]" {
		t.Errorf("due by team: %s", got)
	}
}

func TestFollowUpQueryErrors(t *testing.T) {
	t.Parallel()
	e := followUpEnv(t)
	for _, tt := range []struct {
		q     check.FollowUpQuery
		field string
	}{
		{check.FollowUpQuery{State: "late", Limit: 10}, "state"},
		{check.FollowUpQuery{State: "due", Limit: 0}, "limit"},
		{check.FollowUpQuery{State: "due", Limit: 10, Cursor: "nope"}, "cursor"},
	} {
		_, err := e.svc.FollowUps(context.Background(), tt.q)
		if ce := asError(err); ce == nil || ce.Code != contact.EInvalid || ce.Field != tt.field {
			t.Errorf("%+v: %v, want invalid %s", tt.q, err, tt.field)
		}
	}
}

// TestFollowUpDueOnTheOwnersCheck: through the store, a recovery check by
// the owner of an overdue case carries the warning, and is allowed.
func TestFollowUpDueOnTheOwnersCheck(t *testing.T) {
	t.Parallel()
	e := followUpEnv(t)
	e.apply(t, complaintOf("1", "c1", "care", "b.smith", 60*time.Hour))
	res := e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Purpose: "recovery", Agent: "b.smith"})[0]
	if !res.Allowed || codes(res) != "open_complaint,followup_due" {
		t.Errorf("allowed=%v %q, want allowed with the complaint and the follow-up due", res.Allowed, codes(res))
	}
	res = e.check(t, dedupe.Request{CustomerID: "c1", Channel: contact.Call, Purpose: "recovery", Agent: "a.jones"})[0]
	if codes(res) != "open_complaint" {
		t.Errorf("another agent's check: %q, want only the complaint", codes(res))
	}
}
