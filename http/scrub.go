package http

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Defaults of ListsConfig.
const (
	DefaultScrubBatch    = 500
	DefaultScrubInFlight = 4
)

const (
	// scrubBatchBytes closes a batch early when its rows are long, so that
	// memory stays bounded whatever the rows hold.
	scrubBatchBytes = 1 << 20
	// scrubIdle is how long a scrub waits for the client to send the next
	// batch of rows or to take the last batch of results.
	scrubIdle = 2 * time.Minute
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
	onlyAllowed bool
	summary     bool // Accept: application/json
	policy      *dedupe.Policy
	policyName  string
	body        io.Reader
}

// scrub checks every row of an uploaded call list against the policy and
// streams the list back with allowed, reasons and detail appended; see the
// README, "Scrubbing a call list".
//
// The header row and the first batch of rows are read and checked before
// the response begins, so that an error in them is a proper 400. An error
// found later (a broken row, the store going down) can no longer change the
// status: the scrub then ends the CSV with a row whose reasons is "error"
// and whose detail says why, sets the trailer X-Outreach-Scrub-Status to
// "error: …" (it is "ok" otherwise), and logs it.
func (s *Server) scrub(c echo.Context) error {
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

	rc := fullDuplex(c)
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	p := &scrubPipeline{
		s: s, req: req, cr: cr, cols: cols, rc: rc,
		batch: s.cfg.Lists.ScrubBatch, inFlight: s.cfg.Lists.ScrubInFlight,
	}
	start := time.Now()
	err = p.run(ctx, cancel, c)
	if err != nil && c.Request().Context().Err() != nil {
		err = c.Request().Context().Err() // the client went away: no one reads an answer
	}
	sum := p.sum
	outcome := "ok"
	switch {
	case errors.Is(err, context.Canceled):
		outcome = "client gone"
	case err != nil:
		outcome = contact.ErrorCode(err)
	case p.stopped:
		outcome = "stopped early"
	}
	s.log.Info("scrub", "rows", sum.Rows, "allowed", sum.Allowed, "invalid", sum.Invalid, "policy", sum.Policy,
		"outcome", outcome, "seconds", time.Since(start).Seconds())
	if err != nil {
		return err
	}
	if req.summary {
		return c.JSON(http.StatusOK, sum)
	}
	return nil
}

