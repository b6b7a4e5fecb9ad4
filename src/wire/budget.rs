//! The budget of one decode: how deep it may nest, how much it may reserve ahead of the elements
//! that arrive, and how many elements that take no bytes it may produce.
//!
//! One decode is one call of [`Wire::from_bytes`](super::Wire::from_bytes), or of `decode` on a
//! `Box`, sequence, map, set or array that no other decode encloses. Every level nested inside it
//! shares its budget, so that limits hold for the whole value, not per level: a level that set its
//! own limits from the bytes it sees would let a nested input multiply them.
//!
//! The budget lives in a thread-local rather than in an argument, because [`Wire::decode`]'s
//! signature is public and takes only the input. A decode runs on one thread from start to end,
//! so the thread-local is the decode's own. Guards restore it on drop, on error and unwind paths
//! too; the first guard of a decode opens the budget and closes it when it ends.
//!
//! [`Wire::decode`]: super::Wire::decode

use std::cell::Cell;
use std::mem::size_of;

use super::{WireError, MAX_DEPTH, MAX_NESTED_BYTES, MAX_ZERO_SIZED_LEN};

/// What the decode under way on this thread has left.
#[derive(Clone, Copy)]
struct Budget {
    /// Whether a decode is under way.
    open: bool,
    /// Open levels: `Box`es, sequences, maps and sets being decoded, one inside the other.
    depth: usize,
    /// The in-memory size of one element of each open level, summed: a decode holds one such
    /// value per level on its stack.
    nested_bytes: usize,
    /// Bytes that may still be reserved ahead of elements that have not arrived yet.
    reserve_bytes: usize,
    /// Elements that take no bytes of input that may still be decoded.
    empty_elements: usize,
}

impl Budget {
    const CLOSED: Budget = Budget {
        open: false,
        depth: 0,
        nested_bytes: 0,
        reserve_bytes: 0,
        empty_elements: 0,
    };

    /// The budget of a decode of `input_len` bytes.
    fn open(input_len: usize) -> Budget {
        Budget {
            open: true,
            depth: 0,
            nested_bytes: 0,
            // Twice the input: room for a sequence and the sequences in its elements, so that
            // valid values are reserved exactly in the common cases.
            reserve_bytes: input_len.saturating_mul(2),
            empty_elements: MAX_ZERO_SIZED_LEN,
        }
    }
}

thread_local! {
    static BUDGET: Cell<Budget> = const { Cell::new(Budget::CLOSED) };
}

/// Runs `f` on this thread's budget. (`Cell<Budget>` needs no destructor, so the thread-local is
/// never torn down and `with` cannot fail.)
fn with<R>(f: impl FnOnce(&mut Budget) -> R) -> R {
    BUDGET.with(|cell| {
        let mut budget = cell.get();
        let result = f(&mut budget);
        cell.set(budget);
        result
    })
}

/// Keeps a decode's budget open while it lives: opens one for `input_len` bytes unless a decode
/// is already under way on this thread (an enclosing decode's budget is then shared). Arrays,
/// which do not nest by the input's say, reserve through a scope rather than a [`Level`].
#[must_use = "the decode's budget closes when the scope is dropped"]
pub(super) struct Scope {
    /// Bytes reserved through this scope, given back when it ends.
    reserved: usize,
    /// Whether this scope began the decode, and so ends it.
    opened: bool,
}

impl Scope {
    #[inline]
    pub(super) fn begin(input_len: usize) -> Scope {
        let opened = with(|budget| {
            let opened = !budget.open;
            if opened {
                *budget = Budget::open(input_len);
            }
            opened
        });
        Scope {
            reserved: 0,
            opened,
        }
    }

    /// As [`Level::reserve`].
    #[inline]
    pub(super) fn reserve<T>(&mut self, count: usize, input_len: usize) -> usize {
        claim::<T>(&mut self.reserved, count, input_len)
    }
}

