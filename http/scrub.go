package http

import (
	"context"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

const (
	// maxInlinePolicy bounds the policy part of a what-if scrub.
	maxInlinePolicy = 1 << 20
	// ScrubStatusTrailer is the HTTP trailer that ends a streamed scrub:
	// "ok", or "error: " and why the scrub stopped early.
	ScrubStatusTrailer = "X-Outreach-Scrub-Status"
	// ScrubErrorCode is the reasons value of the row that ends a scrub
	// stopped early, after its response had begun.
	ScrubErrorCode = "error"
)

// The columns a scrub reads, and those it writes after the input's.
var (
	scrubIn  = []string{"customer_id", "channel", "purpose", "product", "price", "currency", "phone", "timezone", "campaign"}
	scrubOut = []string{"allowed", "reasons", "detail"}
)

// DefaultScrubConcurrency is ListsConfig.ScrubConcurrency's default.
const DefaultScrubConcurrency = 4

// scrubRetryAfter is the Retry-After of a scrub refused because as many as
// may run are running: a guess, since a scrub may take seconds or hours.
const scrubRetryAfter = 10

// scrubSlots bounds the scrubs that run at once, and counts those refused.
type scrubSlots struct {
	slots    chan struct{}
	rejected prometheus.Counter
}

func newScrubSlots(n int, reg prometheus.Registerer) *scrubSlots {
	if n <= 0 {
		n = DefaultScrubConcurrency
	}
	s := &scrubSlots{slots: make(chan struct{}, n), rejected: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "outreach_scrub_rejected_total", Help: "List scrubs refused with 429 because as many as OUTREACH_SCRUB_CONCURRENCY were running.",
	})}
	if reg != nil {
		reg.MustRegister(s.rejected)
	}
	return s
}

// acquire takes a slot, or returns the 429 that refuses the scrub.
func (s *scrubSlots) acquire(c echo.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	s.rejected.Inc()
	c.Response().Header().Set("Retry-After", strconv.Itoa(scrubRetryAfter))
	return contact.Errorf(contact.ERateLimited, "%d list scrubs are running, as many as this server runs at once; try again in %d s", cap(s.slots), scrubRetryAfter)
}

func (s *scrubSlots) release() { <-s.slots }

// scrubSummary is the answer to a scrub with Accept: application/json.
type scrubSummary struct {
	Rows    int            `json:"rows"`
	Allowed int            `json:"allowed"`
	Blocked map[string]int `json:"blocked"` // rows blocked by each reason code; a row may count under several
	Invalid int            `json:"invalid"`
	Policy  string         `json:"policy"` // live, a preset's name, or inline
}

// scrubRequest is what a scrub was asked to do, from its query and body.
type scrubRequest struct {
	defaults    dedupe.Request // channel, purpose, product, offer, campaign, at
	currency    string         // of rows' prices that give none
	onlyAllowed bool
	raw         bool // cells as they are, not escaped for spreadsheets
	summary     bool // Accept: application/json
	policy      *dedupe.Policy
	policyName  string
	body        io.Reader
}

