package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Identity is an entity identity: an ed25519 keypair, or only a public key
// (read-only: it can verify but not sign, issue or seal).
//
// It owns a libnet handle (net_identity_t). Release it with Close; a
// finalizer frees one garbage collected unclosed (on another goroutine, with
// a warning logged), but do not rely on that for timely release of the
// secret key. An Identity is safe for concurrent use by multiple goroutines,
// Close included.
type Identity struct {
	h handle // *C.net_identity_t
}

func (id *Identity) load() *C.net_identity_t {
	return (*C.net_identity_t)(id.h.load())
}

func freeIdentity(p unsafe.Pointer) error {
	return freeStatus("net_identity_free", func() C.net_status_t {
		return C.net_identity_free((*C.net_identity_t)(p))
	})
}

func newIdentity(p *C.net_identity_t) *Identity {
	id := &Identity{h: newHandle(unsafe.Pointer(p))}
	runtime.SetFinalizer(id, func(id *Identity) { id.h.leaked("netmesh.Identity", freeIdentity) })
	return id
}

// GenerateIdentity creates an identity from 32 bytes of OS randomness.
func GenerateIdentity() (*Identity, error) {
	var p *C.net_identity_t
	if err := check("net_identity_generate", func() C.net_status_t {
		return C.net_identity_generate(&p)
	}); err != nil {
		return nil, err
	}
	return newIdentity(p), nil
}

// IdentityFromSeed creates the identity of a 32-byte ed25519 seed (RFC 8032
// derivation). A wrong length is ErrInvalidArgument.
func IdentityFromSeed(seed []byte) (*Identity, error) {
	var p *C.net_identity_t
	if err := check("net_identity_from_seed", func() C.net_status_t {
		return C.net_identity_from_seed(bytesPtr(seed), C.size_t(len(seed)), &p)
	}); err != nil {
		return nil, err
	}
	return newIdentity(p), nil
}

// IdentityFromPublicKey creates a read-only identity from a 32-byte ed25519
// public key. ErrInvalidArgument unless 32 bytes; ErrInvalidPublicKey if the
// bytes are not a curve point.
func IdentityFromPublicKey(publicKey []byte) (*Identity, error) {
	var p *C.net_identity_t
	if err := check("net_identity_from_public_key", func() C.net_status_t {
		return C.net_identity_from_public_key(bytesPtr(publicKey), C.size_t(len(publicKey)), &p)
	}); err != nil {
		return nil, err
	}
	return newIdentity(p), nil
}

// Clone returns a new, independent Identity for the same keypair
// (net_identity_clone); close each one separately. Use it to hand an
// identity to another owner without copying the seed through Go memory.
func (id *Identity) Clone() (*Identity, error) {
	const op = "net_identity_clone"
	p, err := id.handle(op)
	if err != nil {
		return nil, err
	}
	var out *C.net_identity_t
	err = check(op, func() C.net_status_t { return C.net_identity_clone(p, &out) })
	runtime.KeepAlive(id)
	if err != nil {
		return nil, err
	}
	return newIdentity(out), nil
}

// handle returns the live handle, or an ErrShuttingDown error naming op once
// Close has begun.
func (id *Identity) handle(op string) (*C.net_identity_t, error) {
	if id == nil {
		return nil, invalidArgument(op, "identity is nil")
	}
	p := id.load()
	if p == nil {
		if abiErr != nil {
			return nil, abiErr
		}
		return nil, &Error{Op: op, Status: StatusShuttingDown, Message: "identity has been closed"}
	}
	return p, nil
}

// Close frees the identity's handle (net_identity_free). It waits (up to
// 5 s, inside libnet) for calls already in flight on other goroutines; calls
// made after Close began fail with an error matching ErrShuttingDown.
//
// It returns the free's outcome: nil, or an error matching ErrBusy when
// calls were still running at libnet's deadline (the handle's resources are
// then leaked rather than freed under them). Close is idempotent and safe to
// call concurrently: every call waits for the one free and returns its
// outcome.
func (id *Identity) Close() error {
	if id == nil {
		return nil
	}
	runtime.SetFinalizer(id, nil)
	return id.h.close(freeIdentity)
}

// bytesOp runs a net_identity_* getter that fills a net_bytes_t.
func (id *Identity) bytesOp(op string, f func(*C.net_identity_t, *C.net_bytes_t) C.net_status_t) ([]byte, error) {
	p, err := id.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t { return f(p, &out) })
	runtime.KeepAlive(id)
	if err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// PublicKey is the 32-byte ed25519 public key.
func (id *Identity) PublicKey() ([]byte, error) {
	return id.bytesOp("net_identity_public_key", func(p *C.net_identity_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_identity_public_key(p, out)
	})
}

// EntityID is the 32-byte entity id (the same bytes as the public key).
func (id *Identity) EntityID() ([]byte, error) {
	return id.bytesOp("net_identity_entity_id", func(p *C.net_identity_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_identity_entity_id(p, out)
	})
}

// Seed is the 32-byte secret seed; ErrReadOnly for a public-key-only
// identity. The libnet copy is zeroed on release; clear the returned slice
// when done with it.
func (id *Identity) Seed() ([]byte, error) {
	return id.bytesOp("net_identity_seed", func(p *C.net_identity_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_identity_seed(p, out)
	})
}

// IsReadOnly reports whether the identity holds only a public key.
func (id *Identity) IsReadOnly() (bool, error) {
	const op = "net_identity_is_read_only"
	p, err := id.handle(op)
	if err != nil {
		return false, err
	}
	var out C.bool
	err = check(op, func() C.net_status_t { return C.net_identity_is_read_only(p, &out) })
	runtime.KeepAlive(id)
	return bool(out), err
}

// OriginHash is the 64-bit origin hash (application event origin).
func (id *Identity) OriginHash() (uint64, error) {
	const op = "net_identity_origin_hash"
	p, err := id.handle(op)
	if err != nil {
		return 0, err
	}
	var out C.uint64_t
	err = check(op, func() C.net_status_t { return C.net_identity_origin_hash(p, &out) })
	runtime.KeepAlive(id)
	return uint64(out), err
}

// NodeID is the 64-bit node id (mesh peer identity).
func (id *Identity) NodeID() (uint64, error) {
	const op = "net_identity_node_id"
	p, err := id.handle(op)
	if err != nil {
		return 0, err
	}
	var out C.uint64_t
	err = check(op, func() C.net_status_t { return C.net_identity_node_id(p, &out) })
	runtime.KeepAlive(id)
	return uint64(out), err
}

// Sign signs msg (deterministic ed25519) and returns the 64-byte signature.
// ErrReadOnly for a public-key-only identity.
func (id *Identity) Sign(msg []byte) ([]byte, error) {
	const op = "net_identity_sign"
	p, err := id.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t {
		return C.net_identity_sign(p, bytesPtr(msg), C.size_t(len(msg)), &out)
	})
	runtime.KeepAlive(id)
	if err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// Verify strictly verifies a 64-byte signature over msg with this identity's
// public key: nil when it verifies, else an error matching
// ErrInvalidSignature (or ErrInvalidArgument for a signature that is not 64
// bytes).
func (id *Identity) Verify(msg, sig []byte) error {
	const op = "net_identity_verify"
	p, err := id.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t {
		return C.net_identity_verify(p, bytesPtr(msg), C.size_t(len(msg)), bytesPtr(sig), C.size_t(len(sig)))
	})
	runtime.KeepAlive(id)
	return err
}
