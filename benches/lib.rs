//! Helpers for the layercake benches.

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;

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

/// Calls the service and reads the first frame of the body, as a server would. Not inlined:
/// instruction counts (callgrind) are read per call of it, per service type.
#[inline(never)]
pub fn call_and_read<S, B>(svc: &mut S, req: Request<Full<Bytes>>) -> Option<Bytes>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let response = poll_now(svc.call(req)).unwrap();
    let mut body = pin!(response.into_body());
    match body.as_mut().poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
        _ => None,
    }
}

/// The inner service of the benches: answers at once, with a copy-free `body`.
#[derive(Clone)]
pub struct Origin {
    /// The body of every response.
    pub body: Bytes,
}

impl Origin {
    /// An origin whose responses carry `size` bytes.
    pub fn new(size: usize) -> Self {
        Origin {
            body: Bytes::from(vec![b'x'; size]),
        }
    }
}

impl tower::Service<Request<Full<Bytes>>> for Origin {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        let mut response = Response::new(Full::new(self.body.clone()));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        ready(Ok(response))
    }
}
