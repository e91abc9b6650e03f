package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"unsafe"
)

// Channels and capabilities on a Mesh: a node registers channels and
// publishes on them; peers (direct or relayed) subscribe, with a
// PermissionToken when the channel requires one, and receive the events
// through Recv / RecvNext with MeshEvent.Channel set. Nodes announce their
// capabilities, which travel the mesh, and query the index with FindNodes
// and FindBestNode.

// CapabilityFilter constrains an announced capability set (the filter of a
// query, or a channel's publish / subscribe filter). Zero fields constrain
// nothing.
type CapabilityFilter struct {
	RequireTags       []string `json:"require_tags,omitempty"`       // all present
	RequireModels     []string `json:"require_models,omitempty"`     // any present
	RequireTools      []string `json:"require_tools,omitempty"`      // any present
	MinMemoryMB       uint64   `json:"min_memory_mb,omitempty"`      // MiB
	RequireGPU        bool     `json:"require_gpu,omitempty"`        // a primary GPU
	GPUVendor         string   `json:"gpu_vendor,omitempty"`         // "nvidia", "amd", …
	MinVRAMMB         uint64   `json:"min_vram_mb,omitempty"`        // MiB over all GPUs
	MinContextLength  uint64   `json:"min_context_length,omitempty"` // tokens, of some model
	RequireModalities []string `json:"require_modalities,omitempty"` // "text", "image", …
}

// ChannelConfig is a channel's policy. The zero value is an open, global
// channel.
type ChannelConfig struct {
	// Visibility: "global" (default, ""), "subnet_local", "parent_visible"
	// or "exported".
	Visibility string
	// PublishCaps and SubscribeCaps filter the publisher's / a subscriber's
	// announced capabilities (nil: no filter).
	PublishCaps   *CapabilityFilter
	SubscribeCaps *CapabilityFilter
	// RequireToken: subscribers present a PermissionToken for the channel
	// whose chain reaches a trusted issuer (this node, or TrustedIssuers).
	RequireToken bool
	// TrustedIssuers are entity ids (32 bytes) that may root a token chain
	// besides this node.
	TrustedIssuers [][]byte
	// AnyIssuer trusts any issuer whose signature verifies (v0.11's rule;
	// not a security boundary).
	AnyIssuer bool
	// MaxSubscribers caps the subscribers at once (0: no limit).
	MaxSubscribers uint64
	// MaxRatePPS caps publish calls per second (0: no limit).
	MaxRatePPS uint32
	// Reliable publishes on retransmitting streams to Net subscribers.
	Reliable bool
	// Priority is the header priority of publish packets to Net peers.
	Priority uint8
	// ExportTo lists the subnets ("3.8") whose peers, and those of the
	// subnets below them, may see an "exported" channel (none without it).
	ExportTo []string
}

// MarshalJSON writes the libnet channel configuration.
func (c ChannelConfig) MarshalJSON() ([]byte, error) {
	m := map[string]any{"require_token": c.RequireToken, "reliable": c.Reliable, "priority": c.Priority}
	if c.Visibility != "" {
		m["visibility"] = c.Visibility
	}
	if c.PublishCaps != nil {
		m["publish_caps"] = c.PublishCaps
	}
	if c.SubscribeCaps != nil {
		m["subscribe_caps"] = c.SubscribeCaps
	}
	if c.AnyIssuer {
		m["trusted_issuers"] = "any"
	} else if len(c.TrustedIssuers) > 0 {
		ids := make([]string, len(c.TrustedIssuers))
		for i, id := range c.TrustedIssuers {
			ids[i] = hex.EncodeToString(id)
		}
		m["trusted_issuers"] = ids
	}
	if c.MaxSubscribers > 0 {
		m["max_subscribers"] = c.MaxSubscribers
	}
	if c.MaxRatePPS > 0 {
		m["max_rate_pps"] = c.MaxRatePPS
	}
	if c.ExportTo != nil {
		m["export_to"] = c.ExportTo
	}
	return json.Marshal(m)
}

