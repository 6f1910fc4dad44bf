package dedupe

import (
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
)

// Collision insight: what the audit trail's records count.
//
// Every live check of the trail counts, in the hour of its record, in five
// families of counters:
//
//	FamilyReason     #checks, #blocked, and each blocking reason code
//	FamilyCampaign   the same by the requesting campaign
//	FamilyTeam       the same by the requesting team
//	FamilyCollision  blocked checks by the requesting campaign and team
//	                 × the campaign and team of the evidence, with its code
//	FamilyProduct    better_offer and already_purchased blocks by product
//
// A check counts at most once in each counter: a check blocked by two
// reasons counts once under #blocked and once under each code.

// InsightRetention is how long insight counters are kept.
const InsightRetention = 90 * 24 * time.Hour

// Insight families, in the order of InsightFamilies.
const (
	FamilyReason    = "reason"
	FamilyCampaign  = "campaign"
	FamilyTeam      = "team"
	FamilyCollision = "collision"
	FamilyProduct   = "product"
)

// InsightFamilies lists every family; a family's index in it is stable.
var InsightFamilies = []string{FamilyReason, FamilyCampaign, FamilyTeam, FamilyCollision, FamilyProduct}

// What an insight counter counts besides reason codes.
const (
	CountChecks  = "#checks"
	CountBlocked = "#blocked"
)

// insightSep joins the parts of a counter's field. Record text is free of
// control characters (TallyRecord refuses it otherwise), so it cannot
// appear in a part.
const insightSep = "\x1f"

// InsightKey names one counter of a family. Which parts apply depends on
// the family; the others are empty.
type InsightKey struct {
	Value           string // the campaign, team or product (FamilyCampaign, FamilyTeam, FamilyProduct)
	Campaign, Team  string // who asked (FamilyCollision)
	AgainstCampaign string // the campaign of the evidence (FamilyCollision)
	AgainstTeam     string // the team of the evidence (FamilyCollision)
	What            string // CountChecks, CountBlocked or a reason code
}

// Field encodes k as the field of a counter of family.
func (k InsightKey) Field(family string) string {
	switch family {
	case FamilyCampaign, FamilyTeam, FamilyProduct:
		return k.Value + insightSep + k.What
	case FamilyCollision:
		return strings.Join([]string{k.Campaign, k.Team, k.AgainstCampaign, k.AgainstTeam, k.What}, insightSep)
	}
	return k.What
}

// ParseInsightField decodes the field of a counter of family; ok is false
// when it is not one.
func ParseInsightField(family, field string) (k InsightKey, ok bool) {
	parts := strings.Split(field, insightSep)
	switch family {
	case FamilyReason:
		return InsightKey{What: field}, len(parts) == 1 && field != ""
	case FamilyCampaign, FamilyTeam, FamilyProduct:
		if len(parts) != 2 || parts[1] == "" {
			return k, false
		}
		return InsightKey{Value: parts[0], What: parts[1]}, true
	case FamilyCollision:
		if len(parts) != 5 || parts[4] == "" {
			return k, false
		}
		return InsightKey{Campaign: parts[0], Team: parts[1], AgainstCampaign: parts[2], AgainstTeam: parts[3], What: parts[4]}, true
	}
	return k, false
}

// InsightCounter is one counter that a record adds one to.
type InsightCounter struct {
	Family string // one of InsightFamilies
	Field  string // InsightKey.Field
}

// Tally is what one record counts: each of Counters once, in Hour. Seq is
// the record's position in its stream (its offset in its partition), which
// lets a store count every position at most once.
type Tally struct {
	Seq      int64
	Hour     time.Time // UTC, whole hour
	Counters []InsightCounter
}

// InsightDay is a day of counters to read: the day's totals, or each hour's.
type InsightDay struct {
	Day    time.Time // UTC midnight
	Hourly bool
}

