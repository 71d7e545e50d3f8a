//! Captures of the four provider links (`dumpcap`, tshark's capture engine, in the proxies'
//! namespaces) and what the lab reads from them: whether any CMULA (a ULID) appeared as
//! source or destination, which context tags the Shim6 payload extension headers carried
//! ([RFC 5533 §5.3](https://www.rfc-editor.org/rfc/rfc5533#section-5.3)), and how many Shim6
//! control messages passed. The headers are read with the project's own `wire` views; the
//! payload-header count is checked against tshark's Shim6 dissector.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wire::payload::PayloadHeader;
use wire::pcap::PcapReader;

use super::cleanup::{forget_pid, record_pid, state_dir, terminate};
use super::cmd::{command_in, run};
use super::topology::{is_cmula, Prov, Site};

/// IPv6 Next Header value of Shim6 ([RFC 5533 §5](https://www.rfc-editor.org/rfc/rfc5533#section-5)).
const SHIM6: u8 = 140;

/// What the captures of one scenario showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkFindings {
    /// Frames read (IPv6 only).
    pub(crate) frames: u64,
    /// Frames whose source or destination is a CMULA.
    pub(crate) ulid_frames: u64,
    /// Frames with a Shim6 payload extension header (P = 1).
    pub(crate) payload_frames: u64,
    /// Shim6 control messages (P = 0).
    pub(crate) control_frames: u64,
    /// Distinct context tags in payload headers.
    pub(crate) tags: BTreeSet<u64>,
}

impl LinkFindings {
    /// Adds what one Ethernet frame shows.
    pub(crate) fn add_frame(&mut self, frame: &[u8]) {
        if frame.get(12..14) != Some(&[0x86, 0xdd]) || frame.len() < 54 {
            return;
        }
        self.frames += 1;
        let addr = |at: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&frame[at..at + 16]);
            Ipv6Addr::from(o)
        };
        if is_cmula(addr(22)) || is_cmula(addr(38)) {
            self.ulid_frames += 1;
        }
        if frame[20] != SHIM6 {
            return;
        }
        match PayloadHeader::new_checked(&frame[54..]) {
            Ok(h) if h.p_bit() => {
                self.payload_frames += 1;
                self.tags.insert(u64::from(h.context_tag()));
            }
            Ok(_) => self.control_frames += 1,
            Err(_) => {}
        }
    }

    /// Adds every frame of a pcap file.
    pub(crate) fn add_pcap(&mut self, path: &Path) -> Result<()> {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut r = PcapReader::new(BufReader::new(f))
            .with_context(|| format!("reading {}", path.display()))?;
        while let Some(rec) = r
            .next_record()
            .with_context(|| format!("reading {}", path.display()))?
        {
            self.add_frame(&rec.frame);
        }
        Ok(())
    }
}

