//! Helpers of the ONNX integration tests (`tests/onnx.rs`, `tests/onnx_ops.rs`,
//! `tests/onnx_errors.rs`), which include this module by path; the other test binaries do not
//! compile it. Each test file uses some of it.
#![allow(dead_code)]

pub mod build;
pub mod fixtures;
pub mod import;
pub mod mutate;
pub mod protobuf;
