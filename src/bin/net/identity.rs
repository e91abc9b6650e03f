//! `net identity` and `net token`: keys and permission tokens as files, in
//! the bytes the libraries use (a 32-byte ed25519 seed; a 159-byte token,
//! IDENTITY.md §4).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use net::identity::{
    EntityId, EntityKeypair, PermissionToken, SEED_LEN, TOKEN_SIZE, TokenScope,
    checked_channel_hash, unix_now,
};
use serde_json::{Value, json};

use crate::error::{CliError, Context, Result};
use crate::output::{Output, hex, joined, parse_hex, rfc3339_secs};

/// The `net identity` subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Generate a new identity: writes its 32-byte seed to FILE (owner-only
    /// permissions) and prints its entity id, origin hash and node id.
    New {
        /// Where to write the seed; refuses to overwrite an existing file.
        file: PathBuf,
    },
    /// Show the entity id, origin hash and node id of a seed file (or of a
    /// 32-byte public key file with --public).
    Show {
        /// A seed file written by `net identity new` (or by the libraries).
        file: PathBuf,
        /// FILE holds a 32-byte public key instead of a seed.
        #[arg(long)]
        public: bool,
    },
}

/// The `net token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token signed by an issuer's seed file and write its 159 bytes.
    Issue(IssueArgs),
    /// Check a token's signature and validity window; exits 1 when it fails.
    Verify {
        /// The token file.
        file: PathBuf,
        /// Check at this UNIX time (seconds) instead of now.
        #[arg(long)]
        at: Option<u64>,
    },
    /// Delegate a token to a new subject, signed by the token's subject.
    Delegate(DelegateArgs),
    /// Show a token's fields (does not verify it).
    Show {
        /// The token file.
        file: PathBuf,
    },
}

/// Arguments of `net token issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The issuer's seed file.
    #[arg(long)]
    issuer: PathBuf,
    /// The subject: a seed file, a public key file, or 64 hex digits.
    #[arg(long)]
    subject: String,
    /// Scope, comma-separated: publish, subscribe, admin, delegate, wildcard, all.
    #[arg(long, default_value = "publish,subscribe")]
    scope: String,
    /// The channel the token covers (its 16-bit hash is stored).
    #[arg(long, conflicts_with = "channel_hash")]
    channel: Option<String>,
    /// The channel hash itself (0..=65535), instead of --channel.
    #[arg(long)]
    channel_hash: Option<u16>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// How many more times it may be delegated.
    #[arg(long, default_value_t = 0)]
    depth: u8,
    /// Where to write the token.
    #[arg(long, short)]
    out: PathBuf,
}

/// Arguments of `net token delegate`.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The parent token file.
    token: PathBuf,
    /// The seed file of the parent token's subject (the signer).
    #[arg(long)]
    signer: PathBuf,
    /// The new subject: a seed file, a public key file, or 64 hex digits.
    #[arg(long)]
    subject: String,
    /// The scope asked for (narrowed by the parent's).
    #[arg(long, default_value = "all")]
    scope: String,
    /// Where to write the new token.
    #[arg(long, short)]
    out: PathBuf,
}

/// Reads a seed file.
///
/// # Errors
/// It cannot be read or does not hold exactly 32 bytes.
pub fn read_seed(path: &Path) -> Result<EntityKeypair> {
    let bytes = zeroize::Zeroizing::new(read_sized(path, SEED_LEN, "an identity seed")?);
    EntityKeypair::from_seed_slice(&bytes).context(path.display())
}

