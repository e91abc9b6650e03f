package netmesh

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The capability set a node announces (Mesh.Announce) and the index
// returns (Mesh.Capabilities): every member of libnet's CapabilitySet
// (WIRE.md §10.4). Zero members announce their defaults. Enumerations
// (GPU vendor, accelerator type, modality) use the lowercase binding names
// of MESH2.md §3.5 in Go and the capitalised variant names on the wire;
// the JSON methods convert, and a name that is none of them is an error
// (v0.11 turned such typos into "Unknown" or "Text").

// Capabilities is what a node announces about itself.
type Capabilities struct {
	Hardware Hardware    `json:"hardware"`
	Software Software    `json:"software"`
	Models   []ModelInfo `json:"models,omitempty"`
	Tools    []ToolInfo  `json:"tools,omitempty"`
	// Tags are free-form; the prefixes "nat:", "scope:" and "subprotocol:"
	// are reserved.
	Tags   []string `json:"tags,omitempty"`
	Limits Limits   `json:"limits"`
}

// Hardware is a node's hardware.
type Hardware struct {
	CPUCores   uint16 `json:"cpu_cores,omitempty"`   // physical cores
	CPUThreads uint16 `json:"cpu_threads,omitempty"` // hardware threads
	MemoryMB   uint32 `json:"memory_mb,omitempty"`   // MiB
	// GPU is the primary GPU (nil: none); only it satisfies RequireGPU.
	GPU *GPUInfo `json:"gpu,omitempty"`
	// AdditionalGPUs count towards the total VRAM only.
	AdditionalGPUs []GPUInfo         `json:"additional_gpus,omitempty"`
	StorageMB      uint64            `json:"storage_mb,omitempty"`   // MiB
	NetworkMbps    uint32            `json:"network_mbps,omitempty"` // Mbit/s
	Accelerators   []AcceleratorInfo `json:"accelerators,omitempty"` // non-GPU
}

// GPUInfo is one GPU.
type GPUInfo struct {
	Vendor        GPUVendor `json:"vendor"`
	Model         string    `json:"model"`
	VRAMMB        uint32    `json:"vram_mb"`         // MiB
	ComputeUnits  uint16    `json:"compute_units"`   // compute units / SMs
	TensorCores   uint16    `json:"tensor_cores"`    // tensor cores
	FP16TflopsX10 uint32    `json:"fp16_tflops_x10"` // FP16 TFLOPS × 10, truncated
}

// AcceleratorInfo is one non-GPU accelerator.
type AcceleratorInfo struct {
	Type     AcceleratorType `json:"accel_type"`
	Model    string          `json:"model"`
	MemoryMB uint32          `json:"memory_mb"` // MiB
	TopsX10  uint16          `json:"tops_x10"`  // TOPS × 10, truncated
}

// Software is a node's software environment.
type Software struct {
	OS         string        `json:"os,omitempty"`
	OSVersion  string        `json:"os_version,omitempty"`
	Runtimes   []NameVersion `json:"runtimes,omitempty"`   // language runtimes
	Frameworks []NameVersion `json:"frameworks,omitempty"` // ML frameworks
	// CUDAVersion is nil when the node has no CUDA.
	CUDAVersion *string       `json:"cuda_version,omitempty"`
	Drivers     []NameVersion `json:"drivers,omitempty"`
}

// NameVersion is a (name, version) pair: a runtime, framework or driver.
// On the wire it is a two-element array.
type NameVersion struct {
	Name    string
	Version string
}

// MarshalJSON writes [name, version].
func (n NameVersion) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]string{n.Name, n.Version})
}

// UnmarshalJSON reads [name, version].
func (n *NameVersion) UnmarshalJSON(b []byte) error {
	var pair [2]string
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	n.Name, n.Version = pair[0], pair[1]
	return nil
}

// ModelInfo is a model a node can serve.
type ModelInfo struct {
	ModelID        string `json:"model_id"` // what RequireModels matches
	Family         string `json:"family"`
	ParametersBX10 uint32 `json:"parameters_b_x10"` // billions of parameters × 10, truncated
	ContextLength  uint32 `json:"context_length"`   // tokens
	// Quantization is nil when the model is not quantized.
	Quantization    *string    `json:"quantization"`
	Modalities      []Modality `json:"modalities"`
	TokensPerSecond uint32     `json:"tokens_per_sec"`
	Loaded          bool       `json:"loaded"` // loaded now
}

// ToolInfo is a tool a node can run.
type ToolInfo struct {
	ToolID  string `json:"tool_id"` // what RequireTools matches
	Name    string `json:"name"`
	Version string `json:"version"`
	// InputSchema and OutputSchema are JSON schemas, nil when unpublished.
	InputSchema     *string  `json:"input_schema"`
	OutputSchema    *string  `json:"output_schema"`
	Requires        []string `json:"requires"`
	EstimatedTimeMs uint32   `json:"estimated_time_ms"` // typical run time
	Stateless       bool     `json:"stateless"`         // calls are independent
}

// Limits are a node's service limits (0: unspecified).
type Limits struct {
	MaxConcurrentRequests uint32 `json:"max_concurrent_requests,omitempty"`
	MaxTokensPerRequest   uint32 `json:"max_tokens_per_request,omitempty"`
	RateLimitRPM          uint32 `json:"rate_limit_rpm,omitempty"`
	MaxBatchSize          uint32 `json:"max_batch_size,omitempty"`
	MaxInputBytes         uint32 `json:"max_input_bytes,omitempty"`
	MaxOutputBytes        uint32 `json:"max_output_bytes,omitempty"`
}

