//! A review's objects read in the one pass over the request body.
//!
//! serde_json gives an object's text (`&RawValue`) only after scanning all of it, and a gate
//! that parses the objects then reads the same bytes again: for a typical review the objects
//! are four fifths of the body. [`cut`] walks the envelope around them (the `request` fields
//! and the top level) itself, hands each object to the gate's reader
//! ([`ReviewObject::read_prefix`]), which parses it and says where it ends, and returns the
//! envelope with each object replaced by `null`, for serde to read with the review's types.
//!
//! The walk only knows structure: strings with their escapes, containers, where a value ends.
//! It validates nothing and declines (`None`) on anything but the plain case: a key with an
//! escape, a second `request`, `object` or `oldObject`, punctuation the grammar does not put
//! there, an object the reader refuses. The caller then parses the whole body with serde,
//! which gives every error its exact message. A body the walk accepts becomes the same review
//! as with serde alone: the reader checked the objects and serde checks all the rest, and the
//! envelope (the body with `null` in place of each object) is valid JSON exactly when the body
//! is, since a string ends at the same quote for the walk as for a parser, and a token the
//! walk misreads is one that serde refuses in the envelope.

use crate::gate::ReviewObject;

/// The body with its objects taken out.
pub(crate) struct Cut<O> {
    /// The body with `null` in place of `request.object` and `request.oldObject`.
    pub(crate) envelope: String,
    /// `request.object`, read by the gate's reader (`None` when absent or `null`).
    pub(crate) object: Option<O>,
    /// `request.oldObject`, likewise.
    pub(crate) old_object: Option<O>,
}

