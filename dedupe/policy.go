package dedupe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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

// ParsePolicy reads a policy file (see the package documentation for the
// schema). Absent keys keep the values of [DefaultPolicy]. It checks the
// whole file and returns every problem, joined with errors.Join, each naming
// its line and key: `policy: line 7: cooldowns.call: invalid duration "3x"`.
func ParsePolicy(data []byte) (*Policy, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		return nil, errors.New("policy: the file holds more than one YAML document")
	}
	p := DefaultPolicy()
	sum := sha256.Sum256(data)
	p.version = hex.EncodeToString(sum[:6])
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return p, nil // empty, or only comments
	}
	ps := &parser{}
	channels := map[contact.Channel]*override{}
	campaigns := map[string]*override{}
	ps.each(doc.Content[0], "", topKeys, func(key string, k, v *yaml.Node) bool {
		switch key {
		case "cooldowns":
			ps.cooldowns(v, key, p.base.cooldown)
		case "frequency_cap":
			ps.frequencyCap(v, key, &p.base.capMax, &p.base.capWindow)
		case "purchase_lookback":
			ps.duration(v, key, &p.purchaseLookback)
		case "offer_validity":
			ps.duration(v, key, &p.offerValidity)
		case "claim_ttl":
			if ps.duration(v, key, &p.claimTTL) && p.claimTTL == 0 {
				ps.fail(v, key, "must be positive")
			}
		case "quiet_hours":
			if w, ok := ps.quietHours(v, key); ok {
				for ch := range p.base.quiet {
					p.base.quiet[ch] = w
				}
			}
		case "on_unavailable":
			s, ok := ps.str(v, key)
			if !ok {
				break
			}
			switch s {
			case "open":
				p.failOpen = true
			case "closed":
				p.failOpen = false
			default:
				ps.fail(v, key, "must be open or closed; got %q", s)
			}
		case "exempt":
			ps.exempt(v, key, p.base.exempt)
		case "open_complaint":
			ps.each(v, key, "block", func(sub string, _, v *yaml.Node) bool {
				if sub != "block" {
					return false
				}
				if list, ok := ps.purposes(v, key+".block"); ok {
					p.complaintBlocks = map[string]bool{}
					for _, s := range list {
						p.complaintBlocks[s] = true
					}
				}
				return true
			})
		case "channels":
			ps.each(v, key, "", func(name string, k, v *yaml.Node) bool {
				path := key + "." + name
				if err := contact.ValidChannel(path, contact.Channel(name)); err != nil {
					ps.fail(k, path, "unknown channel; want one of %s", channelList())
					return true
				}
				o := &override{}
				channels[contact.Channel(name)] = o
				ps.each(v, path, "cooldown, quiet_hours", func(sub string, _, v *yaml.Node) bool {
					switch sub {
					case "cooldown":
						var d time.Duration
						if ps.duration(v, path+"."+sub, &d) {
							o.cooldown = map[contact.Channel]time.Duration{contact.Channel(name): d}
						}
					case "quiet_hours":
						if w, ok := ps.quietHours(v, path+"."+sub); ok {
							o.quiet = &w
						}
					default:
						return false
					}
					return true
				})
				return true
			})
		case "campaigns":
			ps.each(v, key, "", func(name string, k, v *yaml.Node) bool {
				path := key + "." + name
				if strings.TrimSpace(name) == "" {
					ps.fail(k, path, "a campaign name must not be blank")
					return true
				}
				campaigns[name] = ps.campaign(v, path)
				return true
			})
		default:
			return false
		}
		return true
	})
	if len(ps.errs) > 0 {
		return nil, errors.Join(ps.errs...)
	}

	// Channel overrides go into the base; campaigns start from that base.
	for ch, o := range channels {
		if d, ok := o.cooldown[ch]; ok {
			p.base.cooldown[ch] = d
		}
		if o.quiet != nil {
			p.base.quiet[ch] = *o.quiet
		}
	}
	for name, o := range campaigns {
		r := p.base.clone()
		maps.Copy(r.cooldown, o.cooldown)
		if o.quiet != nil {
			for ch := range r.quiet {
				r.quiet[ch] = *o.quiet
			}
		}
		if o.capMax != nil {
			r.capMax = *o.capMax
		}
		if o.capWindow != nil {
			r.capWindow = *o.capWindow
		}
		maps.Copy(r.exempt, o.exempt)
		p.campaigns[name] = r
	}
	return p, nil
}

