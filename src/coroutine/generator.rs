//! Lua-style asymmetric coroutines on the caller's thread: [`Generator`].
//!
//! A generator runs on its own pooled stack (with a guard page, or, on a kernel without guard
//! markers past the mapping budget, soft-guarded and checked after each resume, like a
//! coroutine's) but is never scheduled: `resume` switches into it on the calling thread and
//! `Yielder::suspend` switches back (it moves between threads only with a coroutine that holds
//! it). This is libco's `co_resume`/`co_yield` and Lua's `coroutine.resume`/`yield`. Panics in
//! the body propagate out of `resume`; dropping a suspended generator unwinds its stack so its
//! destructors run.

use super::overflow;
use super::stack::{self, Stack};
use std::fmt;
use std::marker::PhantomData;

/// The result of [`Generator::resume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The body called [`Yielder::suspend`] with this value.
    Yielded(Y),
    /// The body returned this value; the generator is finished.
    Complete(R),
}

/// Handed to a generator's body to suspend it.
#[repr(transparent)]
pub struct Yielder<I, Y> {
    inner: corosensei::Yielder<I, Y>,
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the generator, making `resume` return `Yielded(value)`; returns the input of the
    /// next `resume`.
    pub fn suspend(&self, value: Y) -> I {
        self.inner.suspend(value)
    }
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

/// A resumable computation on its own stack, driven by the caller.
///
/// ```
/// use corun::{Generator, GeneratorState};
/// let mut g = Generator::new(|y, first: i32| {
///     let second = y.suspend(first * 2);
///     first + second
/// });
/// assert_eq!(g.resume(5), GeneratorState::Yielded(10));
/// assert_eq!(g.resume(1), GeneratorState::Complete(6));
/// assert!(g.is_complete());
///
/// let squares: Vec<u32> = Generator::new(|y, ()| for i in 1..4 { y.suspend(i * i) }).collect();
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub struct Generator<I, Y, R> {
    coro: corosensei::Coroutine<I, Y, R, Stack>,
    /// The stack's gap page, when it is a soft guard (see `stack.rs`): checked after each
    /// resume and when the generator goes, as workers check coroutine stacks.
    soft_gap: Option<usize>,
    stack_size: usize,
    // Generators stay on the thread that made them: their stacks may hold `!Send` values.
    _not_send: PhantomData<*const ()>,
}

impl<I: 'static, Y: 'static, R: 'static> Generator<I, Y, R> {
    /// A generator that runs `body` on a fresh 64 KiB stack when first resumed; `body` gets the
    /// yielder and the first `resume`'s input.
    ///
    /// # Panics
    /// If no stack can be allocated; [`Generator::with_stack_size`] returns the error instead.
    pub fn new(body: impl FnOnce(&Yielder<I, Y>, I) -> R + 'static) -> Self {
        Self::with_stack_size(stack::DEFAULT_STACK_SIZE, body)
            .expect("failed to allocate a generator stack")
    }

    /// Like [`Generator::new`] with a stack of `bytes` usable bytes.
    pub fn with_stack_size(
        bytes: usize,
        body: impl FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    ) -> std::io::Result<Self> {
        let stack = Stack::new(stack::round_size(bytes)?)?;
        if stack.is_guarded() {
            // An overflow faults in the guard page, on whatever stack this thread has for
            // signals: make sure there is one, and our handler to run on it.
            overflow::prepare_for_generators();
        }
        let soft_gap = (!stack.is_guarded()).then(|| stack.guard_range().0);
        let stack_size = stack.size();
        let coro = corosensei::Coroutine::with_stack(
            stack,
            move |y: &corosensei::Yielder<I, Y>, input: I| {
                // SAFETY: `Yielder` is a `repr(transparent)` wrapper of corosensei's yielder, so the
                // reference conversion keeps layout and lifetime.
                let y =
                    unsafe { &*(y as *const corosensei::Yielder<I, Y> as *const Yielder<I, Y>) };
                body(y, input)
            },
        );
        Ok(Generator {
            coro,
            soft_gap,
            stack_size,
            _not_send: PhantomData,
        })
    }
}

impl<I, Y, R> Generator<I, Y, R> {
    /// Runs the body until it suspends or returns.
    ///
    /// # Panics
    /// If the generator has already completed, or if the body panics (the panic propagates).
    pub fn resume(&mut self, input: I) -> GeneratorState<Y, R> {
        assert!(!self.coro.done(), "resumed a generator that has completed");
        let state = match self.coro.resume(input) {
            corosensei::CoroutineResult::Yield(y) => GeneratorState::Yielded(y),
            corosensei::CoroutineResult::Return(r) => GeneratorState::Complete(r),
        };
        if self
            .soft_gap
            .is_some_and(|gap| !stack::soft_guard_sample_intact(gap))
        {
            self.report_overflow();
        }
        state
    }

    #[cold]
    fn report_overflow(&self) -> ! {
        let gap = self.soft_gap.unwrap_or(0);
        overflow::report_and_abort(&overflow::generator_report(gap, self.stack_size, true))
    }

    /// Whether the body has returned.
    pub fn is_complete(&self) -> bool {
        self.coro.done()
    }
}

impl<I, Y, R> Drop for Generator<I, Y, R> {
    fn drop(&mut self) {
        // Before the stack goes back to the pool: the whole soft guard must still be zero.
        if self
            .soft_gap
            .is_some_and(|gap| !stack::soft_guard_fully_intact_at(gap))
        {
            self.report_overflow();
        }
    }
}

impl<Y> Iterator for Generator<(), Y, ()> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        if self.coro.done() {
            return None;
        }
        match self.resume(()) {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(()) => None,
        }
    }
}

impl<I, Y, R> fmt::Debug for Generator<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("started", &self.coro.started())
            .field("complete", &self.coro.done())
            .finish()
    }
}
