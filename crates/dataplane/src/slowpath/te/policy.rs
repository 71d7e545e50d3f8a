//! The traffic-engineering policy: what the operator writes (config `[te]`, `PUT
//! /v1/te/policy`) and its validation against the configured providers.
//!
//! One flat structure (so TOML, environment overrides and JSON all spell it the same way):
//! a split `mode` with its parameters, prefix rules, ingress preferences and the rebalancer's
//! tuning. Providers are named by their configured id (`[[providers]] id`).

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How new communications are spread over the providers, and what the rebalancer aims for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// No preference: the first provider that is up (the engine's default), no rebalancing.
    #[default]
    FirstUp,
    /// Bytes split by `weights` (e.g. 70/30 by capacity), kept within `tolerance_pct`.
    Weighted,
    /// `cheapest` in order: the next provider is used only while the ones before it carry
    /// more than `overflow_mbps`.
    CheapestFirst,
}

/// One provider's weight in [`SplitMode::Weighted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderWeight {
    /// Provider id.
    pub provider: u16,
    /// Relative weight (shares are `weight / sum of weights`).
    pub weight: u32,
}

/// An IPv6 prefix of any length (`2001:db8::/32`), for prefix rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    /// The network address (bits past `len` are zero).
    pub addr: Ipv6Addr,
    /// Prefix length, 0 to 128.
    pub len: u8,
}

impl Ipv6Prefix {
    /// The prefix `addr/len` with the host bits cleared; `None` if `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        let mask = Self::mask(len)?;
        Some(Self {
            addr: Ipv6Addr::from_bits(addr.to_bits() & mask),
            len,
        })
    }

    fn mask(len: u8) -> Option<u128> {
        match len {
            0 => Some(0),
            1..=128 => Some(u128::MAX << (128 - u32::from(len))),
            _ => None,
        }
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        Self::mask(self.len).is_some_and(|m| a.to_bits() & m == self.addr.to_bits())
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected ADDRESS/LENGTH"))?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("`{a}`: not an IPv6 address"))?;
        let len: u8 = l
            .parse()
            .map_err(|_| format!("`{l}`: prefix length must be 0 to 128"))?;
        Self::new(addr, len).ok_or_else(|| format!("`{l}`: prefix length must be 0 to 128"))
    }
}

impl Serialize for Ipv6Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// "Prefer provider X for prefix P": a communication whose peer ULID is under `destination`
/// and (if given) whose local ULID is under `inside` uses `provider` while it is up and not
/// drained. The first matching rule wins; a context chosen by a rule is not rebalanced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRule {
    /// Peer ULIDs the rule applies to (any when left out).
    #[serde(default)]
    pub destination: Option<Ipv6Prefix>,
    /// Local (inside) ULIDs the rule applies to (any when left out).
    #[serde(default)]
    pub inside: Option<Ipv6Prefix>,
    /// Provider id to use.
    pub provider: u16,
}

impl PrefixRule {
    /// Whether the rule applies to `local → peer`.
    pub fn matches(&self, local: Ipv6Addr, peer: Ipv6Addr) -> bool {
        self.destination.is_none_or(|p| p.contains(peer))
            && self.inside.is_none_or(|p| p.contains(local))
    }
}

/// What we advertise for one provider's locators in Locator Preferences
/// ([RFC 5533 §5.15.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.15.3)): DNS SRV
/// semantics, the peer prefers lower `priority` and splits by `weight` among equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressPreference {
    /// Provider id.
    pub provider: u16,
    /// Lower is preferred.
    pub priority: u8,
    /// Share among providers of equal priority.
    #[serde(default)]
    pub weight: u8,
}

/// The rebalancer's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebalanceConfig {
    /// Whether live contexts are moved at all (new ones still follow the policy).
    pub enabled: bool,
    /// The rebalance period: traffic rates are averaged over it, and a deviation from the
    /// target (or a policy change) is corrected within it, moves permitting.
    pub period_ms: u64,
    /// Context moves per second at most (each costs a REAP probe exchange).
    pub max_moves_per_sec: u32,
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            period_ms: 5000,
            max_moves_per_sec: 100,
        }
    }
}

