//! Helpers for the layercake benches.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

/// Polls a future that is expected to be ready at once (a memory hit, a pass-through to a
/// ready inner service), without a runtime in the measurement.
pub fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benched future was expected to be ready at once"),
    }
}
