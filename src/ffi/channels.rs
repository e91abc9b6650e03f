//! `net_mesh_*` channel and capability calls: register, subscribe,
//! unsubscribe and publish on a node's channels; announce capabilities and
//! query the index. Structured inputs and results are JSON (schemas in
//! each function's documentation); events travel as the same slices
//! `net_mesh_stream_send` takes, and arrive through `net_mesh_recv_next` /
//! `net_mesh_recv_batch` with their channel name.

use std::num::NonZeroU32;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::mesh::{mesh_status, net_mesh_t};
use super::status::net_status_t;
use crate::identity::{ChannelName, EntityId, PermissionToken};
use crate::mesh::capability::announcement::decode_hex;
use crate::mesh::capability::{
    AcceleratorInfo, AnnouncementError, BestNodeQuery, CapabilityFilter, CapabilitySet, GpuInfo,
    ModelInfo, NodeQuery, ToolInfo,
};
use crate::mesh::channels::{
    ChannelConfig, Deny, IssuerTrust, PublishError, RegistryError, SubnetParseError, Visibility,
};
use crate::mesh::{CapabilityError, ChannelError, PublishReport};
use crate::wire::AckReason;

/// The length of a PermissionToken on the wire.
pub(super) const TOKEN_LEN: usize = 159;

impl From<ChannelError> for FfiError {
    fn from(err: ChannelError) -> Self {
        use net_status_t as S;
        let status = match &err {
            ChannelError::Rejected(reason) => match reason {
                AckReason::Unauthorized => S::NET_ERR_CHANNEL_UNAUTHORIZED,
                AckReason::UnknownChannel => S::NET_ERR_CHANNEL_UNKNOWN,
                AckReason::RateLimited => S::NET_ERR_CHANNEL_RATE_LIMITED,
                AckReason::TooManyChannels => S::NET_ERR_CHANNEL_FULL,
                _ => S::NET_ERR_INTERNAL,
            },
            ChannelError::HashCollision(_) => S::NET_ERR_CHANNEL_HASH_COLLISION,
            ChannelError::TooManyPending(_) => S::NET_ERR_CHANNEL_TOO_MANY_PENDING,
            ChannelError::Registry(RegistryError::HashCollision { .. }) => {
                S::NET_ERR_CHANNEL_HASH_COLLISION
            }
            ChannelError::Publish(publish) => match publish {
                PublishError::UnknownChannel => S::NET_ERR_CHANNEL_UNKNOWN,
                PublishError::NotAuthorized(Deny::UnknownChannel) => S::NET_ERR_CHANNEL_UNKNOWN,
                PublishError::NotAuthorized(_) => S::NET_ERR_CHANNEL_UNAUTHORIZED,
                PublishError::RateLimited(_) => S::NET_ERR_CHANNEL_RATE_LIMITED,
                #[allow(unreachable_patterns)]
                _ => S::NET_ERR_INTERNAL,
            },
            // A membership request is not a pull: no answer is an error.
            ChannelError::Mesh(crate::mesh::MeshError::Timeout) => S::NET_ERR_CHANNEL_NO_ANSWER,
            ChannelError::Mesh(mesh) => mesh_status(mesh),
            #[allow(unreachable_patterns)]
            _ => S::NET_ERR_INTERNAL,
        };
        Self::new(status, err.to_string())
    }
}

impl From<CapabilityError> for FfiError {
    fn from(err: CapabilityError) -> Self {
        match err {
            CapabilityError::Mesh(mesh) => mesh.into(),
            CapabilityError::Announcement(a @ AnnouncementError::TooLarge { .. }) => {
                FfiError::new(net_status_t::NET_ERR_MESH_CAPABILITIES, a.to_string())
            }
            other => FfiError::new(net_status_t::NET_ERR_INTERNAL, other.to_string()),
        }
    }
}

pub(super) fn channel_name(name: &str) -> Result<ChannelName, FfiError> {
    Ok(ChannelName::new(name)?)
}

fn config_error(msg: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_CHANNEL_CONFIG, msg.into())
}

