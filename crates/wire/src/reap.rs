//! REAP Probe message body ([RFC 5534 §5.2]). The Keepalive (§5.1) has a fixed body and lives
//! in `message.rs`; the Keepalive Timeout option (§5.3) in `options.rs`.
//!
//! [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2

use crate::{ContextTag, Locator, Nonce, WireError};

mod field {
    use core::ops::Range;
    pub(super) const TAG: Range<usize> = 6..12;
    /// Precvd (high nibble) | Psent (low nibble).
    pub(super) const COUNTS: usize = 12;
    /// Sta in the top 2 bits; the rest is Reserved2.
    pub(super) const STA: usize = 13;
    pub(super) const REPORTS: usize = 16;
}

/// Size of one probe report.
pub const PROBE_REPORT_LEN: usize = 40;
/// Most reports of each kind (4-bit counters).
pub const MAX_PROBE_REPORTS: usize = 15;

/// REAP state carried in a Probe's Sta field ([RFC 5534 §5.2]).
///
/// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReapState {
    /// 0: both directions believed to work.
    Operational,
    /// 1: nothing seen from the peer for a Send Timeout.
    Exploring,
    /// 2: the peer's packets arrive; ours may not.
    InboundOk,
    /// 3 (undefined).
    Unknown(u8),
}

impl From<u8> for ReapState {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Operational,
            1 => Self::Exploring,
            2 => Self::InboundOk,
            other => Self::Unknown(other),
        }
    }
}

impl From<ReapState> for u8 {
    fn from(s: ReapState) -> u8 {
        match s {
            ReapState::Operational => 0,
            ReapState::Exploring => 1,
            ReapState::InboundOk => 2,
            ReapState::Unknown(v) => v,
        }
    }
}

/// One 40-byte probe report: the addresses a probe was sent from/to, its nonce and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeReport {
    /// Source locator of the probe.
    pub src: Locator,
    /// Destination locator of the probe.
    pub dst: Locator,
    /// Probe nonce (random).
    pub nonce: Nonce,
    /// Opaque data copied back unchanged.
    pub data: u32,
}

impl ProbeReport {
    /// Reads a report from exactly 40 bytes.
    pub fn parse(b: &[u8; PROBE_REPORT_LEN]) -> Self {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&b[0..16]);
        dst.copy_from_slice(&b[16..32]);
        Self {
            src: Locator::from_octets(src),
            dst: Locator::from_octets(dst),
            nonce: Nonce(u32::from_be_bytes([b[32], b[33], b[34], b[35]])),
            data: u32::from_be_bytes([b[36], b[37], b[38], b[39]]),
        }
    }

    /// The 40 wire bytes.
    pub fn to_bytes(&self) -> [u8; PROBE_REPORT_LEN] {
        let mut b = [0u8; PROBE_REPORT_LEN];
        b[0..16].copy_from_slice(&self.src.octets());
        b[16..32].copy_from_slice(&self.dst.octets());
        b[32..36].copy_from_slice(&self.nonce.0.to_be_bytes());
        b[36..40].copy_from_slice(&self.data.to_be_bytes());
        b
    }
}

/// A parsed Probe body ([RFC 5534 §5.2]): the first sent report describes this probe.
///
/// [RFC 5534 §5.2]: https://www.rfc-editor.org/rfc/rfc5534#section-5.2
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeRepr {
    /// Receiver Context Tag (CT(peer) from the sender's view).
    pub receiver_tag: ContextTag,
    /// Sender's REAP state after the event that caused this probe.
    pub state: ReapState,
    /// Probe Sent reports, 1..=15, this probe first.
    pub sent: Vec<ProbeReport>,
    /// Probe Received reports, 0..=15.
    pub received: Vec<ProbeReport>,
}

impl ProbeRepr {
    /// Bytes from the start of the Shim6 header to the end of the reports (where options
    /// start).
    pub fn body_len(&self) -> usize {
        field::REPORTS + PROBE_REPORT_LEN * (self.sent.len() + self.received.len())
    }

    /// Checks the report counts and the state value.
    pub fn check(&self) -> Result<(), WireError> {
        if self.sent.is_empty()
            || self.sent.len() > MAX_PROBE_REPORTS
            || self.received.len() > MAX_PROBE_REPORTS
        {
            return Err(WireError::BadReportCount);
        }
        if let ReapState::Unknown(v) = self.state {
            if v != 3 {
                return Err(WireError::InvalidField);
            }
        }
        Ok(())
    }

