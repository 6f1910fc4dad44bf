// Command floor is the baseline server of the performance harness
// (bench/harness): the least an HTTP service over Redis can do, measured on
// the same machine and in the same run as outreachd, so that outreachd's
// figures can be quoted as ratios against it.
//
//	go run ./bench/floor -redis 127.0.0.1:16379 -prefix bench:xyz:
//
// It serves, with echo and go-redis as outreachd does:
//
//   - POST /v1/check: reads the JSON body's customer_id and does one GET of
//     PREFIX{c:ID}:v (the plain floor);
//   - POST /coalesce/v1/check: the same, but the GETs of concurrent requests
//     share pipelines (the coalescing floor);
//   - GET /v1/customers/{id}/contacts: the reads of outreachd's first
//     timeline page of 50 (the history, the state, the recent contacts and
//     the offers), in one pipeline, answered as raw bytes, decoded into
//     nothing;
//   - GET /healthz.
//
// It listens on loopback only and prints "listening ADDR" on stdout once it
// serves.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	goredis "github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; loopback only")
	redisAddr := flag.String("redis", "127.0.0.1:16379", "Redis address")
	prefix := flag.String("prefix", "bench:", "key prefix, as outreachd's OUTREACH_REDIS_PREFIX")
	flag.Parse()
	if err := run(*addr, *redisAddr, *prefix); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}

func run(addr, redisAddr, prefix string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: want a loopback address such as 127.0.0.1:0", addr)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1})
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", redisAddr, err)
	}
	f := &floor{rdb: rdb, prefix: prefix, gets: make(chan *getReq, 4096)}
	for range coalescers {
		go f.coalesce(ctx)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.POST("/v1/check", f.check)
	e.POST("/coalesce/v1/check", f.checkCoalesced)
	e.GET("/v1/customers/:id/contacts", f.timeline)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type floor struct {
	rdb    *goredis.Client
	prefix string
	gets   chan *getReq
}

type answer struct {
	CustomerID string `json:"customer_id"`
	Bytes      int    `json:"bytes"`
}

// customer reads the customer_id of a check's JSON body.
func customer(c echo.Context) (string, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return "", err
	}
	var req struct {
		CustomerID string `json:"customer_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.CustomerID == "" {
		return "", echo.NewHTTPError(http.StatusBadRequest, "customer_id is required")
	}
	return req.CustomerID, nil
}

func (f *floor) valueKey(id string) string { return f.prefix + "{c:" + id + "}:v" }

func (f *floor) check(c echo.Context) error {
	id, err := customer(c)
	if err != nil {
		return err
	}
	v, err := f.rdb.Get(c.Request().Context(), f.valueKey(id)).Bytes()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, answer{CustomerID: id, Bytes: len(v)})
}

// A getReq is one GET waiting for a coalescer.
type getReq struct {
	key  string
	val  []byte
	err  error
	done chan struct{}
}

const (
	coalescers    = 4   // pipelines in flight at once
	maxCoalescing = 256 // GETs in one pipeline at most
)

// coalesce takes the GETs waiting, up to maxCoalescing, and runs them in
// one pipeline: under load, requests share round trips.
func (f *floor) coalesce(ctx context.Context) {
	batch := make([]*getReq, 0, maxCoalescing)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-f.gets:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxCoalescing {
			select {
			case r := <-f.gets:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		pipe := f.rdb.Pipeline()
		cmds := make([]*goredis.StringCmd, len(batch))
		for i, r := range batch {
			cmds[i] = pipe.Get(ctx, r.key)
		}
		_, _ = pipe.Exec(ctx)
		for i, r := range batch {
			r.val, r.err = cmds[i].Bytes()
			if errors.Is(r.err, goredis.Nil) {
				r.err = nil
			}
			close(r.done)
		}
	}
}

func (f *floor) checkCoalesced(c echo.Context) error {
	id, err := customer(c)
	if err != nil {
		return err
	}
	r := &getReq{key: f.valueKey(id), done: make(chan struct{})}
	f.gets <- r
	<-r.done
	if r.err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, r.err.Error())
	}
	return c.JSON(http.StatusOK, answer{CustomerID: id, Bytes: len(r.val)})
}

// timeline reads what outreachd's Store.Timeline reads for a first page of
// 50, with the same commands, and answers the raw members and values.
func (f *floor) timeline(c echo.Context) error {
	ctx := c.Request().Context()
	key := f.prefix + "{c:" + c.Param("id") + "}:"
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pipe := f.rdb.Pipeline()
	history := pipe.ZRevRangeByScoreWithScores(ctx, key+"h", &goredis.ZRangeBy{Min: "-inf", Max: "+inf", Count: 50})
	state := pipe.HGetAll(ctx, key+"s")
	recent := pipe.ZRangeWithScores(ctx, key+"r", 0, -1)
	offers := pipe.ZRangeByScoreWithScores(ctx, key+"f", &goredis.ZRangeBy{Min: "(" + now, Max: "+inf"})
	if _, err := pipe.Exec(ctx); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	var out []byte
	for _, zs := range [][]goredis.Z{history.Val(), recent.Val(), offers.Val()} {
		for _, z := range zs {
			out = strconv.AppendFloat(out, z.Score, 'f', -1, 64)
			out = append(append(out, z.Member.(string)...), '\n')
		}
	}
	for k, v := range state.Val() {
		out = append(append(append(out, k...), v...), '\n')
	}
	c.Response().Header().Set("X-Members", strconv.Itoa(len(history.Val())))
	return c.Blob(http.StatusOK, "application/octet-stream", out)
}
