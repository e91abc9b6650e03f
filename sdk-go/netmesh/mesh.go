package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"runtime"
	"time"
	"unsafe"
)

// The encrypted UDP mesh: a Mesh is one node (one UDP socket, Noise NKpsk0
// sessions with its peers); a MeshStream is one stream to one peer. Between
// two Net nodes, reliable streams retransmit and deliver in order exactly
// once, and sessions are bound to the peers' ed25519 identities; with Net
// v0.11 peers the node behaves as v0.11 does.

// MeshConfig configures a node. Zero fields take libnet's defaults (v0.11's:
// 5 s heartbeats, 30 s session timeout, 64 KiB windows, a random PSK — set
// PSK for nodes that must talk to each other).
type MeshConfig struct {
	Bind                 string        // "IP:port" (default 127.0.0.1:0)
	PSK                  []byte        // 32-byte mesh-wide secret
	IdentitySeed         []byte        // 32-byte ed25519 seed (random when nil)
	StaticSecret         []byte        // 32-byte X25519 responder secret (random when nil)
	HeartbeatInterval    time.Duration // heartbeat / maintenance period
	SessionTimeout       time.Duration // failure-detector unit
	HandshakeTimeout     time.Duration // per attempt
	HandshakeRetries     uint32        // attempts
	NumShards            int           // inbound shards
	ShardCapacity        int           // events per shard before backpressure
	Window               *uint64       // default stream window (nil: 64 KiB; 0: unlimited)
	RecvBuffer           int           // socket buffers (bytes)
	SendBuffer           int
	MaxStreams           int
	StreamIdleTimeout    time.Duration
	ConnectForm          string // "routed" (default) or "direct"
	HelloTimeout         time.Duration
	RequireIdentity      bool
	MaxPendingHandshakes int
	LoopbackDepth        int
	// NoGSO / NoGRO turn the Linux UDP offloads off (on by default; a GSO
	// send the kernel refuses turns GSO off by itself).
	NoGSO, NoGRO bool
	// MaxWindow bounds how far a default stream window widens between Net
	// nodes while its sender is held back by credit and the reader keeps
	// up (nil: 4 MiB; at most Window turns growth off). WindowBudget is
	// what all widened streams of the node may hold beyond the default
	// (0: 64 MiB).
	MaxWindow    *uint64
	WindowBudget uint64
	// NoLargeDatagrams keeps every datagram within v0.11's 8 KiB (by
	// default two Net nodes use up to 65 000-byte datagrams where the route
	// carries them unfragmented and a probe gets through).
	NoLargeDatagrams bool
	// PathProbeInterval is how often a large-datagram path is probed again
	// (60 s by default).
	PathProbeInterval time.Duration
	// NoAES stops offering AES-256-GCM to Net peers (offered by default
	// when the CPU has AES instructions; used when both sides offer it):
	// every session stays on ChaCha20-Poly1305.
	NoAES bool
	// NoContinuity turns the continuity plane off (partition records, the
	// heal exchange, chain reconciliation; on by default, see
	// Mesh.Partitions).
	NoContinuity bool
	// ProofInterval is how often the node proves each followed chain heard
	// on a causal stream against the peer it came from (10 s by default);
	// NoChainProofs turns those proofs off (the application's own
	// RequestContinuityProof still works).
	ProofInterval time.Duration
	NoChainProofs bool
	// NoNATClassify stops the node classifying its NAT by itself (on by
	// default; see Mesh.NAT).
	NoNATClassify bool
	// ClassifyPeriod and ClassifyDeadline time the classification rounds
	// (60 s and 5 s by default).
	ClassifyPeriod, ClassifyDeadline time.Duration
	// ReflexOverride ("IP:port", a public address) announces class Open
	// with that reflex and pauses classification.
	ReflexOverride string
	// PortMapping asks the gateway for a mapping of the node's port (PCP,
	// NAT-PMP, UPnP IGD; off by default): announced as the reflex,
	// renewed, deleted at Close. PortMappingGateway names the PCP/NAT-PMP
	// gateway (IPv4; default the default route's).
	PortMapping        bool
	PortMappingGateway string
	// Subnet is this node's subnet: "global" or one to four dotted levels
	// ("3.7.2"). Empty: from SubnetPolicy over the tags it announces, else
	// GLOBAL. With either set, the node announces its subnet (a "subnet:"
	// tag) and a peer that announced nothing sees only Global channels.
	Subnet string
	// SubnetPolicy maps capability tags to subnet levels: this node's
	// subnet when Subnet is empty, and that of peers announcing no
	// "subnet:" tag (docs/mesh.md, "Subnets").
	SubnetPolicy []SubnetRule
}