// scrubRequest reads the query, the Accept header and, for a multipart
// body, the inline policy.
func (s *Server) scrubRequest(c echo.Context) (*scrubRequest, error) {
	q := c.QueryParams()
	now := s.cfg.Now()
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
	if v := q.Get("price"); v != "" {
		price, err := parsePrice(v)
		if err != nil {
			return nil, err
		}
		r.defaults.Offer = &contact.Offer{Price: &price, Currency: q.Get("currency")}
	} else if v := q.Get("currency"); v != "" {
		r.defaults.Offer = &contact.Offer{Currency: v}
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
	if err := probe.Normalize(now); err != nil {
		var ce *contact.Error
		if errors.As(err, &ce) && strings.HasPrefix(ce.Field, "offer.") {
			ce.Field = strings.TrimPrefix(ce.Field, "offer.")
		}
		return nil, err
	}
	r.defaults.At = probe.At
	r.defaults.Purpose = probe.Purpose

	var inline []byte
	var body io.Reader = c.Request().Body
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
		return s.cfg.Policy(), "live", nil
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

func parsePrice(v string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || p < 0 || p != p || p > 1e15 {
		return 0, contact.Invalid("price", "must be a number, 0 or more, such as 49.90; got %q", contact.Clip(v))
	}
	return p, nil
}

// scrubPipeline reads, checks and writes one scrub. A reader goroutine cuts
// the rows into batches; up to inFlight of them are checked at once, and the
// handler writes their results in order as each completes. At most about
// 2×inFlight batches exist at a time, whatever the length of the list.
type scrubPipeline struct {
	s        *Server
	req      *scrubRequest
	cr       *csvReader
	cols     map[string]int
	rc       *http.ResponseController
	batch    int
	inFlight int

	sum     scrubSummary
	out     *csv.Writer
	keep    []int // the input columns written out
	row     []string
	started bool // the response has begun
	stopped bool // the scrub ended early, after the response had begun
}

type scrubBatch struct {
	rows    []scrubRow
	reqs    []dedupe.Request
	results []dedupe.Result
	err     error // the store's
	end     error // the error that ended the list after these rows
	done    chan struct{}
}

type scrubRow struct {
	rec    []string
	req    int    // index in reqs; -1 for an invalid row
	detail string // why the row is invalid
}

func (p *scrubPipeline) run(ctx context.Context, cancel context.CancelFunc, c echo.Context) error {
	if p.batch <= 0 {
		p.batch = DefaultScrubBatch
	}
	if p.inFlight <= 0 {
		p.inFlight = DefaultScrubInFlight
	}
	p.sum = scrubSummary{Blocked: map[string]int{}, Policy: p.req.policyName}
	ordered := make(chan *scrubBatch, p.inFlight)
	work := make(chan *scrubBatch)
	var wg sync.WaitGroup
	wg.Go(func() { p.read(ctx, ordered, work) })
	now := p.s.cfg.Now()
	var norm func(string) (string, error)
	if sup := p.s.cfg.Lists.Suppressions; sup != nil {
		norm = sup.NormalizePhone
	}
	for range p.inFlight {
		wg.Go(func() {
			for b := range work {
				p.check(ctx, b, now, norm)
				close(b.done)
			}
		})
	}
	defer func() {
		// The reader stops at its next batch, or when its read of the body
		// fails: at once if the client has gone, at the latest after
		// scrubIdle if it stalls. (Setting a read deadline in the past to
		// hurry it would also break the connection's next request, once
		// the body has been read whole.)
		cancel()
		wg.Wait()
		// The server leaves a write deadline in place for the connection's
		// next request.
		_ = p.rc.SetWriteDeadline(time.Time{})
	}()

	for b := range ordered {
		<-b.done
		if err := p.write(c, b); err != nil || p.stopped {
			return err
		}
	}
	if ctx.Err() != nil {
		return contact.Invalid("", "the request was canceled")
	}
	if p.req.summary {
		return nil
	}
	if err := p.begin(c); err != nil {
		return err
	}
	p.out.Flush()
	c.Response().Header().Set(ScrubStatusTrailer, "ok")
	return p.out.Error()
}

// check builds the requests of a batch's rows and checks the valid ones.
// Checkers run it in parallel: reading phone numbers and decoding timelines
// are most of a scrub's work.
func (p *scrubPipeline) check(ctx context.Context, b *scrubBatch, now time.Time, norm func(string) (string, error)) {
	b.reqs = make([]dedupe.Request, 0, len(b.rows))
	for i := range b.rows {
		row := &b.rows[i]
		r, err := p.request(row.rec, now, norm)
		if err != nil {
			row.detail = rowDetail(err)
			continue
		}
		row.req = len(b.reqs)
		b.reqs = append(b.reqs, r)
	}
	if len(b.reqs) > 0 {
		b.results, b.err = p.s.cfg.Checker.Check(ctx, p.req.policy, b.reqs)
	}
}

// read cuts the list into batches and hands each to the writer, in order,
// and to a checker.
func (p *scrubPipeline) read(ctx context.Context, ordered, work chan<- *scrubBatch) {
	defer close(work)
	defer close(ordered)
	// Once the body is read, the server reads the connection in the
	// background to notice a client that goes away; a deadline left in
	// place would end that read, and the request with it.
	defer func() { _ = p.rc.SetReadDeadline(time.Time{}) }()
	for {
		_ = p.rc.SetReadDeadline(time.Now().Add(scrubIdle))
		b := &scrubBatch{rows: make([]scrubRow, 0, p.batch), done: make(chan struct{})}
		size := 0
		for len(b.rows) < p.batch && size < scrubBatchBytes {
			rec, err := p.cr.Read()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.end = err
				}
				break
			}
			b.rows = append(b.rows, scrubRow{rec: rec, req: -1})
			for _, f := range rec {
				size += len(f)
			}
		}
		last := b.end != nil || len(b.rows) < p.batch && size < scrubBatchBytes
		if len(b.rows) == 0 && b.end == nil {
			return // EOF on a batch boundary
		}
		select {
		case ordered <- b:
		case <-ctx.Done():
			return
		}
		select {
		case work <- b:
		case <-ctx.Done():
			// Every batch handed to the writer must be done.
			b.err = ctx.Err()
			close(b.done)
			return
		}
		if last {
			return
		}
	}
}

