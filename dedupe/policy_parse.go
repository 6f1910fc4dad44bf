package dedupe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/contact"
)

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
	f := &policyFile{p: p, channels: map[contact.Channel]*override{}, campaigns: map[string]*override{}}
	f.ps.each(doc.Content[0], "", topKeys, f.top)
	if len(f.ps.errs) > 0 {
		return nil, errors.Join(f.ps.errs...)
	}
	f.resolve()
	return p, nil
}

// policyFile is a policy being read: the overrides wait until the whole file
// is read, since a campaign starts from the channels' values.
type policyFile struct {
	ps        parser
	p         *Policy
	channels  map[contact.Channel]*override
	campaigns map[string]*override
}

// top reads one top-level key; false if it is unknown.
func (f *policyFile) top(key string, _, v *yaml.Node) bool {
	ps, p := &f.ps, f.p
	switch key {
	case "cooldowns":
		ps.cooldowns(v, key, p.base.cooldown)
	case "frequency_cap":
		ps.frequencyCap(v, key, &p.base.capMax, &p.base.capWindow)
	case "purchase_lookback":
		ps.duration(v, key, &p.purchaseLookback)
	case "offer_validity":
		ps.duration(v, key, &p.offerValidity)
	case "followup_sla":
		ps.duration(v, key, &p.followupSLA)
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
		f.onUnavailable(v, key)
	case "exempt":
		ps.exempt(v, key, p.base.exempt)
	case "open_complaint":
		f.openComplaint(v, key)
	case "channels":
		ps.each(v, key, "", func(name string, k, v *yaml.Node) bool {
			f.channel(name, k, v, key+"."+name)
			return true
		})
	case "campaigns":
		ps.each(v, key, "", func(name string, k, v *yaml.Node) bool {
			path := key + "." + name
			if strings.TrimSpace(name) == "" {
				ps.fail(k, path, "a campaign name must not be blank")
				return true
			}
			f.campaigns[name] = ps.campaign(v, path)
			return true
		})
	case "teams":
		ps.each(v, key, "", func(name string, k, v *yaml.Node) bool {
			f.team(name, k, v, key+"."+name)
			return true
		})
	default:
		return false
	}
	return true
}

func (f *policyFile) onUnavailable(v *yaml.Node, key string) {
	s, ok := f.ps.str(v, key)
	if !ok {
		return
	}
	switch s {
	case "open":
		f.p.failOpen = true
	case "closed":
		f.p.failOpen = false
	default:
		f.ps.fail(v, key, "must be open or closed; got %q", s)
	}
}

func (f *policyFile) openComplaint(v *yaml.Node, key string) {
	f.ps.each(v, key, "block", func(sub string, _, v *yaml.Node) bool {
		if sub != "block" {
			return false
		}
		if list, ok := f.ps.purposes(v, key+".block"); ok {
			f.p.complaintBlocks = map[string]bool{}
			for _, s := range list {
				f.p.complaintBlocks[s] = true
			}
		}
		return true
	})
}

func (f *policyFile) channel(name string, k, v *yaml.Node, path string) {
	ps := &f.ps
	if err := contact.ValidChannel(path, contact.Channel(name)); err != nil {
		ps.fail(k, path, "unknown channel; want one of %s", channelList())
		return
	}
	o := &override{}
	f.channels[contact.Channel(name)] = o
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
}

// team reads a team's overrides: its follow-up SLA.
func (f *policyFile) team(name string, k, v *yaml.Node, path string) {
	if strings.TrimSpace(name) == "" {
		f.ps.fail(k, path, "a team name must not be blank")
		return
	}
	f.ps.each(v, path, "followup_sla", func(sub string, _, v *yaml.Node) bool {
		if sub != "followup_sla" {
			return false
		}
		var d time.Duration
		if f.ps.duration(v, path+"."+sub, &d) {
			f.p.teamSLA[name] = d
		}
		return true
	})
}

// resolve applies the overrides: channel overrides go into the base, and
// campaigns start from that base.
func (f *policyFile) resolve() {
	p := f.p
	for ch, o := range f.channels {
		if d, ok := o.cooldown[ch]; ok {
			p.base.cooldown[ch] = d
		}
		if o.quiet != nil {
			p.base.quiet[ch] = *o.quiet
		}
	}
	for name, o := range f.campaigns {
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
}

const topKeys = "cooldowns, frequency_cap, purchase_lookback, offer_validity, followup_sla, quiet_hours, " +
	"claim_ttl, on_unavailable, exempt, open_complaint, channels, campaigns, teams"

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
