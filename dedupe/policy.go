package dedupe

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
)

// Policy is the set of rules [Decide] applies. Build one with [DefaultPolicy]
// or [ParsePolicy]; the zero Policy is not usable. A Policy is never modified
// after it is built, so it is safe for concurrent use.
type Policy struct {
	base             rules
	campaigns        map[string]*rules
	complaintBlocks  map[string]bool // purposes that an open complaint blocks
	purchaseLookback time.Duration
	offerValidity    time.Duration
	claimTTL         time.Duration
	followupSLA      time.Duration            // how long an open complaint may wait for a follow-up
	teamSLA          map[string]time.Duration // followupSLA by the complaint's team
	failOpen         bool
	version          string // a hash of the file, or "default"
}

// rules are the settings that channels and campaigns can override, resolved
// for one campaign (or for none).
type rules struct {
	cooldown  map[contact.Channel]time.Duration
	quiet     map[contact.Channel]window
	capMax    int
	capWindow time.Duration
	exempt    map[string]codeSet // purpose → codes it skips
}

func (r *rules) clone() *rules {
	c := *r
	c.cooldown = maps.Clone(r.cooldown)
	c.quiet = maps.Clone(r.quiet)
	c.exempt = maps.Clone(r.exempt)
	return &c
}

// window is a daily span of local time [start, end) in minutes after
// midnight; it wraps midnight when end < start and is empty when start == end.
type window struct{ start, end int }

func (w window) empty() bool { return w.start == w.end }

