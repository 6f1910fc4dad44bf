// Command harness measures outreach against real Redis and real Kafka and
// writes the figures, each with its ratio against a baseline measured in the
// same run, to bench/results/latest.json and latest.md, and the plot of check
// latency against offered rate to docs/check-latency.png. docs/PERFORMANCE.md
// explains every scenario.
//
//	go run ./bench/harness                      # the full run, 5 to 9 minutes on 2 cores
//	go run ./bench/harness -smoke               # 30 seconds, small sizes
//	go run ./bench/harness -scenarios check,history -rate-duration 5s
//	go run ./bench/harness -replot              # the plot of bench/results/latest.json again
//
// It uses the servers named by -redis and -kafka, else by
// OUTREACH_TEST_REDIS_ADDR and OUTREACH_TEST_KAFKA_BROKERS, else those on
// 127.0.0.1:16379 and 127.0.0.1:19092, and starts them with
// scripts/redis-local.sh and scripts/kafka-local.sh when nothing answers
// there (and stops only those it started). Everything it writes lives under
// its own key prefix and topics, deleted at the end: it never flushes or
// stops a shared server. It builds and runs the real outreachd, and the
// floor server (bench/floor), as processes of their own, on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		os.Exit(2)
	}
	if cfg.Replot {
		if err := replot(filepath.Join(cfg.OutDir, cfg.resultName()+".json"), cfg.PlotFile); err != nil {
			fmt.Fprintf(os.Stderr, "harness: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		os.Exit(1)
	}
	if missing := res.missingFigures(); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "harness: no figure for %v\n", missing)
		os.Exit(1)
	}
}
