package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RESPCommand is a command a client sent: its name in upper case and its
// arguments.
type RESPCommand struct {
	Name string
	Args []string
}

// protocolError is RESP that the proxy cannot follow, as opposed to an I/O
// error of a closed connection.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "testenv: " + e.msg }

func protocolErrorf(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// errPush is returned for a RESP3 push frame, which the proxy cannot place
// in the order of replies.
var errPush = protocolErrorf("a RESP3 push frame (>) arrived; the RESP proxy does not support pub/sub or client tracking")

// readCommand reads one command, a RESP array of bulk strings, and appends
// its bytes as read to raw. Inline commands are not supported.
func readCommand(r *bufio.Reader, raw *bytes.Buffer) (RESPCommand, error) {
	line, err := readLine(r, raw)
	if err != nil {
		return RESPCommand{}, err
	}
	if line[0] != '*' {
		return RESPCommand{}, protocolErrorf("command %q is not a RESP array (inline commands are not supported)", line)
	}
	n, err := respLen(line)
	if err != nil || n < 1 {
		return RESPCommand{}, protocolErrorf("bad command header %q", line)
	}
	parts := make([]string, n)
	for i := range parts {
		line, err := readLine(r, raw)
		if err != nil {
			return RESPCommand{}, err
		}
		size, err := respLen(line)
		if line[0] != '$' || err != nil || size < 0 {
			return RESPCommand{}, protocolErrorf("bad bulk string header %q in a command", line)
		}
		start := raw.Len()
		if _, err := io.CopyN(raw, r, int64(size)+2); err != nil {
			return RESPCommand{}, err
		}
		b := raw.Bytes()[start:]
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			return RESPCommand{}, protocolErrorf("a bulk string of a command does not end in CRLF")
		}
		parts[i] = string(b[:size])
	}
	return RESPCommand{Name: strings.ToUpper(parts[0]), Args: parts[1:]}, nil
}

// copyReply copies one whole reply, RESP2 or RESP3, from r to w.
func copyReply(w *bufio.Writer, r *bufio.Reader) error {
	line, err := readLine(r, nil)
	if err != nil {
		return err
	}
	kind := line[0]
	switch {
	case kind == '>':
		return errPush
	case strings.IndexByte("+-:_,#($!=*~%|", kind) < 0:
		return protocolErrorf("unknown RESP reply type in %q", line)
	}
	if _, err := w.Write(line); err != nil {
		return err
	}
	switch kind {
	case '$', '!', '=': // bulk string, bulk error, verbatim string
		n, err := respLen(line)
		if err != nil {
			return protocolErrorf("bad reply header %q (streamed strings are not supported)", line)
		}
		if n < 0 { // RESP2's null bulk string
			return nil
		}
		_, err = io.CopyN(w, r, int64(n)+2)
		return err
	case '*', '~', '%', '|': // array, set, map, attribute
		n, err := respLen(line)
		if err != nil {
			return protocolErrorf("bad reply header %q (streamed aggregates are not supported)", line)
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		for range n { // none for RESP2's null array, *-1
			if err := copyReply(w, r); err != nil {
				return err
			}
		}
		if kind == '|' { // an attribute precedes the reply it describes
			return copyReply(w, r)
		}
	}
	// Anything else is one line: a simple string, error, integer, null,
	// double, boolean or big number.
	return nil
}

// readLine reads a line ending in CRLF and appends it to raw, if not nil.
func readLine(r *bufio.Reader, raw *bytes.Buffer) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, protocolErrorf("malformed RESP line %q", line)
	}
	if raw != nil {
		raw.Write(line)
	}
	return line, nil
}

// respLen parses the length in a header line such as "*3\r\n" or "$-1\r\n".
func respLen(line []byte) (int, error) {
	return strconv.Atoi(string(line[1 : len(line)-2]))
}
