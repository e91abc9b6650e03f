package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// The behavior plane: a rules engine (Rules), a safety envelope (Safety,
// whose Acquire returns a Permit) and a load balancer (LoadBalancer, whose
// Select returns a Selection). Configuration travels as JSON: pass a value
// json.Marshal accepts (a struct, a map, or a json.RawMessage), or nil for
// the defaults. docs/sdk-go.md shows the forms.

// encodeJSON is the JSON text of v: nil gives no bytes (libnet's defaults).
func encodeJSON(op string, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return t, nil
	case string:
		return []byte(t), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, invalidArgument(op, "not JSON-serializable: "+err.Error())
	}
	return b, nil
}

// decodeJSON parses a libnet JSON result into out.
func decodeJSON(op string, raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Op: op, Status: StatusInternal, Message: "libnet returned malformed JSON: " + err.Error()}
	}
	return nil
}

// closedError is the error of a call on a closed behavior handle.
func closedError(op, what string) error {
	if abiErr != nil {
		return abiErr
	}
	return &Error{Op: op, Status: StatusShuttingDown, Message: what + " has been closed"}
}

// jsonOp runs a call filling a net_bytes_t with JSON and decodes it.
func jsonOp(op string, out any, f func(*C.net_bytes_t) C.net_status_t) error {
	var b C.net_bytes_t
	if err := check(op, func() C.net_status_t { return f(&b) }); err != nil {
		return err
	}
	return decodeJSON(op, takeBytes(&b), out)
}

// ---- rules ------------------------------------------------------------------

// Rules is a rules engine (net_rules_t): rules evaluated against JSON
// contexts in priority order, with cooldowns and rate limits. It returns
// actions and never runs them. Safe for concurrent use; release with Close.
type Rules struct {
	h handle
}

// RuleOutcome is what one matching rule gave.
type RuleOutcome struct {
	RuleID string `json:"rule_id"`
	Name   string `json:"name"`
	// Action is the released action's JSON, or nil when suppressed.
	Action json.RawMessage `json:"action"`
	// Suppressed is "", "cooldown" or "rate_limited".
	Suppressed     string `json:"suppressed"`
	StopProcessing bool   `json:"stop_processing"`
}

// Evaluation is the result of one walk over the rules.
type Evaluation struct {
	Visited  int           `json:"visited"`
	Outcomes []RuleOutcome `json:"outcomes"`
}

// RuleStats are a rule's counters since it was added.
type RuleStats struct {
	Evaluations         uint64  `json:"evaluations"`
	Matches             uint64  `json:"matches"`
	Executions          uint64  `json:"executions"`
	SuppressedCooldown  uint64  `json:"suppressed_cooldown"`
	SuppressedRateLimit uint64  `json:"suppressed_rate_limit"`
	LastMatchMs         *uint64 `json:"last_match_ms"`
}

func freeRules(p unsafe.Pointer) error {
	return freeStatus("net_rules_free", func() C.net_status_t { return C.net_rules_free((*C.net_rules_t)(p)) })
}

// NewRules creates an engine holding the rules of ruleSet (a rule set
// {"name", "rules": [...]} as JSON text or a value to marshal; nil: empty).
// Errors match ErrRulesInvalid, naming the bad key, operand or duplicate id.
func NewRules(ruleSet any) (*Rules, error) {
	const op = "net_rules_new"
	data, err := encodeJSON(op, ruleSet)
	if err != nil {
		return nil, err
	}
	var p *C.net_rules_t
	if err := check(op, func() C.net_status_t {
		return C.net_rules_new(bytesPtr(data), C.size_t(len(data)), &p)
	}); err != nil {
		return nil, err
	}
	r := &Rules{h: newHandle(unsafe.Pointer(p))}
	runtime.SetFinalizer(r, func(r *Rules) { r.h.leaked("netmesh.Rules", freeRules) })
	return r, nil
}

func (r *Rules) handle(op string) (*C.net_rules_t, error) {
	if r == nil {
		return nil, invalidArgument(op, "rules is nil")
	}
	if p := (*C.net_rules_t)(r.h.load()); p != nil {
		return p, nil
	}
	return nil, closedError(op, "rules engine")
}

// Close frees the engine (net_rules_free); idempotent, waits for calls in
// flight, later calls fail with ErrShuttingDown.
func (r *Rules) Close() error {
	if r == nil {
		return nil
	}
	runtime.SetFinalizer(r, nil)
	return r.h.close(freeRules)
}

