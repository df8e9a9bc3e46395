//! The GPU path. (Stub.)