// SubnetRule is one rule of MeshConfig.SubnetPolicy: the first tag that
// starts with Prefix and whose remainder is a key of Values sets subnet
// level Level (0-3; 0 is the top level) to that value (1-255). A later
// rule for the same level overwrites an earlier one.
type SubnetRule struct {
	Prefix string           `json:"prefix"`
	Level  uint8            `json:"level"`
	Values map[string]uint8 `json:"values"`
}

// MarshalJSON gives the configuration JSON of net_mesh_new.
func (c MeshConfig) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	put := func(k string, v any) { m[k] = v }
	if c.Bind != "" {
		put("bind", c.Bind)
	}
	if c.PSK != nil {
		put("psk_hex", hex.EncodeToString(c.PSK))
	}
	if c.IdentitySeed != nil {
		put("identity_seed_hex", hex.EncodeToString(c.IdentitySeed))
	}
	if c.StaticSecret != nil {
		put("static_secret_hex", hex.EncodeToString(c.StaticSecret))
	}
	ms := func(k string, d time.Duration) {
		if d > 0 {
			put(k, (d+time.Millisecond-1)/time.Millisecond)
		}
	}
	ms("heartbeat_interval_ms", c.HeartbeatInterval)
	ms("session_timeout_ms", c.SessionTimeout)
	ms("handshake_timeout_ms", c.HandshakeTimeout)
	ms("stream_idle_timeout_ms", c.StreamIdleTimeout)
	ms("hello_timeout_ms", c.HelloTimeout)
	ms("classify_period_ms", c.ClassifyPeriod)
	ms("classify_deadline_ms", c.ClassifyDeadline)
	if c.NoNATClassify {
		put("nat_classify", false)
	}
	if c.ReflexOverride != "" {
		put("reflex_override", c.ReflexOverride)
	}
	if c.PortMapping {
		put("port_mapping", true)
	}
	if c.PortMappingGateway != "" {
		put("port_mapping_gateway", c.PortMappingGateway)
	}
	if c.Subnet != "" {
		put("subnet", c.Subnet)
	}
	if c.SubnetPolicy != nil {
		put("subnet_policy", c.SubnetPolicy)
	}
	if c.HandshakeRetries > 0 {
		put("handshake_retries", c.HandshakeRetries)
	}
	for k, v := range map[string]int{"num_shards": c.NumShards, "shard_capacity": c.ShardCapacity,
		"recv_buffer": c.RecvBuffer, "send_buffer": c.SendBuffer, "max_streams": c.MaxStreams,
		"max_pending_handshakes": c.MaxPendingHandshakes, "loopback_depth": c.LoopbackDepth} {
		if v > 0 {
			put(k, v)
		}
	}
	if c.Window != nil {
		put("window", *c.Window)
	}
	if c.MaxWindow != nil {
		put("max_window", *c.MaxWindow)
	}
	if c.WindowBudget > 0 {
		put("window_budget", c.WindowBudget)
	}
	if c.NoLargeDatagrams {
		put("large_datagrams", false)
	}
	ms("path_probe_interval_ms", c.PathProbeInterval)
	if c.ConnectForm != "" {
		put("connect_form", c.ConnectForm)
	}
	if c.RequireIdentity {
		put("require_identity", true)
	}
	if c.NoGSO {
		put("gso", false)
	}
	if c.NoGRO {
		put("gro", false)
	}
	if c.NoAES {
		put("aes", false)
	}
	if c.NoContinuity {
		put("continuity", false)
	}
	ms("proof_interval_ms", c.ProofInterval)
	if c.NoChainProofs {
		put("proof_interval_ms", 0)
	}
	return json.Marshal(m)
}

