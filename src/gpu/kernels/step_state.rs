//! The step-state buffer of a training plan: one small f32 tensor every update and loss kernel
//! binds (as `step`), the one place where values that change from step to step live, so the
//! replays (whose uniform blocks are written once) stay valid for every step. The host writes
//! the header before each submit (a few bytes through the queue, nothing created); the loss
//! kernel writes the step's loss into a ring of per-step losses and raises the stop flag when
//! the loss is not finite, after which every update kernel leaves its parameter as it is.
//!
//! The layout is declared here once; [`wgsl`] gives the shaders the same indices.

/// 1.0 on the first optimizer step (SGD's momentum buffer takes the gradient as it is).
pub(crate) const FIRST: usize = 0;
/// Adam: `−lr / (1 − β1^t)`, computed in f64 and rounded once, as PyTorch's Python scalar.
pub(crate) const NEG_STEP_SIZE: usize = 1;
/// Adam: `√(1 − β2^t)`, rounded from f64.
pub(crate) const BC2_SQRT: usize = 2;
/// The slot of the losses ring this step's loss goes to (an integer, exact in f32).
pub(crate) const LOSS_SLOT: usize = 3;
/// 1.0 when this step computes gradients only (no update).
pub(crate) const NO_UPDATE: usize = 4;
/// The header the host writes each step: the values above.
pub(crate) const HEADER: usize = 5;
/// Set to 1.0 (and never cleared by the device) when a step's loss is NaN or infinite: the
/// updates of that step and every later one are skipped until the host clears it.
pub(crate) const STOP: usize = 7;
/// Where the ring of per-step losses starts.
pub(crate) const LOSSES: usize = 8;
/// Losses the ring holds: the host reads them back before it wraps.
pub(crate) const RING: usize = 1024;
/// Values in the buffer.
pub(crate) const LEN: usize = LOSSES + RING;

/// The WGSL constants of the layout, and `step_skip()`: whether an update kernel must leave its
/// parameter as it is this step.
pub(crate) fn wgsl() -> String {
    format!(
        "const STEP_FIRST: u32 = {FIRST}u;\nconst STEP_NEG_STEP_SIZE: u32 = {NEG_STEP_SIZE}u;\n\
         const STEP_BC2_SQRT: u32 = {BC2_SQRT}u;\nconst STEP_LOSS_SLOT: u32 = {LOSS_SLOT}u;\n\
         const STEP_NO_UPDATE: u32 = {NO_UPDATE}u;\nconst STEP_STOP: u32 = {STOP}u;\n\
         const STEP_LOSSES: u32 = {LOSSES}u;\n\
         fn step_skip() -> bool {{ return step[STEP_STOP] != 0.0 || step[STEP_NO_UPDATE] != 0.0; }}\n"
    )
}
