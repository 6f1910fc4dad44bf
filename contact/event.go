// Package contact holds the outreach domain: the events that make up a
// customer's timeline, their validation, and the customer state derived from
// them. It does no I/O.
package contact

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/outreach/outreach/contact/phone"
)

// Type is the kind of an event.
type Type string

const (
	TypeContact   Type = "contact"
	TypePurchase  Type = "purchase"
	TypeComplaint Type = "complaint"
	TypeOptOut    Type = "opt_out"
	TypeOptIn     Type = "opt_in"
	TypeProfile   Type = "profile" // the customer's own time zone and phone numbers
	// TypeForget erases the customer: their history and state, but for
	// the bare facts that stop contact (see Erase). Events dated up to it
	// are dropped from then on, so that a replay cannot bring them back.
	TypeForget Type = "forget"
)

// Types lists every event type, in a stable order.
var Types = []Type{TypeContact, TypePurchase, TypeComplaint, TypeOptOut, TypeOptIn, TypeProfile, TypeForget}

// Channel is the medium of a contact.
type Channel string

const (
	Call  Channel = "call"
	SMS   Channel = "sms"
	Email Channel = "email"
	Mail  Channel = "mail"
	Visit Channel = "visit"
	Chat  Channel = "chat"
)

// Channels lists every channel, in a stable order.
var Channels = []Channel{Call, SMS, Email, Mail, Visit, Chat}

// Direction says who started a contact.
type Direction string

const (
	Outbound Direction = "outbound"
	Inbound  Direction = "inbound"
)

// Purposes lists what a contact can be about.
var Purposes = []string{"sales", "service", "recovery", "collections", "survey", "info"}

// Outcomes lists how a contact can end.
var Outcomes = []string{"connected", "voicemail", "no_answer", "busy", "sent", "delivered",
	"bounced", "refused", "sale", "complaint", "callback_requested"}

// Complaint statuses.
const (
	ComplaintOpened   = "opened"
	ComplaintResolved = "resolved"
)

// Limits on event fields, so that one event cannot take unbounded memory.
const (
	MaxIDLen       = 128 // customer_id, in characters
	MaxTextLen     = 256 // agent, team, campaign, product, other ids
	MaxPhones      = 10  // phone numbers of a profile
	maxEventIDLen  = 256
	maxTextLen     = MaxTextLen
	maxLongTextLen = 2000 // summary, reason
)

// Offer is a priced proposal made during a contact, or the offer a check
// asks about.
type Offer struct {
	ID        string
	Price     *Money     // nil: no price
	ExpiresAt *time.Time // nil: valid for the policy's offer_validity

	raw *rawPrice // read from JSON, until Normalize converts it
}

// Event is one entry of a customer's timeline: a contact, a purchase, a
// complaint, an opt-out/opt-in or a profile. Fields that do not apply to its
// Type are left empty. Its JSON form (json.go) is the wire format on Kafka
// and in the API. Times have millisecond precision.
type Event struct {
	ID         string    `json:"id"`
	Type       Type      `json:"type"`
	CustomerID string    `json:"customer_id"`
	At         time.Time `json:"at"`

	Channel   Channel   `json:"channel,omitempty"`
	Direction Direction `json:"direction,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Team      string    `json:"team,omitempty"`
	Campaign  string    `json:"campaign,omitempty"`
	Purpose   string    `json:"purpose,omitempty"`
	Product   string    `json:"product,omitempty"`
	Offer     *Offer    `json:"offer,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Claim     string    `json:"claim,omitempty"`

	Price   *Money `json:"-"` // a purchase's price; "price" and "currency" in JSON
	OrderID string `json:"order_id,omitempty"`

	CaseID  string `json:"case_id,omitempty"`
	Status  string `json:"status,omitempty"`
	Summary string `json:"summary,omitempty"`
	Owner   string `json:"owner,omitempty"`

	Reason string `json:"reason,omitempty"`

	Timezone string   `json:"timezone,omitempty"` // a profile's IANA time zone
	Phones   []string `json:"phones,omitempty"`   // a profile's numbers, in E.164 form once normalized

	raw *rawPrice // read from JSON, until Normalize converts it
}

// Defaults are the deployment's settings that events and requests are read
// with. A zero Defaults consists entirely of default values.
type Defaults struct {
	// Currency of prices written without one; "" means DefaultCurrency.
	Currency string
	// Phones reads phone numbers; nil reads them in phone.DefaultRegion.
	Phones *phone.Parser
}

func (d Defaults) currency() string {
	if d.Currency == "" {
		return DefaultCurrency
	}
	return d.Currency
}

