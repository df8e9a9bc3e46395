//! The torchsummary 1.5.1 text for a model. (Stub: implementation lands next.)

use crate::model::Mlp;

/// The text `torchsummary.summary(model, (in,), batch_size)` prints for the equivalent
/// `nn.Sequential` (activation modules get rows, identity none). `batch_size` may be -1.
pub fn summary(model: &Mlp, batch_size: i64) -> String {
    let _ = (model, batch_size);
    String::new()
}
