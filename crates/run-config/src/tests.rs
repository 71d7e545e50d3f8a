//! Configuration loading: a complete file maps onto the runtime structures; every kind of
//! mistake is refused with the key named.

use std::fs;

use super::*;
use crate::fixtures::{config_text, with_services, write_config, write_dir, KEY};

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
            .get(
                std::time::Instant::now(),
                Ulid("fc00:2:2:2::5".parse().unwrap())
            )
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
        (
            "backend",
            config_text("backend = \"netmap\"", ""),
            "backend",
        ),
        (
            "dpdk-desc",
            config_text("", "[dpdk]\nrx_desc = 1000"),
            "dpdk.rx_desc",
        ),
        (
            "dpdk-mbufs",
            config_text("", "[dpdk]\nmbufs_per_socket = 100"),
            "dpdk.mbufs_per_socket",
        ),
        (
            "dpdk-unknown",
            config_text("", "[dpdk]\nlcores = 3"),
            "lcores",
        ),
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
    let text = include_str!("../../../configs/single-site-afpacket.toml");
    let dir = write_dir("example", text, 0o600);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert_eq!(c.backend, Backend::AfPacket);
    assert_eq!(c.pipeline.dataplane.worker_cores, vec![Some(1)]);
    assert_eq!(c.interfaces.len(), 3);
    assert!(c.pipeline.slow_path.ra.is_some());
    assert_eq!(c.site.peers.len(), 1);
    assert_eq!(c.dns.unwrap().alg.ulid_type, 65280);
    assert_eq!(c.dhcp.unwrap().journal, dir.join("leases.journal"));
    assert_eq!(c.te.mode, dataplane::slowpath::te::SplitMode::Weighted);
    assert_eq!(c.te.rules.len(), 1);
    let _ = fs::remove_dir_all(dir);
}

const DNS: &str = r#"[dns]
upstream = ["[2001:db8:53::53]:53", "2001:db8:53::54"]
ulid_rr_type = 65281
upstream_timeout_ms = 700
upstream_attempts = 3
upstream_port = 50123
cache_size = 100
cache_max_ttl_secs = 60
rate_limit_per_sec = 20
rate_limit_burst = 40
max_pending = 64
hosts = "hosts.txt"
host_ttl = 30
cache_view = false
"#;

const DHCP: &str = r#"[dhcp]
journal = "leases.journal"
preferred_lifetime = 600
valid_lifetime = 1200
sec = 1
rapid_commit = false
preference = 255
max_bindings = 10
offer_lifetime = 30
rate_limit_per_sec = 5.0
rate_limit_burst = 10
[[dhcp.static]]
duid = "00:03:00:01:02:00:00:00:00:01"
iaid = 1
modifier = "000102030405060708090a0b0c0d0e0f"
"#;

