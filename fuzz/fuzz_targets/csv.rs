//! `csv::from_bytes` on arbitrary bytes: an error or a consistent matrix that survives a
//! write/read round trip, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_mlp::Error;
use wgpu_mlp::io::csv::{from_bytes, to_bytes};

fuzz_target!(|data: &[u8]| {
    let m = match from_bytes(data, "fuzz") {
        Ok(m) => m,
        Err(Error::Format { path, .. }) => {
            assert_eq!(path, "fuzz");
            return;
        }
        Err(e) => panic!("not a Format error: {e:?}"),
    };
    assert_eq!(m.rows() * m.cols(), m.as_slice().len());
    let again = from_bytes(&to_bytes(&m), "again").unwrap();
    assert_eq!(again.shape(), m.shape());
    for (a, b) in again.as_slice().iter().zip(m.as_slice()) {
        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
    }
});
