//! Submitting at a priority, and applying a function to a tuple of arguments (`starmap`).

use std::future::Future;
use std::sync::Arc;

use super::room::QueueRoom;
use super::track::{self, Queueable};
use super::ElasticPool;
use crate::pool::Handle;
use crate::Error;

/// A view of an [`ElasticPool`] that submits at one priority (higher runs first), from
/// [`ElasticPool::priority`]. It has the pool's six submit methods
/// (`try_submit`, `submit`, `submit_blocking`, `try_spawn`, `spawn_when_room`,
/// `spawn_when_room_blocking`).
///
/// ```
/// use std::sync::{mpsc, Arc, Mutex};
/// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
/// let order = Arc::new(Mutex::new(Vec::new()));
/// // The only worker waits at a gate while the two works queue up.
/// let (open, gate) = mpsc::channel::<()>();
/// let gate = pool.try_submit(move || gate.recv()).unwrap();
/// let (a, b) = (order.clone(), order.clone());
/// let low = pool.priority(1).try_submit(move || a.lock().unwrap().push("low")).unwrap();
/// let high = pool.priority(9).try_submit(move || b.lock().unwrap().push("high")).unwrap();
/// open.send(()).unwrap();
/// assert_eq!((gate.wait(), low.wait(), high.wait()), (Ok(Ok(())), Ok(()), Ok(())));
/// assert_eq!(*order.lock().unwrap(), vec!["high", "low"]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Priority<'a> {
    pool: &'a ElasticPool,
    priority: i32,
}

impl<'a> Priority<'a> {
    pub(super) fn new(pool: &'a ElasticPool, priority: i32) -> Priority<'a> {
        Priority { pool, priority }
    }

    /// Queue room now, or `Err(Error::QueueFull)`.
    fn try_room(&self) -> Result<QueueRoom, Error> {
        match &self.pool.shared.rooms {
            None => Ok(QueueRoom::unbounded()),
            Some(rooms) => rooms.try_take().ok_or(Error::QueueFull),
        }
    }

    async fn room(&self) -> QueueRoom {
        match &self.pool.shared.rooms {
            None => QueueRoom::unbounded(),
            Some(rooms) => rooms.take().await,
        }
    }

    /// Queue room, blocking for it — except on one of this pool's own workers, where the room
    /// might only ever be freed by the thread that would wait for it: there a full queue is
    /// `Err(Error::QueueFull)` at once, never a silent deadlock.
    fn room_blocking(&self) -> Result<QueueRoom, Error> {
        match &self.pool.shared.rooms {
            None => Ok(QueueRoom::unbounded()),
            Some(rooms) => match rooms.try_take() {
                Some(room) => Ok(room),
                None if self.pool.on_own_worker() => Err(Error::QueueFull),
                None => Ok(crate::sync::blocking::wait(rooms.take())),
            },
        }
    }

    fn accept<T: 'static, W: Queueable<T> + 'static>(
        &self,
        work: Arc<W>,
        room: QueueRoom,
    ) -> Handle<T> {
        self.pool.shared.accept(self.priority, work, room)
    }

    /// Queues a plain closure at this priority, or `Err(Error::QueueFull)` at once.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let room = self.try_room()?;
        Ok(self.accept(track::plain(f, &self.pool.shared), room))
    }

    /// Queues a plain closure at this priority, waiting for room.
    pub async fn submit<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let room = self.room().await;
        Ok(self.accept(track::plain(f, &self.pool.shared), room))
    }

    /// Queues a plain closure at this priority, blocking for room (on one of this pool's own
    /// workers, a full queue is `Err(Error::QueueFull)` instead: see
    /// [`ElasticPool::submit_blocking`]).
    pub fn submit_blocking<F, T>(&self, f: F) -> Result<Handle<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let room = self.room_blocking()?;
        Ok(self.accept(track::plain(f, &self.pool.shared), room))
    }

    /// Queues an async work at this priority, or `Err(Error::QueueFull)` at once.
    pub fn try_spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let room = self.try_room()?;
        Ok(self.accept(track::asynchronous(f, &self.pool.shared), room))
    }

    /// Queues an async work at this priority, waiting (asynchronously) for room.
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
    /// let h = aplex::block_on(pool.priority(3).spawn_when_room(|| async { 5 })).unwrap();
    /// assert_eq!(h.wait(), Ok(5));
    /// ```
    pub async fn spawn_when_room<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let room = self.room().await;
        Ok(self.accept(track::asynchronous(f, &self.pool.shared), room))
    }

    /// Queues an async work at this priority, blocking the calling thread until there is room
    /// (on one of this pool's own workers, a full queue is `Err(Error::QueueFull)` instead).
    ///
    /// ```
    /// let pool = aplex::ElasticPool::builder().max_workers(1).build().unwrap();
    /// let h = pool.priority(3).spawn_when_room_blocking(|| async { 5 }).unwrap();
    /// assert_eq!(h.wait(), Ok(5));
    /// ```
    pub fn spawn_when_room_blocking<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let room = self.room_blocking()?;
        Ok(self.accept(track::asynchronous(f, &self.pool.shared), room))
    }

    /// The old name of [`spawn_when_room`](Priority::spawn_when_room), kept for one release.
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `spawn_when_room`: it waits for room in the queue, which \
                `ThreadPool::spawn` never does"
    )]
    pub async fn spawn<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_when_room(f).await
    }

    /// The old name of [`spawn_when_room_blocking`](Priority::spawn_when_room_blocking), kept
    /// for one release.
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `spawn_when_room_blocking`: it blocks the calling thread until there \
                is room in the queue; it does not run blocking code as tokio's `spawn_blocking` does"
    )]
    pub fn spawn_blocking<F, Fut>(&self, f: F) -> Result<Handle<Fut::Output>, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_when_room_blocking(f)
    }
}

/// A function that takes its arguments as a tuple: what [`ElasticPool::starmap`] applies.
///
/// Implemented for `Fn` closures and functions of one to six arguments.
///
/// ```
/// use aplex::Apply;
/// let add = |a: i32, b: i32| a + b;
/// assert_eq!(add.apply((2, 3)), 5);
/// ```
pub trait Apply<Args>: Send + Sync + 'static {
    /// What the function returns.
    type Output;
    /// Calls the function with the tuple's elements as its arguments.
    fn apply(&self, args: Args) -> Self::Output;
}

macro_rules! impl_apply {
    ($($arg:ident),+) => {
        impl<Func, Out, $($arg),+> Apply<($($arg,)+)> for Func
        where
            Func: Fn($($arg),+) -> Out + Send + Sync + 'static,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn apply(&self, ($($arg,)+): ($($arg,)+)) -> Out {
                self($($arg),+)
            }
        }
    };
}

impl_apply!(A);
impl_apply!(A, B);
impl_apply!(A, B, C);
impl_apply!(A, B, C, D);
impl_apply!(A, B, C, D, E);
impl_apply!(A, B, C, D, E, G);
