package dedupe

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outreach/outreach/contact"
)

// Reason codes, the Code of a [Reason]. [Decide] returns its reasons in the
// order listed here, and in a stable order within one code.
const (
	CodeOptedOut         = "opted_out"         // the customer opted out of the channel
	CodeDoNotCall        = "do_not_call"       // a suppression list names the customer; one reason per hit
	CodeClaimed          = "claimed"           // another agent holds an active claim
	CodeOpenComplaint    = "open_complaint"    // a complaint is open; a warning for purposes it does not block
	CodeQuietHours       = "quiet_hours"       // it is night for the customer
	CodeRecentContact    = "recent_contact"    // contacted on the same channel within its cooldown
	CodeFrequencyCap     = "frequency_cap"     // too many outbound contacts in the rolling window
	CodeAlreadyPurchased = "already_purchased" // bought the product within the lookback
	CodeBetterOffer      = "better_offer"      // a cheaper offer for the product is still valid
	CodeUnavailable      = "unavailable"       // the facts could not be read; see [Unavailable]
)

// DefaultPurpose is the purpose of a request that names none.
const DefaultPurpose = "sales"

// Request asks whether a customer may be contacted. Call Normalize before
// passing it to [Decide].
type Request struct {
	CustomerID string          `json:"customer_id"`
	Channel    contact.Channel `json:"channel"`
	Purpose    string          `json:"purpose,omitempty"` // default DefaultPurpose
	Campaign   string          `json:"campaign,omitempty"`
	Agent      string          `json:"agent,omitempty"`
	Product    string          `json:"product,omitempty"`
	Offer      *contact.Offer  `json:"offer,omitempty"`    // Offer.Price is the price being offered now
	Phone      string          `json:"phone,omitempty"`    // for suppression lists keyed by number
	Timezone   string          `json:"timezone,omitempty"` // IANA name; overrides the customer's profile
	At         time.Time       `json:"at,omitzero"`        // when the contact would happen; default now
	Claim      bool            `json:"claim,omitempty"`    // claim the customer if allowed, for Policy.ClaimTTL
}

// Normalize fills the defaults (Purpose, and At from now) and validates r.
// It returns a contact.EInvalid *contact.Error naming the JSON field at
// fault, the first one found.
func (r *Request) Normalize(now time.Time) error {
	if err := contact.ValidCustomerID(r.CustomerID); err != nil {
		return err
	}
	if r.Channel == "" {
		return contact.Invalid("channel", "is required")
	}
	if err := contact.ValidChannel("channel", r.Channel); err != nil {
		return err
	}
	if r.Purpose == "" {
		r.Purpose = DefaultPurpose
	} else if !slices.Contains(contact.Purposes, r.Purpose) {
		return contact.Invalid("purpose", "must be one of %s; got %q", strings.Join(contact.Purposes, ", "), contact.Clip(r.Purpose))
	}
	for _, f := range [...]struct{ name, value string }{
		{"campaign", r.Campaign}, {"agent", r.Agent}, {"product", r.Product}, {"phone", r.Phone},
	} {
		if err := contact.ValidText(f.name, f.value); err != nil {
			return err
		}
	}
	if r.Offer != nil {
		if err := r.Offer.Validate(); err != nil {
			return err
		}
	}
	if r.Timezone != "" {
		if _, err := loadLocation(r.Timezone); err != nil {
			return contact.Invalid("timezone", "must be an IANA time zone such as Europe/Berlin; got %q", contact.Clip(r.Timezone))
		}
	}
	if r.At.IsZero() {
		r.At = now
	}
	return nil
}

// locations caches time.LoadLocation, which reads and parses a file. Only
// successes are kept, so the cache is bounded by the time zone database.
var locations sync.Map // string → *time.Location

// loadLocation loads an IANA time zone. Unlike time.LoadLocation it refuses
// "" and "Local", whose meaning depends on the server.
func loadLocation(name string) (*time.Location, error) {
	if v, ok := locations.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errBadZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}

var errBadZone = errors.New("dedupe: not an IANA time zone")

