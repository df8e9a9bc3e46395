//! `io::pth::StateDict::from_bytes` (torch.save's zip format and our own unpickler) and
//! binding its tensors on arbitrary bytes: a Format error naming the source, or tensors whose
//! values can all be read, never a panic (and nothing in a pickle ever runs). Seeds: the
//! fixtures of `tests/data/pth`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::io::pth::StateDict;
use wgpu_mlp::io::safetensors;
use wgpu_mlp::model::Tensors;
use wgpu_mlp::{Arch, Error};

fuzz_target!(|data: &[u8]| {
    match StateDict::from_bytes(data, "fuzz") {
        Ok(dict) => {
            for k in dict.keys() {
                let shape = dict.shape(&k).unwrap();
                if let Ok(v) = dict.values(&k) {
                    assert_eq!(v.len(), shape.iter().product::<usize>());
                }
            }
        }
        Err(Error::Format { path, msg }) => {
            assert_eq!(path, "fuzz");
            assert!(!msg.is_empty());
        }
        Err(e) => panic!("not a Format error: {e:?}"),
    }
    let arch: Arch = "linear,batchnorm1d,relu,dropout,linear".parse().unwrap();
    let _ = safetensors::from_bytes(data, "fuzz", Some(&arch), None);
});
