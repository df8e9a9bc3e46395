//! `layers_from_bytes` on arbitrary bytes: an error or well-formed layers that survive a
//! save/load round trip, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::io::safetensors::{layers_from_bytes, model_to_bytes};
use wgpu_mlp::{Activation, Error, Layer, Mlp};

fuzz_target!(|data: &[u8]| {
    let layers = match layers_from_bytes(data, "fuzz", None) {
        Ok(layers) => layers,
        Err(Error::Format { path, .. }) => {
            assert_eq!(path, "fuzz");
            return;
        }
        Err(e) => panic!("not a Format error: {e:?}"),
    };
    assert!(!layers.is_empty());
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l.weight().len(), l.in_features() * l.out_features());
        assert!(l.bias().is_none_or(|b| b.len() == l.out_features()));
        if i > 0 {
            assert_eq!(layers[i - 1].out_features(), l.in_features());
        }
    }
    let model = Mlp::from_layers(
        layers
            .iter()
            .map(|l| Layer {
                linear: l.clone(),
                activation: Activation::Identity,
            })
            .collect(),
    )
    .expect("loaded layers chain");
    let again = layers_from_bytes(&model_to_bytes(&model).unwrap(), "again", None).unwrap();
    assert_eq!(again.len(), layers.len());
    for (a, b) in again.iter().zip(&layers) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a.weight()), bits(b.weight()));
        assert_eq!(a.bias().map(bits), b.bias().map(bits));
    }
});