// request builds the check of one row: the query's defaults, overridden by
// the row's own columns.
func (p *scrubPipeline) request(rec []string, now time.Time, norm func(string) (string, error)) (dedupe.Request, error) {
	r := p.req.defaults
	get := func(col string) string {
		if i, ok := p.cols[col]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	r.CustomerID = get("customer_id")
	if v := get("channel"); v != "" {
		r.Channel = contact.Channel(v)
	}
	if v := get("purpose"); v != "" {
		r.Purpose = v
	}
	if v := get("product"); v != "" {
		r.Product = v
	}
	if v := get("campaign"); v != "" {
		r.Campaign = v
	}
	if v := get("timezone"); v != "" {
		r.Timezone = v
	}
	price, currency := get("price"), get("currency")
	if price != "" || currency != "" {
		o := contact.Offer{}
		if r.Offer != nil {
			o = *r.Offer
		}
		if price != "" {
			v, err := parsePrice(price)
			if err != nil {
				return r, err
			}
			o.Price = &v
		}
		if currency != "" {
			o.Currency = currency
		}
		r.Offer = &o
	}
	if err := r.Normalize(now); err != nil {
		return r, err
	}
	if v := get("phone"); v != "" {
		r.Phone = v
		if norm != nil {
			e164, err := norm(v)
			if err != nil {
				return r, err
			}
			r.Phone = e164
		}
	}
	return r, nil
}

// rowDetail is the detail of an invalid row: "field: message", with the
// request's field names turned into the list's column names.
func rowDetail(err error) string {
	var ce *contact.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	field := strings.TrimPrefix(ce.Field, "offer.")
	if field == "" {
		return ce.Message
	}
	return field + ": " + ce.Message
}

// write tallies a checked batch and, for a CSV answer, writes it.
func (p *scrubPipeline) write(c echo.Context, b *scrubBatch) error {
	if b.err != nil {
		if contact.ErrorCode(b.err) == contact.EUnavailable {
			return p.stop(c, contact.Unavailable("the store", b.err), "the store is unavailable")
		}
		return p.stop(c, b.err, errorMessage(b.err))
	}
	if b.end != nil && contact.ErrorCode(b.end) != contact.EInvalid {
		// The body could not be read: the client went away, or stalled.
		return p.stop(c, bodyError(b.end), "")
	}
	if b.end != nil && !p.started {
		return b.end // a 400 naming the line, before anything was written
	}
	if !p.req.summary {
		if err := p.begin(c); err != nil {
			return err
		}
		_ = p.rc.SetWriteDeadline(time.Now().Add(scrubIdle))
	}
	for i := range b.rows {
		row := &b.rows[i]
		p.sum.Rows++
		var allowed bool
		var reasons, detail string
		if row.req < 0 {
			p.sum.Invalid++
			reasons, detail = contact.EInvalid, row.detail
		} else {
			res := &b.results[row.req]
			allowed = res.Allowed
			if allowed {
				p.sum.Allowed++
			}
			reasons, detail = p.reasons(res)
		}
		if p.req.summary || (p.req.onlyAllowed && !allowed) {
			continue
		}
		if err := p.writeRow(row.rec, allowed, reasons, detail); err != nil {
			return p.stop(c, nil, "")
		}
	}
	if b.end != nil {
		return p.stop(c, b.end, errorMessage(b.end))
	}
	if p.req.summary {
		return nil
	}
	p.out.Flush()
	if err := p.out.Error(); err != nil {
		return p.stop(c, nil, "")
	}
	if err := p.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return p.stop(c, nil, "")
	}
	return nil
}

// errorMessage is the message of err that a client may see.
func errorMessage(err error) string {
	var ce *contact.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return "internal error"
}

// reasons returns the codes of the blocking reasons, joined with |, and the
// first one's sentence; warnings are left out. It counts them too.
func (p *scrubPipeline) reasons(res *dedupe.Result) (string, string) {
	var codes []string
	var detail string
	for i := range res.Reasons {
		r := &res.Reasons[i]
		if r.Warning {
			continue
		}
		if detail == "" {
			detail = r.Message
		}
		if !slices.Contains(codes, r.Code) {
			codes = append(codes, r.Code)
			p.sum.Blocked[r.Code]++
		}
	}
	return strings.Join(codes, "|"), detail
}

// begin starts the CSV answer: the status, the trailer's declaration, and
// the header row: the input's columns, except a previous scrub's allowed,
// reasons and detail, then the new ones.
func (p *scrubPipeline) begin(c echo.Context) error {
	if p.started {
		return nil
	}
	p.started = true
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Trailer", ScrubStatusTrailer)
	c.Response().WriteHeader(http.StatusOK)
	if p.cr.bom {
		if _, err := c.Response().Write(utf8BOM); err != nil {
			return err
		}
	}
	p.out = csv.NewWriter(c.Response())
	for i, name := range p.cr.header {
		if !slices.Contains(scrubOut, strings.ToLower(strings.TrimSpace(name))) {
			p.keep = append(p.keep, i)
		}
	}
	p.row = make([]string, 0, len(p.keep)+len(scrubOut))
	header := make([]string, 0, cap(p.row))
	for _, i := range p.keep {
		header = append(header, p.cr.header[i])
	}
	return p.out.Write(append(header, scrubOut...))
}

func (p *scrubPipeline) writeRow(rec []string, allowed bool, reasons, detail string) error {
	p.row = p.row[:0]
	for _, i := range p.keep {
		p.row = append(p.row, rec[i])
	}
	return p.out.Write(append(p.row, strconv.FormatBool(allowed), reasons, detail))
}

// stop ends a scrub early with err. Before the answer has begun, err is the
// answer. After, the status is sent already: the CSV ends with an error row
// saying why (unless why is "", when the client is gone), the trailer says
// so, and the scrub returns a nil error.
func (p *scrubPipeline) stop(c echo.Context, err error, why string) error {
	if !p.started {
		if err == nil {
			err = contact.Invalid("", "the request was canceled")
		}
		return err
	}
	p.stopped = true
	p.s.log.Warn("scrub: stopped after the response had begun", "rows", p.sum.Rows, "error", err)
	if why == "" {
		return nil
	}
	msg := "the scrub stopped here: " + why + "; the rows above were checked, the rest of the list was not"
	rec := make([]string, len(p.cr.header))
	_ = p.writeRow(rec, false, ScrubErrorCode, msg)
	p.out.Flush()
	c.Response().Header().Set(ScrubStatusTrailer, "error: "+why)
	return nil
}
