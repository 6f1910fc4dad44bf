package dedupe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
	"go.yaml.in/yaml/v3"
)

// The parser's readers of YAML nodes: each collects its errors with the
// line and path of the node.

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
