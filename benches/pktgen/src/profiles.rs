//! Profiles for other generators: pcap files of the mix (one per port) and a pktgen-dpdk Lua
//! script that replays them, so a real appliance can be driven by pktgen-dpdk (or TRex, which
//! replays the same pcaps) with exactly the traffic `pshim6-pktgen` sends.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use wire::pcap::PcapWriter;

use crate::mix::{Builder, Class, Mix, Sizes, MAX_SIZE};

/// What to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProfileOptions {
    /// Contexts the frames cycle over.
    pub(crate) contexts: usize,
    /// Frames in both pcaps together.
    pub(crate) count: u64,
    /// pktgen-dpdk rate, percent of line rate.
    pub(crate) rate_percent: u32,
    /// pktgen-dpdk run time.
    pub(crate) seconds: u32,
}

/// Writes `inside.pcap` (frames the inside port sends: egress, NATv6) and `outside.pcap`
/// (ingress, control) with `count` frames of the mix in all, cycling over the contexts, and
/// `pshim6.lua`. Returns the frames written per file.
pub(crate) fn write(
    dir: &Path,
    builder: &Builder,
    mix: &Mix,
    sizes: &Sizes,
    o: &ProfileOptions,
) -> Result<(u64, u64)> {
    let (contexts, count) = (o.contexts, o.count);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| -> Result<PcapWriter<BufWriter<File>>> {
        let p = dir.join(name);
        let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        PcapWriter::new(BufWriter::new(f)).with_context(|| format!("writing {}", p.display()))
    };
    let mut w = [open("inside.pcap")?, open("outside.pcap")?];
    let mut n = [0u64; 2];
    let mut buf = vec![0u8; MAX_SIZE];
    for k in 0..count {
        let class = mix.nth(k);
        let size = sizes.nth(k / 64);
        let ctx = (k as usize / 4) % contexts.max(1);
        // The stamp's time is 0 in a profile: latency is measured by the replaying tool.
        let len = builder.build(&mut buf, class, ctx, size, 0);
        let port = usize::from(!class.sent_inside());
        w[port]
            .write_frame(k * 1000, &buf[..len])
            .context("writing a frame")?;
        n[port] += 1;
    }
    for x in w {
        x.into_inner()
            .context("closing a pcap")?
            .flush()
            .context("flushing a pcap")?;
    }
    let lua = dir.join("pshim6.lua");
    fs::write(&lua, lua_script(mix, sizes, o.rate_percent, o.seconds))
        .with_context(|| format!("writing {}", lua.display()))?;
    Ok((n[0], n[1]))
}

/// A pktgen-dpdk script: port 0 faces the proxy's inside link, port 1 its provider link,
/// each replaying its pcap (`-s 0:inside.pcap -s 1:outside.pcap` on pktgen's command line).
fn lua_script(mix: &Mix, sizes: &Sizes, rate_percent: u32, seconds: u32) -> String {
    let w = mix.weights();
    let names: Vec<String> = Class::ALL
        .iter()
        .map(|c| format!("{}={}", c.name(), w[c.index()]))
        .collect();
    format!(
        r#"-- pshim6 traffic mix for pktgen-dpdk, written by `pshim6-pktgen profile`.
-- Mix {mix}, mean frame {mean:.0} bytes.
-- Port 0 -> the proxy's inside port (inside.pcap: egress to peers' ULIDs, NATv6),
-- port 1 -> a provider port (outside.pcap: tagged payload to our locators, REAP control).
--   pktgen -l 0-4 -n 4 -a <NIC0> -a <NIC1> -- -P -T -m "[1:2].0,[3:4].1" \
--          -s 0:inside.pcap -s 1:outside.pcap -f pshim6.lua
-- The proxy must run with `[dpdk] synthetic_contexts` equal to the generator's --contexts
-- (the same addresses and tags), and answer for the MACs the pcaps were written for.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local ports = "0,1"
local rate = {rate}          -- percent of line rate, per port
local seconds = {seconds}

pktgen.pcap(ports, "on")
pktgen.set(ports, "rate", rate)
pktgen.clr()
pktgen.start(ports)
pktgen.delay(seconds * 1000)
pktgen.stop(ports)
pktgen.delay(500)            -- let the last frames come back

-- Frames that came back: port 1 receives the inside port's traffic, port 0 the outside's.
for p = 0, 1 do
  local s = pktgen.portStats(tostring(p), "port")[p]
  printf("port %d: sent %d received %d errors %d missed %d\n",
         p, s.opackets, s.ipackets, s.ierrors, s.imissed)
end
"#,
        mix = names.join(","),
        mean = sizes.mean(),
        rate = rate_percent,
        seconds = seconds,
    )
}

#[cfg(test)]
mod tests {
    use dataplane::bench::Synthetic;
    use dataplane::config::Prefix64;
    use wire::pcap::PcapReader;

    use super::*;
    use crate::mix::{read_stamp, Addressing};

    #[test]
    fn profiles_hold_the_mix_split_by_port() {
        let p = |s: &str| Prefix64::of(s.parse().unwrap());
        let b = Builder {
            addr: Addressing {
                dut_inside_mac: [2, 0, 0, 0, 0, 1],
                dut_outside_mac: [2, 0, 0, 0, 1, 1],
                host_mac: [2, 0x11, 0x22, 0x33, 0x44, 0x55],
                router_mac: [2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa],
                site: Synthetic::with_prefixes(p("fc00:1:1:1::"), p("2001:db8:1a::"), 8),
            },
        };
        let mix = Mix::parse("egress=1,ingress=1,natv6=1,control=1").unwrap();
        let sizes = Sizes::parse("imix").unwrap();
        let dir = std::env::temp_dir().join(format!("pshim6-pktgen-prof-{}", std::process::id()));
        let o = ProfileOptions {
            contexts: 8,
            count: 1024,
            rate_percent: 50,
            seconds: 3,
        };
        let (i, out) = write(&dir, &b, &mix, &sizes, &o).unwrap();
        assert_eq!((i, out), (512, 512));
        for (name, want, port_inside) in [("inside.pcap", i, true), ("outside.pcap", out, false)] {
            let mut r = PcapReader::new(File::open(dir.join(name)).unwrap()).unwrap();
            let mut n = 0;
            let mut lens = std::collections::BTreeSet::new();
            while let Some(rec) = r.next_record().unwrap() {
                let (class, _) = read_stamp(&rec.frame).expect("every frame is stamped");
                assert_eq!(class.sent_inside(), port_inside, "{name}: {class:?}");
                lens.insert(rec.frame.len());
                n += 1;
            }
            assert_eq!(n, want);
            assert!(lens.len() >= 3, "{name}: IMIX sizes {lens:?}");
        }
        let lua = fs::read_to_string(dir.join("pshim6.lua")).unwrap();
        assert!(lua.contains("local rate = 50") && lua.contains("local seconds = 3"));
        assert!(lua.contains("egress=1,ingress=1,natv6=1,control=1"));
        let _ = fs::remove_dir_all(dir);
    }
}