const topKeys = "cooldowns, frequency_cap, purchase_lookback, offer_validity, quiet_hours, " +
	"claim_ttl, on_unavailable, exempt, open_complaint, channels, campaigns"

// override is what a channel or a campaign sets; nil and absent mean inherit.
type override struct {
	cooldown  map[contact.Channel]time.Duration
	quiet     *window
	capMax    *int
	capWindow *time.Duration
	exempt    map[string]codeSet
}

func channelList() string {
	s := make([]string, len(contact.Channels))
	for i, ch := range contact.Channels {
		s[i] = string(ch)
	}
	return strings.Join(s, ", ")
}

// parser walks the yaml.Node tree, collecting every error with its line.
type parser struct{ errs []error }

func (ps *parser) fail(n *yaml.Node, path, format string, args ...any) {
	ps.errs = append(ps.errs, fmt.Errorf("policy: line %d: %s: %s", n.Line, path, fmt.Sprintf(format, args...)))
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// each calls fn with every key of the mapping n, in file order. It reports a
// node that is not a mapping, non-string and duplicate keys, and the keys fn
// does not know (fn returns false); known lists them in that error. A null
// node is an empty mapping.
func (ps *parser) each(n *yaml.Node, path, known string, fn func(key string, k, v *yaml.Node) bool) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		ps.fail(n, orTop(path), "must be a mapping")
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			ps.fail(k, orTop(path), "keys must be strings")
			continue
		}
		kp := k.Value
		if path != "" {
			kp = path + "." + k.Value
		}
		if seen[k.Value] {
			ps.fail(k, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		if !fn(k.Value, k, v) {
			if known != "" {
				ps.fail(k, kp, "unknown key; want one of %s", known)
			} else {
				ps.fail(k, kp, "unknown key")
			}
		}
	}
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func (ps *parser) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		ps.fail(n, path, "must be a single value")
		return "", false
	}
	return n.Value, true
}

// duration sets *dst and reports whether the value was valid.
func (ps *parser) duration(n *yaml.Node, path string, dst *time.Duration) bool {
	s, ok := ps.str(n, path)
	if !ok {
		return false
	}
	d, err := ParseDuration(s)
	if err != nil {
		ps.fail(n, path, "%v", err)
		return false
	}
	*dst = d
	return true
}

func (ps *parser) cooldowns(n *yaml.Node, path string, dst map[contact.Channel]time.Duration) {
	ps.each(n, path, "", func(name string, k, v *yaml.Node) bool {
		kp := path + "." + name
		if contact.ValidChannel(kp, contact.Channel(name)) != nil {
			ps.fail(k, kp, "unknown channel; want one of %s", channelList())
			return true
		}
		var d time.Duration
		if ps.duration(v, kp, &d) {
			dst[contact.Channel(name)] = d
		}
		return true
	})
}

func (ps *parser) frequencyCap(n *yaml.Node, path string, maxDst *int, windowDst *time.Duration) {
	ps.each(n, path, "max, window", func(key string, _, v *yaml.Node) bool {
		kp := path + "." + key
		switch key {
		case "max":
			s, ok := ps.str(v, kp)
			if !ok {
				return true
			}
			m, err := strconv.Atoi(s)
			if err != nil || m < 0 {
				ps.fail(v, kp, "must be a whole number, 0 or more; got %q", s)
				return true
			}
			*maxDst = m
		case "window":
			var d time.Duration
			if ps.duration(v, kp, &d) {
				if d == 0 {
					ps.fail(v, kp, "must be positive; set max: 0 to disable the cap")
					return true
				}
				*windowDst = d
			}
		default:
			return false
		}
		return true
	})
}

