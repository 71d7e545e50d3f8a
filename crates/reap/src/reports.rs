//! Bounded lists of probe reports ([RFC 5534 §5.2]).
//!
//! [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2

use std::collections::VecDeque;

use wire::ProbeReport;

/// Most reports of one kind in a Probe: the Psent and Precvd counters have 4 bits
/// ([RFC 5534 §5.2](https://www.rfc-editor.org/rfc/rfc5534#section-5.2)).
pub const MAX_REPORTS: usize = 15;

/// A list of at most [`MAX_REPORTS`] probe reports, newest first (`spec/reap.md` §5 \[I\]: the
/// RFC leaves the order open). Adding to a full list drops the oldest.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReportLog {
    items: VecDeque<ProbeReport>,
}

/// Whether two reports describe the same probe: same nonce, source and destination. Matching
/// the addresses too (LinShim6 compares nonces only, `spec/reap.md` §11) means a report can only
/// confirm the pair the probe really was sent on.
fn same_probe(a: &ProbeReport, b: &ProbeReport) -> bool {
    a.nonce == b.nonce && a.src == b.src && a.dst == b.dst
}

impl ReportLog {
    /// Adds `report` as the newest entry; a report already present moves to the front.
    pub(crate) fn push(&mut self, report: ProbeReport) {
        self.items.retain(|r| !same_probe(r, &report));
        self.items.push_front(report);
        self.items.truncate(MAX_REPORTS);
    }

    /// Whether the log holds `report`.
    pub(crate) fn contains(&self, report: &ProbeReport) -> bool {
        self.items.iter().any(|r| same_probe(r, report))
    }

    /// Removes every entry named in `seen` (probes the peer reports as received: they no
    /// longer need re-reporting, [RFC 5534 §6.1]).
    ///
    /// [RFC 5534 §6.1]: https://www.rfc-editor.org/rfc/rfc5534#section-6.1
    pub(crate) fn remove_all(&mut self, seen: &[ProbeReport]) {
        self.items
            .retain(|r| !seen.iter().any(|s| same_probe(r, s)));
    }

    /// Whether the log holds a report with this nonce (used to keep our nonces unique).
    pub(crate) fn has_nonce(&self, nonce: wire::Nonce) -> bool {
        self.items.iter().any(|r| r.nonce == nonce)
    }

    /// Empties the log.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The entries, newest first, as carried in a Probe.
    pub(crate) fn to_vec(&self) -> Vec<ProbeReport> {
        self.items.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{Locator, Nonce};

    fn rep(n: u32) -> ProbeReport {
        ProbeReport {
            src: Locator("2001:db8:a::1".parse().unwrap()),
            dst: Locator("2001:db8:b::1".parse().unwrap()),
            nonce: Nonce(n),
            data: 0,
        }
    }

    #[test]
    fn bounded_newest_first() {
        let mut log = ReportLog::default();
        for n in 0..40 {
            log.push(rep(n));
        }
        assert_eq!(log.len(), MAX_REPORTS);
        let v = log.to_vec();
        assert_eq!(v[0].nonce, Nonce(39));
        assert_eq!(v[14].nonce, Nonce(25));
        // Re-adding moves to the front without duplicating.
        log.push(rep(30));
        assert_eq!(log.len(), MAX_REPORTS);
        assert_eq!(log.to_vec()[0].nonce, Nonce(30));
    }

    #[test]
    fn removal_matches_addresses_too() {
        let mut log = ReportLog::default();
        log.push(rep(1));
        log.push(rep(2));
        let mut other = rep(1);
        other.dst = Locator("2001:db8:b::2".parse().unwrap());
        log.remove_all(&[other]);
        assert!(log.contains(&rep(1)));
        assert!(!log.contains(&other));
        log.remove_all(&[rep(1)]);
        assert!(!log.contains(&rep(1)));
        assert!(log.has_nonce(Nonce(2)));
        log.clear();
        assert_eq!(log.len(), 0);
    }
}
