//! The timers of one REAP machine, quinn-proto style: an array of deadlines.

use std::time::Instant;

/// One REAP timer ([RFC 5534 §6](https://www.rfc-editor.org/rfc/rfc5534#section-6)).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ReapTimer {
    /// Send Timer: return traffic is due by then (Operational, InboundOk).
    Send = 0,
    /// Keepalive Timer: Keepalive Timeout after the last payload received (Operational).
    Keepalive = 1,
    /// The separate Keepalive Interval timer of §6.1 (not in the RFC's tables).
    KeepaliveInterval = 2,
    /// Probe retransmission (Exploring, InboundOk; §6.5).
    Probe = 3,
}

impl ReapTimer {
    /// Every timer, in the order `handle_timeout` fires simultaneous ones.
    pub(crate) const ALL: [ReapTimer; 4] = [
        ReapTimer::Send,
        ReapTimer::Keepalive,
        ReapTimer::KeepaliveInterval,
        ReapTimer::Probe,
    ];
}

/// Deadlines of the [`ReapTimer`]s; `None` means stopped.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; 4],
}

impl TimerTable {
    /// Arms `timer` for `deadline`, replacing any earlier deadline (a RESTART).
    pub(crate) fn set(&mut self, timer: ReapTimer, deadline: Instant) {
        self.data[timer as usize] = Some(deadline);
    }

    /// The deadline of `timer`, if running.
    pub(crate) fn get(&self, timer: ReapTimer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// Whether `timer` is running.
    pub(crate) fn is_running(&self, timer: ReapTimer) -> bool {
        self.get(timer).is_some()
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: ReapTimer) {
        self.data[timer as usize] = None;
    }

    /// The earliest deadline of any running timer.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` runs and its deadline is not after `now`.
    pub(crate) fn is_expired(&self, timer: ReapTimer, now: Instant) -> bool {
        self.get(timer).is_some_and(|d| d <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn table() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(ReapTimer::Probe, t0 + Duration::from_secs(2));
        t.set(ReapTimer::Send, t0 + Duration::from_secs(1));
        assert_eq!(t.next_timeout(), Some(t0 + Duration::from_secs(1)));
        assert!(t.is_expired(ReapTimer::Send, t0 + Duration::from_secs(1)));
        assert!(!t.is_expired(ReapTimer::Probe, t0 + Duration::from_secs(1)));
        assert!(!t.is_expired(ReapTimer::Keepalive, t0 + Duration::from_secs(9)));
        t.stop(ReapTimer::Send);
        assert!(!t.is_running(ReapTimer::Send));
        assert_eq!(t.next_timeout(), Some(t0 + Duration::from_secs(2)));
    }
}
