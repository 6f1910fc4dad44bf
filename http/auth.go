package http

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe/check"
)

// Role is what an API key may do.
type Role string

// Roles. RoleAdmin may do everything.
const (
	RoleDialer    Role = "dialer"    // checks, batches, claims, posting events
	RoleMarketing Role = "marketing" // list scrubs and suppression lists
	RoleAgent     Role = "agent"     // timelines, the web page, checks without claims
	RoleAdmin     Role = "admin"
)

var roles = []Role{RoleDialer, RoleMarketing, RoleAgent, RoleAdmin}

// Keys holds the SHA-256 hashes of the API keys and their roles. The keys
// themselves are never stored. A Keys is safe for concurrent use, and its
// keys can be replaced while it is used (Replace).
type Keys struct {
	set atomic.Pointer[keySet]
}

type keySet struct {
	entries []keyEntry
	version string // a hash of the keys file
}

type keyEntry struct {
	hash [sha256.Size]byte
	role Role
}

// ParseKeys reads a keys file: one key per line, "ROLE SHA256HEX", where
// the hex is the SHA-256 of the key. Blank lines and lines starting with #
// are ignored. Errors name the line.
func ParseKeys(data []byte) (*Keys, error) {
	k := &keySet{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			errs = append(errs, fmt.Errorf("line %d: want \"ROLE SHA256HEX\"", n))
			continue
		}
		role := Role(fields[0])
		if !slices.Contains(roles, role) {
			errs = append(errs, fmt.Errorf("line %d: unknown role %q; want dialer, marketing, agent or admin", n, fields[0]))
			continue
		}
		sum, err := hex.DecodeString(fields[1])
		if err != nil || len(sum) != sha256.Size {
			errs = append(errs, fmt.Errorf("line %d: want the SHA-256 of the key as 64 hex digits", n))
			continue
		}
		e := keyEntry{role: role}
		copy(e.hash[:], sum)
		k.entries = append(k.entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(k.entries) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no keys"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	sum := sha256.Sum256(data)
	k.version = hex.EncodeToString(sum[:6])
	keys := &Keys{}
	keys.set.Store(k)
	return keys, nil
}

// Replace makes k hold the keys of other, at once for every request.
func (k *Keys) Replace(other *Keys) { k.set.Store(other.set.Load()) }

// Version identifies the keys in force: a hash of the keys file, so that
// replicas with different keys can be told apart.
func (k *Keys) Version() string { return k.set.Load().version }

// Role returns the role of key. It compares against every entry in constant
// time, so that timing tells nothing about which hash came close.
func (k *Keys) Role(key string) (Role, bool) {
	role, _ := k.lookup(key)
	return role, role != ""
}

// lookup returns the role of key and an id of it: the first 6 bytes of its
// SHA-256 in hex, which names the key in rate limits and the audit trail
// without giving it away; "" if the key is unknown.
func (k *Keys) lookup(key string) (Role, string) {
	sum := sha256.Sum256([]byte(key))
	var found Role
	for _, e := range k.set.Load().entries {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found = e.role
		}
	}
	if found == "" {
		return "", ""
	}
	return found, hex.EncodeToString(sum[:6])
}

const (
	roleKey  = "outreach.role"
	keyIDKey = "outreach.key_id"
)

// authorize lets a request through if its key has one of allowed or the
// admin role, and the key is within its role's rate limit. Without keys,
// every request is an admin's, limited by client address.
func (s *Server) authorize(allowed ...Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.cfg.Keys == nil {
				c.Set(roleKey, RoleAdmin)
				if err := s.rateLimit(c, "addr "+clientAddr(c), RoleAdmin); err != nil {
					return err
				}
				return next(c)
			}
			key, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			role, keyID := s.cfg.Keys.lookup(strings.TrimSpace(key))
			if !ok || role == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="outreach"`)
				return contact.Errorf(contact.EUnauthorized, "send a valid API key as Authorization: Bearer KEY")
			}
			if role != RoleAdmin && !slices.Contains(allowed, role) {
				return contact.Errorf(contact.EForbidden, "the %s role may not use this endpoint", role)
			}
			if err := s.rateLimit(c, "key "+keyID, role); err != nil {
				return err
			}
			c.Set(roleKey, role)
			c.Set(keyIDKey, keyID)
			return next(c)
		}
	}
}

// callerOf is who asks, for the audit trail.
func callerOf(c echo.Context) check.Caller {
	id, _ := c.Get(keyIDKey).(string)
	return check.Caller{Role: string(roleOf(c)), KeyID: id}
}

func roleOf(c echo.Context) Role {
	r, _ := c.Get(roleKey).(Role)
	return r
}
