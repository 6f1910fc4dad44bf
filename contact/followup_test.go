package contact_test

import (
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
)

// followUps applies events to a state and derives its follow-ups.
func followUps(t *testing.T, events ...contact.Event) []contact.FollowUp {
	t.Helper()
	var s contact.State
	for i := range events {
		events[i].CustomerID = "c"
		if err := events[i].Normalize(contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
		s.Apply(&events[i], t0, contact.Limits{})
	}
	return contact.FollowUps("c", &s, events)
}

func complaint(id, caseID, status, owner string, ago time.Duration) contact.Event {
	return contact.Event{ID: id, Type: contact.TypeComplaint, At: t0.Add(-ago), CaseID: caseID, Status: status,
		Owner: owner, Team: "care", Summary: "billed twice"}
}

func call(id, agent, purpose string, ago time.Duration) contact.Event {
	return contact.Event{ID: id, Type: contact.TypeContact, At: t0.Add(-ago), Channel: contact.Call,
		Direction: contact.Outbound, Agent: agent, Purpose: purpose}
}

func TestFollowUps(t *testing.T) {
	t.Parallel()
	h := time.Hour
	tests := []struct {
		name       string
		events     []contact.Event
		opened     time.Duration // ago
		owner      string
		followedUp string // event id, or ""
		recovery   string // the last recovery contact's id, or ""
	}{
		{"no contact", []contact.Event{complaint("k1", "A", "", "b.smith", 50*h)}, 50 * h, "b.smith", "", ""},
		{"a recovery call before the opening does not follow it up",
			[]contact.Event{call("r0", "x", "recovery", 60*h), complaint("k1", "A", "", "b.smith", 50*h)}, 50 * h, "b.smith", "", "r0"},
		{"a service call after the opening", []contact.Event{complaint("k1", "A", "", "", 50*h), call("s1", "x", "service", 10*h)},
			50 * h, "", "s1", "s1"},
		{"a sales call by the owner", []contact.Event{complaint("k1", "A", "", "b.smith", 50*h), call("o1", "b.smith", "sales", 10*h)},
			50 * h, "b.smith", "o1", ""},
		{"a sales call by someone else", []contact.Event{complaint("k1", "A", "", "b.smith", 50*h), call("o1", "a.jones", "sales", 10*h)},
			50 * h, "b.smith", "", ""},
		{"an inbound recovery call", []contact.Event{complaint("k1", "A", "", "", 50*h), func() contact.Event {
			e := call("i1", "x", "recovery", 10*h)
			e.Direction = contact.Inbound
			return e
		}()}, 50 * h, "", "", ""},
		{"reassigned: the clock runs from the first opening, the owner is the latest",
			[]contact.Event{complaint("k1", "A", "", "b.smith", 50*h), complaint("k2", "A", "opened", "c.lee", 20*h)}, 50 * h, "c.lee", "", ""},
		{"reopened: the clock runs from the opening after the resolution",
			[]contact.Event{complaint("k1", "A", "", "", 90*h), complaint("k2", "A", "resolved", "", 80*h), call("s1", "x", "service", 70*h),
				complaint("k3", "A", "", "", 30*h)}, 30 * h, "", "", "s1"},
		{"the latest of two follow-ups", []contact.Event{complaint("k1", "A", "", "", 50*h), call("s1", "x", "service", 40*h),
			call("s2", "y", "recovery", 10*h)}, 50 * h, "", "s2", "s2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := followUps(t, tt.events...)
			if len(got) != 1 {
				t.Fatalf("%d follow-ups, want 1: %+v", len(got), got)
			}
			f := got[0]
			if f.CaseID != "A" || f.Team != "care" || f.Summary != "billed twice" || f.Owner != tt.owner || !f.OpenedAt.Equal(t0.Add(-tt.opened)) {
				t.Errorf("follow-up = %+v, want case A of team care, owner %q, opened %v ago", f, tt.owner, tt.opened)
			}
			if id := touchID(f.FollowedUp); id != tt.followedUp {
				t.Errorf("followed up by %q, want %q", id, tt.followedUp)
			}
			if id := touchID(f.LastRecovery); id != tt.recovery {
				t.Errorf("last recovery contact %q, want %q", id, tt.recovery)
			}
		})
	}
}

func TestFollowUpsOnlyOfOpenCases(t *testing.T) {
	t.Parallel()
	got := followUps(t, complaint("k1", "A", "", "", 50*time.Hour), complaint("k2", "A", "resolved", "", 10*time.Hour),
		complaint("k3", "B", "", "", 5*time.Hour))
	if len(got) != 1 || got[0].CaseID != "B" {
		t.Errorf("follow-ups = %+v, want only the open case B", got)
	}
}

func touchID(t *contact.Touch) string {
	if t == nil {
		return ""
	}
	return t.EventID
}
