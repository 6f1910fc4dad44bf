package contact

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Page selects a page of a timeline, newest first. Events are ordered by
// (At, ID), newest first, so that ties of one instant have a stable order.
type Page struct {
	Limit int    // events per page; must be positive
	After Cursor // only events after this one in that order; zero means from the newest
}

// Cursor marks the last event of a page: the next page starts after it.
type Cursor struct {
	At time.Time
	ID string
}

// IsZero reports whether c marks no event.
func (c Cursor) IsZero() bool { return c.ID == "" }

// CursorOf returns the cursor that marks e.
func CursorOf(e *Event) Cursor { return Cursor{At: e.At, ID: e.ID} }

// String encodes c as an opaque token for clients.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("1:" + strconv.FormatInt(c.At.UnixMilli(), 10) + ":" + c.ID))
}

// ParseCursor reads a token made by Cursor.String; field names it in the
// EInvalid error.
func ParseCursor(field, s string) (Cursor, error) {
	bad := Invalid(field, "is not a cursor from this API; use the next value of the previous page")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	v, rest, ok := strings.Cut(string(b), ":")
	if !ok || v != "1" {
		return Cursor{}, bad
	}
	ms, id, ok := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || n > maxMillis || text("", id, maxEventIDLen, true) != nil {
		return Cursor{}, bad
	}
	return Cursor{At: time.UnixMilli(n).UTC(), ID: id}, nil
}

// maxMillis is the last millisecond of the year 9999.
const maxMillis = 253402300799999

// Before reports whether e comes after c in timeline order (older, or of
// the same instant with a smaller ID).
func (c Cursor) Before(e *Event) bool {
	if !e.At.Equal(c.At) {
		return e.At.Before(c.At)
	}
	return e.ID < c.ID
}

// MarshalJSON writes the state as the API shows it: the latest purchase per
// product, the open complaints, the opt-out in force per channel (an opt-out
// of every channel shows on each), the offers, the latest outbound contact
// per channel, and the profile.
func (s State) MarshalJSON() ([]byte, error) {
	v := struct {
		Products       map[string]Event  `json:"products"`
		OpenComplaints []Event           `json:"open_complaints"`
		OptOuts        map[Channel]Event `json:"opt_outs"`
		Offers         []Event           `json:"offers"`
		LastContacts   map[Channel]Event `json:"last_contacts"`
		Profile        *Event            `json:"profile,omitempty"`
	}{
		Products: s.Purchases, OpenComplaints: s.OpenComplaints(), OptOuts: map[Channel]Event{},
		Offers: s.Offers, LastContacts: s.LastContacts, Profile: s.Profile,
	}
	for _, ch := range Channels {
		if e, ok := s.OptOutInForce(ch); ok {
			v.OptOuts[ch] = e
		}
	}
	if v.Products == nil {
		v.Products = map[string]Event{}
	}
	if v.OpenComplaints == nil {
		v.OpenComplaints = []Event{}
	}
	if v.Offers == nil {
		v.Offers = []Event{}
	}
	if v.LastContacts == nil {
		v.LastContacts = map[Channel]Event{}
	}
	return json.Marshal(v)
}