func (w window) contains(minute int) bool {
	if w.start < w.end {
		return minute >= w.start && minute < w.end
	}
	return minute >= w.start || minute < w.end
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// codeSet is a set of exemptable reason codes.
type codeSet uint8

const (
	exRecentContact codeSet = 1 << iota
	exFrequencyCap
	exAlreadyPurchased
	exBetterOffer
	exQuietHours
)

func (s codeSet) has(c codeSet) bool { return s&c != 0 }

var exemptable = map[string]codeSet{
	CodeRecentContact:    exRecentContact,
	CodeFrequencyCap:     exFrequencyCap,
	CodeAlreadyPurchased: exAlreadyPurchased,
	CodeBetterOffer:      exBetterOffer,
	CodeQuietHours:       exQuietHours,
}

// neverExempt explains why a code cannot be exempted.
var neverExempt = map[string]string{
	CodeOptedOut:      "an opt-out binds every purpose",
	CodeDoNotCall:     "a suppression list binds every purpose",
	CodeClaimed:       "a claim is what keeps two agents from contacting a customer at once",
	CodeOpenComplaint: "set open_complaint.block instead",
}

const exemptableList = "recent_contact, frequency_cap, already_purchased, better_offer, quiet_hours"

// DefaultPolicy returns the policy used when no file is given; the package
// documentation lists its values.
func DefaultPolicy() *Policy {
	quiet := window{start: 21 * 60, end: 8 * 60}
	p := &Policy{
		version: "default",
		base: rules{
			cooldown: map[contact.Channel]time.Duration{
				contact.Call:  72 * time.Hour,
				contact.SMS:   24 * time.Hour,
				contact.Email: 24 * time.Hour,
				contact.Mail:  7 * day,
				contact.Visit: 7 * day,
				contact.Chat:  0,
			},
			quiet:     map[contact.Channel]window{},
			capMax:    3,
			capWindow: 7 * day,
			exempt: map[string]codeSet{
				"recovery": exRecentContact | exFrequencyCap | exBetterOffer,
				"service":  exRecentContact | exFrequencyCap | exBetterOffer,
			},
		},
		campaigns:        map[string]*rules{},
		complaintBlocks:  map[string]bool{"sales": true, "survey": true, "collections": true},
		purchaseLookback: 365 * day,
		offerValidity:    30 * day,
		claimTTL:         15 * time.Minute,
		followupSLA:      48 * time.Hour,
		teamSLA:          map[string]time.Duration{},
	}
	for _, ch := range contact.Channels {
		p.base.quiet[ch] = quiet
	}
	return p
}

// ContactWindow is how far back the store must read contacts: the longest
// cooldown or frequency window of the base policy and of every override.
func (p *Policy) ContactWindow() time.Duration {
	var w time.Duration
	for r := range p.allRules() {
		for _, d := range r.cooldown {
			w = max(w, d)
		}
		if r.capMax > 0 {
			w = max(w, r.capWindow)
		}
	}
	return w
}

func (p *Policy) allRules() func(yield func(*rules) bool) {
	return func(yield func(*rules) bool) {
		if !yield(&p.base) {
			return
		}
		for _, r := range p.campaigns {
			if !yield(r) {
				return
			}
		}
	}
}

// Limits are the bounds of the customer state that this policy needs kept:
// outbound contact times as long as its longest frequency window, offers
// without an expiry as long as its offer validity. A policy that needs more
// than the state was kept with needs the state rebuilt (outreachd replay).
func (p *Policy) Limits() contact.Limits {
	var l contact.Limits
	for r := range p.allRules() {
		if r.capMax > 0 {
			l.Recent = max(l.Recent, r.capWindow)
			l.RecentMax = max(l.RecentMax, r.capMax)
		}
	}
	l.RecentMax = max(l.RecentMax, contact.DefaultRecentMax)
	l.Offers = p.offerValidity
	return l.WithDefaults()
}

// PurchaseLookback is how far back already_purchased looks, and so how far
// back the store must read purchases. 0 means the rule is off.
func (p *Policy) PurchaseLookback() time.Duration { return p.purchaseLookback }

// OfferWindow is how long an offer without expires_at stays valid, and so how
// far back the store must read offers. Offers with an explicit expires_at
// still in the future must be read however old they are.
func (p *Policy) OfferWindow() time.Duration { return p.offerValidity }

// ClaimTTL is how long a claim made with Request.Claim lasts.
func (p *Policy) ClaimTTL() time.Duration { return p.claimTTL }

// FollowUpSLA is how long an open complaint of team may go without a
// recovery or service contact, or a contact by its owner, before its
// follow-up is due: the team's followup_sla, else the policy's. 0 means
// never due.
func (p *Policy) FollowUpSLA(team string) time.Duration {
	if d, ok := p.teamSLA[team]; ok {
		return d
	}
	return p.followupSLA
}

// FollowUp states.
const (
	FollowUpDue      = "due"      // the SLA has passed and no one followed the case up
	FollowUpUpcoming = "upcoming" // no one followed the case up yet, within the SLA
)

// FollowUpDue returns when the follow-up of f falls due; false when it
// never does: someone followed it up, or its team's SLA is 0.
func (p *Policy) FollowUpDue(f *contact.FollowUp) (time.Time, bool) {
	sla := p.FollowUpSLA(f.Team)
	if f.FollowedUp != nil || sla <= 0 {
		return time.Time{}, false
	}
	return f.OpenedAt.Add(sla), true
}

// FollowUpState is FollowUpDue, FollowUpUpcoming or "" (never due) for f at now.
func (p *Policy) FollowUpState(f *contact.FollowUp, now time.Time) string {
	due, ok := p.FollowUpDue(f)
	switch {
	case !ok:
		return ""
	case now.Before(due):
		return FollowUpUpcoming
	}
	return FollowUpDue
}

// Version identifies the policy: a hash of the file it was read from, or
// "default" for the built-in policy. Replicas that disagree on it decide
// differently.
func (p *Policy) Version() string { return p.version }

// FailOpen reports whether a contact is allowed when the store cannot be
// read (on_unavailable: open).
func (p *Policy) FailOpen() bool { return p.failOpen }

func (p *Policy) rulesFor(campaign string) *rules {
	if campaign != "" {
		if r, ok := p.campaigns[campaign]; ok {
			return r
		}
	}
	return &p.base
}

const day = 24 * time.Hour

// maxDays bounds the day count of a duration, far below time.Duration's
// limit of about 292 years.
const maxDays = 36500

// ParseDuration reads a Go duration or whole days with an optional Go
// duration after them: "7d", "1d12h", "36h", "0".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q", s)
	rest := strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		n, err := strconv.ParseUint(rest[:i], 10, 32)
		if err != nil || n > maxDays {
			return 0, bad
		}
		days = time.Duration(n) * day
		if rest = rest[i+1:]; rest == "" {
			return days, nil
		}
		if rest[0] == '-' || rest[0] == '+' {
			return 0, bad
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, bad
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	if d > math.MaxInt64-days {
		return 0, bad
	}
	return days + d, nil
}

// formatDuration writes d the way a policy file would: "7d", "36h", "15m".
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
