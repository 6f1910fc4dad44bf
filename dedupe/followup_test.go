package dedupe_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

func openCase(opened time.Time, followedUp bool) contact.FollowUp {
	f := contact.FollowUp{CustomerID: "c1", CaseID: "K-1", Team: "care", Owner: "b.smith", OpenedAt: opened, EventID: "k1"}
	if followedUp {
		f.FollowedUp = &contact.Touch{EventID: "r1", At: opened.Add(time.Hour)}
	}
	return f
}

func TestFollowUpState(t *testing.T) {
	p := mustParse(t, "followup_sla: 48h\nteams: {fast: {followup_sla: 4h}, never: {followup_sla: 0}}")
	tests := []struct {
		name string
		f    contact.FollowUp
		want string
	}{
		{"within the SLA", openCase(before(47*time.Hour), false), dedupe.FollowUpUpcoming},
		{"at the SLA", openCase(before(48*time.Hour), false), dedupe.FollowUpDue},
		{"followed up", openCase(before(72*time.Hour), true), ""},
		{"a team's own SLA", func() contact.FollowUp { f := openCase(before(5*time.Hour), false); f.Team = "fast"; return f }(), dedupe.FollowUpDue},
		{"a team whose cases are never due", func() contact.FollowUp { f := openCase(before(90*day), false); f.Team = "never"; return f }(), ""},
	}
	for _, tt := range tests {
		if got := p.FollowUpState(&tt.f, now); got != tt.want {
			t.Errorf("%s: state %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestFollowUpDueWarnsTheOwner: a recovery or service check by the owner of
// a case whose follow-up is due carries it as a warning, and is allowed.
func TestFollowUpDueWarnsTheOwner(t *testing.T) {
	p := dedupe.DefaultPolicy()
	opened := before(3 * day)
	facts := contact.Facts{FollowUps: []contact.FollowUp{openCase(opened, false)}}
	req := dedupe.Request{CustomerID: "c1", Channel: contact.Call, Purpose: "recovery", Agent: "b.smith", At: now}
	d := dedupe.Decide(p, &req, &facts, now)
	want := dedupe.Reason{Code: "followup_due", Warning: true,
		Message: "you own complaint K-1 and its follow-up is overdue: due 24h ago, opened 3d ago",
		EventID: "k1", At: timePtr(opened), CaseID: "K-1", Owner: "b.smith", Team: "care", DueAt: timePtr(opened.Add(48 * time.Hour))}
	if !d.Allowed || len(d.Reasons) != 1 || !reflect.DeepEqual(d.Reasons[0], want) {
		t.Fatalf("decision = %+v\nwant allowed with %+v", d, want)
	}
	for _, other := range []dedupe.Request{
		{CustomerID: "c1", Channel: contact.Call, Purpose: "recovery", Agent: "a.jones", At: now}, // not the owner
		{CustomerID: "c1", Channel: contact.Call, Purpose: "info", Agent: "b.smith", At: now},     // not a follow-up
	} {
		if d := dedupe.Decide(p, &other, &facts, now); len(d.Reasons) != 0 {
			t.Errorf("%s by %s: reasons %+v, want none", other.Purpose, other.Agent, d.Reasons)
		}
	}
	facts.FollowUps[0].OpenedAt = before(time.Hour)
	if d := dedupe.Decide(p, &req, &facts, now); len(d.Reasons) != 0 {
		t.Errorf("a case opened an hour ago: reasons %+v, want none", d.Reasons)
	}
}
