//! pcap replay backend: a [`PortQueue`] whose receive side reads frames from a classic pcap
//! capture and whose transmit side writes frames to another, for
//! `pshim6 replay --config FILE --in IN.pcap --out OUT.pcap` (golden tests without root, and
//! operators debugging a trace offline).
//!
//! Time: the queue keeps a replay clock, the timestamp of the last frame read. Transmitted
//! frames are stamped with it, so an output frame carries the time of the input that caused
//! it when the caller receives one frame per burst (`max = 1`) and transmits before reading
//! on; with bigger bursts every output of a burst carries the burst's last input time. The
//! slow path's timers should be driven from the same clock ([`PcapQueue::clock_nanos`]).
//!
//! This is an offline tool, not a fast path: the capture reader allocates one `Vec` per
//! record. Buffers still come from the shared [`BufPool`], so the pipeline behaves as with the
//! other backends.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use wire::pcap::{PcapError, PcapReader, PcapWriter};

use super::{BackendError, BufPool};
use crate::buf::{HeapBuf, PacketBuf};
use crate::io::{PortQueue, QueueStats};

/// A queue replaying a capture (receive side) and recording what is transmitted.
#[derive(Debug)]
pub struct PcapQueue<R: Read, W: Write> {
    reader: Option<PcapReader<R>>,
    writer: Option<PcapWriter<W>>,
    pool: Arc<BufPool>,
    clock: u64,
    exhausted: bool,
    error: Option<PcapError>,
    stats: QueueStats,
}

/// A [`PcapQueue`] over buffered files.
pub type PcapFileQueue = PcapQueue<BufReader<File>, BufWriter<File>>;

/// Opens `input` for replay and creates (truncates) `output` for recording; either may be
/// absent (nothing received, or transmitted frames counted as dropped).
pub fn open_files(
    input: Option<&Path>,
    output: Option<&Path>,
    pool: &Arc<BufPool>,
) -> Result<PcapFileQueue, BackendError> {
    let reader = match input {
        Some(p) => {
            let f = File::open(p).map_err(PcapError::from)?;
            Some(PcapReader::new(BufReader::new(f))?)
        }
        None => None,
    };
    let writer = match output {
        Some(p) => {
            let f = File::create(p).map_err(PcapError::from)?;
            Some(PcapWriter::new(BufWriter::new(f))?)
        }
        None => None,
    };
    Ok(PcapQueue::new(reader, writer, pool))
}

impl<R: Read, W: Write> PcapQueue<R, W> {
    /// A queue reading from `reader` and writing to `writer`, with buffers from `pool`.
    pub fn new(
        reader: Option<PcapReader<R>>,
        writer: Option<PcapWriter<W>>,
        pool: &Arc<BufPool>,
    ) -> Self {
        Self {
            exhausted: reader.is_none(),
            reader,
            writer,
            pool: Arc::clone(pool),
            clock: 0,
            error: None,
            stats: QueueStats::default(),
        }
    }

    /// Whether the input is used up (end of file, a read error, or no input at all).
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// The replay clock: nanoseconds since the capture's epoch of the last frame read.
    pub fn clock_nanos(&self) -> u64 {
        self.clock
    }

    /// Moves the replay clock (e.g. to stamp frames the slow path sends on a timer after the
    /// last input).
    pub fn set_clock_nanos(&mut self, nanos: u64) {
        self.clock = nanos;
    }

    /// The first read or write error, if any (the per-packet calls cannot return it).
    pub fn error(&self) -> Option<&PcapError> {
        self.error.as_ref()
    }

    /// Frames written to the output so far.
    pub fn frames_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, PcapWriter::frames)
    }

    /// Flushes the output and returns its writer; fails with the first error met on the way
    /// (a corrupt input record, a failed write) so a replay never ends silently short.
    pub fn finish(mut self) -> Result<Option<W>, PcapError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer.take().map(PcapWriter::into_inner).transpose()
    }

    fn record_error(&mut self, e: PcapError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}

impl<R: Read + Send, W: Write + Send> PortQueue for PcapQueue<R, W> {
    type Buf = HeapBuf;

    fn rx_burst(&mut self, out: &mut Vec<HeapBuf>, max: usize) -> usize {
        let mut n = 0;
        while n < max && !self.exhausted {
            // Take a buffer before reading, so a busy pool delays the replay instead of
            // losing a frame of the capture.
            let Some(mut buf) = self.pool.alloc() else {
                break;
            };
            let Some(reader) = self.reader.as_mut() else {
                self.pool.free(buf);
                self.exhausted = true;
                break;
            };
            match reader.next_record() {
                Ok(Some(rec)) => {
                    self.clock = rec.nanos;
                    if buf.reset_from(&rec.frame).is_ok() {
                        self.stats.rx_packets += 1;
                        self.stats.rx_bytes += rec.frame.len() as u64;
                        out.push(buf);
                        n += 1;
                    } else {
                        // Larger than the pool's buffers (pcap allows 64 KiB).
                        self.stats.rx_dropped += 1;
                        self.pool.free(buf);
                    }
                }
                Ok(None) => {
                    self.exhausted = true;
                    self.pool.free(buf);
                }
                Err(e) => {
                    self.exhausted = true;
                    self.record_error(e);
                    self.pool.free(buf);
                }
            }
        }
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<HeapBuf>) -> usize {
        let mut sent = 0;
        for buf in pkts.drain(..) {
            let frame = buf.as_ref();
            let written = match self.writer.as_mut() {
                Some(w) => w.write_frame(self.clock, frame).map(|()| true),
                None => Ok(false),
            };
            match written {
                Ok(true) => {
                    sent += 1;
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += frame.len() as u64;
                }
                Ok(false) => self.stats.tx_dropped += 1,
                Err(e) => {
                    self.stats.tx_dropped += 1;
                    self.record_error(e);
                }
            }
            self.pool.free(buf);
        }
        sent
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
