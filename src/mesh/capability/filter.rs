//! `CapabilityFilter`: which [`CapabilitySet`]s a query (or a channel's
//! publish/subscribe policy) accepts, per MESH2.md §3.4 and COMPUTE.md §4.1.
//!
//! | Constraint | Matches when |
//! |---|---|
//! | `require_tags` | **all** present |
//! | `require_models` / `require_tools` | **any** listed id present |
//! | `min_memory_mb` | memory_mb ≥ value |
//! | `require_gpu` | a primary GPU exists (additional GPUs alone do not count) |
//! | `gpu_vendor` (implies GPU) | primary GPU vendor equal |
//! | `min_vram_mb` (implies GPU) | primary + additional VRAM ≥ value |
//! | `min_context_length` | some model's context_length ≥ value |
//! | `require_modalities` | each one offered by some model |
//!
//! The empty filter matches everything. The JSON form uses these member
//! names; every member is optional; unknown members, unknown vendor or
//! modality names are errors naming the culprit. Thresholds are compared
//! as numbers: `1` and `1.0` are the same bound, `1.5` means "at least 2"
//! (the fields are integers), integers above 2^53 are exact.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::caps::{CapabilitySet, GpuVendor, Modality};

/// A lower bound on an integer field, from any JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Threshold {
    /// The value must be ≥ this.
    AtLeast(u64),
    /// Above every u64 (a bound ≥ 2^64): nothing satisfies it.
    Unreachable,
}

impl Threshold {
    /// `value ≥ self`.
    pub fn is_met_by(self, value: u64) -> bool {
        match self {
            Self::AtLeast(min) => value >= min,
            Self::Unreachable => false,
        }
    }

    /// The bound a JSON number expresses over integer values: negatives and
    /// zero bind nothing, fractions round up, exact integers stay exact.
    pub fn from_number(number: &serde_json::Number) -> Self {
        if let Some(min) = number.as_u64() {
            return Self::AtLeast(min);
        }
        if number.as_i64().is_some() {
            return Self::AtLeast(0);
        }
        let real = number.as_f64().unwrap_or(0.0);
        // 2^64 as f64; every f64 at or above it exceeds u64::MAX.
        const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
        if real.is_nan() || real <= 0.0 {
            Self::AtLeast(0)
        } else if real.ceil() >= TWO_POW_64 {
            Self::Unreachable
        } else {
            // Exact: a finite f64 in (0, 2^64) rounds up to an integer < 2^64.
            Self::AtLeast(real.ceil() as u64)
        }
    }
}

impl From<u64> for Threshold {
    fn from(min: u64) -> Self {
        Self::AtLeast(min)
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AtLeast(min) => s.serialize_u64(*min),
            Self::Unreachable => s.serialize_f64(18_446_744_073_709_551_616.0),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        Ok(Self::from_number(&number))
    }
}

/// Constraints on a [`CapabilitySet`]; see the module table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilityFilter {
    /// Tags that must **all** be present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require_tags: Vec<String>,
    /// Model ids of which **any** must be present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require_models: Vec<String>,
    /// Tool ids of which **any** must be present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require_tools: Vec<String>,
    /// Minimum memory, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_memory_mb: Option<Threshold>,
    /// A primary GPU must exist.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_gpu: bool,
    /// The primary GPU's vendor (implies a GPU).
    #[serde(skip_serializing_if = "Option::is_none", with = "vendor_binding")]
    pub gpu_vendor: Option<GpuVendor>,
    /// Minimum VRAM over all GPUs, MiB (implies a primary GPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_vram_mb: Option<Threshold>,
    /// Minimum context length of some model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_context_length: Option<Threshold>,
    /// Modalities each of which some model must offer.
    #[serde(skip_serializing_if = "Vec::is_empty", with = "modality_bindings")]
    pub require_modalities: Vec<Modality>,
}

