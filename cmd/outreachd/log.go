package main

import (
	"io"
	"log/slog"
	"regexp"
)

// personal matches e-mail addresses and phone numbers (a + and 7 or more
// digits, or 9 or more digits in a row, with optional spaces and dashes), so
// that logs never carry them.
var personal = regexp.MustCompile(`[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}|\+[\d][\d \-().]{5,}\d|\b\d[\d \-]{7,}\d\b`)

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
		if s := a.Value.String(); personal.MatchString(s) {
			a.Value = slog.StringValue(personal.ReplaceAllString(s, "[redacted]"))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); personal.MatchString(s) {
				a.Value = slog.StringValue(personal.ReplaceAllString(s, "[redacted]"))
			}
		}
	}
	return a
}
