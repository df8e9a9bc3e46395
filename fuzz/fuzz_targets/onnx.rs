//! `onnx::from_bytes` on arbitrary bytes: a Format error naming the source, or a model whose
//! CPU forward pass and summary run, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::{Error, Matrix, cpu, onnx, summary};

fuzz_target!(|data: &[u8]| {
    let model = match onnx::from_bytes(data, "fuzz") {
        Ok(m) => m,
        Err(Error::Format { path, msg }) => {
            assert_eq!(path, "fuzz");
            assert!(!msg.is_empty());
            return;
        }
        Err(e) => panic!("not a Format error: {e:?}"),
    };
    let n = model.in_features();
    let x = Matrix::new(2, n, (0..2 * n).map(|i| (i % 7) as f32 - 3.0).collect()).unwrap();
    let y = cpu::forward(&model, &x).unwrap();
    assert_eq!(y.cols(), model.out_features());
    let _ = summary::summary(&model, -1);
});