impl Drop for Scope {
    #[inline]
    fn drop(&mut self) {
        if self.opened || self.reserved != 0 {
            with(|budget| {
                if self.opened {
                    *budget = Budget::CLOSED;
                } else {
                    budget.reserve_bytes += self.reserved;
                }
            });
        }
    }
}

/// Claims room for up to `count` `T`s from the decode's reservation budget, adding the bytes to
/// `reserved`; returns how many `T`s to reserve room for.
#[inline]
fn claim<T>(reserved: &mut usize, count: usize, input_len: usize) -> usize {
    let size = size_of::<T>();
    if size == 0 || count == 0 {
        return 0; // a Vec of zero-sized elements never allocates
    }
    let wanted = count.saturating_mul(size).min(input_len);
    let elements = with(|budget| {
        let elements = wanted.min(budget.reserve_bytes) / size;
        budget.reserve_bytes -= elements * size;
        elements
    });
    *reserved += elements * size;
    elements
}

/// One level of `Box`, sequence, map or set nesting, holding elements of `size` bytes; the level
/// ends on drop, on the error path too.
#[must_use = "the level ends when the guard is dropped"]
pub(super) struct Level {
    size: usize,
    /// Bytes this level reserved ahead of its elements, given back when it ends: by then that
    /// room holds elements, or has been freed with the error.
    reserved: usize,
    /// Whether this level began the decode, and so ends it.
    opened: bool,
}

impl Level {
    /// Enters a level whose elements are `T`s, with `input_len` bytes of input left; begins a
    /// decode if none is under way.
    ///
    /// # Errors
    ///
    /// [`WireError::TooDeep`] when [`MAX_DEPTH`] levels are open, or when the elements of the open
    /// levels would take more than [`MAX_NESTED_BYTES`].
    #[inline]
    pub(super) fn enter<T>(input_len: usize) -> Result<Level, WireError> {
        let size = size_of::<T>();
        with(|budget| {
            let opened = !budget.open;
            if opened {
                *budget = Budget::open(input_len);
            }
            let nested_bytes = budget.nested_bytes.saturating_add(size);
            if budget.depth >= MAX_DEPTH || nested_bytes > MAX_NESTED_BYTES {
                if opened {
                    *budget = Budget::CLOSED;
                }
                return Err(WireError::TooDeep);
            }
            budget.depth += 1;
            budget.nested_bytes = nested_bytes;
            Ok(Level {
                size,
                reserved: 0,
                opened,
            })
        })
    }

    /// How many `T`s to reserve room for before decoding `count` of them, with `input_len`
    /// bytes left; `T` is this level's element type.
    ///
    /// At most the bytes left (one level alone cannot claim more than its input), and at most
    /// what the decode has left to reserve (nested levels cannot multiply it). The collection
    /// still grows to `count` if the elements are there.
    #[inline]
    pub(super) fn reserve<T>(&mut self, count: usize, input_len: usize) -> usize {
        claim::<T>(&mut self.reserved, count, input_len)
    }
}

impl Drop for Level {
    #[inline]
    fn drop(&mut self) {
        with(|budget| {
            if self.opened {
                *budget = Budget::CLOSED;
                return;
            }
            // Never below zero: this level's `enter` added what is taken away here.
            budget.depth -= 1;
            budget.nested_bytes -= self.size;
            budget.reserve_bytes += self.reserved;
        });
    }
}

/// Counts `count` elements that take no bytes of input against the decode's budget.
///
/// # Errors
///
/// The number the budget had left, when `count` is over it; nothing is counted then.
pub(super) fn take_empty(count: usize) -> Result<(), usize> {
    with(|budget| {
        if count > budget.empty_elements {
            return Err(budget.empty_elements);
        }
        budget.empty_elements -= count;
        Ok(())
    })
}

/// How many elements that take no bytes the decode under way may still produce.
pub(super) fn empty_left() -> usize {
    with(|budget| budget.empty_elements)
}