func (d Defaults) phones() *phone.Parser {
	if d.Phones == nil {
		return defaultPhones()
	}
	return d.Phones
}

var defaultPhones = sync.OnceValue(func() *phone.Parser {
	p, _ := phone.NewParser(phone.DefaultRegion)
	return p
})

// NormalizePhone returns raw in E.164 form, read with d's parser; EInvalid
// naming field when raw is not a phone number.
func (d Defaults) NormalizePhone(field, raw string) (string, error) {
	p, err := d.phones().Normalize(raw)
	if err != nil {
		return "", Invalid(field, "%s", err.Error())
	}
	return p, nil
}

// IsOutboundContact reports whether e is a contact that the company started.
func (e *Event) IsOutboundContact() bool {
	return e.Type == TypeContact && e.Direction != Inbound
}

// Decode parses one JSON event, normalises it with d and validates it. The
// error is an EInvalid *Error naming the field at fault. Unknown fields are
// ignored.
func Decode(data []byte, d Defaults) (Event, error) {
	// UnmarshalJSON's json.Unmarshal rejects malformed and trailing data;
	// calling it directly spares json.Unmarshal's own scans of the input.
	if err := ValidJSONText(data); err != nil {
		return Event{}, err
	}
	var e Event
	if err := e.UnmarshalJSON(data); err != nil {
		return Event{}, JSONError(err)
	}
	if err := e.Normalize(d); err != nil {
		return Event{}, err
	}
	return e, nil
}

// JSONError turns a JSON decoding error into an EInvalid *Error naming the
// field at fault. Field paths lose the "plain." of the embedded struct that
// UnmarshalJSON methods here decode through.
func JSONError(err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// The field path starts with the embedded struct of UnmarshalJSON.
		return Invalid(strings.TrimPrefix(te.Field, "plain."), "must be a JSON %s", te.Type.Kind())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Invalid("", "malformed JSON at byte %d", se.Offset)
	}
	return Invalid("", "malformed JSON: %v", err)
}

// ParseTime parses an RFC 3339 time; field names it in the error. The time
// is returned in UTC, truncated to the millisecond.
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Invalid(field, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z; got %q", Clip(s))
	}
	if err := CheckTime(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// Normalize fills defaults from d, converts times to UTC milliseconds and
// validates e. It returns an EInvalid *Error naming the first field at fault.
func (e *Event) Normalize(d Defaults) error {
	if err := text("id", e.ID, maxEventIDLen, true); err != nil {
		return err
	}
	if e.Type == "" {
		return Invalid("type", "is required")
	}
	if !slices.Contains(Types, e.Type) {
		return Invalid("type", "must be one of contact, purchase, complaint, opt_out, opt_in, profile, forget; got %q", Clip(string(e.Type)))
	}
	if err := ValidCustomerID(e.CustomerID); err != nil {
		return err
	}
	if e.At.IsZero() {
		return Invalid("at", "is required")
	}
	e.At = e.At.UTC().Truncate(time.Millisecond)
	if err := CheckTime("at", e.At); err != nil {
		return err
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"agent", e.Agent, maxTextLen}, {"team", e.Team, maxTextLen}, {"campaign", e.Campaign, maxTextLen},
		{"product", e.Product, maxTextLen}, {"claim", e.Claim, maxTextLen}, {"order_id", e.OrderID, maxTextLen},
		{"case_id", e.CaseID, maxTextLen}, {"owner", e.Owner, maxTextLen},
		{"summary", e.Summary, maxLongTextLen}, {"reason", e.Reason, maxLongTextLen},
	} {
		if err := text(f.name, f.value, f.max, false); err != nil {
			return err
		}
	}
	if e.raw != nil {
		price, err := e.raw.money("price", "currency", d)
		if err != nil {
			return err
		}
		e.Price, e.raw = price, nil
	}
	if e.Offer != nil {
		if err := e.Offer.Normalize(d); err != nil {
			return err
		}
	}
	if e.Type != TypeProfile && (e.Timezone != "" || len(e.Phones) > 0) {
		return Invalid("timezone", "belongs to a profile event only")
	}
	if err := e.validEnums(); err != nil {
		return err
	}
	return e.normalizeType(d)
}