impl CapabilityFilter {
    /// The filter that matches everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// A message naming the bad member or value.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    /// Requires `tag` (all required tags must be present).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.require_tags.push(tag.into());
        self
    }

    /// Accepts `model_id` (any accepted model suffices).
    pub fn with_model(mut self, model_id: impl Into<String>) -> Self {
        self.require_models.push(model_id.into());
        self
    }

    /// Accepts `tool_id` (any accepted tool suffices).
    pub fn with_tool(mut self, tool_id: impl Into<String>) -> Self {
        self.require_tools.push(tool_id.into());
        self
    }

    /// Requires at least `mb` MiB of memory.
    pub fn with_min_memory_mb(mut self, mb: u64) -> Self {
        self.min_memory_mb = Some(Threshold::AtLeast(mb));
        self
    }

    /// Requires a primary GPU.
    pub fn with_gpu(mut self) -> Self {
        self.require_gpu = true;
        self
    }

    /// Requires a primary GPU from `vendor`.
    pub fn with_gpu_vendor(mut self, vendor: GpuVendor) -> Self {
        self.gpu_vendor = Some(vendor);
        self
    }

    /// Requires a primary GPU and at least `mb` MiB of VRAM in total.
    pub fn with_min_vram_mb(mut self, mb: u64) -> Self {
        self.min_vram_mb = Some(Threshold::AtLeast(mb));
        self
    }

    /// Requires some model with a context of at least `tokens`.
    pub fn with_min_context_length(mut self, tokens: u64) -> Self {
        self.min_context_length = Some(Threshold::AtLeast(tokens));
        self
    }

    /// Requires some model offering `modality`.
    pub fn with_modality(mut self, modality: Modality) -> Self {
        self.require_modalities.push(modality);
        self
    }

    /// Whether `caps` satisfies every constraint.
    pub fn matches(&self, caps: &CapabilitySet) -> bool {
        let hardware = &caps.hardware;
        let primary_gpu = hardware.gpu.as_ref();
        let tags_ok = self
            .require_tags
            .iter()
            .all(|tag| caps.tags.iter().any(|t| t == tag));
        let models_ok = self.require_models.is_empty()
            || caps
                .models
                .iter()
                .any(|m| self.require_models.contains(&m.model_id));
        let tools_ok = self.require_tools.is_empty()
            || caps
                .tools
                .iter()
                .any(|t| self.require_tools.contains(&t.tool_id));
        let memory_ok = self
            .min_memory_mb
            .is_none_or(|min| min.is_met_by(u64::from(hardware.memory_mb)));
        let gpu_ok = !self.require_gpu || primary_gpu.is_some();
        let vendor_ok = self
            .gpu_vendor
            .is_none_or(|vendor| primary_gpu.is_some_and(|g| g.vendor == vendor));
        let vram_ok = self
            .min_vram_mb
            .is_none_or(|min| primary_gpu.is_some() && min.is_met_by(hardware.total_vram_mb()));
        let context_ok = self.min_context_length.is_none_or(|min| {
            caps.models
                .iter()
                .any(|m| min.is_met_by(u64::from(m.context_length)))
        });
        let modalities_ok = self
            .require_modalities
            .iter()
            .all(|wanted| caps.models.iter().any(|m| m.modalities.contains(wanted)));
        tags_ok
            && models_ok
            && tools_ok
            && memory_ok
            && gpu_ok
            && vendor_ok
            && vram_ok
            && context_ok
            && modalities_ok
    }
}

/// `gpu_vendor` as a lowercase binding name, parsed case-insensitively.
mod vendor_binding {
    use super::*;

    pub fn serialize<S: Serializer>(vendor: &Option<GpuVendor>, s: S) -> Result<S::Ok, S::Error> {
        match vendor {
            Some(v) => s.serialize_str(v.binding_name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GpuVendor>, D::Error> {
        let name = String::deserialize(d)?;
        GpuVendor::parse_binding(&name).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "gpu_vendor: unknown vendor {name:?} (expected nvidia, amd, intel, apple, qualcomm or unknown)"
            ))
        })
    }
}

/// `require_modalities` as lowercase binding names.
mod modality_bindings {
    use super::*;