// MeshEvent is one received event.
type MeshEvent struct {
	Peer     uint64 // the sending node
	StreamID uint64
	Data     []byte
	// DroppedBefore counts events of this stream dropped just before this
	// one because the inbound queue was full (only senders that do not
	// wait for credit cause drops).
	DroppedBefore uint64
	// Channel is the name of the channel the event was published on ("" for
	// an ordinary stream, or a publish stream this node holds no
	// subscription for).
	Channel string
}

// MeshPeer describes one connected peer.
type MeshPeer struct {
	NodeID    uint64  `json:"node_id"`
	Addr      string  `json:"addr"`
	SessionID uint64  `json:"session_id"`
	Health    string  `json:"health"`   // "alive", "suspected", "failed"
	Identity  string  `json:"identity"` // "net", "legacy", "pending"
	Entity    *string `json:"entity"`   // hex ed25519 key when bound
	Streams   int     `json:"streams"`
	IdleMs    uint64  `json:"idle_ms"`
	Cipher    string  `json:"cipher"` // "chacha20-poly1305" or "aes-256-gcm"
	// DroppedUnreported counts events from the peer dropped for want of
	// inbound queue room and not yet reported on a later event
	// (MeshEvent.DroppedBefore).
	DroppedUnreported uint64 `json:"dropped_unreported"`
	// Relay is the node_id of the relay a relayed session (ConnectVia,
	// ConnectRouted, or a peer that reached us so) goes through; nil for a
	// direct peer.
	Relay *uint64 `json:"relay"`
	// MaxDatagram is the largest datagram sent to the peer: 8192 (v0.11's),
	// or up to 65 000 between Net nodes once a large-datagram probe got
	// through.
	MaxDatagram int `json:"max_datagram"`
	// Subnet is the peer's subnet as this node knows it ("global" or dotted
	// levels, from its announcement); nil when unknown.
	Subnet *string `json:"subnet"`
}

// MeshRoutes is a node's routing table (Mesh.Routes).
type MeshRoutes struct {
	// NodeID is this node's id.
	NodeID uint64 `json:"node_id"`
	// Routes has one entry per reachable destination, in id order.
	Routes []MeshRoute `json:"routes"`
	// Forwarding counts the routed datagrams this node handled as a relay
	// ("forwarded") or received ("delivered"), and those it dropped, by
	// reason ("dropped_malformed", "dropped_not_from_peer",
	// "dropped_ttl_expired", "dropped_no_route", "dropped_would_loop").
	Forwarding map[string]uint64 `json:"forwarding"`
	// Pingwaves counts pingwaves "sent", "accepted", "relayed",
	// "duplicate" and dropped ("dropped_*", by reason).
	Pingwaves map[string]uint64 `json:"pingwaves"`
}

// MeshRoute is the route in use to one destination.
type MeshRoute struct {
	Destination uint64 `json:"destination"`
	// NextHop is the direct peer packets to Destination go to.
	NextHop uint64 `json:"next_hop"`
	// Hops counts the links to Destination.
	Hops uint8 `json:"hops"`
	// Kind is "direct", "relayed" (a relayed session's pinned route) or
	// "learned" (from pingwaves).
	Kind string `json:"kind"`
	// AgeMs is the time since the route was last confirmed.
	AgeMs uint64 `json:"age_ms"`
	// Stale: no news for the expiry time, kept only for want of a fresher one.
	Stale bool `json:"stale"`
	// Alternates counts other usable next hops, ready if this one fails.
	Alternates int `json:"alternates"`
}

// Route is the route to destination in rs, and whether there is one.
func (rs MeshRoutes) Route(destination uint64) (MeshRoute, bool) {
	for _, r := range rs.Routes {
		if r.Destination == destination {
			return r, true
		}
	}
	return MeshRoute{}, false
}

// Mesh is a node (net_mesh_t). Safe for concurrent use, Close included;
// Close wakes every blocked call.
type Mesh struct {
	h handle // *C.net_mesh_t
}

func freeMesh(p unsafe.Pointer) error {
	return freeStatus("net_mesh_free", func() C.net_status_t { return C.net_mesh_free((*C.net_mesh_t)(p)) })
}

