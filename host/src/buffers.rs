//! Large byte buffers backed by transparent huge pages.
//!
//! A fresh 64 MiB `Vec` is 16,384 page faults when it is first written, and on this machine
//! those faults cost more than the copy itself (perf: half of a 64 MiB cache hit was
//! `exc_page_fault` under the memmove that lifts the argument). Linux maps huge pages only
//! into regions marked with `madvise(MADV_HUGEPAGE)` when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`, the common default; a buffer
//! marked so faults once per 2 MiB. Elsewhere the mark is a no-op.

/// Buffers from this size up are marked for huge pages.
const HUGE_FROM: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// A copy of `bytes`, in a buffer marked for huge pages when it is large.
pub fn copy_of(bytes: &[u8]) -> Vec<u8> {
    let mut out = with_capacity(bytes.len());
    out.extend_from_slice(bytes);
    out
}

/// An empty buffer with room for `len` bytes, marked for huge pages when it is large.
pub fn with_capacity(len: usize) -> Vec<u8> {
    let out = Vec::with_capacity(len);
    if len >= HUGE_FROM {
        advise_huge(out.as_ptr() as usize, len);
    }
    out
}

/// Marks `region`, memory about to be written for the first time (a guest's freshly grown
/// memory that a large list is lowered into), for huge pages when it is large.
pub fn advise_huge_pages(region: &mut [u8]) {
    if region.len() >= HUGE_FROM {
        advise_huge(region.as_mut_ptr() as usize, region.len());
    }
}

#[cfg(target_os = "linux")]
fn advise_huge(start: usize, len: usize) {
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + len) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        // SAFETY: the range lies inside an allocation this process owns; MADV_HUGEPAGE only
        // changes how the kernel backs it, never its contents. A refusal is harmless.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_are_exact_at_every_size() {
        for len in [0, 1, super::HUGE_FROM - 1, super::HUGE_FROM, super::HUGE_FROM + 4097] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let copy = super::copy_of(&bytes);
            assert_eq!(copy, bytes, "{len} bytes");
            assert!(super::with_capacity(len).capacity() >= len);
        }
    }
}