    pub fn serialize<S: Serializer>(modalities: &[Modality], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(modalities.iter().map(|m| m.binding_name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Modality>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|name| {
                Modality::parse_binding(name).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "require_modalities: unknown modality {name:?} (expected text, image, audio, video, code, embedding or tool-use)"
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::capability::caps::{GpuInfo, ModelInfo, ToolInfo};

    fn gpu(vendor: GpuVendor, vram_mb: u32) -> GpuInfo {
        GpuInfo {
            vendor,
            vram_mb,
            ..GpuInfo::default()
        }
    }

    fn model(id: &str, context_length: u32, modalities: &[Modality]) -> ModelInfo {
        ModelInfo {
            model_id: id.into(),
            context_length,
            modalities: modalities.to_vec(),
            ..ModelInfo::default()
        }
    }

    fn sample() -> CapabilitySet {
        let mut caps = CapabilitySet {
            tags: vec!["a".into(), "b".into()],
            ..CapabilitySet::default()
        };
        caps.hardware.memory_mb = 32_768;
        caps.hardware.gpu = Some(gpu(GpuVendor::Nvidia, 24_576));
        caps.hardware.additional_gpus = vec![gpu(GpuVendor::Amd, 8_192)];
        caps.models = vec![
            model("llama", 8_192, &[Modality::Text]),
            model("clip", 77, &[Modality::Image]),
        ];
        caps.tools = vec![ToolInfo {
            tool_id: "grep".into(),
            ..ToolInfo::default()
        }];
        caps
    }

    #[test]
    fn each_constraint_per_the_spec_table() {
        let caps = sample();
        let yes = |f: CapabilityFilter| assert!(f.matches(&caps), "{f:?}");
        let no = |f: CapabilityFilter| assert!(!f.matches(&caps), "{f:?}");
        yes(CapabilityFilter::new());
        yes(CapabilityFilter::new().with_tag("a").with_tag("b"));
        no(CapabilityFilter::new().with_tag("a").with_tag("c"));
        yes(CapabilityFilter::new()
            .with_model("nope")
            .with_model("clip"));
        no(CapabilityFilter::new().with_model("nope"));
        yes(CapabilityFilter::new().with_tool("grep"));
        no(CapabilityFilter::new().with_tool("sed"));
        yes(CapabilityFilter::new().with_min_memory_mb(32_768));
        no(CapabilityFilter::new().with_min_memory_mb(32_769));
        yes(CapabilityFilter::new().with_gpu());
        yes(CapabilityFilter::new().with_gpu_vendor(GpuVendor::Nvidia));
        // Only the primary GPU's vendor counts.
        no(CapabilityFilter::new().with_gpu_vendor(GpuVendor::Amd));
        // VRAM sums every GPU.
        yes(CapabilityFilter::new().with_min_vram_mb(24_576 + 8_192));
        no(CapabilityFilter::new().with_min_vram_mb(24_576 + 8_193));
        yes(CapabilityFilter::new().with_min_context_length(8_192));
        no(CapabilityFilter::new().with_min_context_length(8_193));
        yes(CapabilityFilter::new()
            .with_modality(Modality::Text)
            .with_modality(Modality::Image));
        no(CapabilityFilter::new().with_modality(Modality::Audio));
    }

    #[test]
    fn additional_gpus_alone_are_not_a_gpu() {
        let mut caps = sample();
        caps.hardware.gpu = None;
        assert!(!CapabilityFilter::new().with_gpu().matches(&caps));
        assert!(!CapabilityFilter::new().with_min_vram_mb(1).matches(&caps));
        assert!(
            !CapabilityFilter::new()
                .with_gpu_vendor(GpuVendor::Amd)
                .matches(&caps)
        );
    }

    #[test]
    fn json_thresholds_compare_as_numbers() {
        let caps = sample();
        let f = |json: &str| CapabilityFilter::from_json(json).unwrap();
        assert_eq!(f(r#"{"min_memory_mb":1}"#), f(r#"{"min_memory_mb":1.0}"#));
        assert!(f(r#"{"min_memory_mb":32768.0}"#).matches(&caps));
        assert!(!f(r#"{"min_memory_mb":32767.5}"#).matches(&{
            let mut c = caps.clone();
            c.hardware.memory_mb = 32_767;
            c
        }));
        assert!(f(r#"{"min_memory_mb":-5}"#).matches(&caps));
        assert!(f(r#"{"min_memory_mb":0.0}"#).matches(&caps));
        assert!(!f(r#"{"min_memory_mb":1e300}"#).matches(&caps));
        // Exact integers beyond 2^53.
        let big = f(r#"{"min_vram_mb":9007199254740993}"#);
        assert_eq!(
            big.min_vram_mb,
            Some(Threshold::AtLeast(9_007_199_254_740_993))
        );
        assert_eq!(
            f(r#"{"min_vram_mb":18446744073709551615}"#).min_vram_mb,
            Some(Threshold::AtLeast(u64::MAX))
        );
        assert_eq!(
            f(r#"{"min_vram_mb":18446744073709551616}"#).min_vram_mb,
            Some(Threshold::Unreachable)
        );
        assert!(Threshold::AtLeast(9_007_199_254_740_993).is_met_by(9_007_199_254_740_993));
        assert!(!Threshold::AtLeast(9_007_199_254_740_993).is_met_by(9_007_199_254_740_992));
    }

    #[test]
    fn json_round_trip_and_errors_name_the_culprit() {
        let filter = CapabilityFilter::new()
            .with_tag("gpu")
            .with_gpu_vendor(GpuVendor::Nvidia)
            .with_modality(Modality::ToolUse)
            .with_min_vram_mb(1024);
        let json = serde_json::to_string(&filter).unwrap();
        assert_eq!(
            json,
            r#"{"require_tags":["gpu"],"gpu_vendor":"nvidia","min_vram_mb":1024,"require_modalities":["tool-use"]}"#
        );
        assert_eq!(CapabilityFilter::from_json(&json).unwrap(), filter);
        assert_eq!(
            CapabilityFilter::from_json(
                r#"{"gpu_vendor":"NVIDIA","require_modalities":["Tool_Use"]}"#
            )
            .unwrap(),
            CapabilityFilter::new()
                .with_gpu_vendor(GpuVendor::Nvidia)
                .with_modality(Modality::ToolUse)
        );
        for (json, culprit) in [
            (r#"{"gpu_vendr":"nvidia"}"#, "gpu_vendr"),
            (r#"{"gpu_vendor":"nvidea"}"#, "nvidea"),
            (r#"{"require_modalities":["smell"]}"#, "smell"),
            (r#"{"min_memory_mb":"lots"}"#, "lots"),
        ] {
            let err = CapabilityFilter::from_json(json).unwrap_err();
            assert!(err.contains(culprit), "{err}");
        }
    }
}
