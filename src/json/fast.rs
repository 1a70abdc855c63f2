//! The fast way to build a [`Doc`](super::Doc) tape from JSON text: one byte-level pass, no
//! serde visitor per token.
//!
//! It accepts only what it is sure of. On anything else (malformed text, a shape error, a
//! `\u` escape, a number it would have to round, deep nesting) it declines (`Err(Decline)`)
//! and the caller builds the document with the serde_json path instead, which gives the exact
//! `serde_json::Error` or the value. So an `Ok` here always leaves the tape the serde path
//! would build (checked by the unit tests and the `json_doc` fuzz target); the only cost of a
//! declined input is parsing it twice.

use super::doc::{Shape, Span, Tok};
use serde_json::Number;

/// Deeper than this, the serde path decides (serde_json stops at 128 levels).
const MAX_DEPTH: usize = 100;

pub(super) struct Fast<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    pub(super) owned: String,
    pub(super) toks: Vec<Tok>,
}

/// The end of the run of plain string bytes from `from`: the first `"`, `\\` or control
/// byte at or after it (or the end). Eight bytes at a time: a byte equal to `"` or `\\`, or
/// below 0x20, sets its high bit in `special` (the classic SWAR zero-byte tests), and the
/// first such byte is the lowest set bit.
fn plain_run(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut pos = from;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        // Bytes below 0x20 (no false positives: every byte of `x` is compared, high bit too).
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let special = zero(quote) | zero(backslash) | control;
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        pos += 1;
    }
    pos
}

/// Declined: let the serde path decide.
pub(super) struct Decline;

type R<T> = Result<T, Decline>;

