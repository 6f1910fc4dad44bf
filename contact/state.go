package contact

import (
	"sort"
	"time"
)

// History holds the records of one customer that the derived state and the
// pre-dial decision are computed from. Each list is in no particular order and
// holds each event once.
type History struct {
	Contacts   []Event // recent contacts, both directions
	Offers     []Event // contacts that carried an offer
	Purchases  []Event
	Complaints []Event
	Opts       []Event // opt_out and opt_in events
}

// Page selects a page of a timeline, newest first.
type Page struct {
	Limit  int       // events per page; must be positive
	Before time.Time // only events strictly before this time; zero means no bound
}

// State is what a caller needs to know about a customer at a glance. Each
// entry is the event that is the evidence for it.
type State struct {
	// Products maps a product to its latest purchase.
	Products map[string]Event `json:"products"`
	// OpenComplaints holds the latest event of every case still open.
	OpenComplaints []Event `json:"open_complaints"`
	// OptOuts maps a channel to the opt-out in force for it; an opt-out of
	// every channel shows on each.
	OptOuts map[Channel]Event `json:"opt_outs"`
	// Offers holds the contacts that made an offer, newest first.
	Offers []Event `json:"offers"`
	// LastContacts maps a channel to the latest outbound contact on it.
	LastContacts map[Channel]Event `json:"last_contacts"`
}

// State derives the customer state from h.
func (h *History) State() State {
	s := State{
		Products:       LatestPurchases(h.Purchases),
		OpenComplaints: append([]Event{}, OpenComplaints(h.Complaints)...),
		OptOuts:        map[Channel]Event{},
		Offers:         append([]Event{}, h.Offers...),
		LastContacts:   LastOutbound(h.Contacts),
	}
	for _, ch := range Channels {
		if e, ok := OptOutInForce(h.Opts, ch); ok {
			s.OptOuts[ch] = e
		}
	}
	SortNewestFirst(s.Offers)
	return s
}

// LatestPurchases maps each product to its latest purchase.
func LatestPurchases(purchases []Event) map[string]Event {
	m := make(map[string]Event)
	for _, p := range purchases {
		if cur, ok := m[p.Product]; !ok || newer(&p, &cur) {
			m[p.Product] = p
		}
	}
	return m
}

// OpenComplaints returns the latest event of every case whose latest event
// opened it, oldest first. A case resolved at the same instant it was opened
// counts as resolved.
func OpenComplaints(complaints []Event) []Event {
	var latest map[string]int // case id → index in complaints
	for i := range complaints {
		c := &complaints[i]
		if latest == nil {
			latest = make(map[string]int, len(complaints))
		}
		j, ok := latest[c.CaseID]
		if !ok || c.At.After(complaints[j].At) || (c.At.Equal(complaints[j].At) && c.Status == ComplaintResolved) {
			latest[c.CaseID] = i
		}
	}
	var open []Event
	for _, i := range latest {
		if complaints[i].Status != ComplaintResolved {
			open = append(open, complaints[i])
		}
	}
	sort.Slice(open, func(i, j int) bool {
		if !open[i].At.Equal(open[j].At) {
			return open[i].At.Before(open[j].At)
		}
		return open[i].CaseID < open[j].CaseID
	})
	return open
}

// OptOutInForce returns the opt-out that blocks channel ch: the latest opt
// event for ch or for every channel, if that event is an opt-out.
func OptOutInForce(opts []Event, ch Channel) (Event, bool) {
	var latest Event
	found := false
	for _, o := range opts {
		if o.Channel != "" && o.Channel != ch {
			continue
		}
		// On a tie an opt-out wins: doubt resolves towards not calling.
		if !found || o.At.After(latest.At) || (o.At.Equal(latest.At) && o.Type == TypeOptOut) {
			latest, found = o, true
		}
	}
	return latest, found && latest.Type == TypeOptOut
}

// LastOutbound maps each channel to its latest outbound contact.
func LastOutbound(contacts []Event) map[Channel]Event {
	m := make(map[Channel]Event)
	for _, c := range contacts {
		if !c.IsOutboundContact() {
			continue
		}
		if cur, ok := m[c.Channel]; !ok || newer(&c, &cur) {
			m[c.Channel] = c
		}
	}
	return m
}

// newer orders events by At, then by ID, the same way as SortNewestFirst,
// so that a choice between events does not depend on read order.
func newer(a, b *Event) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	return a.ID > b.ID
}

// SortNewestFirst sorts events by At, newest first, and by ID on a tie so
// that the order is stable across reads.
func SortNewestFirst(events []Event) {
	sort.Slice(events, func(i, j int) bool { return newer(&events[i], &events[j]) })
}
