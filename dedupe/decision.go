package dedupe

import (
	"slices"
	"strings"
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
	CodeFollowUpDue      = "followup_due"      // a warning to the owner of an open complaint whose follow-up is due
	CodeQuietHours       = "quiet_hours"       // it is night for the customer
	CodeRecentContact    = "recent_contact"    // contacted on the same channel within its cooldown
	CodeFrequencyCap     = "frequency_cap"     // too many outbound contacts in the rolling window
	CodeAlreadyPurchased = "already_purchased" // bought the product within the lookback
	CodeBetterOffer      = "better_offer"      // a cheaper offer for the product is still valid
	CodeUnavailable      = "unavailable"       // the facts could not be read; see [Unavailable]
)

// DefaultPurpose is the purpose of a request that names none.
const DefaultPurpose = "sales"

// ClockSkew is how far apart clocks may be. A check whose at lies within it
// of the server's clock is a check for now; an event stamped within it after
// the server's clock counts as made now.
const ClockSkew = 2 * time.Minute

// Request asks whether a customer may be contacted. Call Normalize before
// passing it to [Decide].
type Request struct {
	CustomerID string          `json:"customer_id"`
	Channel    contact.Channel `json:"channel"`
	Purpose    string          `json:"purpose,omitempty"` // default DefaultPurpose
	Campaign   string          `json:"campaign,omitempty"`
	Team       string          `json:"team,omitempty"` // the team of the agent or dialer; for the audit trail
	Agent      string          `json:"agent,omitempty"`
	Product    string          `json:"product,omitempty"`
	Offer      *contact.Offer  `json:"offer,omitempty"`    // Offer.Price is the price being offered now
	Phone      string          `json:"phone,omitempty"`    // for suppression lists and the customer's time zone; E.164 once normalized
	Timezone   string          `json:"timezone,omitempty"` // IANA name; overrides the customer's profile
	// At is when the contact would happen: now (the default), or a planned
	// time to come. It is never in the past: every fact recorded up to now
	// counts, whatever its own time.
	At    time.Time `json:"at,omitzero"`
	Claim bool      `json:"claim,omitempty"` // claim the customer if allowed, for Policy.ClaimTTL
}

// Normalize fills the defaults (Purpose, At, the offer's currency from d),
// reads Phone into E.164 form and validates r. An At within ClockSkew of now
// becomes now; an At before that is refused, and so is a claim with an At
// after it (a planned check takes no claim). It returns a contact.EInvalid
// *contact.Error naming the JSON field at fault, the first one found.
func (r *Request) Normalize(now time.Time, d contact.Defaults) error {
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
		{"campaign", r.Campaign}, {"team", r.Team}, {"agent", r.Agent}, {"product", r.Product}, {"phone", r.Phone},
	} {
		if err := contact.ValidText(f.name, f.value); err != nil {
			return err
		}
	}
	if r.Offer != nil {
		if err := r.Offer.Normalize(d); err != nil {
			return err
		}
	}
	if r.Phone != "" {
		p, err := d.NormalizePhone("phone", r.Phone)
		if err != nil {
			return err
		}
		r.Phone = p
	}
	if r.Timezone != "" {
		if _, err := contact.LoadZone(r.Timezone); err != nil {
			return contact.Invalid("timezone", "must be an IANA time zone such as Europe/Berlin; got %q", contact.Clip(r.Timezone))
		}
	}
	return r.normalizeAt(now.UTC().Truncate(time.Millisecond))
}

func (r *Request) normalizeAt(now time.Time) error {
	switch {
	case r.At.IsZero():
		r.At = now
	case r.At.Before(now.Add(-ClockSkew)):
		return contact.Invalid("at", "must not be in the past: a check answers for now, or for a planned time to come; got %s, the server's time is %s",
			r.At.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	case !r.At.After(now.Add(ClockSkew)):
		r.At = now
	case r.Claim:
		return contact.Invalid("at", "must be now (within %s of the server's time) for a check that claims: a planned check takes no claim", ClockSkew)
	}
	return nil
}

// Planned reports whether r, normalized at now, is a check for a time to
// come rather than now.
func (r *Request) Planned(now time.Time) bool { return r.At.After(now.Add(ClockSkew)) }

// Claim is an active claim on a customer; see contact.Claim.
type Claim = contact.Claim

// Suppression is a hit on a suppression list; see contact.Suppression.
type Suppression = contact.Suppression

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
	DueAt     *time.Time `json:"due_at,omitempty"`   // followup_due: since when the follow-up is due
	Count     int        `json:"count,omitempty"`    // frequency_cap: contacts in the window
	Timezone  string     `json:"timezone,omitempty"` // quiet_hours: the customer's time zone
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
// f read for its customer (nil: none were found), at the server's time now.
// The contact happens at req.At: now, or a planned time to come. Every fact
// counts, whatever its own time; one stamped a little after now counts as
// made now.
//
// Decide never fails: every reason against the contact is in the Decision. It
// is safe for concurrent use, and formats messages only for the reasons it
// returns. f.Err must be nil: a check whose facts could not be read is
// answered with [Unavailable].
func Decide(p *Policy, req *Request, f *contact.Facts, now time.Time) Decision {
	if f == nil {
		f = &contact.Facts{}
	}
	at := req.At
	if at.Before(now) {
		at = now
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = DefaultPurpose
	}
	r := p.rulesFor(req.Campaign)
	exempt := r.exempt[purpose]
	st := &f.State
	var rs []Reason

	// No purpose is exempt from the first three.
	rs = optedOut(rs, st, req.Channel)
	rs = suppressed(rs, f.Suppressions, at)
	rs = claimed(rs, f.Claim, at, now)
	// A purpose Normalize would refuse is blocked too: doubt resolves
	// towards not calling.
	complaintWarns := !p.complaintBlocks[purpose] && slices.Contains(contact.Purposes, purpose)
	rs = openComplaints(rs, st, now, complaintWarns)
	if req.Agent != "" && slices.Contains(contact.FollowUpPurposes, purpose) {
		rs = followUpDue(rs, p, f.FollowUps, req.Agent, now)
	}
	if !exempt.has(exQuietHours) {
		rs = quietHours(rs, r.quiet[req.Channel], customerZone(req, st), at)
	}
	cooldown := r.cooldown[req.Channel]
	if exempt.has(exRecentContact) {
		cooldown = 0
	}
	rs = recentContact(rs, st, req.Channel, at, now, cooldown)
	if !exempt.has(exFrequencyCap) {
		rs = frequencyCap(rs, st, at, now, r.capMax, r.capWindow)
	}
	if req.Product != "" && p.purchaseLookback > 0 && !exempt.has(exAlreadyPurchased) {
		rs = purchased(rs, st, req.Product, at, p.purchaseLookback)
	}
	if req.Product != "" && req.Offer != nil && req.Offer.Price != nil && !exempt.has(exBetterOffer) {
		rs = betterOffer(rs, st, req.Product, *req.Offer.Price, at, now, p.offerValidity)
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

// StoreReset is the decision when the store has lost the facts (Redis came
// back empty): Unavailable, with a reason that says why, as it lasts until
// the store is rebuilt or an operator accepts the loss.
func StoreReset(p *Policy) Decision {
	d := Unavailable(p)
	d.Reasons[0].Message = "the store was reset and has lost the contact history until it is rebuilt, so the contact is blocked to be safe"
	if d.Allowed {
		d.Reasons[0].Message = "the store was reset and has lost the contact history until it is rebuilt, so the contact was not checked"
	}
	return d
}
