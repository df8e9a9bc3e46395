//! The torchsummary 1.5.1 text for a model. (Stub.)