/// Reads a file that must hold exactly `len` bytes (`what` names it).
fn read_sized(path: &Path, len: usize, what: &str) -> Result<Vec<u8>> {
    let bytes = fs::read(path).context(format!("reading {}", path.display()))?;
    if bytes.len() != len {
        return Err(CliError::new(format!(
            "{}: {what} is {len} bytes, this file has {}",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Writes a file readable by its owner only, refusing to replace one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context(format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .context(format!("writing {}", path.display()))
}

fn subject_of(text: &str) -> Result<EntityId> {
    let path = Path::new(text);
    if path.is_file() {
        let bytes = fs::read(path).context(format!("reading {text}"))?;
        return match bytes.len() {
            SEED_LEN if !looks_public(path) => Ok(*read_seed(path)?.entity_id()),
            32 => EntityId::from_slice(&bytes).context(text),
            n => Err(CliError::new(format!(
                "{text}: expected a 32-byte seed or public key, got {n} bytes"
            ))),
        };
    }
    let bytes = parse_hex(text).ok_or_else(|| {
        CliError::new(format!(
            "subject {text:?} is neither a file nor 64 hex digits"
        ))
    })?;
    EntityId::from_slice(&bytes).context(format!("subject {text:?}"))
}

/// A file named `*.pub` holds a public key.
fn looks_public(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "pub")
}

fn parse_scope(text: &str) -> Result<TokenScope> {
    let mut scope = TokenScope::NONE;
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        scope = scope
            | match word {
                "publish" => TokenScope::PUBLISH,
                "subscribe" => TokenScope::SUBSCRIBE,
                "admin" => TokenScope::ADMIN,
                "delegate" => TokenScope::DELEGATE,
                "wildcard" => TokenScope::WILDCARD,
                "all" => TokenScope::ALL,
                other => {
                    return Err(CliError::new(format!(
                        "scope {other:?}: expected publish, subscribe, admin, delegate, wildcard or all"
                    )));
                }
            };
    }
    Ok(scope)
}

fn scope_names(scope: TokenScope) -> Vec<&'static str> {
    [
        (TokenScope::PUBLISH, "publish"),
        (TokenScope::SUBSCRIBE, "subscribe"),
        (TokenScope::ADMIN, "admin"),
        (TokenScope::DELEGATE, "delegate"),
        (TokenScope::WILDCARD, "wildcard"),
    ]
    .into_iter()
    .filter(|(bit, _)| scope.contains(*bit))
    .map(|(_, name)| name)
    .collect()
}

fn identity_json(id: &EntityId, file: &Path) -> Value {
    json!({
        "file": file.display().to_string(),
        "entity_id": id.to_hex(),
        "origin_hash": id.origin_hash(),
        "node_id": id.node_id(),
    })
}

fn print_identity(out: Output, value: &Value) -> Result<()> {
    out.emit(value, |out| {
        out.line(format!(
            "file         {}",
            value["file"].as_str().unwrap_or("")
        ))?;
        out.line(format!(
            "entity id    {}",
            value["entity_id"].as_str().unwrap_or("")
        ))?;
        out.line(format!(
            "origin hash  {:#018x}",
            value["origin_hash"].as_u64().unwrap_or(0)
        ))?;
        out.line(format!(
            "node id      {:#018x}",
            value["node_id"].as_u64().unwrap_or(0)
        ))
    })
}

/// Runs a `net identity` subcommand.
pub fn run_identity(command: IdentityCommand, out: Output) -> Result<()> {
    match command {
        IdentityCommand::New { file } => {
            let keypair = EntityKeypair::generate();
            let seed = keypair.seed().context("reading the new seed")?;
            write_new(&file, seed.as_ref())?;
            print_identity(out, &identity_json(keypair.entity_id(), &file))
        }
        IdentityCommand::Show { file, public } => {
            let id = if public {
                let bytes = fs::read(&file).context(format!("reading {}", file.display()))?;
                EntityId::from_slice(&bytes).context(file.display())?
            } else {
                *read_seed(&file)?.entity_id()
            };
            print_identity(out, &identity_json(&id, &file))
        }
    }
}

fn read_token(path: &Path) -> Result<PermissionToken> {
    let bytes = read_sized(path, TOKEN_SIZE, "a token")?;
    PermissionToken::from_bytes(&bytes).context(path.display())
}

fn token_json(token: &PermissionToken, now: u64) -> Value {
    json!({
        "issuer": token.issuer().to_hex(),
        "subject": token.subject().to_hex(),
        "scope": scope_names(token.scope()),
        "scope_bits": token.scope().bits(),
        "channel_hash": token.channel_hash(),
        "not_before": token.not_before(),
        "not_after": token.not_after(),
        "delegation_depth": token.delegation_depth(),
        "nonce": token.nonce(),
        "signature_valid": token.verify().is_ok(),
        "expired": token.is_expired_at(now),
        "bytes_hex": hex(&token.to_bytes()),
    })
}

fn print_token(out: Output, value: &Value) -> Result<()> {
    out.emit(value, |out| {
        let s = |k: &str| value[k].as_str().unwrap_or("").to_owned();
        let n = |k: &str| value[k].as_u64().unwrap_or(0);
        out.line(format!("issuer            {}", s("issuer")))?;
        out.line(format!("subject           {}", s("subject")))?;
        out.line(format!(
            "scope             {} ({:#x})",
            joined(&value["scope"]),
            n("scope_bits")
        ))?;
        out.line(format!("channel hash      {:#06x}", n("channel_hash")))?;
        out.line(format!(
            "not before        {}",
            rfc3339_secs(n("not_before"))
        ))?;
        out.line(format!(
            "not after         {}",
            rfc3339_secs(n("not_after"))
        ))?;
        out.line(format!("delegation depth  {}", n("delegation_depth")))?;
        out.line(format!("nonce             {:#018x}", n("nonce")))?;
        out.line(format!(
            "signature         {}",
            if value["signature_valid"].as_bool() == Some(true) {
                "valid"
            } else {
                "INVALID"
            }
        ))?;
        out.line(format!(
            "expired           {}",
            if value["expired"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            }
        ))
    })
}

/// Runs a `net token` subcommand.
pub fn run_token(command: TokenCommand, out: Output) -> Result<()> {
    match command {
        TokenCommand::Issue(args) => {
            let issuer = read_seed(&args.issuer)?;
            let subject = subject_of(&args.subject)?;
            let scope = parse_scope(&args.scope)?;
            let hash = match (&args.channel, args.channel_hash) {
                (Some(name), _) => {
                    checked_channel_hash(name).context(format!("channel {name:?}"))?
                }
                (None, Some(hash)) => hash,
                (None, None) => 0,
            };
            let token = PermissionToken::try_issue(
                &issuer,
                subject,
                scope,
                hash,
                Duration::from_secs(args.ttl),
                args.depth,
            )
            .context("issuing the token")?;
            write_new(&args.out, &token.to_bytes())?;
            print_token(out, &token_json(&token, unix_now()))
        }
        TokenCommand::Verify { file, at } => {
            let token = read_token(&file)?;
            let now = at.unwrap_or_else(unix_now);
            let verdict = token.is_valid_at(now);
            let value = json!({
                "file": file.display().to_string(),
                "valid": verdict.is_ok(),
                "error": verdict.err().map(|e| e.to_string()),
                "at": now,
            });
            if out.is_json() {
                out.json(&value)?;
            }
            match verdict {
                Ok(()) => {
                    if !out.is_json() {
                        out.line(format!("{}: valid", file.display()))?;
                    }
                    Ok(())
                }
                Err(e) => Err(CliError::new(format!("{}: {e}", file.display()))),
            }
        }
        TokenCommand::Delegate(args) => {
            let parent = read_token(&args.token)?;
            let signer = read_seed(&args.signer)?;
            let subject = subject_of(&args.subject)?;
            let scope = parse_scope(&args.scope)?;
            let token = parent
                .delegate(&signer, subject, scope)
                .context("delegating the token")?;
            write_new(&args.out, &token.to_bytes())?;
            print_token(out, &token_json(&token, unix_now()))
        }
        TokenCommand::Show { file } => {
            let token = read_token(&file)?;
            print_token(out, &token_json(&token, unix_now()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_name() {
        let scope = parse_scope("publish, delegate").unwrap();
        assert_eq!(scope, TokenScope::PUBLISH | TokenScope::DELEGATE);
        assert_eq!(scope_names(scope), ["publish", "delegate"]);
        assert_eq!(parse_scope("all").unwrap(), TokenScope::ALL);
        assert!(parse_scope("fly").unwrap_err().message().contains("fly"));
    }
}
