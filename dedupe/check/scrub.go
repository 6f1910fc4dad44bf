package check

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Defaults of ScrubOptions.
const (
	DefaultScrubBatch     = 500
	DefaultScrubInFlight  = 4
	DefaultScrubBatchSize = 1 << 20
)

// scrubReadTimeout bounds the store reads of one batch of a scrub, which,
// unlike a dialer, can wait.
const scrubReadTimeout = 30 * time.Second

// ScrubOptions configure a scrub. A zero value of a field takes its default.
type ScrubOptions struct {
	// Defaults are the check of a row that leaves a field empty: channel,
	// purpose, product, offer, campaign and at. Its At, when not zero, is
	// the planned time of the calls.
	Defaults dedupe.Request
	// Currency is that of rows' prices that give none; "" means the
	// currency of Defaults.Offer, or else the service's default.
	Currency string
	Policy   *dedupe.Policy // nil: the policy in force
	// PolicyName names the policy for the audit trail: live, a preset's
	// name, or inline.
	PolicyName string
	Caller     Caller // who asks, for the audit trail
	Batch      int    // rows per store round trip
	InFlight   int    // batches checked at once
	// BatchSize closes a batch early when its rows cost this many bytes
	// (rowCost), so that memory stays bounded whatever the rows hold.
	BatchSize int
}

// Row is one row of a call list: the text of the fields that override the
// scrub's defaults, and the caller's record of the row, handed back with its
// verdict untouched. The fields are expected to be Record's.
type Row struct {
	CustomerID, Channel, Purpose, Product, Price, Currency, Phone, Timezone, Campaign string

	Record []string
}

// What a row of a batch costs in memory besides the text of its record: a
// string header for each field, and the row, its request and its verdict.
var (
	fieldCost = int(unsafe.Sizeof(""))
	rowCost   = int(unsafe.Sizeof(Row{}) + unsafe.Sizeof(Verdict{}) + unsafe.Sizeof(dedupe.Request{}))
)

// cost is what r holds in memory, as ScrubOptions.BatchSize counts it: a
// row of a thousand empty fields is not free.
func (r *Row) cost() int {
	n := rowCost
	for _, f := range r.Record {
		n += fieldCost + len(f)
	}
	return n
}

// Verdict is the answer for one row: Invalid when the row could not be
// checked (an EInvalid error naming the field), else the check's Result.
// A row whose facts could not be read is blocked with the unavailable
// reason, whatever the policy's on_unavailable: a scrub never fails open.
type Verdict struct {
	Row     *Row
	Invalid error
	Result  dedupe.Result
}

