package http

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/outreach/outreach/contact"
)

// MaxCSVRecord is the longest row, in bytes, that a list upload may have. It
// keeps a quote left open from reading the rest of an upload into memory.
const MaxCSVRecord = 64 << 10

var utf8BOM = []byte("\xef\xbb\xbf")

// csvReader reads an uploaded list: a header row, then rows with as many
// fields. It accepts a UTF-8 BOM and CRLF line ends, and bounds the length of
// a row. Errors in the CSV itself are EInvalid errors that name the line.
type csvReader struct {
	r      *csv.Reader
	lim    *recordLimit
	header []string
	bom    bool // the input started with a UTF-8 BOM
	line   int  // where the last row read starts
	next   int  // the earliest line the next row can start on
}

// newCSVReader reads the header row of body.
func newCSVReader(body io.Reader) (*csvReader, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	c := &csvReader{}
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
		c.bom = true
	}
	c.lim = &recordLimit{r: br, max: MaxCSVRecord}
	c.r = csv.NewReader(c.lim)
	c.next = 1
	header, err := c.Read()
	if errors.Is(err, io.EOF) {
		return nil, contact.Invalid("", "the list is empty; it needs a header row naming its columns")
	}
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(strings.Join(header, "")) {
		return nil, lineError(1, "the header must be valid UTF-8")
	}
	c.header = slices.Clone(header)
	return c, nil
}

// Read returns the next row, or io.EOF after the last. The row is the
// caller's to keep. A read error of the body is returned as is; a cell that
// is not valid UTF-8 is an EInvalid error naming its line and column.
func (c *csvReader) Read() ([]string, error) {
	rec, err := c.r.Read()
	if err == nil {
		c.line, _ = c.r.FieldPos(0)
		last, _ := c.r.FieldPos(len(rec) - 1)
		c.next = last + strings.Count(rec[len(rec)-1], "\n") + 1
		c.lim.mark = c.r.InputOffset()
		for i, v := range rec {
			if c.header != nil && !utf8.ValidString(v) {
				return nil, rowError(c.line, contact.Invalid(c.header[i], "must be valid UTF-8"))
			}
		}
		return rec, nil
	}
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		line := pe.StartLine
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, lineError(line, "%d fields where the header has %d", len(rec), len(c.header))
		}
		msg := pe.Err.Error()
		if pe.Line != pe.StartLine {
			msg += fmt.Sprintf(" (the row starting on line %d is read up to line %d: is a quote left open?)", pe.StartLine, pe.Line)
		}
		return nil, lineError(line, "%s", msg)
	case errors.Is(err, errRecordTooLong):
		return nil, lineError(c.next, "a row starting here or below is longer than %d KiB; is a quote left open?", MaxCSVRecord>>10)
	case contact.ErrorCode(err) == contact.ETimeout: // a stalled upload
		var ce *contact.Error
		errors.As(err, &ce)
		return nil, &contact.Error{Code: ce.Code, Field: ce.Field, Message: fmt.Sprintf("line %d: %s", c.next, ce.Message), Err: ce.Err}
	}
	return nil, err
}

// lineError is an EInvalid error about a line of an uploaded list.
func lineError(line int, format string, args ...any) *contact.Error {
	return &contact.Error{Code: contact.EInvalid, Field: "list", Message: fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}
}

// rowError is an EInvalid error about a value of the row at line.
func rowError(line int, err error) error {
	var ce *contact.Error
	if errors.As(err, &ce) && ce.Code == contact.EInvalid {
		msg := ce.Message
		if ce.Field != "" {
			msg = ce.Field + ": " + msg
		}
		return &contact.Error{Code: contact.EInvalid, Field: "list", Message: fmt.Sprintf("line %d: %s", line, msg)}
	}
	return err
}

// columns maps the known column names of a header, matched without regard
// to case or surrounding space, to their index. A known name given twice is
// an error; other columns are left to the caller.
func columns(header []string, known ...string) (map[string]int, []string, error) {
	idx := map[string]int{}
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(known, name) {
			unknown = append(unknown, h)
			continue
		}
		if _, dup := idx[name]; dup {
			return nil, nil, lineError(1, "the column %s appears twice", name)
		}
		idx[name] = i
	}
	return idx, unknown, nil
}

var errRecordTooLong = errors.New("http: CSV record too long")

// recordLimit fails a read once more than max bytes have been read past
// mark, the end of the last complete record.
type recordLimit struct {
	r    io.Reader
	max  int64
	mark int64 // set by the reader after each record
	n    int64 // bytes read so far
}

func (l *recordLimit) Read(p []byte) (int, error) {
	room := l.mark + l.max - l.n
	if room <= 0 {
		return 0, errRecordTooLong
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}
