//! `CapabilitySet`: what a node offers (WIRE.md §10.4), with the exact
//! member order and JSON types of v0.11, plus the binding normalisation of
//! MESH2.md §3.5 (lowercase names in, lowercase names out).
//!
//! Serde derives give the wire form directly: structs serialise their
//! members in declaration order, unit enum variants as their capitalised
//! names, `Option` as `null`, `(String, String)` as a two-element array —
//! exactly what v0.11 emits and expects.

use serde::{Deserialize, Serialize};

/// Everything a node announces about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    /// CPU, memory, GPUs, storage, network, accelerators.
    pub hardware: Hardware,
    /// OS, runtimes, frameworks, drivers.
    pub software: Software,
    /// Models the node can serve.
    pub models: Vec<ModelInfo>,
    /// Tools the node can run.
    pub tools: Vec<ToolInfo>,
    /// Free-form tags. Reserved prefixes: `nat:`, `scope:`, `subprotocol:`.
    pub tags: Vec<String>,
    /// Service limits.
    pub limits: Limits,
}

/// Prefix of the NAT class tags (`nat:open`, `nat:cone`, …).
pub const NAT_TAG_PREFIX: &str = "nat:";

impl CapabilitySet {
    /// Replaces every `nat:*` tag with exactly `nat_tag` (what a
    /// nat-traversal build does before announcing, MESH2.md §3.1).
    pub fn set_nat_tag(&mut self, nat_tag: &str) {
        self.tags.retain(|t| !t.starts_with(NAT_TAG_PREFIX));
        self.tags.push(nat_tag.to_owned());
    }
}

/// Hardware resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// Physical cores.
    pub cpu_cores: u16,
    /// Hardware threads.
    pub cpu_threads: u16,
    /// Main memory, MiB.
    pub memory_mb: u32,
    /// The primary GPU, if any. Only the primary GPU satisfies "require GPU".
    pub gpu: Option<GpuInfo>,
    /// Further GPUs (count towards total VRAM only).
    pub additional_gpus: Vec<GpuInfo>,
    /// Storage, MiB.
    pub storage_mb: u64,
    /// Network bandwidth, Mbit/s.
    pub network_mbps: u32,
    /// Non-GPU accelerators.
    pub accelerators: Vec<AcceleratorInfo>,
}

impl Hardware {
    /// VRAM of the primary GPU plus every additional GPU, MiB (what
    /// "min VRAM" and the VRAM score use).
    pub fn total_vram_mb(&self) -> u64 {
        self.gpu
            .iter()
            .chain(&self.additional_gpus)
            .map(|g| u64::from(g.vram_mb))
            .sum()
    }
}

/// One GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// Vendor.
    pub vendor: GpuVendor,
    /// Model name.
    pub model: String,
    /// VRAM, MiB.
    pub vram_mb: u32,
    /// Compute units / SMs.
    pub compute_units: u16,
    /// Tensor cores.
    pub tensor_cores: u16,
    /// FP16 TFLOPS × 10, truncated.
    pub fp16_tflops_x10: u32,
}

/// A GPU vendor. The wire uses the capitalised variant names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GpuVendor {
    /// Not one of the others.
    #[default]
    Unknown,
    /// NVIDIA.
    Nvidia,
    /// AMD.
    Amd,
    /// Intel.
    Intel,
    /// Apple.
    Apple,
    /// Qualcomm.
    Qualcomm,
}

impl GpuVendor {
    const ALL: [(GpuVendor, &'static str); 6] = [
        (GpuVendor::Unknown, "unknown"),
        (GpuVendor::Nvidia, "nvidia"),
        (GpuVendor::Amd, "amd"),
        (GpuVendor::Intel, "intel"),
        (GpuVendor::Apple, "apple"),
        (GpuVendor::Qualcomm, "qualcomm"),
    ];

    /// Parses a binding name case-insensitively (`nvidia`, `AMD`, …,
    /// `unknown`). A name that is none of them is `None` — unlike v0.11,
    /// which turned a typo into a filter for the Unknown vendor.
    pub fn parse_binding(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(v, _)| *v)
    }

