//! A node's attributes, typed.

use super::super::elementwise::Attrs;
use super::super::graph::quote;
use super::super::proto::{AttributeProto, NodeProto, attr_type};

/// A node's attributes.
pub(super) struct NodeAttrs<'a>(pub &'a NodeProto);

impl NodeAttrs<'_> {
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
