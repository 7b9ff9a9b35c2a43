//! Proof of the peer secret in the peer handshake (`net::peer`): a mutual
//! challenge-response with HMAC-SHA256. Plain functions; the nonces come
//! from the caller (the shell draws them from the OS), so a test can drive
//! every step.
//!
//! Each side of a new link sends a fresh random nonce, and each proves that
//! it knows the secret with a tag over the whole transcript:
//!
//! ```text
//! proof(role) = HMAC-SHA256(key = peer secret,
//!                           "paxoskv peer proof" | role: u8 ('D' dialer, 'A' acceptor) | version: u16
//!                           | cluster_id: u16 len + bytes | dialer node: u32 | acceptor node: u32
//!                           | shard: u32 | dialer nonce: 32 bytes | acceptor nonce: 32 bytes)
//! ```
//!
//! (every field fixed-size or length-prefixed, so two transcripts never
//! encode alike). Why each part is there:
//!
//! - **Both nonces.** The acceptor's proof covers the dialer's fresh nonce,
//!   and the dialer's proof the acceptor's: a proof recorded on one
//!   connection is worthless on the next, because the other side picked a
//!   new nonce (replay).
//! - **The role.** Without it an attacker could answer an acceptor's
//!   challenge by reflecting the acceptor's own proof back to it.
//! - **Cluster id, both node ids, shard, version.** A proof for one link
//!   (node 1 to node 2, shard 0) proves nothing on another.
//! - **The acceptor proves first.** The dialer checks the acceptor's proof
//!   before it sends its own, so a process squatting on a peer's address
//!   never gets a dialer's tag for a transcript of its choosing.
//!
//! The secret never crosses the wire, and a tag is compared in constant
//! time (`hmac`'s `verify_slice`). What this does not give: the frames
//! after the handshake are neither encrypted nor authenticated (no TLS), so
//! someone who can rewrite traffic between two nodes can still take over an
//! established link; and an eavesdropper who records a handshake can test
//! guesses of the secret offline, so the secret must be long and random
//! (`paxoskv cluster` draws 32 random bytes).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::peer::{NONCE_BYTES, PROOF_BYTES};

type HmacSha256 = Hmac<Sha256>;

const LABEL: &[u8] = b"paxoskv peer proof";

/// The cluster's peer secret, as HMAC key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct PeerKey {
    secret: Vec<u8>,
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({} bytes)", self.secret.len())
    }
}

/// Which side of the link a proof speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

/// What both sides of one handshake know; both proofs cover all of it.
#[derive(Clone, Copy, Debug)]
pub struct Transcript<'a> {
    pub protocol_version: u16,
    pub cluster_id: &'a str,
    pub dialer: u32,
    pub acceptor: u32,
    pub shard: u32,
    pub dialer_nonce: &'a [u8; NONCE_BYTES],
    pub acceptor_nonce: &'a [u8; NONCE_BYTES],
}

impl PeerKey {
    /// An empty secret is a valid key (a local cluster with no secret
    /// configured): it proves only that both sides have none.
    pub fn new(secret: &[u8]) -> PeerKey {
        PeerKey { secret: secret.to_vec() }
    }