/// The traffic-engineering policy (issue #8 "Traffic engineering").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TePolicy {
    /// How new communications are spread.
    pub mode: SplitMode,
    /// [`SplitMode::Weighted`]: weight per provider (providers left out get nothing).
    pub weights: Vec<ProviderWeight>,
    /// [`SplitMode::Weighted`]: accepted deviation of a provider's byte share from its
    /// target, in percentage points, before the rebalancer moves contexts.
    pub tolerance_pct: f64,
    /// [`SplitMode::CheapestFirst`]: provider ids, cheapest first.
    pub cheapest: Vec<u16>,
    /// [`SplitMode::CheapestFirst`]: a provider takes more only below this rate (Mbit/s).
    pub overflow_mbps: f64,
    /// Per-prefix exceptions, first match wins.
    pub rules: Vec<PrefixRule>,
    /// Locator Preferences we advertise (ingress traffic engineering).
    pub ingress: Vec<IngressPreference>,
    /// The rebalancer.
    pub rebalance: RebalanceConfig,
}

impl Default for TePolicy {
    fn default() -> Self {
        Self {
            mode: SplitMode::FirstUp,
            weights: Vec::new(),
            tolerance_pct: 2.0,
            cheapest: Vec::new(),
            overflow_mbps: 0.0,
            rules: Vec::new(),
            ingress: Vec::new(),
            rebalance: RebalanceConfig::default(),
        }
    }
}

/// Why a policy is refused. Each variant names the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TePolicyError {
    /// A provider id that is not configured.
    #[error("{key}: provider {provider} is not configured (known: {known:?})")]
    UnknownProvider {
        /// The key naming it.
        key: &'static str,
        /// The id given.
        provider: u16,
        /// The configured ids.
        known: Vec<u16>,
    },
    /// The same provider twice in one list.
    #[error("{key}: provider {provider} is listed twice")]
    DuplicateProvider {
        /// The list.
        key: &'static str,
        /// The id repeated.
        provider: u16,
    },
    /// `mode = "weighted"` without a positive weight.
    #[error("weights: mode \"weighted\" needs at least one provider with a weight above 0")]
    NoWeight,
    /// `tolerance_pct` outside (0, 50].
    #[error("tolerance_pct: {0} is not in (0, 50] percentage points")]
    BadTolerance(f64),
    /// `mode = "cheapest_first"` without providers.
    #[error("cheapest: mode \"cheapest_first\" needs the providers, cheapest first")]
    NoCheapestOrder,
    /// `overflow_mbps` not a positive finite number in cheapest-first mode.
    #[error("overflow_mbps: {0} must be a positive number of Mbit/s")]
    BadOverflow(f64),
    /// A rule without `destination` nor `inside` (it would match everything).
    #[error("rules[{0}]: give a destination or an inside prefix (or both)")]
    EmptyRule(usize),
    /// Rebalancing enabled with a zero period or zero moves per second.
    #[error("rebalance: period_ms and max_moves_per_sec must be above 0 when enabled")]
    BadRebalance,
}

impl TePolicy {
    /// A [`SplitMode::Weighted`] policy splitting bytes by `weights` (`(provider, weight)`
    /// pairs), every other setting at its default.
    pub fn weighted(weights: &[(u16, u32)]) -> Self {
        Self {
            mode: SplitMode::Weighted,
            weights: weights
                .iter()
                .map(|&(provider, weight)| ProviderWeight { provider, weight })
                .collect(),
            ..Self::default()
        }
    }