// Load adds the rules of a rule set, all or none.
func (r *Rules) Load(ruleSet any) error {
	const op = "net_rules_load"
	data, err := encodeJSON(op, ruleSet)
	if err != nil {
		return err
	}
	p, err := r.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_rules_load(p, bytesPtr(data), C.size_t(len(data))) })
	runtime.KeepAlive(r)
	return err
}

// Remove removes a rule; ErrRulesUnknownRule if none has this id.
func (r *Rules) Remove(id string) error {
	const op = "net_rules_remove"
	p, err := r.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_rules_remove(p, stringPtr(id), C.size_t(len(id))) })
	runtime.KeepAlive(r)
	return err
}

// Evaluate evaluates the rules against context (JSON text or a value to
// marshal); with a non-empty tag, only the rules carrying it.
func (r *Rules) Evaluate(context any, tag string) (*Evaluation, error) {
	const op = "net_rules_evaluate"
	data, err := encodeJSON(op, context)
	if err != nil {
		return nil, err
	}
	p, err := r.handle(op)
	if err != nil {
		return nil, err
	}
	var out Evaluation
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t {
		var tagPtr *C.uint8_t
		if tag != "" {
			tagPtr = stringPtr(tag)
		}
		return C.net_rules_evaluate(p, bytesPtr(data), C.size_t(len(data)), tagPtr, C.size_t(len(tag)), b)
	})
	runtime.KeepAlive(r)
	if err != nil {
		return nil, err
	}
	for i := range out.Outcomes {
		if string(out.Outcomes[i].Action) == "null" {
			out.Outcomes[i].Action = nil
		}
	}
	return &out, nil
}

// Stats returns a rule's counters; ErrRulesUnknownRule if none has this id.
func (r *Rules) Stats(id string) (*RuleStats, error) {
	const op = "net_rules_stats"
	p, err := r.handle(op)
	if err != nil {
		return nil, err
	}
	var out RuleStats
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t {
		return C.net_rules_stats(p, stringPtr(id), C.size_t(len(id)), b)
	})
	runtime.KeepAlive(r)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// JSON returns the rules as a JSON rule set (NewRules loads it back).
func (r *Rules) JSON() ([]byte, error) {
	const op = "net_rules_to_json"
	p, err := r.handle(op)
	if err != nil {
		return nil, err
	}
	var b C.net_bytes_t
	err = check(op, func() C.net_status_t { return C.net_rules_to_json(p, &b) })
	runtime.KeepAlive(r)
	if err != nil {
		return nil, err
	}
	return takeBytes(&b), nil
}

// ---- safety -----------------------------------------------------------------

// Safety is a safety envelope (net_safety_t): kill switch, caps, rate
// limits, content policies and an audit ring. Caps are exact under any
// number of racing goroutines. Safe for concurrent use; permits outlive it.
type Safety struct {
	h handle
}

// SafetyRequest is what Acquire and Check are asked to admit.
type SafetyRequest struct {
	Source    string  `json:"source"`
	Content   *string `json:"content,omitempty"`
	Tokens    uint64  `json:"tokens,omitempty"`
	MemoryMB  uint64  `json:"memory_mb,omitempty"`
	CostCents uint64  `json:"cost_cents,omitempty"`
}

// SafetyUsage is the envelope's current usage.
type SafetyUsage struct {
	Concurrent         uint64 `json:"concurrent"`
	MemoryMB           uint64 `json:"memory_mb"`
	RequestsLastMinute uint64 `json:"requests_last_minute"`
	TokensLastMinute   uint64 `json:"tokens_last_minute"`
	CostLastHourCents  uint64 `json:"cost_last_hour_cents"`
	Sources            uint64 `json:"sources"`
	KillSwitch         bool   `json:"kill_switch"`
	Mode               string `json:"mode"`
}

