//! A random generator bit-compatible with PyTorch's default CPU generator (MT19937).
//! (Stub: the full implementation lands with the init work.)

/// MT19937 seeded like `torch.manual_seed`.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
}

impl Generator {
    /// Seeds the generator as `torch.manual_seed(seed)` does.
    pub fn new(seed: u64) -> Self {
        Generator { seed }
    }

    /// The seed this generator was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}
