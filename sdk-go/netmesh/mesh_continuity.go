package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
)

// PartitionRecord is one split as this node sees it (Mesh.Partitions).
type PartitionRecord struct {
	ID uint64 `json:"id"`
	// Phase is "suspected", "confirmed", "healing" or "healed".
	Phase     string   `json:"phase"`
	OurSide   []uint64 `json:"our_side"`
	OtherSide []uint64 `json:"other_side"`
	Returned  []uint64 `json:"returned"`
	// Cause: Kind is "subnet" (with Subnet and Share), "broad_outage" or
	// "unknown".
	Cause struct {
		Kind   string  `json:"kind"`
		Subnet string  `json:"subnet"`
		Share  float64 `json:"share"`
	} `json:"cause"`
	// HorizonAtSplit holds (origin, sequence) pairs: where each followed
	// chain stood at the split.
	HorizonAtSplit [][2]uint64 `json:"horizon_at_split"`
	DetectedAtMs   uint64      `json:"detected_at_ms"`
	ConfirmedAtMs  *uint64     `json:"confirmed_at_ms"`
	HealedAtMs     *uint64     `json:"healed_at_ms"`
	// PartitionKey is the split's identity both sides agree on, once a
	// returned peer's view arrived (nil before).
	PartitionKey *uint64 `json:"partition_key"`
}

// ChainPoint is a point on a chain: origin, sequence and chain hash.
type ChainPoint struct {
	Origin uint64 `json:"origin"`
	Seq    uint64 `json:"seq"`
	Hash   uint64 `json:"hash"`
}

// ForkInfo is the lineage of a fork a losing branch became.
type ForkInfo struct {
	OriginalOrigin uint64 `json:"original_origin"`
	ForkedOrigin   uint64 `json:"forked_origin"`
	ForkSeq        uint64 `json:"fork_seq"`
	Bytes          string `json:"bytes"` // the 65-byte record, hex
}

// ChainStatus is one chain the node follows (Mesh.ContinuityStatus).
type ChainStatus struct {
	Origin uint64     `json:"origin"`
	Head   ChainPoint `json:"head"`
	Held   uint64     `json:"held"`
	// Broken is nil while the chain verifies.
	Broken *struct {
		Reason          string `json:"reason"` // "chain_break" or "conflicting_chains"
		LastVerifiedSeq uint64 `json:"last_verified_seq"`
		DetectedAtMs    uint64 `json:"detected_at_ms"`
	} `json:"broken"`
	Forks []ForkInfo `json:"forks"`
	// Source is the peer the chain's events last came from on a causal
	// stream (nil: none yet), the one the node proves it against;
	// ProvedTo is the last sequence those proofs settled; ProofConflicted
	// says a proof conflicted (no more until the chain is reconciled).
	Source          *uint64 `json:"source"`
	ProvedTo        uint64  `json:"proved_to"`
	ProofConflicted bool    `json:"proof_conflicted"`
}

// GenesisLink is the first link of origin's causal chain (its event has
// no payload).
func GenesisLink(origin uint64) []byte {
	out := make([]byte, 32)
	binary.LittleEndian.PutUint64(out, origin)
	return out
}

// NextCausalLink is the causal link that follows prev (32 bytes) whose
// event carried prevPayload: the same origin, horizon, the next sequence,
// and the parent hash xxh3_64(prev ‖ prevPayload).
func NextCausalLink(prev, prevPayload []byte, horizon uint64) ([]byte, error) {
	var out C.net_bytes_t
	if err := check("net_causal_next_link", func() C.net_status_t {
		return C.net_causal_next_link(bytesPtr(prev), C.size_t(len(prev)), bytesPtr(prevPayload), C.size_t(len(prevPayload)), C.uint64_t(horizon), &out)
	}); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// CausalFrame is one event of a causal stream (OpenCausalStream): the
// 32-byte causal link and the payload as a frame (u32 LE 32+len(payload),
// link, payload). Frames may be concatenated into one event.
func CausalFrame(link, payload []byte) ([]byte, error) {
	if len(link) != 32 {
		return nil, invalidArgument("CausalFrame", "a causal link is 32 bytes")
	}
	out := make([]byte, 4, 36+len(payload))
	binary.LittleEndian.PutUint32(out, uint32(32+len(payload)))
	out = append(out, link...)
	return append(out, payload...), nil
}

// ContinuityEvent is one event of the node's continuity plane
// (Mesh.ContinuityNext). Type is "detected", "extended", "confirmed",
// "healing" (with Progress), "healed" (these with Record), "agreed"
// (Record, Peer, PartitionKey), "reconciled" (Origin, Peer, PartitionKey,
// Head, Outcome "converged" | "caught_up" (Appended) | "diverged" (WeWon,
// Fork)), "fork_adopted" (Peer, PartitionKey, Fork), "proof_checked"
// (Peer, Origin, FromSeq, ToSeq, Verdict "consistent" | "conflicts" (Seq,
// Ours, Theirs) | "unknown" | "unavailable" (TheirHead) | "unanswered") or
// "chain_broken" (Origin, Reason).
type ContinuityEvent struct {
	Type         string      `json:"type"`
	Record       uint64      `json:"record"`
	Progress     float64     `json:"progress"`
	Peer         uint64      `json:"peer"`
	PartitionKey *uint64     `json:"partition_key"`
	Origin       uint64      `json:"origin"`
	Head         *ChainPoint `json:"head"`
	Outcome      string      `json:"outcome"`
	Appended     uint64      `json:"appended"`
	WeWon        bool        `json:"we_won"`
	Fork         *ForkInfo   `json:"fork"`
	Reason       string      `json:"reason"`
	FromSeq      uint64      `json:"from_seq"`
	ToSeq        uint64      `json:"to_seq"`
	Verdict      string      `json:"verdict"`
	Seq          uint64      `json:"seq"`
	Ours         uint64      `json:"ours"`
	Theirs       uint64      `json:"theirs"`
	TheirHead    *ChainPoint `json:"their_head"`
}

// meshJSON decodes the JSON that op (a net_mesh_* call filling a
// net_bytes_t) returns.
func meshJSON[T any](m *Mesh, op string, f func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t) (T, error) {
	var v T
	b, err := m.bytesOf(op, f)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return v, nil
}

// Partitions lists the node's partition records, oldest first.
func (m *Mesh) Partitions() ([]PartitionRecord, error) {
	return meshJSON[[]PartitionRecord](m, "net_mesh_partitions", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_partitions(p, out)
	})
}

