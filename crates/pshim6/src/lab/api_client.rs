//! The operator REST API of a lab proxy (`[api]`, issue #8), reached from inside the proxy's
//! namespace: the API listens on the namespace's loopback, so the request runs there through
//! `ip netns exec NS curl`. The bearer token goes in a header file (mode 0600), never on a
//! command line other processes can read.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::RngCore;
use serde_json::Value;

use super::cleanup::state_dir;
use super::cmd::exec;
use super::topology::Site;

/// Where the lab's proxies serve their API, in their own namespaces.
pub(crate) const LISTEN: &str = "[::1]:8080";

/// Site `s`'s API token file (named by the proxy's `api.token_file`).
pub(crate) fn token_path(dir: &Path, s: Site) -> PathBuf {
    dir.join(format!("s{}.token", s.0))
}

fn header_path(s: Site) -> PathBuf {
    state_dir().join(format!("s{}.auth-header", s.0))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

/// Writes a fresh random token for site `s` (the proxy's token file, mode 0600) and the
/// `Authorization` header file the client sends.
pub(crate) fn write_token(s: Site) -> Result<PathBuf> {
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = raw.iter().fold(String::new(), |mut t, b| {
        let _ = write!(t, "{b:02x}");
        t
    });
    let path = token_path(&state_dir(), s);
    write_secret(&path, &format!("{token}\n"))?;
    write_secret(&header_path(s), &format!("Authorization: Bearer {token}\n"))?;
    Ok(path)
}

/// `METHOD path` on site `s`'s API; the JSON answer (`null` for an empty body). A status
/// other than 2xx is an error quoting the API's message.
pub(crate) fn call(s: Site, method: &str, path: &str) -> Result<Value> {
    call_in(&s.proxy_ns(), s, method, path)
}

/// [`call`] on the API of the proxy in namespace `ns` (one of site `s`'s proxies, which share
/// the site's token).
pub(crate) fn call_in(ns: &str, s: Site, method: &str, path: &str) -> Result<Value> {
    let url = format!("http://{LISTEN}{path}");
    let header = format!("@{}", header_path(s).display());
    let out = exec(
        ns,
        &[
            "curl",
            "-sS",
            "-g",
            "--max-time",
            "5",
            "-X",
            method,
            "-H",
            &header,
            "-w",
            "\n%{http_code}",
            &url,
        ],
    )?;
    let (body, code) = out
        .rsplit_once('\n')
        .ok_or_else(|| anyhow!("{method} {path}: no status from curl: {out}"))?;
    let code: u16 = code
        .trim()
        .parse()
        .map_err(|_| anyhow!("{method} {path}: bad status `{code}`"))?;
    if !(200..300).contains(&code) {
        bail!("{method} {path} in {ns}: HTTP {code}: {}", body.trim());
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(body).with_context(|| format!("{method} {path}: not JSON: {body}"))
}

/// Every context of site `s` (`GET /v1/contexts`, one page of up to 1000).
pub(crate) fn contexts(s: Site) -> Result<Vec<Value>> {
    let page = call(s, "GET", "/v1/contexts?limit=1000")?;
    page["items"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("GET /v1/contexts: no `items` in {page}"))
}
