//! Configuration layers: the TOML file, then `PSHIM6_*` environment variables on top
//! (`PSHIM6_` prefix, `__` between nested keys, snake_case keys, `,` between list items of
//! `worker_cores`). Unknown keys are errors in either layer.
//!
//! A live reload (SIGHUP) re-reads both layers and applies what can change without a
//! restart; [`Reload`] tells what else changed, so the operator knows a restart is due.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Context, Result};
use serde::de::DeserializeOwned;

/// The environment variables that override the file.
pub fn env_overrides() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("PSHIM6_"))
        .collect()
}

/// Reads `path` (TOML) with `env` layered on top; also returns every setting as a
/// `key = value` line (keys with `.` and `[i]`), for [`Reload`].
pub(crate) fn read<T: DeserializeOwned>(
    path: &Path,
    env: HashMap<String, String>,
) -> Result<(T, Vec<String>)> {
    let mut names: Vec<String> = env.keys().cloned().collect();
    names.sort();
    let overrides = config::Environment::with_prefix("PSHIM6")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("worker_cores")
        .source(Some(env));
    let built = config::Config::builder()
        .add_source(config::File::new(
            &path.to_string_lossy(),
            config::FileFormat::Toml,
        ))
        .add_source(overrides)
        .build()
        .and_then(|c| {
            let mut lines = Vec::new();
            let all: HashMap<String, config::Value> = c.clone().try_deserialize()?;
            for (k, v) in all {
                flatten(&k, v, &mut lines);
            }
            lines.sort();
            Ok((c.try_deserialize()?, lines))
        });
    match built {
        Ok(v) => Ok(v),
        Err(e) if names.is_empty() => Err(e).with_context(|| format!("reading {}", path.display())),
        Err(e) => Err(e).with_context(|| {
            format!(
                "reading {} with the environment overrides {}",
                path.display(),
                names.join(", ")
            )
        }),
    }
}

fn flatten(key: &str, v: config::Value, out: &mut Vec<String>) {
    if let Ok(t) = v.clone().into_table() {
        for (k, x) in t {
            flatten(&format!("{key}.{k}"), x, out);
        }
        return;
    }
    match v.clone().into_array() {
        Ok(a) if a.iter().any(|x| x.clone().into_table().is_ok()) => {
            for (i, x) in a.into_iter().enumerate() {
                flatten(&format!("{key}[{i}]"), x, out);
            }
        }
        Ok(a) => {
            let items: Vec<String> = a.iter().map(ToString::to_string).collect();
            out.push(format!("{key} = [{}]", items.join(", ")));
        }
        Err(_) => out.push(format!("{key} = {v}")),
    }
}

/// The settings only a restart applies, as text, to compare two loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    fixed: Vec<String>,
}

impl Reload {
    /// From the `key = value` lines of a load, less the keys a reload applies live
    /// (`live`: top-level names).
    pub(crate) fn new(mut lines: Vec<String>, live: &[&str]) -> Self {
        lines.retain(|l| {
            !live.iter().any(|k| {
                l.strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with(['.', '[', ' ']))
            })
        });
        Self { fixed: lines }
    }

    /// The restart-only settings that differ in `newer` (at most `max`), each naming the
    /// key: what a reload could not apply.
    pub fn needs_restart(&self, newer: &Reload, max: usize) -> Vec<String> {
        let key = |l: &str| l.split(" = ").next().unwrap_or("").to_string();
        let old: HashMap<String, &String> = self.fixed.iter().map(|l| (key(l), l)).collect();
        let new: HashMap<String, &String> = newer.fixed.iter().map(|l| (key(l), l)).collect();
        let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| old.get(*k) != new.get(*k))
            .take(max)
            .map(|k| match (old.get(k), new.get(k)) {
                (Some(a), Some(b)) => format!("{a} -> {}", b.split(" = ").nth(1).unwrap_or("")),
                (Some(a), None) => format!("{a} -> (removed)"),
                (None, Some(b)) => format!("{b} (added)"),
                (None, None) => k.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn restart_changes_name_their_keys_and_skip_live_ones() {
        let a = Reload::new(
            lines(&[
                "inside.mtu = 1500",
                "peers[0].ulid = fc00::1",
                "te.mode = weighted",
                "workers = 1",
            ]),
            &["peers", "te"],
        );
        let b = Reload::new(
            lines(&[
                "inside.mtu = 9000",
                "peers[0].ulid = fc00::2",
                "te.mode = first_up",
                "table_capacity = 8",
            ]),
            &["peers", "te"],
        );
        assert_eq!(
            a.needs_restart(&b, 10),
            vec![
                "inside.mtu = 1500 -> 9000".to_string(),
                "table_capacity = 8 (added)".to_string(),
                "workers = 1 -> (removed)".to_string(),
            ]
        );
        assert!(a.needs_restart(&a.clone(), 10).is_empty());
        assert_eq!(a.needs_restart(&b, 1).len(), 1);
    }
}