    /// The lowercase binding name.
    pub fn binding_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("unknown", |(_, n)| n)
    }
}

/// A non-GPU accelerator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceleratorInfo {
    /// Kind.
    pub accel_type: AcceleratorType,
    /// Model name.
    pub model: String,
    /// Memory, MiB.
    pub memory_mb: u32,
    /// TOPS × 10, truncated.
    pub tops_x10: u16,
}

/// Accelerator kind. The wire uses the capitalised variant names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AcceleratorType {
    /// Not one of the others.
    #[default]
    Unknown,
    /// Tensor processing unit.
    Tpu,
    /// Neural processing unit.
    Npu,
    /// FPGA.
    Fpga,
    /// ASIC.
    Asic,
    /// DSP.
    Dsp,
}

impl AcceleratorType {
    const ALL: [(AcceleratorType, &'static str); 6] = [
        (AcceleratorType::Unknown, "unknown"),
        (AcceleratorType::Tpu, "tpu"),
        (AcceleratorType::Npu, "npu"),
        (AcceleratorType::Fpga, "fpga"),
        (AcceleratorType::Asic, "asic"),
        (AcceleratorType::Dsp, "dsp"),
    ];

    /// Parses a binding name case-insensitively; anything else is `None`.
    pub fn parse_binding(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(v, _)| *v)
    }

    /// The lowercase binding name.
    pub fn binding_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("unknown", |(_, n)| n)
    }
}

/// Software environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    /// OS name.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// (name, version) of language runtimes.
    pub runtimes: Vec<(String, String)>,
    /// (name, version) of ML frameworks.
    pub frameworks: Vec<(String, String)>,
    /// CUDA version, if any.
    pub cuda_version: Option<String>,
    /// (name, version) of drivers.
    pub drivers: Vec<(String, String)>,
}

/// A model the node can serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model id (what "models" filters match).
    pub model_id: String,
    /// Family name.
    pub family: String,
    /// Parameters in billions × 10, truncated.
    pub parameters_b_x10: u32,
    /// Context length, tokens.
    pub context_length: u32,
    /// Quantization, if any.
    pub quantization: Option<String>,
    /// Input/output modalities.
    pub modalities: Vec<Modality>,
    /// Throughput, tokens/s.
    pub tokens_per_sec: u32,
    /// Whether the model is loaded now.
    pub loaded: bool,
}

/// A model modality. The wire uses the capitalised variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Modality {
    /// Text.
    Text,
    /// Images.
    Image,
    /// Audio.
    Audio,
    /// Video.
    Video,
    /// Source code.
    Code,
    /// Embeddings.
    Embedding,
    /// Tool use.
    ToolUse,
}

impl Modality {
    /// Parses a binding name case-insensitively: `text`, `image`, `audio`,
    /// `video`, `code`, `embedding`, `tool-use` / `tool_use` / `tooluse`.
    /// Anything else is `None` on every surface (v0.11's Node and Python
    /// bindings silently turned it into Text).
    pub fn parse_binding(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "text" => Self::Text,
            "image" => Self::Image,
            "audio" => Self::Audio,
            "video" => Self::Video,
            "code" => Self::Code,
            "embedding" => Self::Embedding,
            "tool-use" | "tool_use" | "tooluse" => Self::ToolUse,
            _ => return None,
        })
    }

    /// The lowercase binding name (`tool-use` for ToolUse).
    pub fn binding_name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Code => "code",
            Self::Embedding => "embedding",
            Self::ToolUse => "tool-use",
        }
    }
}

/// A tool the node can run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Tool id (what "tools" filters match).
    pub tool_id: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// JSON schema of the input, if published.
    pub input_schema: Option<String>,
    /// JSON schema of the output, if published.
    pub output_schema: Option<String>,
    /// What the tool needs.
    pub requires: Vec<String>,
    /// Typical run time, ms.
    pub estimated_time_ms: u32,
    /// Whether calls are independent.
    pub stateless: bool,
}