impl<'t> Fast<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Fast {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            owned: String::new(),
            // About one token per 12 bytes of a typical Kubernetes object.
            toks: Vec::with_capacity(text.len() / 12 + 4),
        }
    }

    /// The whole text as one value of `shape`, nothing but whitespace after it.
    pub(super) fn document(&mut self, shape: Shape) -> R<()> {
        self.value(shape, 0)?;
        self.ws();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// One value of `shape` at the start of the text, whatever follows it; returns where it
    /// ends.
    pub(super) fn prefix(&mut self, shape: Shape) -> R<usize> {
        self.value(shape, 0)?;
        Ok(self.pos)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> R<u8> {
        self.bytes.get(self.pos).copied().ok_or(Decline)
    }

    fn literal(&mut self, word: &[u8], tok: Tok) -> R<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            self.toks.push(tok);
            Ok(())
        } else {
            Err(Decline)
        }
    }

    fn value(&mut self, shape: Shape, depth: usize) -> R<()> {
        self.ws();
        let b = self.peek()?;
        if shape != Shape::Any && b != b'{' {
            return Err(Decline);
        }
        match b {
            b'{' => self.object(shape, depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => {
                let span = self.string()?;
                self.toks.push(Tok::Str(span));
                Ok(())
            }
            b't' => self.literal(b"true", Tok::Bool(true)),
            b'f' => self.literal(b"false", Tok::Bool(false)),
            b'n' => self.literal(b"null", Tok::Null),
            b'-' | b'0'..=b'9' => {
                let n = self.number()?;
                self.toks.push(Tok::Num(n));
                Ok(())
            }
            _ => Err(Decline),
        }
    }

    fn array(&mut self, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Decline);
        }
        self.pos += 1; // [
        let at = self.toks.len();
        self.toks.push(Tok::Arr { end: 0, len: 0 });
        let mut len = 0;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.value(Shape::Any, depth)?;
                len += 1;
                self.ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Decline),
                }
            }
        }
        let end = self.toks.len();
        self.toks[at] = Tok::Arr { end, len };
        Ok(())
    }

    fn object(&mut self, shape: Shape, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Decline);
        }
        self.pos += 1; // {
        let at = self.toks.len();
        self.toks.push(Tok::Obj {
            end: 0,
            len: 0,
            sorted: true,
        });
        let mut len = 0;
        let mut sorted = true;
        let mut prev: Option<Span> = None;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return Err(Decline);
                }
                let key = self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return Err(Decline);
                }
                self.pos += 1;
                match shape.child(self.str(key)) {
                    // Skipped, as the serde path does: parsed (it must be valid), then dropped.
                    None => {
                        let (toks, owned) = (self.toks.len(), self.owned.len());
                        self.value(Shape::Any, depth)?;
                        self.toks.truncate(toks);
                        self.owned.truncate(owned);
                    }
                    Some(child) => {
                        if let Some(p) = prev {
                            sorted =
                                sorted && super::doc::key_cmp(self.str(p), self.str(key)).is_lt();
                        }
                        prev = Some(key);
                        self.toks.push(Tok::Key(key));
                        self.value(child, depth)?;
                        len += 1;
                    }
                }
                self.ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Decline),
                }
            }
        }
        let end = self.toks.len();
        self.toks[at] = Tok::Obj { end, len, sorted };
        Ok(())
    }

    #[inline(always)]
    fn str(&self, s: Span) -> &str {
        let src = if s.owned { &self.owned } else { self.text };
        &src[s.start..s.start + s.len]
    }

    /// A string at `pos` (on its opening quote). Without escapes it stays in the text; with
    /// escapes it is unescaped into `owned` (a `\u` escape declines).
    #[inline(always)]
    fn string(&mut self) -> R<Span> {
        self.pos += 1; // "
        let start = self.pos;
        self.pos = plain_run(self.bytes, self.pos);
        loop {
            match *self.bytes.get(self.pos).ok_or(Decline)? {
                b'"' => {
                    let span = Span {
                        start,
                        len: self.pos - start,
                        owned: false,
                    };
                    self.pos += 1;
                    return Ok(span);
                }
                b'\\' => break,
                0..=0x1f => return Err(Decline),
                _ => self.pos += 1,
            }
        }
        // Escapes: copy what came before, then unescape to the closing quote. The text is a
        // `str`, so cutting it at ASCII bytes keeps it valid UTF-8.
        let out = self.owned.len();
        self.owned.push_str(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            self.owned.push_str(&self.text[run..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(Span {
                        start: out,
                        len: self.owned.len() - out,
                        owned: true,
                    });
                }
                b'\\' => {
                    let c = match *self.bytes.get(self.pos + 1).ok_or(Decline)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => return Err(Decline),
                    };
                    self.owned.push(c);
                    self.pos += 2;
                }
                _ => return Err(Decline),
            }
        }
    }

    /// A number per the JSON grammar. Integers of up to 18 digits are converted here (exactly
    /// as serde_json does); anything else is handed to serde_json's own number parser, so
    /// rounding is serde_json's.
    fn number(&mut self) -> R<Number> {
        let start = self.pos;
        let neg = self.bytes[self.pos] == b'-';
        if neg {
            self.pos += 1;
        }
        let digits = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
            }
            _ => return Err(Decline),
        }
        let int_digits = self.pos - digits;
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            integer = false;
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            self.digits()?;
        }
        let text = &self.text[start..self.pos];
        if integer && int_digits <= 18 {
            let mut v: u64 = 0;
            for b in self.bytes[digits..self.pos].iter() {
                v = v * 10 + u64::from(b - b'0');
            }
            // serde_json reads `-0` as the float -0.0; let it.
            return match (neg, v) {
                (false, v) => Ok(Number::from(v)),
                (true, 0) => serde_json::from_str(text).map_err(|_| Decline),
                (true, v) => Ok(Number::from(-(v as i64))),
            };
        }
        serde_json::from_str(text).map_err(|_| Decline)
    }

    fn digits(&mut self) -> R<()> {
        let from = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        if self.pos == from {
            Err(Decline)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Doc;
    use super::*;

    /// Parse `text` both ways, as any value and as a Kubernetes object: the same tape or the
    /// same error. Returns whether the fast builder took the text (as any value).
    fn check(text: &str) -> bool {
        let mut took = false;
        for (object, shape) in [(false, Shape::Any), (true, Shape::KubeObject)] {
            let ours = if object {
                Doc::parse_object(text)
            } else {
                Doc::parse(text)
            };
            let reference = Doc::parse_with_serde(text, object);
            match (&ours, &reference) {
                (Ok(a), Ok(b)) => assert!(a.same_tape(b), "{text:?} (object: {object})"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
                _ => panic!("{text:?} (object: {object}): {ours:?} vs {reference:?}"),
            }
            let fast = Fast::new(text).document(shape).is_ok();
            assert!(
                !fast || reference.is_ok(),
                "fast builder took bad text {text:?}"
            );
            if !object {
                took = fast;
            }
        }
        took
    }

    #[test]
    fn agrees_with_serde_on_fixtures_and_takes_them() {
        let mut files = 0;
        let mut dirs = vec![
            std::path::PathBuf::from("tests/fixtures"),
            "webhook/tests/fixtures".into(),
        ];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = e.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if Doc::parse_with_serde(&text, false).is_ok() {
                        assert!(check(&text), "fast builder declined {}", path.display());
                        files += 1;
                    } else {
                        check(&text);
                    }
                }
            }
        }
        assert!(files >= 15, "only {files} JSON fixtures found");
    }

    #[test]
    fn plain_run_stops_at_the_first_quote_backslash_or_control_byte() {
        let naive = |b: &[u8], from: usize| {
            (from..b.len())
                .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
                .unwrap_or(b.len())
        };
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xa0, 0xe0, 0xff, b'!', b'#',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain bytes, so runs are long enough to cross 8-byte words.
                        if seed % 8 == 0 {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            alphabet[[0, 5, 6, 7, 8, 9, 10, 11, 12][(seed >> 8) as usize % 9]]
                        }
                    })
                    .collect();
                for from in 0..=len.min(9) {
                    assert_eq!(
                        plain_run(&bytes, from),
                        naive(&bytes, from),
                        "{bytes:?} from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_on_edge_cases() {
        let taken = [
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : [ 1 , 2 , { } ] , "b" : null } "#,
            r#"{"b":1,"a":2,"b":3}"#,
            r#"{"a":1,"b":2,"c":3}"#,
            r#""plain""#,
            r#""esc \" \\ \/ \b \f \n \r \t end""#,
            r#"{"k\"ey":"v\\al","k\"ey":"x"}"#,
            "\"unicode é ✓ 😀\"",
            "0",
            "-1",
            "123456789012345678",
            "-123456789012345678",
            "true",
            "false",
            "null",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","managedFields":[{"a":{"b":"\n"}}],"z":1},"data":{}}"#,
            r#"{"metadata":{"managedFields":1,"a":1}}"#,
            r#"{"metadata":{"b":1,"managedFields":1,"a":1}}"#,
        ];
        for t in taken {
            assert!(check(t), "fast builder declined {t:?}");
        }
        let declined_or_bad = [
            "",
            " ",
            "-0",
            "1.5",
            "1e5",
            "1E+2",
            "-1.5e-7",
            "0.1",
            "1234567890123456789",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1e400",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "[1 2]",
            "\"unterminated",
            "\"ctrl \u{1} char\"",
            "\"tab\tin string\"",
            r#""\x""#,
            r#""\u0041""#,
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            "[1] x",
            "{} {}",
            r#"{"metadata":[]}"#,
            r#"{"metadata":"x"}"#,
            r#"{"metadata":{"managedFields":[1,]}}"#,
            r#"{"metadata":{"managedFields":"\u0041"}}"#,
            r#"[{"a":"\"}]"#,
        ];
        for t in declined_or_bad {
            check(t);
        }
    }

    #[test]
    fn agrees_with_serde_at_every_nesting_depth() {
        for depth in [1, 50, 99, 100, 101, 126, 127, 128, 129, 200] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let took = check(&arrays);
            assert_eq!(took, depth <= MAX_DEPTH, "arrays, depth {depth}");
            check(&objects);
            // Deep managedFields: the serde path skips it without a depth limit.
            let deep = format!(
                r#"{{"metadata":{{"managedFields":{}1{}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            check(&deep);
        }
    }

    #[test]
    fn agrees_with_serde_on_generated_documents() {
        // A small deterministic generator: nested objects and arrays of every token kind,
        // keys sometimes repeated or out of order, strings sometimes escaped.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn gen(next: &mut impl FnMut(u64) -> u64, depth: u32, out: &mut String) {
            let pick = if depth > 4 { next(6) } else { next(8) };
            match pick {
                0 => out.push_str("null"),
                1 => out.push_str(if next(2) == 0 { "true" } else { "false" }),
                2 => out.push_str(&(next(2_000_000) as i64 - 1_000_000).to_string()),
                3 => out
                    .push_str(["1.25", "-0", "3e2", "0", "99999999999999999999"][next(5) as usize]),
                4 => out.push_str(
                    ["\"a\"", "\"é\"", "\"x\\ny\"", "\"\"", "\"q\\\"\""][next(5) as usize],
                ),
                5 => out.push_str(["\"b\"", "\"metadata\"", "\"managedFields\""][next(3) as usize]),
                6 => {
                    out.push('[');
                    for i in 0..next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        gen(next, depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    for i in 0..next(5) {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        let key = ["a", "b", "c", "metadata", "managedFields", "k\\\"", "é"]
                            [next(7) as usize];
                        out.push_str(&format!("\"{key}\": "));
                        gen(next, depth + 1, out);
                    }
                    out.push('}');
                }
            }
        }
        let mut taken = 0;
        for _ in 0..3000 {
            let mut text = String::new();
            gen(&mut next, 0, &mut text);
            taken += usize::from(check(&text));
        }
        assert!(
            taken > 1000,
            "fast builder took only {taken} of 3000 documents"
        );
    }
}
