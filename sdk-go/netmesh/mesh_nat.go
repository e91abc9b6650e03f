package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
)

// MeshNAT is where a node's NAT stands (Mesh.NAT). The node classifies
// itself: at start, when direct Net peers on distinct addresses arrive,
// and every ClassifyPeriod; the class and reflex go into its capability
// announcements (the nat:* tag and reflex_addr).
type MeshNAT struct {
	// Class is "open", "cone", "symmetric" or "unknown" (the nat:* tag).
	Class string `json:"class"`
	// Reflex is the "IP:port" peers can reach this node at, or nil (never
	// a private, loopback or wildcard address).
	Reflex *string `json:"reflex"`
	// Mapping and Filtering are the RFC 4787 behaviours the last round
	// showed ("EndpointIndependent", "AddressDependent", ..., "Unknown").
	Mapping        string  `json:"mapping"`
	Filtering      string  `json:"filtering"`
	PortPreserving bool    `json:"port_preserving"`
	Override       *string `json:"override"` // the active reflex override
	Rounds         uint64  `json:"rounds"`   // classification rounds committed
	Classify       bool    `json:"classify"` // the node classifies by itself
	// The punch counters: introduces received for punches this node asked
	// for, direct paths after a punch, ConnectDirect calls ended relayed.
	PunchesAttempted uint64 `json:"punches_attempted"`
	PunchesSucceeded uint64 `json:"punches_succeeded"`
	RelayFallbacks   uint64 `json:"relay_fallbacks"`
}

// DirectOutcome is how ConnectDirect ended: DirectPath, or why the
// session runs through the coordinator.
type DirectOutcome uint32

// The outcomes of ConnectDirect.
const (
	DirectPath        DirectOutcome = C.NET_DIRECT_OUTCOME_DIRECT
	DirectSkipPunch   DirectOutcome = C.NET_DIRECT_OUTCOME_SKIP_PUNCH
	DirectNoIntroduce DirectOutcome = C.NET_DIRECT_OUTCOME_NO_INTRODUCE
	DirectNoAck       DirectOutcome = C.NET_DIRECT_OUTCOME_NO_ACK
	DirectPathFailed  DirectOutcome = C.NET_DIRECT_OUTCOME_PATH_FAILED
)

func (o DirectOutcome) String() string {
	switch o {
	case DirectPath:
		return "direct"
	case DirectSkipPunch:
		return "skip-punch"
	case DirectNoIntroduce:
		return "no-introduce"
	case DirectNoAck:
		return "no-ack"
	default:
		return "path-failed"
	}
}

// ConnectDirect reaches nodeID (static key publicKey) on a direct path,
// with coordinator (a direct peer holding sessions with both) for the hole
// punch. A session relayed already (ConnectVia) moves to the punched path
// with nothing lost or repeated; with no session, a punched path gets a
// new direct session and a failure one relayed by the coordinator.
// ErrMeshNoRoute when coordinator is not a direct peer.
func (m *Mesh) ConnectDirect(ctx context.Context, nodeID uint64, publicKey []byte, coordinator uint64) (DirectOutcome, error) {
	var outcome C.uint32_t
	_, err := m.blocking(ctx, "net_mesh_connect_direct", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_connect_direct(p, C.uint64_t(nodeID), bytesPtr(publicKey), C.size_t(len(publicKey)),
			C.uint64_t(coordinator), cancel, errOut, &outcome)
	})
	runtime.KeepAlive(publicKey)
	return DirectOutcome(outcome), err
}

// NAT returns where this node's NAT stands.
func (m *Mesh) NAT() (MeshNAT, error) {
	var nat MeshNAT
	b, err := m.bytesOf("net_mesh_nat", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_nat(p, out)
	})
	if err != nil {
		return nat, err
	}
	if err := json.Unmarshal(b, &nat); err != nil {
		return MeshNAT{}, &Error{Op: "net_mesh_nat", Status: StatusInternal, Message: err.Error()}
	}
	return nat, nil
}

// SetReflexOverride sets the operator's reflex override ("IP:port", a
// public address: class Open with that reflex, classification paused), or
// clears it when addr is "". A node that announced re-announces at once.
// ErrInvalidArgument for a malformed, private, loopback or wildcard
// address.
func (m *Mesh) SetReflexOverride(addr string) error {
	_, err := m.do("net_mesh_set_reflex_override", func(p *C.net_mesh_t) C.net_status_t {
		if addr == "" {
			return C.net_mesh_set_reflex_override(p, nil, 0)
		}
		return C.net_mesh_set_reflex_override(p, stringPtr(addr), C.size_t(len(addr)))
	})
	return err
}

// ReclassifyNAT starts a classification round now (it needs two direct
// Net peers on distinct IP addresses); MeshNAT.Rounds counts the rounds
// committed.
func (m *Mesh) ReclassifyNAT() error {
	_, err := m.do("net_mesh_reclassify_nat", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_reclassify_nat(p)
	})
	return err
}
