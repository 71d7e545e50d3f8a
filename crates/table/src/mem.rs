//! Fixed, zero-initialised, cache-line-aligned arrays of atomics, and a prefetch hint.
//!
//! The table allocates everything once, at construction: a `Vec` of millions of atomics built
//! element by element is slow and gives no control over alignment, so the arrays come straight
//! from the global allocator, zeroed, aligned to a cache line (or a huge page when large, so
//! the kernel can back them with transparent huge pages and the fast path takes fewer TLB
//! misses).

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use std::alloc::{self, Layout};

use crate::TableError;

/// Cache-line size the layout is designed around.
pub(crate) const CACHE_LINE: usize = 64;

/// Arrays at least this large are aligned to [`HUGE_PAGE`].
const HUGE_THRESHOLD: usize = 4 << 20;
/// x86-64 transparent huge page size.
const HUGE_PAGE: usize = 2 << 20;

/// The layout [`ZeroedSlice::new`] allocates for `len` elements: at least one element,
/// cache-line (or huge-page) aligned, size rounded up to the alignment so the last element
/// never shares a cache line with another allocation.
fn layout_for<T>(len: usize) -> Option<Layout> {
    let bytes = core::mem::size_of::<T>().checked_mul(len.max(1))?;
    let align = if bytes >= HUGE_THRESHOLD {
        HUGE_PAGE
    } else {
        CACHE_LINE
    }
    .max(core::mem::align_of::<T>());
    Layout::from_size_align(bytes.checked_next_multiple_of(align)?, align).ok()
}

/// Bytes a [`ZeroedSlice`] of `len` elements allocates.
pub(crate) fn allocation_size<T>(len: usize) -> Option<usize> {
    layout_for::<T>(len).map(|l| l.size())
}

/// Types whose all-zero bit pattern is a valid value and that need no `Drop`.
///
/// # Safety
/// Implementors must be valid when every byte is zero and must not implement `Drop` (nor hold
/// anything that does): [`ZeroedSlice`] creates them with `write_bytes(0)` and frees the
/// memory without running destructors.
pub(crate) unsafe trait Zeroable: Sized {}

/// A heap array of `T`, allocated once with a chosen alignment and filled with zero bytes.
pub(crate) struct ZeroedSlice<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
    _owns: PhantomData<T>,
}

// SAFETY: `ZeroedSlice<T>` owns its elements like `Box<[T]>` does, so it is `Send`/`Sync`
// exactly when `T` is.
unsafe impl<T: Zeroable + Send> Send for ZeroedSlice<T> {}
// SAFETY: as above: shared access only hands out `&[T]`.
unsafe impl<T: Zeroable + Sync> Sync for ZeroedSlice<T> {}

impl<T: Zeroable> ZeroedSlice<T> {
    /// Allocates `len` zeroed elements, aligned to at least a cache line.
    pub(crate) fn new(len: usize) -> Result<Self, TableError> {
        let layout = layout_for::<T>(len).ok_or(TableError::OutOfMemory)?;
        let (size, align) = (layout.size(), layout.align());
        if size == 0 {
            // Zero-sized `T`: nothing the table stores.
            return Err(TableError::OutOfMemory);
        }
        // SAFETY: `layout` has a non-zero size (checked just above) and a power-of-two alignment, as `Layout::from_size_align` checked.
        let raw = unsafe { alloc::alloc(layout) };
        let ptr = NonNull::new(raw.cast::<T>()).ok_or(TableError::OutOfMemory)?;
        advise_huge_pages(raw, size, align);
        // SAFETY: `raw` points to `size` freshly allocated bytes that nothing else references;
        // zero bytes form valid `T`s by the `Zeroable` contract. Writing them now (rather than
        // leaving lazily-zeroed pages) also takes every page fault here, not in the fast path.
        unsafe { core::ptr::write_bytes(raw, 0, size) };
        Ok(Self {
            ptr,
            len,
            layout,
            _owns: PhantomData,
        })
    }

    /// Bytes this array occupies, alignment padding included.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.layout.size()
    }
}

impl<T: Zeroable> Deref for ZeroedSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised (zeroed, then only touched through atomics or
        // `&T`) elements for as long as `self` lives, and is properly aligned.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for ZeroedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc::alloc(self.layout)` and is freed once, here; `T`
        // needs no destructor (`Zeroable` contract).
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), self.layout) }
    }
}

/// Asks the kernel to back a huge-page-aligned array with transparent huge pages: a table of
/// a million contexts spans tens of thousands of 4 KiB pages, and every lookup would otherwise
/// risk a TLB miss on top of its cache misses.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, size: usize, align: usize) {
    if align < HUGE_PAGE {
        return;
    }
    extern "C" {
        fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    /// `MADV_HUGEPAGE` from `<sys/mman.h>` (Linux).
    const MADV_HUGEPAGE: i32 = 14;
    // SAFETY: `ptr..ptr + size` is one allocation we own, aligned to a page; `madvise` only
    // changes how the kernel backs it (a hint: failure, e.g. THP disabled, is harmless and
    // ignored) and never reads or writes it.
    let _ = unsafe { madvise(ptr.cast(), size, MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _size: usize, _align: usize) {}

/// Hints the CPU to pull the cache line holding `p` into L1; a no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, part of the x86-64 baseline; a prefetch never faults
    // and never reads into the program, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hints the CPU to pull the cache line holding `p` into L1 **for writing** (`prefetchw`:
/// the line arrives exclusive, so the store that follows needs no second coherence round
/// trip when another core wrote it last, e.g. a frame built by a NIC or a generator). On a
/// CPU without the instruction it decodes as a no-op; a no-op off x86-64. Any address is
/// fine: a prefetch never faults and never reads into the program.
#[inline(always)]
pub fn prefetch_write<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, part of the x86-64 baseline; a prefetch never faults
    // and has no effect the program can observe, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
#[cfg(not(loom))]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    struct Word(AtomicU64);
    // SAFETY: an `AtomicU64` of zero bytes is 0 and has no destructor.
    unsafe impl Zeroable for Word {}

    #[test]
    fn zeroed_and_aligned() {
        let small = ZeroedSlice::<Word>::new(3).unwrap();
        assert_eq!(small.len(), 3);
        assert_eq!(small.as_ptr() as usize % CACHE_LINE, 0);
        assert_eq!(small.allocated_bytes(), CACHE_LINE);
        assert!(small.iter().all(|w| w.0.load(Ordering::Relaxed) == 0));
        small[2].0.store(7, Ordering::Relaxed);
        assert_eq!(small[2].0.load(Ordering::Relaxed), 7);

        let big = ZeroedSlice::<Word>::new(1 << 20).unwrap();
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(big.allocated_bytes(), 8 << 20);
        assert!(big.iter().all(|w| w.0.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn absurd_sizes_fail_cleanly() {
        assert_eq!(
            ZeroedSlice::<Word>::new(usize::MAX / 4).err(),
            Some(TableError::OutOfMemory)
        );
    }
}
