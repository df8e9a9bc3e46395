//! [`MapState`]: the outcome of one buffer map and who to wake for it, shared by the read-back
//! futures (`readback.rs`, every target) and the poller that fails them at their deadline
//! (`poller.rs`, native targets only).

use std::task::Waker;

use crate::error::Result;

/// The state of one `map_async`: its outcome once the callback ran, and who to wake.
#[derive(Debug, Default)]
pub(crate) struct MapState {
    pub(crate) outcome: Option<Result<()>>,
    pub(crate) waker: Option<Waker>,
}
