//! Finds duplicate keys in (valid) JSON: serde_json, like most JSON readers, keeps the last
//! value of a repeated key without a word.
use std::collections::HashSet;

/// serde_json refuses deeper nesting (128); this is only a backstop.
const MAX_DEPTH: usize = 256;

/// `Err` naming the first key that appears twice in one object, at any depth.
pub(super) fn check_unique(json: &str) -> Result<(), String> {
    let mut s = Scanner {
        s: json.as_bytes(),
        i: 0,
    };
    s.value(None, 0)
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    /// Skips one value; for objects, checks the keys. `parent` is the key holding this value.
    fn value(&mut self, parent: Option<&str>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut seen = HashSet::new();
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b'}') | None => {
                            self.i += 1;
                            return Ok(());
                        }
                        Some(b',') => self.i += 1,
                        Some(b'"') => {
                            let key = self.string();
                            if !seen.insert(key.clone()) {
                                let key: String = key.chars().take(80).collect();
                                return Err(match parent {
                                    None => format!(
                                        "the header names tensor '{key}' twice; every key \
                                         must be unique"
                                    ),
                                    Some(p) => format!(
                                        "the header repeats key '{key}' inside '{}'; every \
                                         key must be unique",
                                        p.chars().take(80).collect::<String>()
                                    ),
                                });
                            }
                            self.skip_ws();
                            if self.s.get(self.i) == Some(&b':') {
                                self.i += 1;
                            }
                            self.value(Some(&key), depth + 1)?;
                        }
                        // Not valid JSON: the caller already parsed it, so this cannot happen.
                        Some(_) => return Ok(()),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b']') | None => {
                            self.i += 1;
                            return Ok(());
                        }
                        Some(b',') => self.i += 1,
                        Some(_) => {
                            let before = self.i;
                            self.value(parent, depth + 1)?;
                            if self.i == before {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Some(b'"') => {
                self.string();
                Ok(())
            }
            Some(_) => {
                // A number or a literal: up to the next delimiter.
                while self.s.get(self.i).is_some_and(|c| {
                    !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.i += 1;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Reads a string starting at the opening quote and returns it decoded, so that keys
    /// spelled with different escapes compare equal (as they do for serde_json).
    fn string(&mut self) -> String {
        self.i += 1;
        let mut out: Vec<u16> = Vec::new();
        let mut raw = String::new();
        let flush = |out: &mut Vec<u16>, raw: &mut String| {
            raw.push_str(&String::from_utf16_lossy(out));
            out.clear();
        };
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    let e = self.s.get(self.i + 1).copied().unwrap_or(b'\\');
                    self.i += 2;
                    let unit = match e {
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).unwrap_or(b"fffd");
                            self.i += 4;
                            std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u16::from_str_radix(h, 16).ok())
                                .unwrap_or(0xfffd)
                        }
                        other => u16::from(other),
                    };
                    out.push(unit);
                }
                _ => {
                    // Copy a run of plain bytes (valid UTF-8: the input is a &str).
                    flush(&mut out, &mut raw);
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(|&b| b != b'"' && b != b'\\') {
                        self.i += 1;
                    }
                    raw.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                }
            }
        }
        flush(&mut out, &mut raw);
        raw
    }
}
