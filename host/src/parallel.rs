//! Work over many independent items on a few threads, for the store-wide commands:
//! listing or pruning a million records is one open, read or unlink system call after
//! another, and a second thread (more on more cores) overlaps them.

use std::num::NonZeroUsize;

/// Fewer items than this run on the calling thread: a thread costs more than they do.
const MIN_ITEMS_PER_THREAD: usize = 256;

/// At most this many threads for work that computes between its system calls: beyond it
/// the file system, not the CPU, is the limit.
const MAX_THREADS: usize = 8;

/// At most this many threads for work that waits on the storage device. On this project's
/// machine (ext4 mounted with `discard`), unlinking a written-back file waits for the disk to
/// discard its block: 238 µs per file on one thread, 101 µs on 8, 91 µs on 32, 100 µs on 128.
const MAX_BLOCKING_THREADS: usize = 32;

/// `f` applied to every item, in the items' order, on up to one thread per core (at least
/// two: the work waits on system calls as much as it computes).
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    map_on(cores.clamp(2, MAX_THREADS), items, f)
}

/// `f` applied to every item, in the items' order, for work that mostly waits on the device
/// (deleting files, or objects over the network): many more threads than cores, so the
/// device has many requests in flight.
pub fn map_blocking<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_on(MAX_BLOCKING_THREADS, items, f)
}

/// `f` applied to every item, in the items' order, on up to `threads` threads.
fn map_on<T: Sync, R: Send>(threads: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len() / MIN_ITEMS_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())).collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_the_items_whatever_their_number() {
        for n in [0, 1, 255, 256, 257, 1000, 10_007] {
            let items: Vec<usize> = (0..n).collect();
            for (blocking, threads_at_10_007) in [(false, 2), (true, 32)] {
                let seen = std::sync::Mutex::new(std::collections::HashSet::new());
                let double = |i: &usize| {
                    seen.lock().unwrap().insert(std::thread::current().id());
                    i * 2
                };
                let doubled = if blocking { map_blocking(&items, double) } else { map(&items, double) };
                assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
                let threads = seen.lock().unwrap().len();
                if n >= 1000 {
                    assert!(threads >= 2, "{n} items ran on more than one thread");
                }
                if n == 10_007 {
                    assert!(threads >= threads_at_10_007, "{n} items ran on {threads} threads");
                }
            }
        }
    }
}
