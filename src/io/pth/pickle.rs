//! A pickle reader that understands only what `torch.save` writes for a state_dict: dicts
//! (`collections.OrderedDict` too), lists, tuples, strings, numbers, `None`, booleans, typed
//! storages (persistent ids) and `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`.
//!
//! Nothing is ever called: a `GLOBAL` is looked up in a fixed allow-list and anything else is
//! refused by name before the next opcode, so a hostile pickle (`os.system`, `eval`, a class of
//! its own) cannot run code. Values live in one arena (`Vec<Node>`), containers hold indices:
//! memo references cost nothing, cycles are harmless, and dropping never recurses. Every opcode
//! adds at most one node, so memory is bounded by the pickle's length.

use std::collections::HashMap;

use super::allow::{Dtype, Global, global};

/// An index into the arena.
pub(crate) type Id = usize;

/// A tensor: a view into a storage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorRef {
    /// The storage's key: its data is `<archive>/data/<key>`.
    pub key: String,
    pub dtype: Dtype,
    /// Elements the storage holds, as the file says.
    pub numel: u64,
    /// First element, in elements.
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// A value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes,
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Global),
    /// A storage from a persistent id: (dtype, key, numel).
    Storage(Dtype, String, u64),
    Tensor(TensorRef),
}

/// The result: the arena and the top value.
pub(crate) struct Pickle {
    pub nodes: Vec<Node>,
    pub top: Id,
}

/// The deepest `MARK` nesting accepted (torch.save nests a few).
const MAX_MARKS: usize = 1000;