// ContinuityStatus lists the chains the node follows.
func (m *Mesh) ContinuityStatus() ([]ChainStatus, error) {
	return meshJSON[[]ChainStatus](m, "net_mesh_continuity_status", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_continuity_status(p, out)
	})
}

// FollowChain follows chain origin from its genesis (idempotent): its
// events are checked as they are handed over (ObserveChainEvent) and it is
// reconciled after a partition heals. ErrInvalidArgument when the node
// runs without continuity.
func (m *Mesh) FollowChain(origin uint64) error {
	_, err := m.do("net_mesh_follow_chain", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_follow_chain(p, C.uint64_t(origin))
	})
	return err
}

// RequestContinuityProof asks peer to prove fromSeq..=toSeq of the
// followed chain origin and checks the proof against what this node holds
// or remembers; the verdict arrives as a "proof_checked" event of
// ContinuityNext. ErrInvalidArgument when continuity is off, the chain is
// not followed, fromSeq > toSeq or the span is 100 000 events or more, or
// peer is not a connected continuity peer.
func (m *Mesh) RequestContinuityProof(peer, origin, fromSeq, toSeq uint64) error {
	_, err := m.do("net_mesh_request_continuity_proof", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_request_continuity_proof(p, C.uint64_t(peer), C.uint64_t(origin),
			C.uint64_t(fromSeq), C.uint64_t(toSeq))
	})
	return err
}

var observations = map[C.uint32_t]string{
	C.NET_CHAIN_EXTENDED:  "extended",
	C.NET_CHAIN_DUPLICATE: "duplicate",
	C.NET_CHAIN_STALE:     "stale",
	C.NET_CHAIN_BROKE:     "broke",
	C.NET_CHAIN_IGNORED:   "ignored",
}

// ObserveChainEvent hands the node the next event of a followed chain (its
// 32-byte causal link and payload) and says what it did: "extended",
// "duplicate", "stale", "broke" (a "chain_broken" event follows) or
// "ignored" (the chain was already broken). ErrInvalidArgument for a
// malformed link or a chain not followed.
func (m *Mesh) ObserveChainEvent(link, payload []byte) (string, error) {
	var code C.uint32_t
	_, err := m.do("net_mesh_observe_chain_event", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_observe_chain_event(p, bytesPtr(link), C.size_t(len(link)),
			bytesPtr(payload), C.size_t(len(payload)), &code)
	})
	if err != nil {
		return "", err
	}
	if name, ok := observations[code]; ok {
		return name, nil
	}
	return "ignored", nil
}

// ContinuityNext waits for the node's next continuity event until ctx is
// done (ctx.Err() then); io.EOF once the node is closed.
func (m *Mesh) ContinuityNext(ctx context.Context) (ContinuityEvent, error) {
	const op = "net_mesh_continuity_next"
	var out C.net_bytes_t
	st, err := m.blocking(ctx, op, func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_continuity_next(p, C.uint32_t(waitForever), &out, cancel, errOut)
	})
	switch {
	case err != nil:
		return ContinuityEvent{}, err
	case st == StatusEnd:
		return ContinuityEvent{}, io.EOF
	case st != StatusOK:
		return ContinuityEvent{}, unexpected(op, st)
	}
	var event ContinuityEvent
	if err := json.Unmarshal(takeBytes(&out), &event); err != nil {
		return ContinuityEvent{}, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return event, nil
}
