//! The Noise NKpsk0 handshake as pure state machines (WIRE.md §3): bytes in,
//! bytes and session keys out; no sockets, no clocks.
//!
//! Two forms. **Direct**: a bare handshake packet; the responder must know
//! the initiator's node_id beforehand (it is in the prologue). **Routed**:
//! the packet behind an 18-byte routing header whose `src_id` and the msg1
//! payload (the initiator's full node_id) tell the responder who is calling.

use std::sync::{Arc, LazyLock};

use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver, RingResolver};

use super::crypto::{Role, SessionKeys};
use super::noise_dh::{StaticKey, X25519Resolver};
use crate::identity::routing_id;
use crate::wire::{
    HEADER_SIZE, NetHeader, ROUTED_HANDSHAKE_TTL, ROUTING_HEADER_SIZE, RoutingHeader, WireError,
    flags,
};

/// The Noise protocol name, hashed into the handshake state.
pub const NOISE_PARAMS: &str = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s";
/// The prologue's label.
pub const PROLOGUE_LABEL: &[u8; 16] = b"net-handshake-v1";
/// Length of msg1 and msg2 with an empty payload (e ‖ tag).
pub const EMPTY_MESSAGE_LEN: usize = 48;
/// Largest Noise message we accept (msg1 of the routed form is 56 bytes;
/// the spec allows longer payloads, never beyond this).
pub const MAX_NOISE_MESSAGE: usize = 1024;

/// Why a handshake step failed. Every variant is a silent drop on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The datagram is not a well-formed handshake packet.
    #[error("malformed handshake packet: {0}")]
    Malformed(#[from] WireError),
    /// The packet lacks the HANDSHAKE flag.
    #[error("not a handshake packet")]
    NotHandshake,
    /// The Noise message is empty or longer than we accept.
    #[error("Noise message of {0} bytes")]
    BadLength(usize),
    /// Noise rejected the message: wrong PSK, wrong responder key, wrong
    /// prologue (node ids), or corruption.
    #[error("Noise rejected the message")]
    Decrypt,
    /// The routed msg1 payload does not name the caller its routing header
    /// claims (or is shorter than 8 bytes).
    #[error("routed msg1 payload does not match src_id {src_id:#010x}")]
    IdentityMismatch {
        /// The routing header's claim.
        src_id: u32,
    },
    /// The routed msg2 comes from another responder than the one we called.
    #[error("msg2 from {got:#010x}, expected {expected:#010x}")]
    WrongResponder {
        /// low32 of the node we called.
        expected: u32,
        /// The routing header's `src_id`.
        got: u32,
    },
    /// A key or parameter Noise refused (a bug or a bad configuration).
    #[error("Noise setup failed: {0}")]
    Setup(String),
}

/// Direct or routed (WIRE.md §3.4, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeForm {
    /// Bare handshake packets; the responder knows the caller in advance.
    Direct,
    /// Behind a routing header; the caller names itself.
    Routed,
}

/// The 32-byte prologue: label ‖ rid(initiator) ‖ rid(responder), where
/// `rid` is the low 32 bits of the node_id zero-extended to u64.
pub fn prologue(initiator_node_id: u64, responder_node_id: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(PROLOGUE_LABEL);
    out[16..24].copy_from_slice(&u64::from(routing_id(initiator_node_id)).to_le_bytes());
    out[24..32].copy_from_slice(&u64::from(routing_id(responder_node_id)).to_le_bytes());
    out
}

/// The parsed protocol name, parsed once.
static PARAMS: LazyLock<NoiseParams> = LazyLock::new(|| {
    NOISE_PARAMS
        .parse()
        .expect("the NKpsk0 protocol name parses")
});

fn params() -> NoiseParams {
    PARAMS.clone()
}

/// Our X25519 ([`super::noise_dh`]) with snow's ring and default
/// primitives for the rest; `ours` is the responder's static key.
fn resolver(ours: Option<Arc<StaticKey>>) -> Box<dyn CryptoResolver + Send> {
    Box::new(FallbackResolver::new(
        Box::new(X25519Resolver { ours }),
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        )),
    ))
}

fn setup(e: snow::Error) -> HandshakeError {
    HandshakeError::Setup(e.to_string())
}