/// Reads a pickle. The error names the opcode's position and what was refused.
pub(crate) fn read(data: &[u8]) -> Result<Pickle, String> {
    let mut m = Machine {
        data,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = m.pos;
        let op = m.byte()?;
        m.step(op)
            .map_err(|e| format!("{e} (pickle byte {at}, opcode 0x{op:02x})"))?;
        if op == b'.' {
            let top = m.pop()?;
            return Ok(Pickle {
                nodes: m.nodes,
                top,
            });
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "the pickle ends early ({n} bytes wanted, {} left)",
                self.data.len() - self.pos
            ));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL's name has no end of line")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, n: Node) {
        self.nodes.push(n);
        self.stack.push(self.nodes.len() - 1);
    }

    fn pop(&mut self) -> Result<Id, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("the pickle pops past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "the pickle's stack is empty".into())
    }

    fn top(&self) -> Result<Id, String> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "the pickle's stack is empty".into())
    }

    /// The items since the last MARK.
    fn since_mark(&mut self) -> Result<Vec<Id>, String> {
        let m = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        Ok(self.stack.split_off(m))
    }

    fn str_node(&mut self, len: usize) -> Result<(), String> {
        let s = std::str::from_utf8(self.take(len)?)
            .map_err(|_| "a string is not valid UTF-8")?
            .to_string();
        self.push(Node::Str(s));
        Ok(())
    }

    fn memo_put(&mut self, k: u32) -> Result<(), String> {
        let v = self.top()?;
        self.memo.insert(k, v);
        Ok(())
    }

    fn memo_get(&mut self, k: u32) -> Result<(), String> {
        let v = *self
            .memo
            .get(&k)
            .ok_or_else(|| format!("memo {k} is read before it is set"))?;
        self.stack.push(v);
        Ok(())
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                let v = self.byte()?;
                if !(2..=5).contains(&v) {
                    return Err(format!("pickle protocol {v} is not one torch.save writes"));
                }
            }
            // FRAME (protocol 4): a length hint.
            0x95 => {
                self.take(8)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = global(&module, &name)?;
                self.push(Node::Global(g));
            }
            // STACK_GLOBAL.
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Node::Str(module), Node::Str(name)) = (&self.nodes[module], &self.nodes[name])
                else {
                    return Err("STACK_GLOBAL's module and name are not strings".into());
                };
                let g = global(module, name)?;
                self.push(Node::Global(g));
            }
            b'q' => {
                let k = self.byte()?;
                self.memo_put(u32::from(k))?;
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k)?;
            }
            // MEMOIZE.
            0x94 => {
                let k = u32::try_from(self.memo.len()).map_err(|_| "too many memo entries")?;
                self.memo_put(k)?;
            }
            b'h' => {
                let k = self.byte()?;
                self.memo_get(u32::from(k))?;
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k)?;
            }
            b'(' => {
                if self.marks.len() >= MAX_MARKS {
                    return Err(format!("more than {MAX_MARKS} nested MARKs"));
                }
                self.marks.push(self.stack.len());
            }
            b')' => self.push(Node::Tuple(Vec::new())),
            b't' => {
                let items = self.since_mark()?;
                self.push(Node::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Node::Tuple(items));
            }
            b']' => self.push(Node::List(Vec::new())),
            b'l' => {
                let items = self.since_mark()?;
                self.push(Node::List(items));
            }
            b'}' => self.push(Node::Dict(Vec::new())),
            b'd' => {
                let items = self.since_mark()?;
                let pairs = pairs(&items)?;
                self.push(Node::Dict(pairs));
            }
            b'a' => {
                let v = self.pop()?;
                let l = self.top()?;
                self.extend_list(l, vec![v])?;
            }
            b'e' => {
                let items = self.since_mark()?;
                let l = self.top()?;
                self.extend_list(l, items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                self.extend_dict(d, vec![(k, v)])?;
            }
            b'u' => {
                let items = self.since_mark()?;
                let d = self.top()?;
                let pairs = pairs(&items)?;
                self.extend_dict(d, pairs)?;
            }
            b'N' => self.push(Node::None),
            0x88 => self.push(Node::Bool(true)),
            0x89 => self.push(Node::Bool(false)),
            b'K' => {
                let v = self.byte()?;
                self.push(Node::Int(i64::from(v)));
            }
            b'M' => {
                let b = self.take(2)?;
                let v = u16::from_le_bytes([b[0], b[1]]);
                self.push(Node::Int(i64::from(v)));
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Node::Int(i64::from(v)));
            }
            // LONG1: a little-endian two's complement integer of n bytes.
            0x8a => {
                let n = usize::from(self.byte()?);
                let b = self.take(n)?;
                if n > 8 {
                    // Only the legacy format's magic number is this long; it is never used.
                    self.push(Node::Bytes);
                } else {
                    let mut v = [0u8; 8];
                    v[..n].copy_from_slice(b);
                    if n > 0 && b[n - 1] & 0x80 != 0 {
                        v[n..].fill(0xff);
                    }
                    self.push(Node::Int(i64::from_le_bytes(v)));
                }
            }
            b'G' => {
                let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                self.push(Node::Float(v));
            }
            b'X' => {
                let n = self.u32()? as usize;
                self.str_node(n)?;
            }
            // SHORT_BINUNICODE.
            0x8c => {
                let n = usize::from(self.byte()?);
                self.str_node(n)?;
            }
            // SHORT_BINBYTES, BINBYTES: kept as an opaque value.
            b'C' | b'B' => {
                let n = if op == b'C' {
                    usize::from(self.byte()?)
                } else {
                    self.u32()? as usize
                };
                self.take(n)?;
                self.push(Node::Bytes);
            }
            b'0' => {
                self.pop()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.storage(pid)?;
                self.push(storage);
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = self.reduce(f, args)?;
                self.push(v);
            }
            b'b' => {
                // BUILD on a dict: the OrderedDict's attributes (`_metadata`), not items.
                let _state = self.pop()?;
                let target = self.top()?;
                if !matches!(self.nodes[target], Node::Dict(_)) {
                    return Err(
                        "BUILD sets the state of an object, which this reader does not make".into(),
                    );
                }
            }
            b'.' => {}
            other => {
                return Err(format!(
                    "opcode 0x{other:02x} is not one torch.save writes for a state_dict"
                ));
            }
        }
        Ok(())
    }

    fn extend_list(&mut self, l: Id, items: Vec<Id>) -> Result<(), String> {
        match &mut self.nodes[l] {
            Node::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err("APPEND to something that is not a list".into()),
        }
    }

    fn extend_dict(&mut self, d: Id, items: Vec<(Id, Id)>) -> Result<(), String> {
        match &mut self.nodes[d] {
            Node::Dict(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err("SETITEM on something that is not a dict".into()),
        }
    }

    /// A persistent id `('storage', StorageType, key, location, numel)`.
    fn storage(&self, pid: Id) -> Result<Node, String> {
        let bad = || "a persistent id that is not a torch storage".to_string();
        let Node::Tuple(items) = &self.nodes[pid] else {
            return Err(bad());
        };
        let get = |i: usize| items.get(i).map(|&id| &self.nodes[id]);
        match (get(0), get(1), get(2), get(4)) {
            (
                Some(Node::Str(tag)),
                Some(Node::Global(Global::Storage(dtype))),
                Some(Node::Str(key)),
                Some(Node::Int(numel)),
            ) if tag == "storage" && *numel >= 0 => {
                Ok(Node::Storage(*dtype, key.clone(), *numel as u64))
            }
            _ => Err(bad()),
        }
    }

    fn reduce(&self, f: Id, args: Id) -> Result<Node, String> {
        let Node::Global(g) = self.nodes[f] else {
            return Err("REDUCE calls something that is not an allowed global".into());
        };
        let Node::Tuple(args) = &self.nodes[args] else {
            return Err("REDUCE's arguments are not a tuple".into());
        };
        let arg = |i: usize| args.get(i).map(|&id| &self.nodes[id]);
        match g {
            Global::OrderedDict if args.is_empty() => Ok(Node::Dict(Vec::new())),
            Global::RebuildParameter => match arg(0) {
                Some(t @ Node::Tensor(_)) => Ok(t.clone()),
                _ => Err("_rebuild_parameter's first argument is not a tensor".into()),
            },
            Global::RebuildTensorV2 => {
                let (
                    Some(Node::Storage(dtype, key, numel)),
                    Some(Node::Int(offset)),
                    Some(size),
                    Some(stride),
                ) = (arg(0), arg(1), arg(2), arg(3))
                else {
                    return Err(
                        "_rebuild_tensor_v2's arguments are not (storage, offset, size, stride, …)"
                            .into(),
                    );
                };
                let ints = |n: &Node, what: &str| -> Result<Vec<u64>, String> {
                    let Node::Tuple(v) = n else {
                        return Err(format!("a tensor's {what} is not a tuple"));
                    };
                    v.iter()
                        .map(|&id| match self.nodes[id] {
                            Node::Int(i) if i >= 0 => Ok(i as u64),
                            _ => Err(format!("a tensor's {what} holds something other than a non-negative integer")),
                        })
                        .collect()
                };
                let size = ints(size, "size")?;
                let stride = ints(stride, "stride")?;
                if size.len() != stride.len() {
                    return Err(format!(
                        "a tensor has {} sizes but {} strides",
                        size.len(),
                        stride.len()
                    ));
                }
                if *offset < 0 {
                    return Err("a tensor has a negative storage offset".into());
                }
                Ok(Node::Tensor(TensorRef {
                    key: key.clone(),
                    dtype: *dtype,
                    numel: *numel,
                    offset: *offset as u64,
                    size,
                    stride,
                }))
            }
            Global::OrderedDict => {
                Err("OrderedDict is called with items, which torch.save does not write".into())
            }
            Global::Storage(_) => {
                Err("a storage class is called, which torch.save does not write".into())
            }
        }
    }
}

/// `[k1, v1, k2, v2, …]` as pairs.
fn pairs(items: &[Id]) -> Result<Vec<(Id, Id)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("a dict's items are not key-value pairs".into());
    }
    Ok(items.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}
