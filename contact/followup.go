package contact

import (
	"slices"
	"strings"
	"time"
)

// FollowUp is where an open complaint case stands in its recovery: when it
// opened, who owns it, and the contact that followed it up, if any. A case
// is followed up by an outbound contact made since it opened, either of a
// follow-up purpose (recovery or service) or by the case's owner. Whether a
// follow-up is due is the policy's call (dedupe), from OpenedAt and the
// team's SLA.
type FollowUp struct {
	CustomerID string    `json:"customer_id"`
	CaseID     string    `json:"case_id"`
	Team       string    `json:"team,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Summary    string    `json:"summary,omitempty"`
	OpenedAt   time.Time `json:"opened_at"`             // the case's first opening since it was last resolved
	EventID    string    `json:"event_id"`              // the case's latest event: the evidence
	FollowedUp *Touch    `json:"followed_up,omitempty"` // the latest contact that followed the case up
	// LastRecovery is the customer's latest outbound contact of a follow-up
	// purpose, whenever it was made (before the case opened, too).
	LastRecovery *Touch `json:"last_recovery_contact,omitempty"`
}

// Touch is an outbound contact, as a follow-up sees it.
type Touch struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
	Agent   string    `json:"agent,omitempty"`
	Team    string    `json:"team,omitempty"`
	Channel Channel   `json:"channel,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
}

// FollowUpRange selects the indexed follow-ups of one team (open cases no
// one has followed up) opened from From to To, both included; a zero time
// is unbounded. They come oldest first by (opened at, customer, case),
// starting after After when it is set, at most Limit of them.
type FollowUpRange struct {
	Team     string
	From, To time.Time
	After    *FollowUp
	Limit    int
}

// FollowUpPurposes are the purposes of a contact that follows a complaint up.
var FollowUpPurposes = []string{"recovery", "service"}

// FollowUps derives the follow-ups of a customer's open complaint cases from
// the customer's state and history (events in any order), sorted by case id.
// It depends only on the set of events, not on their order, so a store can
// derive it again after any event and a replay derives the same. What the
// history no longer holds (trimmed by retention) is not seen: a case whose
// first opening was trimmed counts from its latest opening.
func FollowUps(customerID string, s *State, history []Event) []FollowUp {
	var out []FollowUp
	last := lastRecovery(history)
	for _, c := range s.OpenComplaints() {
		f := FollowUp{CustomerID: customerID, CaseID: c.CaseID, Team: c.Team, Owner: c.Owner, Summary: c.Summary,
			OpenedAt: openedAt(&c, history), EventID: c.ID, LastRecovery: last}
		for i := range history {
			e := &history[i]
			if followsUp(e, &f) && (f.FollowedUp == nil || later(e, f.FollowedUp)) {
				f.FollowedUp = touch(e)
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FollowUp) int { return strings.Compare(a.CaseID, b.CaseID) })
	return out
}

// openedAt is the first opening of case c since its last resolution.
func openedAt(c *Event, history []Event) time.Time {
	var resolved time.Time
	for i := range history {
		e := &history[i]
		if e.Type == TypeComplaint && e.CaseID == c.CaseID && e.Status == ComplaintResolved && e.At.After(resolved) {
			resolved = e.At
		}
	}
	opened := c.At
	for i := range history {
		e := &history[i]
		if e.Type == TypeComplaint && e.CaseID == c.CaseID && e.Status != ComplaintResolved &&
			e.At.After(resolved) && e.At.Before(opened) {
			opened = e.At
		}
	}
	return opened
}

func followsUp(e *Event, f *FollowUp) bool {
	return e.IsOutboundContact() && !e.At.Before(f.OpenedAt) &&
		(slices.Contains(FollowUpPurposes, e.Purpose) || (f.Owner != "" && e.Agent == f.Owner))
}

func lastRecovery(history []Event) *Touch {
	var last *Touch
	for i := range history {
		e := &history[i]
		if e.IsOutboundContact() && slices.Contains(FollowUpPurposes, e.Purpose) && (last == nil || later(e, last)) {
			last = touch(e)
		}
	}
	return last
}

// later reports whether e was made after t, by (at, id).
func later(e *Event, t *Touch) bool {
	return e.At.After(t.At) || (e.At.Equal(t.At) && e.ID > t.EventID)
}

func touch(e *Event) *Touch {
	return &Touch{EventID: e.ID, At: e.At, Agent: e.Agent, Team: e.Team, Channel: e.Channel, Purpose: e.Purpose}
}
