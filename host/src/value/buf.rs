//! The items of a byte list or a list of numbers: in a host allocation, or in place in the
//! memory of the guest whose call the host is serving.
//!
//! A flow that passes a 64 MiB list to a task would otherwise have it copied into a fresh
//! host buffer before the key is hashed and again into the provider's memory on a miss;
//! the first copy costs as much as the second, the kernel's zeroing of the buffer's pages as
//! much again, and the buffer is one more copy of the value in memory. So the arguments of a
//! task import, from [`BORROW_FROM`] bytes up, are borrowed from the caller's memory for as
//! long as the host call lasts (`value::abi`), and hashed and lowered from there.
//!
//! A borrowed [`Buf`] is valid only while the caller is suspended in that host call: its
//! memory cannot grow, move or change then, since only the caller's own instance could do
//! so and it is waiting. Nothing may keep one past the call. Cloning makes an owned copy,
//! so what is stored (a record, a transaction's inputs) never borrows; and every host call
//! checks on return that the borrows it made are gone ([`BorrowCheck`]), so a borrow that
//! escaped is a panic in tests, never a read of memory that changed.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// Lists from this many bytes up are borrowed from the caller's memory; smaller ones are
/// copied, which costs less than keeping account of a borrow.
pub const BORROW_FROM: usize = 16 * 1024;

thread_local! {
    /// Borrowed buffers alive on this thread.
    static LIVE_BORROWS: Cell<usize> = const { Cell::new(0) };
}

/// Items of type `T`, owned or borrowed from guest memory for one host call.
///
/// Owned items are shared: a clone of an owned Buf is another handle on the same items, so
/// a task's result can be returned to its caller, kept as a decoded record and written to
/// a file without a copy.
pub struct Buf<T: Copy + 'static> {
    repr: Repr<T>,
}

enum Repr<T> {
    Owned(Arc<Vec<T>>),
    Borrowed { ptr: NonNull<T>, len: usize },
}

// SAFETY: a borrowed Buf reads memory that nothing writes while it lives (see the module
// docs); an owned one is a Vec.
unsafe impl<T: Copy + Send + 'static> Send for Buf<T> {}
// SAFETY: as for Send; `&Buf` only reads.
unsafe impl<T: Copy + Sync + 'static> Sync for Buf<T> {}

impl<T: Copy + 'static> Buf<T> {
    /// A buffer borrowing `items` in place.
    ///
    /// # Safety
    /// `items` must stay valid and unchanged until the Buf is dropped, on this thread,
    /// before the host call that lifted them returns.
    pub unsafe fn borrowed(items: &[T]) -> Buf<T> {
        LIVE_BORROWS.with(|live| live.set(live.get() + 1));
        Buf { repr: Repr::Borrowed { ptr: NonNull::from(items).cast(), len: items.len() } }
    }

    /// Whether the items are borrowed from guest memory.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.repr, Repr::Borrowed { .. })
    }

    /// The items as an owned vector, copied if they were borrowed.
    pub fn into_vec(mut self) -> Vec<T> {
        match std::mem::replace(&mut self.repr, Repr::Owned(Arc::default())) {
            Repr::Owned(items) => Arc::try_unwrap(items).unwrap_or_else(|shared| shared.to_vec()),
            Repr::Borrowed { ptr, len } => {
                LIVE_BORROWS.with(|live| live.set(live.get() - 1));
                // SAFETY: `borrowed`'s contract keeps the memory valid until now.
                unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) }.to_vec()
            }
        }
    }

    /// The items, made owned (and not shared) first, for changing them.
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if self.is_borrowed() {
            *self = Buf::from(self.to_vec());
        }
        match &mut self.repr {
            Repr::Owned(items) => Arc::make_mut(items),
            Repr::Borrowed { .. } => unreachable!("made owned above"),
        }
    }
}

impl<T: Copy + 'static> Deref for Buf<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(items) => items.as_slice(),
            // SAFETY: `borrowed`'s contract keeps the memory valid while self lives.
            Repr::Borrowed { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
        }
    }
}

