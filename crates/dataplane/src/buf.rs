//! Packet buffers with headroom, so the 8-byte Shim6 payload header is inserted by growing the
//! packet at the front instead of copying the payload (style.md §3).

/// Headroom every buffer keeps in front of a received frame: the Shim6 payload header (8 bytes)
/// plus an outer IPv6 header for a tunnelled provider exit (40), rounded up to a cache line.
pub const DEFAULT_HEADROOM: usize = 128;

/// Largest frame a buffer holds (Ethernet MTU 9000 jumbo plus headers would need more; the
/// appliance runs provider links at 1500 and inside links at most 9000).
pub const MAX_FRAME: usize = 9216;

/// Why a buffer operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BufError {
    /// Not enough headroom in front of the data.
    #[error("not enough headroom")]
    NoHeadroom,
    /// Not enough room after the data, or data larger than the buffer.
    #[error("not enough room in the buffer")]
    NoRoom,
    /// Asked to remove more bytes than the packet has.
    #[error("packet shorter than asked")]
    TooShort,
}

/// A packet buffer: the frame's bytes (`as_ref`/`as_mut`), with room in front to grow into.
/// Implemented by DPDK mbufs and by [`HeapBuf`] (in-memory rings, AF_PACKET, pcap, tests).
pub trait PacketBuf: AsRef<[u8]> + AsMut<[u8]> {
    /// Bytes available in front of the data.
    fn headroom(&self) -> usize;
    /// Grows the packet by `n` bytes at the front (uninitialised content: the caller writes it).
    fn prepend(&mut self, n: usize) -> Result<(), BufError>;
    /// Removes `n` bytes from the front.
    fn adj(&mut self, n: usize) -> Result<(), BufError>;
    /// Shortens the packet to `len` bytes (no-op when already shorter).
    fn truncate(&mut self, len: usize);
    /// Replaces the content with `data`, restoring the default headroom.
    fn reset_from(&mut self, data: &[u8]) -> Result<(), BufError>;
    /// Length of the packet.
    fn len(&self) -> usize {
        self.as_ref().len()
    }
    /// Whether the packet is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap buffer of fixed capacity allocated once and recycled: `storage[start..end]` is the
/// packet. Pools of these are pre-allocated so the fast path never allocates.
#[derive(Clone, PartialEq, Eq)]
pub struct HeapBuf {
    storage: Box<[u8]>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for HeapBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapBuf")
            .field("headroom", &self.start)
            .field("len", &(self.end - self.start))
            .finish()
    }
}

impl HeapBuf {
    /// An empty buffer with [`DEFAULT_HEADROOM`] and room for [`MAX_FRAME`] bytes.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_HEADROOM + MAX_FRAME)
    }

    /// An empty buffer of `capacity` bytes in all, headroom included.
    pub fn with_capacity(capacity: usize) -> Self {
        let start = DEFAULT_HEADROOM.min(capacity);
        Self {
            storage: vec![0u8; capacity].into_boxed_slice(),
            start,
            end: start,
        }
    }

    /// A buffer holding a copy of `data` after the default headroom (tests, generators).
    pub fn from_slice(data: &[u8]) -> Self {
        let mut b = Self::with_capacity(DEFAULT_HEADROOM + data.len().max(MAX_FRAME));
        // Cannot fail: the capacity was sized for `data`.
        let _ = b.reset_from(data);
        b
    }

    /// Sets the packet length to `len` bytes after the current start (the content is whatever
    /// the storage holds; a receiver writes into [`HeapBuf::spare_mut`] first).
    pub fn set_len(&mut self, len: usize) -> Result<(), BufError> {
        let end = self.start.checked_add(len).ok_or(BufError::NoRoom)?;
        if end > self.storage.len() {
            return Err(BufError::NoRoom);
        }
        self.end = end;
        Ok(())
    }

    /// Everything from the start of the packet to the end of the storage: where a receiver
    /// copies a frame before calling [`HeapBuf::set_len`].
    pub fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..]
    }
}

impl Default for HeapBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl AsRef<[u8]> for HeapBuf {
    fn as_ref(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
}

impl AsMut<[u8]> for HeapBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
}

impl PacketBuf for HeapBuf {
    fn headroom(&self) -> usize {
        self.start
    }

    fn prepend(&mut self, n: usize) -> Result<(), BufError> {
        self.start = self.start.checked_sub(n).ok_or(BufError::NoHeadroom)?;
        Ok(())
    }

    fn adj(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.end - self.start {
            return Err(BufError::TooShort);
        }
        self.start += n;
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        if len < self.end - self.start {
            self.end = self.start + len;
        }
    }

    fn reset_from(&mut self, data: &[u8]) -> Result<(), BufError> {
        let start = DEFAULT_HEADROOM.min(self.storage.len());
        let end = start.checked_add(data.len()).ok_or(BufError::NoRoom)?;
        let dst = self.storage.get_mut(start..end).ok_or(BufError::NoRoom)?;
        dst.copy_from_slice(data);
        self.start = start;
        self.end = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_adj_move_the_start() {
        let mut b = HeapBuf::from_slice(&[1, 2, 3, 4]);
        assert_eq!(b.headroom(), DEFAULT_HEADROOM);
        b.prepend(8).unwrap();
        assert_eq!(b.len(), 12);
        assert_eq!(&b.as_ref()[8..], &[1, 2, 3, 4]);
        b.adj(10).unwrap();
        assert_eq!(b.as_ref(), &[3, 4]);
        assert_eq!(b.adj(3), Err(BufError::TooShort));
        b.truncate(1);
        assert_eq!(b.as_ref(), &[3]);
    }

    #[test]
    fn headroom_and_room_are_enforced() {
        let mut b = HeapBuf::with_capacity(16);
        assert_eq!(b.headroom(), 16);
        assert_eq!(b.reset_from(&[0; 1]), Err(BufError::NoRoom));
        let mut b = HeapBuf::from_slice(&[0; 4]);
        assert_eq!(b.prepend(DEFAULT_HEADROOM + 1), Err(BufError::NoHeadroom));
        assert!(b.set_len(MAX_FRAME + 1).is_err());
    }
}
