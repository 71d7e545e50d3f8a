//! Any bytes as a `pshim6 run` configuration file, through the loader `pshim6 check-config`
//! and `pshim6 run` use (`run_config::load_layered`: TOML file, `PSHIM6_*` environment layer,
//! every check, the site key read). Bytes after the first NUL are `NAME=VALUE` lines: the
//! environment overrides. It must never panic, and a refusal must say which file it is about
//! (every error starts `reading FILE` or `in FILE: key: ...`).
#![no_main]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use run_config::fixtures::KEY;

/// A directory of this process holding `site.pem` (mode 0600), where each input is written
/// as `pshim6.toml`.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pshim6-fuzz-config-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("site.pem"), KEY).unwrap();
        fs::set_permissions(d.join("site.pem"), fs::Permissions::from_mode(0o600)).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let env: HashMap<String, String> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("PSHIM6_{k}"), v.to_string()))
        .collect();
    let path = dir().join("pshim6.toml");
    fs::write(&path, file).unwrap();
    if let Err(e) = run_config::load_layered(&path, env) {
        let msg = e.to_string();
        let shown = path.display().to_string();
        assert!(
            msg.starts_with(&format!("reading {shown}"))
                || msg.starts_with(&format!("in {shown}: ")),
            "{msg}"
        );
    }
});
