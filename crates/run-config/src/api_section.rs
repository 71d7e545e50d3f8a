//! The `[api]` table: where the operator REST API listens and its bearer token
//! (`crates/api`). Without the table no API runs.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{bail, err, Result};
use serde::Deserialize;

/// Default management address: loopback only.
pub const DEFAULT_LISTEN: &str = "[::1]:8080";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    core: Option<usize>,
}

/// The checked `[api]` table.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Address and port the API listens on.
    pub listen: SocketAddr,
    /// The bearer token.
    pub token: api::Token,
    /// Housekeeping core for the API thread; `None`: the lowest core no worker uses.
    pub core: Option<usize>,
}

/// Checks `[api]`: the address parses, the token file exists, is private (mode 0600) and
/// holds a usable token, the core is no worker's.
pub(crate) fn convert(
    raw: &RawApi,
    base: &Path,
    worker_cores: &[Option<usize>],
) -> Result<ApiSettings> {
    let text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = text.parse().map_err(|e| {
        err!("api.listen: `{text}`: {e} (expected ADDR:PORT, e.g. {DEFAULT_LISTEN})")
    })?;
    let Some(file) = &raw.token_file else {
        bail!("api.token_file: missing; the API needs a bearer token (e.g. `head -c 32 /dev/urandom | base64 > api.token; chmod 600 api.token`)");
    };
    let path = if file.is_absolute() {
        file.clone()
    } else {
        base.join(file)
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| err!("api.token_file: {} cannot be read: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "api.token_file: {} has mode {mode:04o}; a secret must be mode 0600 (chmod 600)",
            path.display()
        );
    }
    let token = api::Token::from_file(&path).map_err(|e| err!("api.token_file: {e}"))?;
    if let Some(c) = raw.core {
        if worker_cores.contains(&Some(c)) {
            bail!("api.core: core {c} used twice (it is a worker core; the API runs on a housekeeping core)");
        }
    }
    Ok(ApiSettings {
        listen,
        token,
        core: raw.core,
    })
}