/// A handshake packet: the zero NetHeader with the HANDSHAKE flag and
/// `payload_len`, then the Noise message.
pub fn handshake_packet(noise: &[u8]) -> Vec<u8> {
    let header = NetHeader {
        flags: flags::HANDSHAKE,
        payload_len: noise.len() as u16,
        ..NetHeader::default()
    };
    let mut out = Vec::with_capacity(HEADER_SIZE + noise.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(noise);
    out
}

/// Prefixes `packet` with a routing header for the handshake (ttl 16).
pub fn routed(src_node_id: u64, dest_node_id: u64, packet: &[u8]) -> Vec<u8> {
    let rt = RoutingHeader {
        ttl: ROUTED_HANDSHAKE_TTL,
        hop_count: 0,
        flags: 0,
        src_id: routing_id(src_node_id),
        dest_id: dest_node_id,
    };
    let mut out = Vec::with_capacity(ROUTING_HEADER_SIZE + packet.len());
    out.extend_from_slice(&rt.encode());
    out.extend_from_slice(packet);
    out
}

/// The Noise message of a handshake packet (routing header already
/// stripped). payload_len is not checked, as in the reference.
pub fn noise_message(packet: &[u8]) -> Result<&[u8], HandshakeError> {
    let header = NetHeader::decode(packet)?;
    if !header.is_handshake() {
        return Err(HandshakeError::NotHandshake);
    }
    let noise = &packet[HEADER_SIZE..];
    if noise.is_empty() || noise.len() > MAX_NOISE_MESSAGE {
        return Err(HandshakeError::BadLength(noise.len()));
    }
    Ok(noise)
}

/// The initiator's side: build msg1, then finish with msg2.
pub struct Initiator {
    state: snow::HandshakeState,
    form: HandshakeForm,
    our_node_id: u64,
    peer_node_id: u64,
    msg1: Vec<u8>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("form", &self.form)
            .field("peer_node_id", &self.peer_node_id)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake with the responder `peer_node_id` whose static
    /// X25519 key is `peer_static`, with a fresh random ephemeral key.
    ///
    /// # Errors
    /// [`HandshakeError::Setup`] when Noise refuses a key.
    pub fn new(
        form: HandshakeForm,
        psk: &[u8; 32],
        our_node_id: u64,
        peer_node_id: u64,
        peer_static: &[u8; 32],
    ) -> Result<Self, HandshakeError> {
        Self::start(form, psk, our_node_id, peer_node_id, peer_static, None)
    }

    /// As [`new`](Self::new) with a fixed ephemeral key: reproduces the
    /// test vectors. `test-util` builds only: a fixed ephemeral key
    /// destroys the handshake's forward secrecy.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    #[cfg(feature = "test-util")]
    pub fn with_fixed_ephemeral(
        form: HandshakeForm,
        psk: &[u8; 32],
        our_node_id: u64,
        peer_node_id: u64,
        peer_static: &[u8; 32],
        ephemeral: &[u8; 32],
    ) -> Result<Self, HandshakeError> {
        Self::start(
            form,
            psk,
            our_node_id,
            peer_node_id,
            peer_static,
            Some(ephemeral),
        )
    }

    fn start(
        form: HandshakeForm,
        psk: &[u8; 32],
        our_node_id: u64,
        peer_node_id: u64,
        peer_static: &[u8; 32],
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<Self, HandshakeError> {
        let prologue = prologue(our_node_id, peer_node_id);
        let mut builder = snow::Builder::with_resolver(params(), resolver(None))
            .remote_public_key(peer_static)
            .map_err(setup)?
            .psk(0, psk)
            .map_err(setup)?
            .prologue(&prologue)
            .map_err(setup)?;
        if let Some(e) = fixed_ephemeral {
            builder = builder.fixed_ephemeral_key_for_testing_only(e);
        }
        let mut state = builder.build_initiator().map_err(setup)?;
        let payload = match form {
            HandshakeForm::Direct => Vec::new(),
            HandshakeForm::Routed => our_node_id.to_le_bytes().to_vec(),
        };
        let mut noise = [0u8; MAX_NOISE_MESSAGE];
        let len = state.write_message(&payload, &mut noise).map_err(setup)?;
        let packet = handshake_packet(&noise[..len]);
        let msg1 = match form {
            HandshakeForm::Direct => packet,
            HandshakeForm::Routed => routed(our_node_id, peer_node_id, &packet),
        };
        Ok(Self {
            state,
            form,
            our_node_id,
            peer_node_id,
            msg1,
        })
    }

    /// The datagram to send (routing header included for the routed form).
    pub fn msg1(&self) -> &[u8] {
        &self.msg1
    }

    /// The form.
    pub fn form(&self) -> HandshakeForm {
        self.form
    }

    /// The node we are calling.
    pub fn peer_node_id(&self) -> u64 {
        self.peer_node_id
    }

    /// Our node id.
    pub fn our_node_id(&self) -> u64 {
        self.our_node_id
    }

    /// Finishes with the datagram that answered (routing header included
    /// for the routed form). On error the state is consumed; retry with a
    /// fresh `Initiator` (fresh ephemeral), as the reference does.
    pub fn finish(mut self, datagram: &[u8]) -> Result<SessionKeys, HandshakeError> {
        let packet = match self.form {
            HandshakeForm::Direct => datagram,
            HandshakeForm::Routed => {
                let rt = RoutingHeader::decode(datagram)?;
                let expected = routing_id(self.peer_node_id);
                if rt.src_id != expected {
                    return Err(HandshakeError::WrongResponder {
                        expected,
                        got: rt.src_id,
                    });
                }
                &datagram[ROUTING_HEADER_SIZE..]
            }
        };
        let noise = noise_message(packet)?;
        let mut payload = [0u8; MAX_NOISE_MESSAGE];
        self.state
            .read_message(noise, &mut payload)
            .map_err(|_| HandshakeError::Decrypt)?;
        Ok(SessionKeys::derive(
            &handshake_hash(&self.state),
            Role::Initiator,
        ))
    }
}

fn handshake_hash(state: &snow::HandshakeState) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(state.get_handshake_hash());
    h
}

/// The responder's static identity and the mesh PSK.
pub struct Responder {
    static_key: Arc<StaticKey>,
    psk: [u8; 32],
    our_node_id: u64,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("our_node_id", &self.our_node_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.psk.zeroize();
    }
}

/// A handshake the responder completed.
#[derive(Debug)]
pub struct Accepted {
    /// The initiator's node_id.
    pub peer_node_id: u64,
    /// The session.
    pub keys: SessionKeys,
    /// The datagram to send back (routing header included when routed).
    pub msg2: Vec<u8>,
}

impl Responder {
    /// A responder with our static X25519 secret.
    pub fn new(static_secret: [u8; 32], psk: [u8; 32], our_node_id: u64) -> Self {
        Self {
            static_key: Arc::new(StaticKey::new(static_secret)),
            psk,
            our_node_id,
        }
    }

    /// Answers a direct msg1 (a bare handshake packet) from the caller
    /// `peer_node_id`, known in advance.
    ///
    /// # Errors
    /// [`HandshakeError::Malformed`], [`HandshakeError::NotHandshake`],
    /// [`HandshakeError::BadLength`], [`HandshakeError::Decrypt`].
    pub fn accept_direct(
        &self,
        packet: &[u8],
        peer_node_id: u64,
    ) -> Result<Accepted, HandshakeError> {
        self.answer_direct(packet, peer_node_id, None)
    }

    /// As [`accept_direct`](Self::accept_direct) with a fixed ephemeral
    /// key (test vectors; `test-util` builds only).
    ///
    /// # Errors
    /// As [`accept_direct`](Self::accept_direct).
    #[cfg(feature = "test-util")]
    pub fn accept_direct_with_fixed_ephemeral(
        &self,
        packet: &[u8],
        peer_node_id: u64,
        ephemeral: &[u8; 32],
    ) -> Result<Accepted, HandshakeError> {
        self.answer_direct(packet, peer_node_id, Some(ephemeral))
    }

    fn answer_direct(
        &self,
        packet: &[u8],
        peer_node_id: u64,
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<Accepted, HandshakeError> {
        let noise = noise_message(packet)?;
        let (_payload, keys, msg2_noise) = self.respond(noise, peer_node_id, fixed_ephemeral)?;
        Ok(Accepted {
            peer_node_id,
            keys,
            msg2: handshake_packet(&msg2_noise),
        })
    }

    /// Answers a routed msg1 (routing header included, `dest_id` already
    /// checked by the caller to be us).
    ///
    /// # Errors
    /// As [`accept_direct`](Self::accept_direct), and
    /// [`HandshakeError::IdentityMismatch`].
    pub fn accept_routed(&self, datagram: &[u8]) -> Result<Accepted, HandshakeError> {
        self.answer_routed(datagram, None)
    }

    /// As [`accept_routed`](Self::accept_routed) with a fixed ephemeral
    /// key (test vectors; `test-util` builds only).
    ///
    /// # Errors
    /// As [`accept_routed`](Self::accept_routed).
    #[cfg(feature = "test-util")]
    pub fn accept_routed_with_fixed_ephemeral(
        &self,
        datagram: &[u8],
        ephemeral: &[u8; 32],
    ) -> Result<Accepted, HandshakeError> {
        self.answer_routed(datagram, Some(ephemeral))
    }

    fn answer_routed(
        &self,
        datagram: &[u8],
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<Accepted, HandshakeError> {
        let rt = RoutingHeader::decode(datagram)?;
        let noise = noise_message(&datagram[ROUTING_HEADER_SIZE..])?;
        // The prologue only uses rid(initiator) = src_id.
        let (payload, keys, msg2_noise) =
            self.respond(noise, u64::from(rt.src_id), fixed_ephemeral)?;
        let claimed = payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .filter(|id| routing_id(*id) == rt.src_id)
            .ok_or(HandshakeError::IdentityMismatch { src_id: rt.src_id })?;
        let msg2 = routed(self.our_node_id, claimed, &handshake_packet(&msg2_noise));
        Ok(Accepted {
            peer_node_id: claimed,
            keys,
            msg2,
        })
    }

    fn respond(
        &self,
        msg1: &[u8],
        peer_node_id: u64,
        fixed_ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Vec<u8>, SessionKeys, Vec<u8>), HandshakeError> {
        let prologue = prologue(peer_node_id, self.our_node_id);
        let resolver = resolver(Some(self.static_key.clone()));
        let mut builder = snow::Builder::with_resolver(params(), resolver)
            .local_private_key(&self.static_key.secret()[..])
            .map_err(setup)?
            .psk(0, &self.psk)
            .map_err(setup)?
            .prologue(&prologue)
            .map_err(setup)?;
        if let Some(e) = fixed_ephemeral {
            builder = builder.fixed_ephemeral_key_for_testing_only(e);
        }
        let mut state = builder.build_responder().map_err(setup)?;
        let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
        let n = state
            .read_message(msg1, &mut payload)
            .map_err(|_| HandshakeError::Decrypt)?;
        payload.truncate(n);
        let mut msg2 = [0u8; MAX_NOISE_MESSAGE];
        // `ee` fails only on the caller's ephemeral key (a low-order point,
        // which our X25519 refuses): the caller's fault, so a silent drop.
        let len = state
            .write_message(&[], &mut msg2)
            .map_err(|_| HandshakeError::Decrypt)?;
        let keys = SessionKeys::derive(&handshake_hash(&state), Role::Responder);
        Ok((payload, keys, msg2[..len].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSK: [u8; 32] = [0x5a; 32];
    const SECRET: [u8; 32] = [9; 32];

    fn responder() -> Responder {
        Responder::new(SECRET, PSK, 0xAAAA_0000_0000_0002)
    }

    /// A plain snow initiator (snow's own resolvers) against our responder
    /// (our X25519, cached static key): both ends agree on the
    /// handshake hash, handshake after handshake.
    #[test]
    fn responder_interoperates_with_plain_snow() {
        let r = responder();
        let public = crate::identity::x25519_public_key(&SECRET);
        let mut hashes = Vec::new();
        for i in 0..3u64 {
            let ours = 0x1234_0000_0000_0000 + i;
            let mut init = snow::Builder::new(params())
                .remote_public_key(&public)
                .unwrap()
                .psk(0, &PSK)
                .unwrap()
                .prologue(&prologue(ours, r.our_node_id))
                .unwrap()
                .build_initiator()
                .unwrap();
            let mut noise = [0u8; 128];
            let len = init.write_message(&ours.to_le_bytes(), &mut noise).unwrap();
            let msg1 = routed(ours, r.our_node_id, &handshake_packet(&noise[..len]));
            let accepted = r.accept_routed(&msg1).unwrap();
            assert_eq!(accepted.peer_node_id, ours);
            let msg2 = &accepted.msg2[ROUTING_HEADER_SIZE + HEADER_SIZE..];
            let mut payload = [0u8; 128];
            init.read_message(msg2, &mut payload).unwrap();
            assert_eq!(init.get_handshake_hash(), &accepted.keys.handshake_hash[..]);
            hashes.push(accepted.keys.handshake_hash);
        }
        hashes.dedup();
        assert_eq!(hashes.len(), 3, "every handshake has a fresh ephemeral key");
    }
}