// AuditEntry is one entry of the audit ring.
type AuditEntry struct {
	AtMs   uint64 `json:"at_ms"`
	Source string `json:"source"`
	// Kind is "blocked", "warning", "error" or "success".
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Clearance is what Check (and a Permit) report of an admission.
type Clearance struct {
	Warnings []string `json:"warnings"`
	Redacted *string  `json:"redacted"`
}

func freeSafety(p unsafe.Pointer) error {
	return freeStatus("net_safety_free", func() C.net_status_t { return C.net_safety_free((*C.net_safety_t)(p)) })
}

// NewSafety creates an envelope from {"mode", "limits", "policies",
// "audit"} (nil: the defaults). Errors match ErrSafetyConfig.
func NewSafety(config any) (*Safety, error) {
	const op = "net_safety_new"
	data, err := encodeJSON(op, config)
	if err != nil {
		return nil, err
	}
	var p *C.net_safety_t
	if err := check(op, func() C.net_status_t {
		return C.net_safety_new(bytesPtr(data), C.size_t(len(data)), &p)
	}); err != nil {
		return nil, err
	}
	s := &Safety{h: newHandle(unsafe.Pointer(p))}
	runtime.SetFinalizer(s, func(s *Safety) { s.h.leaked("netmesh.Safety", freeSafety) })
	return s, nil
}

func (s *Safety) handle(op string) (*C.net_safety_t, error) {
	if s == nil {
		return nil, invalidArgument(op, "safety is nil")
	}
	if p := (*C.net_safety_t)(s.h.load()); p != nil {
		return p, nil
	}
	return nil, closedError(op, "safety envelope")
}

// Close frees the envelope (net_safety_free); permits already issued stay
// valid.
func (s *Safety) Close() error {
	if s == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	return s.h.close(freeSafety)
}

// Acquire admits req and returns the Permit holding its claims until
// Release. Errors match ErrSafetyKillSwitch, ErrSafetyLimit,
// ErrSafetyRateLimited or ErrSafetyContent.
func (s *Safety) Acquire(req SafetyRequest) (*Permit, error) {
	const op = "net_safety_acquire"
	data, err := json.Marshal(req)
	if err != nil {
		return nil, invalidArgument(op, err.Error())
	}
	p, err := s.handle(op)
	if err != nil {
		return nil, err
	}
	var out *C.net_safety_permit_t
	err = check(op, func() C.net_status_t { return C.net_safety_acquire(p, bytesPtr(data), C.size_t(len(data)), &out) })
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	permit := &Permit{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(permit, func(p *Permit) { p.h.leaked("netmesh.Permit", freePermit) })
	return permit, nil
}

// Check reports whether req would be admitted now, claiming nothing.
func (s *Safety) Check(req SafetyRequest) (*Clearance, error) {
	const op = "net_safety_check"
	data, err := json.Marshal(req)
	if err != nil {
		return nil, invalidArgument(op, err.Error())
	}
	p, err := s.handle(op)
	if err != nil {
		return nil, err
	}
	var out Clearance
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t {
		return C.net_safety_check(p, bytesPtr(data), C.size_t(len(data)), b)
	})
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Limits returns the current limits as a JSON object's fields.
func (s *Safety) Limits() (map[string]any, error) {
	const op = "net_safety_limits"
	p, err := s.handle(op)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t { return C.net_safety_limits(p, b) })
	runtime.KeepAlive(s)
	return out, err
}

// SetLimits replaces the limits (missing keys take the defaults).
func (s *Safety) SetLimits(limits any) error {
	const op = "net_safety_set_limits"
	data, err := encodeJSON(op, limits)
	if err != nil {
		return err
	}
	p, err := s.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_safety_set_limits(p, bytesPtr(data), C.size_t(len(data))) })
	runtime.KeepAlive(s)
	return err
}

// Kill engages the kill switch; with autoResetMs > 0 it lifts itself after
// that many milliseconds.
func (s *Safety) Kill(reason string, autoResetMs uint64) error {
	const op = "net_safety_kill"
	p, err := s.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t {
		return C.net_safety_kill(p, stringPtr(reason), C.size_t(len(reason)), C.uint64_t(autoResetMs))
	})
	runtime.KeepAlive(s)
	return err
}

// ResetKillSwitch lifts the kill switch.
func (s *Safety) ResetKillSwitch() error {
	const op = "net_safety_reset_kill_switch"
	p, err := s.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_safety_reset_kill_switch(p) })
	runtime.KeepAlive(s)
	return err
}

// Usage returns the current usage.
func (s *Safety) Usage() (*SafetyUsage, error) {
	const op = "net_safety_usage"
	p, err := s.handle(op)
	if err != nil {
		return nil, err
	}
	var out SafetyUsage
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t { return C.net_safety_usage(p, b) })
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit returns the audit ring, oldest first; with clear, empties it.
func (s *Safety) Audit(clear bool) ([]AuditEntry, error) {
	const op = "net_safety_audit"
	p, err := s.handle(op)
	if err != nil {
		return nil, err
	}
	var out []AuditEntry
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t { return C.net_safety_audit(p, C.bool(clear), b) })
	runtime.KeepAlive(s)
	return out, err
}