/// Take `request.object` and `request.oldObject` out of the body `text` (see the module doc);
/// `None` when the caller must parse the whole body instead.
pub(crate) fn cut<O: ReviewObject>(text: &str) -> Option<Cut<O>> {
    let mut w = Walk {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    // (start, end, value) of `object` and `oldObject`.
    let mut found: [Option<(usize, usize, O)>; 2] = [None, None];
    let mut request_seen = false;
    w.ws();
    w.open(b'{')?;
    w.members(&mut |w, key| {
        if key != b"request" {
            return w.skip_value();
        }
        // A second `request` is serde's to refuse, and so is a `request` that is no object.
        if std::mem::replace(&mut request_seen, true) {
            return None;
        }
        if w.peek() != Some(b'{') {
            return w.skip_value();
        }
        w.pos += 1;
        let mut seen = [false; 2];
        w.members(&mut |w, key| {
            let slot = match key {
                b"object" => 0,
                b"oldObject" => 1,
                _ => return w.skip_value(),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match w.peek()? {
                b'{' => {
                    let start = w.pos;
                    let (object, len) = O::read_prefix(&w.text[start..]).ok()?;
                    // The reader's count must land on the closing brace.
                    if len < 2 || w.bytes.get(start + len - 1) != Some(&b'}') {
                        return None;
                    }
                    w.pos = start + len;
                    found[slot] = Some((start, w.pos, object));
                    Some(())
                }
                b'n' => w.skip_value(),
                // Not an object: the full parse names the field and what it is.
                _ => None,
            }
        })
    })?;
    let [object, old_object] = found;
    let mut spans: Vec<(usize, usize)> = [&object, &old_object]
        .into_iter()
        .flatten()
        .map(|(s, e, _)| (*s, *e))
        .collect();
    spans.sort_unstable();
    let removed: usize = spans.iter().map(|(s, e)| e - s).sum();
    let mut envelope = String::with_capacity(text.len() - removed + 8);
    let mut at = 0;
    for (start, end) in spans {
        envelope.push_str(&text[at..start]);
        envelope.push_str("null");
        at = end;
    }
    envelope.push_str(&text[at..]);
    Some(Cut {
        envelope,
        object: object.map(|(_, _, o)| o),
        old_object: old_object.map(|(_, _, o)| o),
    })
}

/// The bytes that matter inside a container being skipped: quotes and brackets.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'[' as usize] = true;
    t[b'}' as usize] = true;
    t[b']' as usize] = true;
    t
};

struct Walk<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

impl<'t> Walk<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn open(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// The members of an object whose `{` was just read, through its `}`: for each, `member`
    /// is called on the value's first byte with the key (which has no escapes, else `None`)
    /// and must leave the walk just after the value.
    fn members(&mut self, member: &mut dyn FnMut(&mut Self, &'t [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let start = self.pos + 1;
            self.string()?;
            let key = &self.bytes[start..self.pos - 1];
            if key.contains(&b'\\') {
                return None;
            }
            self.ws();
            self.open(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string from its opening quote through its closing one (an escaped quote does not
    /// close it; what the escapes and characters are is serde's to check).
    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        loop {
            self.pos += memchr::memchr2(b'"', b'\\', self.bytes.get(self.pos..)?)?;
            if self.bytes[self.pos] == b'"' {
                self.pos += 1;
                return Some(());
            }
            self.pos += 2;
        }
    }

    /// Any value, from its first byte to just after it.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    let rest = self.bytes.get(self.pos..)?;
                    self.pos += rest.iter().position(|&b| STRUCTURAL[usize::from(b)])?;
                    match self.bytes[self.pos] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        _ => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                    }
                    self.pos += 1;
                }
            }
            // A number or a literal: up to the next delimiter.
            _ => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r') {
                        break;
                    }
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::RawObject;

    fn cut_raw(text: &str) -> Option<(String, Option<String>, Option<String>)> {
        cut::<RawObject>(text).map(|c| {
            (
                c.envelope,
                c.object.map(|o| o.json().to_string()),
                c.old_object.map(|o| o.json().to_string()),
            )
        })
    }

    #[test]
    fn objects_are_taken_out_wherever_they_are() {
        let (env, new, old) = cut_raw(
            r#" {"kind":"AdmissionReview","request": {"uid":"u","oldObject" : {"a":[1,{"b":"}"}]} , "x":[{"object":{}}],"object":{"k":"v\"}"}}, "z": null}"#,
        )
        .expect("cut");
        assert_eq!(
            env,
            r#" {"kind":"AdmissionReview","request": {"uid":"u","oldObject" : null , "x":[{"object":{}}],"object":null}, "z": null}"#
        );
        assert_eq!(new.as_deref(), Some(r#"{"k":"v\"}"}"#));
        assert_eq!(old.as_deref(), Some(r#"{"a":[1,{"b":"}"}]}"#));
        let (env, new, old) =
            cut_raw(r#"{"request":{"object":null,"oldObject":{}}}"#).expect("cut");
        assert_eq!(env, r#"{"request":{"object":null,"oldObject":null}}"#);
        assert_eq!((new, old.as_deref()), (None, Some("{}")));
        // Nothing to take out: the body as it is.
        let (env, ..) = cut_raw(r#"{"apiVersion":"v","request":7}"#).expect("cut");
        assert_eq!(env, r#"{"apiVersion":"v","request":7}"#);
    }

    #[test]
    fn declines_what_only_a_parser_should_judge() {
        for body in [
            "",
            "[]",
            r#"{"request":{"object":[1]}}"#,
            r#"{"request":{"object":{"a":tru}}}"#,
            r#"{"request":{"object":{},"object":{}}}"#,
            r#"{"request":{"object":{}},"request":{}}"#,
            r#"{"request":{"obj\u0065ct":{}}}"#,
            r#"{"request" {"object":{}}}"#,
            r#"{"request":{"object":{} "uid":"u"}}"#,
            r#"{"request":{"object":{"a":1}"#,
            r#"{"request":{"uid":"u"#,
        ] {
            assert!(cut_raw(body).is_none(), "{body}");
        }
    }
}
