//! The API schema registry (COMPUTE.md §4.2): nodes announce the APIs they
//! provide (name, semantic version, schema); callers find providers whose
//! version satisfies theirs.
//!
//! Semver matching: a provider P satisfies a requirement R iff same major,
//! P.minor ≥ R.minor, and at equal minor P.patch ≥ R.patch. Versions parse
//! strictly (`MAJOR.MINOR.PATCH`, decimal, no leading zeros, each fitting
//! u64, an optional `-pre` / `+build` suffix refused rather than silently
//! dropped). A prerelease is not modelled: v0.11 compares numbers only.
//!
//! Schemas are JSON-shaped type trees (Null, Boolean, Integer, Number,
//! String, Array, Object, Enum, AnyOf, Ref, Any) whose depth is bounded by
//! [`MAX_SCHEMA_DEPTH`], checked on registration (and by the JSON decoder's
//! own recursion limit before that).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// Deepest schema accepted.
pub const MAX_SCHEMA_DEPTH: usize = 128;

/// A semantic version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Compatible additions.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
}

/// Why a version, schema or registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Not `MAJOR.MINOR.PATCH`.
    #[error("invalid version {0:?}: want MAJOR.MINOR.PATCH")]
    InvalidVersion(String),
    /// The schema nests deeper than [`MAX_SCHEMA_DEPTH`].
    #[error("schema deeper than {MAX_SCHEMA_DEPTH}")]
    SchemaTooDeep,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Whether a provider of this version serves a caller that requires
    /// `required`.
    pub fn satisfies(&self, required: &Version) -> bool {
        self.major == required.major
            && (self.minor > required.minor
                || (self.minor == required.minor && self.patch >= required.patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn component(s: &str, whole: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::InvalidVersion(whole.chars().take(64).collect());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

impl FromStr for Version {
    type Err = ApiError;

    fn from_str(s: &str) -> Result<Self, ApiError> {
        let mut parts = s.split('.');
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ApiError::InvalidVersion(s.chars().take(64).collect()));
        };
        Ok(Self::new(
            component(major, s)?,
            component(minor, s)?,
            component(patch, s)?,
        ))
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A JSON-shaped type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Schema {
    /// `null`.
    Null,
    /// `true` / `false`.
    Boolean,
    /// An integer.
    Integer,
    /// Any number.
    Number,
    /// A string.
    String,
    /// An array of one item type.
    Array(Box<Schema>),
    /// An object with these properties (and which are required).
    Object {
        /// Property types.
        properties: BTreeMap<String, Schema>,
        /// Required property names.
        #[serde(default)]
        required: Vec<String>,
    },
    /// One of these strings.
    Enum(Vec<String>),
    /// Any of these types.
    AnyOf(Vec<Schema>),
    /// A named schema defined elsewhere.
    Ref(String),
    /// Anything.
    Any,
}

impl Schema {
    /// The nesting depth (a leaf is 1).
    pub fn depth(&self) -> usize {
        // Iterative: a hostile schema must not overflow the stack here.
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((s, d)) = stack.pop() {
            deepest = deepest.max(d);
            match s {
                Self::Array(item) => stack.push((item, d + 1)),
                Self::Object { properties, .. } => {
                    stack.extend(properties.values().map(|p| (p, d + 1)));
                }
                Self::AnyOf(options) => stack.extend(options.iter().map(|o| (o, d + 1))),
                _ => {}
            }
        }
        deepest
    }
}

/// An API a node provides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// Name, e.g. `"inference/chat"`.
    pub name: String,
    /// Version.
    pub version: Version,
    /// Request schema.
    #[serde(default = "any_schema")]
    pub request: Schema,
    /// Response schema.
    #[serde(default = "any_schema")]
    pub response: Schema,
}

fn any_schema() -> Schema {
    Schema::Any
}

/// Which node provides which APIs. Shareable; every method takes `&self`.
#[derive(Debug, Default)]
pub struct ApiRegistry {
    providers: RwLock<HashMap<String, BTreeMap<u64, ApiSpec>>>,
}

impl ApiRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `node_id` provides `spec` (replacing its previous
    /// version of the same API).
    ///
    /// # Errors
    /// [`ApiError::SchemaTooDeep`].
    pub fn register(&self, node_id: u64, spec: ApiSpec) -> Result<(), ApiError> {
        if spec.request.depth() > MAX_SCHEMA_DEPTH || spec.response.depth() > MAX_SCHEMA_DEPTH {
            return Err(ApiError::SchemaTooDeep);
        }
        self.providers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(spec.name.clone())
            .or_default()
            .insert(node_id, spec);
        Ok(())
    }

    /// Forgets every API of `node_id`.
    pub fn unregister_node(&self, node_id: u64) {
        let mut providers = self.providers.write().unwrap_or_else(|e| e.into_inner());
        providers.retain(|_, nodes| {
            nodes.remove(&node_id);
            !nodes.is_empty()
        });
    }

    /// The nodes providing `name` at a version satisfying `required`,
    /// newest version first (ties by node id).
    pub fn find(&self, name: &str, required: &Version) -> Vec<(u64, Version)> {
        let providers = self.providers.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(u64, Version)> = providers
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(_, spec)| spec.version.satisfies(required))
            .map(|(&node, spec)| (node, spec.version))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn semver_matching_follows_the_spec() {
        assert!(v("1.2.3").satisfies(&v("1.2.3")));
        assert!(v("1.3.0").satisfies(&v("1.2.9")));
        assert!(!v("1.2.2").satisfies(&v("1.2.3")));
        assert!(!v("1.1.9").satisfies(&v("1.2.0")));
        assert!(!v("2.0.0").satisfies(&v("1.0.0")));
        assert!(!v("0.9.0").satisfies(&v("1.0.0")));
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(v("18446744073709551615.0.1").major, u64::MAX);
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-rc1",
            "1.2.+3",
            "a.b.c",
            "18446744073709551616.0.0",
            " 1.2.3",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&v("3.4.5")).unwrap();
        assert_eq!(json, "\"3.4.5\"");
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v("3.4.5"));
    }

    #[test]
    fn registry_finds_compatible_providers_newest_first() {
        let reg = ApiRegistry::new();
        let spec = |ver: &str| ApiSpec {
            name: "chat".into(),
            version: v(ver),
            request: Schema::Object {
                properties: BTreeMap::from([("prompt".into(), Schema::String)]),
                required: vec!["prompt".into()],
            },
            response: Schema::Any,
        };
        reg.register(1, spec("1.2.0")).unwrap();
        reg.register(2, spec("1.4.1")).unwrap();
        reg.register(3, spec("2.0.0")).unwrap();
        assert_eq!(
            reg.find("chat", &v("1.2.0")),
            vec![(2, v("1.4.1")), (1, v("1.2.0"))]
        );
        assert_eq!(reg.find("chat", &v("2.0.0")), vec![(3, v("2.0.0"))]);
        assert!(reg.find("other", &v("1.0.0")).is_empty());
        reg.unregister_node(2);
        assert_eq!(reg.find("chat", &v("1.3.0")), vec![]);
    }

    #[test]
    fn deep_schemas_are_refused() {
        let mut s = Schema::Any;
        for _ in 0..MAX_SCHEMA_DEPTH {
            s = Schema::Array(Box::new(s));
        }
        assert_eq!(s.depth(), MAX_SCHEMA_DEPTH + 1);
        let spec = ApiSpec {
            name: "x".into(),
            version: v("1.0.0"),
            request: s,
            response: Schema::Any,
        };
        assert_eq!(
            ApiRegistry::new().register(1, spec),
            Err(ApiError::SchemaTooDeep)
        );
    }

    proptest! {
        // The relation against a model: same major and (minor, patch) not lower.
        #[test]
        fn satisfies_matches_the_model(
            p in (0u64..3, 0u64..4, 0u64..4),
            r in (0u64..3, 0u64..4, 0u64..4),
        ) {
            let (pv, rv) = (Version::new(p.0, p.1, p.2), Version::new(r.0, r.1, r.2));
            let model = p.0 == r.0 && (p.1, p.2) >= (r.1, r.2);
            prop_assert_eq!(pv.satisfies(&rv), model);
        }

        #[test]
        fn display_round_trips(a in any::<u64>(), b in any::<u64>(), c in any::<u64>()) {
            let ver = Version::new(a, b, c);
            prop_assert_eq!(ver.to_string().parse::<Version>(), Ok(ver));
        }
    }
}
