//! Owned mbufs and their pools. Data pointer and lengths are read and written here in Rust on
//! the bindgen `rte_mbuf`, so touching a packet costs no FFI call; only alloc/free cross it.
//!
//! Only single-segment mbufs are handed out (the port drops chained ones on receive), so
//! `data_len == pkt_len` always holds and [`PacketBuf`] needs no segment walk.

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::eal_ready;
use super::DpdkError;
use crate::buf::{BufError, PacketBuf, DEFAULT_HEADROOM};

/// A packet-buffer pool (`rte_pktmbuf_pool_create`) on one NUMA socket, freed on drop.
///
/// Every [`Mbuf`] taken from it must be gone (transmitted or dropped) before the pool is.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: an `rte_mempool` is thread-safe (lock-free ring plus per-lcore caches); the handle
// is only a pointer to it.
unsafe impl Send for Mempool {}
// SAFETY: as above, concurrent alloc/free from several threads is what the pool is for.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with [`DEFAULT_HEADROOM`] bytes of headroom and `data_room`
    /// bytes for the frame, on `socket` (`None`: any socket).
    #[cold]
    pub fn new(name: &str, n: u32, data_room: u16, socket: Option<u32>) -> Result<Self, DpdkError> {
        if !eal_ready() {
            return Err(DpdkError::NoEal);
        }
        let cname = CString::new(name).map_err(|_| DpdkError::Config("NUL in mempool name"))?;
        let room = u16::try_from(DEFAULT_HEADROOM)
            .ok()
            .and_then(|h| h.checked_add(data_room))
            .ok_or(DpdkError::Config("mbuf data room too large"))?;
        // SOCKET_ID_ANY is -1.
        let socket = socket.and_then(|s| i32::try_from(s).ok()).unwrap_or(-1);
        let cache = if n >= 1024 { 256 } else { 0 };
        // SAFETY: `cname` is a valid C string for the duration of the call; the EAL is up.
        let raw =
            unsafe { dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, room, socket) };
        match NonNull::new(raw) {
            Some(raw) => Ok(Self { raw }),
            None => Err(DpdkError::Call {
                op: "rte_pktmbuf_pool_create",
                // SAFETY: reads this thread's `rte_errno`, set by the failed call.
                code: -unsafe { dpdk_sys::pshim6_errno() },
            }),
        }
    }

    /// A fresh mbuf (empty, default headroom), or `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: `self.raw` is a live pktmbuf pool.
        let m = unsafe { dpdk_sys::pshim6_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|raw| Mbuf { raw })
    }

    /// Mbufs currently free in the pool (operator view, tests).
    pub fn available(&self) -> u32 {
        // SAFETY: `self.raw` is a live mempool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs held in lcore `lcore`'s cache of this pool: non-zero once a thread registered as
    /// that lcore freed mbufs here (the cache is in use).
    pub fn cached_on(&self, lcore: u32) -> u32 {
        // SAFETY: `self.raw` is a live mempool; the shim bounds-checks `lcore`.
        unsafe { dpdk_sys::pshim6_mempool_cache_len(self.raw.as_ptr(), lcore) }
    }

    /// Mbufs held in every lcore's cache together.
    pub fn cached(&self) -> u32 {
        // SAFETY: reads a build constant.
        let max = unsafe { dpdk_sys::pshim6_max_lcore() };
        (0..max).map(|l| self.cached_on(l)).sum()
    }

    /// The raw pool, for queue set-up.
    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by `rte_pktmbuf_pool_create` and is freed only here.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}

