//! Complete, valid configurations written to a temporary directory with a site key, for the
//! tests of this crate and (feature `fixtures`) of the binary. Test support: a failure to
//! write them is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::Ipv6Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use cga::SiteKey;
use dataplane::config::Prefix64;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The test site key (PKCS#8 PEM).
pub const KEY: &str = include_str!("../../sim/keys/site-a.pem");

/// A host binding made with the test key: (ULID, parameters hex).
pub fn host() -> (Ipv6Addr, String) {
    let key = SiteKey::from_pkcs8_pem(KEY).unwrap();
    let prefix = Prefix64::of("fc00:1:1:1::".parse().unwrap())
        .0
        .to_be_bytes();
    let (a, p) = cga::generate(
        key.public_key_der(),
        prefix,
        0,
        &[],
        &mut StdRng::seed_from_u64(5),
    )
    .unwrap();
    (a, hex::encode(p.to_bytes()))
}

/// The text of a complete configuration; `top` goes before the first table, `tail` after the
/// last.
pub fn config_text(top: &str, tail: &str) -> String {
    let (ulid, params) = host();
    format!(
        r#"ulid_prefix = "fc00:1:1:1::/64"
site_key = "site.pem"
{top}
[inside]
interface = "in0"
mac = "02:00:00:00:00:01"
link_local = "fe80::1"
global = "fc00:1:1:1::1"

[[providers]]
id = 1
interface = "up0"
mac = "02:00:00:00:01:01"
prefix = "2001:db8:1a::/64"
exit = {{ next_hop = "fe80::a" }}

[[providers]]
id = 2
interface = "up1"
mac = "02:00:00:00:02:01"
mtu = 1500
prefix = "2001:db8:1b::/64"
exit = {{ next_hop = "fe80::b", tunnel_local = "2001:db8:1b::ffff", tunnel_remote = "2001:db8:ff::1" }}

[[hosts]]
ulid = "{ulid}"
parameters = "{params}"

[[peers]]
ulid = "fc00:2:2:2::5"
locators = ["2001:db8:2a::5", "2001:db8:2b::5"]

[engine]
reap_send_timeout_ms = 2000
{tail}
"#
    )
}

/// A directory holding `pshim6.toml` (`text`) and `site.pem` with `key_mode`.
pub fn write_dir(name: &str, text: &str, key_mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pshim6-runcfg-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("pshim6.toml"), text).unwrap();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(key_mode)
        .open(dir.join("site.pem"))
        .unwrap();
    f.write_all(KEY.as_bytes()).unwrap();
    fs::set_permissions(dir.join("site.pem"), fs::Permissions::from_mode(key_mode)).unwrap();
    dir
}

/// A valid configuration with `top` and `tail` added, written out.
pub fn write_config(name: &str, top: &str, tail: &str) -> PathBuf {
    write_dir(name, &config_text(top, tail), 0o600)
}

/// `[dns]` and `[dhcp]` with every key, the provider addresses the ALG needs.
pub fn with_services(dns: &str, dhcp: &str) -> String {
    config_text("", &format!("{dns}\n{dhcp}")).replace(
        "prefix = \"2001:db8:1a::/64\"",
        "prefix = \"2001:db8:1a::/64\"\naddress = \"2001:db8:1a::1\"",
    )
}