// scrub checks every row of an uploaded call list against the policy and
// streams the list back with allowed, reasons and detail appended; see the
// README, "Scrubbing a call list". The checking is the check service's
// (dedupe/check); this reads the CSV and writes the answer.
//
// The header row and the first batch of rows are read and checked before
// the response begins, so that an error in them is a proper 400. An error
// found later (a broken row, the store going down) can no longer change the
// status: the scrub then ends the CSV with a row whose reasons is "error"
// and whose detail says why, sets the trailer X-Outreach-Scrub-Status to
// "error: …" (it is "ok" otherwise), and logs it.
func (s *Server) scrub(c echo.Context) error {
	if err := s.scrubs.acquire(c); err != nil {
		return err
	}
	defer s.scrubs.release()
	rc := fullDuplex(c)
	// With full duplex on, a body the handler leaves unread is drained by
	// net/http after it has stopped watching the connection, and the
	// watch that draining starts races the next request's read: a panic
	// (golang/go#68560). Closing the body here drains it in time.
	defer c.Request().Body.Close()
	body := &progressReader{r: c.Request().Body, rc: rc, idle: s.cfg.Lists.UploadIdle}
	c.Request().Body = readCloser{body, c.Request().Body}
	ctx, cancel := uploadContext(c.Request().Context(), body)
	defer cancel()
	req, err := s.scrubRequest(c)
	if err != nil {
		return err
	}
	cr, err := newCSVReader(req.body)
	if err != nil {
		if contact.ErrorCode(err) != contact.EInvalid {
			err = bodyError(err)
		}
		return err
	}
	cols, _, err := columns(cr.header, append(slices.Clone(scrubIn), scrubOut...)...)
	if err != nil {
		return err
	}
	if _, ok := cols["customer_id"]; !ok {
		return lineError(1, "the header has no customer_id column; it needs one (other columns: %s)", strings.Join(scrubIn[1:], ", "))
	}
	w := &scrubWriter{idle: s.cfg.Lists.UploadIdle, req: req, cr: cr, rc: rc, c: c}
	w.sum = scrubSummary{Blocked: map[string]int{}, Policy: req.policyName}
	start := time.Now()
	err = s.cfg.Checker.Scrub(ctx, check.ScrubOptions{
		Defaults: req.defaults, Currency: req.currency, Policy: req.policy, PolicyName: req.policyName, Caller: callerOf(c), Batch: s.cfg.Lists.ScrubBatch, InFlight: s.cfg.Lists.ScrubInFlight,
	}, w.reader(cols), w.emit)
	err = w.finish(err)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err() // the client went away: no one reads an answer
	}
	s.log.Info("scrub", "rows", w.sum.Rows, "allowed", w.sum.Allowed, "invalid", w.sum.Invalid, "policy", w.sum.Policy,
		"outcome", scrubOutcome(err, w.stopped), "seconds", time.Since(start).Seconds())
	if err != nil {
		return err
	}
	if req.summary {
		return c.JSON(http.StatusOK, w.sum)
	}
	return nil
}

func scrubOutcome(err error, stopped bool) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "client gone"
	case err != nil:
		return contact.ErrorCode(err)
	case stopped:
		return "stopped early"
	}
	return "ok"
}

// scrubRequest reads the query, the Accept header and, for a multipart
// body, the inline policy.
func (s *Server) scrubRequest(c echo.Context) (*scrubRequest, error) {
	q := c.QueryParams()
	r := &scrubRequest{
		defaults: dedupe.Request{
			Channel: contact.Call, Purpose: q.Get("purpose"), Product: q.Get("product"), Campaign: q.Get("campaign"),
		},
		summary: acceptsJSON(c.Request().Header.Get(echo.HeaderAccept)),
	}
	if v := q.Get("channel"); v != "" {
		r.defaults.Channel = contact.Channel(v)
	}
	switch v := q.Get("only"); v {
	case "":
	case "allowed":
		r.onlyAllowed = true
	default:
		return nil, contact.Invalid("only", "must be allowed; got %q", v)
	}
	if v := q.Get("raw"); v != "" {
		raw, err := strconv.ParseBool(v)
		if err != nil {
			return nil, contact.Invalid("raw", "must be true or false; got %q", contact.Clip(v))
		}
		r.raw = raw
	}
	r.currency = q.Get("currency")
	if err := r.defaultOffer(q.Get("price"), r.currency, s.cfg.Defaults); err != nil {
		return nil, err
	}
	if v := q.Get("at"); v != "" {
		t, err := contact.ParseTime("at", v)
		if err != nil {
			return nil, err
		}
		r.defaults.At = t
	}
	// The defaults must make a valid request with any customer id.
	probe := r.defaults
	probe.CustomerID = "x"
	if err := probe.Normalize(s.cfg.Now(), s.cfg.Defaults); err != nil {
		return nil, err
	}
	r.defaults.Purpose = probe.Purpose
	if !probe.Planned(s.cfg.Now()) {
		r.defaults.At = time.Time{} // now, when each batch is checked
	}

	var inline []byte
	var body io.Reader = c.Request().Body // read through a progressReader (scrub)
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); mt == "multipart/form-data" {
		var err error
		if body, inline, err = multipartList(c); err != nil {
			return nil, err
		}
	} else if err := requireCSV(c); err != nil {
		return nil, err
	}
	r.body = body
	var err error
	r.policy, r.policyName, err = s.scrubPolicy(q.Get("policy"), inline)
	return r, err
}

