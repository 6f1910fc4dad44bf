package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach/outreach/contact"
)

// Limits of one POST /v1/events: the server takes at most 1,000 events and,
// by default, 4 MiB. A batch the server finds too large is split in two.
const (
	maxBatchEvents = 1000
	maxBatchBytes  = 3 << 20
	maxLineBytes   = 1 << 20 // an event is a few hundred bytes
	sendAttempts   = 3       // of a batch, on an outage or a network error
)

type eventsOptions struct {
	batch  int
	dryRun bool
}

func (a *app) eventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Send events",
		Args:  cobra.ArbitraryArgs,
		RunE:  a.group,
	}
	cmd.AddCommand(a.eventsSendCommand())
	return cmd
}

const eventsSendLong = `Send the events of an NDJSON file (one JSON event per line; "-" reads
stdin) to POST /v1/events, in batches of up to 1,000.

Each line is checked here first, as the server would: an invalid line is
reported on stderr with its line number and is not sent; the valid ones are
sent all the same. Blank lines are skipped. Events are idempotent by id, so
sending a file again is safe. Progress goes to stderr and a summary to
stdout. The exit code is 1 if any line was invalid or rejected, or a request
failed. Needs a key with the dialer role. The event fields are listed in
the README ("Events").`

func (a *app) eventsSendCommand() *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "send FILE.ndjson",
		Short: "Send the events of an NDJSON file",
		Long:  eventsSendLong,
		Example: `  outreachctl events send events.ndjson
  outreachctl events send --dry-run events.ndjson
  kcat -C -b kafka:9092 -t legacy.contacts -e | outreachctl events send -`,
		Args: args("FILE.ndjson"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.eventsSend(cmd.Context(), args[0], &o)
		}),
	}
	f := cmd.Flags()
	f.IntVar(&o.batch, "batch", maxBatchEvents, "most events per request, 1 to 1000")
	f.BoolVar(&o.dryRun, "dry-run", false, "only check the lines; send nothing")
	return cmd
}

// sender sends batches of checked event lines and keeps count.
type sender struct {
	a    *app
	p    *progress
	sent int // events accepted
	reqs int // requests that succeeded
	bad  int // lines invalid here or rejected by the server
}

// batch is a run of checked lines, in file order.
type batch struct {
	lines [][]byte
	nums  []int // their line numbers
	size  int   // bytes of the JSON array
}

func (b *batch) add(num int, line []byte) {
	b.lines = append(b.lines, bytes.Clone(line))
	b.nums = append(b.nums, num)
	b.size += len(line) + 1
}

func (b *batch) reset() { b.lines, b.nums, b.size = b.lines[:0], b.nums[:0], 1 }

func (a *app) eventsSend(ctx context.Context, name string, o *eventsOptions) error {
	if o.batch < 1 || o.batch > maxBatchEvents {
		return usagef("--batch must be from 1 to %d; got %d", maxBatchEvents, o.batch)
	}
	in, size, err := a.openInput(name)
	if err != nil {
		return err
	}
	defer in.Close()
	unit, intro := "events", a.sending(name, size)
	if o.dryRun {
		unit, intro = "valid events", "checking "+describeInput(name, size)
	}
	p := a.newProgress("events send", unit, intro, size)
	s := &sender{a: a, p: p}
	if err := s.run(ctx, bufio.NewReaderSize(p.reader(in), 64<<10), o); err != nil {
		p.abort()
		return err
	}
	p.finish()
	if o.dryRun {
		fmt.Fprintf(a.stdout, "%s valid, %s invalid; nothing was sent (--dry-run)\n",
			plural(int(p.done.Load()), "event", "events"), plural(s.bad, "line", "lines"))
	} else {
		fmt.Fprintf(a.stdout, "sent %s in %s; %s not sent\n",
			plural(s.sent, "event", "events"), plural(s.reqs, "request", "requests"), plural(s.bad, "line", "lines"))
	}
	if s.bad > 0 {
		return fmt.Errorf("%s invalid or rejected; see above", plural(s.bad, "line was", "lines were"))
	}
	return nil
}