// NewMesh creates a node and binds its socket; it accepts handshakes at once.
func NewMesh(cfg MeshConfig) (*Mesh, error) {
	js, err := cfg.MarshalJSON()
	if err != nil {
		return nil, invalidArgument("net_mesh_new", err.Error())
	}
	var out *C.net_mesh_t
	err = check("net_mesh_new", func() C.net_status_t {
		return C.net_mesh_new(bytesPtr(js), C.size_t(len(js)), &out)
	})
	runtime.KeepAlive(js)
	if err != nil {
		return nil, err
	}
	m := &Mesh{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(m, func(m *Mesh) { m.h.leaked("netmesh.Mesh", freeMesh) })
	return m, nil
}

func (m *Mesh) ptr(op string) (*C.net_mesh_t, error) {
	if m == nil {
		return nil, invalidArgument(op, "mesh is nil")
	}
	p := (*C.net_mesh_t)(m.h.load())
	if p == nil {
		return nil, shuttingDown(op, "mesh has been closed")
	}
	return p, nil
}

func (m *Mesh) do(op string, f func(p *C.net_mesh_t) C.net_status_t) (Status, error) {
	p, err := m.ptr(op)
	if err != nil {
		return 0, err
	}
	st, err := call(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(m)
	return st, err
}

// blocking runs one blocking net_mesh_* call under ctx.
func (m *Mesh) blocking(ctx context.Context, op string, f func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t) (Status, error) {
	p, err := m.ptr(op)
	if err != nil {
		return 0, err
	}
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return f(p, cancel, errOut)
	})
	runtime.KeepAlive(m)
	return st, err
}

func (m *Mesh) bytesOf(op string, f func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t) ([]byte, error) {
	var out C.net_bytes_t
	if _, err := m.do(op, func(p *C.net_mesh_t) C.net_status_t { return f(p, &out) }); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// NodeID is this node's node_id.
func (m *Mesh) NodeID() (uint64, error) {
	var id C.uint64_t
	_, err := m.do("net_mesh_node_id", func(p *C.net_mesh_t) C.net_status_t { return C.net_mesh_node_id(p, &id) })
	return uint64(id), err
}

// PublicKey is the static X25519 public key initiators pass to Connect.
func (m *Mesh) PublicKey() ([]byte, error) {
	return m.bytesOf("net_mesh_public_key", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_public_key(p, out)
	})
}

// EntityID is this node's ed25519 entity id.
func (m *Mesh) EntityID() ([]byte, error) {
	return m.bytesOf("net_mesh_entity_id", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_entity_id(p, out)
	})
}

// LocalAddr is the bound "IP:port".
func (m *Mesh) LocalAddr() (string, error) {
	b, err := m.bytesOf("net_mesh_local_addr", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_local_addr(p, out)
	})
	return string(b), err
}

// Start starts heartbeats and failure detection (idempotent).
func (m *Mesh) Start() error {
	_, err := m.do("net_mesh_start", func(p *C.net_mesh_t) C.net_status_t { return C.net_mesh_start(p) })
	return err
}

// Connect handshakes with nodeID at addr (its static X25519 publicKey), then
// waits for the identity exchange; it blocks up to the handshake timeout ×
// retries. ctx bounds the wait (an *Error matching ErrCancelled and
// ctx.Err()); Close wakes it (ErrShuttingDown).
func (m *Mesh) Connect(ctx context.Context, addr string, publicKey []byte, nodeID uint64) error {
	_, err := m.blocking(ctx, "net_mesh_connect", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_connect(p, stringPtr(addr), C.size_t(len(addr)), bytesPtr(publicKey), C.size_t(len(publicKey)),
			C.uint64_t(nodeID), cancel, errOut)
	})
	runtime.KeepAlive(publicKey)
	return err
}

// ConnectVia handshakes with nodeID (static key publicKey, 32 bytes)
// through relay, one of this node's direct peers (net_mesh_connect_via).
// The session is relayed: its packets travel routed towards the best route
// (the relay, or another path if it fails); the peer needs no Accept.
// Errors: ErrMeshNoRoute when relay is not a direct peer; as Connect
// otherwise (ctx bounds the handshake, Close wakes it).
func (m *Mesh) ConnectVia(ctx context.Context, relay uint64, publicKey []byte, nodeID uint64) error {
	_, err := m.blocking(ctx, "net_mesh_connect_via", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_connect_via(p, C.uint64_t(relay), bytesPtr(publicKey), C.size_t(len(publicKey)),
			C.uint64_t(nodeID), cancel, errOut)
	})
	runtime.KeepAlive(publicKey)
	return err
}

