//! The lab's live timeline: every step the lab takes and every event the proxies report
//! (their `pshim6-event` lines, see `run_events`), printed as it happens on stderr with the
//! time since the lab started, and kept so that scenarios can wait for an event and measure
//! between two (e.g. the cut and the proxy's `context-pair-changed`).

use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Wall-clock Unix milliseconds (the proxies and the traffic tool use the same clock).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One proxy event, as reported.
#[derive(Debug, Clone)]
pub(crate) struct ProxyEvent {
    /// Which proxy (`s1`, `s2`).
    pub(crate) who: String,
    /// The event object (`event`, `t_ms`, fields).
    pub(crate) data: Value,
}

impl ProxyEvent {
    /// The event name.
    pub(crate) fn kind(&self) -> &str {
        self.data["event"].as_str().unwrap_or("")
    }

    /// When it happened (Unix ms).
    pub(crate) fn t_ms(&self) -> u64 {
        self.data["t_ms"].as_u64().unwrap_or(0)
    }
}

/// The shared timeline of one lab run.
#[derive(Debug)]
pub(crate) struct Timeline {
    start_ms: u64,
    events: Mutex<Vec<ProxyEvent>>,
    changed: Condvar,
}

fn tag(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "?".into(), |t| format!("{t:#014x}"))
}

/// A readable line for a proxy event.
pub(crate) fn describe(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_string();
    let kind = d["event"].as_str().unwrap_or("?");
    match kind {
        "context-established" => format!(
            "context established {} <-> {}: tags local {} peer {}, locators {} -> {} (provider {})",
            s("local_ulid"),
            s("peer_ulid"),
            tag(&d["local_tag"]),
            tag(&d["peer_tag"]),
            s("local_locator"),
            s("peer_locator"),
            d["provider"]
        ),
        "context-pair-changed" => format!(
            "failover: context {} moved {} -> {} (provider {}) to {} -> {} (provider {})",
            tag(&d["local_tag"]),
            s("old_local_locator"),
            s("old_peer_locator"),
            d["old_provider"],
            s("local_locator"),
            s("peer_locator"),
            d["provider"]
        ),
        "context-peer-tag-changed" => format!(
            "context {}: peer tag now {}",
            tag(&d["local_tag"]),
            tag(&d["peer_tag"])
        ),
        "context-removed" => format!("context {} removed", tag(&d["local_tag"])),
        "context-dump" => format!(
            "context table: {} <-> {} tags local {} peer {}, {} -> {} (provider {})",
            s("local_ulid"),
            s("peer_ulid"),
            tag(&d["local_tag"]),
            tag(&d["peer_tag"]),
            s("local_locator"),
            s("peer_locator"),
            d["provider"]
        ),
        "link-up" | "link-down" => format!("{} {}", s("interface"), kind.replace('-', " ")),
        other => format!("{other} {d}"),
    }
}

impl Timeline {
    /// A timeline starting now.
    pub(crate) fn new() -> Self {
        Self {
            start_ms: now_ms(),
            events: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    }

    fn print(&self, t_ms: u64, who: &str, text: &str) {
        let t = t_ms.saturating_sub(self.start_ms);
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{:>4}.{:03}] {who:<5} {text}",
            t / 1000,
            t % 1000
        );
    }

    /// A step of the lab itself (`who` is the node it concerns).
    pub(crate) fn note(&self, who: &str, text: &str) {
        self.print(now_ms(), who, text);
    }

    /// A proxy's event line (`data` is its JSON object): printed and kept.
    pub(crate) fn proxy_event(&self, who: &str, data: Value) {
        let ev = ProxyEvent {
            who: who.to_string(),
            data,
        };
        self.print(ev.t_ms(), who, &describe(&ev.data));
        if let Ok(mut v) = self.events.lock() {
            v.push(ev);
        }
        self.changed.notify_all();
    }

    /// Every proxy event kept so far.
    pub(crate) fn events(&self) -> Vec<ProxyEvent> {
        self.events.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for a proxy event matching `pred`; the first one.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&ProxyEvent) -> bool,
    ) -> Option<ProxyEvent> {
        let until = Instant::now() + timeout;
        let mut guard = self.events.lock().ok()?;
        loop {
            if let Some(e) = guard.iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            let left = until.checked_duration_since(Instant::now())?;
            guard = self
                .changed
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
                .ok()?
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waits_for_and_describes_events() {
        let t = Timeline::new();
        assert!(t.wait_for(Duration::from_millis(50), |_| true).is_none());
        t.proxy_event(
            "s1",
            json!({"event": "context-pair-changed", "t_ms": 5, "local_tag": 255,
                   "old_local_locator": "2001:db8:1:a::2", "old_peer_locator": "x", "old_provider": 1,
                   "local_locator": "2001:db8:1:b::2", "peer_locator": "y", "provider": 2}),
        );
        let e = t
            .wait_for(Duration::from_millis(50), |e| {
                e.kind() == "context-pair-changed"
            })
            .unwrap();
        assert_eq!((e.who.as_str(), e.t_ms()), ("s1", 5));
        let text = describe(&e.data);
        assert!(text.contains("0x0000000000ff"), "{text}");
        assert!(
            text.contains("2001:db8:1:b::2") && text.contains("(provider 2)"),
            "{text}"
        );
    }
}
