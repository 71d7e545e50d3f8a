//! The scenarios `pshim6 simulate` knows, and what each one does at which simulated time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A simulated situation between two multihomed sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Site A's host talks to site B's host: 4-way handshake, then traffic both ways.
    Handshake,
    /// Site B's proxy restarts mid-communication and loses every context: R1bis/I2bis rebuild it.
    Recovery,
    /// Site A gains a third provider, then loses its first: Update Request/Ack carry the changes.
    Update,
    /// The provider link of A's active locator is cut at the provider: only REAP can notice.
    Failover,
    /// A's own link to its active provider goes down and the proxy is told at once.
    LocalDown,
    /// Both hosts start talking at the same instant: crossing I1s.
    Simultaneous,
    /// Site B is a plain SHIM6 host (its ULID is one of its locators) and starts the exchange.
    HostPeer,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Scenario; 7] = [
        Scenario::Handshake,
        Scenario::Recovery,
        Scenario::Update,
        Scenario::Failover,
        Scenario::LocalDown,
        Scenario::Simultaneous,
        Scenario::HostPeer,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Handshake => "handshake",
            Scenario::Recovery => "recovery",
            Scenario::Update => "update",
            Scenario::Failover => "failover",
            Scenario::LocalDown => "local-down",
            Scenario::Simultaneous => "simultaneous",
            Scenario::HostPeer => "host-peer",
        }
    }

    /// When the disruptive event of the scenario happens (restart, cut, provider change).
    pub fn event_at(self) -> Option<Duration> {
        match self {
            Scenario::Handshake | Scenario::Simultaneous | Scenario::HostPeer => None,
            Scenario::Recovery | Scenario::Update | Scenario::Failover | Scenario::LocalDown => {
                Some(Duration::from_secs(20))
            }
        }
    }

    /// Whether site B's host speaks first (A's host answers once it heard from B).
    pub fn b_initiates(self) -> bool {
        matches!(self, Scenario::HostPeer | Scenario::Simultaneous)
    }

    /// Whether site A's host speaks first.
    pub fn a_initiates(self) -> bool {
        !matches!(self, Scenario::HostPeer)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .iter()
            .copied()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scenario {s:?}; known: {}", names.join(", "))
            })
    }
}
