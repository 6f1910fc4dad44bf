package contact

import (
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// The JSON form of events and offers. Prices are JSON numbers read exactly,
// never through a float: "price": 39.90 with "currency": "EUR" becomes 3990
// cents once Normalize knows the currency.

// rawPrice is a price as read from JSON, before Normalize converts it to
// minor units of its currency (or of the default currency).
type rawPrice struct {
	amount   json.RawMessage // a JSON number; nil if absent
	currency string
}

// money converts p, naming field and currencyField in errors. A currency
// without an amount is checked and then dropped: there is nothing to price.
func (p *rawPrice) money(field, currencyField string, d Defaults) (*Money, error) {
	if len(p.amount) == 0 {
		if p.currency != "" {
			return nil, ValidCurrency(currencyField, p.currency)
		}
		return nil, nil
	}
	if c := p.amount[0]; c != '-' && (c < '0' || c > '9') {
		return nil, Invalid(field, "must be a JSON number, such as 49.90")
	}
	code := p.currency
	if code == "" {
		code = d.currency()
	}
	m, err := ParseMoney(field, string(p.amount), currencyField, code)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func newRawPrice(amount json.RawMessage, currency string) *rawPrice {
	if string(amount) == "null" {
		amount = nil
	}
	if amount == nil && currency == "" {
		return nil
	}
	return &rawPrice{amount: amount, currency: currency}
}

// UnmarshalJSON decodes an event, reading its times as RFC 3339 so that a bad
// time is reported with its field name. Call Normalize before using it.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var w struct {
		plain
		At       string          `json:"at"`
		Price    json.RawMessage `json:"price"`
		Currency string          `json:"currency"`
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
	var err error
	e.Price, e.raw, err = readPrice(w.Price, w.Currency, "price", "currency")
	return err
}

// readPrice reads a price: at once when the currency is given, else later,
// by Normalize, in the default currency.
func readPrice(amount json.RawMessage, currency, field, currencyField string) (*Money, *rawPrice, error) {
	raw := newRawPrice(amount, currency)
	if raw == nil || currency == "" {
		return nil, raw, nil
	}
	m, err := raw.money(field, currencyField, Defaults{})
	return m, nil, err
}

// MarshalJSON writes an event in its wire form.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	w := struct {
		plain
		Price    json.RawMessage `json:"price,omitempty"`
		Currency string          `json:"currency,omitempty"`
	}{plain: plain(e)}
	if e.Price != nil {
		w.Price, w.Currency = json.RawMessage(e.Price.Decimal()), e.Price.Currency
	}
	return json.Marshal(w)
}

type offerJSON struct {
	ID        string          `json:"id,omitempty"`
	Price     json.RawMessage `json:"price,omitempty"`
	Currency  string          `json:"currency,omitempty"`
	ExpiresAt string          `json:"expires_at,omitempty"`
}

// UnmarshalJSON decodes an offer; errors name "offer.FIELD". Call Normalize
// before using it.
func (o *Offer) UnmarshalJSON(b []byte) error {
	var w offerJSON
	if err := json.Unmarshal(b, &w); err != nil {
		err = JSONError(err)
		var ce *Error
		if errors.As(err, &ce) && ce.Field != "" {
			ce.Field = "offer." + ce.Field
		}
		return err
	}
	*o = Offer{ID: w.ID}
	var err error
	if o.Price, o.raw, err = readPrice(w.Price, w.Currency, "offer.price", "offer.currency"); err != nil {
		return err
	}
	if w.ExpiresAt != "" {
		t, err := ParseTime("offer.expires_at", w.ExpiresAt)
		if err != nil {
			return err
		}
		o.ExpiresAt = &t
	}
	return nil
}

// NewOffer returns an offer whose price is written as text, such as "45.90",
// in currency ("" for the default currency). Normalize reads the price; an
// offer that is not normalized is sent as written.
func NewOffer(id, price, currency string) *Offer {
	o := &Offer{ID: id}
	if price != "" || currency != "" {
		o.raw = &rawPrice{amount: json.RawMessage(price), currency: currency}
	}
	return o
}

// MarshalJSON writes an offer in its wire form.
func (o Offer) MarshalJSON() ([]byte, error) {
	w := offerJSON{ID: o.ID}
	switch {
	case o.Price != nil:
		w.Price, w.Currency = json.RawMessage(o.Price.Decimal()), o.Price.Currency
	case o.raw != nil:
		w.Price, w.Currency = o.raw.amount, o.raw.currency
	}
	if o.ExpiresAt != nil {
		w.ExpiresAt = o.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// zones caches time.LoadLocation, which parses the zone database. Only
// successes are kept, so the cache is bounded by the database.
var zones sync.Map // string → *time.Location

// LoadZone loads an IANA time zone. Unlike time.LoadLocation it refuses ""
// and "Local", whose meaning depends on the server. It is safe for
// concurrent use.
func LoadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errBadZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

var errBadZone = errors.New("contact: not an IANA time zone")
