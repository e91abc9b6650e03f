package netmesh

/*
#include <net.h>
*/
import "C"

import "runtime"

// SealEnvelope seals source's seed to a recipient's X25519 public key
// (32 bytes), bound to a 32-byte chain link, with a fresh ephemeral key, and
// returns the 209-byte envelope (EnvelopeSize). ErrReadOnly when source has
// no secret key.
func SealEnvelope(source *Identity, targetPublicKey, chainLink []byte) ([]byte, error) {
	const op = "net_envelope_seal"
	p, err := source.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t {
		return C.net_envelope_seal(p, bytesPtr(targetPublicKey), C.size_t(len(targetPublicKey)),
			bytesPtr(chainLink), C.size_t(len(chainLink)), &out)
	})
	runtime.KeepAlive(source)
	if err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// OpenEnvelope opens an envelope with the recipient's X25519 secret key and
// the chain link it was sealed to, and returns the sealed identity (close
// it when done). When expectedSigner is non-nil (a 32-byte public key) the
// envelope must be from it; nil accepts any signer. A non-nil empty slice is
// not "any": it fails with ErrInvalidArgument.
//
// Errors: ErrEnvelopeUnknownVersion (checked first), ErrEnvelopeInvalidLength,
// ErrEnvelopeInvalidSignerKey, ErrEnvelopeInvalidAttestation,
// ErrEnvelopeSealOpenFailed.
func OpenEnvelope(envelope, targetSecretKey, chainLink, expectedSigner []byte) (*Identity, error) {
	var p *C.net_identity_t
	if err := check("net_envelope_open", func() C.net_status_t {
		return C.net_envelope_open(bytesPtr(envelope), C.size_t(len(envelope)),
			bytesPtr(targetSecretKey), C.size_t(len(targetSecretKey)),
			bytesPtr(chainLink), C.size_t(len(chainLink)),
			bytesPtr(expectedSigner), C.size_t(len(expectedSigner)), &p)
	}); err != nil {
		return nil, err
	}
	return newIdentity(p), nil
}

// X25519PublicKey is the X25519 public key of a 32-byte X25519 secret (what
// an envelope recipient publishes).
func X25519PublicKey(secretKey []byte) ([]byte, error) {
	var out C.net_bytes_t
	if err := check("net_x25519_public_key", func() C.net_status_t {
		return C.net_x25519_public_key(bytesPtr(secretKey), C.size_t(len(secretKey)), &out)
	}); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}
