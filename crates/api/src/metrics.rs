//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then the samples of each
//! family together, label values escaped. The binary writes the data-plane counters it reads
//! from the workers' atomics at scrape time; this module only formats.

use std::collections::HashSet;
use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric family types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One sample: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `(name, value)` label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample without labels.
    pub fn plain(value: f64) -> Self {
        Self {
            labels: Vec::new(),
            value,
        }
    }

    /// A sample with labels.
    pub fn with(labels: Vec<(&'static str, String)>, value: f64) -> Self {
        Self { labels, value }
    }
}

/// Builds one exposition. A family name given twice, or a malformed name, is skipped (and
/// counted in [`MetricsWriter::rejected`]) rather than emitted into an invalid document.
#[derive(Debug, Default)]
pub struct MetricsWriter {
    out: String,
    names: HashSet<String>,
    rejected: usize,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label(n: &str) -> bool {
    valid_name(n) && !n.contains(':') && !n.starts_with("__")
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl MetricsWriter {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a family and its samples.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[Sample]) {
        let ok = valid_name(name)
            && (kind != Kind::Counter || name.ends_with("_total"))
            && samples
                .iter()
                .all(|s| s.labels.iter().all(|(l, _)| valid_label(l)))
            && self.names.insert(name.to_string());
        if !ok {
            self.rejected += 1;
            return;
        }
        let t = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {t}");
        for s in samples {
            self.out.push_str(name);
            if !s.labels.is_empty() {
                self.out.push('{');
                for (i, (l, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{l}=\"{}\"", escape_label(v));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {}", number(s.value));
        }
    }

    /// A counter with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, Kind::Counter, help, &[Sample::plain(value as f64)]);
    }

    /// A gauge with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, Kind::Gauge, help, &[Sample::plain(value)]);
    }

    /// Families refused (duplicate or malformed names).
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_in_the_text_format() {
        let mut w = MetricsWriter::new();
        w.family(
            "pshim6_dropped_total",
            Kind::Counter,
            "Frames dropped.\nBy reason",
            &[
                Sample::with(
                    vec![("worker", "0".into()), ("reason", "malformed".into())],
                    3.0,
                ),
                Sample::with(
                    vec![("worker", "1".into()), ("reason", "a\"b\\c".into())],
                    0.0,
                ),
            ],
        );
        w.gauge("pshim6_punt_queue_depth", "Frames waiting.", 2.5);
        assert_eq!(w.rejected(), 0);
        assert_eq!(
            w.finish(),
            "# HELP pshim6_dropped_total Frames dropped.\\nBy reason\n\
             # TYPE pshim6_dropped_total counter\n\
             pshim6_dropped_total{worker=\"0\",reason=\"malformed\"} 3\n\
             pshim6_dropped_total{worker=\"1\",reason=\"a\\\"b\\\\c\"} 0\n\
             # HELP pshim6_punt_queue_depth Frames waiting.\n\
             # TYPE pshim6_punt_queue_depth gauge\n\
             pshim6_punt_queue_depth 2.5\n"
        );
    }

    #[test]
    fn bad_or_repeated_families_are_refused() {
        let mut w = MetricsWriter::new();
        w.counter("pshim6_x_total", "x", 1);
        w.counter("pshim6_x_total", "again", 2);
        w.counter("pshim6_no_suffix", "counter without _total", 1);
        w.gauge("9starts_with_digit", "bad", 1.0);
        w.family(
            "pshim6_y",
            Kind::Gauge,
            "bad label",
            &[Sample::with(vec![("__reserved", "v".into())], 1.0)],
        );
        assert_eq!(w.rejected(), 4);
        assert_eq!(w.finish().matches("# TYPE").count(), 1);
    }

    #[test]
    fn numbers_print_as_prometheus_reads_them() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(12345678.0), "12345678");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