// Claim is an active claim on a customer: the agent that holds it may contact
// the customer until ExpiresAt, and no one else may.
type Claim struct {
	Token     string    `json:"token,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Campaign  string    `json:"campaign,omitempty"`
	ExpiresAt time.Time `json:"expires_at"` // zero: until released
}

// Suppression is one hit of the customer on a suppression (do-not-call) list.
type Suppression struct {
	List       string     `json:"list"`
	Reason     string     `json:"reason,omitempty"`
	CustomerID string     `json:"customer_id,omitempty"`
	Phone      string     `json:"phone,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"` // nil: never
}

// Facts is everything the store read about one customer for one decision.
// The store reads History as far back as the Policy's ContactWindow,
// PurchaseLookback and OfferWindow say; older events may be present and are
// judged by their times like any other.
type Facts struct {
	History      contact.History
	Claim        *Claim        // the active claim on the customer, nil if none
	Suppressions []Suppression // hits on suppression lists
	Timezone     string        // IANA name from the customer's profile, "" if unknown
}

// Reason is one finding against a contact, with its evidence. The evidence
// fields that do not apply are empty and left out of the JSON.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"` // a sentence an agent can read aloud
	// Warning marks a finding that does not block the contact.
	Warning bool `json:"warning,omitempty"`

	EventID  string          `json:"event_id,omitempty"`
	At       *time.Time      `json:"at,omitempty"` // when the evidence event happened
	Agent    string          `json:"agent,omitempty"`
	Team     string          `json:"team,omitempty"`
	Channel  contact.Channel `json:"channel,omitempty"`
	Campaign string          `json:"campaign,omitempty"`
	Product  string          `json:"product,omitempty"`
	Offer    *contact.Offer  `json:"offer,omitempty"`
	CaseID   string          `json:"case_id,omitempty"`
	Owner    string          `json:"owner,omitempty"`
	List     string          `json:"list,omitempty"`
	// ExpiresAt is when this reason lapses by itself: a claim's or a
	// suppression's expiry, the end of a cooldown, of quiet hours, of the
	// purchase lookback, or of the cheaper offer's validity.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Count     int        `json:"count,omitempty"` // frequency_cap: contacts in the window
}

// Decision is the answer to a [Request]. Allowed is true when no reason
// blocks; Reasons holds the blocking reasons and the warnings, never nil.
type Decision struct {
	Allowed bool     `json:"allowed"`
	Reasons []Reason `json:"reasons"`
}

// Result is the answer to one check: the decision and, when the request
// asked for a claim and was allowed, the claim it now holds.
type Result struct {
	CustomerID string `json:"customer_id"`
	Decision
	Claim *Claim `json:"claim"`
}

// Decide applies p (not nil) to req, a normalized request, and to the facts
// f read for its customer (nil: none were found). The time of the contact is
// req.At, and events after it are ignored, so req.At may be in the past or
// the future; a zero At means now, as in Normalize.
//
// Decide never fails: every reason against the contact is in the Decision. It
// is safe for concurrent use, and formats messages only for the reasons it
// returns.
func Decide(p *Policy, req *Request, f *Facts) Decision {
	if f == nil {
		f = &Facts{}
	}
	at := req.At
	if at.IsZero() {
		at = time.Now()
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = DefaultPurpose
	}
	r := p.rulesFor(req.Campaign)
	exempt := r.exempt[purpose]
	h := &f.History
	var rs []Reason

	// No purpose is exempt from the first three.
	rs = optedOut(rs, h.Opts, req.Channel, at)
	rs = suppressed(rs, f.Suppressions, at)
	rs = claimed(rs, f.Claim, at)
	// A purpose Normalize would refuse is blocked too: doubt resolves
	// towards not calling.
	complaintWarns := !p.complaintBlocks[purpose] && slices.Contains(contact.Purposes, purpose)
	rs = openComplaints(rs, h.Complaints, at, complaintWarns)
	if !exempt.has(exQuietHours) {
		rs = quietHours(rs, r.quiet[req.Channel], req.Timezone, f.Timezone, at)
	}
	cooldown := r.cooldown[req.Channel]
	if exempt.has(exRecentContact) {
		cooldown = 0
	}
	capMax := r.capMax
	if exempt.has(exFrequencyCap) {
		capMax = 0
	}
	rs = recentContacts(rs, h.Contacts, req.Channel, at, cooldown, capMax, r.capWindow)
	if req.Product != "" && p.purchaseLookback > 0 && !exempt.has(exAlreadyPurchased) {
		rs = purchased(rs, h.Purchases, req.Product, at, p.purchaseLookback)
	}
	if req.Product != "" && req.Offer != nil && req.Offer.Price != nil && !exempt.has(exBetterOffer) {
		rs = betterOffer(rs, h, req.Product, req.Offer, at, p.offerValidity)
	}

	d := Decision{Allowed: true, Reasons: rs}
	if d.Reasons == nil {
		d.Reasons = []Reason{}
	}
	for i := range rs {
		if !rs[i].Warning {
			d.Allowed = false
			break
		}
	}
	return d
}

