package dedupe

import (
	"slices"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/phone"
)

// The rules of [Decide], one function each. Each appends its reasons to rs.

// add appends r to rs. Decisions that block usually have several reasons,
// so the first one makes room for a few.
func add(rs []Reason, r Reason) []Reason {
	if rs == nil {
		rs = make([]Reason, 0, 4)
	}
	return append(rs, r)
}

func timePtr(t time.Time) *time.Time { return &t }

// age is how long before at the event e was made; an event stamped after at
// (within the clock skew) counts as made at at.
func age(e *contact.Event, at time.Time) time.Duration { return max(0, at.Sub(e.At)) }

func optedOut(rs []Reason, st *contact.State, ch contact.Channel) []Reason {
	e, ok := st.OptOutInForce(ch)
	if !ok {
		return rs
	}
	return add(rs, Reason{
		Code: CodeOptedOut, Message: optOutMessage(&e),
		EventID: e.ID, At: timePtr(e.At), Agent: e.Agent, Channel: e.Channel, Campaign: e.Campaign,
	})
}

func suppressed(rs []Reason, hits []Suppression, at time.Time) []Reason {
	first := len(rs)
	for _, s := range hits {
		if s.ExpiresAt != nil && !s.ExpiresAt.After(at) {
			continue
		}
		r := Reason{Code: CodeDoNotCall, Message: suppressionMessage(&s), List: s.List}
		if s.ExpiresAt != nil {
			r.ExpiresAt = timePtr(*s.ExpiresAt)
		}
		rs = add(rs, r)
	}
	// The store may return hits in any order.
	slices.SortStableFunc(rs[first:], func(a, b Reason) int {
		return strings.Compare(a.List, b.List)
	})
	return rs
}

func claimed(rs []Reason, c *Claim, at, now time.Time) []Reason {
	if c == nil || (!c.ExpiresAt.IsZero() && !c.ExpiresAt.After(at)) {
		return rs
	}
	// A claim is exclusive, even against the agent that holds it: a second
	// dialer session of one agent must not call too. The holder has its
	// token and needs no second check.
	r := Reason{Code: CodeClaimed, Message: claimMessage(c, now), Agent: c.Agent, Campaign: c.Campaign}
	if !c.ExpiresAt.IsZero() {
		r.ExpiresAt = timePtr(c.ExpiresAt)
	}
	return add(rs, r)
}

func openComplaints(rs []Reason, st *contact.State, now time.Time, warning bool) []Reason {
	for _, e := range st.OpenComplaints() {
		rs = add(rs, Reason{
			Code: CodeOpenComplaint, Message: complaintMessage(&e, now), Warning: warning,
			EventID: e.ID, At: timePtr(e.At), CaseID: e.CaseID, Owner: e.Owner, Channel: e.Channel, Product: e.Product,
		})
	}
	return rs
}

// followUpDue warns the owner of an open complaint whose follow-up is due,
// on a follow-up check: the call being made is the one that is late.
func followUpDue(rs []Reason, p *Policy, fus []contact.FollowUp, agent string, now time.Time) []Reason {
	for i := range fus {
		f := &fus[i]
		if due, ok := p.FollowUpDue(f); f.Owner == agent && ok && !now.Before(due) {
			rs = add(rs, Reason{
				Code: CodeFollowUpDue, Message: followUpMessage(f, due, now), Warning: true,
				EventID: f.EventID, At: timePtr(f.OpenedAt), CaseID: f.CaseID, Owner: f.Owner, Team: f.Team, DueAt: timePtr(due),
			})
		}
	}
	return rs
}

// zone is the customer's time zone and where it was found.
type zone struct{ name, source string }

// customerZone finds the customer's time zone: the one given with the
// check, the profile's, or the one the check's phone number or else a
// profile number maps to, when it maps to exactly one.
func customerZone(req *Request, st *contact.State) zone {
	if req.Timezone != "" {
		return zone{req.Timezone, "the check"}
	}
	if p := st.Profile; p != nil && p.Timezone != "" {
		return zone{p.Timezone, "the customer's profile"}
	}
	if z, ok := phone.Zone(req.Phone); ok {
		return zone{z, "the number called"}
	}
	if p := st.Profile; p != nil {
		for _, n := range p.Phones {
			if z, ok := phone.Zone(n); ok {
				return zone{z, "the customer's phone number"}
			}
		}
	}
	return zone{}
}

