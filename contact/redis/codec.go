package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/outreach/outreach/contact"
)

// The stored form of an event: a compact binary record, so that the members
// of a typical customer's keys stay under Redis's 64-byte listpack limit.
// The customer id is not stored (the key holds it), nor the id and time
// (the member or the slot's order key holds them).
//
//	record  = version type field*
//	version = 0x01
//	type    = 'c' contact | 'p' purchase | 'x' complaint | 'o' opt_out | 'i' opt_in | 'f' profile | 'e' forget
//	field   = tag value, in increasing tag order, each at most once but phone
//	str     = uvarint length, then that many bytes
//	money   = uvarint minor units, then the 3-letter currency
//
//	tag  field            value            tag  field            value
//	1    channel          1 byte (index+1) 12   case_id          str
//	2    inbound          none             13   resolved         none
//	3    agent            str              14   summary          str
//	4    team             str              15   owner            str
//	5    campaign         str              16   reason           str
//	6    purpose          1 byte (index+1) 17   timezone         str
//	7    product          str              18   phone            str, repeated
//	8    outcome          1 byte (index+1) 20   offer            none (marks one)
//	9    claim            str              21   offer.id         str
//	10   price            money            22   offer.price      money
//	11   order_id         str              23   offer.expires_at varint unix ms
//
// Indexes are into contact.Channels, contact.Purposes and contact.Outcomes,
// which only ever grow at the end. A record that does not follow this
// schema fails to decode: the read that met it fails, it is never skipped.

const recordVersion = 1

var typeCodes = map[contact.Type]byte{
	contact.TypeContact: 'c', contact.TypePurchase: 'p', contact.TypeComplaint: 'x',
	contact.TypeOptOut: 'o', contact.TypeOptIn: 'i', contact.TypeProfile: 'f', contact.TypeForget: 'e',
}

const (
	tagChannel = iota + 1
	tagInbound
	tagAgent
	tagTeam
	tagCampaign
	tagPurpose
	tagProduct
	tagOutcome
	tagClaim
	tagPrice
	tagOrderID
	tagCaseID
	tagResolved
	tagSummary
	tagOwner
	tagReason
	tagTimezone
	tagPhone
	_
	tagOffer
	tagOfferID
	tagOfferPrice
	tagOfferExpires
)

// encodeRecord appends e's record to b.
func encodeRecord(b []byte, e *contact.Event) []byte {
	b = append(b, recordVersion, typeCodes[e.Type])
	if e.Channel != "" {
		b = append(b, tagChannel, byte(slices.Index(contact.Channels, e.Channel)+1))
	}
	if e.Direction == contact.Inbound {
		b = append(b, tagInbound)
	}
	b = appendStr(b, tagAgent, e.Agent)
	b = appendStr(b, tagTeam, e.Team)
	b = appendStr(b, tagCampaign, e.Campaign)
	if e.Purpose != "" {
		b = append(b, tagPurpose, byte(slices.Index(contact.Purposes, e.Purpose)+1))
	}
	b = appendStr(b, tagProduct, e.Product)
	if e.Outcome != "" {
		b = append(b, tagOutcome, byte(slices.Index(contact.Outcomes, e.Outcome)+1))
	}
	b = appendStr(b, tagClaim, e.Claim)
	b = appendMoney(b, tagPrice, e.Price)
	b = appendStr(b, tagOrderID, e.OrderID)
	b = appendStr(b, tagCaseID, e.CaseID)
	if e.Type == contact.TypeComplaint && e.Status == contact.ComplaintResolved {
		b = append(b, tagResolved)
	}
	b = appendStr(b, tagSummary, e.Summary)
	b = appendStr(b, tagOwner, e.Owner)
	b = appendStr(b, tagReason, e.Reason)
	b = appendStr(b, tagTimezone, e.Timezone)
	for _, p := range e.Phones {
		b = appendBytes(append(b, tagPhone), p)
	}
	if o := e.Offer; o != nil {
		b = append(b, tagOffer)
		b = appendStr(b, tagOfferID, o.ID)
		b = appendMoney(b, tagOfferPrice, o.Price)
		if o.ExpiresAt != nil {
			b = binary.AppendVarint(append(b, tagOfferExpires), o.ExpiresAt.UnixMilli())
		}
	}
	return b
}

