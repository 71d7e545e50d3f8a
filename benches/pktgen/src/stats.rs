//! What a trial measured: per-class counts, rates and a latency histogram (1 µs buckets up to
//! 65 ms, allocated once and reused), and the JSON it is reported as.

use serde::Serialize;

use crate::mix::Class;

const BUCKETS: usize = 65_536;

/// Latencies in 1 µs buckets.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max_ns: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS + 1],
            count: 0,
            max_ns: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.buckets.fill(0);
        self.count = 0;
        self.max_ns = 0;
    }

    #[inline]
    pub(crate) fn record(&mut self, ns: u64) {
        let b = ((ns / 1000) as usize).min(BUCKETS);
        self.buckets[b] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The latency at quantile `q` (0..=1), in microseconds (bucket upper bound).
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return (i + 1) as f64;
            }
        }
        self.max_ns as f64 / 1000.0
    }

    pub(crate) fn summary(&self) -> Latency {
        Latency {
            samples: self.count,
            p50_us: self.quantile_us(0.5),
            p90_us: self.quantile_us(0.9),
            p99_us: self.quantile_us(0.99),
            p999_us: self.quantile_us(0.999),
            max_us: self.max_ns as f64 / 1000.0,
        }
    }
}

/// Latency percentiles of the frames that came back.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: u64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
}

/// Counters of one trial, by class index.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) sent: [u64; 4],
    pub(crate) received: [u64; 4],
    /// Frames the port would not take (the ring towards the device under test was full).
    pub(crate) tx_refused: u64,
    /// Stamped frames that came back on the wrong port.
    pub(crate) misdelivered: u64,
    /// Neighbor Solicitations answered.
    pub(crate) ns_answered: u64,
    /// Frames received without a stamp (ND from the proxy, anything else).
    pub(crate) other: u64,
    /// Stamped frames sent before this trial began (an earlier trial's stragglers).
    pub(crate) late: u64,
}

/// One trial as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrialReport {
    /// Rate asked for, Mpps (0: as fast as the ports take).
    pub(crate) target_mpps: f64,
    /// Rate the ports accepted, Mpps.
    pub(crate) offered_mpps: f64,
    /// Forwarded frames back, Mpps.
    pub(crate) received_mpps: f64,
    /// Forwarded-class frames sent and not back, as a fraction of those sent.
    pub(crate) loss: f64,
    pub(crate) seconds: f64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) tx_refused: u64,
    pub(crate) misdelivered: u64,
    pub(crate) ns_answered: u64,
    /// Frames received without a stamp that were not solicitations.
    pub(crate) other: u64,
    /// Frames of an earlier trial that arrived during this one (not counted as received).
    pub(crate) late: u64,
    /// Sent and received per class (egress, ingress, natv6, control).
    pub(crate) per_class: Vec<ClassCount>,
    pub(crate) latency: Latency,
    /// Whether the trial counts as no-drop: loss within tolerance. Its rate is what was
    /// offered (on a loaded machine the generator may fall short of the target).
    pub(crate) passed: bool,
}

/// Per-class counts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClassCount {
    pub(crate) class: &'static str,
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

impl TrialReport {
    pub(crate) fn new(
        target_pps: f64,
        seconds: f64,
        c: &Counts,
        lat: &Histogram,
        tolerance: f64,
    ) -> Self {
        let fwd = |v: &[u64; 4]| -> u64 {
            Class::ALL
                .iter()
                .filter(|k| k.forwarded())
                .map(|k| v[k.index()])
                .sum()
        };
        let sent_all: u64 = c.sent.iter().sum();
        let (sent, received) = (fwd(&c.sent), fwd(&c.received));
        let loss = if sent == 0 {
            1.0
        } else {
            sent.saturating_sub(received) as f64 / sent as f64
        };
        let offered = sent_all as f64 / seconds;
        Self {
            target_mpps: target_pps / 1e6,
            offered_mpps: offered / 1e6,
            received_mpps: received as f64 / seconds / 1e6,
            loss,
            seconds,
            sent,
            received,
            tx_refused: c.tx_refused,
            misdelivered: c.misdelivered,
            ns_answered: c.ns_answered,
            other: c.other,
            late: c.late,
            per_class: Class::ALL
                .iter()
                .map(|k| ClassCount {
                    class: k.name(),
                    sent: c.sent[k.index()],
                    received: c.received[k.index()],
                })
                .collect(),
            latency: lat.summary(),
            passed: sent > 0 && loss <= tolerance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(us * 1000 + 500);
        }
        assert_eq!(h.quantile_us(0.5), 51.0);
        assert_eq!(h.quantile_us(0.99), 100.0);
        assert_eq!(h.summary().max_us, 100.5);
        h.reset();
        assert_eq!(h.summary().samples, 0);
    }

    #[test]
    fn loss_counts_forwarded_classes_only() {
        let c = Counts {
            sent: [100, 100, 0, 50],
            received: [100, 99, 0, 0],
            ..Counts::default()
        };
        let r = TrialReport::new(250.0, 1.0, &c, &Histogram::new(), 0.0);
        assert_eq!((r.sent, r.received), (200, 199));
        assert!((r.loss - 0.005).abs() < 1e-12);
        assert!(!r.passed);
        let ok = TrialReport::new(1000.0, 1.0, &c, &Histogram::new(), 0.01);
        assert!(ok.passed, "within tolerance");
        assert_eq!(
            ok.offered_mpps,
            250.0 / 1e6,
            "the offered rate, not the target"
        );
    }
}