// ConnectRouted is ConnectVia through the next hop of the best route to
// nodeID that this node learned from pingwaves (see Routes; the nodes on the
// path must have called Start). ErrMeshNoRoute when no route is known.
func (m *Mesh) ConnectRouted(ctx context.Context, publicKey []byte, nodeID uint64) error {
	_, err := m.blocking(ctx, "net_mesh_connect_routed", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_connect_routed(p, bytesPtr(publicKey), C.size_t(len(publicKey)), C.uint64_t(nodeID), cancel, errOut)
	})
	runtime.KeepAlive(publicKey)
	return err
}

// Accept waits for nodeID to handshake in the direct form and returns its
// address. ctx bounds the wait (an *Error matching ErrCancelled and
// ctx.Err()); Close or Shutdown wakes it (ErrShuttingDown).
func (m *Mesh) Accept(ctx context.Context, nodeID uint64) (string, error) {
	var out C.net_bytes_t
	st, err := m.blocking(ctx, "net_mesh_accept", func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_accept(p, C.uint64_t(nodeID), C.uint32_t(waitForever), &out, cancel, errOut)
	})
	if err != nil {
		return "", err
	}
	if st != StatusOK {
		return "", unexpected("net_mesh_accept", st)
	}
	return string(takeBytes(&out)), nil
}

// OpenStream opens streamID to peer. window: nil for the node's default,
// 0 for unlimited.
func (m *Mesh) OpenStream(peer, streamID uint64, reliable bool, window *uint64) (*MeshStream, error) {
	return m.openStream(peer, streamID, reliable, window, false)
}

// OpenCausalStream opens a stream as OpenStream does, as a causal stream:
// its packets carry subprotocol 0x0400, so each event is read as causal
// frames (CausalFrame). A Net receiver checks the frames of every chain it
// follows (FollowChain) as they arrive, in stream order on a reliable
// stream, and proves the chain against this node every ProofInterval; this
// node checks the frames it sends for the chains it follows. The receiving
// application gets the events as on any stream.
func (m *Mesh) OpenCausalStream(peer, streamID uint64, reliable bool, window *uint64) (*MeshStream, error) {
	return m.openStream(peer, streamID, reliable, window, true)
}

func (m *Mesh) openStream(peer, streamID uint64, reliable bool, window *uint64, causal bool) (*MeshStream, error) {
	w := ^uint64(0)
	if window != nil {
		w = *window
	}
	op := "net_mesh_open_stream"
	if causal {
		op = "net_mesh_open_causal_stream"
	}
	var out *C.net_mesh_stream_t
	_, err := m.do(op, func(p *C.net_mesh_t) C.net_status_t {
		if causal {
			return C.net_mesh_open_causal_stream(p, C.uint64_t(peer), C.uint64_t(streamID), C.bool(reliable), C.uint64_t(w), &out)
		}
		return C.net_mesh_open_stream(p, C.uint64_t(peer), C.uint64_t(streamID), C.bool(reliable), C.uint64_t(w), &out)
	})
	if err != nil {
		return nil, err
	}
	s := &MeshStream{h: newHandle(unsafe.Pointer(out)), mesh: m, Peer: peer, StreamID: streamID}
	runtime.SetFinalizer(s, func(s *MeshStream) { s.h.leaked("netmesh.MeshStream", freeMeshStream) })
	return s, nil
}

// Recv waits for up to max events from any peer (at least one; max < 1 is
// 1). It returns io.EOF once the node is shut down, also when it is closed
// while Recv waits. ctx bounds the wait (an *Error matching ErrCancelled and
// ctx.Err(); nothing is taken); a Recv called after Close fails with
// ErrShuttingDown.
func (m *Mesh) Recv(ctx context.Context, max int) ([]MeshEvent, error) {
	const op = "net_mesh_recv_batch"
	if max < 1 {
		max = 1
	}
	var out C.net_bytes_t
	var count C.size_t
	st, err := m.blocking(ctx, op, func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_recv_batch(p, C.size_t(max), C.uint32_t(waitForever), &out, &count, cancel, errOut)
	})
	switch {
	case err != nil:
		return nil, err
	case st == StatusOK:
		return decodeMeshRecords(takeBytes(&out), int(count))
	case st == StatusEnd:
		return nil, io.EOF
	}
	return nil, unexpected(op, st)
}