/// Frames with a Shim6 payload header in `path` according to tshark's dissector.
pub(crate) fn tshark_payload_frames(path: &Path) -> Result<u64> {
    let p = path.to_string_lossy();
    let out = run(
        "tshark",
        &[
            "-r",
            &p,
            "-Y",
            "shim6.p == 1",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

/// [`tshark_payload_frames`] over all of `paths`, merged first (`mergecap`) so tshark starts
/// once (its start-up, loading every dissector, is the slow part).
pub(crate) fn tshark_payload_frames_all(paths: &[PathBuf]) -> Result<u64> {
    let Some(first) = paths.first() else {
        return Ok(0);
    };
    let merged = first.with_extension("merged.pcap");
    let mut args = vec![
        "-F".to_string(),
        "pcap".into(),
        "-w".into(),
        merged.to_string_lossy().into_owned(),
    ];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run("mergecap", &refs)?;
    let n = tshark_payload_frames(&merged);
    let _ = std::fs::remove_file(&merged);
    n
}

/// Running captures of every provider link.
#[derive(Debug)]
pub(crate) struct Captures {
    children: Vec<(String, Child)>,
    /// The capture files.
    pub(crate) files: Vec<PathBuf>,
}

impl Captures {
    /// Starts one `dumpcap` per provider link (headers only) for scenario `tag`; returns once
    /// all of them capture.
    pub(crate) fn start(tag: &str) -> Result<Self> {
        let mut c = Self {
            children: Vec::new(),
            files: Vec::new(),
        };
        // All four start at once (dumpcap takes a while to open its socket); then wait for
        // each to say "Capturing on 'IF'".
        let mut ready = Vec::new();
        for s in Site::ALL {
            for p in Prov::ALL {
                let file = state_dir().join(format!("{tag}-s{}{}.pcap", s.0, p.letter()));
                let _ = std::fs::remove_file(&file);
                let name = format!("cap-s{}{}", s.0, p.letter());
                let f = file.to_string_lossy().into_owned();
                let iface = s.proxy_if(p);
                let mut child = command_in(
                    &s.proxy_ns(),
                    &["dumpcap", "-q", "-P", "-s", "128", "-i", &iface, "-w", &f],
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting dumpcap (package tshark)")?;
                record_pid(&name, child.id(), "dumpcap")?;
                let stderr = child.stderr.take();
                c.children.push((name, child));
                c.files.push(file);
                let (tx, rx) = std::sync::mpsc::channel();
                if let Some(e) = stderr {
                    std::thread::spawn(move || {
                        for line in BufReader::new(e).lines().map_while(Result::ok) {
                            let _ = tx.send(line);
                        }
                    });
                }
                ready.push((format!("{iface} in {}", s.proxy_ns()), rx));
            }
        }
        let until = Instant::now() + Duration::from_secs(10);
        for (what, rx) in ready {
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(l) if l.contains("Capturing on") => break,
                    Ok(_) => {}
                    Err(_) => bail!("dumpcap on {what} did not start"),
                }
            }
        }
        Ok(c)
    }

    /// Stops every capture (dumpcap writes its last packets on SIGTERM).
    pub(crate) fn stop(&mut self) {
        // Signal all first so they flush in parallel.
        for (_, child) in &self.children {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on our own child's pid; no memory involved.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        for (name, mut child) in self.children.drain(..) {
            terminate(child.id(), Duration::from_secs(3));
            let _ = child.wait();
            forget_pid(&name);
        }
    }

    /// Stops and reads every capture.
    pub(crate) fn finish(mut self) -> Result<LinkFindings> {
        self.stop();
        let mut f = LinkFindings::default();
        for file in &self.files {
            f.add_pcap(file)?;
        }
        Ok(f)
    }
}

impl Drop for Captures {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(src: &str, dst: &str, nh: u8, ext: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, nh, 64]);
        f.extend_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(ext);
        f
    }

    #[test]
    fn finds_ulids_and_payload_tags() {
        let mut f = LinkFindings::default();
        // Payload header: next header TCP, P = 1, tag 0x0000_0000_1234.
        f.add_frame(&frame(
            "2001:db8:1:a::5",
            "2001:db8:2:a::6",
            SHIM6,
            &[6, 0, 0x80, 0, 0, 0, 0x12, 0x34],
        ));
        f.add_frame(&frame("2001:db8:1:a::5", "2001:db8:2:a::6", 6, &[0; 20]));
        assert_eq!(f.ulid_frames, 0);
        f.add_frame(&frame("fc00:1::5", "2001:db8:2:a::6", 6, &[0; 20]));
        // A control message (P = 0) is not a payload frame.
        f.add_frame(&frame(
            "2001:db8:1:a::5",
            "2001:db8:2:a::6",
            SHIM6,
            &[59, 1, 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        assert_eq!(f.frames, 4);
        assert_eq!(f.ulid_frames, 1);
        assert_eq!(f.payload_frames, 1);
        assert_eq!(f.control_frames, 1);
        assert_eq!(f.tags.iter().copied().collect::<Vec<_>>(), vec![0x1234]);
        // Not IPv6: ignored.
        let mut arp = frame("::", "::", 0, &[]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        f.add_frame(&arp);
        assert_eq!(f.frames, 4);
    }
}