// PublishFailure is one subscriber a publish could not send to.
type PublishFailure struct {
	Peer    uint64 `json:"peer"`
	Status  string `json:"status"` // e.g. "NET_ERR_MESH_BACKPRESSURE"
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

// PublishReport is what a Publish did.
type PublishReport struct {
	Attempted int              `json:"attempted"` // subscribers it was for
	Delivered int              `json:"delivered"` // subscribers whose packets were queued
	Evicted   int              `json:"evicted"`   // subscribers dropped by the publish-time re-check
	Errors    []PublishFailure `json:"errors"`
}

// NodeQuery selects indexed nodes: Filter, and Scope ("" or "any",
// "global_only", "same_subnet").
type NodeQuery struct {
	Filter CapabilityFilter
	Scope  string
}

// ScoringWeights weigh FindBestNode's score (each 0..1).
type ScoringWeights struct {
	Memory float64 `json:"memory"`
	VRAM   float64 `json:"vram"`
	Speed  float64 `json:"speed"`
	Loaded float64 `json:"loaded"`
}

func (q NodeQuery) fields() map[string]any {
	m := map[string]any{"filter": q.Filter}
	if q.Scope != "" {
		m["scope"] = q.Scope
	}
	return m
}

// NodeCapabilities is one indexed node (Mesh.Capabilities).
type NodeCapabilities struct {
	NodeID       uint64       `json:"node_id"`
	Version      uint64       `json:"version"`
	TimestampNs  uint64       `json:"timestamp_ns"`
	ExpiresAtNs  uint64       `json:"expires_at_ns"`
	HopCount     uint8        `json:"hop_count"`
	ReflexAddr   *string      `json:"reflex_addr"`
	Capabilities Capabilities `json:"capabilities"` // the full WIRE.md §10.4 set
}

func (m *Mesh) withName(op, name string, f func(p *C.net_mesh_t, n *C.uint8_t, nl C.size_t) C.net_status_t) error {
	_, err := m.do(op, func(p *C.net_mesh_t) C.net_status_t {
		return f(p, stringPtr(name), C.size_t(len(name)))
	})
	return err
}

// RegisterChannel registers name with config on this node, or replaces its
// config; it returns the subscribers evicted because they no longer qualify.
// Errors: ErrChannelConfig (naming the key), ErrChannelInvalidName,
// ErrChannelHashCollision, ErrShuttingDown.
func (m *Mesh) RegisterChannel(name string, config ChannelConfig) (uint64, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return 0, err
	}
	var evicted C.uint64_t
	err = m.withName("net_mesh_register_channel", name, func(p *C.net_mesh_t, n *C.uint8_t, nl C.size_t) C.net_status_t {
		return C.net_mesh_register_channel(p, n, nl, bytesPtr(cfg), C.size_t(len(cfg)), &evicted)
	})
	return uint64(evicted), err
}

// DeregisterChannel removes name; its subscribers (their number is
// returned) are evicted.
func (m *Mesh) DeregisterChannel(name string) (uint64, error) {
	var evicted C.uint64_t
	err := m.withName("net_mesh_deregister_channel", name, func(p *C.net_mesh_t, n *C.uint8_t, nl C.size_t) C.net_status_t {
		return C.net_mesh_deregister_channel(p, n, nl, &evicted)
	})
	return uint64(evicted), err
}

// InstallChannelToken keeps a 159-byte token (typically a delegation
// parent subscribers' tokens chain through) for authorization checks.
func (m *Mesh) InstallChannelToken(token []byte) error {
	_, err := m.do("net_mesh_install_channel_token", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_install_channel_token(p, bytesPtr(token), C.size_t(len(token)))
	})
	return err
}

// Subscribe subscribes to the channel name at publisher (a direct or
// relayed peer), presenting token (nil: none), and waits for the answer.
// Refusals: ErrChannelUnauthorized, ErrChannelUnknown,
// ErrChannelRateLimited, ErrChannelFull; also ErrChannelNoAnswer, ErrChannelHashCollision,
// ErrMeshUnknownPeer, ErrCancelled (ctx), ErrShuttingDown.
func (m *Mesh) Subscribe(ctx context.Context, publisher uint64, name string, token []byte) error {
	_, err := m.blocking(ctx, "net_mesh_subscribe", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		var t *C.uint8_t
		if token != nil {
			t = bytesPtr(token)
		}
		return C.net_mesh_subscribe(p, C.uint64_t(publisher), stringPtr(name), C.size_t(len(name)),
			t, C.size_t(len(token)), cancel, errOut)
	})
	return err
}

