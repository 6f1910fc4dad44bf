package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/internal/testenv"
)

// TestFaultClusterFailover: outreachd runs over a Redis Cluster of the
// test's own (3 masters, 3 replicas, node timeout 2s) while events flow and
// checks of known answers run; one master is killed with SIGKILL. Checks
// answer right or unavailable, never wrong and never 5xx; the replica takes
// over and checks of the dead master's slots answer again, and every event
// is stored, without a restart of outreachd. It logs how long the dead
// master's slots (and the others) answered unavailable.
func TestFaultClusterFailover(t *testing.T) {
	testenv.RequireRealServers(t)
	start := time.Now()
	cluster := testenv.StartRedisCluster(t)
	clusterUp := time.Since(start)
	r := newRig(t, rigConfig{RedisAddr: strings.Join(cluster.Addrs, ","), Cluster: true,
		Brokers: strings.Split(os.Getenv(testenv.KafkaEnv), ",")})
	d := r.start()
	p := newProbes(45)
	if err := r.produce(p.optOuts()...); err != nil {
		t.Fatal(err)
	}
	p.waitAnswered(t, d.URL, 30*time.Second)

	// The victim: the master of the first probe's slot.
	masters := slotMasters(t, r.rdb.(*goredis.ClusterClient))
	victim := masters[slotOf(t, r.rdb, p.customers[0])]
	onVictim := make([]bool, len(p.customers))
	n := 0
	for i, c := range p.customers {
		onVictim[i] = masters[slotOf(t, r.rdb, c)] == victim
		if onVictim[i] {
			n++
		}
	}
	tr := r.startTrickle(20 * time.Millisecond)
	loop := p.loop(func() []string { return []string{d.URL} }, 20*time.Millisecond)
	time.Sleep(time.Second)

	cluster.Kill(t, victim)
	killed := time.Now()
	testenv.Eventually(t, 30*time.Second, "checks of the dead master's slots answered again", func() bool {
		rounds := loop.Rounds()
		return len(rounds) > 0 && rounds[len(rounds)-1].at.After(killed) && rounds[len(rounds)-1].allAnswered()
	})
	time.Sleep(2 * time.Second) // and they go on answering
	rounds := loop.Stop()
	v := tally(rounds)
	v.mustBeSafe(t, true)

	victimDown := unavailableWindow(rounds, killed, func(i int) bool { return onVictim[i] })
	othersDown := unavailableWindow(rounds, killed, func(i int) bool { return !onVictim[i] })
	if last := rounds[len(rounds)-1]; !last.allAnswered() {
		t.Errorf("the last check after the failover: %+v, want every probe answered", last)
	}
	if status, body := readyz(d.URL, "?role=api"); status != 200 {
		t.Errorf("/readyz?role=api after the failover = %d %s", status, body)
	}
	produced := tr.Stop()
	stopped := time.Now()
	r.waitStored(tr.customers, produced, 60*time.Second)
	t.Logf("every event stored %v after the trickle stopped, %v after the kill", time.Since(stopped).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	t.Logf("cluster of 6 nodes up in %v; killed master %s (%d of %d probes); checks of its slots answered again %v after the kill, "+
		"checks of the other masters' slots were unavailable until %v after it; checks: %v; trickle: %d events produced, all stored once; test took %v",
		clusterUp.Round(time.Millisecond), victim, n, len(p.customers), victimDown.Round(time.Millisecond),
		othersDown.Round(time.Millisecond), v, produced, time.Since(start).Round(time.Millisecond))
}

// unavailableWindow returns how long after since the probes that match
// answered unavailable (or not at all): until the end of the last round in
// which any of them did.
func unavailableWindow(rounds []round, since time.Time, match func(i int) bool) time.Duration {
	var last time.Time
	for _, rd := range rounds {
		if rd.at.Before(since) {
			continue
		}
		down := rd.status != 200
		for i, u := range rd.unavailable {
			down = down || (u && match(i))
		}
		if down {
			last = rd.end
		}
	}
	if last.IsZero() {
		return 0
	}
	return last.Sub(since)
}

// slotMasters maps every slot to the address of its master.
func slotMasters(t *testing.T, c *goredis.ClusterClient) map[int]string {
	t.Helper()
	slots, err := c.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]string{}
	for _, s := range slots {
		for slot := s.Start; slot <= s.End; slot++ {
			m[slot] = s.Nodes[0].Addr
		}
	}
	return m
}

// slotOf returns the slot of a customer's keys.
func slotOf(t *testing.T, rdb goredis.UniversalClient, customer string) int {
	t.Helper()
	slot, err := rdb.ClusterKeySlot(context.Background(), "{c:"+customer+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(slot)
}
