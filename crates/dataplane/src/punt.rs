//! The two bounded queues between the workers and the slow path.
//!
//! - **punt** (worker → slow path): a copy of a frame the fast path does not handle, with the
//!   [`PuntReason`] and the port it came in on. The copy lands in a [`FrameBuf`] taken from a
//!   pre-allocated free list, so punting never allocates; when the free list or the queue is
//!   empty/full the worker drops the frame and counts it per reason (the slow path is
//!   best-effort by design: a worker never waits for it).
//! - **inject** (slow path → worker): frames the slow path wants transmitted on a port
//!   (control messages, ND, ICMPv6 errors, released held packets). A worker copies each into
//!   one of its own port buffers and sends it with its next tx burst.
//!
//! Punts travel in two lanes ([`PuntLane`]), each with its own ring and buffers: the
//! **control** lane (Shim6 control messages, Neighbor Discovery, DNS/DHCPv6/echo to the
//! proxy) and the **data** lane (everything else, chiefly first packets without a context and
//! unknown tags). A flood of data punts (no-context packets from a busy or hostile inside,
//! random tags from outside) fills only the data lane, so handshakes, REAP and ND keep
//! reaching the slow path, which drains the control lane first.
//!
//! Both queues are lock-free MPMC rings (`crossbeam_queue::ArrayQueue`), so any number of
//! workers and one slow-path thread share one [`SlowPathLink`]. Buffers go back to their free
//! list with [`SlowPathLink::recycle_punt`] / [`SlowPathLink::recycle_inject`]; a consumer that
//! forgets only starves the producer (frames are then dropped and counted), it never blocks.

use crossbeam_queue::ArrayQueue;

use crate::buf::MAX_FRAME;
pub use crate::fastpath::PuntReason;
use crate::io::PortId;

/// A fixed-capacity frame buffer ([`MAX_FRAME`] bytes), allocated once and recycled.
pub struct FrameBuf {
    data: Box<[u8]>,
    len: usize,
}

impl std::fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBuf").field("len", &self.len).finish()
    }
}

impl FrameBuf {
    fn new() -> Self {
        Self {
            data: vec![0; MAX_FRAME].into_boxed_slice(),
            len: 0,
        }
    }

    /// The frame.
    pub fn as_slice(&self) -> &[u8] {
        // len <= data.len() is kept by `fill`.
        self.data.get(..self.len).unwrap_or_default()
    }

    /// Copies `frame` in; `false` (and unchanged) when it is longer than [`MAX_FRAME`].
    fn fill(&mut self, frame: &[u8]) -> bool {
        match self.data.get_mut(..frame.len()) {
            Some(dst) => {
                dst.copy_from_slice(frame);
                self.len = frame.len();
                true
            }
            None => false,
        }
    }
}

impl AsRef<[u8]> for FrameBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A frame handed to the slow path.
#[derive(Debug)]
pub struct Punt {
    /// Why the fast path did not handle it.
    pub reason: PuntReason,
    /// The port it was received on.
    pub port: PortId,
    /// The frame as received (Ethernet header included).
    pub frame: FrameBuf,
}

/// A frame the slow path wants sent.
#[derive(Debug)]
pub struct Inject {
    /// The port to send it on.
    pub port: PortId,
    /// The whole Ethernet frame.
    pub frame: FrameBuf,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// No free buffer, or the queue is full: the frame was dropped.
    #[error("queue full")]
    Full,
    /// The frame is longer than a queue buffer.
    #[error("frame too long for a queue buffer")]
    TooLong,
}

/// The punt lane a frame travels in (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PuntLane {
    /// Shim6 control (REAP included), Neighbor Discovery, traffic for the proxy itself
    /// (DNS, DHCPv6, echo): what keeps contexts, neighbours and services alive.
    Control,
    /// First packets without a context, unknown tags, ICMPv6 errors to translate, and the
    /// other per-packet exceptions: what a flood consists of.
    Data,
}

