//! `npy::from_bytes` (and `from_bytes_f64`) on arbitrary bytes: an error or a consistent matrix
//! that survives a write/read round trip, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::Error;
use wgpu_mlp::io::npy::{from_bytes, from_bytes_f64, to_bytes};

fuzz_target!(|data: &[u8]| {
    let f32s = from_bytes(data, "fuzz");
    let f64s = from_bytes_f64(data, "fuzz");
    match (f32s, f64s) {
        (Ok(m), Ok(a)) => {
            assert_eq!(m.rows() * m.cols(), m.as_slice().len());
            assert_eq!([a.rows, a.cols], m.shape());
            assert_eq!(a.data.len(), m.as_slice().len());
            let again = from_bytes(&to_bytes(&m), "again").unwrap();
            assert_eq!(again.shape(), m.shape());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(again.as_slice()), bits(m.as_slice()));
        }
        (Err(Error::Format { path: p1, .. }), Err(Error::Format { path: p2, .. })) => {
            assert_eq!((p1.as_str(), p2.as_str()), ("fuzz", "fuzz"));
        }
        (a, b) => panic!("from_bytes and from_bytes_f64 disagree: {a:?} / {b:?}"),
    }
});
