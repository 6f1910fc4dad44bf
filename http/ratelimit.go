package http

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/outreach/outreach/contact"
)

// Rate is a request rate limit: PerSecond on average, in bursts of up to
// Burst requests.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits holds the limit of each role, applied to each API key of the
// role on its own (or, with authentication off, to each client address at
// the admin role's limit). A role without an entry is not limited; a nil
// RateLimits limits nothing.
type RateLimits map[Role]Rate

// DefaultRateLimits is the default of OUTREACH_RATE_LIMITS: requests per
// second per key, each with a burst of one second's worth.
const DefaultRateLimits = "dialer=2000,agent=50,marketing=20,admin=100"

// ParseRateLimits reads "ROLE=RATE[/BURST],…", where RATE is requests per
// second and BURST, by default RATE rounded up, is how many may come at
// once; or "off" for no limits. Errors name the entry at fault.
func ParseRateLimits(s string) (RateLimits, error) {
	if s == "off" {
		return nil, nil
	}
	limits := RateLimits{}
	var errs []error
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		role, spec, ok := strings.Cut(entry, "=")
		r := Role(strings.TrimSpace(role))
		if !ok || !slices.Contains(roles, r) {
			errs = append(errs, fmt.Errorf("%q: want ROLE=RATE[/BURST] with a role of dialer, marketing, agent or admin", entry))
			continue
		}
		if _, dup := limits[r]; dup {
			errs = append(errs, fmt.Errorf("%q: the role %s is given twice", entry, r))
			continue
		}
		perSecond, burst, hasBurst := strings.Cut(strings.TrimSpace(spec), "/")
		rt := Rate{}
		var err error
		rt.PerSecond, err = strconv.ParseFloat(perSecond, 64)
		if err != nil || rt.PerSecond <= 0 || math.IsInf(rt.PerSecond, 0) {
			errs = append(errs, fmt.Errorf("%q: the rate must be a positive number of requests per second", entry))
			continue
		}
		rt.Burst = int(math.Min(math.Ceil(rt.PerSecond), math.MaxInt32))
		if hasBurst {
			if rt.Burst, err = strconv.Atoi(burst); err != nil || rt.Burst <= 0 {
				errs = append(errs, fmt.Errorf("%q: the burst must be a positive whole number", entry))
				continue
			}
		}
		limits[r] = rt
	}
	if len(limits) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New(`no limits; give ROLE=RATE entries, or "off"`))
	}
	return limits, errors.Join(errs...)
}

// maxLimiters bounds how many callers have a limiter at once. Keys are
// few; client addresses, with authentication off, are not.
const maxLimiters = 10_000

// limiters holds one token bucket per caller, in bounded memory. It is
// safe for concurrent use.
type limiters struct {
	limits  RateLimits
	limited *prometheus.CounterVec // by role
	mu      sync.Mutex
	by      map[string]*rate.Limiter
}

func newLimiters(limits RateLimits, reg prometheus.Registerer) *limiters {
	l := &limiters{limits: limits, by: map[string]*rate.Limiter{}, limited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outreach_http_rate_limited_total", Help: "Requests refused with 429 because their API key (or client) was over its role's rate limit, by role.",
	}, []string{"role"})}
	if reg != nil {
		reg.MustRegister(l.limited)
	}
	return l
}

// allow takes a token from the caller's bucket. When there is none, it
// returns how long until there will be one.
func (l *limiters) allow(caller string, role Role, now time.Time) (bool, time.Duration) {
	lim, ok := l.limiter(caller, role, now)
	if !ok || lim.AllowN(now, 1) {
		return true, 0
	}
	l.limited.WithLabelValues(string(role)).Inc()
	r := lim.ReserveN(now, 1)
	defer r.CancelAt(now)
	return false, r.DelayFrom(now)
}

// limiter returns the caller's bucket, creating it if need be; false if
// the role is not limited.
func (l *limiters) limiter(caller string, role Role, now time.Time) (*rate.Limiter, bool) {
	rt, ok := l.limits[role]
	if !ok {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.by[caller]; ok {
		return lim, true
	}
	if len(l.by) >= maxLimiters {
		l.sweep(now)
	}
	lim := rate.NewLimiter(rate.Limit(rt.PerSecond), rt.Burst)
	l.by[caller] = lim
	return lim, true
}

// sweep forgets the buckets that are full again, which a new bucket would
// replace exactly. If too many callers are still active, it forgets some
// of them too, giving them a fresh burst: memory stays bounded.
func (l *limiters) sweep(now time.Time) {
	for caller, lim := range l.by {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(l.by, caller)
		}
	}
	for caller := range l.by {
		if len(l.by) < maxLimiters*9/10 {
			break
		}
		delete(l.by, caller)
	}
}

// rateLimit refuses a request over its caller's limit with 429 and a
// Retry-After in whole seconds.
func (s *Server) rateLimit(c echo.Context, caller string, role Role) error {
	if s.limiters == nil {
		return nil
	}
	ok, wait := s.limiters.allow(caller, role, time.Now())
	if ok {
		return nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return contact.Errorf(contact.ERateLimited, "too many requests for the %s role; try again in %d s", role, secs)
}

// clientAddr is the address of the connection's peer, never a header a
// client can set.
func clientAddr(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}
