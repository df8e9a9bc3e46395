//! `onnx::from_bytes_with_data` on arbitrary bytes split into a model and its external data
//! file (`m.onnx.data`, the name PyTorch's exporter gives it): a Format error naming the
//! source, or a model whose CPU forward pass runs, never a panic. Seeds: the fixtures of
//! `tests/data/external` as `[u32 LE model length][model][data]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::{Error, Matrix, cpu, onnx};

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (model, external) = rest.split_at(len);
    for name in ["regression.onnx.data", "digits.onnx.data"] {
        let model = match onnx::from_bytes_with_data(model, "fuzz", &[(name, external)]) {
            Ok(m) => m,
            Err(Error::Format { path, msg }) => {
                assert_eq!(path, "fuzz");
                assert!(!msg.is_empty());
                continue;
            }
            Err(e) => panic!("not a Format error: {e:?}"),
        };
        let n = model.in_features();
        let x = Matrix::new(2, n, (0..2 * n).map(|i| (i % 7) as f32 - 3.0).collect()).unwrap();
        let y = cpu::forward(&model, &x).unwrap();
        assert_eq!(y.cols(), model.out_features());
    }
});