func quietHours(rs []Reason, w window, z zone, at time.Time) []Reason {
	if w.empty() || z.name == "" {
		return rs // no quiet hours, or the customer's local time is unknown
	}
	loc, err := contact.LoadZone(z.name)
	if err != nil {
		// Events and requests are checked; a zone this server does not
		// know can only come from a newer server's data.
		return add(rs, Reason{Code: CodeQuietHours, Warning: true, Timezone: z.name,
			Message: "the customer's time zone " + quote(z.name) + " is unknown here, so quiet hours were not checked"})
	}
	local := at.In(loc)
	if !w.contains(local.Hour()*60 + local.Minute()) {
		return rs
	}
	y, m, d := local.Date()
	end := time.Date(y, m, d, w.end/60, w.end%60, 0, 0, loc)
	if !end.After(local) {
		end = time.Date(y, m, d+1, w.end/60, w.end%60, 0, 0, loc)
	}
	return add(rs, Reason{
		Code: CodeQuietHours, Timezone: z.name,
		Message: "it is " + local.Format("15:04") + " for the customer (" + z.name + ", from " + z.source + "), inside quiet hours " +
			clock(w.start) + "–" + clock(w.end),
		ExpiresAt: timePtr(end.UTC()),
	})
}

// recentContact blocks a contact on a channel within its cooldown of the
// last outbound contact on it; a cooldown of 0 turns it off.
func recentContact(rs []Reason, st *contact.State, ch contact.Channel, at, now time.Time, cooldown time.Duration) []Reason {
	e, ok := st.LastContacts[ch]
	if cooldown <= 0 || !ok || age(&e, at) >= cooldown {
		return rs
	}
	return add(rs, contactReason(CodeRecentContact, &e, contactMessage(&e, now), e.At.Add(cooldown)))
}

// frequencyCap blocks a contact when capMax outbound contacts, on any
// channel, were made in the window before at; a capMax of 0 turns it off.
func frequencyCap(rs []Reason, st *contact.State, at, now time.Time, capMax int, window time.Duration) []Reason {
	if capMax <= 0 {
		return rs
	}
	var times []time.Time // newest first, as the state keeps them
	for _, s := range st.Recent {
		if at.Sub(s.At) < window {
			times = append(times, s.At)
		}
	}
	if len(times) < capMax {
		return rs
	}
	var latest *contact.Event
	for _, e := range st.LastContacts {
		if latest == nil || contact.Supersedes(&e, latest) {
			latest = &e
		}
	}
	if latest == nil {
		latest = &contact.Event{ID: st.Recent[0].ID, At: st.Recent[0].At}
	}
	// The cap lifts when the capMax-th newest contact leaves the window.
	r := contactReason(CodeFrequencyCap, latest, capMessage(len(times), capMax, window, latest, now), times[capMax-1].Add(window))
	r.Count = len(times)
	return add(rs, r)
}

func contactReason(code string, e *contact.Event, msg string, lifts time.Time) Reason {
	return Reason{
		Code: code, Message: msg,
		EventID: e.ID, At: timePtr(e.At), Agent: e.Agent, Team: e.Team, Channel: e.Channel,
		Campaign: e.Campaign, Product: e.Product, ExpiresAt: timePtr(lifts),
	}
}

func purchased(rs []Reason, st *contact.State, product string, at time.Time, lookback time.Duration) []Reason {
	e, ok := st.Purchases[product]
	if !ok || age(&e, at) >= lookback {
		return rs
	}
	return add(rs, Reason{
		Code: CodeAlreadyPurchased, Message: purchaseMessage(&e),
		EventID: e.ID, At: timePtr(e.At), Agent: e.Agent, Team: e.Team, Channel: e.Channel,
		Campaign: e.Campaign, Product: e.Product, ExpiresAt: timePtr(e.At.Add(lookback)),
	})
}

// betterOffer looks for the cheapest offer of product that is still valid at
// at and cheaper than price. Prices in different currencies are never
// compared.
func betterOffer(rs []Reason, st *contact.State, product string, price contact.Money, at, now time.Time, validity time.Duration) []Reason {
	var best *contact.Event
	var bestExpiry time.Time
	for i := range st.Offers {
		e := &st.Offers[i]
		o := e.Offer
		if o == nil || o.Price == nil || e.Product != product {
			continue
		}
		if cheaper, comparable := o.Price.Less(price); !cheaper || !comparable {
			continue
		}
		expiry := e.OfferExpiry(validity)
		if !expiry.After(at) {
			continue
		}
		if best == nil || o.Price.Minor < best.Offer.Price.Minor || (o.Price.Minor == best.Offer.Price.Minor && contact.Supersedes(e, best)) {
			best, bestExpiry = e, expiry
		}
	}
	if best == nil {
		return rs
	}
	evidence := *best.Offer // not shared with the caller's state
	return add(rs, Reason{
		Code: CodeBetterOffer, Message: offerMessage(best, now, bestExpiry),
		EventID: best.ID, At: timePtr(best.At), Agent: best.Agent, Team: best.Team, Channel: best.Channel,
		Campaign: best.Campaign, Product: best.Product, Offer: &evidence, ExpiresAt: timePtr(bestExpiry),
	})
}
