// Package phone reads phone numbers into their E.164 form and finds the time
// zone a number belongs to, with github.com/nyaruka/phonenumbers. It does no
// I/O and is safe for concurrent use.
package phone

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region of numbers written without a country code,
// unless a Parser is given another.
const DefaultRegion = "NO"

// MaxLen is the longest input Normalize reads, in bytes.
const MaxLen = 64

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// IsE164 reports whether s has the E.164 form: +, a country code and up to
// 15 digits in all.
func IsE164(s string) bool { return e164.MatchString(s) }

// ValidRegion reports whether region is an upper-case region code that
// numbers can be read in, such as NO or GB.
func ValidRegion(region string) error {
	if !phonenumbers.GetSupportedRegions()[region] || region != strings.ToUpper(region) {
		return fmt.Errorf("%q is not a supported region code; want an upper-case ISO 3166 code such as NO or GB", region)
	}
	return nil
}

// Parser reads numbers in one default region, and remembers recent results
// so that a number read once (by a scrub, row by row) is not parsed again.
type Parser struct {
	region string
	cache  cache
}

// NewParser returns a Parser for numbers without a country code in region
// ("" means DefaultRegion). It fails for a region that ValidRegion refuses.
func NewParser(region string) (*Parser, error) {
	if region == "" {
		region = DefaultRegion
	}
	if err := ValidRegion(region); err != nil {
		return nil, err
	}
	return &Parser{region: region}, nil
}

// Region returns the parser's default region.
func (p *Parser) Region() string { return p.region }

// Error says why a number cannot be read. Its message is safe to show to
// the client who sent the number.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Normalize returns raw as an E.164 number such as +4791234567. Every way of
// writing a number gives the same result, its E.164 form included. The
// error is an *Error when raw is not a possible phone number.
func (p *Parser) Normalize(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return "", &Error{"is empty"}
	case p.cache.has(raw):
		return raw, nil
	case len(raw) > MaxLen:
		return "", &Error{fmt.Sprintf("must be at most %d characters", MaxLen)}
	}
	e, ok := parse(raw, p.region)
	if !ok {
		return "", &Error{fmt.Sprintf("%q is not a phone number (read in region %s unless it starts with + and a country code)", clip(raw), p.region)}
	}
	// libphonenumber does not map all of its own output to itself: it reads
	// the E.164 form it makes of some numbers with legacy prefixes (Mexico's
	// mobile 1, Belarus's trunk 8) as another number. Read the result again
	// until it is stable, so that a number given in E.164 form finds what was
	// stored under any other spelling of it.
	for prev, i := raw, 0; e != prev && i < 3 && !p.cache.has(e); i++ { // a cached result is stable
		next, ok := parse(e, p.region)
		if !ok {
			break
		}
		prev, e = e, next
	}
	p.cache.remember(e)
	return e, nil
}

func parse(raw, region string) (string, bool) {
	n, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// Zone returns the IANA time zone of an E.164 number when the number maps to
// exactly one zone (all of Norway; not all of the United States).
func Zone(e164 string) (string, bool) {
	if !IsE164(e164) {
		return "", false
	}
	zones, err := phonenumbers.GetTimezonesForPrefix(e164)
	if err != nil || len(zones) != 1 || zones[0] == phonenumbers.UNKNOWN_TIMEZONE {
		return "", false
	}
	return zones[0], true
}

// ErrNotE164 is returned by CheckE164.
var ErrNotE164 = errors.New("must be in E.164 form, such as +4791234567")

// CheckE164 returns ErrNotE164 unless s is in E.164 form.
func CheckE164(s string) error {
	if !IsE164(s) {
		return ErrNotE164
	}
	return nil
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// cache holds recent outputs of Normalize. A hit is exact, never a guess: a
// slot holds the very string Normalize returned, which normalises to itself.
// Collisions only evict, and a miss parses.
type cache struct {
	slots [cacheSize]atomic.Pointer[string]
}

const cacheSize = 1 << 14

func (c *cache) slot(s string) *atomic.Pointer[string] {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return &c.slots[h&(cacheSize-1)]
}

func (c *cache) has(s string) bool {
	if len(s) < 2 || s[0] != '+' {
		return false
	}
	p := c.slot(s).Load()
	return p != nil && *p == s
}

func (c *cache) remember(s string) { c.slot(s).Store(&s) }
