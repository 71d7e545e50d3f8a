//! The port queue of `pshim6 replay` ([`crate::replay`]): frames are handed to it one at a
//! time by the replay driver (read from a capture), and what the worker transmits is kept
//! until the driver collects it, so the outputs of every port land in one capture, in the
//! order the pipeline produced them. Offline tool: no thread, no ring, buffers from the
//! shared [`BufPool`].

use std::collections::VecDeque;
use std::sync::Arc;

use super::BufPool;
use crate::buf::{HeapBuf, PacketBuf};
use crate::io::{PortQueue, QueueStats};

/// One port of a replayed pipeline.
#[derive(Debug)]
pub struct ReplayQueue {
    pool: Arc<BufPool>,
    rx: VecDeque<HeapBuf>,
    sent: Vec<HeapBuf>,
    stats: QueueStats,
}

impl ReplayQueue {
    /// An idle queue taking its buffers from `pool`.
    pub fn new(pool: &Arc<BufPool>) -> Self {
        Self {
            pool: Arc::clone(pool),
            rx: VecDeque::new(),
            sent: Vec::new(),
            stats: QueueStats::default(),
        }
    }

    /// Queues `frame` for the next receive burst; `false` (counted as an rx drop) when no
    /// buffer is free or the frame is longer than the pool's buffers.
    pub fn push_rx(&mut self, frame: &[u8]) -> bool {
        let Some(mut buf) = self.pool.alloc() else {
            self.stats.rx_dropped += 1;
            return false;
        };
        if buf.reset_from(frame).is_err() {
            self.pool.free(buf);
            self.stats.rx_dropped += 1;
            return false;
        }
        self.rx.push_back(buf);
        true
    }

    /// Hands every frame transmitted since the last call to `f`, oldest first, and frees it.
    pub fn drain_sent(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let n = self.sent.len();
        for buf in self.sent.drain(..) {
            f(buf.as_ref());
            self.pool.free(buf);
        }
        n
    }
}

impl PortQueue for ReplayQueue {
    type Buf = HeapBuf;

    fn rx_burst(&mut self, out: &mut Vec<HeapBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(buf) = self.rx.pop_front() else {
                break;
            };
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += buf.as_ref().len() as u64;
            out.push(buf);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<HeapBuf>) -> usize {
        let n = pkts.len();
        for buf in pkts.drain(..) {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += buf.as_ref().len() as u64;
            self.sent.push(buf);
        }
        n
    }

    fn alloc(&mut self) -> Option<HeapBuf> {
        self.pool.alloc()
    }

    fn free(&mut self, buf: HeapBuf) {
        self.pool.free(buf);
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pass_through_in_order_and_buffers_return() {
        let pool = Arc::new(BufPool::new(4, 64));
        let mut q = ReplayQueue::new(&pool);
        assert!(q.push_rx(&[1, 2, 3]));
        assert!(q.push_rx(&[4]));
        assert!(!q.push_rx(&[0; 65]), "longer than the pool's buffers");
        let mut burst = Vec::new();
        assert_eq!(q.rx_burst(&mut burst, 1), 1);
        assert_eq!(q.rx_burst(&mut burst, 8), 1);
        assert_eq!(burst[0].as_ref(), &[1, 2, 3]);
        assert_eq!(q.tx_burst(&mut burst), 2);
        let mut seen = Vec::new();
        assert_eq!(q.drain_sent(|f| seen.push(f.to_vec())), 2);
        assert_eq!(seen, vec![vec![1, 2, 3], vec![4]]);
        assert_eq!(pool.available(), 4);
        let s = q.stats();
        assert_eq!((s.rx_packets, s.tx_packets, s.rx_dropped), (2, 2, 1));
    }
}
