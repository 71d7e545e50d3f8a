//! The `pshim6 run` configuration file: any bytes as `pshim6.toml` (next to a valid 0600
//! `site.pem`) through the binary's own loader (`crates/pshim6/src/run_config.rs`, compiled in
//! here as it is in the binary). No panic; an error never quotes the private key.
#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/pshim6/src/run_config.rs"]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod run_config;

#[path = "../../crates/shim6/src/tests/keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod keys;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pshim6-fuzz-run-config-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let key = d.join("site.pem");
        fs::write(&key, keys::SITE_A_PEM).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("pshim6.toml");
    fs::write(&path, data).unwrap();
    if let Err(e) = run_config::load(&path) {
        let text = format!("{e:#}");
        // A line of the base64 body of the key.
        assert!(!text.contains("MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALe"), "{text}");
    }
});