// Unavailable is the decision when the facts cannot be read. It allows the
// contact only if the policy fails open, and then as a warning.
func Unavailable(p *Policy) Decision {
	open := p.FailOpen()
	msg := "the contact history could not be read, so the contact is blocked to be safe"
	if open {
		msg = "the contact history could not be read, so the contact was not checked"
	}
	return Decision{Allowed: open, Reasons: []Reason{{Code: CodeUnavailable, Message: msg, Warning: open}}}
}

// add appends r to rs. Decisions that block usually have several reasons,
// so the first one makes room for a few.
func add(rs []Reason, r Reason) []Reason {
	if rs == nil {
		rs = make([]Reason, 0, 4)
	}
	return append(rs, r)
}

// upTo returns the events at or before t. It returns events itself, without
// copying, when none is later, which is the usual case.
func upTo(events []contact.Event, t time.Time) []contact.Event {
	for i := range events {
		if events[i].At.After(t) {
			out := make([]contact.Event, 0, len(events)-1)
			for _, e := range events {
				if !e.At.After(t) {
					out = append(out, e)
				}
			}
			return out
		}
	}
	return events
}

// newer reports whether a is later than b (or b is nil), breaking ties on ID
// as contact.SortNewestFirst does.
func newer(a, b *contact.Event) bool {
	return b == nil || a.At.After(b.At) || (a.At.Equal(b.At) && a.ID > b.ID)
}

func timePtr(t time.Time) *time.Time { return &t }

func optedOut(rs []Reason, opts []contact.Event, ch contact.Channel, at time.Time) []Reason {
	e, ok := contact.OptOutInForce(upTo(opts, at), ch)
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

func claimed(rs []Reason, c *Claim, at time.Time) []Reason {
	if c == nil || (!c.ExpiresAt.IsZero() && !c.ExpiresAt.After(at)) {
		return rs
	}
	// A claim is exclusive, even against the agent that holds it: a second
	// dialer session of one agent must not call too. The holder has its
	// token and needs no second check.
	r := Reason{Code: CodeClaimed, Message: claimMessage(c, at), Agent: c.Agent, Campaign: c.Campaign}
	if !c.ExpiresAt.IsZero() {
		r.ExpiresAt = timePtr(c.ExpiresAt)
	}
	return add(rs, r)
}

func openComplaints(rs []Reason, complaints []contact.Event, at time.Time, warning bool) []Reason {
	if len(complaints) == 0 {
		return rs
	}
	open := contact.OpenComplaints(upTo(complaints, at))
	slices.SortFunc(open, func(a, b contact.Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.CaseID, b.CaseID)
	})
	for i := range open {
		e := &open[i]
		rs = add(rs, Reason{
			Code: CodeOpenComplaint, Message: complaintMessage(e, at), Warning: warning,
			EventID: e.ID, At: timePtr(e.At), CaseID: e.CaseID, Owner: e.Owner, Channel: e.Channel, Product: e.Product,
		})
	}
	return rs
}

func quietHours(rs []Reason, w window, reqZone, profileZone string, at time.Time) []Reason {
	if w.empty() {
		return rs
	}
	zone := reqZone
	if zone == "" {
		zone = profileZone
	}
	if zone == "" {
		return rs // the customer's local time is unknown
	}
	loc, err := loadLocation(zone)
	if err != nil {
		// Only the profile can hold a bad zone: Normalize checks the request's.
		return add(rs, Reason{Code: CodeQuietHours, Warning: true,
			Message: "the customer's time zone " + quote(zone) + " is unknown, so quiet hours were not checked"})
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
		Code:      CodeQuietHours,
		Message:   "it is " + local.Format("15:04") + " for the customer (" + zone + "), inside quiet hours " + clock(w.start) + "–" + clock(w.end),
		ExpiresAt: timePtr(end.UTC()),
	})
}

