//! A bound on the thread stack that nested resolutions use (SPEC §4.2
//! "Execution").
//!
//! Each nesting level of a resolution is a chain of poll calls on the
//! thread's stack, and how many bytes a level takes depends on the build
//! (unoptimised frames are several times larger) and on the devices. The
//! depth limit counts levels; this module measures bytes, so that a deep
//! nesting ends with a typed error before a 2 MiB thread overflows, whatever
//! `max_depth` says.
//!
//! The outermost resolution being polled on a thread records where its poll
//! starts (the *anchor*); nested resolutions compare their own position with
//! it. A leaf module: it knows nothing of messages or devices.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

thread_local! {
    /// The stack position of the outermost anchored poll running on this
    /// thread, or 0 when none is.
    static ANCHOR: Cell<usize> = const { Cell::new(0) };
}

/// The address of a local of a frame that is not inlined: the current
/// stack position, give or take that frame.
#[inline(never)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// How many bytes of stack lie between the outermost anchored poll on this
/// thread and the caller (0 outside any anchored poll). Stacks grow down on
/// every supported target; the distance is taken either way.
pub(crate) fn stack_used() -> usize {
    match ANCHOR.with(Cell::get) {
        0 => 0,
        anchor => anchor.abs_diff(stack_position()),
    }
}

/// Records the anchor for the duration of one poll, if no outer poll on this
/// thread has; clears it on drop, unwinding included.
struct AnchorGuard {
    owner: bool,
}

impl AnchorGuard {
    fn enter() -> AnchorGuard {
        ANCHOR.with(|a| {
            if a.get() == 0 {
                a.set(stack_position());
                AnchorGuard { owner: true }
            } else {
                AnchorGuard { owner: false }
            }
        })
    }
}

impl Drop for AnchorGuard {
    fn drop(&mut self) {
        if self.owner {
            ANCHOR.with(|a| a.set(0));
        }
    }
}

/// A future whose polls anchor [`stack_used`] when no outer poll on the
/// thread has.
pub(crate) struct Anchored<F> {
    inner: F,
}

impl<F> Anchored<F> {
    pub(crate) fn new(inner: F) -> Anchored<F> {
        Anchored { inner }
    }
}

impl<F: Future + Unpin> Future for Anchored<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let _anchor = AnchorGuard::enter();
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn deeper(levels: usize) -> usize {
        let pad = std::hint::black_box([0u8; 512]);
        if levels == 0 {
            stack_used() + usize::from(pad[0])
        } else {
            deeper(levels - 1)
        }
    }

    #[test]
    fn stack_used_grows_with_nesting_inside_an_anchored_poll() {
        assert_eq!(stack_used(), 0, "no anchor outside a poll");
        let (shallow, deep) =
            futures::executor::block_on(Anchored::new(Box::pin(async { (deeper(0), deeper(20)) })));
        // 20 frames of at least 512 bytes each.
        assert!(deep >= shallow + 20 * 512, "{shallow} {deep}");
        assert_eq!(stack_used(), 0, "the anchor is cleared after the poll");
    }

    #[test]
    fn an_inner_anchored_poll_keeps_the_outer_anchor() {
        let used = futures::executor::block_on(Anchored::new(Box::pin(async {
            let outer = deeper(10);
            let inner = Anchored::new(Box::pin(async { deeper(10) })).await;
            (outer, inner)
        })));
        // Measured from the same (outer) anchor, the inner poll is deeper.
        assert!(used.1 > used.0, "{used:?}");
    }
}