// Permit holds an admitted request's claims (net_safety_permit_t) until
// Release (or Close).
type Permit struct {
	h handle
}

func freePermit(p unsafe.Pointer) error {
	return freeStatus("net_safety_permit_free", func() C.net_status_t {
		return C.net_safety_permit_free((*C.net_safety_permit_t)(p))
	})
}

func (pm *Permit) handle(op string) (*C.net_safety_permit_t, error) {
	if pm == nil {
		return nil, invalidArgument(op, "permit is nil")
	}
	if p := (*C.net_safety_permit_t)(pm.h.load()); p != nil {
		return p, nil
	}
	return nil, closedError(op, "permit")
}

// Release releases the claims; idempotent.
func (pm *Permit) Release() error {
	if pm == nil {
		return nil
	}
	runtime.SetFinalizer(pm, nil)
	return pm.h.close(freePermit)
}

// Close is Release.
func (pm *Permit) Close() error { return pm.Release() }

// Consume marks tokens and cost as really used; they stay charged after
// Release (the unused rest of the reservation is given back).
func (pm *Permit) Consume(tokens, costCents uint64) error {
	const op = "net_safety_permit_consume"
	p, err := pm.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t {
		return C.net_safety_permit_consume(p, C.uint64_t(tokens), C.uint64_t(costCents))
	})
	runtime.KeepAlive(pm)
	return err
}

// Info returns the admission's warnings and redacted content.
func (pm *Permit) Info() (*Clearance, error) {
	const op = "net_safety_permit_info"
	p, err := pm.handle(op)
	if err != nil {
		return nil, err
	}
	var out Clearance
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t { return C.net_safety_permit_info(p, b) })
	runtime.KeepAlive(pm)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ---- load balancing -----------------------------------------------------------

// LoadBalancer picks among 32-byte endpoint ids (net_lb_t) with one of
// eleven strategies ("power_of_two", "consistent_hash", ...), health,
// zones, tags and circuit breakers. Safe for concurrent use.
type LoadBalancer struct {
	h handle
}