#[test]
fn dns_and_dhcp_sections_map_onto_the_services() {
    let dir = write_dir("services", &with_services(DNS, DHCP), 0o600);
    fs::write(dir.join("hosts.txt"), "fc00:1:1:1::10 www.site.example\n").unwrap();
    let c = load(&dir.join("pshim6.toml")).unwrap();
    let d = c.dns.as_ref().unwrap();
    assert_eq!(
        d.alg.upstream,
        vec![
            "[2001:db8:53::53]:53".parse().unwrap(),
            "[2001:db8:53::54]:53".parse().unwrap()
        ]
    );
    assert_eq!(d.alg.ulid_type, 65281);
    assert_eq!(d.alg.upstream_timeout, Duration::from_millis(700));
    assert_eq!(d.alg.upstream_attempts, 3);
    assert_eq!(d.upstream_port, 50123);
    assert_eq!((d.alg.cache_capacity, d.alg.max_pending), (100, 64));
    assert_eq!(d.alg.cache_max_ttl, Duration::from_secs(60));
    assert_eq!(
        (d.alg.rate_limit.per_second, d.alg.rate_limit.burst),
        (20, 40)
    );
    assert_eq!((d.alg.host_ttl, d.alg.cache_view), (30, false));
    assert_eq!(d.alg.hosts.len(), 1);
    let h = c.dhcp.as_ref().unwrap();
    assert_eq!(
        h.journal,
        dir.join("leases.journal"),
        "relative to the file"
    );
    assert_eq!(h.site_key, dir.join("site.pem"));
    assert_eq!(h.ulid_prefix.to_string(), "fc00:1:1:1::/64");
    assert_eq!(h.pa_prefixes.len(), 2);
    assert_eq!(
        h.dns_servers,
        vec!["fc00:1:1:1::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(
        (h.preferred_lifetime, h.valid_lifetime, h.sec),
        (600, 1200, 1)
    );
    assert_eq!(
        (h.rapid_commit, h.preference, h.max_bindings),
        (false, 255, 10)
    );
    assert_eq!((h.offer_lifetime, h.rate_limit.burst), (30, 10));
    assert_eq!(h.static_bindings[0].duid.0, [0, 3, 0, 1, 2, 0, 0, 0, 0, 1]);
    let _ = fs::remove_dir_all(dir);

    // Neither section: no services; the upstream port is random in the dynamic range.
    let dir = write_config("no-services", "", "");
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert!(c.dns.is_none() && c.dhcp.is_none());
    let _ = fs::remove_dir_all(dir);
    let dir = write_dir(
        "dns-port",
        &with_services("[dns]\nupstream = [\"::1\"]", ""),
        0o600,
    );
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert!(c.dns.unwrap().upstream_port >= 49_152);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn service_mistakes_are_refused_naming_the_key() {
    let minimal = "[dns]\nupstream = [\"[2001:db8:53::53]:53\"]";
    for (name, text, needle) in [
        (
            "dns-no-address",
            config_text("", minimal),
            "providers[].address",
        ),
        (
            "dns-v4",
            with_services("[dns]\nupstream = [\"192.0.2.1:53\"]", ""),
            "dns.upstream[0]",
        ),
        (
            "dns-bad",
            with_services("[dns]\nupstream = [\"dns.example\"]", ""),
            "dns.upstream[0]",
        ),
        ("dns-none", with_services("[dns]\nupstream = []", ""), "dns"),
        (
            "dns-type",
            with_services(&format!("{minimal}\nulid_rr_type = 28"), ""),
            "dns",
        ),
        (
            "dns-port",
            with_services(&format!("{minimal}\nupstream_port = 53"), ""),
            "dns.upstream_port",
        ),
        (
            "dns-hosts",
            with_services(&format!("{minimal}\nhosts = \"missing.txt\""), ""),
            "dns.hosts",
        ),
        (
            "dns-unknown",
            with_services(&format!("{minimal}\nlisten = \"::1\""), ""),
            "listen",
        ),
        (
            "dhcp-sec",
            with_services("", "[dhcp]\njournal = \"j\"\nsec = 3"),
            "dhcp",
        ),
        (
            "dhcp-modifier",
            with_services(
                "",
                "[dhcp]\njournal = \"j\"\n[[dhcp.static]]\nduid = \"00:03:00:01:02\"\niaid = 1\nmodifier = \"zz\"",
            ),
            "dhcp.static[0].modifier",
        ),
        (
            "dhcp-journal",
            with_services("", "[dhcp]\nsec = 0"),
            "journal",
        ),
    ] {
        let e = error_of(name, &text);
        assert!(e.contains(needle), "{name}: `{e}` does not name `{needle}`");
    }
}
#[test]
fn the_dpdk_example_config_loads() {
    let text = include_str!("../../../configs/dpdk-appliance.toml");
    let dir = write_dir("example-dpdk", text, 0o600);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert_eq!(c.backend, Backend::Dpdk);
    assert_eq!(c.workers, 4);
    assert_eq!(c.interfaces[1], (PortId(1), "0000:01:00.1".into()));
    assert_eq!(c.dpdk.eal_args[..2], ["-l".to_owned(), "1".to_owned()]);
    assert_eq!(c.dpdk.mbufs_per_socket, 65536);
    assert_eq!((c.dpdk.rx_desc, c.dpdk.tx_desc), (1024, 1024));
    assert!(c.dpdk.mac_from_device.is_empty(), "every MAC is configured");
    let _ = fs::remove_dir_all(dir);
    // Without `mac`, a DPDK port waits for its device's (run_dpdk::resolve_macs); an
    // AF_PACKET one would read /sys/class/net/<ethdev name> and fail.
    let text = text.replacen("mac = \"02:00:00:00:00:01\"\n", "", 1);
    let dir = write_dir("example-dpdk-nomac", &text, 0o600);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    assert_eq!(c.dpdk.mac_from_device, [PortId(0)]);
    assert_eq!(
        c.pipeline.dataplane.inside.mac,
        super::dpdk::MAC_PLACEHOLDER
    );
    assert_ne!(
        c.pipeline.dataplane.providers[0].mac,
        super::dpdk::MAC_PLACEHOLDER
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_te_section_is_read_and_validated() {
    use dataplane::slowpath::te::{SplitMode, TePolicy};
    let tail = r#"
[te]
mode = "weighted"
tolerance_pct = 2.5
weights = [{ provider = 1, weight = 70 }, { provider = 2, weight = 30 }]
ingress = [{ provider = 2, priority = 10, weight = 0 }]
[[te.rules]]
destination = "2001:db8:99::/48"
provider = 2
[te.rebalance]
period_ms = 3000
max_moves_per_sec = 50
"#;
    let dir = write_config("te", "", tail);
    let c = load(&dir.join("pshim6.toml")).unwrap();
    let _ = fs::remove_dir_all(dir);
    assert_eq!(c.te.mode, SplitMode::Weighted);
    assert_eq!(c.te.tolerance_pct, 2.5);
    assert_eq!(c.te.weights.len(), 2);
    assert_eq!((c.te.weights[0].provider, c.te.weights[0].weight), (1, 70));
    assert_eq!(c.te.rules[0].provider, 2);
    assert_eq!(
        c.te.rules[0].destination.unwrap().to_string(),
        "2001:db8:99::/48"
    );
    assert_eq!(
        (c.te.ingress[0].provider, c.te.ingress[0].priority),
        (2, 10)
    );
    assert_eq!(c.te.rebalance.period_ms, 3000);
    assert!(c.te.rebalance.enabled);
    // Left out: the engine's default choice.
    let dir = write_config("te-none", "", "");
    assert_eq!(
        load(&dir.join("pshim6.toml")).unwrap().te,
        TePolicy::default()
    );
    let _ = fs::remove_dir_all(dir);

    for (name, te, want) in [
        (
            "te-unknown",
            "[te]\nmode = \"weighted\"\nweights = [{ provider = 3, weight = 1 }]",
            "te.weights: provider 3 is not configured",
        ),
        ("te-typo", "[te]\nmod = \"weighted\"", "mod"),
        ("te-mode", "[te]\nmode = \"fastest\"", "fastest"),
        (
            "te-overflow",
            "[te]\nmode = \"cheapest_first\"\ncheapest = [2, 1]",
            "te.overflow_mbps",
        ),
        (
            "te-prefix",
            "[[te.rules]]\ndestination = \"2001:db8::/200\"\nprovider = 1",
            "prefix length",
        ),
    ] {
        let e = error_of(name, &config_text("", te));
        assert!(e.contains(want), "{name}: {e}");
    }
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

#[test]
fn the_bgp_signal_section_is_read_and_checked_against_the_providers() {
    let dir = write_config(
        "bgp",
        "",
        "\n[bgp_signal]\nproviders = [{ id = 1, table = 101 }, { id = 2, table = 102 }]\n",
    );
    let c = load(&dir.join("pshim6.toml")).unwrap();
    let _ = fs::remove_dir_all(dir);
    assert_eq!(c.bgp_signal.unwrap().tables, [(1, 101), (2, 102)]);
    let dir = write_config("bgp-none", "", "");
    assert!(load(&dir.join("pshim6.toml")).unwrap().bgp_signal.is_none());
    let _ = fs::remove_dir_all(dir);
    let dir = write_config(
        "bgp-bad",
        "",
        "\n[bgp_signal]\nproviders = [{ id = 9, table = 101 }]\n",
    );
    let err = format!("{:#}", load(&dir.join("pshim6.toml")).err().unwrap());
    let _ = fs::remove_dir_all(dir);
    assert!(
        err.contains("bgp_signal.providers[0].id: no provider has id 9"),
        "{err}"
    );
}