impl PuntLane {
    /// Number of lanes (size of per-lane counter arrays).
    pub const COUNT: usize = 2;
    /// Names of the lanes, indexed by [`PuntLane::index`].
    pub const NAMES: [&'static str; Self::COUNT] = ["control", "data"];
    /// Every lane, in the order the slow path drains them.
    pub const ALL: [PuntLane; Self::COUNT] = [PuntLane::Control, PuntLane::Data];

    /// Index of this lane in per-lane arrays.
    pub const fn index(self) -> usize {
        match self {
            PuntLane::Control => 0,
            PuntLane::Data => 1,
        }
    }

    /// The lane of the reason kind with index `i` ([`PuntReason::index`]), for per-reason
    /// counters.
    pub const fn of_reason_index(i: usize) -> PuntLane {
        match i {
            2..=4 => PuntLane::Control,
            _ => PuntLane::Data,
        }
    }

    /// Capacity of the control lane for a punt queue of `punt_capacity` frames: a quarter,
    /// at least 64 (a burst of handshakes and ND after a restart), at most the whole.
    pub fn control_capacity(punt_capacity: usize) -> usize {
        (punt_capacity / 4).max(64).min(punt_capacity.max(1))
    }
}

impl PuntReason {
    /// The lane this reason's frames travel in.
    pub const fn lane(&self) -> PuntLane {
        match self {
            PuntReason::Control | PuntReason::Neighbor | PuntReason::ForUs => PuntLane::Control,
            PuntReason::NoContext
            | PuntReason::UnknownTag(_)
            | PuntReason::NoNextHop
            | PuntReason::TooBig { .. }
            | PuntReason::HopLimit
            | PuntReason::LocatorMismatch
            | PuntReason::IcmpError => PuntLane::Data,
        }
    }
}

/// One punt lane: its ring and its buffers.
struct Lane {
    punts: ArrayQueue<Punt>,
    pool: ArrayQueue<FrameBuf>,
}

impl Lane {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let pool = ArrayQueue::new(capacity);
        for _ in 0..capacity {
            let _ = pool.push(FrameBuf::new());
        }
        Self {
            punts: ArrayQueue::new(capacity),
            pool,
        }
    }
}

/// The punt lanes and the inject queue with their buffer free lists, shared (in an `Arc`) by
/// the workers and the slow path.
pub struct SlowPathLink {
    /// Indexed by [`PuntLane::index`].
    lanes: [Lane; PuntLane::COUNT],
    injects: ArrayQueue<Inject>,
    inject_pool: ArrayQueue<FrameBuf>,
}

impl std::fmt::Debug for SlowPathLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPathLink")
            .field("control_punts", &self.punt_lane_len(PuntLane::Control))
            .field("data_punts", &self.punt_lane_len(PuntLane::Data))
            .field("injects", &self.injects.len())
            .finish()
    }
}

impl SlowPathLink {
    /// A data lane of `punt_capacity` frames, a control lane of
    /// [`PuntLane::control_capacity`] and an inject queue of `inject_capacity` (at least 1
    /// each), with as many buffers pre-allocated.
    pub fn new(punt_capacity: usize, inject_capacity: usize) -> Self {
        let ic = inject_capacity.max(1);
        let inject_pool = ArrayQueue::new(ic);
        for _ in 0..ic {
            let _ = inject_pool.push(FrameBuf::new());
        }
        Self {
            lanes: [
                Lane::new(PuntLane::control_capacity(punt_capacity)),
                Lane::new(punt_capacity),
            ],
            injects: ArrayQueue::new(ic),
            inject_pool,
        }
    }

    fn lane(&self, lane: PuntLane) -> &Lane {
        let [control, data] = &self.lanes;
        match lane {
            PuntLane::Control => control,
            PuntLane::Data => data,
        }
    }

    /// Worker side: queues a copy of `frame` for the slow path in the lane of `reason`. On
    /// `Err` the frame was not queued; the caller counts the drop per reason (and so per
    /// lane, [`PuntReason::lane`]).
    pub fn punt(&self, reason: PuntReason, port: PortId, frame: &[u8]) -> Result<(), QueueError> {
        let lane = self.lane(reason.lane());
        let mut buf = lane.pool.pop().ok_or(QueueError::Full)?;
        if !buf.fill(frame) {
            let _ = lane.pool.push(buf);
            return Err(QueueError::TooLong);
        }
        lane.punts
            .push(Punt {
                reason,
                port,
                frame: buf,
            })
            .map_err(|p| {
                let _ = lane.pool.push(p.frame);
                QueueError::Full
            })
    }

