package netmesh_test

import (
	"bytes"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func TestEnvelopeVectors(t *testing.T) {
	var v envelopeVectors
	loadVectors(t, "envelope.json", &v)
	secret := unhex(t, v.Inputs.TargetSecret)
	link := unhex(t, v.Inputs.ChainLink.Bytes)
	sourcePub := unhex(t, v.Inputs.SourcePub)

	pub, err := netmesh.X25519PublicKey(secret)
	if err != nil || !bytes.Equal(pub, unhex(t, v.Inputs.TargetPub)) {
		t.Fatalf("X25519PublicKey = %x (%v), want %s", pub, err, v.Inputs.TargetPub)
	}
	_, err = netmesh.X25519PublicKey(secret[:31])
	expectIs(t, err, netmesh.ErrInvalidArgument)

	for name, env := range map[string]string{
		"reference_sealed": v.ReferenceSealed.Envelope,
		"deterministic":    v.Deterministic.Envelope,
	} {
		t.Run(name, func(t *testing.T) {
			envelope := unhex(t, env)
			if len(envelope) != netmesh.EnvelopeSize {
				t.Fatalf("envelope is %d bytes", len(envelope))
			}
			for _, signer := range [][]byte{nil, sourcePub} {
				id, err := netmesh.OpenEnvelope(envelope, secret, link, signer)
				if err != nil {
					t.Fatalf("OpenEnvelope(signer %x): %v", signer, err)
				}
				seed, err := id.Seed()
				if err != nil || !bytes.Equal(seed, unhex(t, v.ReferenceSealed.OpenedSeed)) {
					t.Errorf("opened seed %x (%v)", seed, err)
				}
				if pk := mustPublicKey(t, id); !bytes.Equal(pk, sourcePub) {
					t.Errorf("opened public key %x", pk)
				}
				_ = id.Close()
			}

			other := mustPublicKey(t, mustSeed(t, seedB))
			_, err := netmesh.OpenEnvelope(envelope, secret, link, other)
			expectIs(t, err, netmesh.ErrEnvelopeInvalidSignerKey)
			_, err = netmesh.OpenEnvelope(envelope, secret, link, []byte{})
			expectIs(t, err, netmesh.ErrInvalidArgument)

			v0 := bytes.Clone(envelope)
			v0[0] = 0
			_, err = netmesh.OpenEnvelope(v0, secret, link, nil)
			expectIs(t, err, netmesh.ErrEnvelopeUnknownVersion)

			_, err = netmesh.OpenEnvelope(envelope, bytes.Repeat([]byte{0x09}, 32), link, nil)
			expectIs(t, err, netmesh.ErrEnvelopeSealOpenFailed)

			flipped := bytes.Clone(envelope)
			flipped[80] ^= 1
			_, err = netmesh.OpenEnvelope(flipped, secret, link, nil)
			expectIs(t, err, netmesh.ErrEnvelopeSealOpenFailed)

			seq6 := bytes.Clone(link)
			seq6[16] = 6 // the chain link's sequence (u64 LE at offset 16): 5 -> 6
			_, err = netmesh.OpenEnvelope(envelope, secret, seq6, nil)
			expectIs(t, err, netmesh.ErrEnvelopeInvalidAttestation)

			_, err = netmesh.OpenEnvelope(envelope[:208], secret, link, nil)
			expectIs(t, err, netmesh.ErrEnvelopeInvalidLength)
		})
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	source := mustSeed(t, seedA)
	recipientSecret := bytes.Repeat([]byte{0x5a}, netmesh.X25519KeyLen)
	recipientPub, err := netmesh.X25519PublicKey(recipientSecret)
	if err != nil {
		t.Fatal(err)
	}
	link := bytes.Repeat([]byte{0x11}, netmesh.ChainLinkLen)

	env, err := netmesh.SealEnvelope(source, recipientPub, link)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != netmesh.EnvelopeSize || env[0] != 1 {
		t.Fatalf("envelope: %d bytes, version %d", len(env), env[0])
	}
	again, err := netmesh.SealEnvelope(source, recipientPub, link)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(env, again) {
		t.Error("two seals are identical (ephemeral key not fresh?)")
	}

	opened, err := netmesh.OpenEnvelope(env, recipientSecret, link, mustPublicKey(t, source))
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	seed, err := opened.Seed()
	if err != nil || !bytes.Equal(seed, seedA) {
		t.Fatalf("round-trip seed %x (%v)", seed, err)
	}
	wantOH, _ := source.OriginHash()
	if oh, err := opened.OriginHash(); err != nil || oh != wantOH {
		t.Fatalf("round-trip origin hash %#x (%v), want %#x", oh, err, wantOH)
	}

	_, err = netmesh.SealEnvelope(source, recipientPub, link[:31])
	expectIs(t, err, netmesh.ErrInvalidArgument)

	ro, err := netmesh.IdentityFromPublicKey(mustPublicKey(t, source))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = netmesh.SealEnvelope(ro, recipientPub, link)
	expectIs(t, err, netmesh.ErrReadOnly)
}
