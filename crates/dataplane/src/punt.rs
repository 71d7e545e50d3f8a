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

/// The punt and inject queues with their buffer free lists, shared (in an `Arc`) by the
/// workers and the slow path.
pub struct SlowPathLink {
    punts: ArrayQueue<Punt>,
    punt_pool: ArrayQueue<FrameBuf>,
    injects: ArrayQueue<Inject>,
    inject_pool: ArrayQueue<FrameBuf>,
}

impl std::fmt::Debug for SlowPathLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPathLink")
            .field("punts", &self.punts.len())
            .field("injects", &self.injects.len())
            .finish()
    }
}

impl SlowPathLink {
    /// Queues of `punt_capacity` and `inject_capacity` frames (at least 1 each), with as many
    /// buffers pre-allocated.
    pub fn new(punt_capacity: usize, inject_capacity: usize) -> Self {
        let (pc, ic) = (punt_capacity.max(1), inject_capacity.max(1));
        let punt_pool = ArrayQueue::new(pc);
        let inject_pool = ArrayQueue::new(ic);
        for _ in 0..pc {
            let _ = punt_pool.push(FrameBuf::new());
        }
        for _ in 0..ic {
            let _ = inject_pool.push(FrameBuf::new());
        }
        Self {
            punts: ArrayQueue::new(pc),
            punt_pool,
            injects: ArrayQueue::new(ic),
            inject_pool,
        }
    }

    /// Worker side: queues a copy of `frame` for the slow path. On `Err` the frame was not
    /// queued; the caller counts the drop per reason.
    pub fn punt(&self, reason: PuntReason, port: PortId, frame: &[u8]) -> Result<(), QueueError> {
        let mut buf = self.punt_pool.pop().ok_or(QueueError::Full)?;
        if !buf.fill(frame) {
            let _ = self.punt_pool.push(buf);
            return Err(QueueError::TooLong);
        }
        self.punts
            .push(Punt {
                reason,
                port,
                frame: buf,
            })
            .map_err(|p| {
                let _ = self.punt_pool.push(p.frame);
                QueueError::Full
            })
    }

    /// Slow-path side: the oldest punted frame. Give its buffer back with
    /// [`SlowPathLink::recycle_punt`].
    pub fn pop_punt(&self) -> Option<Punt> {
        self.punts.pop()
    }

    /// Returns a punt buffer to its free list.
    pub fn recycle_punt(&self, frame: FrameBuf) {
        let _ = self.punt_pool.push(frame);
    }

    /// Slow-path side: hands up to `max` punted frames to `f`, recycling each buffer after.
    pub fn drain_punts(&self, max: usize, mut f: impl FnMut(&Punt)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(p) = self.punts.pop() else { break };
            f(&p);
            self.recycle_punt(p.frame);
            n += 1;
        }
        n
    }

    /// Frames waiting in the punt queue.
    pub fn punt_len(&self) -> usize {
        self.punts.len()
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
        let link = SlowPathLink::new(2, 1);
        let tag = ContextTag::new(0x1234).unwrap();
        link.punt(PuntReason::UnknownTag(tag), PortId(3), &[1, 2, 3])
            .unwrap();
        link.punt(PuntReason::Control, PortId(4), &[4]).unwrap();
        // Two buffers only: the third punt is refused, not allocated.
        assert_eq!(
            link.punt(PuntReason::Control, PortId(4), &[5]),
            Err(QueueError::Full)
        );
        assert_eq!(link.punt_len(), 2);
        let p = link.pop_punt().unwrap();
        assert_eq!(
            (p.reason, p.port, p.frame.as_slice()),
            (PuntReason::UnknownTag(tag), PortId(3), &[1u8, 2, 3][..])
        );
        link.recycle_punt(p.frame);
        link.punt(PuntReason::HopLimit, PortId(0), &[6, 7]).unwrap();
        let mut seen = vec![];
        assert_eq!(
            link.drain_punts(10, |p| seen.push((p.reason, p.frame.as_slice().to_vec()))),
            2
        );
        assert_eq!(
            seen,
            vec![
                (PuntReason::Control, vec![4]),
                (PuntReason::HopLimit, vec![6, 7])
            ]
        );
        // Both buffers came back.
        link.punt(PuntReason::ForUs, PortId(0), &[]).unwrap();
        link.punt(PuntReason::ForUs, PortId(0), &[]).unwrap();
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