/// Parses a channel configuration (see `net_mesh_register_channel`).
pub(crate) fn channel_config_from_json(json: &str) -> Result<ChannelConfig, FfiError> {
    let mut config = ChannelConfig::default();
    if json.trim().is_empty() {
        return Ok(config);
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|e| config_error(format!("channel config is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(config_error("channel config must be a JSON object"));
    };
    for (key, value) in &map {
        let bad = |what: &str| config_error(format!("`{key}`: {what}"));
        match key.as_str() {
            "visibility" => {
                config.visibility = match value.as_str() {
                    Some("global") => Visibility::Global,
                    Some("subnet_local") => Visibility::SubnetLocal,
                    Some("parent_visible") => Visibility::ParentVisible,
                    Some("exported") => Visibility::Exported,
                    _ => {
                        return Err(bad(
                            "must be \"global\", \"subnet_local\", \"parent_visible\" or \"exported\"",
                        ));
                    }
                }
            }
            "publish_caps" | "subscribe_caps" => {
                let filter = match value {
                    Value::Null => None,
                    Value::Object(_) => {
                        let filter =
                            CapabilityFilter::from_json(&value.to_string()).map_err(|e| bad(&e))?;
                        let filter: Arc<dyn crate::mesh::channels::CapabilityFilter> =
                            Arc::new(filter);
                        Some(filter)
                    }
                    _ => return Err(bad("must be a capability filter object or null")),
                };
                if key == "publish_caps" {
                    config.publish_caps = filter;
                } else {
                    config.subscribe_caps = filter;
                }
            }
            "require_token" => {
                config.require_token = value.as_bool().ok_or_else(|| bad("must be a boolean"))?
            }
            "reliable" => {
                config.reliable = value.as_bool().ok_or_else(|| bad("must be a boolean"))?
            }
            "trusted_issuers" => {
                config.trusted_issuers = trusted_issuers(value).map_err(|e| bad(&e))?
            }
            "max_subscribers" => {
                config.max_subscribers = match value {
                    Value::Null => None,
                    _ => Some(
                        value
                            .as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| bad("must be a non-negative integer or null"))?,
                    ),
                }
            }
            "max_rate_pps" => {
                config.max_rate_pps = match value {
                    Value::Null => None,
                    _ => Some(
                        value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .and_then(NonZeroU32::new)
                            .ok_or_else(|| {
                                bad("must be an integer from 1 to 4294967295 or null")
                            })?,
                    ),
                }
            }
            "export_to" => {
                config.export_to = value
                    .as_array()
                    .ok_or_else(|| bad("must be an array of subnets (\"3.7.2\")"))?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .ok_or_else(|| bad("must be an array of subnets (\"3.7.2\")"))?
                            .parse()
                            .map_err(|e: SubnetParseError| bad(&e.to_string()))
                    })
                    .collect::<Result<_, _>>()?
            }
            "priority" => {
                config.priority = value
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| bad("must be an integer from 0 to 255"))?
            }
            _ => return Err(bad("unknown key")),
        }
    }
    Ok(config)
}

