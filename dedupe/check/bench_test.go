package check_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

// seedTimelines stores n customers with about 30 events each over the last
// 60 days: calls, mails with offers, a purchase, some complaints and opts.
func seedTimelines(b *testing.B, s *redis.Store, n int) {
	b.Helper()
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	var batch []contact.Event
	flush := func() {
		if _, err := s.Apply(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for c := range n {
		id := fmt.Sprint("cust-", c)
		for i := range 30 {
			at := now.Add(-time.Duration(rng.IntN(60*24)) * time.Hour)
			e := contact.Event{ID: fmt.Sprintf("%s-%d", id, i), CustomerID: id, At: at, Type: contact.TypeContact,
				Channel: contact.Channels[rng.IntN(len(contact.Channels))], Agent: fmt.Sprint("agent-", rng.IntN(50)),
				Team: "retention", Campaign: "autumn", Purpose: "sales", Outcome: "voicemail"}
			switch i % 10 {
			case 3:
				e.Offer = &contact.Offer{Price: &contact.Money{Minor: int64(2000 + 100*rng.IntN(30)), Currency: "EUR"}}
				e.Product = "fiber-500"
			case 5:
				e = contact.Event{ID: e.ID, CustomerID: id, At: at, Type: contact.TypePurchase, Product: "tv-basic", Price: &contact.Money{Minor: 900, Currency: "EUR"}}
			case 7:
				e = contact.Event{ID: e.ID, CustomerID: id, At: at, Type: contact.TypeComplaint, CaseID: fmt.Sprint(c), Status: []string{"opened", "resolved"}[i%2]}
			case 9:
				e = contact.Event{ID: e.ID, CustomerID: id, At: at, Type: contact.TypeOptIn, Channel: contact.SMS}
			}
			if err := e.Normalize(contact.Defaults{}); err != nil {
				b.Fatal(err)
			}
			batch = append(batch, e)
		}
		if len(batch) >= 3000 {
			flush()
		}
	}
	flush()
}

// BenchmarkCheck measures the pre-dial check through the service and the
// store, with the raw pipelined reads of the same keys as the baseline: the
// ratio is the cost of decoding and deciding. Run it against real Redis with
// OUTREACH_TEST_REDIS_ADDR set.
func BenchmarkCheck(b *testing.B) {
	r := testenv.NewRedis(b)
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	const customers = 2000
	seedTimelines(b, s, customers)
	svc := check.New(check.Config{Store: s, Policy: dedupe.DefaultPolicy})
	req := func(rng *rand.Rand) dedupe.Request {
		return dedupe.Request{CustomerID: fmt.Sprint("cust-", rng.IntN(customers)), Channel: contact.Call,
			Product: "fiber-500", Offer: &contact.Offer{Price: &contact.Money{Minor: 3500, Currency: "EUR"}}}
	}
	b.Run("baseline-raw-pipeline", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			ctx := context.Background()
			for pb.Next() {
				id := fmt.Sprint("cust-", rng.IntN(customers))
				key := r.Prefix + "{c:" + id + "}:"
				pipe := r.Client.Pipeline()
				pipe.HGetAll(ctx, key+"s")
				pipe.ZRangeWithScores(ctx, key+"r", 0, -1)
				pipe.ZRangeWithScores(ctx, key+"f", 0, -1)
				pipe.Get(ctx, key+"claim")
				pipe.HGetAll(ctx, key+"dnc")
				pipe.HGetAll(ctx, r.Prefix+"{dnc}:lists")
				if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("check", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for pb.Next() {
				if _, err := svc.Check(context.Background(), []dedupe.Request{req(rng)}, check.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("check-claim", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for pb.Next() {
				q := req(rng)
				q.Claim = true
				res, err := svc.Check(context.Background(), []dedupe.Request{q}, check.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if c := res[0].Claim; c != nil {
					s.ReleaseClaim(context.Background(), c.Token)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("batch-100", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		reqs := make([]dedupe.Request, 100)
		for i := range reqs {
			reqs[i] = req(rng)
		}
		for b.Loop() {
			if _, err := svc.Check(context.Background(), reqs, check.Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(reqs))/b.Elapsed().Seconds(), "checks/s")
	})
}

// BenchmarkCheckAudit measures live checks with the audit trail off (the
// baseline), best-effort and required, against Kafka (real with
// OUTREACH_TEST_KAFKA_BROKERS set) and Redis (OUTREACH_TEST_REDIS_ADDR).
// Each sub-benchmark reports its records written and dropped per check.
func BenchmarkCheckAudit(b *testing.B) {
	r := testenv.NewRedis(b)
	k := testenv.NewKafka(b)
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	const customers = 2000
	seedTimelines(b, s, customers)
	for _, mode := range []string{"off", "best-effort", "required"} {
		b.Run(mode, func(b *testing.B) {
			cfg := check.Config{Store: s, Policy: dedupe.DefaultPolicy, Instance: "bench"}
			var w *stream.AuditWriter
			if mode != "off" {
				w = stream.NewAuditWriter(stream.AuditConfig{Brokers: k.Brokers, Topic: k.Topic(b, "decisions", 6), Required: mode == "required"})
				cfg.Auditor, cfg.AuditRequired = w, mode == "required"
			}
			svc := check.New(cfg)
			b.SetParallelism(16) // many dialers at once: required mode waits on Kafka
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
				for pb.Next() {
					req := dedupe.Request{CustomerID: fmt.Sprint("cust-", rng.IntN(customers)), Channel: contact.Call}
					if _, err := svc.Check(context.Background(), []dedupe.Request{req}, check.Options{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
			if w != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				w.Close(ctx)
				written, dropped := w.Counts()
				b.ReportMetric(float64(written)/float64(b.N), "written/check")
				b.ReportMetric(float64(dropped)/float64(b.N), "dropped/check")
			}
		})
	}
}