func appendBytes(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStr(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	return appendBytes(append(b, tag), s)
}

func appendMoney(b []byte, tag byte, m *contact.Money) []byte {
	if m == nil {
		return b
	}
	b = binary.AppendUvarint(append(b, tag), uint64(m.Minor))
	return append(b, m.Currency[:3]...)
}

var errRecord = errors.New("store: undecodable record")

// decodeRecord reads a record made by encodeRecord into an event with the
// given customer, id and time.
func decodeRecord(b []byte, customerID, id string, at time.Time) (contact.Event, error) {
	e := contact.Event{ID: id, CustomerID: customerID, At: at}
	if len(b) < 2 || b[0] != recordVersion {
		return e, errRecord
	}
	for t, code := range typeCodes {
		if code == b[1] {
			e.Type = t
		}
	}
	if e.Type == "" {
		return e, errRecord
	}
	d := recordReader{b: b[2:]}
	for d.err == nil && len(d.b) > 0 {
		d.field(&e)
	}
	if d.err != nil {
		return e, fmt.Errorf("%w: %v", errRecord, d.err)
	}
	switch e.Type {
	case contact.TypeContact:
		if e.Direction == "" {
			e.Direction = contact.Outbound
		}
	case contact.TypeComplaint:
		if e.Status == "" {
			e.Status = contact.ComplaintOpened
		}
	}
	return e, nil
}

type recordReader struct {
	b    []byte
	last byte // the last tag read, to enforce their order
	err  error
}

func (d *recordReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *recordReader) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordReader) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.fail("bad string")
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *recordReader) money() *contact.Money {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || len(d.b) < k+3 || n > 1<<62 {
		d.fail("bad money")
		return nil
	}
	m := &contact.Money{Minor: int64(n), Currency: string(d.b[k : k+3])}
	d.b = d.b[k+3:]
	return m
}

// enum reads a 1-based index into list.
func enum[T any](d *recordReader, list []T) T {
	var zero T
	i := int(d.byte()) - 1
	if i < 0 || i >= len(list) {
		d.fail("bad enum")
		return zero
	}
	return list[i]
}

func (d *recordReader) field(e *contact.Event) {
	tag := d.byte()
	if tag < d.last || (tag == d.last && tag != tagPhone) {
		d.fail("tag %d out of order", tag)
		return
	}
	d.last = tag
	switch tag {
	case tagChannel:
		e.Channel = enum(d, contact.Channels)
	case tagInbound:
		e.Direction = contact.Inbound
	case tagAgent:
		e.Agent = d.str()
	case tagTeam:
		e.Team = d.str()
	case tagCampaign:
		e.Campaign = d.str()
	case tagPurpose:
		e.Purpose = enum(d, contact.Purposes)
	case tagProduct:
		e.Product = d.str()
	case tagOutcome:
		e.Outcome = enum(d, contact.Outcomes)
	case tagClaim:
		e.Claim = d.str()
	case tagPrice:
		e.Price = d.money()
	case tagOrderID:
		e.OrderID = d.str()
	case tagCaseID:
		e.CaseID = d.str()
	case tagResolved:
		e.Status = contact.ComplaintResolved
	case tagSummary:
		e.Summary = d.str()
	case tagOwner:
		e.Owner = d.str()
	case tagReason:
		e.Reason = d.str()
	case tagTimezone:
		e.Timezone = d.str()
	case tagPhone:
		e.Phones = append(e.Phones, d.str())
	case tagOffer:
		e.Offer = &contact.Offer{}
	case tagOfferID, tagOfferPrice, tagOfferExpires:
		d.offerField(e, tag)
	default:
		d.fail("unknown tag %d", tag)
	}
}

func (d *recordReader) offerField(e *contact.Event, tag byte) {
	if e.Offer == nil {
		d.fail("offer field without an offer")
		return
	}
	switch tag {
	case tagOfferID:
		e.Offer.ID = d.str()
	case tagOfferPrice:
		e.Offer.Price = d.money()
	case tagOfferExpires:
		ms, k := binary.Varint(d.b)
		if k <= 0 {
			d.fail("bad time")
			return
		}
		d.b = d.b[k:]
		t := time.UnixMilli(ms).UTC()
		e.Offer.ExpiresAt = &t
	}
}

// recordProduct reads the product of a record without decoding the rest:
// it skips the fields before it (codec order) and stops at the first after.
func recordProduct(b []byte) (string, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return "", errRecord
	}
	d := recordReader{b: b[2:]}
	for d.err == nil && len(d.b) > 0 {
		switch tag := d.b[0]; tag {
		case tagChannel, tagPurpose:
			d.byte()
			d.byte()
		case tagInbound:
			d.byte()
		case tagAgent, tagTeam, tagCampaign:
			d.b = d.b[1:]
			d.skipStr()
		case tagProduct:
			d.b = d.b[1:]
			return d.str(), d.err
		default:
			return "", nil // past where the product would be: none
		}
	}
	if d.err != nil {
		return "", fmt.Errorf("%w: %v", errRecord, d.err)
	}
	return "", nil
}

// skipStr skips a string without copying it.
func (d *recordReader) skipStr() {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.fail("bad string")
		return
	}
	d.b = d.b[k+int(n):]
}

// digest identifies an event's content, without its id and customer, so
// that a second event with a stored id is recognised as the same event (a
// redelivery) or another one (a conflict).
func digest(at time.Time, record []byte) []byte {
	h := fnv.New64a()
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	h.Write(ms[:])
	h.Write(record)
	return h.Sum(nil)
}