    /// Parses the body of a Probe from the whole message `msg` (header included, exactly
    /// `(Hdr Ext Len + 1) * 8` bytes). Returns the repr and the offset of the options.
    pub fn parse_body(msg: &[u8]) -> Result<(Self, usize), WireError> {
        let counts = *msg.get(field::COUNTS).ok_or(WireError::TooShortForType)?;
        let sta = *msg.get(field::STA).ok_or(WireError::TooShortForType)?;
        let tag = msg.get(field::TAG).ok_or(WireError::TooShortForType)?;
        let n_recv = usize::from(counts >> 4);
        let n_sent = usize::from(counts & 0x0f);
        if n_sent == 0 {
            return Err(WireError::BadReportCount);
        }
        let end = field::REPORTS + PROBE_REPORT_LEN * (n_sent + n_recv);
        let reports = msg
            .get(field::REPORTS..end)
            .ok_or(WireError::TooShortForType)?;
        let mut all = reports
            .chunks_exact(PROBE_REPORT_LEN)
            .filter_map(|c| <&[u8; PROBE_REPORT_LEN]>::try_from(c).ok())
            .map(ProbeReport::parse);
        let sent: Vec<_> = all.by_ref().take(n_sent).collect();
        let received: Vec<_> = all.collect();
        Ok((
            Self {
                receiver_tag: ContextTag::read([tag[0], tag[1], tag[2], tag[3], tag[4], tag[5]]),
                state: ReapState::from(sta >> 6),
                sent,
                received,
            },
            end,
        ))
    }

    /// Writes bytes 6..[`body_len`](Self::body_len) of the message (tag, counts, state,
    /// reserved, reports) into `msg`, which holds the whole message. The common header is the
    /// caller's.
    pub fn emit_body(&self, msg: &mut [u8]) -> Result<usize, WireError> {
        self.check()?;
        let end = self.body_len();
        let out = msg.get_mut(..end).ok_or(WireError::BufferTooSmall)?;
        out[field::TAG].copy_from_slice(&self.receiver_tag.to_bytes());
        // Both counts are <= 15 (checked above).
        out[field::COUNTS] = ((self.received.len() as u8) << 4) | self.sent.len() as u8;
        out[field::STA] = u8::from(self.state) << 6;
        out[field::STA + 1..field::REPORTS].fill(0);
        for (r, chunk) in self
            .sent
            .iter()
            .chain(self.received.iter())
            .zip(out[field::REPORTS..].chunks_exact_mut(PROBE_REPORT_LEN))
        {
            chunk.copy_from_slice(&r.to_bytes());
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(ReapState::from(v)), v);
        }
        assert_eq!(ReapState::from(2), ReapState::InboundOk);
    }

    #[test]
    fn nibble_order_precvd_high() {
        let mut msg = vec![0u8; 16 + 40 * 3];
        msg[12] = 0x21; // Precvd 2, Psent 1
        msg[13] = 0x80; // InboundOk
        msg[16 + 32] = 0xaa; // nonce of the sent report
        msg[56 + 32] = 0xbb; // first received report
        let (p, off) = ProbeRepr::parse_body(&msg).unwrap();
        assert_eq!(off, 136);
        assert_eq!(p.state, ReapState::InboundOk);
        assert_eq!(p.sent.len(), 1);
        assert_eq!(p.received.len(), 2);
        assert_eq!(p.sent[0].nonce, Nonce(0xaa00_0000));
        assert_eq!(p.received[0].nonce, Nonce(0xbb00_0000));
    }

    #[test]
    fn bad_counts() {
        let mut msg = vec![0u8; 56];
        msg[12] = 0x10;
        assert_eq!(ProbeRepr::parse_body(&msg), Err(WireError::BadReportCount));
        msg[12] = 0x02;
        assert_eq!(ProbeRepr::parse_body(&msg), Err(WireError::TooShortForType));
        let r = ProbeReport {
            src: Locator("::1".parse().unwrap()),
            dst: Locator("::2".parse().unwrap()),
            nonce: Nonce(1),
            data: 0,
        };
        let mut p = ProbeRepr {
            receiver_tag: ContextTag::default(),
            state: ReapState::Operational,
            sent: vec![],
            received: vec![],
        };
        assert_eq!(p.check(), Err(WireError::BadReportCount));
        p.sent = vec![r; 16];
        assert_eq!(p.check(), Err(WireError::BadReportCount));
        p.sent = vec![r; 15];
        p.received = vec![r; 16];
        assert_eq!(p.check(), Err(WireError::BadReportCount));
        p.received = vec![r; 15];
        assert_eq!(p.check(), Ok(()));
        assert_eq!(p.body_len(), 1216);
        p.state = ReapState::Unknown(4);
        assert_eq!(p.check(), Err(WireError::InvalidField));
    }
}