// Unsubscribe ends the subscription to name at publisher and waits for the
// answer; the channel's events from it stop arriving.
func (m *Mesh) Unsubscribe(ctx context.Context, publisher uint64, name string) error {
	_, err := m.blocking(ctx, "net_mesh_unsubscribe", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_unsubscribe(p, C.uint64_t(publisher), stringPtr(name), C.size_t(len(name)), cancel, errOut)
	})
	return err
}

// Publish sends events on this node's registered channel name to every
// authorized subscriber (reliably when reliable or the channel says so);
// it never waits. Errors: ErrChannelUnknown, ErrChannelUnauthorized,
// ErrChannelRateLimited, ErrMeshTooLarge, ErrShuttingDown.
func (m *Mesh) Publish(name string, events [][]byte, reliable bool) (PublishReport, error) {
	const op = "net_mesh_publish"
	var report PublishReport
	p, err := m.ptr(op)
	if err != nil {
		return report, err
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := eventSlices(events, &pinner)
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t {
		return C.net_mesh_publish(p, stringPtr(name), C.size_t(len(name)), unsafe.SliceData(slices),
			C.size_t(len(slices)), C.bool(reliable), &out)
	})
	runtime.KeepAlive(m)
	if err != nil {
		return report, err
	}
	if err := json.Unmarshal(takeBytes(&out), &report); err != nil {
		return PublishReport{}, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return report, nil
}

func (m *Mesh) jsonOf(op string, v any, f func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t) error {
	b, err := m.bytesOf(op, f)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return nil
}

// Channels returns the channels JSON: "channels" registered here,
// "subscriptions" held, "counters".
func (m *Mesh) Channels() (map[string]any, error) {
	var v map[string]any
	err := m.jsonOf("net_mesh_channels", &v, func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_channels(p, out)
	})
	return v, err
}

// Announce signs caps, indexes them here and sends them to every peer,
// which forward them on. Errors: ErrMeshCapabilities (also for an
// enumeration name that is none of the known ones), ErrShuttingDown.
func (m *Mesh) Announce(caps Capabilities) error {
	b, err := json.Marshal(caps)
	if err != nil {
		return &Error{Op: "net_mesh_announce", Status: StatusMeshCapabilities, Message: err.Error()}
	}
	_, err = m.do("net_mesh_announce", func(p *C.net_mesh_t) C.net_status_t {
		return C.net_mesh_announce(p, bytesPtr(b), C.size_t(len(b)))
	})
	return err
}

func (m *Mesh) query(op string, q map[string]any, v any, f func(p *C.net_mesh_t, q *C.uint8_t, ql C.size_t, out *C.net_bytes_t) C.net_status_t) error {
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return m.jsonOf(op, v, func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return f(p, bytesPtr(b), C.size_t(len(b)), out)
	})
}

// FindNodes returns the indexed nodes (this one included once it
// announced) matching query, in ascending id order.
func (m *Mesh) FindNodes(query NodeQuery) ([]uint64, error) {
	var found struct {
		Nodes []uint64 `json:"nodes"`
	}
	err := m.query("net_mesh_find_nodes", query.fields(), &found, func(p *C.net_mesh_t, q *C.uint8_t, ql C.size_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_find_nodes(p, q, ql, out)
	})
	return found.Nodes, err
}

// FindBestNode returns the best-scoring node for query and weights, and
// its score; ok is false when nothing matches.
func (m *Mesh) FindBestNode(query NodeQuery, weights ScoringWeights) (nodeID uint64, score float64, ok bool, err error) {
	var best struct {
		NodeID *uint64 `json:"node_id"`
		Score  float64 `json:"score"`
	}
	q := query.fields()
	q["weights"] = weights
	err = m.query("net_mesh_find_best_node", q, &best, func(p *C.net_mesh_t, q *C.uint8_t, ql C.size_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_find_best_node(p, q, ql, out)
	})
	if err != nil || best.NodeID == nil {
		return 0, 0, false, err
	}
	return *best.NodeID, best.Score, true, nil
}

// Capabilities returns every live indexed node.
func (m *Mesh) Capabilities() ([]NodeCapabilities, error) {
	var all struct {
		Nodes []NodeCapabilities `json:"nodes"`
	}
	err := m.jsonOf("net_mesh_capabilities", &all, func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_capabilities(p, out)
	})
	return all.Nodes, err
}