// EndpointOptions configures an endpoint (zero values: libnet's defaults
// apply only to omitted fields, so set Weight and Health explicitly).
type EndpointOptions struct {
	Weight  uint32   `json:"weight,omitempty"`
	Health  string   `json:"health,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Zone    string   `json:"zone,omitempty"`
	Disable bool     `json:"-"`
}

// SelectRequest constrains a selection.
type SelectRequest struct {
	RoutingKey   string   `json:"routing_key,omitempty"`
	RequiredTags []string `json:"required_tags,omitempty"`
	Zone         string   `json:"zone,omitempty"`
}

// EndpointInfo is an endpoint as LoadBalancer.Endpoints reports it.
type EndpointInfo struct {
	ID          string   `json:"id"`
	Weight      uint32   `json:"weight"`
	Health      string   `json:"health"`
	Enabled     bool     `json:"enabled"`
	Zone        *string  `json:"zone"`
	Tags        []string `json:"tags"`
	Connections uint64   `json:"connections"`
	CircuitOpen bool     `json:"circuit_open"`
}

func freeLB(p unsafe.Pointer) error {
	return freeStatus("net_lb_free", func() C.net_status_t { return C.net_lb_free((*C.net_lb_t)(p)) })
}

// NewLoadBalancer creates a balancer from {"strategy", "max_connections",
// ...} (nil: round robin). Errors match ErrLbConfig.
func NewLoadBalancer(config any) (*LoadBalancer, error) {
	const op = "net_lb_new"
	data, err := encodeJSON(op, config)
	if err != nil {
		return nil, err
	}
	var p *C.net_lb_t
	if err := check(op, func() C.net_status_t {
		return C.net_lb_new(bytesPtr(data), C.size_t(len(data)), &p)
	}); err != nil {
		return nil, err
	}
	lb := &LoadBalancer{h: newHandle(unsafe.Pointer(p))}
	runtime.SetFinalizer(lb, func(lb *LoadBalancer) { lb.h.leaked("netmesh.LoadBalancer", freeLB) })
	return lb, nil
}

func (lb *LoadBalancer) handle(op string) (*C.net_lb_t, error) {
	if lb == nil {
		return nil, invalidArgument(op, "load balancer is nil")
	}
	if p := (*C.net_lb_t)(lb.h.load()); p != nil {
		return p, nil
	}
	return nil, closedError(op, "load balancer")
}

// Close frees the balancer (net_lb_free); selections stay valid.
func (lb *LoadBalancer) Close() error {
	if lb == nil {
		return nil
	}
	runtime.SetFinalizer(lb, nil)
	return lb.h.close(freeLB)
}

// Add adds an endpoint; ErrLbDuplicateEndpoint if present.
func (lb *LoadBalancer) Add(id []byte, opts EndpointOptions) error {
	const op = "net_lb_add"
	options := map[string]any{}
	raw, _ := json.Marshal(opts)
	_ = json.Unmarshal(raw, &options)
	if opts.Disable {
		options["enabled"] = false
	}
	data, err := json.Marshal(options)
	if err != nil {
		return invalidArgument(op, err.Error())
	}
	p, err := lb.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t {
		return C.net_lb_add(p, bytesPtr(id), C.size_t(len(id)), bytesPtr(data), C.size_t(len(data)))
	})
	runtime.KeepAlive(lb)
	return err
}

// Remove removes an endpoint; ErrLbUnknownEndpoint if absent.
func (lb *LoadBalancer) Remove(id []byte) error {
	const op = "net_lb_remove"
	p, err := lb.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_lb_remove(p, bytesPtr(id), C.size_t(len(id))) })
	runtime.KeepAlive(lb)
	return err
}

// Select picks an endpoint and reserves a connection on it until the
// Selection completes or is closed. ErrLbNoEndpoint when none can take it.
func (lb *LoadBalancer) Select(req SelectRequest) (*Selection, error) {
	const op = "net_lb_select"
	data, err := json.Marshal(req)
	if err != nil {
		return nil, invalidArgument(op, err.Error())
	}
	p, err := lb.handle(op)
	if err != nil {
		return nil, err
	}
	var out *C.net_lb_selection_t
	err = check(op, func() C.net_status_t { return C.net_lb_select(p, bytesPtr(data), C.size_t(len(data)), &out) })
	runtime.KeepAlive(lb)
	if err != nil {
		return nil, err
	}
	sel := &Selection{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(sel, func(s *Selection) { s.h.leaked("netmesh.Selection", freeSelection) })
	return sel, nil
}

// Endpoints lists the endpoints with their connections and circuit state.
func (lb *LoadBalancer) Endpoints() ([]EndpointInfo, error) {
	const op = "net_lb_endpoints"
	p, err := lb.handle(op)
	if err != nil {
		return nil, err
	}
	var out []EndpointInfo
	err = jsonOp(op, &out, func(b *C.net_bytes_t) C.net_status_t { return C.net_lb_endpoints(p, b) })
	runtime.KeepAlive(lb)
	return out, err
}

// Selection is a selected endpoint with a reserved connection slot
// (net_lb_selection_t), released by Complete or Close.
type Selection struct {
	h handle
}

func freeSelection(p unsafe.Pointer) error {
	return freeStatus("net_lb_selection_free", func() C.net_status_t {
		return C.net_lb_selection_free((*C.net_lb_selection_t)(p))
	})
}

func (s *Selection) handle(op string) (*C.net_lb_selection_t, error) {
	if s == nil {
		return nil, invalidArgument(op, "selection is nil")
	}
	if p := (*C.net_lb_selection_t)(s.h.load()); p != nil {
		return p, nil
	}
	return nil, closedError(op, "selection")
}

// ID returns the selected endpoint's 32-byte id and whether the selection
// is its circuit's half-open probe.
func (s *Selection) ID() ([]byte, bool, error) {
	const op = "net_lb_selection_id"
	p, err := s.handle(op)
	if err != nil {
		return nil, false, err
	}
	var b C.net_bytes_t
	var probe C.bool
	err = check(op, func() C.net_status_t { return C.net_lb_selection_id(p, &b, &probe) })
	runtime.KeepAlive(s)
	if err != nil {
		return nil, false, err
	}
	return takeBytes(&b), bool(probe), nil
}

// Complete reports the outcome (feeding the circuit breaker), releases the
// slot and closes the selection.
func (s *Selection) Complete(ok bool) error {
	const op = "net_lb_selection_complete"
	p, err := s.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return C.net_lb_selection_complete(p, C.bool(ok)) })
	runtime.KeepAlive(s)
	return joinErrors(err, s.Close())
}

// Close releases the slot if Complete was not called; idempotent.
func (s *Selection) Close() error {
	if s == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	return s.h.close(freeSelection)
}