// RecvNext waits for one event (net_mesh_recv_next); outcomes as Recv.
func (m *Mesh) RecvNext(ctx context.Context) (MeshEvent, error) {
	const op = "net_mesh_recv_next"
	var peer, sid, dropped C.uint64_t
	var data, channel C.net_bytes_t
	st, err := m.blocking(ctx, op, func(p *C.net_mesh_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_recv_next(p, C.uint32_t(waitForever), &peer, &sid, &data, &dropped, &channel, cancel, errOut)
	})
	switch {
	case err != nil:
		return MeshEvent{}, err
	case st == StatusOK:
		return MeshEvent{Peer: uint64(peer), StreamID: uint64(sid), Data: takeBytes(&data), DroppedBefore: uint64(dropped),
			Channel: string(takeBytes(&channel))}, nil
	case st == StatusEnd:
		return MeshEvent{}, io.EOF
	}
	return MeshEvent{}, unexpected(op, st)
}

// unexpected is the error of a status a call is documented never to return.
func unexpected(op string, st Status) error {
	return &Error{Op: op, Status: StatusInternal, Message: "unexpected status " + st.String()}
}

// recordHeader is the size of net_mesh_recv_batch's record header:
// peer, stream_id, dropped_before (u64 LE each), the event's length (u32
// LE) and the channel name's length (u16 LE); the name, then the event follow.
const recordHeader = 30

func decodeMeshRecords(b []byte, count int) ([]MeshEvent, error) {
	events := make([]MeshEvent, 0, count)
	for i := 0; i < count; i++ {
		if len(b) < recordHeader {
			return nil, &Error{Op: "net_mesh_recv_batch", Status: StatusInternal, Message: "truncated record"}
		}
		n := int(binary.LittleEndian.Uint32(b[24:28]))
		c := int(binary.LittleEndian.Uint16(b[28:recordHeader]))
		if len(b) < recordHeader+c+n {
			return nil, &Error{Op: "net_mesh_recv_batch", Status: StatusInternal, Message: "truncated record"}
		}
		at := recordHeader + c
		events = append(events, MeshEvent{
			Peer:          binary.LittleEndian.Uint64(b[0:8]),
			StreamID:      binary.LittleEndian.Uint64(b[8:16]),
			DroppedBefore: binary.LittleEndian.Uint64(b[16:24]),
			Channel:       string(b[recordHeader:at]),
			Data:          b[at : at+n : at+n],
		})
		b = b[at+n:]
	}
	return events, nil
}

// Peers lists the connected peers.
func (m *Mesh) Peers() ([]MeshPeer, error) {
	b, err := m.bytesOf("net_mesh_peers", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_peers(p, out)
	})
	if err != nil {
		return nil, err
	}
	var peers []MeshPeer
	if err := json.Unmarshal(b, &peers); err != nil {
		return nil, &Error{Op: "net_mesh_peers", Status: StatusInternal, Message: err.Error()}
	}
	return peers, nil
}

// Routes returns the node's routing table and its routing counters.
func (m *Mesh) Routes() (MeshRoutes, error) {
	var routes MeshRoutes
	b, err := m.bytesOf("net_mesh_routes", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_routes(p, out)
	})
	if err != nil {
		return routes, err
	}
	if err := json.Unmarshal(b, &routes); err != nil {
		return MeshRoutes{}, &Error{Op: "net_mesh_routes", Status: StatusInternal, Message: err.Error()}
	}
	return routes, nil
}

// Stats returns the node's counters.
func (m *Mesh) Stats() (map[string]uint64, error) {
	b, err := m.bytesOf("net_mesh_stats", func(p *C.net_mesh_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_mesh_stats(p, out)
	})
	if err != nil {
		return nil, err
	}
	stats := map[string]uint64{}
	if err := json.Unmarshal(b, &stats); err != nil {
		return nil, &Error{Op: "net_mesh_stats", Status: StatusInternal, Message: err.Error()}
	}
	return stats, nil
}