/// One owned, single-segment `rte_mbuf`, returned to its pool on drop.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    raw: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an `Mbuf` is the only handle to its `rte_mbuf`; moving it to another thread moves
// that ownership, and freeing to the pool is thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid single-segment mbuf that nobody else will use or free.
    #[inline]
    pub unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Self {
        Self { raw }
    }

    /// Gives up ownership (e.g. to `rte_eth_tx_burst`) without freeing.
    #[inline]
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub(crate) fn as_raw(&self) -> NonNull<dpdk_sys::rte_mbuf> {
        self.raw
    }

    #[inline]
    fn m(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: `raw` is a valid mbuf owned by `self` (type invariant).
        unsafe { self.raw.as_ref() }
    }

    #[inline]
    fn m_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: as in `m`, and `&mut self` makes the access exclusive.
        unsafe { self.raw.as_mut() }
    }

    /// Bytes after the data up to the end of the buffer.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        usize::from(m.buf_len)
            .saturating_sub(usize::from(m.data_off))
            .saturating_sub(usize::from(m.data_len))
    }

    /// Makes the mbuf a `len`-byte frame at the default headroom, keeping whatever bytes are
    /// there (a generator rewriting only the headers of a recycled frame).
    #[inline]
    pub fn reset_len(&mut self, len: usize) -> Result<(), BufError> {
        let buf_len = usize::from(self.m().buf_len);
        let off = DEFAULT_HEADROOM.min(buf_len);
        if off.checked_add(len).is_none_or(|end| end > buf_len) {
            return Err(BufError::NoRoom);
        }
        // Both fit: off + len <= buf_len, a u16.
        self.m_mut().data_off = off as u16;
        self.set_len(len as u16);
        Ok(())
    }

    #[inline]
    fn set_len(&mut self, len: u16) {
        let m = self.m_mut();
        m.data_len = len;
        m.pkt_len = u32::from(len);
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the mbuf is owned by `self` and freed exactly once, here.
        unsafe { dpdk_sys::pshim6_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl AsRef<[u8]> for Mbuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        let m = self.m();
        let base = m.buf_addr.cast::<u8>();
        // SAFETY: for a single-segment mbuf, `buf_addr + data_off .. + data_len` lies inside
        // the buffer of `buf_len` bytes (an invariant every method here keeps), and the mbuf is
        // owned by `self`, borrowed for the slice's lifetime.
        unsafe {
            std::slice::from_raw_parts(base.add(usize::from(m.data_off)), usize::from(m.data_len))
        }
    }
}

impl AsMut<[u8]> for Mbuf {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        let m = self.m_mut();
        let base = m.buf_addr.cast::<u8>();
        let (off, len) = (usize::from(m.data_off), usize::from(m.data_len));
        // SAFETY: as in `as_ref`, with `&mut self` making the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(base.add(off), len) }
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.m().data_off)
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Result<(), BufError> {
        let n = u16::try_from(n).map_err(|_| BufError::NoHeadroom)?;
        let m = self.m_mut();
        let off = m.data_off.checked_sub(n).ok_or(BufError::NoHeadroom)?;
        // Cannot overflow: data_off + data_len <= buf_len (u16) and the sum is unchanged.
        let len = m.data_len.checked_add(n).ok_or(BufError::NoRoom)?;
        m.data_off = off;
        self.set_len(len);
        Ok(())
    }

    #[inline]
    fn adj(&mut self, n: usize) -> Result<(), BufError> {
        let n = u16::try_from(n).map_err(|_| BufError::TooShort)?;
        let m = self.m_mut();
        let len = m.data_len.checked_sub(n).ok_or(BufError::TooShort)?;
        m.data_off = m.data_off.checked_add(n).ok_or(BufError::TooShort)?;
        self.set_len(len);
        Ok(())
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        if let Ok(len) = u16::try_from(len) {
            if len < self.m().data_len {
                self.set_len(len);
            }
        }
    }

    fn reset_from(&mut self, data: &[u8]) -> Result<(), BufError> {
        let buf_len = usize::from(self.m().buf_len);
        let off = DEFAULT_HEADROOM.min(buf_len);
        let end = off.checked_add(data.len()).ok_or(BufError::NoRoom)?;
        if end > buf_len {
            return Err(BufError::NoRoom);
        }
        let (off16, len16) = (
            u16::try_from(off).map_err(|_| BufError::NoRoom)?,
            u16::try_from(data.len()).map_err(|_| BufError::NoRoom)?,
        );
        self.m_mut().data_off = off16;
        self.set_len(len16);
        self.as_mut().copy_from_slice(data);
        Ok(())
    }
}