    /// Slow-path side: the oldest punted frame of the control lane, else of the data lane.
    /// Give its buffer back with [`SlowPathLink::recycle_punt`].
    pub fn pop_punt(&self) -> Option<Punt> {
        self.lanes.iter().find_map(|l| l.punts.pop())
    }

    /// Returns a punt buffer to the free list of `reason`'s lane.
    pub fn recycle_punt_of(&self, reason: PuntReason, frame: FrameBuf) {
        let _ = self.lane(reason.lane()).pool.push(frame);
    }

    /// Returns a punt buffer to a free list with room (buffers are all alike; a lane's list
    /// never holds more than its capacity).
    pub fn recycle_punt(&self, frame: FrameBuf) {
        let mut frame = frame;
        for l in &self.lanes {
            match l.pool.push(frame) {
                Ok(()) => return,
                Err(f) => frame = f,
            }
        }
    }

    /// Slow-path side: hands up to `max` punted frames to `f`, the control lane's first,
    /// recycling each buffer after.
    pub fn drain_punts(&self, max: usize, mut f: impl FnMut(&Punt)) -> usize {
        let mut n = 0;
        for lane in &self.lanes {
            while n < max {
                let Some(p) = lane.punts.pop() else { break };
                f(&p);
                let _ = lane.pool.push(p.frame);
                n += 1;
            }
        }
        n
    }

    /// Frames waiting in the punt lanes.
    pub fn punt_len(&self) -> usize {
        self.lanes.iter().map(|l| l.punts.len()).sum()
    }

    /// Frames waiting in one punt lane.
    pub fn punt_lane_len(&self, lane: PuntLane) -> usize {
        self.lane(lane).punts.len()
    }

    /// Slow-path side: queues `frame` to be sent on `port` by a worker.
    pub fn inject(&self, port: PortId, frame: &[u8]) -> Result<(), QueueError> {
        let mut buf = self.inject_pool.pop().ok_or(QueueError::Full)?;
        if !buf.fill(frame) {
            let _ = self.inject_pool.push(buf);
            return Err(QueueError::TooLong);
        }
        self.injects.push(Inject { port, frame: buf }).map_err(|i| {
            let _ = self.inject_pool.push(i.frame);
            QueueError::Full
        })
    }

    /// Worker side: the oldest frame to inject. Give its buffer back with
    /// [`SlowPathLink::recycle_inject`] once copied.
    pub fn pop_inject(&self) -> Option<Inject> {
        self.injects.pop()
    }

    /// Returns an inject buffer to its free list.
    pub fn recycle_inject(&self, frame: FrameBuf) {
        let _ = self.inject_pool.push(frame);
    }

