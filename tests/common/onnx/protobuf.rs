//! The protobuf wire format, for the ONNX tests: files read as a tree of fields and written
//! back (what [`super::mutate`] rewrites), and [`Pb`], a writer for hand-built messages
//! ([`super::build`]). Uses only `std`.

/// One protobuf field.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64([u8; 8]),
    /// Wire type 5.
    Fixed32([u8; 4]),
    /// Wire type 2, not a message.
    Bytes(Vec<u8>),
    /// Wire type 2, a nested message.
    Message(Vec<Field>),
}

/// A field number and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field number.
    pub tag: u64,
    /// The value.
    pub val: Val,
}

/// Reads a varint at `*at`, advancing past it; `None` when truncated or longer than 64 bits.
pub fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends `v` as a varint.
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Parses `b` as a message (fields to the end), nested messages down to `depth` levels.
pub fn parse(b: &[u8], depth: usize) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let (tag, wire) = (key >> 3, key & 7);
        if tag == 0 {
            return None;
        }
        let val = match wire {
            0 => Val::Varint(read_varint(b, &mut at)?),
            1 => {
                let v: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
                at += 8;
                Val::Fixed64(v)
            }
            5 => {
                let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
                at += 4;
                Val::Fixed32(v)
            }
            2 => {
                let len = usize::try_from(read_varint(b, &mut at)?).ok()?;
                let body = b.get(at..at.checked_add(len)?)?;
                at += len;
                let nested = if depth > 0 && !body.is_empty() {
                    parse(body, depth - 1).filter(|f| encode(f) == body)
                } else {
                    None
                };
                match nested {
                    Some(f) => Val::Message(f),
                    None => Val::Bytes(body.to_vec()),
                }
            }
            _ => return None,
        };
        fields.push(Field { tag, val });
    }
    Some(fields)
}

/// Encodes fields (lengths recomputed).
pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(fields, &mut out, &mut Vec::new());
    out
}

/// Encodes fields, recording where each length prefix starts and how many bytes it takes.
pub fn encode_into(fields: &[Field], out: &mut Vec<u8>, lengths: &mut Vec<(usize, usize)>) {
    for f in fields {
        let wire = match f.val {
            Val::Varint(_) => 0,
            Val::Fixed64(_) => 1,
            Val::Fixed32(_) => 5,
            Val::Bytes(_) | Val::Message(_) => 2,
        };
        write_varint(out, (f.tag << 3) | wire);
        match &f.val {
            Val::Varint(v) => write_varint(out, *v),
            Val::Fixed64(v) => out.extend_from_slice(v),
            Val::Fixed32(v) => out.extend_from_slice(v),
            Val::Bytes(v) => {
                let at = out.len();
                write_varint(out, v.len() as u64);
                lengths.push((at, out.len() - at));
                out.extend_from_slice(v);
            }
            Val::Message(m) => {
                let mut inner = Vec::new();
                let mut inner_lengths = Vec::new();
                encode_into(m, &mut inner, &mut inner_lengths);
                let at = out.len();
                write_varint(out, inner.len() as u64);
                lengths.push((at, out.len() - at));
                let base = out.len();
                lengths.extend(inner_lengths.iter().map(|&(p, n)| (p + base, n)));
                out.extend_from_slice(&inner);
            }
        }
    }
}

/// A message being written, as prost writes it: fields in the order they are added, a scalar
/// at its default value (0, "", no bytes) and an empty repeated field left out, repeated
/// numbers packed.
#[derive(Clone, Debug, Default)]
pub struct Pb(Vec<u8>);

impl Pb {
    /// The message's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn key(&mut self, tag: u64, wire: u64) {
        write_varint(&mut self.0, (tag << 3) | wire);
    }

    fn len_delimited(mut self, tag: u64, b: &[u8]) -> Self {
        self.key(tag, 2);
        write_varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// An integer field (int32 and int64 alike: a negative value takes ten bytes); left out
    /// when 0.
    pub fn int(self, tag: u64, v: i64) -> Self {
        self.opt_int(tag, (v != 0).then_some(v))
    }

    /// An optional integer field: written when set, even to 0.
    pub fn opt_int(mut self, tag: u64, v: Option<i64>) -> Self {
        if let Some(v) = v {
            self.key(tag, 0);
            write_varint(&mut self.0, v as u64);
        }
        self
    }

    /// A float field; left out when 0.
    pub fn float(mut self, tag: u64, v: f32) -> Self {
        if v != 0.0 {
            self.key(tag, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// A bytes field; left out when empty.
    pub fn bytes(self, tag: u64, b: &[u8]) -> Self {
        if b.is_empty() {
            self
        } else {
            self.len_delimited(tag, b)
        }
    }

    /// A string field; left out when empty.
    pub fn str(self, tag: u64, s: &str) -> Self {
        self.bytes(tag, s.as_bytes())
    }

    /// An optional string field: written when set, even empty.
    pub fn opt_str(self, tag: u64, s: Option<&str>) -> Self {
        match s {
            Some(s) => self.len_delimited(tag, s.as_bytes()),
            None => self,
        }
    }

    /// A repeated string field: every value, empty ones too.
    pub fn strs(self, tag: u64, values: &[String]) -> Self {
        values
            .iter()
            .fold(self, |m, s| m.len_delimited(tag, s.as_bytes()))
    }

    /// A message field (present even when empty).
    pub fn msg(self, tag: u64, m: Pb) -> Self {
        self.len_delimited(tag, &m.0)
    }

    /// A repeated message field.
    pub fn msgs(self, tag: u64, ms: impl IntoIterator<Item = Pb>) -> Self {
        ms.into_iter().fold(self, |m, x| m.msg(tag, x))
    }

    /// A repeated integer field, packed; left out when empty.
    pub fn ints(self, tag: u64, values: impl IntoIterator<Item = i64>) -> Self {
        let mut packed = Vec::new();
        for v in values {
            write_varint(&mut packed, v as u64);
        }
        self.bytes(tag, &packed)
    }

    /// A repeated float field, packed; left out when empty.
    pub fn floats(self, tag: u64, values: &[f32]) -> Self {
        let packed: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(tag, &packed)
    }
}
