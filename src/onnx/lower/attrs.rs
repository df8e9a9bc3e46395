//! A node's attributes, typed.

use super::super::elementwise::Attrs;
use super::super::graph::quote;
use super::super::proto::{AttributeProto, NodeProto, attr_type};

/// A node's attributes.
pub(super) struct NodeAttrs<'a>(pub &'a NodeProto);

impl NodeAttrs<'_> {
    /// Refuses a node that gives an attribute twice (`onnx.checker` refuses it; which one
    /// counts would be a guess).
    pub(super) fn check_unique(&self) -> Result<(), String> {
        let attrs = &self.0.attribute;
        for (i, a) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|b| b.name == a.name) {
                return Err(format!("it gives attribute {} twice", quote(&a.name)));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    fn typed(&self, name: &str, want: i32, what: &str) -> Result<Option<&AttributeProto>, String> {
        match self.get(name) {
            Some(a) if a.r#type == want || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(format!(
                "attribute {} has type {}; {what} expected",
                quote(name),
                a.r#type
            )),
            None => Ok(None),
        }
    }

    pub(super) fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self
            .typed(name, attr_type::INT, "an INT")?
            .map_or(default, |a| a.i))
    }

    pub(super) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self
            .typed(name, attr_type::INTS, "INTS")?
            .map(|a| a.ints.clone()))
    }
}

impl Attrs for NodeAttrs<'_> {
    fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .typed(name, attr_type::FLOAT, "a FLOAT")?
            .map_or(default, |a| a.f))
    }

    fn string(&self, name: &str, default: &str) -> Result<String, String> {
        match self.typed(name, attr_type::STRING, "a STRING")? {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.to_vec())
                .map_err(|_| format!("attribute {} is not valid UTF-8", quote(name))),
        }
    }
}

/// `Clip`'s attributes before opset 11, where a bound left out is ±`FLT_MAX` (Clip-6's
/// defaults), not unbounded: `Clip(min=0)` clamps +inf to 3.4028235e38.
pub(super) struct LegacyClip<'a>(pub &'a NodeAttrs<'a>);

impl Attrs for LegacyClip<'_> {
    fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        match name {
            "min" => self.0.float(name, f32::MIN),
            "max" => self.0.float(name, f32::MAX),
            _ => self.0.float(name, default),
        }
    }

    fn string(&self, name: &str, default: &str) -> Result<String, String> {
        self.0.string(name, default)
    }
}
