//! The mmap'd TPACKET_V2 rings of one packet socket: geometry, frame addressing and the
//! status word each frame's ownership hangs on.
//!
//! A frame belongs to the kernel or to us according to `tp_status`. We read that word with
//! `Acquire` (so the frame's content written by the kernel is visible once we see it is ours)
//! and write it with `Release` (so what we wrote is visible before the kernel sees the frame
//! handed back), which is what the kernel's `smp_rmb`/`smp_wmb` pairs expect.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{self, Tpacket2Hdr, TpacketReq};
use crate::backend::BackendError;

/// A shared mapping of a socket's rings, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel only; it is owned by exactly one
// queue, which is used by one thread at a time (`PortQueue` is `Send`, not `Sync`).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd`'s rings (RX ring first, then TX ring, as the kernel lays them).
    pub(super) fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Self, BackendError> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint) of a packet socket
        // whose rings total exactly `len` bytes; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(BackendError::Sys {
                op: "mmap(rings)",
                source: std::io::Error::last_os_error(),
            });
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or(BackendError::Config("mmap returned a null mapping"))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, unmapped once, here; no frame
        // reference outlives the queue that owns this mapping.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Geometry of one ring, validated against the kernel's rules for `tpacket_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) block_size: usize,
    pub(super) block_nr: usize,
    pub(super) frame_size: usize,
    pub(super) frame_nr: usize,
}

impl Geometry {
    /// Rounds `frames` up to whole blocks of `frame_size`-byte frames. `frame_size` must be a
    /// multiple of 16 above the frame header; a block is the smallest multiple of the page
    /// size holding at least one frame.
    pub(super) fn new(frame_size: usize, frames: usize, page: usize) -> Result<Self, BackendError> {
        if frame_size & 15 != 0 || frame_size <= sys::TPACKET2_HDRLEN + 64 {
            return Err(BackendError::Config(
                "frame_size must be a multiple of 16 above 116",
            ));
        }
        if frames == 0 || frames > 1 << 20 {
            return Err(BackendError::Config("frame count must be in 1..=1048576"));
        }
        let page = page.max(4096);
        let block_size = frame_size.div_ceil(page).saturating_mul(page);
        let per_block = block_size / frame_size;
        let block_nr = frames.div_ceil(per_block);
        Ok(Self {
            block_size,
            block_nr,
            frame_size,
            frame_nr: block_nr * per_block,
        })
    }

    /// The `tpacket_req` asking for this geometry.
    pub(super) fn request(&self) -> Result<TpacketReq, BackendError> {
        let c = |v: usize| u32::try_from(v).map_err(|_| BackendError::Config("ring too large"));
        Ok(TpacketReq {
            tp_block_size: c(self.block_size)?,
            tp_block_nr: c(self.block_nr)?,
            tp_frame_size: c(self.frame_size)?,
            tp_frame_nr: c(self.frame_nr)?,
        })
    }

    /// Bytes the ring occupies in the mapping.
    pub(super) fn bytes(&self) -> usize {
        self.block_size * self.block_nr
    }

    /// Offset of frame `i` from the ring's start (frames never straddle blocks).
    fn offset(&self, i: usize) -> usize {
        let per_block = self.block_size / self.frame_size;
        (i / per_block) * self.block_size + (i % per_block) * self.frame_size
    }
}

/// One ring inside a [`Mmap`]: its base address, geometry and our cursor.
#[derive(Debug)]
pub(super) struct Ring {
    base: NonNull<u8>,
    geo: Geometry,
    next: usize,
}

// SAFETY: `base` points into a mapping owned by the same queue as this ring; see `Mmap`.
unsafe impl Send for Ring {}

impl Ring {
    /// The ring starting `offset` bytes into `map`.
    ///
    /// Fails unless the ring lies entirely inside the mapping.
    pub(super) fn new(map: &Mmap, offset: usize, geo: Geometry) -> Result<Self, BackendError> {
        match offset.checked_add(geo.bytes()) {
            Some(end) if end <= map.len => {}
            _ => return Err(BackendError::Config("ring outside its mapping")),
        }
        // SAFETY: `offset + geo.bytes() <= map.len`, so the result stays inside the mapping.
        let base = unsafe { map.ptr.add(offset) };
        Ok(Self { base, geo, next: 0 })
    }

    /// The frame under the cursor.
    #[inline]
    pub(super) fn current(&self) -> Frame {
        let off = self.geo.offset(self.next);
        // SAFETY: `next < frame_nr`, so `offset(next) + frame_size <= bytes()`, inside the
        // ring and hence inside the mapping (checked in `Ring::new`).
        let ptr = unsafe { self.base.add(off) };
        Frame {
            ptr,
            size: self.geo.frame_size,
        }
    }

