"""Typed capability sets: what a node announces (:meth:`Mesh.announce`) and
what the index holds (:meth:`Mesh.capabilities`).

::

    from netmesh import Capabilities, GpuInfo, Hardware, ModelInfo

    caps = Capabilities(
        hardware=Hardware(memory_mb=65536, gpu=GpuInfo(vendor="nvidia", vram_mb=24576)),
        models=[ModelInfo(model_id="llama-3-8b", context_length=8192, modalities=["text"])],
        tags=["zone:eu"],
    )
    mesh.announce(caps)

Every member of libnet's ``CapabilitySet`` (WIRE.md §10.4) has a field;
the defaults are what libnet announces for a member left out. The
enumerations (:class:`GpuVendor`, :class:`AcceleratorType`,
:class:`Modality`) take the lowercase binding names of MESH2.md §3.5, any
case, and hold them lowercase; the wire's capitalised names ("Nvidia",
"ToolUse") are converted on the way in and out. A name that is none of
them raises :class:`MeshCapabilitiesError` (v0.11 silently turned it into
"Unknown" or "Text"). Figures stored ×10 on the wire (FP16 TFLOPS, TOPS,
billions of parameters) keep their ×10 integer form, so a set reads back
exactly as it was announced.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

from ._ffi import lib
from .errors import MeshCapabilitiesError

__all__ = [
    "Capabilities",
    "Hardware",
    "GpuInfo",
    "AcceleratorInfo",
    "Software",
    "ModelInfo",
    "ToolInfo",
    "Limits",
    "GpuVendor",
    "AcceleratorType",
    "Modality",
    "IndexedNode",
]

_E = TypeVar("_E", bound="_Named")


class _Named(str, enum.Enum):
    """A str enum whose values are the lowercase binding names."""

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
        return {}

    @classmethod
    def parse(cls: Type[_E], name: Any) -> _E:
        """The member for ``name`` (a member, or its binding or wire name in
        any case). MeshCapabilitiesError for anything else."""
        if isinstance(name, cls):
            return name
        if isinstance(name, str):
            key = name.lower()
            key = cls._aliases().get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        raise MeshCapabilitiesError(
            lib.NET_ERR_MESH_CAPABILITIES,
            f"unknown {cls.__name__} {name!r} (known: {', '.join(m.value for m in cls)})",
        )

    @property
    def wire(self) -> str:
        """The capitalised name the wire JSON uses."""
        return self.name.title().replace("_", "")

    def __str__(self) -> str:
        return str(self.value)


class GpuVendor(_Named):
    """A GPU vendor."""

    UNKNOWN = "unknown"
    NVIDIA = "nvidia"
    AMD = "amd"
    INTEL = "intel"
    APPLE = "apple"
    QUALCOMM = "qualcomm"


class AcceleratorType(_Named):
    """A non-GPU accelerator kind."""

    UNKNOWN = "unknown"
    TPU = "tpu"
    NPU = "npu"
    FPGA = "fpga"
    ASIC = "asic"
    DSP = "dsp"


class Modality(_Named):
    """A model modality (``tool_use`` and ``tooluse`` parse as ``tool-use``)."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    CODE = "code"
    EMBEDDING = "embedding"
    TOOL_USE = "tool-use"

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
        return {"tool_use": "tool-use", "tooluse": "tool-use"}


def _pairs(items: Any) -> List[Tuple[str, str]]:
    return [(str(name), str(version)) for name, version in items]


@dataclasses.dataclass
class GpuInfo:
    """One GPU."""

    vendor: GpuVendor = GpuVendor.UNKNOWN
    #: Model name.
    model: str = ""
    #: VRAM, MiB.
    vram_mb: int = 0
    #: Compute units / SMs.
    compute_units: int = 0
    #: Tensor cores.
    tensor_cores: int = 0
    #: FP16 TFLOPS × 10, truncated.
    fp16_tflops_x10: int = 0

    def __post_init__(self) -> None:
        self.vendor = GpuVendor.parse(self.vendor)


@dataclasses.dataclass
class AcceleratorInfo:
    """One non-GPU accelerator."""

    accel_type: AcceleratorType = AcceleratorType.UNKNOWN
    #: Model name.
    model: str = ""
    #: Memory, MiB.
    memory_mb: int = 0
    #: TOPS × 10, truncated.
    tops_x10: int = 0

    def __post_init__(self) -> None:
        self.accel_type = AcceleratorType.parse(self.accel_type)


@dataclasses.dataclass
class Hardware:
    """A node's hardware."""

    #: Physical cores.
    cpu_cores: int = 0
    #: Hardware threads.
    cpu_threads: int = 0
    #: Main memory, MiB.
    memory_mb: int = 0
    #: The primary GPU (None: none); only it satisfies ``require_gpu``.
    gpu: Optional[GpuInfo] = None
    #: Further GPUs (count towards the total VRAM only).
    additional_gpus: List[GpuInfo] = dataclasses.field(default_factory=list)
    #: Storage, MiB.
    storage_mb: int = 0
    #: Network bandwidth, Mbit/s.
    network_mbps: int = 0
    #: Non-GPU accelerators.
    accelerators: List[AcceleratorInfo] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Software:
    """A node's software environment; runtimes, frameworks and drivers are
    (name, version) pairs."""

    os: str = ""
    os_version: str = ""
    runtimes: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    frameworks: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    #: CUDA version (None: no CUDA).
    cuda_version: Optional[str] = None
    drivers: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.runtimes = _pairs(self.runtimes)
        self.frameworks = _pairs(self.frameworks)
        self.drivers = _pairs(self.drivers)


