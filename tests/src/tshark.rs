//! Dissects captures with the real `tshark` and extracts the Shim6 fields the tests check.
//!
//! tshark 4.0 reads Shim6 control-message bodies one byte off (spec `shim6.md` §17): only the
//! message type, the checksum status and the payload extension header are trustworthy, so those
//! are the only Shim6 fields extracted here.

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;

/// What tshark said about one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dissected {
    /// 1-based frame number.
    pub number: u32,
    /// IPv6 source address, when the frame is IPv6.
    pub src: Option<Ipv6Addr>,
    /// IPv6 destination address.
    pub dst: Option<Ipv6Addr>,
    /// `shim6.type` for control messages.
    pub shim6_type: Option<u8>,
    /// `shim6.checksum.status` showname word ("Good", "Bad", ...).
    pub checksum_status: Option<String>,
    /// `shim6.p` (payload extension header when true).
    pub p: Option<bool>,
    /// The 47-bit receiver context tag of a payload extension header.
    pub payload_tag: Option<u64>,
    /// Protocols tshark found in the frame (`frame.protocols`).
    pub protocols: String,
}

/// Errors running or reading tshark.
#[derive(Debug, thiserror::Error)]
pub enum TsharkError {
    /// tshark could not be started (not installed: run `ci/deps.sh`).
    #[error("cannot run tshark (install it with ci/deps.sh): {0}")]
    Spawn(#[from] std::io::Error),
    /// tshark exited with an error.
    #[error("tshark failed: {0}")]
    Failed(String),
}

/// Runs `tshark -r FILE -T pdml` and returns one entry per frame.
pub fn dissect(pcap: &Path) -> Result<Vec<Dissected>, TsharkError> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "pdml"])
        .env("LC_ALL", "C")
        .output()?;
    if !out.status.success() {
        return Err(TsharkError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(parse_pdml(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads the fields of interest from PDML text.
pub fn parse_pdml(pdml: &str) -> Vec<Dissected> {
    let mut frames = Vec::new();
    let mut cur: Option<Dissected> = None;
    for line in pdml.lines() {
        let line = line.trim();
        if line.starts_with("<packet>") {
            cur = Some(Dissected {
                number: frames.len() as u32 + 1,
                ..Default::default()
            });
            continue;
        }
        if line.starts_with("</packet>") {
            if let Some(d) = cur.take() {
                frames.push(d);
            }
            continue;
        }
        let Some(d) = cur.as_mut() else { continue };
        let Some(name) = attr(line, "name") else {
            continue;
        };
        match name {
            "frame.protocols" => d.protocols = attr(line, "show").unwrap_or_default().to_string(),
            // The outer IPv6 header comes first; keep it, not addresses quoted inside ICMPv6.
            "ipv6.src" if d.src.is_none() => {
                d.src = attr(line, "show").and_then(|s| s.parse().ok())
            }
            "ipv6.dst" if d.dst.is_none() => {
                d.dst = attr(line, "show").and_then(|s| s.parse().ok())
            }
            "shim6.type" => d.shim6_type = attr(line, "show").and_then(|s| s.parse().ok()),
            "shim6.checksum.status" => {
                d.checksum_status = attr(line, "showname")
                    .and_then(|s| s.rsplit(": ").next())
                    .map(str::to_string)
            }
            "shim6.p" => d.p = attr(line, "show").map(|s| s == "1"),
            "shim6.ct" if d.p == Some(true) => {
                d.payload_tag = attr(line, "showname").and_then(tag_from_showname)
            }
            _ => {}
        }
    }
    frames
}

/// `Receiver Context Tag: 12 34 56 78 9a bc` → 0x1234_5678_9abc (P bit already masked off).
fn tag_from_showname(showname: &str) -> Option<u64> {
    let hex = showname.rsplit(": ").next()?;
    let mut tag = 0u64;
    let mut n = 0;
    for byte in hex.split_whitespace() {
        tag = (tag << 8) | u64::from(u8::from_str_radix(byte, 16).ok()?);
        n += 1;
    }
    (n == 6).then_some(tag & ((1 << 47) - 1))
}

/// The value of `key="..."` in one PDML line (tshark escapes quotes, so no quote appears inside).
fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=\"");
    let start = line.find(&pat)? + pat.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_payload_and_control_fields() {
        let pdml = r#"<packet>
<field name="frame.protocols" showname="x" show="eth:ethertype:ipv6:shim6"/>
<field name="ipv6.src" showname="Source Address: 2001:db8:a::1" show="2001:db8:a::1"/>
<field name="ipv6.dst" showname="Destination Address: 2001:db8:c::2" show="2001:db8:c::2"/>
<field name="shim6.p" showname="1... .... = P Bit: True" show="1" value="1"/>
<field name="shim6.ct" showname="Receiver Context Tag: 12 34 56 78 9a bc" show="" value=""/>
</packet>
<packet>
<field name="shim6.p" showname="0... .... = P Bit: False" show="0" value="0"/>
<field name="shim6.type" showname=".100 0010 = Message Type: Keepalive (66)" show="66" value="42"/>
<field name="shim6.checksum.status" showname="Checksum Status: Good" size="0" pos="57" show="1"/>
<field name="shim6.ct" showname="Receiver Context Tag: 15 12 34 56 78 9A" show="" value=""/>
</packet>"#;
        let f = parse_pdml(pdml);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].payload_tag, Some(0x1234_5678_9abc));
        assert_eq!(f[0].src, Some("2001:db8:a::1".parse().unwrap()));
        assert_eq!(f[0].protocols, "eth:ethertype:ipv6:shim6");
        assert_eq!(f[1].shim6_type, Some(66));
        assert_eq!(f[1].checksum_status.as_deref(), Some("Good"));
        assert_eq!(
            f[1].payload_tag, None,
            "control tags are read one byte off and ignored"
        );
    }
}