    fn mac(&self, role: Role, transcript: &Transcript) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(LABEL);
        mac.update(&[match role {
            Role::Dialer => b'D',
            Role::Acceptor => b'A',
        }]);
        mac.update(&transcript.protocol_version.to_le_bytes());
        let cluster_id = transcript.cluster_id.as_bytes();
        let cluster_id_len = u16::try_from(cluster_id.len()).expect("the config bounds the cluster id to 255 bytes");
        mac.update(&cluster_id_len.to_le_bytes());
        mac.update(cluster_id);
        mac.update(&transcript.dialer.to_le_bytes());
        mac.update(&transcript.acceptor.to_le_bytes());
        mac.update(&transcript.shard.to_le_bytes());
        mac.update(transcript.dialer_nonce);
        mac.update(transcript.acceptor_nonce);
        mac
    }

    /// The proof that `role` knows the secret, for this transcript.
    pub fn prove(&self, role: Role, transcript: &Transcript) -> [u8; PROOF_BYTES] {
        self.mac(role, transcript).finalize().into_bytes().into()
    }

    /// Whether `proof` is `role`'s proof for this transcript, compared in
    /// constant time.
    pub fn verify(&self, role: Role, transcript: &Transcript, proof: &[u8; PROOF_BYTES]) -> bool {
        self.mac(role, transcript).verify_slice(proof).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIALER_NONCE: [u8; NONCE_BYTES] = [1; NONCE_BYTES];
    const ACCEPTOR_NONCE: [u8; NONCE_BYTES] = [2; NONCE_BYTES];

    fn transcript() -> Transcript<'static> {
        Transcript {
            protocol_version: 3,
            cluster_id: "prod",
            dialer: 1,
            acceptor: 2,
            shard: 0,
            dialer_nonce: &DIALER_NONCE,
            acceptor_nonce: &ACCEPTOR_NONCE,
        }
    }

    #[test]
    fn the_right_secret_proves_both_roles() {
        let key = PeerKey::new(b"correct horse battery staple");
        let same = PeerKey::new(b"correct horse battery staple");
        for role in [Role::Dialer, Role::Acceptor] {
            let proof = key.prove(role, &transcript());
            assert!(same.verify(role, &transcript(), &proof), "{role:?}");
        }
        // No secret configured: an empty key still works, between nodes that both have none.
        let empty = PeerKey::new(b"");
        assert!(empty.verify(Role::Dialer, &transcript(), &empty.prove(Role::Dialer, &transcript())));
    }

    #[test]
    fn the_transcript_layout_is_pinned() {
        // HMAC-SHA256 over the layout in the module doc, computed
        // independently; changing the layout needs a new PROTOCOL_VERSION.
        let proof = PeerKey::new(b"secret").prove(Role::Dialer, &transcript());
        let hex: String = proof.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "de29a4f8a3bc5ff7d4109f7dc6cd92114a3d7d737d077387f0a2eb1be9d26c21");
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let key = PeerKey::new(b"correct horse battery staple");
        for other in [&b"correct horse battery stapler"[..], b"", b"Correct horse battery staple"] {
            let foreign = PeerKey::new(other);
            for role in [Role::Dialer, Role::Acceptor] {
                assert!(!key.verify(role, &transcript(), &foreign.prove(role, &transcript())), "{other:?} {role:?}");
            }
        }
    }

    #[test]
    fn a_replayed_proof_fails_against_a_fresh_nonce() {
        let key = PeerKey::new(b"secret");
        let recorded = key.prove(Role::Dialer, &transcript());
        // The acceptor of the next connection picks another nonce.
        let fresh = [3; NONCE_BYTES];
        let next = Transcript { acceptor_nonce: &fresh, ..transcript() };
        assert!(!key.verify(Role::Dialer, &next, &recorded));
        let recorded = key.prove(Role::Acceptor, &transcript());
        let next = Transcript { dialer_nonce: &fresh, ..transcript() };
        assert!(!key.verify(Role::Acceptor, &next, &recorded));
    }

    #[test]
    fn a_proof_is_bound_to_its_role_and_link() {
        let key = PeerKey::new(b"secret");
        let acceptor_proof = key.prove(Role::Acceptor, &transcript());
        assert!(!key.verify(Role::Dialer, &transcript(), &acceptor_proof), "reflection");
        let other_links = [
            Transcript { cluster_id: "prod2", ..transcript() },
            Transcript { dialer: 3, ..transcript() },
            Transcript { acceptor: 3, ..transcript() },
            Transcript { shard: 1, ..transcript() },
            Transcript { protocol_version: 4, ..transcript() },
            Transcript { dialer_nonce: &ACCEPTOR_NONCE, acceptor_nonce: &DIALER_NONCE, ..transcript() },
        ];
        for other in other_links {
            assert!(!key.verify(Role::Acceptor, &other, &acceptor_proof), "{other:?}");
        }
        let mut flipped = acceptor_proof;
        flipped[PROOF_BYTES - 1] ^= 1;
        assert!(!key.verify(Role::Acceptor, &transcript(), &flipped));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", PeerKey::new(b"hunter2")), "PeerKey(7 bytes)");
    }
}