// recentContacts applies recent_contact and frequency_cap in one pass; a
// cooldown or capMax of 0 turns its rule off.
func recentContacts(rs []Reason, contacts []contact.Event, ch contact.Channel, at time.Time, cooldown time.Duration, capMax int, capWindow time.Duration) []Reason {
	if cooldown <= 0 && capMax <= 0 {
		return rs
	}
	var recent, latest *contact.Event
	count := 0
	for i := range contacts {
		e := &contacts[i]
		if !e.IsOutboundContact() || e.At.After(at) {
			continue
		}
		age := at.Sub(e.At)
		if age < cooldown && e.Channel == ch && newer(e, recent) {
			recent = e
		}
		if capMax > 0 && age < capWindow {
			count++
			if newer(e, latest) {
				latest = e
			}
		}
	}
	if recent != nil {
		rs = add(rs, contactReason(CodeRecentContact, recent, at, contactMessage(recent, at), recent.At.Add(cooldown)))
	}
	if capMax > 0 && count >= capMax {
		// The cap lifts when the capMax-th newest contact leaves the window.
		times := make([]time.Time, 0, count)
		for i := range contacts {
			e := &contacts[i]
			if e.IsOutboundContact() && !e.At.After(at) && at.Sub(e.At) < capWindow {
				times = append(times, e.At)
			}
		}
		slices.SortFunc(times, func(a, b time.Time) int { return b.Compare(a) })
		r := contactReason(CodeFrequencyCap, latest, at, capMessage(count, capMax, capWindow, latest, at), times[capMax-1].Add(capWindow))
		r.Count = count
		rs = add(rs, r)
	}
	return rs
}

func contactReason(code string, e *contact.Event, at time.Time, msg string, lifts time.Time) Reason {
	return Reason{
		Code: code, Message: msg,
		EventID: e.ID, At: timePtr(e.At), Agent: e.Agent, Team: e.Team, Channel: e.Channel,
		Campaign: e.Campaign, Product: e.Product, ExpiresAt: timePtr(lifts),
	}
}

func purchased(rs []Reason, purchases []contact.Event, product string, at time.Time, lookback time.Duration) []Reason {
	// contact.LatestPurchases would build a map of every product; one is asked.
	var last *contact.Event
	for i := range purchases {
		e := &purchases[i]
		if e.Product == product && !e.At.After(at) && at.Sub(e.At) < lookback && newer(e, last) {
			last = e
		}
	}
	if last == nil {
		return rs
	}
	return add(rs, Reason{
		Code: CodeAlreadyPurchased, Message: purchaseMessage(last),
		EventID: last.ID, At: timePtr(last.At), Agent: last.Agent, Team: last.Team, Channel: last.Channel,
		Campaign: last.Campaign, Product: last.Product, ExpiresAt: timePtr(last.At.Add(lookback)),
	})
}

// betterOffer looks for the cheapest offer of product, still valid at at and
// cheaper than offer, in History.Offers and in any contact that carries an
// offer. Prices in different currencies are not compared.
func betterOffer(rs []Reason, h *contact.History, product string, offer *contact.Offer, at time.Time, validity time.Duration) []Reason {
	price := *offer.Price
	var best *contact.Event
	var bestExpiry time.Time
	for _, list := range [...][]contact.Event{h.Offers, h.Contacts} {
		for i := range list {
			e := &list[i]
			o := e.Offer
			if o == nil || o.Price == nil || e.Product != product || e.At.After(at) || *o.Price >= price {
				continue
			}
			if o.Currency != "" && offer.Currency != "" && o.Currency != offer.Currency {
				continue
			}
			expiry := e.At.Add(validity)
			if o.ExpiresAt != nil {
				expiry = *o.ExpiresAt
			}
			if !expiry.After(at) {
				continue
			}
			if best == nil || *o.Price < *best.Offer.Price || (*o.Price == *best.Offer.Price && newer(e, best)) {
				best, bestExpiry = e, expiry
			}
		}
	}
	if best == nil {
		return rs
	}
	evidence := *best.Offer // not shared with the caller's History
	return add(rs, Reason{
		Code: CodeBetterOffer, Message: offerMessage(best, at, bestExpiry),
		EventID: best.ID, At: timePtr(best.At), Agent: best.Agent, Team: best.Team, Channel: best.Channel,
		Campaign: best.Campaign, Product: best.Product, Offer: &evidence, ExpiresAt: timePtr(bestExpiry),
	})
}
