package contact

import (
	"slices"
	"strings"
	"time"
)

// State is the compact state of one customer that a check reads instead of
// the history: every fact that can forbid a contact, and no more. It is kept
// up to date as events arrive, by merge rules that give the same state
// whatever order the events arrive in and however often each arrives.
//
// Binding facts, an opt-out and an open complaint, are kept whatever their
// age: retention may trim the history shown to agents, never them. Outbound
// contact times and offers are kept only as long as Limits say.
type State struct {
	// Consent holds the latest opt_out or opt_in per scope: a channel, or
	// AllChannels for one that names no channel.
	Consent map[Channel]Event
	// Cases holds the latest event of every complaint case, open or
	// resolved; a resolution is kept so that a late copy of the opening
	// cannot open the case again.
	Cases map[string]Event
	// LastContacts holds the latest outbound contact per channel.
	LastContacts map[Channel]Event
	// Purchases holds the latest purchase per product.
	Purchases map[string]Event
	// Profile is the latest profile event; nil if none.
	Profile *Event
	// Recent holds the outbound contacts of the last Limits.Recent, at most
	// Limits.RecentMax of them, newest first.
	Recent []Stamp
	// Offers holds the contacts that made an offer for a product and that
	// may still be valid, at most Limits.OffersMax of them, newest first.
	Offers []Event
}

// AllChannels is the Consent scope of an opt-out or opt-in of every channel.
const AllChannels Channel = ""

// Stamp identifies an event by its time and id.
type Stamp struct {
	At time.Time
	ID string
}

// Limits bound the parts of a State that are not binding. They come from
// the policy: a longer frequency window or offer validity needs the state to
// be rebuilt from the history or a replay.
type Limits struct {
	Recent    time.Duration // how long outbound contact times are kept
	RecentMax int           // how many are kept at most
	Offers    time.Duration // how long an offer without an expiry is kept
	OffersMax int           // how many offers are kept at most
}

// Default limits, for a policy whose longest frequency window and offer
// validity are no longer than these.
const (
	DefaultRecent    = 30 * 24 * time.Hour
	DefaultRecentMax = 100
	DefaultOffers    = 30 * 24 * time.Hour
	DefaultOffersMax = 50
)

// WithDefaults fills the zero fields of l.
func (l Limits) WithDefaults() Limits {
	if l.Recent <= 0 {
		l.Recent = DefaultRecent
	}
	if l.RecentMax <= 0 {
		l.RecentMax = DefaultRecentMax
	}
	if l.Offers <= 0 {
		l.Offers = DefaultOffers
	}
	if l.OffersMax <= 0 {
		l.OffersMax = DefaultOffersMax
	}
	return l
}

// Fact kinds: the slots of a State that hold one event each.
const (
	FactConsent     = 'o' // key: the channel, or "" for every channel
	FactCase        = 'x' // key: the case id
	FactLastContact = 'l' // key: the channel
	FactPurchase    = 'b' // key: the product
	FactProfile     = 'p' // key: ""
)

// Fact names one slot of a State.
type Fact struct {
	Kind byte
	Key  string
}

// Facts returns the slots that e competes for: each holds the event that
// supersedes all others of that slot.
func (e *Event) Facts() []Fact {
	switch e.Type {
	case TypeContact:
		if e.IsOutboundContact() {
			return []Fact{{FactLastContact, string(e.Channel)}}
		}
	case TypePurchase:
		return []Fact{{FactPurchase, e.Product}}
	case TypeComplaint:
		return []Fact{{FactCase, e.CaseID}}
	case TypeOptOut, TypeOptIn:
		return []Fact{{FactConsent, string(e.Channel)}}
	case TypeProfile:
		return []Fact{{FactProfile, ""}}
	}
	return nil
}

// Binding reports whether e, when it holds its slot, is a fact that must
// outlive retention: an opt-out, or the opening of a complaint.
func (e *Event) Binding() bool {
	return e.Type == TypeOptOut || (e.Type == TypeComplaint && e.Status != ComplaintResolved)
}

// Rank orders the events of one slot made at the same instant: an opt-out
// over an opt-in, a resolution over an opening. Doubt about consent resolves
// towards not calling; a case resolved the instant it opened is resolved.
func (e *Event) Rank() int {
	if e.Type == TypeOptOut || (e.Type == TypeComplaint && e.Status == ComplaintResolved) {
		return 1
	}
	return 0
}

// Supersedes reports whether a replaces b in a slot they share: the later
// event by At, then the higher Rank, then the greater ID (byte order). It is
// a strict total order on distinct events, which is what makes merging
// independent of arrival order.
func Supersedes(a, b *Event) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	if ra, rb := a.Rank(), b.Rank(); ra != rb {
		return ra > rb
	}
	return a.ID > b.ID
}

// RecentContact reports whether e counts towards the frequency cap.
func (e *Event) RecentContact() bool { return e.IsOutboundContact() }