@dataclasses.dataclass
class ModelInfo:
    """A model the node can serve."""

    #: What ``require_models`` filters match.
    model_id: str = ""
    family: str = ""
    #: Billions of parameters × 10, truncated.
    parameters_b_x10: int = 0
    #: Context length, tokens.
    context_length: int = 0
    #: Quantization (None: none).
    quantization: Optional[str] = None
    modalities: List[Modality] = dataclasses.field(default_factory=list)
    #: Throughput, tokens/s.
    tokens_per_sec: int = 0
    #: Whether the model is loaded now.
    loaded: bool = False

    def __post_init__(self) -> None:
        self.modalities = [Modality.parse(m) for m in self.modalities]


@dataclasses.dataclass
class ToolInfo:
    """A tool the node can run."""

    #: What ``require_tools`` filters match.
    tool_id: str = ""
    #: Display name.
    name: str = ""
    version: str = ""
    #: JSON schema of the input (None: unpublished).
    input_schema: Optional[str] = None
    #: JSON schema of the output (None: unpublished).
    output_schema: Optional[str] = None
    #: What the tool needs.
    requires: List[str] = dataclasses.field(default_factory=list)
    #: Typical run time, ms.
    estimated_time_ms: int = 0
    #: Whether calls are independent.
    stateless: bool = False


@dataclasses.dataclass
class Limits:
    """Service limits (0: unspecified)."""

    max_concurrent_requests: int = 0
    max_tokens_per_request: int = 0
    rate_limit_rpm: int = 0
    max_batch_size: int = 0
    max_input_bytes: int = 0
    max_output_bytes: int = 0


@dataclasses.dataclass
class Capabilities:
    """Everything a node announces about itself."""

    hardware: Hardware = dataclasses.field(default_factory=Hardware)
    software: Software = dataclasses.field(default_factory=Software)
    models: List[ModelInfo] = dataclasses.field(default_factory=list)
    tools: List[ToolInfo] = dataclasses.field(default_factory=list)
    #: Free-form; the prefixes ``nat:``, ``scope:`` and ``subprotocol:`` are reserved.
    tags: List[str] = dataclasses.field(default_factory=list)
    limits: Limits = dataclasses.field(default_factory=Limits)

    def to_json(self) -> Dict[str, Any]:
        """The WIRE.md §10.4 JSON object ``net_mesh_announce`` takes."""
        return _to_wire(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Capabilities":
        """A set from its WIRE.md §10.4 JSON object (as the index returns it;
        members left out take their defaults)."""
        return _from_wire(cls, data)  # type: ignore[no-any-return]


def _to_wire(value: Any) -> Any:
    if isinstance(value, _Named):
        return value.wire
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


# The dataclass each nested member decodes into.
_NESTED: Dict[Tuple[type, str], type] = {
    (Capabilities, "hardware"): Hardware,
    (Capabilities, "software"): Software,
    (Capabilities, "models"): ModelInfo,
    (Capabilities, "tools"): ToolInfo,
    (Capabilities, "limits"): Limits,
    (Hardware, "gpu"): GpuInfo,
    (Hardware, "additional_gpus"): GpuInfo,
    (Hardware, "accelerators"): AcceleratorInfo,
}


def _from_wire(cls: type, data: Dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise MeshCapabilitiesError(
            lib.NET_ERR_MESH_CAPABILITIES, f"{cls.__name__}: expected an object, got {type(data).__name__}"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise MeshCapabilitiesError(lib.NET_ERR_MESH_CAPABILITIES, f"{cls.__name__}: unknown key {unknown[0]!r}")
    kwargs: Dict[str, Any] = {}
    for name, value in data.items():
        nested = _NESTED.get((cls, name))
        if nested is not None and isinstance(value, list):
            value = [_from_wire(nested, v) for v in value]
        elif nested is not None and value is not None:
            value = _from_wire(nested, value)
        kwargs[name] = value
    return cls(**kwargs)


def capabilities_json(capabilities: Any) -> Dict[str, Any]:
    """The announce JSON for a :class:`Capabilities` or a plain dict (a dict
    passes as it is: libnet names any bad key)."""
    if isinstance(capabilities, Capabilities):
        return capabilities.to_json()
    if isinstance(capabilities, dict):
        return capabilities
    raise TypeError(f"capabilities must be Capabilities or a dict, not {type(capabilities).__name__}")


@dataclasses.dataclass(frozen=True)
class IndexedNode:
    """One live node of the capability index (:meth:`Mesh.capabilities`)."""

    node_id: int
    #: The announcement's version (newer replaces older).
    version: int
    #: When the node signed it, ns since the UNIX epoch.
    timestamp_ns: int
    #: When the index drops it, ns since the UNIX epoch.
    expires_at_ns: int
    #: Forwarding hops it took to reach this node (0: this node's own).
    hop_count: int
    #: The node's reflexive address, if it announced one.
    reflex_addr: Optional[str]
    capabilities: Capabilities

    @classmethod
    def _from_json(cls, j: Dict[str, Any]) -> "IndexedNode":
        return cls(
            node_id=int(j["node_id"]),
            version=int(j["version"]),
            timestamp_ns=int(j["timestamp_ns"]),
            expires_at_ns=int(j["expires_at_ns"]),
            hop_count=int(j["hop_count"]),
            reflex_addr=j.get("reflex_addr"),
            capabilities=Capabilities.from_json(j["capabilities"]),
        )