fn trusted_issuers(value: &Value) -> Result<IssuerTrust, String> {
    const WHAT: &str = "must be \"any\" or an array of 64-hex-digit entity ids";
    match value {
        Value::String(s) if s == "any" => Ok(IssuerTrust::AnyIssuer),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .and_then(decode_hex::<32>)
                    .map(EntityId::from_bytes)
                    .ok_or_else(|| format!("item {i} {WHAT}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(IssuerTrust::Issuers),
        _ => Err(WHAT.to_owned()),
    }
}

fn capabilities_error(msg: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_MESH_CAPABILITIES, msg.into())
}

/// Refuses keys of `given` that `template` lacks, at every depth where both
/// are objects, naming the path.
fn check_keys(
    given: &Map<String, Value>,
    template: &Map<String, Value>,
    path: &str,
) -> Result<(), FfiError> {
    for (key, value) in given {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(expected) = template.get(key) else {
            return Err(capabilities_error(format!("`{here}`: unknown key")));
        };
        if let (Value::Object(inner), Value::Object(inner_template)) = (value, expected) {
            check_keys(inner, inner_template, &here)?;
        }
    }
    Ok(())
}

/// Fills the members `given` omits from `template` (objects merge member by
/// member; anything else is taken whole).
fn merge(template: &mut Value, given: Value) {
    match (template, given) {
        (Value::Object(t), Value::Object(g)) => {
            for (key, value) in g {
                match t.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        t.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Checks the keys of one list or optional item (a GPU, an accelerator, a
/// model, a tool) against its `template` and fills the members it omits.
fn complete_item(item: &mut Value, template: &Value, path: &str) -> Result<(), FfiError> {
    let (Value::Object(given), Value::Object(template_map)) = (&*item, template) else {
        return Ok(()); // not an object: serde names the type
    };
    check_keys(given, template_map, path)?;
    let mut full = template.clone();
    merge(&mut full, std::mem::take(item));
    *item = full;
    Ok(())
}

/// Completes the items of the set's lists and optional members, which
/// `CapabilitySet::default()` has no template for (an empty list, a null
/// GPU): each item gets the defaults and the unknown-key check the other
/// members get.
fn complete_items(given: &mut Map<String, Value>) -> Result<(), FfiError> {
    fn template<T: serde::Serialize + Default>() -> Result<Value, FfiError> {
        serde_json::to_value(T::default())
            .map_err(|e| FfiError::new(net_status_t::NET_ERR_INTERNAL, e.to_string()))
    }
    let members = [
        (Some("hardware"), "gpu", template::<GpuInfo>()?),
        (Some("hardware"), "additional_gpus", template::<GpuInfo>()?),
        (
            Some("hardware"),
            "accelerators",
            template::<AcceleratorInfo>()?,
        ),
        (None, "models", template::<ModelInfo>()?),
        (None, "tools", template::<ToolInfo>()?),
    ];
    for (parent, member, item_template) in &members {
        let holder = match parent {
            Some(p) => given.get_mut(*p).and_then(Value::as_object_mut),
            None => Some(&mut *given),
        };
        let Some(slot) = holder.and_then(|h| h.get_mut(*member)) else {
            continue;
        };
        let path = parent.map_or_else(|| (*member).to_owned(), |p| format!("{p}.{member}"));
        if let Value::Array(items) = slot {
            for (i, item) in items.iter_mut().enumerate() {
                complete_item(item, item_template, &format!("{path}[{i}]"))?;
            }
        } else {
            complete_item(slot, item_template, &path)?;
        }
    }
    Ok(())
}

/// Parses a capability set (see `net_mesh_announce`): the WIRE.md §10.4
/// members, any of them omitted (defaults), none unknown — at every depth,
/// the items of lists (models, tools, GPUs, accelerators) and the primary
/// GPU included.
pub(crate) fn capability_set_from_json(json: &str) -> Result<CapabilitySet, FfiError> {
    let mut given: Value = serde_json::from_str(json)
        .map_err(|e| capabilities_error(format!("capability set is not JSON: {e}")))?;
    let Value::Object(given_map) = &mut given else {
        return Err(capabilities_error("capability set must be a JSON object"));
    };
    complete_items(given_map)?;
    let mut template = serde_json::to_value(CapabilitySet::default())
        .map_err(|e| FfiError::new(net_status_t::NET_ERR_INTERNAL, e.to_string()))?;
    if let Value::Object(template_map) = &template {
        check_keys(given_map, template_map, "")?;
    }
    merge(&mut template, given);
    serde_json::from_value(template).map_err(|e| capabilities_error(format!("capability set: {e}")))
}

fn report_json(report: &PublishReport) -> String {
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|(peer, err)| {
            let status = mesh_status(err);
            serde_json::json!({
                "peer": peer,
                "status": status.name(),
                "code": status.code(),
                "message": err.to_string(),
            })
        })
        .collect();
    serde_json::json!({
        "attempted": report.attempted,
        "delivered": report.delivered,
        "evicted": report.evicted,
        "errors": errors,
    })
    .to_string()
}

/// Registers the channel `name` on this node with `config_json`, or
/// replaces its configuration (subscribers that no longer qualify are
/// evicted at once; their number goes to `evicted_out`, which may be NULL).
/// Until a channel is registered, subscribes to it are refused
/// (`NET_ERR_CHANNEL_UNKNOWN` at the subscriber).
///
/// `config_json` (NULL/empty: an open, global channel) is an object with
/// any of: `visibility` ("global" (default) | "subnet_local" |
/// "parent_visible" | "exported"), `publish_caps` and `subscribe_caps`
/// (capability filters, the `filter` of `net_mesh_find_nodes`, matched
/// against the publisher's / the subscriber's announced capabilities; null:
/// none), `require_token` (boolean: subscribers need a PermissionToken for
/// this channel chained to a trusted issuer), `trusted_issuers` (an array of
/// 64-hex-digit entity ids that may root a token chain besides this node,
/// or "any": any issuer, as v0.11), `max_subscribers` (integer or null),
/// `max_rate_pps` (publish calls per second, at least 1, or null),
/// `reliable` (boolean: publish on retransmitting streams to Net peers),
/// `priority` (0..255), `export_to` (an array of subnets, "3.8": an
/// "exported" channel is visible to peers in these subnets and below them;
/// none without it).
///
/// Errors: `NET_ERR_CHANNEL_INVALID_NAME`, `NET_ERR_CHANNEL_CONFIG` naming
/// the key (unknown keys included), `NET_ERR_CHANNEL_HASH_COLLISION` when
/// another registered name has the same hash (nothing changes),
/// `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `name` is readable for `name_len` bytes;
/// `config_json` is NULL or readable for its length; `evicted_out` is NULL
/// or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_register_channel(
    mesh: *const net_mesh_t,
    name: *const u8,
    name_len: usize,
    config_json: *const u8,
    config_json_len: usize,
    evicted_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle mesh; str name[name_len]; opt_str config_json[config_json_len]; {
        let name = channel_name(name)?;
        let config = channel_config_from_json(config_json.unwrap_or(""))?;
        let evicted = mesh.0.register_channel(&name, config)?;
        write_opt(evicted_out, evicted as u64);
        Ok(())
    })
}

/// Writes `value` through `out` unless it is NULL.
fn write_opt(out: *mut u64, value: u64) {
    if !out.is_null() {
        // SAFETY: callers pass NULL or a pointer valid for one write
        // (documented contract of each entry point).
        unsafe { out.write(value) };
    }
}

/// De-registers the channel `name`: every subscriber is evicted (their
/// number goes to `evicted_out`, which may be NULL) and new subscribes get
/// `NET_ERR_CHANNEL_UNKNOWN`. De-registering an unknown name evicts none.
///
/// Errors: `NET_ERR_CHANNEL_INVALID_NAME`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `name` is readable for `name_len` bytes;
/// `evicted_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_deregister_channel(
    mesh: *const net_mesh_t,
    name: *const u8,
    name_len: usize,
    evicted_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle mesh; str name[name_len]; {
        let name = channel_name(name)?;
        let evicted = mesh.0.deregister_channel(&name)?;
        write_opt(evicted_out, evicted as u64);
        Ok(())
    })
}

/// Keeps a 159-byte PermissionToken for authorization checks on this
/// node's channels: typically a delegation parent that subscribers' tokens
/// chain through (a subscribe carries one token). It goes when it expires.
///
/// Errors: `NET_ERR_TOKEN_INVALID_FORMAT`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `token` is readable for `token_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_install_channel_token(
    mesh: *const net_mesh_t,
    token: *const u8,
    token_len: usize,
) -> net_status_t {
    ffi_export!(handle mesh; bytes token[token_len]; {
        let token = PermissionToken::from_bytes(token)?;
        mesh.0.install_channel_token(token)?;
        Ok(())
    })
}