// InsightCell is a counter read back: its value in the hour or the day At.
type InsightCell struct {
	At    time.Time
	Field string
	N     int64
}

// TallyRecord returns what r, at position seq of its stream, counts. A
// record that counts nothing (a scrub, an erasure, a planned check)
// returns ok false. A record that cannot be counted returns an EInvalid
// error naming the field at fault.
func TallyRecord(r *Record, seq int64) (t Tally, ok bool, err error) {
	if r.Kind != RecordCheck {
		return t, false, nil
	}
	if err := checkInsightRecord(r); err != nil {
		return t, false, err
	}
	if r.Request.At != nil {
		return t, false, nil // a what-if: nobody contacts anyone
	}
	t = Tally{Seq: seq, Hour: r.Time.UTC().Truncate(time.Hour)}
	seen := map[InsightCounter]bool{}
	add := func(family string, k InsightKey) {
		c := InsightCounter{Family: family, Field: k.Field(family)}
		if !seen[c] {
			seen[c] = true
			t.Counters = append(t.Counters, c)
		}
	}
	req := r.Request
	whats := []string{CountChecks}
	if !r.Allowed {
		whats = append(whats, CountBlocked)
	}
	for _, x := range r.Reasons {
		if !x.Warning {
			whats = append(whats, x.Code)
		}
	}
	for _, what := range whats {
		add(FamilyReason, InsightKey{What: what})
		add(FamilyCampaign, InsightKey{Value: req.Campaign, What: what})
		add(FamilyTeam, InsightKey{Value: req.Team, What: what})
	}
	// Each distinct evidence of a campaign or team is one collision,
	// counted under the code of the first reason that names it.
	against := map[[2]string]bool{}
	for _, x := range r.Reasons {
		if x.Warning {
			continue
		}
		if pair := [2]string{x.Campaign, x.Team}; pair != [2]string{} && !against[pair] {
			against[pair] = true
			add(FamilyCollision, InsightKey{Campaign: req.Campaign, Team: req.Team, AgainstCampaign: x.Campaign, AgainstTeam: x.Team, What: x.Code})
		}
		if x.Code == CodeBetterOffer || x.Code == CodeAlreadyPurchased {
			product := x.Product
			if product == "" {
				product = req.Product
			}
			add(FamilyProduct, InsightKey{Value: product, What: CountBlocked})
			add(FamilyProduct, InsightKey{Value: product, What: x.Code})
		}
	}
	return t, true, nil
}

// checkInsightRecord checks what TallyRecord reads of a check's record.
func checkInsightRecord(r *Record) error {
	if r.Time.IsZero() {
		return contact.Invalid("time", "is required")
	}
	if r.Request == nil {
		return contact.Invalid("request", "is required in a check's record")
	}
	for _, f := range []struct{ name, v string }{{"request.campaign", r.Request.Campaign}, {"request.team", r.Request.Team}, {"request.product", r.Request.Product}} {
		if err := contact.ValidText(f.name, f.v); err != nil {
			return err
		}
	}
	for _, x := range r.Reasons {
		if !validCode(x.Code) {
			return contact.Invalid("reasons.code", "must be a reason code such as recent_contact; got %q", contact.Clip(x.Code))
		}
		for _, f := range []struct{ name, v string }{{"reasons.campaign", x.Campaign}, {"reasons.team", x.Team}, {"reasons.product", x.Product}} {
			if err := contact.ValidText(f.name, f.v); err != nil {
				return err
			}
		}
	}
	if !r.Allowed && !hasBlocking(r.Reasons) {
		return contact.Invalid("reasons", "a blocked check's record must name a blocking reason")
	}
	return nil
}

func hasBlocking(rs []RecordReason) bool {
	for _, x := range rs {
		if !x.Warning {
			return true
		}
	}
	return false
}

// validCode reports whether c looks like a reason code: 1 to 32 lower-case
// letters and underscores. Codes this version does not know still count.
func validCode(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}