// Scrub checks the rows that next returns, in batches, several batches at
// once, and hands their verdicts to emit in list order, one batch at a time,
// with the error that ended the list after that batch (nil, or next's error
// other than io.EOF). No claims are taken.
//
// It returns nil once the whole list has been emitted; emit's error; an
// EUnavailable error when the store could not be read for a whole batch
// (the batches before it were emitted); or ctx's error. Memory holds about
// 2×InFlight batches, whatever the length of the list.
func (s *Service) Scrub(ctx context.Context, o ScrubOptions, next func() (Row, error), emit func(v []Verdict, end error) error) error {
	o = o.withDefaults(s)
	sum := dedupe.ScrubSummary{Blocked: map[string]int{}, Policy: o.PolicyName}
	defer func() { s.auditScrub(context.WithoutCancel(ctx), o.Caller, sum, o.Policy.Version()) }()
	emit = tally(&sum, emit)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ordered := make(chan *scrubBatch, o.InFlight)
	work := make(chan *scrubBatch)
	var wg sync.WaitGroup
	wg.Go(func() { readBatches(ctx, o, next, ordered, work) })
	now := s.now()
	for range o.InFlight {
		wg.Go(func() {
			for b := range work {
				s.checkBatch(ctx, o, b, now)
				close(b.done)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for b := range ordered {
		<-b.done
		if b.err != nil {
			return b.err
		}
		if err := emit(b.verdicts, b.end); err != nil {
			return err
		}
		if b.end != nil {
			return nil
		}
	}
	return ctx.Err()
}

// tally counts the verdicts emit is handed into sum.
func tally(sum *dedupe.ScrubSummary, emit func([]Verdict, error) error) func([]Verdict, error) error {
	return func(vs []Verdict, end error) error {
		for i := range vs {
			sum.Rows++
			switch v := &vs[i]; {
			case v.Invalid != nil:
				sum.Invalid++
			case v.Result.Allowed:
				sum.Allowed++
			default:
				for _, code := range blockingCodes(&v.Result) {
					sum.Blocked[code]++
				}
			}
		}
		return emit(vs, end)
	}
}

// blockingCodes returns the distinct codes of the reasons that block r.
func blockingCodes(r *dedupe.Result) []string {
	var codes []string
	for _, x := range r.Reasons {
		if !x.Warning && !slices.Contains(codes, x.Code) {
			codes = append(codes, x.Code)
		}
	}
	return codes
}

func (o ScrubOptions) withDefaults(s *Service) ScrubOptions {
	if o.Batch <= 0 {
		o.Batch = DefaultScrubBatch
	}
	if o.InFlight <= 0 {
		o.InFlight = DefaultScrubInFlight
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultScrubBatchSize
	}
	if o.Policy == nil {
		o.Policy = s.cfg.Policy()
	}
	return o
}

type scrubBatch struct {
	rows     []Row
	verdicts []Verdict
	err      error // why the batch could not be checked
	end      error // the error that ended the list after these rows
	done     chan struct{}
}

// readBatches cuts the list into batches and hands each to the emitter, in
// order, and to a checker.
func readBatches(ctx context.Context, o ScrubOptions, next func() (Row, error), ordered, work chan<- *scrubBatch) {
	defer close(work)
	defer close(ordered)
	for {
		b := &scrubBatch{rows: make([]Row, 0, o.Batch), done: make(chan struct{})}
		size := 0
		for len(b.rows) < o.Batch && size < o.BatchSize {
			row, err := next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.end = err
				}
				break
			}
			b.rows = append(b.rows, row)
			size += row.cost()
		}
		last := b.end != nil || len(b.rows) < o.Batch && size < o.BatchSize
		if len(b.rows) == 0 && b.end == nil {
			return // the end of the list on a batch boundary
		}
		select {
		case ordered <- b:
		case <-ctx.Done():
			return
		}
		select {
		case work <- b:
		case <-ctx.Done():
			// Every batch handed to the emitter must be done.
			b.err = ctx.Err()
			close(b.done)
			return
		}
		if last {
			return
		}
	}
}

// checkBatch builds the requests of a batch's rows and checks the valid ones.
// Checkers run it in parallel: reading phone numbers and the store round
// trips are most of a scrub's work.
func (s *Service) checkBatch(ctx context.Context, o ScrubOptions, b *scrubBatch, now time.Time) {
	b.verdicts = make([]Verdict, len(b.rows))
	reqs := make([]dedupe.Request, 0, len(b.rows))
	index := make([]int, 0, len(b.rows))
	for i := range b.rows {
		b.verdicts[i].Row = &b.rows[i]
		r, err := s.rowRequest(&b.rows[i], &o, now)
		if err != nil {
			b.verdicts[i].Invalid = err
			continue
		}
		reqs = append(reqs, r)
		index = append(index, i)
	}
	if len(reqs) == 0 {
		return
	}
	results := s.decide(ctx, o.Policy, reqs, now, false)
	unavailable := 0
	for k, res := range results {
		if failClosed(&res) {
			unavailable++
		}
		b.verdicts[index[k]].Result = res
	}
	if unavailable == len(results) {
		b.err = contact.Unavailable("the store", ctx.Err())
	}
}

// failClosed blocks a result whose facts could not be read, and reports
// whether it was one.
func failClosed(r *dedupe.Result) bool {
	for i := range r.Reasons {
		if r.Reasons[i].Code == dedupe.CodeUnavailable {
			r.Allowed, r.Reasons[i].Warning = false, false
			return true
		}
	}
	return false
}

// rowRequest builds the check of one row: the defaults, overridden by the
// row's own fields.
func (s *Service) rowRequest(row *Row, o *ScrubOptions, now time.Time) (dedupe.Request, error) {
	r := o.Defaults
	r.Claim = false
	set := func(dst *string, v string) {
		if v = strings.TrimSpace(v); v != "" {
			*dst = v
		}
	}
	r.CustomerID = strings.TrimSpace(row.CustomerID)
	if v := strings.TrimSpace(row.Channel); v != "" {
		r.Channel = contact.Channel(v)
	}
	set(&r.Purpose, row.Purpose)
	set(&r.Product, row.Product)
	set(&r.Campaign, row.Campaign)
	set(&r.Timezone, row.Timezone)
	set(&r.Phone, row.Phone)
	if price, currency := strings.TrimSpace(row.Price), strings.TrimSpace(row.Currency); price != "" || currency != "" {
		if currency == "" {
			currency = o.Currency
		}
		offer, err := rowOffer(r.Offer, price, currency, s.cfg.Defaults)
		if err != nil {
			return r, err
		}
		r.Offer = offer
	}
	err := r.Normalize(now, s.cfg.Defaults)
	return r, err
}

// rowOffer is the offer of a row that gives a price or a currency: the
// default offer's, with the row's price and currency.
func rowOffer(def *contact.Offer, price, currency string, d contact.Defaults) (*contact.Offer, error) {
	o := contact.Offer{}
	if def != nil {
		o = *def
	}
	if currency == "" && o.Price != nil {
		currency = o.Price.Currency
	}
	if currency == "" {
		currency = d.Currency
		if currency == "" {
			currency = contact.DefaultCurrency
		}
	}
	if price == "" {
		if o.Price == nil {
			return &o, contact.ValidCurrency("currency", currency)
		}
		price = o.Price.Decimal()
	}
	m, err := contact.ParseMoney("price", price, "currency", currency)
	if err != nil {
		return nil, err
	}
	o.Price = &m
	return &o, nil
}