// GPUVendor is a GPU vendor by its lowercase binding name.
type GPUVendor string

// The GPU vendors.
const (
	GPUVendorUnknown  GPUVendor = "unknown"
	GPUVendorNvidia   GPUVendor = "nvidia"
	GPUVendorAMD      GPUVendor = "amd"
	GPUVendorIntel    GPUVendor = "intel"
	GPUVendorApple    GPUVendor = "apple"
	GPUVendorQualcomm GPUVendor = "qualcomm"
)

// AcceleratorType is a non-GPU accelerator kind by its lowercase binding
// name.
type AcceleratorType string

// The accelerator kinds.
const (
	AcceleratorUnknown AcceleratorType = "unknown"
	AcceleratorTPU     AcceleratorType = "tpu"
	AcceleratorNPU     AcceleratorType = "npu"
	AcceleratorFPGA    AcceleratorType = "fpga"
	AcceleratorASIC    AcceleratorType = "asic"
	AcceleratorDSP     AcceleratorType = "dsp"
)

// Modality is a model modality by its lowercase binding name.
type Modality string

// The modalities.
const (
	ModalityText      Modality = "text"
	ModalityImage     Modality = "image"
	ModalityAudio     Modality = "audio"
	ModalityVideo     Modality = "video"
	ModalityCode      Modality = "code"
	ModalityEmbedding Modality = "embedding"
	ModalityToolUse   Modality = "tool-use"
)

// Binding name (lowercase) → wire name, per enumeration. Aliases map to
// the same wire name.
var (
	gpuVendorWire = map[string]string{"unknown": "Unknown", "nvidia": "Nvidia", "amd": "Amd",
		"intel": "Intel", "apple": "Apple", "qualcomm": "Qualcomm"}
	acceleratorWire = map[string]string{"unknown": "Unknown", "tpu": "Tpu", "npu": "Npu",
		"fpga": "Fpga", "asic": "Asic", "dsp": "Dsp"}
	modalityWire = map[string]string{"text": "Text", "image": "Image", "audio": "Audio",
		"video": "Video", "code": "Code", "embedding": "Embedding", "tool-use": "ToolUse",
		"tool_use": "ToolUse", "tooluse": "ToolUse"}
)

// toWire maps a binding name (any case; "" is the zero value: Unknown where
// there is one) to its wire name.
func toWire(kind, name string, table map[string]string) ([]byte, error) {
	key := strings.ToLower(name)
	if key == "" {
		key = "unknown"
	}
	wire, ok := table[key]
	if !ok {
		return nil, fmt.Errorf("netmesh: unknown %s %q", kind, name)
	}
	return json.Marshal(wire)
}

// fromWire maps a wire name back to the canonical binding name.
func fromWire(kind string, b []byte, table map[string]string) (string, error) {
	var wire string
	if err := json.Unmarshal(b, &wire); err != nil {
		return "", err
	}
	if wire == "ToolUse" {
		return string(ModalityToolUse), nil
	}
	lower := strings.ToLower(wire)
	if table[lower] != wire {
		return "", fmt.Errorf("netmesh: unknown %s %q", kind, wire)
	}
	return lower, nil
}

// MarshalJSON writes the wire name ("Nvidia"); an unknown name is an error.
func (v GPUVendor) MarshalJSON() ([]byte, error) {
	return toWire("GPU vendor", string(v), gpuVendorWire)
}

// UnmarshalJSON reads the wire name.
func (v *GPUVendor) UnmarshalJSON(b []byte) error {
	s, err := fromWire("GPU vendor", b, gpuVendorWire)
	*v = GPUVendor(s)
	return err
}

// MarshalJSON writes the wire name ("Tpu"); an unknown name is an error.
func (t AcceleratorType) MarshalJSON() ([]byte, error) {
	return toWire("accelerator type", string(t), acceleratorWire)
}

// UnmarshalJSON reads the wire name.
func (t *AcceleratorType) UnmarshalJSON(b []byte) error {
	s, err := fromWire("accelerator type", b, acceleratorWire)
	*t = AcceleratorType(s)
	return err
}

// MarshalJSON writes the wire name ("ToolUse"); an unknown name (or "")
// is an error: a modality has no Unknown.
func (m Modality) MarshalJSON() ([]byte, error) {
	if m == "" {
		return nil, fmt.Errorf("netmesh: empty modality")
	}
	return toWire("modality", string(m), modalityWire)
}

// UnmarshalJSON reads the wire name.
func (m *Modality) UnmarshalJSON(b []byte) error {
	s, err := fromWire("modality", b, modalityWire)
	*m = Modality(s)
	return err
}

// MarshalJSON writes the model with nil Modalities as [] (libnet wants
// every member of a list item).
func (m ModelInfo) MarshalJSON() ([]byte, error) {
	type plain ModelInfo
	if m.Modalities == nil {
		m.Modalities = []Modality{}
	}
	return json.Marshal(plain(m))
}

// MarshalJSON writes the tool with nil Requires as [].
func (t ToolInfo) MarshalJSON() ([]byte, error) {
	type plain ToolInfo
	if t.Requires == nil {
		t.Requires = []string{}
	}
	return json.Marshal(plain(t))
}
