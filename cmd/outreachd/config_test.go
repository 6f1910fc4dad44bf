package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	httpapi "github.com/outreach/outreach/http"
)

func loadEnv(env map[string]string, args ...string) (Config, error) {
	return LoadConfig(args, func(k string) string { return env[k] }, io.Discard)
}

// TestSafeListenAddress: without keys, and with authentication not
// explicitly off, outreachd listens on loopback only.
func TestSafeListenAddress(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	for _, tt := range []struct {
		name string
		env  map[string]string
		addr string // "" for a start-up error
	}{
		{"no keys", nil, "127.0.0.1:8080"},
		{"no keys, loopback", map[string]string{"OUTREACH_HTTP_ADDR": "127.0.0.1:9000"}, "127.0.0.1:9000"},
		{"no keys, localhost", map[string]string{"OUTREACH_HTTP_ADDR": "localhost:9000"}, "localhost:9000"},
		{"no keys, IPv6 loopback", map[string]string{"OUTREACH_HTTP_ADDR": "[::1]:9000"}, "[::1]:9000"},
		{"no keys, every interface", map[string]string{"OUTREACH_HTTP_ADDR": ":8080"}, ""},
		{"no keys, 0.0.0.0", map[string]string{"OUTREACH_HTTP_ADDR": "0.0.0.0:8080"}, ""},
		{"no keys, a LAN address", map[string]string{"OUTREACH_HTTP_ADDR": "10.1.2.3:8080"}, ""},
		{"no keys, a host name", map[string]string{"OUTREACH_HTTP_ADDR": "outreach.internal:8080"}, ""},
		{"auth off", map[string]string{"OUTREACH_AUTH": "off"}, ":8080"},
		{"auth off, every interface", map[string]string{"OUTREACH_AUTH": "off", "OUTREACH_HTTP_ADDR": "0.0.0.0:8080"}, "0.0.0.0:8080"},
		{"keys", map[string]string{"OUTREACH_API_KEYS_FILE": keys}, ":8080"},
		{"keys, every interface", map[string]string{"OUTREACH_API_KEYS_FILE": keys, "OUTREACH_HTTP_ADDR": "0.0.0.0:8080"}, "0.0.0.0:8080"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadEnv(tt.env)
			if tt.addr == "" {
				if err == nil || !strings.Contains(err.Error(), "OUTREACH_HTTP_ADDR") || !strings.Contains(err.Error(), "OUTREACH_AUTH=off") {
					t.Fatalf("HTTPAddr %q, error %v; want an error naming OUTREACH_HTTP_ADDR and OUTREACH_AUTH=off", cfg.HTTPAddr, err)
				}
				return
			}
			if err != nil || cfg.HTTPAddr != tt.addr {
				t.Fatalf("HTTPAddr %q, error %v; want %q", cfg.HTTPAddr, err, tt.addr)
			}
		})
	}
}

// TestRedisPassword: the password comes from the environment or a file,
// never a flag, and is never shown.
func TestRedisPassword(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		f := filepath.Join(dir, "pw"+string(rune('a'+len(content))))
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if cfg, err := loadEnv(map[string]string{"OUTREACH_REDIS_PASSWORD": " s3cret "}); err != nil || cfg.RedisPassword != " s3cret " {
		t.Errorf("from the environment: %q, %v", cfg.RedisPassword, err)
	}
	for content, want := range map[string]string{"s3cret\n": "s3cret", "s3cret\r\n": "s3cret", "s3cret": "s3cret", "two\nlines\n": "two\nlines"} {
		if cfg, err := loadEnv(map[string]string{"OUTREACH_REDIS_PASSWORD_FILE": file(content)}); err != nil || cfg.RedisPassword != want {
			t.Errorf("from a file holding %q: %q, %v; want %q", content, cfg.RedisPassword, err, want)
		}
	}
	for name, tt := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"both":         {map[string]string{"OUTREACH_REDIS_PASSWORD": "hunter2", "OUTREACH_REDIS_PASSWORD_FILE": file("x\n")}, nil, "both set"},
		"missing file": {map[string]string{"OUTREACH_REDIS_PASSWORD_FILE": filepath.Join(dir, "nope")}, nil, "OUTREACH_REDIS_PASSWORD_FILE"},
		"empty file":   {map[string]string{"OUTREACH_REDIS_PASSWORD_FILE": file("\n")}, nil, "empty"},
		"a flag":       {nil, []string{"-redis-password", "hunter2"}, "redis-password"},
	} {
		_, err := loadEnv(tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want an error with %q that does not show the password", name, err, tt.want)
		}
	}
}

func TestHTTPLimitsConfig(t *testing.T) {
	cfg, err := loadEnv(nil)
	if err != nil || cfg.HTTPReadTimeout != 30*time.Second || cfg.HTTPWriteTimeout != time.Minute || cfg.HTTPMaxConns != 10000 ||
		cfg.UploadIdle != 2*time.Minute || cfg.ScrubConcurrency != 4 || cfg.RateLimits[httpapi.RoleAgent] != (httpapi.Rate{PerSecond: 50, Burst: 50}) {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	if cfg, err := loadEnv(map[string]string{"OUTREACH_RATE_LIMITS": "off"}); err != nil || cfg.RateLimits != nil {
		t.Errorf("OUTREACH_RATE_LIMITS=off: %v, %v", cfg.RateLimits, err)
	}
	for _, env := range []map[string]string{
		{"OUTREACH_HTTP_READ_TIMEOUT": "0s"},
		{"OUTREACH_HTTP_WRITE_TIMEOUT": "soon"},
		{"OUTREACH_HTTP_READ_TIMEOUT": "2m"}, // longer than the write timeout
		{"OUTREACH_HTTP_MAX_CONNS": "0"},
		{"OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT": "-1s"},
		{"OUTREACH_RATE_LIMITS": "dialer=fast"},
		{"OUTREACH_SCRUB_CONCURRENCY": "0"},
	} {
		_, err := loadEnv(env)
		for k := range env {
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%v: %v, want an error naming %s", env, err, k)
			}
		}
	}
}