// run reads r line by line, checks each line and sends the valid ones.
func (s *sender) run(ctx context.Context, r *bufio.Reader, o *eventsOptions) error {
	b := &batch{size: 1}
	var buf []byte
	for num := 1; ; num++ {
		line, tooLong, readErr := readLine(r, buf)
		buf = line[:0]
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("reading line %d: %w", num, readErr)
		}
		if num == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		line = bytes.TrimSpace(line)
		switch {
		case tooLong:
			s.invalid(num, fmt.Errorf("longer than %d bytes", maxLineBytes))
		case len(line) == 0:
		default:
			if _, err := contact.Decode(line, contact.Defaults{}); err != nil {
				s.invalid(num, err)
				break
			}
			if o.dryRun {
				s.p.add(1)
				break
			}
			if len(b.lines) == o.batch || b.size+len(line)+1 > maxBatchBytes {
				if err := s.send(ctx, b); err != nil {
					return err
				}
				b.reset()
			}
			b.add(num, line)
		}
		if readErr != nil { // io.EOF
			break
		}
	}
	if len(b.lines) > 0 {
		return s.send(ctx, b)
	}
	return nil
}

func (s *sender) invalid(num int, err error) {
	s.bad++
	s.p.printf("line %d: %v", num, err)
}

// readLine reads one line into buf, without its end. A line longer than
// maxLineBytes is skipped and reported as tooLong. err is io.EOF with the
// file's last line.
func readLine(r *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	line = buf[:0]
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxLineBytes+2 {
				tooLong, line = true, line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, tooLong, err
		}
	}
}

// send sends b, all or none of it. A line the server rejects is reported
// and the rest sent again; a batch the server finds too large is split.
// Any other failure stops the command.
func (s *sender) send(ctx context.Context, b *batch) error {
	lines, nums := b.lines, b.nums
	for len(lines) > 0 {
		body := make([]byte, 0, b.size)
		body = append(body, '[')
		body = append(body, bytes.Join(lines, []byte{','})...)
		body = append(body, ']')
		err := s.post(ctx, body)
		if err == nil {
			s.sent += len(lines)
			s.reqs++
			s.p.add(len(lines))
			return nil
		}
		var ae *apiError
		errors.As(err, &ae)
		switch {
		case ae != nil && ae.Status == http.StatusBadRequest && ae.Index != nil && *ae.Index >= 0 && *ae.Index < len(lines):
			i := *ae.Index
			s.bad++
			field := ""
			if ae.Field != "" {
				field = ae.Field + ": "
			}
			s.p.printf("line %d: rejected by the server: %s%s", nums[i], field, ae.Message)
			lines = append(lines[:i:i], lines[i+1:]...)
			nums = append(nums[:i:i], nums[i+1:]...)
		case ae != nil && ae.Status == http.StatusRequestEntityTooLarge && len(lines) > 1:
			half := len(lines) / 2
			for _, part := range [][2]int{{0, half}, {half, len(lines)}} {
				sub := &batch{lines: lines[part[0]:part[1]], nums: nums[part[0]:part[1]], size: 1}
				for _, l := range sub.lines {
					sub.size += len(l) + 1
				}
				if err := s.send(ctx, sub); err != nil {
					return err
				}
			}
			return nil
		case ae != nil && ae.Status == http.StatusRequestEntityTooLarge:
			s.bad++
			s.p.printf("line %d: rejected by the server: %v", nums[0], ae)
			return nil
		default:
			return fmt.Errorf("stopped at line %d: %w\nThe events before line %d were sent (%s); sending the file again is safe: events are idempotent by id",
				nums[0], err, nums[0], plural(s.sent, "event", "events"))
		}
	}
	return nil
}

// post sends one batch, trying again on an outage or a network error.
func (s *sender) post(ctx context.Context, body []byte) error {
	wait := s.a.retryWait
	for attempt := 1; ; attempt++ {
		_, err := s.a.client.call(ctx, "POST", "/v1/events", nil, body, nil)
		if err == nil || attempt == sendAttempts || ctx.Err() != nil || !transient(err) {
			return err
		}
		s.p.printf("events send: %v; trying again in %v", err, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait *= 2
	}
}

// transient reports whether a failed request may succeed if sent again.
func transient(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return true
		}
		return false
	}
	return true // the network, or no answer in time
}