/// Subscribes to the channel `name` at `publisher` (a peer, direct or
/// relayed), presenting `token` (159 bytes, or NULL with length 0 for
/// none), and waits for the publisher's answer (at most the configured
/// membership ack timeout). Re-subscribing is idempotent. The channel's
/// events then arrive through `net_mesh_recv_next` / `net_mesh_recv_batch`
/// with its name.
///
/// Errors: the publisher's refusal (`NET_ERR_CHANNEL_UNAUTHORIZED`,
/// `NET_ERR_CHANNEL_UNKNOWN`, `NET_ERR_CHANNEL_RATE_LIMITED`,
/// `NET_ERR_CHANNEL_FULL`); `NET_ERR_CHANNEL_HASH_COLLISION` when another
/// name with the same hash is held at this publisher (nothing sent);
/// `NET_ERR_CHANNEL_TOO_MANY_PENDING`; `NET_ERR_MESH_UNKNOWN_PEER` (no
/// session, or it went away); `NET_ERR_CHANNEL_NO_ANSWER`;
/// `NET_ERR_CANCELLED`; `NET_ERR_SHUTTING_DOWN`;
/// `NET_ERR_CHANNEL_INVALID_NAME`; `NET_ERR_TOKEN_INVALID_FORMAT`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `name` is readable for `name_len` bytes;
/// `token` is NULL (with `token_len` 0) or readable for `token_len` bytes;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_subscribe(
    mesh: *const net_mesh_t,
    publisher: u64,
    name: *const u8,
    name_len: usize,
    token: *const u8,
    token_len: usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; str name[name_len]; opt_array token[token_len] TOKEN_LEN; {
        let name = channel_name(name)?;
        let token = token.map(|t| PermissionToken::from_bytes(t)).transpose()?;
        mesh.0.subscribe(publisher, &name, token.as_ref(), cancel.token())?;
        Ok(())
    })
}

