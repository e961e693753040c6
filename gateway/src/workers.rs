//! Serving workers: one single-threaded runtime per core, each serving whole client connections.
//!
//! On tokio's work-stealing runtime one request hops between threads: the client connection's
//! task hands the request to the pooled upstream connection's task, which may sit on the other
//! thread, and the answer hops back; each hop is a futex wake-up and cold caches (at one
//! connection the gateway spent about a third more CPU per request that way, docs/BENCHMARKS.md).
//! Here the accept loop hands each admitted connection to one worker, round robin, and
//! everything of that connection runs on the worker's thread: TLS, hyper, the relay, and the
//! upstream exchange over the worker's own connection pool ([`PerWorker`]), which the clients of
//! that worker share (there is no upstream connection per client). The accept loops, the
//! metrics listener, QUIC, health checks, rotation and the chain followers' first start stay on
//! the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::watch;

thread_local! {
    /// 1 + the index of the worker running on this thread; 0 off the workers.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// How many workers serve connections: one per core the process may use.
pub(crate) fn count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The running workers. Dropping this ends them: each drops its runtime on its own thread, which
/// cancels what is still running there (the shutdown has waited for connections by then).
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Never sent: dropping it wakes every worker to end.
    _exit: watch::Sender<()>,
}

impl Workers {
    /// Starts `count` workers, each a thread driving its own current-thread runtime.
    pub(crate) fn start(count: usize) -> io::Result<Self> {
        let (exit, exit_rx) = watch::channel(());
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let mut exit = exit_rx.clone();
            std::thread::Builder::new()
                .name(format!("shroud-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|worker| worker.set(index + 1));
                    runtime.block_on(async move {
                        // Err once the sender is dropped: the gateway has stopped.
                        while exit.changed().await.is_ok() {}
                    });
                })?;
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            _exit: exit,
        })
    }

    /// Runs `future` on the next worker, round robin (on the calling runtime when there are
    /// none).
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        match self.handles.get(next % self.handles.len().max(1)) {
            Some(handle) => drop(handle.spawn(future)),
            None => drop(tokio::spawn(future)),
        }
    }
}

/// One `T` for each worker and one for the main runtime, e.g. an upstream connection pool: the
/// code on a worker gets that worker's own.
#[derive(Debug)]
pub(crate) struct PerWorker<T> {
    main: T,
    workers: Vec<T>,
}

impl<T> PerWorker<T> {
    /// `make()` for the main runtime and for each of `count` workers.
    pub(crate) fn new<E>(count: usize, mut make: impl FnMut() -> Result<T, E>) -> Result<Self, E> {
        Ok(Self {
            main: make()?,
            workers: (0..count).map(|_| make()).collect::<Result<_, _>>()?,
        })
    }

    /// The calling thread's: its worker's, or the main runtime's off the workers.
    pub(crate) fn current(&self) -> &T {
        WORKER
            .with(Cell::get)
            .checked_sub(1)
            .and_then(|index| self.workers.get(index))
            .unwrap_or(&self.main)
    }

    /// The main runtime's (background work: health checks, followers).
    pub(crate) fn main(&self) -> &T {
        &self.main
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn each_worker_sees_its_own_item_and_the_main_runtime_the_main_one() {
        let made = AtomicUsize::new(0);
        let items = Arc::new(
            PerWorker::new(2, || Ok::<_, ()>(made.fetch_add(1, Ordering::Relaxed))).unwrap(),
        );
        assert_eq!(*items.current(), 0, "off the workers: the main item");
        let workers = Workers::start(2).unwrap();
        let (seen, mut rx) = tokio::sync::mpsc::channel(4);
        for _ in 0..4 {
            let items = Arc::clone(&items);
            let seen = seen.clone();
            workers.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                seen.send((*items.current(), name)).await.unwrap();
            });
        }
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(rx.recv().await.unwrap());
        }
        got.sort();
        let worker = |n: usize| Some(format!("shroud-worker-{n}"));
        assert_eq!(
            got,
            vec![
                (1, worker(0)),
                (1, worker(0)),
                (2, worker(1)),
                (2, worker(1)),
            ]
        );
    }
}
