//! What is measured (the workloads) and against what (the systems).

/// One row of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Events of `size` bytes, `per_call` of them per send call, as fast as
    /// the sender can; the receiver counts what arrives.
    Stream { size: usize, per_call: usize },
    /// One 64-byte message each way, the next sent when the reply is back.
    PingPong,
}

/// Every workload, in the order the table prints them.
pub const WORKLOADS: [Workload; 5] = [
    Workload::Stream {
        size: 64,
        per_call: 1,
    },
    Workload::Stream {
        size: 64,
        per_call: 64,
    },
    Workload::Stream {
        size: 1200,
        per_call: 1,
    },
    Workload::Stream {
        size: 1200,
        per_call: 6,
    },
    Workload::PingPong,
];

/// The ping-pong message size.
pub const PING_SIZE: usize = 64;

impl Workload {
    /// The command-line name (`64x1`, `1200x6`, `pingpong`).
    pub fn name(self) -> String {
        match self {
            Workload::Stream { size, per_call } => format!("{size}x{per_call}"),
            Workload::PingPong => "pingpong".to_string(),
        }
    }

    /// The row label of the report.
    pub fn label(self) -> String {
        match self {
            Workload::Stream { size, per_call: 1 } => format!("{size} B, 1 per call"),
            Workload::Stream { size, per_call } => format!("{size} B, {per_call} per call"),
            Workload::PingPong => format!("{PING_SIZE} B round trip"),
        }
    }

    /// Parses [`Workload::name`].
    pub fn parse(name: &str) -> Option<Self> {
        WORKLOADS.into_iter().find(|w| w.name() == name)
    }
}

/// A transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// A Net mesh stream without retransmission (credit-windowed).
    NetFireAndForget,
    /// A Net reliable stream (acknowledged, retransmitted, in order).
    NetReliable,
    /// Zenoh peer to peer over TLS (rustls, a run-time CA).
    ZenohTls,
    /// Zenoh peer to peer over plain TCP.
    ZenohTcp,
}

/// Every system, in the order runs are interleaved and columns printed.
pub const SYSTEMS: [System; 4] = [
    System::NetFireAndForget,
    System::NetReliable,
    System::ZenohTls,
    System::ZenohTcp,
];

impl System {
    /// The command-line name, also the column header.
    pub fn name(self) -> &'static str {
        match self {
            System::NetFireAndForget => "net-ff",
            System::NetReliable => "net-rel",
            System::ZenohTls => "zenoh-tls",
            System::ZenohTcp => "zenoh-tcp",
        }
    }

    /// Parses [`System::name`].
    pub fn parse(name: &str) -> Option<Self> {
        SYSTEMS.into_iter().find(|s| s.name() == name)
    }

    /// Whether this is one of ours (stats_json drop counters apply).
    pub fn is_net(self) -> bool {
        matches!(self, System::NetFireAndForget | System::NetReliable)
    }
}
