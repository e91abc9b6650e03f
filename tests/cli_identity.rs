//! `net identity` and `net token` end to end: the files hold the bytes the
//! library reads and writes.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use net::identity::{EntityKeypair, PermissionToken, TokenScope, channel_hash};

#[path = "cli_common/mod.rs"]
mod cli_common;
use cli_common::{json, net, temp_dir};

#[test]
fn identity_files_are_raw_seeds() {
    let dir = temp_dir("identity");
    let key = dir.join("alice.seed");
    let made = json(&["identity", "new", key.to_str().unwrap()]);
    let seed = fs::read(&key).unwrap();
    assert_eq!(seed.len(), 32);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let keypair = EntityKeypair::from_seed_slice(&seed).unwrap();
    assert_eq!(made["entity_id"], keypair.entity_id().to_hex());
    assert_eq!(made["origin_hash"], keypair.origin_hash());
    assert_eq!(made["node_id"], keypair.node_id());

    // A seed written by the library shows the library's ids.
    let theirs = EntityKeypair::from_seed(&[7u8; 32]);
    let their_key = dir.join("seven.seed");
    fs::write(&their_key, *theirs.seed().unwrap()).unwrap();
    let shown = json(&["identity", "show", their_key.to_str().unwrap()]);
    assert_eq!(shown["entity_id"], theirs.entity_id().to_hex());
    let public = dir.join("seven.pub");
    fs::write(&public, theirs.public_key()).unwrap();
    let shown = json(&["identity", "show", "--public", public.to_str().unwrap()]);
    assert_eq!(shown["node_id"], theirs.node_id());

    // Never overwrites a key; a wrong-sized file is one clear error.
    let again = net()
        .args(["identity", "new", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(fs::read(&key).unwrap(), seed);
    let short = dir.join("short.seed");
    fs::write(&short, [1u8; 5]).unwrap();
    let bad = net()
        .args(["identity", "show", short.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1);
    assert!(stderr.contains("32 bytes"), "{stderr}");
}

#[test]
fn tokens_round_trip_through_the_library() {
    let dir = temp_dir("token");
    let issuer = EntityKeypair::from_seed(&[1u8; 32]);
    let bob = EntityKeypair::from_seed(&[2u8; 32]);
    let carol = EntityKeypair::from_seed(&[3u8; 32]);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    fs::write(path("issuer.seed"), *issuer.seed().unwrap()).unwrap();
    fs::write(path("bob.seed"), *bob.seed().unwrap()).unwrap();

    let shown = json(&[
        "token",
        "issue",
        "--issuer",
        &path("issuer.seed"),
        "--subject",
        &path("bob.seed"),
        "--scope",
        "publish,subscribe,delegate",
        "--channel",
        "sensors/temp",
        "--ttl",
        "600",
        "--depth",
        "2",
        "--out",
        &path("bob.token"),
    ]);
    let bytes = fs::read(path("bob.token")).unwrap();
    assert_eq!(bytes.len(), 159);
    assert_eq!(shown["bytes_hex"], hex::encode(&bytes));
    let token = PermissionToken::from_bytes(&bytes).unwrap();
    token.is_valid().unwrap();
    assert_eq!(token.issuer(), issuer.entity_id());
    assert_eq!(token.subject(), bob.entity_id());
    assert_eq!(token.channel_hash(), channel_hash(b"sensors/temp"));
    assert_eq!(
        token.scope(),
        TokenScope::PUBLISH | TokenScope::SUBSCRIBE | TokenScope::DELEGATE
    );
    assert_eq!(token.not_after() - token.not_before(), 600);
    assert_eq!(token.delegation_depth(), 2);
    net()
        .args(["token", "verify", &path("bob.token")])
        .assert()
        .success();

    // Delegation to a subject given as hex, signed by bob.
    let delegated = json(&[
        "token",
        "delegate",
        &path("bob.token"),
        "--signer",
        &path("bob.seed"),
        "--subject",
        &carol.entity_id().to_hex(),
        "--scope",
        "publish",
        "--out",
        &path("carol.token"),
    ]);
    assert_eq!(delegated["delegation_depth"], 1);
    let child = PermissionToken::from_bytes(&fs::read(path("carol.token")).unwrap()).unwrap();
    child.is_valid().unwrap();
    assert_eq!(child.issuer(), bob.entity_id());
    assert_eq!(child.scope(), TokenScope::PUBLISH);

    // A token the library issued shows its fields.
    let theirs = PermissionToken::try_issue_at(
        &issuer,
        *carol.entity_id(),
        TokenScope::ADMIN,
        9,
        std::time::Duration::from_secs(60),
        0,
        1_000,
    )
    .unwrap();
    fs::write(path("lib.token"), theirs.to_bytes()).unwrap();
    let shown = json(&["token", "show", &path("lib.token")]);
    assert_eq!(shown["scope"], serde_json::json!(["admin"]));
    assert_eq!(shown["not_before"], 1_000);
    assert_eq!(shown["signature_valid"], true);
    assert_eq!(shown["expired"], true);

    // Expired, and tampered: exit 1 with one line naming the failure.
    let expired = net()
        .args(["token", "verify", &path("lib.token")])
        .output()
        .unwrap();
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));
    net()
        .args(["token", "verify", "--at", "1030", &path("lib.token")])
        .assert()
        .success();
    let mut tampered = fs::read(path("bob.token")).unwrap();
    tampered[64] ^= 0x04;
    fs::write(path("tampered.token"), tampered).unwrap();
    let forged = net()
        .args(["token", "verify", &path("tampered.token")])
        .output()
        .unwrap();
    assert_eq!(forged.status.code(), Some(1));
    let stderr = String::from_utf8(forged.stderr).unwrap();
    assert!(stderr.contains("signature"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}
