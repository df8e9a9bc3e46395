//! A tiny recursive-descent parser for the Python literals of `.npy` headers (strings, ints,
//! booleans, None, tuples, lists and dicts), with a nesting limit so a hostile header cannot
//! exhaust the stack.

/// Nesting limit for the header literal (a real header nests one level deep).
const MAX_DEPTH: usize = 16;

pub(super) fn snippet(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(20)]).into_owned()
}

/// A Python literal as found in `.npy` headers.
pub(super) enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// A tiny recursive-descent parser for Python literals (strings, ints, booleans, None, tuples,
/// lists and dicts), with a nesting limit.
pub(super) struct Parser<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
}

impl Parser<'_> {
    pub(super) fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    pub(super) fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err("header nests too deeply".into());
        }
        let at = self.i;
        match self.peek() {
            None => Err("unexpected end of the header".into()),
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(entries));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek() != Some(b':') {
                        return Err(format!("expected ':' at offset {}", self.i));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.i)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                let mut saw_comma = false;
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            saw_comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at offset {}",
                                close as char, self.i
                            ));
                        }
                    }
                }
                if open == b'[' {
                    Ok(Lit::List(items))
                } else if items.len() == 1 && !saw_comma {
                    // `(x)` is just a parenthesised value in Python.
                    Ok(items.pop().unwrap_or(Lit::None))
                } else {
                    Ok(Lit::Tuple(items))
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i).copied() {
                        None => return Err(format!("unterminated string starting at offset {at}")),
                        Some(c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let Some(&e) = self.s.get(self.i + 1) else {
                                return Err(format!("unterminated string starting at offset {at}"));
                            };
                            match e {
                                b'\\' | b'\'' | b'"' => out.push(e),
                                b'n' => out.push(b'\n'),
                                b't' => out.push(b'\t'),
                                _ => out.extend_from_slice(&[b'\\', e]),
                            }
                            self.i += 2;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                // The input is a &str and escapes only replace ASCII, so this cannot fail.
                String::from_utf8(out)
                    .map(Lit::Str)
                    .map_err(|_| "invalid UTF-8 in a string".into())
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let negative = c == b'-';
                if c == b'-' || c == b'+' {
                    self.i += 1;
                }
                let start = self.i;
                let mut n: i128 = 0;
                while let Some(&d) = self.s.get(self.i).filter(|d| d.is_ascii_digit()) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(i128::from(d - b'0')))
                        .ok_or_else(|| format!("integer too large at offset {start}"))?;
                    self.i += 1;
                }
                if self.i == start {
                    return Err(format!("expected a number at offset {at}"));
                }
                // Python 2 long suffix, as written by old NumPy versions.
                if matches!(self.s.get(self.i), Some(b'L' | b'l')) {
                    self.i += 1;
                }
                if self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
                {
                    return Err(format!("expected an integer at offset {start}"));
                }
                Ok(Lit::Int(if negative { -n } else { n }))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    w => Err(format!(
                        "unexpected word '{}' at offset {start}",
                        String::from_utf8_lossy(w)
                    )),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {:?} at offset {}",
                char::from(c),
                self.i
            )),
        }
    }
}