// defaultOffer reads the query's price and currency, the offer of rows that
// give none.
func (r *scrubRequest) defaultOffer(price, currency string, d contact.Defaults) error {
	if price == "" && currency == "" {
		return nil
	}
	if currency == "" {
		currency = d.Currency
		if currency == "" {
			currency = contact.DefaultCurrency
		}
	}
	if price == "" {
		return contact.ValidCurrency("currency", currency)
	}
	m, err := contact.ParseMoney("price", strings.TrimSpace(price), "currency", currency)
	if err != nil {
		return err
	}
	r.defaults.Offer = &contact.Offer{Price: &m}
	return nil
}

// multipartList reads a multipart body up to its list part: an optional
// policy part (YAML) first, then the list (CSV), which is returned
// unread.
func multipartList(c echo.Context) (io.Reader, []byte, error) {
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return nil, nil, contact.Invalid("", "malformed multipart body: %v", err)
	}
	var inline []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil, contact.Invalid("list", "the multipart body has no list part")
		}
		if err != nil {
			return nil, nil, contact.Invalid("", "malformed multipart body: %v", err)
		}
		switch part.FormName() {
		case "policy":
			inline, err = io.ReadAll(io.LimitReader(part, maxInlinePolicy+1))
			if err != nil {
				return nil, nil, bodyError(err)
			}
			if len(inline) > maxInlinePolicy {
				return nil, nil, contact.Invalid("policy", "the policy part is larger than %d bytes", maxInlinePolicy)
			}
			if len(inline) == 0 {
				inline = []byte("{}") // an empty policy: the defaults
			}
		case "list":
			return part, inline, nil
		default:
			return nil, nil, contact.Invalid("", "unknown part %q; want policy (YAML, first) and list (CSV)", part.FormName())
		}
	}
}

// scrubPolicy picks the policy of a scrub: the live one, a preset, or one
// given inline.
func (s *Server) scrubPolicy(name string, inline []byte) (*dedupe.Policy, string, error) {
	switch {
	case inline != nil && name != "":
		return nil, "", contact.Invalid("policy", "give a preset name or an inline policy part, not both")
	case inline != nil:
		p, err := dedupe.ParsePolicy(inline)
		if err != nil {
			return nil, "", contact.Invalid("policy", "%v", err)
		}
		return p, "inline", nil
	case name == "" || name == "live":
		return s.cfg.Checker.Policy(), "live", nil
	}
	var presets map[string]*dedupe.Policy
	if s.cfg.Lists.Presets != nil {
		presets = s.cfg.Lists.Presets()
	}
	if p, ok := presets[name]; ok {
		return p, name, nil
	}
	names := slices.Sorted(maps.Keys(presets))
	if len(names) == 0 {
		return nil, "", contact.Invalid("policy", "there is no policy preset %q: this server has none (OUTREACH_POLICY_PRESETS)", contact.Clip(name))
	}
	return nil, "", contact.Invalid("policy", "there is no policy preset %q; the presets are %s", contact.Clip(name), strings.Join(names, ", "))
}

// acceptsJSON reports whether an Accept header prefers JSON to CSV: the
// first of the two it names is JSON.
func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case echo.MIMEApplicationJSON:
			return true
		case "text/csv":
			return false
		}
	}
	return false
}