/// Service limits (0 = unspecified).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Concurrent requests.
    pub max_concurrent_requests: u32,
    /// Tokens per request.
    pub max_tokens_per_request: u32,
    /// Requests per minute.
    pub rate_limit_rpm: u32,
    /// Batch size.
    pub max_batch_size: u32,
    /// Input bytes.
    pub max_input_bytes: u32,
    /// Output bytes.
    pub max_output_bytes: u32,
}

/// Binding helper: saturates an integer from a binding into a u16 field
/// (MESH2.md §3.5).
pub fn saturate_u16(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// Binding helper: saturates an integer from a binding into a u32 field.
pub fn saturate_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Binding helper: a TFLOPS / TOPS / billions-of-parameters figure stored
/// ×10 and truncated, saturating; NaN and negatives become 0.
pub fn times_ten_truncated(value: f64) -> u32 {
    // `as` saturates floats to the integer range and maps NaN to 0.
    (value * 10.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_names_round_trip_and_typos_are_refused() {
        for (vendor, name) in GpuVendor::ALL {
            assert_eq!(GpuVendor::parse_binding(name), Some(vendor));
            assert_eq!(GpuVendor::parse_binding(&name.to_uppercase()), Some(vendor));
            assert_eq!(vendor.binding_name(), name);
        }
        assert_eq!(GpuVendor::parse_binding("nvidea"), None);
        for (kind, name) in AcceleratorType::ALL {
            assert_eq!(AcceleratorType::parse_binding(name), Some(kind));
            assert_eq!(kind.binding_name(), name);
        }
        assert_eq!(AcceleratorType::parse_binding("gpu"), None);
        for name in ["tool-use", "TOOL_USE", "ToolUse"] {
            assert_eq!(Modality::parse_binding(name), Some(Modality::ToolUse));
        }
        assert_eq!(Modality::parse_binding("smell"), None);
        assert_eq!(Modality::ToolUse.binding_name(), "tool-use");
    }

    #[test]
    fn wire_names_are_capitalised() {
        let json = serde_json::to_string(&(GpuVendor::Nvidia, Modality::ToolUse)).unwrap();
        assert_eq!(json, r#"["Nvidia","ToolUse"]"#);
        let json = serde_json::to_string(&AcceleratorType::Fpga).unwrap();
        assert_eq!(json, r#""Fpga""#);
    }

    #[test]
    fn nat_tag_is_replaced_not_added() {
        let mut caps = CapabilitySet {
            tags: vec!["nat:cone".into(), "gpu".into(), "nat:open".into()],
            ..CapabilitySet::default()
        };
        caps.set_nat_tag("nat:symmetric");
        assert_eq!(
            caps.tags,
            vec!["gpu".to_owned(), "nat:symmetric".to_owned()]
        );
    }

    #[test]
    fn binding_integers_saturate() {
        assert_eq!(saturate_u16(70_000), u16::MAX);
        assert_eq!(saturate_u16(7), 7);
        assert_eq!(saturate_u32(u64::MAX), u32::MAX);
        assert_eq!(times_ten_truncated(82.58), 825);
        assert_eq!(times_ten_truncated(f64::NAN), 0);
        assert_eq!(times_ten_truncated(-1.0), 0);
        assert_eq!(times_ten_truncated(1e30), u32::MAX);
    }

    #[test]
    fn total_vram_counts_every_gpu() {
        let gpu = |vram_mb| GpuInfo {
            vram_mb,
            ..GpuInfo::default()
        };
        let hw = Hardware {
            gpu: Some(gpu(24_576)),
            additional_gpus: vec![gpu(u32::MAX), gpu(1)],
            ..Hardware::default()
        };
        assert_eq!(hw.total_vram_mb(), 24_576 + u64::from(u32::MAX) + 1);
    }
}
