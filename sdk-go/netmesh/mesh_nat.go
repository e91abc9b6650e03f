package netmesh

/*
#include <net.h>
*/
import "C"

import "encoding/json"

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