/// Unsubscribes from the channel `name` at `publisher` and waits for its
/// answer (always an acceptance, even when not subscribed). Events of the
/// channel from that publisher stop arriving.
///
/// Errors: as `net_mesh_subscribe`, without the refusals and the collision.
///
/// # Safety
/// `mesh` is NULL or from libnet; `name` is readable for `name_len` bytes;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_unsubscribe(
    mesh: *const net_mesh_t,
    publisher: u64,
    name: *const u8,
    name_len: usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; str name[name_len]; {
        let name = channel_name(name)?;
        mesh.0.unsubscribe(publisher, &name, cancel.token())?;
        Ok(())
    })
}

/// Publishes `count` events on this node's registered channel `name` to
/// every authorized subscriber (direct or relayed), reliably when
/// `reliable` or the channel is configured so. Never waits: a subscriber
/// whose window is spent is listed in the report and the others are sent
/// to. Writes the report as a JSON object: `attempted` (subscribers it was
/// for), `delivered` (subscribers whose packets were queued), `evicted`
/// (subscribers dropped by the publish-time re-check), `errors` (an array
/// of `peer`, `status` (e.g. "NET_ERR_MESH_BACKPRESSURE"), `code`,
/// `message`).
///
/// Errors: `NET_ERR_CHANNEL_UNKNOWN` (not registered here),
/// `NET_ERR_CHANNEL_UNAUTHORIZED` (this node fails its own publish policy),
/// `NET_ERR_CHANNEL_RATE_LIMITED` (nothing sent), `NET_ERR_MESH_TOO_LARGE`,
/// `NET_ERR_CHANNEL_INVALID_NAME`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `name` is readable for `name_len` bytes;
/// `events` points to `count` slices, each readable for its length (NULL
/// when `count` is 0); `report_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_publish(
    mesh: *const net_mesh_t,
    name: *const u8,
    name_len: usize,
    events: *const net_slice_t,
    count: usize,
    reliable: bool,
    report_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; str name[name_len]; slices events[count]; out report_out; {
        let name = channel_name(name)?;
        let report = mesh.0.publish(&name, &events, reliable)?;
        report_out.write(net_bytes_t::from_vec(report_json(&report).into_bytes()));
        Ok(())
    })
}

/// The node's channels as a JSON object: `channels` (registered here:
/// `name`, `hash`, `subscribers`, `visibility`, `require_token`,
/// `reliable`, `priority`, `max_rate_pps`), `subscriptions` (this node's:
/// `publisher`, `channel`, requests in flight included), `counters`
/// (`malformed`, `accepted`, `refused`, `unmatched_acks`, `evicted`) and
/// `subnet` (this node's subnet, "global" or dotted levels such as "3.7.2":
/// the source side of every channel's visibility).
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_channels(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.channels_json().into_bytes()));
        Ok(())
    })
}