// validEnums checks the enumerated fields that e gives, whatever its type:
// the store keeps them as indexes into their lists, so a value outside its
// list would be stored undecodable, and the customer's checks would fail
// closed on it from then on.
func (e *Event) validEnums() error {
	if e.Channel != "" {
		if err := ValidChannel("channel", e.Channel); err != nil {
			return err
		}
	}
	if e.Direction != "" && e.Direction != Outbound && e.Direction != Inbound {
		return Invalid("direction", "must be outbound or inbound; got %q", Clip(string(e.Direction)))
	}
	if e.Purpose != "" && !slices.Contains(Purposes, e.Purpose) {
		return Invalid("purpose", "must be one of %s; got %q", strings.Join(Purposes, ", "), Clip(e.Purpose))
	}
	if e.Outcome != "" && !slices.Contains(Outcomes, e.Outcome) {
		return Invalid("outcome", "must be one of %s; got %q", strings.Join(Outcomes, ", "), Clip(e.Outcome))
	}
	return nil
}

// normalizeType checks the fields that depend on e's type.
func (e *Event) normalizeType(d Defaults) error {
	switch e.Type {
	case TypeContact:
		if e.Channel == "" {
			return Invalid("channel", "is required for a contact")
		}
		if e.Direction == "" {
			e.Direction = Outbound
		}
	case TypePurchase:
		if e.Product == "" {
			return Invalid("product", "is required for a purchase")
		}
	case TypeComplaint:
		if e.CaseID == "" {
			return Invalid("case_id", "is required for a complaint")
		}
		switch e.Status {
		case "":
			e.Status = ComplaintOpened
		case ComplaintOpened, ComplaintResolved:
		default:
			return Invalid("status", "must be opened or resolved; got %q", Clip(e.Status))
		}
	case TypeProfile:
		return e.normalizeProfile(d)
	}
	return nil
}

func (e *Event) normalizeProfile(d Defaults) error {
	if e.Timezone == "" && len(e.Phones) == 0 {
		return Invalid("timezone", "a profile needs a timezone or phones")
	}
	if e.Timezone != "" {
		if _, err := LoadZone(e.Timezone); err != nil {
			return Invalid("timezone", "must be an IANA time zone such as Europe/Oslo; got %q", Clip(e.Timezone))
		}
	}
	if len(e.Phones) > MaxPhones {
		return Invalid("phones", "must hold at most %d numbers; got %d", MaxPhones, len(e.Phones))
	}
	for i, raw := range e.Phones {
		p, err := d.NormalizePhone("phones["+strconv.Itoa(i)+"]", raw)
		if err != nil {
			return err
		}
		e.Phones[i] = p
	}
	return nil
}

// Normalize fills the currency of the offer's price from d, truncates its
// expiry to the millisecond and validates it; errors name "offer.FIELD".
func (o *Offer) Normalize(d Defaults) error {
	if err := text("offer.id", o.ID, maxTextLen, false); err != nil {
		return err
	}
	if o.raw != nil {
		price, err := o.raw.money("offer.price", "offer.currency", d)
		if err != nil {
			return err
		}
		o.Price, o.raw = price, nil
	}
	if o.ExpiresAt != nil {
		if err := CheckTime("offer.expires_at", *o.ExpiresAt); err != nil {
			return err
		}
		t := o.ExpiresAt.UTC().Truncate(time.Millisecond)
		o.ExpiresAt = &t
	}
	return nil
}

// ValidText checks an optional free-text field: valid UTF-8, no control
// characters, at most MaxTextLen characters.
func ValidText(field, s string) error { return text(field, s, maxTextLen, false) }

// ValidCustomerID checks a customer id: 1 to MaxIDLen printable characters.
func ValidCustomerID(id string) error {
	if id == "" {
		return Invalid("customer_id", "is required")
	}
	return text("customer_id", id, MaxIDLen, true)
}

// ValidChannel checks that c is a known channel; field names it in the error.
func ValidChannel(field string, c Channel) error {
	if slices.Contains(Channels, c) {
		return nil
	}
	return Invalid(field, "must be one of call, sms, email, mail, visit, chat; got %q", Clip(string(c)))
}

// text checks a free-text field: valid UTF-8, no control characters, at most
// max characters, and present when required.
func text(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return Invalid(field, "is required")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid(field, "must be at most %d characters; got %d", max, n)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Invalid(field, "must not contain control characters")
	}
	if required && strings.TrimSpace(s) == "" {
		return Invalid(field, "must not be blank")
	}
	return nil
}

// Clip shortens user input that is echoed back in an error message.
func Clip(s string) string {
	const n = 40
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// String returns a short description of e without personal data, for logs.
func (e *Event) String() string {
	return fmt.Sprintf("%s %s at %s", e.Type, e.ID, e.At.Format(time.RFC3339))
}
