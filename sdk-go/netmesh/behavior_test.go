package netmesh_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

const behaviorRules = `{"name": "edge", "rules": [
  {"id": "big", "priority": "high",
   "condition": {"single": {"field": "size", "op": "Gt", "value": 1000}},
   "action": {"reject": {"reason": "too large"}},
   "rate_limit": {"max_executions": 1, "window_ms": 3600000}},
  {"id": "pro", "tags": ["tier"],
   "condition": {"single": {"field": "user.tier", "op": "Eq", "value": "pro"}},
   "action": {"log": {"level": "info", "message": "pro"}}}]}`

func TestRulesEvaluateStatsAndErrors(t *testing.T) {
	r, err := netmesh.NewRules(behaviorRules)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ev, err := r.Evaluate(map[string]any{"size": 5000.0, "user": map[string]any{"tier": "pro"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Visited != 2 || len(ev.Outcomes) != 2 || ev.Outcomes[0].RuleID != "big" || ev.Outcomes[0].Action == nil {
		t.Fatalf("evaluation %+v", ev)
	}
	ev, _ = r.Evaluate(`{"size": 2000}`, "")
	if ev.Outcomes[0].Suppressed != "rate_limited" || ev.Outcomes[0].Action != nil {
		t.Fatalf("second release not rate limited: %+v", ev.Outcomes[0])
	}
	if ev, _ := r.Evaluate(`{}`, "tier"); ev.Visited != 1 {
		t.Fatalf("tagged visited %d", ev.Visited)
	}
	st, err := r.Stats("big")
	if err != nil || st.Matches != 2 || st.Executions != 1 || st.SuppressedRateLimit != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	text, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := netmesh.NewRules(text)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if err := r.Remove("pro"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stats("pro"); !errors.Is(err, netmesh.ErrRulesUnknownRule) {
		t.Fatalf("stats of removed rule: %v", err)
	}
	if err := r.Load(behaviorRules); !errors.Is(err, netmesh.ErrRulesInvalid) || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate load: %v", err)
	}
	if _, err := r.Evaluate("{broken", ""); !errors.Is(err, netmesh.ErrRulesInvalid) {
		t.Fatalf("broken context: %v", err)
	}
	if _, err := netmesh.NewRules(`{"name": "x", "rulez": []}`); !errors.Is(err, netmesh.ErrRulesInvalid) || !strings.Contains(err.Error(), "rulez") {
		t.Fatalf("bad key: %v", err)
	}
	r.Close()
	if _, err := r.Evaluate(`{}`, ""); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after close: %v", err)
	}
}

func TestSafetyPermitsCapsAndAudit(t *testing.T) {
	s, err := netmesh.NewSafety(map[string]any{
		"limits":   map[string]any{"max_concurrent": 1},
		"policies": []any{map[string]any{"name": "no-secrets", "rule": map[string]any{"block": "(?i)password"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Acquire(netmesh.SafetyRequest{Source: "a", Tokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(netmesh.SafetyRequest{Source: "b"}); !errors.Is(err, netmesh.ErrSafetyLimit) {
		t.Fatalf("over the cap: %v", err)
	}
	if err := p.Consume(4, 0); err != nil {
		t.Fatal(err)
	}
	if info, err := p.Info(); err != nil || len(info.Warnings) != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	u, err := s.Usage()
	if err != nil || u.Concurrent != 0 || u.TokensLastMinute != 4 {
		t.Fatalf("usage %+v %v", u, err)
	}
	secret := "my password"
	if _, err := s.Check(netmesh.SafetyRequest{Source: "a", Content: &secret}); !errors.Is(err, netmesh.ErrSafetyContent) {
		t.Fatalf("content: %v", err)
	}
	if err := s.Kill("maintenance", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(netmesh.SafetyRequest{Source: "a"}); !errors.Is(err, netmesh.ErrSafetyKillSwitch) {
		t.Fatalf("kill switch: %v", err)
	}
	_ = s.ResetKillSwitch()
	if err := s.SetLimits(map[string]any{"per_source_rpm": 1}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Limits(); l["per_source_rpm"] != 1.0 {
		t.Fatalf("limits %v", l)
	}
	first, err := s.Acquire(netmesh.SafetyRequest{Source: "fresh"})
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if _, err := s.Acquire(netmesh.SafetyRequest{Source: "fresh"}); !errors.Is(err, netmesh.ErrSafetyRateLimited) {
		t.Fatalf("rate: %v", err)
	}
	if err := s.SetLimits(`{"per_source_rmp": 1}`); !errors.Is(err, netmesh.ErrSafetyConfig) || !strings.Contains(err.Error(), "per_source_rmp") {
		t.Fatalf("bad limits: %v", err)
	}
	audit, err := s.Audit(true)
	if err != nil || len(audit) < 4 {
		t.Fatalf("audit %v %v", audit, err)
	}
	if audit, _ := s.Audit(false); len(audit) != 0 {
		t.Fatalf("audit not cleared: %v", audit)
	}
}

func TestSafetyExactCapUnderRacingGoroutines(t *testing.T) {
	s, err := netmesh.NewSafety(`{"limits": {"max_concurrent": 5}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var permits []*netmesh.Permit
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p, err := s.Acquire(netmesh.SafetyRequest{Source: "s"})
			if err != nil {
				if !errors.Is(err, netmesh.ErrSafetyLimit) && !errors.Is(err, netmesh.ErrSafetyRateLimited) {
					t.Errorf("acquire: %v", err)
				}
				return
			}
			mu.Lock()
			permits = append(permits, p)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if len(permits) != 5 {
		t.Fatalf("%d admitted, want exactly 5", len(permits))
	}
	for _, p := range permits {
		p.Release()
	}
	if u, _ := s.Usage(); u.Concurrent != 0 {
		t.Fatalf("concurrent %d after release", u.Concurrent)
	}
}

func TestLoadBalancerSelectionsRelease(t *testing.T) {
	lb, err := netmesh.NewLoadBalancer(map[string]any{"strategy": "power_of_two", "seed": 1, "max_connections": 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if _, err := lb.Select(netmesh.SelectRequest{}); !errors.Is(err, netmesh.ErrLbNoEndpoint) {
		t.Fatalf("empty: %v", err)
	}
	one, two := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := lb.Add(one, netmesh.EndpointOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := lb.Add(two, netmesh.EndpointOptions{Tags: []string{"gpu"}}); err != nil {
		t.Fatal(err)
	}
	if err := lb.Add(two, netmesh.EndpointOptions{}); !errors.Is(err, netmesh.ErrLbDuplicateEndpoint) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := lb.Add(one[:31], netmesh.EndpointOptions{}); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("short id: %v", err)
	}
	sel, err := lb.Select(netmesh.SelectRequest{RequiredTags: []string{"gpu"}})
	if err != nil {
		t.Fatal(err)
	}
	if id, probe, err := sel.ID(); err != nil || !bytes.Equal(id, two) || probe {
		t.Fatalf("selected %x %v %v", id, probe, err)
	}
	if eps, _ := lb.Endpoints(); eps[1].Connections != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	if err := sel.Complete(true); err != nil {
		t.Fatal(err)
	}
	a, _ := lb.Select(netmesh.SelectRequest{})
	b, _ := lb.Select(netmesh.SelectRequest{})
	if _, err := lb.Select(netmesh.SelectRequest{}); !errors.Is(err, netmesh.ErrLbNoEndpoint) {
		t.Fatalf("full: %v", err)
	}
	a.Close()
	b.Complete(false)
	for _, e := range mustEndpoints(t, lb) {
		if e.Connections != 0 {
			t.Fatalf("slot leaked: %+v", e)
		}
	}
	if err := lb.Remove(two); err != nil {
		t.Fatal(err)
	}
	if err := lb.Remove(two); !errors.Is(err, netmesh.ErrLbUnknownEndpoint) {
		t.Fatalf("remove twice: %v", err)
	}
}

func mustEndpoints(t *testing.T, lb *netmesh.LoadBalancer) []netmesh.EndpointInfo {
	t.Helper()
	eps, err := lb.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

func TestBehaviorCloseRacesCallsInFlight(t *testing.T) {
	big := make([]int, 200_000)
	for round := 0; round < 5; round++ {
		r, err := netmesh.NewRules(behaviorRules)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					if _, err := r.Evaluate(map[string]any{"items": big}, ""); err != nil {
						if !errors.Is(err, netmesh.ErrShuttingDown) {
							t.Errorf("evaluate racing close: %v", err)
						}
						return
					}
				}
			}()
		}
		var closers sync.WaitGroup
		for i := 0; i < 3; i++ {
			closers.Add(1)
			go func() { defer closers.Done(); _ = r.Close() }()
		}
		closers.Wait()
		wg.Wait()
	}
}