/// Announces this node's capabilities: signs them, indexes them locally
/// (this node's own queries find it) and sends them to every peer, which
/// forward them on (at once, or when the announce interval allows; never
/// dropped). `caps_json` is a CapabilitySet in the WIRE.md §10.4 shape —
/// `hardware` (`cpu_cores`, `cpu_threads`, `memory_mb`, `gpu`,
/// `additional_gpus`, `storage_mb`, `network_mbps`, `accelerators`),
/// `software` (`os`, `os_version`, `runtimes`, `frameworks`,
/// `cuda_version`, `drivers`), `models`, `tools`, `tags`, `limits` — where
/// any member may be omitted (its default) and none may be unknown.
///
/// Errors: `NET_ERR_MESH_CAPABILITIES` naming the bad key, or when the set
/// does not fit one announcement; `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `caps_json` is readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_announce(
    mesh: *const net_mesh_t,
    caps_json: *const u8,
    caps_json_len: usize,
) -> net_status_t {
    ffi_export!(handle mesh; str caps_json[caps_json_len]; {
        let caps = capability_set_from_json(caps_json)?;
        mesh.0.announce(caps)?;
        Ok(())
    })
}

/// A query from its JSON (NULL or blank: the default query, which matches
/// every node).
fn parse_query<Q: Default, E: std::fmt::Display>(
    json: Option<&str>,
    parse: fn(&str) -> Result<Q, E>,
) -> Result<Q, FfiError> {
    match json.filter(|q| !q.trim().is_empty()) {
        Some(q) => parse(q).map_err(|e| capabilities_error(e.to_string())),
        None => Ok(Q::default()),
    }
}

/// The indexed nodes (this node included once it announced) matching
/// `query_json` (NULL/empty: all): an object with `filter` (any of
/// `require_tags`, `require_models`, `require_tools` (arrays: all present),
/// `min_memory_mb`, `require_gpu`, `gpu_vendor`, `min_vram_mb`,
/// `min_context_length`, `require_modalities`) and `scope` ("any",
/// "global_only", "same_subnet", {"tenants": […]} or {"regions": […]}). Writes `{"nodes": [node_id, …]}` in ascending id order.
///
/// Errors: `NET_ERR_MESH_CAPABILITIES` naming the bad key.
///
/// # Safety
/// `mesh` is NULL or from libnet; `query_json` is NULL or readable for its
/// length; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_find_nodes(
    mesh: *const net_mesh_t,
    query_json: *const u8,
    query_json_len: usize,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; opt_str query_json[query_json_len]; out json_out; {
        let query = parse_query(query_json, NodeQuery::from_json)?;
        json_out.write(net_bytes_t::from_vec(mesh.0.find_nodes(&query).to_json().into_bytes()));
        Ok(())
    })
}

/// The best-scoring indexed node for `query_json` (as
/// `net_mesh_find_nodes`'s, plus `weights`: `memory`, `vram`, `speed`,
/// `loaded`, each 0..1). Writes `{"node_id": id or null, "score": n}`.
///
/// Errors: `NET_ERR_MESH_CAPABILITIES` naming the bad key.
///
/// # Safety
/// As `net_mesh_find_nodes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_find_best_node(
    mesh: *const net_mesh_t,
    query_json: *const u8,
    query_json_len: usize,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; opt_str query_json[query_json_len]; out json_out; {
        let query = parse_query(query_json, BestNodeQuery::from_json)?;
        json_out.write(net_bytes_t::from_vec(mesh.0.find_best_node(&query).to_json().into_bytes()));
        Ok(())
    })
}