    /// Frames waiting in the inject queue.
    pub fn inject_len(&self) -> usize {
        self.injects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::ContextTag;

    #[test]
    fn punt_round_trip_and_recycling() {
        // Two frames per lane.
        let link = SlowPathLink::new(2, 1);
        let tag = ContextTag::new(0x1234).unwrap();
        link.punt(PuntReason::UnknownTag(tag), PortId(3), &[1, 2, 3])
            .unwrap();
        link.punt(PuntReason::NoContext, PortId(0), &[8]).unwrap();
        link.punt(PuntReason::Control, PortId(4), &[4]).unwrap();
        // Two data buffers only: the third data punt is refused, not allocated.
        assert_eq!(
            link.punt(PuntReason::HopLimit, PortId(4), &[5]),
            Err(QueueError::Full)
        );
        assert_eq!(link.punt_len(), 3);
        assert_eq!(link.punt_lane_len(PuntLane::Data), 2);
        // The control lane is served first.
        let p = link.pop_punt().unwrap();
        assert_eq!(
            (p.reason, p.port, p.frame.as_slice()),
            (PuntReason::Control, PortId(4), &[4u8][..])
        );
        link.recycle_punt_of(p.reason, p.frame);
        let p = link.pop_punt().unwrap();
        assert_eq!(
            (p.reason, p.port, p.frame.as_slice()),
            (PuntReason::UnknownTag(tag), PortId(3), &[1u8, 2, 3][..])
        );
        link.recycle_punt(p.frame);
        link.punt(PuntReason::HopLimit, PortId(0), &[6, 7]).unwrap();
        link.punt(PuntReason::Neighbor, PortId(1), &[9]).unwrap();
        let mut seen = vec![];
        assert_eq!(
            link.drain_punts(10, |p| seen.push((p.reason, p.frame.as_slice().to_vec()))),
            3
        );
        assert_eq!(
            seen,
            vec![
                (PuntReason::Neighbor, vec![9]),
                (PuntReason::NoContext, vec![8]),
                (PuntReason::HopLimit, vec![6, 7])
            ]
        );
        // Every buffer came back to its lane.
        for _ in 0..2 {
            link.punt(PuntReason::ForUs, PortId(0), &[]).unwrap();
            link.punt(PuntReason::NoContext, PortId(0), &[]).unwrap();
        }
        assert_eq!(
            link.punt(PuntReason::ForUs, PortId(0), &[]),
            Err(QueueError::Full)
        );
    }

    #[test]
    fn reason_indices_map_to_their_lanes() {
        let tag = ContextTag::new(1).unwrap();
        let all = [
            PuntReason::NoContext,
            PuntReason::UnknownTag(tag),
            PuntReason::Control,
            PuntReason::Neighbor,
            PuntReason::ForUs,
            PuntReason::NoNextHop,
            PuntReason::TooBig { mtu: 1280 },
            PuntReason::HopLimit,
            PuntReason::LocatorMismatch,
            PuntReason::IcmpError,
        ];
        assert_eq!(all.len(), PuntReason::COUNT);
        for r in all {
            assert_eq!(PuntLane::of_reason_index(r.index()), r.lane(), "{r:?}");
        }
    }

    #[test]
    fn a_data_flood_leaves_the_control_lane_free() {
        let link = SlowPathLink::new(256, 1);
        assert_eq!(PuntLane::control_capacity(256), 64);
        assert_eq!(PuntLane::control_capacity(4096), 1024);
        assert_eq!(PuntLane::control_capacity(8), 8);
        let mut refused = 0;
        for _ in 0..10_000 {
            if link
                .punt(PuntReason::NoContext, PortId(0), &[0; 64])
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 10_000 - 256);
        for r in [PuntReason::Control, PuntReason::Neighbor, PuntReason::ForUs] {
            link.punt(r, PortId(1), &[1]).unwrap();
        }
        assert_eq!(link.punt_lane_len(PuntLane::Control), 3);
        // A budget of 3 drains exactly the control frames.
        let mut seen = vec![];
        link.drain_punts(3, |p| seen.push(p.reason.lane()));
        assert_eq!(seen, vec![PuntLane::Control; 3]);
        assert_eq!(link.punt_lane_len(PuntLane::Data), 256);
    }

    #[test]
    fn oversized_frames_are_refused_and_keep_the_buffer() {
        let link = SlowPathLink::new(1, 1);
        let big = vec![0u8; MAX_FRAME + 1];
        assert_eq!(
            link.punt(PuntReason::ForUs, PortId(0), &big),
            Err(QueueError::TooLong)
        );
        assert_eq!(link.inject(PortId(0), &big), Err(QueueError::TooLong));
        link.punt(PuntReason::ForUs, PortId(0), &big[..MAX_FRAME])
            .unwrap();
        link.inject(PortId(2), &[9; 60]).unwrap();
        assert_eq!(link.inject(PortId(2), &[9; 60]), Err(QueueError::Full));
        let i = link.pop_inject().unwrap();
        assert_eq!((i.port, i.frame.as_slice()), (PortId(2), &[9u8; 60][..]));
        link.recycle_inject(i.frame);
        assert_eq!(link.inject_len(), 0);
        link.inject(PortId(2), &[1]).unwrap();
    }
}
