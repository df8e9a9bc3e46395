//! The globals a torch.save state_dict names, and the refusal of every other one by its name.

/// A PyTorch storage element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    /// A type this crate does not read (its storage class name).
    Other(&'static str),
}

impl Dtype {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::Other(name) => match name {
                "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
                "ShortStorage" => 2,
                "ComplexFloatStorage" => 8,
                _ => 16,
            },
        }
    }

    /// PyTorch's name for it, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::I64 => "int64",
            Dtype::I32 => "int32",
            Dtype::Other(name) => name,
        }
    }
}

/// The globals a torch.save state_dict uses: the only callables this reader knows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

/// The allow-list. Everything else is refused by its name.
pub(super) fn global(module: &str, name: &str) -> Result<Global, String> {
    let storage = |d| Ok(Global::Storage(d));
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", "FloatStorage") => storage(Dtype::F32),
        ("torch", "DoubleStorage") => storage(Dtype::F64),
        ("torch", "HalfStorage") => storage(Dtype::F16),
        ("torch", "BFloat16Storage") => storage(Dtype::BF16),
        ("torch", "LongStorage") => storage(Dtype::I64),
        ("torch", "IntStorage") => storage(Dtype::I32),
        (
            "torch",
            n @ ("ByteStorage"
            | "CharStorage"
            | "ShortStorage"
            | "BoolStorage"
            | "ComplexFloatStorage"
            | "ComplexDoubleStorage"),
        ) => {
            let n: &'static str = match n {
                "ByteStorage" => "ByteStorage",
                "CharStorage" => "CharStorage",
                "ShortStorage" => "ShortStorage",
                "BoolStorage" => "BoolStorage",
                "ComplexFloatStorage" => "ComplexFloatStorage",
                _ => "ComplexDoubleStorage",
            };
            storage(Dtype::Other(n))
        }
        _ => Err(refusal(module, name)),
    }
}

/// Why a global is refused: a pickled module, or anything else by name.
pub(crate) fn refusal(module: &str, name: &str) -> String {
    let full = crate::error::escape(&format!("{module}.{name}")).into_owned();
    if module.starts_with("torch.nn.modules") || module == "__main__" {
        format!(
            "{WHOLE_MODULE}: it pickles '{full}'. Save the weights instead: \
             torch.save(model.state_dict(), \"model.pth\")"
        )
    } else {
        // A class of the user's own (`mymodels.Net`) is most likely a pickled model.
        let hint = if name.starts_with(char::is_uppercase) {
            " (a whole pickled model? save torch.save(model.state_dict(), \"model.pth\"))"
        } else {
            ""
        };
        format!(
            "the pickle refers to '{full}'{hint}, which is not part of a state_dict as torch.save \
             writes it; only tensors, dicts, lists, tuples, strings and numbers are read, and \
             nothing in the file is ever run"
        )
    }
}

/// The start of the message for a pickled whole module.
pub(crate) const WHOLE_MODULE: &str = "the file holds a whole pickled model, not a state_dict";
