//! The lab's authoritative DNS: Knot in its own namespace behind the core, serving `lab.`
//! (each site host's AAAA = its locators, plus its ULID record, as `pshim6 dns zone` prints
//! them; the external host's plain AAAA) and the reverse zone of the CMULAs (PTR). The zones
//! are written once the hosts have their bindings, as a site would publish them.

use std::fs;
use std::net::Ipv6Addr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dns_alg::zone::{zone_records, ZoneConfig, ZoneHost};

use super::cleanup::{forget_pid, record_pid, state_dir, terminate};
use super::cmd::{command_in, exec};
use super::topology::{ns, Prov, Site, DNS_ADDR, EXT_ADDR};

/// The ULID record's RR type (private use, the `pshim6 dns-alg` default).
pub(crate) const ULID_TYPE: u16 = 65280;
/// The external host's name.
pub(crate) const EXT_NAME: &str = "ext.lab.";
/// Origin of the reverse zone holding both sites' CMULAs (fc00::/16).
const REVERSE_ORIGIN: &str = "0.0.c.f.ip6.arpa.";

/// The zone files: (origin, text).
pub(crate) fn zones(hosts: &[(Site, Ipv6Addr)]) -> Result<Vec<(String, String)>> {
    let cfg = ZoneConfig {
        zone: "lab.".into(),
        ttl: 30,
        ulid_type: ULID_TYPE,
        hosts: hosts
            .iter()
            .map(|(s, ulid)| ZoneHost {
                name: s.host_name(),
                ulid: *ulid,
                locators: Prov::ALL
                    .iter()
                    .map(|p| super::topology::with_prefix(s.pa_prefix(*p), *ulid))
                    .collect(),
            })
            .collect(),
    };
    let records = zone_records(&cfg).context("building the lab's zone records")?;
    let soa = |origin: &str| {
        format!(
            "$ORIGIN {origin}\n$TTL 30\n@ SOA ns.lab. hostmaster.lab. 1 3600 900 604800 30\n\
             @ NS ns.lab.\n"
        )
    };
    let mut forward = soa("lab.");
    forward.push_str(&format!("ns AAAA {DNS_ADDR}\n{EXT_NAME} AAAA {EXT_ADDR}\n"));
    for l in &records.forward {
        forward.push_str(l);
        forward.push('\n');
    }
    let mut reverse = soa(REVERSE_ORIGIN);
    for l in &records.reverse {
        reverse.push_str(l);
        reverse.push('\n');
    }
    Ok(vec![
        ("lab.".into(), forward),
        (REVERSE_ORIGIN.into(), reverse),
    ])
}

/// A running knotd.
#[derive(Debug)]
pub(crate) struct Knot {
    child: Child,
}

impl Knot {
    /// Writes the zones and starts knotd in the DNS namespace; returns once it answers.
    pub(crate) fn start(zones: &[(String, String)]) -> Result<Self> {
        let dir = state_dir().join("knot");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: {DNS_ADDR}@53\n\
             database:\n    storage: \"{d}/db\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: \"{d}\"\n\
             zone:\n",
            d = dir.display()
        );
        for (i, (origin, text)) in zones.iter().enumerate() {
            let file = format!("zone{i}.zone");
            fs::write(dir.join(&file), text)?;
            conf.push_str(&format!("  - domain: {origin}\n    file: {file}\n"));
        }
        let conf_path = dir.join("knot.conf");
        fs::write(&conf_path, conf)?;
        let knotd = ["/usr/sbin/knotd", "/usr/bin/knotd", "/sbin/knotd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or("knotd");
        let log = fs::File::create(dir.join("knotd.log"))?;
        let child = command_in(&ns("dns"), &[knotd, "-c", &conf_path.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting knotd (package knot)")?;
        record_pid("knotd", child.id(), knotd)?;
        let knot = Self { child };
        let until = Instant::now() + Duration::from_secs(15);
        let server = format!("@{DNS_ADDR}");
        loop {
            let ok = exec(
                &ns("dns"),
                &[
                    "dig", "+short", "+time=1", "+tries=1", &server, "SOA", "lab.",
                ],
            )
            .is_ok_and(|o| o.contains("hostmaster"));
            if ok {
                return Ok(knot);
            }
            if Instant::now() > until {
                let log = fs::read_to_string(dir.join("knotd.log")).unwrap_or_default();
                bail!("knotd did not serve lab. within 15 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        terminate(self.child.id(), Duration::from_secs(2));
        let _ = self.child.wait();
        forget_pid("knotd");
    }
}

/// Resolves `name` (AAAA) from inside `ns_name` through `server`; the addresses answered.
pub(crate) fn resolve(ns_name: &str, server: Ipv6Addr, name: &str) -> Result<Vec<Ipv6Addr>> {
    let out = exec(
        ns_name,
        &[
            "dig",
            "+short",
            "+time=2",
            "+tries=3",
            &format!("@{server}"),
            "AAAA",
            name,
        ],
    )?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_hold_locators_ulid_record_and_ptr() {
        let u: Ipv6Addr = "fc00:2::1234:5678:9abc:def0".parse().unwrap();
        let z = zones(&[(Site(2), u)]).unwrap();
        assert_eq!(z.len(), 2);
        let fwd = &z[0].1;
        assert!(
            fwd.contains("h2.s2.lab. 30 IN AAAA 2001:db8:2:a:1234:5678:9abc:def0"),
            "{fwd}"
        );
        assert!(
            fwd.contains("h2.s2.lab. 30 IN AAAA 2001:db8:2:b:1234:5678:9abc:def0"),
            "{fwd}"
        );
        assert!(
            fwd.contains("TYPE65280 \\# 16 fc000002000000001234"),
            "{fwd}"
        );
        assert!(fwd.contains("ext.lab. AAAA 2001:db8:e::2"), "{fwd}");
        let rev = &z[1].1;
        assert!(rev.contains("PTR h2.s2.lab."), "{rev}");
        assert!(rev.contains(".0.0.c.f.ip6.arpa."), "{rev}");
    }
}
