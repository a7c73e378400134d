//! Work over many independent items on a few threads, for the store-wide commands:
//! listing or pruning a million records is one open, read or unlink system call after
//! another, and a second thread (more on more cores) overlaps them.

use std::num::NonZeroUsize;

/// Fewer items than this run on the calling thread: a thread costs more than they do.
const MIN_ITEMS_PER_THREAD: usize = 256;

/// At most this many threads: beyond it the file system, not the CPU, is the limit.
const MAX_THREADS: usize = 8;

/// `f` applied to every item, in the items' order, on up to one thread per core (at least
/// two: the work waits on system calls as much as it computes).
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = (cores.max(2)).min(MAX_THREADS).min(items.len() / MIN_ITEMS_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
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
            let seen = std::sync::Mutex::new(std::collections::HashSet::new());
            let doubled = map(&items, |i| {
                seen.lock().unwrap().insert(std::thread::current().id());
                i * 2
            });
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            if n >= 1000 {
                assert!(seen.lock().unwrap().len() >= 2, "{n} items ran on more than one thread");
            }
        }
    }
}
