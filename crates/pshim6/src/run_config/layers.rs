//! Configuration layers: the TOML file, then `PSHIM6_*` environment variables on top
//! (`PSHIM6_` prefix, `__` between nested keys, snake_case keys, `,` between list items of
//! `worker_cores`). Unknown keys are errors in either layer.
//!
//! A live reload (SIGHUP) re-reads both layers and applies what can change without a
//! restart; [`Reload`] tells what else changed, so the operator knows a restart is due.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// The environment variables that override the file.
pub(crate) fn env_overrides() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("PSHIM6_"))
        .collect()
}

/// Reads `path` (TOML) with `env` layered on top.
pub(super) fn read<T: DeserializeOwned>(path: &Path, env: HashMap<String, String>) -> Result<T> {
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
        .and_then(config::Config::try_deserialize);
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

/// The settings only a restart applies, as text, to compare two loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reload {
    fixed: String,
}

impl Reload {
    pub(super) fn new(fixed: String) -> Self {
        Self { fixed }
    }

    /// Lines of the restart-only settings that differ in `newer` (at most `max`), each
    /// naming the key: what a reload could not apply.
    pub(crate) fn needs_restart(&self, newer: &Reload, max: usize) -> Vec<String> {
        let old: Vec<&str> = self.fixed.lines().collect();
        let new: Vec<&str> = newer.fixed.lines().collect();
        let mut out = Vec::new();
        for i in 0..old.len().max(new.len()) {
            let (a, b) = (old.get(i), new.get(i));
            if a != b {
                out.push(format!(
                    "`{}` -> `{}`",
                    a.map_or("", |s| s.trim()),
                    b.map_or("", |s| s.trim())
                ));
                if out.len() >= max {
                    break;
                }
            }
        }
        out
    }
}
