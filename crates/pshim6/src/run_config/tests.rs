//! Configuration loading: a complete file maps onto the runtime structures; every kind of
//! mistake is refused with the key named.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const KEY: &str = include_str!("../../../sim/keys/site-a.pem");

/// A host binding made with the test key: (ULID, parameters hex).
fn host() -> (Ipv6Addr, String) {
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
pub(crate) fn config_text(top: &str, tail: &str) -> String {
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
pub(crate) fn write_dir(name: &str, text: &str, key_mode: u32) -> PathBuf {
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
pub(crate) fn write_config(name: &str, top: &str, tail: &str) -> PathBuf {
    write_dir(name, &config_text(top, tail), 0o600)
}

fn error_of(name: &str, text: &str) -> String {
    let dir = write_dir(name, text, 0o600);
    let e = match load(&dir.join("pshim6.toml")) {
        Ok(_) => panic!("{name}: accepted"),
        Err(e) => format!("{e:#}"),
    };
    let _ = fs::remove_dir_all(dir);
    e
}

#[test]
fn a_complete_config_maps_onto_the_runtime_structures() {
    let dir = write_config(
        "full",
        "workers = 2",
        "[slow_path]\npending_per_pair = 4\n[inside.router_advertisements]\nmtu = 1492",
    );
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert_eq!(c.backend, Backend::AfPacket, "AF_PACKET is the default");
    assert_eq!(c.workers, 2);
    assert_eq!(
        c.interfaces,
        vec![
            (PortId(0), "in0".into()),
            (PortId(1), "up0".into()),
            (PortId(2), "up1".into())
        ]
    );
    let dp = &c.pipeline.dataplane;
    assert_eq!(
        dp.ulid_prefix,
        Prefix64::of("fc00:1:1:1::".parse().unwrap())
    );
    assert_eq!(dp.worker_cores, vec![None, None]);
    assert_eq!(
        dp.providers[0].exit,
        Exit::Direct {
            next_hop: "fe80::a".parse().unwrap()
        }
    );
    assert!(matches!(dp.providers[1].exit, Exit::Tunnel { .. }));
    assert_eq!(dp.providers[1].port, PortId(2));
    assert_eq!(dp.inside.mtu, 1500);
    assert_eq!(c.site.engine.reap.send_timeout, Duration::from_secs(2));
    assert_eq!(c.site.hosts.len(), 1);
    assert_eq!(
        c.site
            .peers
            .get(Ulid("fc00:2:2:2::5".parse().unwrap()))
            .map(<[Locator]>::len),
        Some(2)
    );
    assert_eq!(c.pipeline.slow_path.pending_per_pair, 4);
    assert_eq!(c.pipeline.slow_path.ra.and_then(|r| r.mtu), Some(1492));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn mistakes_are_refused_naming_the_key() {
    let ok = config_text("", "");
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown", config_text("colour = 3", ""), "colour"),
        (
            "unknown-nested",
            config_text("", "reap_sned_timeout_ms = 1"),
            "reap_sned_timeout_ms",
        ),
        ("type", ok.replace("mtu = 1500", "mtu = \"big\""), "mtu"),
        (
            "prefix",
            ok.replace("2001:db8:1a::/64", "2001:db8:1a::/48"),
            "providers[0].prefix",
        ),
        (
            "mac",
            ok.replace("02:00:00:00:01:01", "02:00:00:01:01"),
            "providers[0].mac",
        ),
        ("backend", config_text("backend = \"dpdk\"", ""), "backend"),
        (
            "mtu",
            ok.replace("mtu = 1500", "mtu = 1290"),
            "providers[1].mtu",
        ),
        (
            "tunnel",
            ok.replace(", tunnel_remote = \"2001:db8:ff::1\"", ""),
            "providers[1].exit",
        ),
        (
            "host",
            ok.replace("ulid = \"fc00:1:1:1:", "ulid = \"fc00:1:1:1:1"),
            "hosts[0]",
        ),
        (
            "peer",
            ok.replace("\"2001:db8:2a::5\"", "\"nowhere\""),
            "peers[0].locators[0]",
        ),
        (
            "reap",
            config_text("", "reap_send_timeout_ms = 0"),
            "send_timeout",
        ),
    ];
    for (name, text, key) in cases {
        let e = error_of(name, &text);
        assert!(e.contains(key), "{name}: error does not name `{key}`: {e}");
    }
}

#[test]
fn a_readable_site_key_is_refused() {
    let dir = write_dir("mode", &config_text("", ""), 0o644);
    let e = format!("{:#}", load(&dir.join("pshim6.toml")).err().unwrap());
    assert!(e.contains("site_key") && e.contains("0600"), "{e}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_example_config_loads() {
    let text = include_str!("../../../../configs/single-site-afpacket.toml");
    let dir = write_dir("example", text, 0o600);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert_eq!(c.backend, Backend::AfPacket);
    assert_eq!(c.pipeline.dataplane.worker_cores, vec![Some(1)]);
    assert_eq!(c.interfaces.len(), 3);
    assert!(c.pipeline.slow_path.ra.is_some());
    assert_eq!(c.site.peers.len(), 1);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn key_material_never_appears_in_errors() {
    let body: Vec<&str> = KEY.lines().filter(|l| !l.starts_with("-----")).collect();
    let leaks = |e: &str| body.iter().any(|l| e.contains(l));
    // A group-readable key: the error names the file and its mode, never the contents.
    let dir = write_dir("secret-mode", &config_text("", ""), 0o640);
    let e = load(&dir.join("pshim6.toml")).err().unwrap();
    for text in [format!("{e:#}"), format!("{e:?}")] {
        assert!(text.contains("0640") && !leaks(&text), "{text}");
    }
    let _ = fs::remove_dir_all(dir);
    // A 0600 file that is not a usable key (a mangled copy): not quoted either.
    let dir = write_dir("secret-bad", &config_text("", ""), 0o600);
    let mangled = KEY.replacen("MII", "XXX", 1);
    fs::write(dir.join("site.pem"), &mangled).unwrap();
    let e = load(&dir.join("pshim6.toml")).err().unwrap();
    let mangled_body: Vec<&str> = mangled
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for text in [format!("{e:#}"), format!("{e:?}")] {
        assert!(text.contains("site_key"), "{text}");
        assert!(!mangled_body.iter().any(|l| text.contains(l)), "{text}");
    }
    let _ = fs::remove_dir_all(dir);
    // The loaded key's Debug form (what a `{:?}` of the runtime config would print).
    let dir = write_dir("secret-ok", &config_text("", ""), 0o600);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    let text = format!("{:?}", c.site.key);
    assert!(!leaks(&text), "{text}");
    let _ = fs::remove_dir_all(dir);
}