/// Every live indexed node as `{"nodes": [{node_id, version, timestamp_ns,
/// expires_at_ns, hop_count, reflex_addr, capabilities}, …]}`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_capabilities(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.capabilities_json().into_bytes()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::capability::GpuVendor;

    fn config_err(json: &str) -> String {
        channel_config_from_json(json).unwrap_err().message
    }

    #[test]
    fn channel_config_json_names_the_bad_key() {
        let c = channel_config_from_json(
            r#"{"visibility":"subnet_local","require_token":true,"max_subscribers":3,
                "max_rate_pps":10,"reliable":true,"priority":7,"trusted_issuers":"any",
                "subscribe_caps":{"require_tags":["gpu"]},"publish_caps":null}"#,
        )
        .unwrap();
        assert_eq!(c.visibility, Visibility::SubnetLocal);
        assert!(c.require_token && c.reliable);
        assert_eq!((c.max_subscribers, c.priority), (Some(3), 7));
        assert_eq!(c.max_rate_pps.map(NonZeroU32::get), Some(10));
        assert_eq!(c.trusted_issuers, IssuerTrust::AnyIssuer);
        assert!(c.subscribe_caps.is_some() && c.publish_caps.is_none());
        assert!(channel_config_from_json("").unwrap().is_open());
        let exported =
            channel_config_from_json(r#"{"visibility":"exported","export_to":["3.8","global"]}"#)
                .unwrap();
        assert_eq!(
            exported.export_to,
            vec![
                crate::mesh::channels::SubnetId::from_levels(&[3, 8]).unwrap(),
                crate::mesh::channels::SubnetId::GLOBAL
            ]
        );
        for (json, key) in [
            (r#"{"export_to":"3.8"}"#, "`export_to`"),
            (r#"{"export_to":[7]}"#, "`export_to`"),
            (r#"{"export_to":["1.2.3.4.5"]}"#, "`export_to`"),
            (r#"{"visbility":"global"}"#, "`visbility`: unknown key"),
            (r#"{"visibility":"galaxy"}"#, "`visibility`"),
            (r#"{"priority":256}"#, "`priority`"),
            (r#"{"max_rate_pps":0}"#, "`max_rate_pps`"),
            (r#"{"require_token":"yes"}"#, "`require_token`"),
            (r#"{"trusted_issuers":["zz"]}"#, "`trusted_issuers`: item 0"),
            (r#"{"subscribe_caps":{"tagz":[]}}"#, "`subscribe_caps`"),
            ("[1]", "must be a JSON object"),
        ] {
            let msg = config_err(json);
            assert!(msg.contains(key), "{json}: {msg}");
        }
    }

    #[test]
    fn capability_set_json_fills_defaults_and_refuses_unknown_keys() {
        let caps =
            capability_set_from_json(r#"{"tags":["gpu"],"hardware":{"memory_mb":512}}"#).unwrap();
        assert_eq!(caps.tags, vec!["gpu".to_owned()]);
        assert_eq!(caps.hardware.memory_mb, 512);
        let err = capability_set_from_json(r#"{"hardware":{"memroy_mb":1}}"#).unwrap_err();
        assert!(
            err.message.contains("`hardware.memroy_mb`: unknown key"),
            "{}",
            err.message
        );
        let err = capability_set_from_json(r#"{"tags":"gpu"}"#).unwrap_err();
        assert_eq!(err.status, net_status_t::NET_ERR_MESH_CAPABILITIES);
    }

    #[test]
    fn capability_set_items_take_defaults_and_refuse_unknown_keys() {
        let caps = capability_set_from_json(
            r#"{"hardware":{"gpu":{"vendor":"Amd"},"additional_gpus":[{"vram_mb":8}],
                "accelerators":[{}]},"models":[{"model_id":"m"}],"tools":[{"tool_id":"t"}]}"#,
        )
        .unwrap();
        let gpu = caps.hardware.gpu.unwrap();
        assert_eq!((gpu.vendor, gpu.vram_mb), (GpuVendor::Amd, 0));
        assert_eq!(caps.hardware.additional_gpus[0].vram_mb, 8);
        assert_eq!(caps.hardware.accelerators, vec![AcceleratorInfo::default()]);
        assert_eq!(caps.models[0].model_id, "m");
        assert!(caps.models[0].modalities.is_empty());
        assert_eq!(caps.tools[0].tool_id, "t");
        assert_eq!(
            capability_set_from_json(r#"{"hardware":{"gpu":null}}"#)
                .unwrap()
                .hardware
                .gpu,
            None
        );
        for (json, path) in [
            (r#"{"models":[{},{"bogus":1}]}"#, "`models[1].bogus`"),
            (r#"{"tools":[{"tool_idd":"t"}]}"#, "`tools[0].tool_idd`"),
            (r#"{"hardware":{"gpu":{"vram":1}}}"#, "`hardware.gpu.vram`"),
            (
                r#"{"hardware":{"accelerators":[{"kind":"Tpu"}]}}"#,
                "`hardware.accelerators[0].kind`",
            ),
        ] {
            let err = capability_set_from_json(json).unwrap_err();
            assert!(err.message.contains(path), "{json}: {}", err.message);
        }
        // Items that are not objects are left to serde, which refuses them.
        assert!(capability_set_from_json(r#"{"models":[1]}"#).is_err());
    }
}
