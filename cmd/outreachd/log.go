package main

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// Personal data is kept out of logs by the types that carry it (see
// contact.PhoneNumber and the LogValue methods of contact and dedupe).
// The logger's redactor is the backstop for what slips through, in
// messages and error strings.

// personal matches e-mail addresses and phone numbers (a + and 7 or more
// digits, or 9 or more digits in a row, with optional spaces and dashes);
// or, first, a counter such as "offset 123456789", which is kept.
var personal = regexp.MustCompile(`\b(?:offset|partition|generation)[ =:]+\d+\b|` +
	`[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}|\+[\d][\d \-().]{5,}\d|\b\d[\d \-]{7,}\d\b`)

// counters are the keys whose all-digit values are Kafka positions and
// list generations, not phone numbers.
var counters = map[string]bool{"offset": true, "partition": true, "generation": true}

// NewLogger returns the service logger, which redacts personal data from
// every string and error it logs.
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: redact}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func redact(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		s := a.Value.String()
		if counters[a.Key] && strings.Trim(s, "0123456789") == "" {
			return a
		}
		if r := redactString(s); r != s {
			a.Value = slog.StringValue(r)
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); personal.MatchString(s) {
				a.Value = slog.StringValue(redactString(s))
			}
		}
	}
	return a
}

// counter matches the start of a counter that personal matched.
var counter = regexp.MustCompile(`^(?:offset|partition|generation)[ =:]`)

func redactString(s string) string {
	return personal.ReplaceAllStringFunc(s, func(m string) string {
		if counter.MatchString(m) {
			return m
		}
		return "[redacted]"
	})
}