// quietHours reads {start: "21:00", end: "08:00"}. A null, an empty string, an
// empty mapping or two empty values give the empty window, which disables
// quiet hours.
func (ps *parser) quietHours(n *yaml.Node, path string) (window, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && (isNull(n) || n.Value == "") {
		return window{}, true
	}
	var start, end string
	var startNode, endNode *yaml.Node
	before := len(ps.errs)
	ps.each(n, path, "start, end", func(key string, _, v *yaml.Node) bool {
		switch key {
		case "start":
			start, _ = ps.str(v, path+".start")
			startNode = v
		case "end":
			end, _ = ps.str(v, path+".end")
			endNode = v
		default:
			return false
		}
		return true
	})
	if len(ps.errs) > before {
		return window{}, false
	}
	if start == "" && end == "" {
		return window{}, true
	}
	if start == "" || end == "" {
		ps.fail(n, path, "set both start and end, or neither to disable quiet hours")
		return window{}, false
	}
	s, ok1 := ps.clock(startNode, path+".start", start)
	e, ok2 := ps.clock(endNode, path+".end", end)
	if !ok1 || !ok2 {
		return window{}, false
	}
	if s == e {
		ps.fail(n, path, "start and end are both %s; leave both empty to disable quiet hours", start)
		return window{}, false
	}
	return window{start: s, end: e}, true
}

func (ps *parser) clock(n *yaml.Node, path, s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		ps.fail(n, path, "invalid time %q; want HH:MM, such as 21:00", s)
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func (ps *parser) purposes(n *yaml.Node, path string) ([]string, bool) {
	list, ok := ps.list(n, path)
	if !ok {
		return nil, false
	}
	for i, s := range list {
		if !slices.Contains(contact.Purposes, s) {
			ps.fail(n.Content[i], path, "unknown purpose %q; want one of %s", s, strings.Join(contact.Purposes, ", "))
			ok = false
		}
	}
	return list, ok
}

// list reads a sequence of strings; null is the empty list.
func (ps *parser) list(n *yaml.Node, path string) ([]string, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, path, "must be a list, such as [a, b]")
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, item := range n.Content {
		item = deref(item)
		s, good := ps.str(item, path)
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (ps *parser) exempt(n *yaml.Node, path string, dst map[string]codeSet) {
	ps.each(n, path, "", func(purpose string, k, v *yaml.Node) bool {
		kp := path + "." + purpose
		if !slices.Contains(contact.Purposes, purpose) {
			ps.fail(k, kp, "unknown purpose; want one of %s", strings.Join(contact.Purposes, ", "))
			return true
		}
		codes, ok := ps.list(v, kp)
		if !ok {
			return true
		}
		var set codeSet
		for i, c := range codes {
			if bit, ok := exemptable[c]; ok {
				set |= bit
				continue
			}
			at := deref(v).Content[i]
			if why, ok := neverExempt[c]; ok {
				ps.fail(at, kp, "%s cannot be exempted: %s", c, why)
			} else {
				ps.fail(at, kp, "unknown reason code %q; want one of %s", c, exemptableList)
			}
		}
		dst[purpose] = set
		return true
	})
}

func (ps *parser) campaign(n *yaml.Node, path string) *override {
	o := &override{cooldown: map[contact.Channel]time.Duration{}, exempt: map[string]codeSet{}}
	ps.each(n, path, "cooldowns, frequency_cap, quiet_hours, exempt", func(key string, _, v *yaml.Node) bool {
		kp := path + "." + key
		switch key {
		case "cooldowns":
			ps.cooldowns(v, kp, o.cooldown)
		case "frequency_cap":
			var m, w = -1, time.Duration(-1)
			ps.frequencyCap(v, kp, &m, &w)
			if m >= 0 {
				o.capMax = &m
			}
			if w >= 0 {
				o.capWindow = &w
			}
		case "quiet_hours":
			if w, ok := ps.quietHours(v, kp); ok {
				o.quiet = &w
			}
		case "exempt":
			ps.exempt(v, kp, o.exempt)
		default:
			return false
		}
		return true
	})
	return o
}