    /// Checks the policy against the configured provider ids.
    pub fn validate(&self, providers: &[u16]) -> Result<(), TePolicyError> {
        let known = |key: &'static str, provider: u16| {
            if providers.contains(&provider) {
                Ok(())
            } else {
                Err(TePolicyError::UnknownProvider {
                    key,
                    provider,
                    known: providers.to_vec(),
                })
            }
        };
        let unique = |key: &'static str, ids: &mut dyn Iterator<Item = u16>| {
            let mut seen = HashSet::new();
            for id in ids {
                known(key, id)?;
                if !seen.insert(id) {
                    return Err(TePolicyError::DuplicateProvider { key, provider: id });
                }
            }
            Ok(())
        };
        unique("weights", &mut self.weights.iter().map(|w| w.provider))?;
        unique("cheapest", &mut self.cheapest.iter().copied())?;
        unique("ingress", &mut self.ingress.iter().map(|i| i.provider))?;
        for r in &self.rules {
            known("rules", r.provider)?;
        }
        if let Some(i) = self
            .rules
            .iter()
            .position(|r| r.destination.is_none() && r.inside.is_none())
        {
            return Err(TePolicyError::EmptyRule(i));
        }
        match self.mode {
            SplitMode::FirstUp => {}
            SplitMode::Weighted => {
                if !self.weights.iter().any(|w| w.weight > 0) {
                    return Err(TePolicyError::NoWeight);
                }
                if !(self.tolerance_pct > 0.0 && self.tolerance_pct <= 50.0) {
                    return Err(TePolicyError::BadTolerance(self.tolerance_pct));
                }
            }
            SplitMode::CheapestFirst => {
                if self.cheapest.is_empty() {
                    return Err(TePolicyError::NoCheapestOrder);
                }
                if !(self.overflow_mbps.is_finite() && self.overflow_mbps > 0.0) {
                    return Err(TePolicyError::BadOverflow(self.overflow_mbps));
                }
            }
        }
        let r = self.rebalance;
        if r.enabled && (r.period_ms == 0 || r.max_moves_per_sec == 0) {
            return Err(TePolicyError::BadRebalance);
        }
        Ok(())
    }

    /// Target byte share per provider in weighted mode (`None` in other modes): each listed
    /// provider's `weight / sum`.
    pub fn target_shares(&self) -> Option<Vec<(u16, f64)>> {
        if self.mode != SplitMode::Weighted {
            return None;
        }
        let sum: f64 = self.weights.iter().map(|w| f64::from(w.weight)).sum();
        if sum <= 0.0 {
            return None;
        }
        Some(
            self.weights
                .iter()
                .map(|w| (w.provider, f64::from(w.weight) / sum))
                .collect(),
        )
    }

    /// The first rule matching `local → peer`.
    pub fn rule_for(&self, local: Ipv6Addr, peer: Ipv6Addr) -> Option<&PrefixRule> {
        self.rules.iter().find(|r| r.matches(local, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weighted(a: u32, b: u32) -> TePolicy {
        TePolicy::weighted(&[(1, a), (2, b)])
    }

    #[test]
    fn prefixes_parse_match_and_print() {
        let p: Ipv6Prefix = "2001:db8:ff::1/48".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8:ff::/48");
        assert!(p.contains("2001:db8:ff:1::9".parse().unwrap()));
        assert!(!p.contains("2001:db8:fe::1".parse().unwrap()));
        let all: Ipv6Prefix = "::/0".parse().unwrap();
        assert!(all.contains("fc00::1".parse().unwrap()));
        let host: Ipv6Prefix = "fc00::1/128".parse().unwrap();
        assert!(host.contains("fc00::1".parse().unwrap()));
        assert!(!host.contains("fc00::2".parse().unwrap()));
        assert!("fc00::/129".parse::<Ipv6Prefix>().is_err());
        assert!("fc00::".parse::<Ipv6Prefix>().is_err());
        assert!("x/3".parse::<Ipv6Prefix>().is_err());
    }

    #[test]
    fn json_round_trip_and_unknown_keys_refused() {
        let mut p = weighted(70, 30);
        p.rules.push(PrefixRule {
            destination: Some("2001:db8:99::/48".parse().unwrap()),
            inside: None,
            provider: 2,
        });
        let j = serde_json::to_string(&p).unwrap();
        assert!(j.contains("\"mode\":\"weighted\""), "{j}");
        assert!(j.contains("\"2001:db8:99::/48\""), "{j}");
        let back: TePolicy = serde_json::from_str(&j).unwrap();
        assert_eq!(back, p);
        let err = serde_json::from_str::<TePolicy>(r#"{"mode":"weighted","wieghts":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wieghts"), "{err}");
        let err = serde_json::from_str::<TePolicy>(r#"{"mode":"fastest"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fastest"), "{err}");
        let err =
            serde_json::from_str::<TePolicy>(r#"{"rules":[{"destination":"zz/1","provider":1}]}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("not an IPv6 address"), "{err}");
        // Everything defaults: an empty object is the engine's behaviour.
        assert_eq!(
            serde_json::from_str::<TePolicy>("{}").unwrap(),
            TePolicy::default()
        );
    }

    #[test]
    fn validation_names_the_key_at_fault() {
        let ids = [1, 2];
        assert_eq!(weighted(70, 30).validate(&ids), Ok(()));
        assert_eq!(TePolicy::default().validate(&ids), Ok(()));
        let e = weighted(70, 30).validate(&[1]).unwrap_err();
        assert_eq!(
            e,
            TePolicyError::UnknownProvider {
                key: "weights",
                provider: 2,
                known: vec![1]
            }
        );
        assert!(e.to_string().starts_with("weights: provider 2"), "{e}");
        assert_eq!(weighted(0, 0).validate(&ids), Err(TePolicyError::NoWeight));
        let mut p = weighted(1, 1);
        p.weights[1].provider = 1;
        assert_eq!(
            p.validate(&ids),
            Err(TePolicyError::DuplicateProvider {
                key: "weights",
                provider: 1
            })
        );
        let mut p = weighted(1, 1);
        p.tolerance_pct = 0.0;
        assert_eq!(p.validate(&ids), Err(TePolicyError::BadTolerance(0.0)));
        let mut p = TePolicy {
            mode: SplitMode::CheapestFirst,
            ..TePolicy::default()
        };
        assert_eq!(p.validate(&ids), Err(TePolicyError::NoCheapestOrder));
        p.cheapest = vec![2, 1];
        assert_eq!(p.validate(&ids), Err(TePolicyError::BadOverflow(0.0)));
        p.overflow_mbps = f64::NAN;
        assert!(matches!(
            p.validate(&ids),
            Err(TePolicyError::BadOverflow(_))
        ));
        p.overflow_mbps = 100.0;
        assert_eq!(p.validate(&ids), Ok(()));
        p.rules.push(PrefixRule {
            destination: None,
            inside: None,
            provider: 1,
        });
        assert_eq!(p.validate(&ids), Err(TePolicyError::EmptyRule(0)));
        p.rules[0].inside = Some("fc00:1::/32".parse().unwrap());
        p.rules[0].provider = 7;
        assert!(matches!(
            p.validate(&ids),
            Err(TePolicyError::UnknownProvider {
                key: "rules",
                provider: 7,
                ..
            })
        ));
        p.rules.clear();
        p.rebalance.max_moves_per_sec = 0;
        assert_eq!(p.validate(&ids), Err(TePolicyError::BadRebalance));
        p.rebalance.enabled = false;
        assert_eq!(p.validate(&ids), Ok(()));
    }

    #[test]
    fn shares_and_rules() {
        let t = weighted(70, 30).target_shares().unwrap();
        assert_eq!(t.len(), 2);
        assert!((t[0].1 - 0.7).abs() < 1e-12 && (t[1].1 - 0.3).abs() < 1e-12);
        assert_eq!(TePolicy::default().target_shares(), None);
        let p = TePolicy {
            rules: vec![
                PrefixRule {
                    destination: Some("2001:db8:99::/48".parse().unwrap()),
                    inside: Some("fc00:1:1:1::/64".parse().unwrap()),
                    provider: 2,
                },
                PrefixRule {
                    destination: Some("2001:db8::/32".parse().unwrap()),
                    inside: None,
                    provider: 1,
                },
            ],
            ..TePolicy::default()
        };
        let l: Ipv6Addr = "fc00:1:1:1::5".parse().unwrap();
        let other: Ipv6Addr = "fc00:1:1:2::5".parse().unwrap();
        let peer: Ipv6Addr = "2001:db8:99:1::1".parse().unwrap();
        assert_eq!(p.rule_for(l, peer).unwrap().provider, 2);
        assert_eq!(p.rule_for(other, peer).unwrap().provider, 1);
        assert!(p.rule_for(l, "fc00:9::1".parse().unwrap()).is_none());
    }
}
