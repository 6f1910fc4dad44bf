// Package contact holds the outreach domain: the events that make up a
// customer's timeline, their validation, and the customer state derived from
// them. It does no I/O.
package contact

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Type is the kind of an event.
type Type string

const (
	TypeContact   Type = "contact"
	TypePurchase  Type = "purchase"
	TypeComplaint Type = "complaint"
	TypeOptOut    Type = "opt_out"
	TypeOptIn     Type = "opt_in"
)

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
	MaxIDLen         = 128 // customer_id, in characters
	MaxTextLen       = 256 // agent, team, campaign, product, other ids
	maxEventIDLen    = 256
	maxTextLen       = MaxTextLen
	maxLongTextLen   = 2000 // summary, reason
	maxCurrencyChars = 3
)

// Offer is a priced proposal made during a contact.
type Offer struct {
	ID        string     `json:"id,omitempty"`
	Price     *float64   `json:"price,omitempty"`
	Currency  string     `json:"currency,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Event is one entry of a customer's timeline: a contact, a purchase, a
// complaint or an opt-out/opt-in. Fields that do not apply to its Type are
// left empty. Its JSON form is the wire format on Kafka and in Redis.
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

	Price    *float64 `json:"price,omitempty"`
	Currency string   `json:"currency,omitempty"`
	OrderID  string   `json:"order_id,omitempty"`

	CaseID  string `json:"case_id,omitempty"`
	Status  string `json:"status,omitempty"`
	Summary string `json:"summary,omitempty"`
	Owner   string `json:"owner,omitempty"`

	Reason string `json:"reason,omitempty"`
}

// IsOutboundContact reports whether e is a contact that the company started.
func (e *Event) IsOutboundContact() bool {
	return e.Type == TypeContact && e.Direction != Inbound
}

// Decode parses one JSON event, normalises it and validates it. The error is
// an EInvalid *Error naming the field at fault. Unknown fields are ignored.
func Decode(data []byte) (Event, error) {
	// UnmarshalJSON's json.Unmarshal rejects malformed and trailing data;
	// calling it directly spares json.Unmarshal's own scans of the input.
	if err := ValidJSONText(data); err != nil {
		return Event{}, err
	}
	var e Event
	if err := e.UnmarshalJSON(data); err != nil {
		return Event{}, JSONError(err)
	}
	if err := e.Normalize(); err != nil {
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

// UnmarshalJSON decodes an event, reading its times as RFC 3339 so that a bad
// time is reported with its field name.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var w struct {
		plain
		At    string `json:"at"`
		Offer *struct {
			ID        string   `json:"id"`
			Price     *float64 `json:"price"`
			Currency  string   `json:"currency"`
			ExpiresAt string   `json:"expires_at"`
		} `json:"offer"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event(w.plain)
	e.At = time.Time{}
	if w.At != "" {
		t, err := ParseTime("at", w.At)
		if err != nil {
			return err
		}
		e.At = t
	}
	e.Offer = nil
	if o := w.Offer; o != nil {
		e.Offer = &Offer{ID: o.ID, Price: o.Price, Currency: o.Currency}
		if o.ExpiresAt != "" {
			t, err := ParseTime("offer.expires_at", o.ExpiresAt)
			if err != nil {
				return err
			}
			e.Offer.ExpiresAt = &t
		}
	}
	return nil
}

// ParseTime parses an RFC 3339 time; field names it in the error.
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Invalid(field, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z; got %q", Clip(s))
	}
	if err := CheckTime(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Normalize fills defaults, converts times to UTC and validates e. It returns
// an EInvalid *Error naming the first field at fault.
func (e *Event) Normalize() error {
	if err := text("id", e.ID, maxEventIDLen, true); err != nil {
		return err
	}
	switch e.Type {
	case TypeContact, TypePurchase, TypeComplaint, TypeOptOut, TypeOptIn:
	case "":
		return Invalid("type", "is required")
	default:
		return Invalid("type", "must be one of contact, purchase, complaint, opt_out, opt_in; got %q", Clip(string(e.Type)))
	}
	if err := ValidCustomerID(e.CustomerID); err != nil {
		return err
	}
	if e.At.IsZero() {
		return Invalid("at", "is required")
	}
	e.At = e.At.UTC()
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
	if err := validPrice("price", e.Price, "currency", e.Currency); err != nil {
		return err
	}
	if e.Offer != nil {
		if err := e.Offer.Validate(); err != nil {
			return err
		}
		if e.Offer.ExpiresAt != nil {
			t := e.Offer.ExpiresAt.UTC()
			e.Offer.ExpiresAt = &t
		}
	}

	switch e.Type {
	case TypeContact:
		if e.Channel == "" {
			return Invalid("channel", "is required for a contact")
		}
		if err := ValidChannel("channel", e.Channel); err != nil {
			return err
		}
		switch e.Direction {
		case "":
			e.Direction = Outbound
		case Outbound, Inbound:
		default:
			return Invalid("direction", "must be outbound or inbound; got %q", Clip(string(e.Direction)))
		}
		if e.Purpose != "" && !oneOf(e.Purpose, Purposes) {
			return Invalid("purpose", "must be one of %s; got %q", strings.Join(Purposes, ", "), Clip(e.Purpose))
		}
		if e.Outcome != "" && !oneOf(e.Outcome, Outcomes) {
			return Invalid("outcome", "must be one of %s; got %q", strings.Join(Outcomes, ", "), Clip(e.Outcome))
		}
	case TypePurchase:
		if e.Product == "" {
			return Invalid("product", "is required for a purchase")
		}
		if e.Channel != "" {
			if err := ValidChannel("channel", e.Channel); err != nil {
				return err
			}
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
	case TypeOptOut, TypeOptIn:
		if e.Channel != "" {
			if err := ValidChannel("channel", e.Channel); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks an offer's fields; errors name them as "offer.FIELD".
func (o *Offer) Validate() error {
	if err := text("offer.id", o.ID, maxTextLen, false); err != nil {
		return err
	}
	if o.ExpiresAt != nil {
		if err := CheckTime("offer.expires_at", *o.ExpiresAt); err != nil {
			return err
		}
	}
	return validPrice("offer.price", o.Price, "offer.currency", o.Currency)
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
	for _, k := range Channels {
		if c == k {
			return nil
		}
	}
	return Invalid(field, "must be one of call, sms, email, mail, visit, chat; got %q", Clip(string(c)))
}

func validPrice(field string, p *float64, currencyField, currency string) error {
	if p != nil && *p < 0 {
		return Invalid(field, "must not be negative")
	}
	if currency != "" && !isCurrency(currency) {
		return Invalid(currencyField, "must be an ISO 4217 code such as EUR")
	}
	return nil
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

// isCurrency reports whether s has the form of an ISO 4217 code: three
// ASCII capital letters.
func isCurrency(s string) bool {
	if len(s) != maxCurrencyChars {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
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
