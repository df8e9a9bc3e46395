//! Importing hand-built files ([`super::build`]) through the public API.

use wgpu_mlp::{Error, Mlp, Result, onnx};

use super::build::{NodeProto, TensorProto, eye, file};

/// The name the test files are imported under.
pub const SOURCE: &str = "test.onnx";

/// `bytes` imported as [`SOURCE`].
pub fn import(bytes: &[u8]) -> Result<Mlp> {
    onnx::from_bytes(bytes, SOURCE)
}

/// The error message of a file that must be refused, checking it is a Format error naming
/// the source.
pub fn refused(bytes: &[u8]) -> String {
    match import(bytes) {
        Err(Error::Format { path, msg }) => {
            assert_eq!(path, SOURCE);
            msg
        }
        Err(e) => panic!("not a Format error: {e:?}"),
        Ok(m) => panic!("accepted: {:?}", m.modules()),
    }
}

/// `x` (2 features) → identity Gemm ([`eye`]) → `nodes` (reading `h`, writing `y`), imported.
pub fn after_eye(mut nodes: Vec<NodeProto>, mut inits: Vec<TensorProto>) -> Result<Mlp> {
    let (g, w) = eye();
    nodes.insert(0, g);
    inits.push(w);
    import(&file(nodes, inits, &[2], 2))
}