    /// Number of frames in the ring.
    pub(super) fn len(&self) -> usize {
        self.geo.frame_nr
    }

    /// Moves the cursor to the next frame.
    #[inline]
    pub(super) fn advance(&mut self) {
        self.next += 1;
        if self.next == self.geo.frame_nr {
            self.next = 0;
        }
    }
}

/// One frame slot: a `tpacket2_hdr` followed by data, `size` bytes in all, 16-byte aligned.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    ptr: NonNull<u8>,
    size: usize,
}

impl Frame {
    fn status_word(&self) -> &AtomicU32 {
        // SAFETY: `tp_status` is the first field of the frame header, 4-byte aligned (frames are
        // 16-byte aligned in a page-aligned mapping) and valid for the mapping's lifetime, which
        // outlives this short borrow. The kernel accesses it concurrently, hence atomics.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().cast::<u32>()) }
    }

    /// The frame's status, read with `Acquire`.
    #[inline]
    pub(super) fn status(&self) -> u32 {
        self.status_word().load(Ordering::Acquire)
    }

    /// Hands the frame over by writing its status with `Release`.
    #[inline]
    pub(super) fn set_status(&self, status: u32) {
        self.status_word().store(status, Ordering::Release);
    }

    /// A copy of the frame header. Only meaningful while the frame is ours.
    #[inline]
    pub(super) fn header(&self) -> Tpacket2Hdr {
        // SAFETY: the frame is at least `TPACKET2_HDRLEN` bytes (checked by `Geometry::new`)
        // and 16-byte aligned; `Tpacket2Hdr` is plain integers, valid for any bytes. The caller
        // owns the frame (status says so), so the kernel is not writing it.
        unsafe { self.ptr.as_ptr().cast::<Tpacket2Hdr>().read_volatile() }
    }

    /// `sll_pkttype` of a received frame.
    #[inline]
    pub(super) fn pkttype(&self) -> u8 {
        let off = sys::TPACKET2_HDR_ALIGNED + sys::SLL_PKTTYPE_OFFSET;
        // SAFETY: `off < TPACKET2_HDRLEN < size`, inside the frame, which the caller owns.
        unsafe { self.ptr.as_ptr().add(off).read_volatile() }
    }

    /// `len` bytes at `off` in the frame, if they lie inside it.
    #[inline]
    pub(super) fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if off < sys::TPACKET2_HDR_ALIGNED || end > self.size {
            return None;
        }
        // SAFETY: `[off, end)` lies inside this frame (checked above) and past its header; the
        // caller owns the frame, so nothing writes it while the slice lives (it is dropped
        // before the status is handed back).
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }

    /// Writable bytes `[off, off + len)` of the frame, if they lie inside it and past the header.
    #[inline]
    pub(super) fn bytes_mut(&mut self, off: usize, len: usize) -> Option<&mut [u8]> {
        let end = off.checked_add(len)?;
        if off < sys::TPACKET2_HDR_ALIGNED || end > self.size {
            return None;
        }
        // SAFETY: as in `bytes`; the caller owns the frame and holds the only reference to it.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) })
    }

    /// Sets `tp_len` of a TX frame (before handing it over).
    #[inline]
    pub(super) fn set_tx_len(&mut self, len: u32) {
        // SAFETY: `tp_len` is the second `u32` of the header, inside the frame; the caller owns
        // the frame (status AVAILABLE), so the kernel is not reading it yet.
        unsafe { self.ptr.as_ptr().cast::<u32>().add(1).write_volatile(len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_rounds_to_whole_blocks() {
        let g = Geometry::new(2048, 5, 4096).unwrap();
        assert_eq!((g.block_size, g.block_nr, g.frame_nr), (4096, 3, 6));
        assert_eq!(g.offset(0), 0);
        assert_eq!(g.offset(1), 2048);
        assert_eq!(g.offset(2), 4096);
        let g = Geometry::new(2560, 4, 4096).unwrap();
        // A page holds one 2560-byte frame; frames never straddle blocks.
        assert_eq!((g.block_size, g.frame_nr), (4096, 4));
        assert_eq!(g.offset(3), 3 * 4096);
        let g = Geometry::new(8192, 3, 4096).unwrap();
        assert_eq!((g.block_size, g.block_nr, g.frame_nr), (8192, 3, 3));
        assert!(Geometry::new(2047, 4, 4096).is_err());
        assert!(Geometry::new(64, 4, 4096).is_err());
        assert!(Geometry::new(2048, 0, 4096).is_err());
    }
}