impl<T: Copy + 'static> Drop for Buf<T> {
    fn drop(&mut self) {
        if self.is_borrowed() {
            LIVE_BORROWS.with(|live| live.set(live.get() - 1));
        }
    }
}

impl<T: Copy + 'static> From<Vec<T>> for Buf<T> {
    fn from(items: Vec<T>) -> Buf<T> {
        Buf { repr: Repr::Owned(Arc::new(items)) }
    }
}

impl<T: Copy + 'static> FromIterator<T> for Buf<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Buf<T> {
        Buf::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<T: Copy + 'static> Clone for Buf<T> {
    /// The same items for owned ones; a copy of borrowed ones, since a clone may outlive the
    /// host call a borrow belongs to.
    fn clone(&self) -> Buf<T> {
        match &self.repr {
            Repr::Owned(items) => Buf { repr: Repr::Owned(items.clone()) },
            Repr::Borrowed { .. } => Buf::from(self.to_vec()),
        }
    }
}

impl<T: Copy + PartialEq + 'static> PartialEq for Buf<T> {
    fn eq(&self, other: &Buf<T>) -> bool {
        **self == **other
    }
}

impl<T: Copy + fmt::Debug + 'static> fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Copy + serde::Serialize + 'static> serde::Serialize for Buf<T> {
    /// As the `Vec<T>` it stands for.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Checks, when a host call returns, that every buffer borrowed for it has been dropped.
pub struct BorrowCheck {
    before: usize,
}

impl BorrowCheck {
    /// Taken before a host call's arguments are lifted.
    pub fn start() -> BorrowCheck {
        BorrowCheck { before: LIVE_BORROWS.with(Cell::get) }
    }

    /// Panics if a buffer borrowed since [`BorrowCheck::start`] is still alive: it would
    /// read the caller's memory after the caller resumed.
    pub fn finish(self) {
        let live = LIVE_BORROWS.with(Cell::get);
        assert!(
            live <= self.before,
            "{} buffers borrowed from guest memory outlived their host call",
            live - self.before
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrow_reads_in_place_and_its_clone_owns() {
        let memory = vec![1u8, 2, 3];
        let check = BorrowCheck::start();
        // SAFETY: `memory` outlives `borrowed` and is not written while it lives.
        let borrowed = unsafe { Buf::borrowed(&memory[..]) };
        assert!(borrowed.is_borrowed());
        assert_eq!(borrowed.as_ptr(), memory.as_ptr(), "no copy");
        let clone = borrowed.clone();
        assert!(!clone.is_borrowed());
        assert_eq!(clone, borrowed);
        assert_eq!(borrowed.into_vec(), memory);
        check.finish();
    }

    #[test]
    #[should_panic(expected = "outlived their host call")]
    fn a_borrow_kept_past_its_call_is_caught() {
        let memory = [7u64; 4];
        let check = BorrowCheck::start();
        // SAFETY: `memory` outlives the borrow, which the test leaks on purpose.
        std::mem::forget(unsafe { Buf::borrowed(&memory[..]) });
        check.finish();
    }

    #[test]
    fn clones_of_owned_items_share_them_until_one_changes() {
        let mut buf = Buf::from(vec![1u8, 2, 3]);
        let clone = buf.clone();
        assert_eq!(clone.as_ptr(), buf.as_ptr(), "no copy");
        buf.to_mut().push(4);
        assert_eq!(&*clone, &[1, 2, 3], "the clone keeps its items");
        assert_eq!(&*buf, &[1, 2, 3, 4]);
        assert_eq!(clone.into_vec(), [1, 2, 3]);
    }

    #[test]
    fn to_mut_makes_a_borrow_owned() {
        let memory = vec![1u32, 2];
        // SAFETY: `memory` outlives `buf`.
        let mut buf = unsafe { Buf::borrowed(&memory[..]) };
        buf.to_mut().push(3);
        assert!(!buf.is_borrowed());
        assert_eq!(&*buf, &[1, 2, 3]);
        assert_eq!(memory, [1, 2], "the guest's memory is not written");
    }
}