// Shutdown stops the node without freeing it (net_mesh_close): blocked calls
// return (Recv with io.EOF), later ones fail with ErrShuttingDown.
func (m *Mesh) Shutdown() error {
	_, err := m.do("net_mesh_close", func(p *C.net_mesh_t) C.net_status_t { return C.net_mesh_close(p) })
	return err
}

// Close shuts the node down and frees it (net_mesh_free); blocked calls on
// it and its streams return first. It returns the free's outcome: nil, or an
// error matching ErrBusy when calls were still running at libnet's 5 s
// deadline. Idempotent and safe to call concurrently; every call returns the
// one free's outcome.
func (m *Mesh) Close() error {
	if m == nil {
		return nil
	}
	runtime.SetFinalizer(m, nil)
	return m.h.close(freeMesh)
}

// MeshStream is one stream to one peer (net_mesh_stream_t). Close closes
// the stream; a SendBlocking waiting on it returns ErrMeshStreamClosed.
type MeshStream struct {
	h        handle // *C.net_mesh_stream_t
	mesh     *Mesh
	Peer     uint64
	StreamID uint64
}

func freeMeshStream(p unsafe.Pointer) error {
	return freeStatus("net_mesh_stream_free", func() C.net_status_t {
		return C.net_mesh_stream_free((*C.net_mesh_stream_t)(p))
	})
}

func (s *MeshStream) ptr(op string) (*C.net_mesh_stream_t, error) {
	if s == nil {
		return nil, invalidArgument(op, "stream is nil")
	}
	p := (*C.net_mesh_stream_t)(s.h.load())
	if p == nil {
		return nil, shuttingDown(op, "stream has been closed")
	}
	return p, nil
}

// eventSlices is the C view of events, pinned (see tagSlices).
func eventSlices(events [][]byte, pinner *runtime.Pinner) []C.net_slice_t {
	out := make([]C.net_slice_t, len(events))
	for i, e := range events {
		if len(e) == 0 {
			continue
		}
		d := unsafe.SliceData(e)
		pinner.Pin(d)
		out[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(d)), len: C.size_t(len(e))}
	}
	return out
}

// Send sends the events now, or none (ErrMeshBackpressure when the window
// cannot take them all).
func (s *MeshStream) Send(events ...[]byte) error {
	const op = "net_mesh_stream_send"
	p, err := s.ptr(op)
	if err != nil {
		return err
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := eventSlices(events, &pinner)
	err = check(op, func() C.net_status_t {
		return C.net_mesh_stream_send(p, unsafe.SliceData(slices), C.size_t(len(slices)))
	})
	runtime.KeepAlive(s)
	return err
}

// SendBlocking sends the events, waiting for credit packet by packet. When
// ctx ends first it returns an *Error matching ErrCancelled and ctx.Err()
// (the packets before the one it waited for were sent). Closing the stream
// wakes it with ErrMeshStreamClosed; closing the node, with ErrShuttingDown.
func (s *MeshStream) SendBlocking(ctx context.Context, events ...[]byte) error {
	const op = "net_mesh_stream_send_blocking"
	p, err := s.ptr(op)
	if err != nil {
		return err
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := eventSlices(events, &pinner)
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_mesh_stream_send_blocking(p, unsafe.SliceData(slices), C.size_t(len(slices)),
			C.uint32_t(waitForever), cancel, errOut)
	})
	runtime.KeepAlive(s)
	if err == nil && st != StatusOK {
		err = unexpected(op, st)
	}
	return err
}

// Info returns the stream's peer and id as libnet records them.
func (s *MeshStream) Info() (peer, streamID uint64, err error) {
	const op = "net_mesh_stream_info"
	p, err := s.ptr(op)
	if err != nil {
		return 0, 0, err
	}
	var cp, cs C.uint64_t
	err = check(op, func() C.net_status_t { return C.net_mesh_stream_info(p, &cp, &cs) })
	runtime.KeepAlive(s)
	return uint64(cp), uint64(cs), err
}

// Close closes the stream and frees the handle (net_mesh_stream_free); a
// SendBlocking waiting on it returns ErrMeshStreamClosed first. It returns
// the free's outcome (an error matching ErrBusy when calls were still running
// at libnet's 5 s deadline). Idempotent and safe to call concurrently.
func (s *MeshStream) Close() error {
	if s == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	return s.h.close(freeMeshStream)
}