// MadeOffer reports whether e is a contact that made an offer for a
// product, which the state keeps until it expires.
func (e *Event) MadeOffer() bool {
	return e.Type == TypeContact && e.Offer != nil && e.Product != ""
}

// OfferExpiry is when the offer e made stops binding: its expires_at, or
// validity after it was made.
func (e *Event) OfferExpiry(validity time.Duration) time.Time {
	if e.Offer != nil && e.Offer.ExpiresAt != nil {
		return *e.Offer.ExpiresAt
	}
	return e.At.Add(validity)
}

// Apply merges e, a normalized event, into s as of now. It is the reference
// model of the merge: a store may implement it another way, but must end in
// the same state.
func (s *State) Apply(e *Event, now time.Time, l Limits) {
	l = l.WithDefaults()
	for _, f := range e.Facts() {
		s.put(f, e)
	}
	if e.RecentContact() && now.Sub(e.At) <= l.Recent {
		st := Stamp{At: e.At, ID: e.ID}
		if !slices.Contains(s.Recent, st) {
			s.Recent = append(s.Recent, st)
		}
		slices.SortFunc(s.Recent, func(a, b Stamp) int { return -compareStamps(a, b) })
		s.Recent = slices.DeleteFunc(s.Recent, func(st Stamp) bool { return now.Sub(st.At) > l.Recent })
		s.Recent = s.Recent[:min(len(s.Recent), l.RecentMax)]
	}
	if e.MadeOffer() && e.OfferExpiry(l.Offers).After(now) {
		if !slices.ContainsFunc(s.Offers, func(o Event) bool { return o.ID == e.ID }) {
			s.Offers = append(s.Offers, *e)
		}
		s.Offers = slices.DeleteFunc(s.Offers, func(o Event) bool { return !o.OfferExpiry(l.Offers).After(now) })
		// Keep the offers that bind longest.
		slices.SortFunc(s.Offers, func(a, b Event) int {
			return -compareStamps(Stamp{a.OfferExpiry(l.Offers), a.ID}, Stamp{b.OfferExpiry(l.Offers), b.ID})
		})
		s.Offers = s.Offers[:min(len(s.Offers), l.OffersMax)]
		SortNewestFirst(s.Offers)
	}
}

func compareStamps(a, b Stamp) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// put stores e in slot f unless the slot holds an event that supersedes it.
func (s *State) put(f Fact, e *Event) {
	var m map[string]Event
	switch f.Kind {
	case FactConsent:
		putIn(&s.Consent, Channel(f.Key), e)
		return
	case FactLastContact:
		putIn(&s.LastContacts, Channel(f.Key), e)
		return
	case FactCase:
		m = s.Cases
	case FactPurchase:
		m = s.Purchases
	case FactProfile:
		if s.Profile == nil || Supersedes(e, s.Profile) {
			p := *e
			s.Profile = &p
		}
		return
	}
	if m == nil {
		m = map[string]Event{}
		if f.Kind == FactCase {
			s.Cases = m
		} else {
			s.Purchases = m
		}
	}
	if cur, ok := m[f.Key]; !ok || Supersedes(e, &cur) {
		m[f.Key] = *e
	}
}

func putIn[K comparable](m *map[K]Event, k K, e *Event) {
	if *m == nil {
		*m = map[K]Event{}
	}
	if cur, ok := (*m)[k]; !ok || Supersedes(e, &cur) {
		(*m)[k] = *e
	}
}

// Put stores e in slot f of s unless the slot holds an event that
// supersedes it; a store uses it to rebuild a State from its slots.
func (s *State) Put(f Fact, e *Event) { s.put(f, e) }

// Empty reports whether s holds nothing.
func (s *State) Empty() bool {
	return len(s.Consent) == 0 && len(s.Cases) == 0 && len(s.LastContacts) == 0 && len(s.Purchases) == 0 &&
		s.Profile == nil && len(s.Recent) == 0 && len(s.Offers) == 0
}

// OptOutInForce returns the opt-out that blocks channel ch: the latest
// consent event for ch or for every channel, if that event is an opt-out.
func (s *State) OptOutInForce(ch Channel) (Event, bool) {
	own, okOwn := s.Consent[ch]
	all, okAll := s.Consent[AllChannels]
	switch {
	case okOwn && okAll:
		if Supersedes(&all, &own) {
			own = all
		}
	case okAll:
		own, okOwn = all, true
	}
	return own, okOwn && own.Type == TypeOptOut
}

// OpenComplaints returns the latest event of every case still open, oldest
// first.
func (s *State) OpenComplaints() []Event {
	var open []Event
	for _, e := range s.Cases {
		if e.Status != ComplaintResolved {
			open = append(open, e)
		}
	}
	slices.SortFunc(open, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.CaseID, b.CaseID)
	})
	return open
}

// SortNewestFirst sorts events by At, newest first, and by ID on a tie so
// that the order is stable across reads.
func SortNewestFirst(events []Event) {
	slices.SortFunc(events, func(a, b Event) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}
