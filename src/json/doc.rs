//! A parsed JSON document as one flat tape ([`Doc`]) and cheap handles into it ([`Node`]).
//!
//! The webhook's hot path reads a few dozen pointers of two Kubernetes objects and their
//! json-patch diff. Building `serde_json::Value` trees for that costs one allocation per string
//! and per map node (about a third of a review's CPU time, measured with `scripts/bench-webhook`).
//! A [`Doc`] is built in one pass into a single `Vec` of tokens (by the byte-level builder in
//! `fast.rs`, or through serde_json for what that declines); strings stay where they are in the
//! source text (only strings with escapes are copied), and every container records where its
//! subtree ends, so skipping a subtree is one index jump.
//!
//! Semantics follow `serde_json::Value` exactly, and the tests check it: an object with a
//! repeated key means its last value ([`Node::get`], equality, [`Node::to_value`]); equality is
//! `Value`'s (objects as maps, numbers as `serde_json::Number`); [`diff`] emits what
//! `json_patch::diff` emits for the same documents, in the same order. Pure; no I/O.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

/// Where a string lives: in the source text, or in the document's own buffer (strings with
/// escapes, and every string of a document built from a `Value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) owned: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Tok {
    Null,
    Bool(bool),
    Num(Number),
    Str(Span),
    /// An array of `len` elements; `end` is the index after its last descendant.
    Arr {
        end: usize,
        len: usize,
    },
    /// An object of `len` entries (each a `Key` then the value's subtree); `end` as for `Arr`.
    /// `sorted`: keys strictly increasing (so no key repeats), as the apiserver writes custom
    /// resources (Go sorts map keys): lookups stop early.
    Obj {
        end: usize,
        len: usize,
        sorted: bool,
    },
    Key(Span),
}

/// A parsed JSON document. Immutable; share it with `Arc`.
pub struct Doc {
    text: Arc<str>,
    owned: String,
    toks: Vec<Tok>,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Doc({})", self.root())
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        self.root() == other.root()
    }
}

static NULL: LazyLock<Doc> = LazyLock::new(|| Doc::from_value(&Value::Null));

impl Doc {
    /// Parse any JSON text (the whole text must be one value).
    pub fn parse(text: impl Into<Arc<str>>) -> Result<Doc, serde_json::Error> {
        Doc::build(text.into(), Shape::Any)
    }

    /// Parse a Kubernetes object: the text must be a JSON object, `metadata` (when present)
    /// must be an object, and `metadata.managedFields` is skipped. That field is the
    /// apiserver's server-side-apply bookkeeping (often half an object's size); no gate reads
    /// it and it changes on every write (timestamps), so it is neither stored nor diffed.
    pub fn parse_object(text: impl Into<Arc<str>>) -> Result<Doc, serde_json::Error> {
        Doc::build(text.into(), Shape::KubeObject)
    }

    /// Read the Kubernetes object at the start of `text` ([`Doc::parse_object`]) and return it
    /// with the number of bytes it took, whatever follows it: the webhook hands over a
    /// review's object this way, with the rest of the request body after it, so that the
    /// object's bytes are read once.
    ///
    /// The outer `Err` is text that is not one JSON value. Valid JSON that is not a readable
    /// Kubernetes object (not an object, `metadata` not an object, nesting beyond serde_json's
    /// 128 levels) is the inner `Err`, with the count still right.
    #[allow(clippy::type_complexity)]
    pub fn parse_object_prefix(
        text: &str,
    ) -> Result<(Result<Doc, serde_json::Error>, usize), serde_json::Error> {
        let mut fast = super::fast::Fast::new(text);
        if let Ok(end) = fast.prefix(Shape::KubeObject) {
            let super::fast::Fast { owned, toks, .. } = fast;
            let text = Arc::from(&text[..end]);
            return Ok((Ok(Doc { text, owned, toks }), end));
        }
        // Where the value ends, by serde_json's grammar check alone (which has no depth limit),
        // then the document through serde for the exact error.
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
        let end = match values.next() {
            Some(Ok(_)) => values.byte_offset(),
            Some(Err(e)) => return Err(e),
            None => return Err(de::Error::custom("expected a JSON value, found nothing")),
        };
        let doc = Doc::build_with_serde(Arc::from(&text[..end]), Shape::KubeObject);
        Ok((doc, end))
    }

    /// The JSON text the document was parsed from (empty for one built from a value or from
    /// another deserializer).
    pub fn source(&self) -> &str {
        &self.text
    }

    fn build(text: Arc<str>, shape: Shape) -> Result<Doc, serde_json::Error> {
        let mut fast = super::fast::Fast::new(&text);
        if fast.document(shape).is_ok() {
            let super::fast::Fast { owned, toks, .. } = fast;
            return Ok(Doc { text, owned, toks });
        }
        Doc::build_with_serde(text, shape)
    }

    /// [`Doc::build`] through serde_json: the reference the fast builder must agree with, and
    /// what gives malformed text its exact `serde_json::Error`.
    fn build_with_serde(text: Arc<str>, shape: Shape) -> Result<Doc, serde_json::Error> {
        let mut b = Builder {
            text: &text,
            owned: String::new(),
            // About one token per 12 bytes of a typical Kubernetes object.
            toks: Vec::with_capacity(text.len() / 12 + 4),
        };
        let mut de = serde_json::Deserializer::from_str(&text);
        Seed { b: &mut b, shape }.deserialize(&mut de)?;
        de.end()?;
        let Builder { owned, toks, .. } = b;
        Ok(Doc {
            text: text.clone(),
            owned,
            toks,
        })
    }

    /// `text` parsed through serde_json only ([`Doc::parse`] or, with `object`,
    /// [`Doc::parse_object`], without the fast builder): the reference the fast builder is
    /// checked against by the tests and the `json_doc` fuzz target.
    #[doc(hidden)]
    pub fn parse_with_serde(text: &str, object: bool) -> Result<Doc, serde_json::Error> {
        let shape = if object {
            Shape::KubeObject
        } else {
            Shape::Any
        };
        Doc::build_with_serde(Arc::from(text), shape)
    }

    /// Whether two documents have the same tape: the same tokens with the same strings,
    /// container sizes and sorted flags (stricter than `==`, which compares values).
    #[doc(hidden)]
    pub fn same_tape(&self, other: &Doc) -> bool {
        let text = |d: &Doc, s: Span| -> String { d.root().text(s).to_string() };
        self.toks.len() == other.toks.len()
            && self
                .toks
                .iter()
                .zip(&other.toks)
                .all(|(a, b)| match (a, b) {
                    (Tok::Null, Tok::Null) => true,
                    (Tok::Bool(x), Tok::Bool(y)) => x == y,
                    // Debug tells -0.0 from 0.0 and 1.0 from 1.
                    (Tok::Num(x), Tok::Num(y)) => format!("{x:?}") == format!("{y:?}"),
                    (Tok::Str(x), Tok::Str(y)) | (Tok::Key(x), Tok::Key(y)) => {
                        text(self, *x) == text(other, *y)
                    }
                    (Tok::Arr { end: e1, len: l1 }, Tok::Arr { end: e2, len: l2 }) => {
                        e1 == e2 && l1 == l2
                    }
                    (
                        Tok::Obj {
                            end: e1,
                            len: l1,
                            sorted: s1,
                        },
                        Tok::Obj {
                            end: e2,
                            len: l2,
                            sorted: s2,
                        },
                    ) => e1 == e2 && l1 == l2 && s1 == s2,
                    _ => false,
                })
    }

    /// Build a document from any serde deserializer (YAML, for instance); strings are copied.
    pub fn from_deserializer<'de, D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        let mut b = Builder {
            text: "",
            owned: String::new(),
            toks: Vec::new(),
        };
        Seed {
            b: &mut b,
            shape: Shape::Any,
        }
        .deserialize(d)?;
        let Builder { owned, toks, .. } = b;
        Ok(Doc {
            text: Arc::from(""),
            owned,
            toks,
        })
    }

    /// The same document as `value` (strings copied into the document).
    pub fn from_value(value: &Value) -> Doc {
        fn push(v: &Value, toks: &mut Vec<Tok>, owned: &mut String) {
            let span = |s: &str, owned: &mut String| {
                let start = owned.len();
                owned.push_str(s);
                Span {
                    start,
                    len: s.len(),
                    owned: true,
                }
            };
            match v {
                Value::Null => toks.push(Tok::Null),
                Value::Bool(b) => toks.push(Tok::Bool(*b)),
                Value::Number(n) => toks.push(Tok::Num(n.clone())),
                Value::String(s) => {
                    let sp = span(s, owned);
                    toks.push(Tok::Str(sp));
                }
                Value::Array(a) => {
                    let at = toks.len();
                    toks.push(Tok::Arr { end: 0, len: 0 });
                    for c in a {
                        push(c, toks, owned);
                    }
                    toks[at] = Tok::Arr {
                        end: toks.len(),
                        len: a.len(),
                    };
                }
                Value::Object(m) => {
                    let at = toks.len();
                    toks.push(Tok::Obj {
                        end: 0,
                        len: 0,
                        sorted: true,
                    });
                    for (k, c) in m {
                        let sp = span(k, owned);
                        toks.push(Tok::Key(sp));
                        push(c, toks, owned);
                    }
                    // A serde_json map iterates in key order, each key once.
                    toks[at] = Tok::Obj {
                        end: toks.len(),
                        len: m.len(),
                        sorted: true,
                    };
                }
            }
        }
        let mut toks = Vec::new();
        let mut owned = String::new();
        push(value, &mut toks, &mut owned);
        Doc {
            text: Arc::from(""),
            owned,
            toks,
        }
    }

    /// The document's value.
    pub fn root(&self) -> Node<'_> {
        Node { doc: self, i: 0 }
    }

    /// A `null` node, for an absent side of a comparison.
    pub fn null() -> Node<'static> {
        NULL.root()
    }
}

// ---------------------------------------------------------------------------------------------
// Building

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Any,
    /// The top of a Kubernetes object.
    KubeObject,
    /// `metadata` of a Kubernetes object.
    KubeMetadata,
}

impl Shape {
    /// The shape of the value under `key` in an object of this shape; `None` when that value is
    /// skipped (`metadata.managedFields`). Both builders follow this.
    pub(super) fn child(self, key: &str) -> Option<Shape> {
        match (self, key) {
            (Shape::KubeObject, "metadata") => Some(Shape::KubeMetadata),
            (Shape::KubeMetadata, "managedFields") => None,
            _ => Some(Shape::Any),
        }
    }
}

struct Builder<'t> {
    text: &'t str,
    owned: String,
    toks: Vec<Tok>,
}

impl Builder<'_> {
    /// Record a string: in place when it is a slice of the source text, else copied.
    fn span(&mut self, s: &str, borrowed: bool) -> Span {
        let (p, base) = (s.as_ptr() as usize, self.text.as_ptr() as usize);
        if borrowed && p >= base && p - base + s.len() <= self.text.len() {
            return Span {
                start: p - base,
                len: s.len(),
                owned: false,
            };
        }
        let start = self.owned.len();
        self.owned.push_str(s);
        Span {
            start,
            len: s.len(),
            owned: true,
        }
    }

    fn str(&self, s: Span) -> &str {
        let src = if s.owned { &self.owned } else { self.text };
        &src[s.start..s.start + s.len]
    }
}

struct Seed<'b, 't> {
    b: &'b mut Builder<'t>,
    shape: Shape,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed<'_, '_> {
    fn scalar<E: de::Error>(self, tok: Tok, unexpected: de::Unexpected<'_>) -> Result<(), E> {
        if self.shape != Shape::Any {
            return Err(E::invalid_type(unexpected, &self));
        }
        self.b.toks.push(tok);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self.shape {
            Shape::Any => "any JSON value",
            Shape::KubeObject => "a Kubernetes object (a JSON object)",
            Shape::KubeMetadata => "object metadata (a JSON object)",
        })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Tok::Bool(v), de::Unexpected::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(Tok::Num(v.into()), de::Unexpected::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(Tok::Num(v.into()), de::Unexpected::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // As serde_json::Value: a non-finite float (not producible from JSON text) is null.
        let tok = Number::from_f64(v).map_or(Tok::Null, Tok::Num);
        self.scalar(tok, de::Unexpected::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        if self.shape != Shape::Any {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        let sp = self.b.span(v, true);
        self.b.toks.push(Tok::Str(sp));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.shape != Shape::Any {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        let sp = self.b.span(v, false);
        self.b.toks.push(Tok::Str(sp));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Tok::Null, de::Unexpected::Unit)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Tok::Null, de::Unexpected::Option)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.shape != Shape::Any {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let at = self.b.toks.len();
        self.b.toks.push(Tok::Arr { end: 0, len: 0 });
        let mut len = 0;
        while seq
            .next_element_seed(Seed {
                b: &mut *self.b,
                shape: Shape::Any,
            })?
            .is_some()
        {
            len += 1;
        }
        let end = self.b.toks.len();
        self.b.toks[at] = Tok::Arr { end, len };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.b.toks.len();
        self.b.toks.push(Tok::Obj {
            end: 0,
            len: 0,
            sorted: true,
        });
        let mut len = 0;
        let mut sorted = true;
        let mut prev: Option<Span> = None;
        while let Some(span) = map.next_key_seed(KeySeed { b: &mut *self.b })? {
            let Some(shape) = self.shape.child(self.b.str(span)) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if let Some(p) = prev {
                sorted = sorted && key_cmp(self.b.str(p), self.b.str(span)).is_lt();
            }
            prev = Some(span);
            self.b.toks.push(Tok::Key(span));
            map.next_value_seed(Seed {
                b: &mut *self.b,
                shape,
            })?;
            len += 1;
        }
        let end = self.b.toks.len();
        self.b.toks[at] = Tok::Obj { end, len, sorted };
        Ok(())
    }
}

struct KeySeed<'b, 't> {
    b: &'b mut Builder<'t>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Span;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Span;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.b.span(v, true))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.b.span(v, false))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A value inside a [`Doc`]: a copyable handle (document + position), with the read side of
/// `serde_json::Value`'s API.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    doc: &'a Doc,
    i: usize,
}

impl<'a> Node<'a> {
    fn tok(self) -> &'a Tok {
        &self.doc.toks[self.i]
    }

    fn text(self, s: Span) -> &'a str {
        let src: &'a str = if s.owned {
            &self.doc.owned
        } else {
            &self.doc.text
        };
        &src[s.start..s.start + s.len]
    }

    /// Index after this node's subtree.
    fn skip(self) -> usize {
        match *self.tok() {
            Tok::Arr { end, .. } | Tok::Obj { end, .. } => end,
            _ => self.i + 1,
        }
    }

    fn at_index(self, i: usize) -> Node<'a> {
        Node { doc: self.doc, i }
    }

    pub fn is_null(self) -> bool {
        matches!(self.tok(), Tok::Null)
    }
    pub fn is_object(self) -> bool {
        matches!(self.tok(), Tok::Obj { .. })
    }
    pub fn is_array(self) -> bool {
        matches!(self.tok(), Tok::Arr { .. })
    }
    pub fn as_bool(self) -> Option<bool> {
        match self.tok() {
            Tok::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_str(self) -> Option<&'a str> {
        match *self.tok() {
            Tok::Str(s) => Some(self.text(s)),
            _ => None,
        }
    }
    pub fn as_number(self) -> Option<&'a Number> {
        match self.tok() {
            Tok::Num(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_i64(self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }
    pub fn as_u64(self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }
    pub fn as_f64(self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }

    /// Elements of an array, or entries of an object (a repeated key counted each time);
    /// 0 for anything else.
    pub fn len(self) -> usize {
        match *self.tok() {
            Tok::Arr { len, .. } | Tok::Obj { len, .. } => len,
            _ => 0,
        }
    }

    /// Whether [`Node::len`] is 0.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The entries of an object in document order (a repeated key appears each time; use
    /// [`Node::get`] for the effective value); empty for anything else.
    pub fn entries(self) -> Entries<'a> {
        let (pos, end) = match *self.tok() {
            Tok::Obj { end, .. } => (self.i + 1, end),
            _ => (0, 0),
        };
        Entries {
            node: self,
            pos,
            end,
        }
    }

    /// The elements of an array; empty for anything else.
    pub fn elements(self) -> Elements<'a> {
        let (pos, end) = match *self.tok() {
            Tok::Arr { end, .. } => (self.i + 1, end),
            _ => (0, 0),
        };
        Elements {
            node: self,
            pos,
            end,
        }
    }

    /// The value of `key` in an object (the last one when the key repeats, as
    /// `serde_json::Value`); `None` for a missing key or a non-object.
    pub fn get(self, key: &str) -> Option<Node<'a>> {
        let Tok::Obj { end, sorted, .. } = *self.tok() else {
            return None;
        };
        // A sorted object stops at the first key past `key`; an unsorted one compares lengths
        // before bytes (most keys differ in length).
        let want = key.as_bytes();
        let mut found = None;
        let mut pos = self.i + 1;
        while pos < end {
            let Tok::Key(span) = self.doc.toks[pos] else {
                unreachable!("object entries start with a key")
            };
            let value = self.at_index(pos + 1);
            if sorted {
                match key_cmp(self.text(span), key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => return Some(value),
                    std::cmp::Ordering::Greater => return None,
                }
            } else if span.len == want.len() && self.text(span).as_bytes() == want {
                // Unsorted: a repeated key means its last value, so keep looking.
                found = Some(value);
            }
            pos = value.skip();
        }
        found
    }

    /// Element `index` of an array.
    pub fn at(self, index: usize) -> Option<Node<'a>> {
        self.elements().nth(index)
    }

    /// Look up an RFC 6901 JSON pointer, like `serde_json::Value::pointer`.
    pub fn pointer(self, ptr: &str) -> Option<Node<'a>> {
        if ptr.is_empty() {
            return Some(self);
        }
        let rest = ptr.strip_prefix('/')?;
        let bytes = rest.as_bytes();
        let mut at = self;
        let mut start = 0;
        // One byte loop finds each token's end and whether it has an escape (pointers are short:
        // `split` and `contains` cost more here than the lookups).
        loop {
            let (mut end, mut escaped) = (start, false);
            while let Some(&b) = bytes.get(end) {
                if b == b'/' {
                    break;
                }
                escaped |= b == b'~';
                end += 1;
            }
            let raw = &rest[start..end];
            let unescaped;
            let token = if escaped {
                unescaped = super::unescape(raw);
                unescaped.as_str()
            } else {
                raw
            };
            at = match at.tok() {
                Tok::Obj { .. } => at.get(token)?,
                Tok::Arr { .. } => at.at(super::parse_index(token)?)?,
                _ => return None,
            };
            if end == bytes.len() {
                return Some(at);
            }
            start = end + 1;
        }
    }

    /// The value as a `serde_json::Value`.
    pub fn to_value(self) -> Value {
        match self.tok() {
            Tok::Null => Value::Null,
            Tok::Bool(b) => Value::Bool(*b),
            Tok::Num(n) => Value::Number(n.clone()),
            Tok::Str(s) => Value::String(self.text(*s).to_string()),
            Tok::Arr { .. } => Value::Array(self.elements().map(Node::to_value).collect()),
            Tok::Obj { .. } => Value::Object(
                self.entries()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
            Tok::Key(_) => unreachable!("a node never points at a key"),
        }
    }

    /// Whether the two subtrees are the same token for token (same keys in the same order,
    /// same values). Implies equality; the converse fails only for reordered or repeated keys.
    fn same_tokens(self, other: Node<'_>) -> bool {
        let (a, b) = (self.skip() - self.i, other.skip() - other.i);
        a == b
            && (0..a).all(|k| {
                let (x, y) = (self.at_index(self.i + k), other.at_index(other.i + k));
                match (x.tok(), y.tok()) {
                    (Tok::Null, Tok::Null) => true,
                    (Tok::Bool(p), Tok::Bool(q)) => p == q,
                    (Tok::Num(p), Tok::Num(q)) => p == q,
                    (Tok::Str(p), Tok::Str(q)) | (Tok::Key(p), Tok::Key(q)) => {
                        x.text(*p) == y.text(*q)
                    }
                    (Tok::Arr { end: e, len: l }, Tok::Arr { end: f, len: m })
                    | (Tok::Obj { end: e, len: l, .. }, Tok::Obj { end: f, len: m, .. }) => {
                        l == m && e - x.i == f - y.i
                    }
                    _ => false,
                }
            })
    }

    /// The object's entries sorted by key with repeated keys resolved to their last value (the
    /// iteration order of `serde_json::Map`), appended to `out`.
    pub(crate) fn sorted_entries_into(self, out: &mut Vec<(&'a str, Node<'a>)>) {
        let start = out.len();
        out.extend(self.entries());
        if let Tok::Obj { sorted: true, .. } = self.tok() {
            return;
        }
        let slice = &mut out[start..];
        if slice.windows(2).all(|w| key_cmp(w[0].0, w[1].0).is_lt()) {
            return;
        }
        // Stable: a repeated key keeps document order, so the last one wins below.
        slice.sort_by(|a, b| key_cmp(a.0, b.0));
        let mut w = start;
        for r in start..out.len() {
            if w > start && out[w - 1].0 == out[r].0 {
                out[w - 1] = out[r];
            } else {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
    }
}

/// `a.cmp(b)` for object keys, deciding on the first byte when it differs (most keys of one
/// object do) without a `memcmp` call.
#[inline]
pub(super) fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.first().cmp(&y.first()).then_with(|| x.cmp(y))
}

/// Iterator over an object's entries; see [`Node::entries`].
pub struct Entries<'a> {
    node: Node<'a>,
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, Node<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let key = match *self.node.at_index(self.pos).tok() {
            Tok::Key(s) => self.node.text(s),
            _ => unreachable!("object entries start with a key"),
        };
        let value = self.node.at_index(self.pos + 1);
        self.pos = value.skip();
        Some((key, value))
    }
}

/// Iterator over an array's elements; see [`Node::elements`].
pub struct Elements<'a> {
    node: Node<'a>,
    pos: usize,
    end: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let n = self.node.at_index(self.pos);
        self.pos = n.skip();
        Some(n)
    }
}

impl PartialEq for Node<'_> {
    /// `serde_json::Value` equality: objects compare as maps (order-insensitive, a repeated
    /// key meaning its last value), numbers as `serde_json::Number`.
    fn eq(&self, other: &Self) -> bool {
        match (self.tok(), other.tok()) {
            (Tok::Null, Tok::Null) => true,
            (Tok::Bool(a), Tok::Bool(b)) => a == b,
            (Tok::Num(a), Tok::Num(b)) => a == b,
            (Tok::Str(a), Tok::Str(b)) => self.text(*a) == other.text(*b),
            (Tok::Arr { len: la, .. }, Tok::Arr { len: lb, .. }) => {
                la == lb && self.elements().zip(other.elements()).all(|(a, b)| a == b)
            }
            (Tok::Obj { .. }, Tok::Obj { .. }) if self.same_tokens(*other) => true,
            (Tok::Obj { .. }, Tok::Obj { .. }) => {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                self.sorted_entries_into(&mut a);
                other.sorted_entries_into(&mut b);
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va == vb)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Node<'_> {
    /// Compact JSON, as `serde_json::Value`'s `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// ---------------------------------------------------------------------------------------------
// Diff

/// The operations of the json-patch (RFC 6902) diff of `left` → `right`, as
/// `json_patch::diff` emits them for the same documents as `serde_json::Value` (same
/// operations, same paths, same order), reported as `(op, path)` with `op` one of `add`,
/// `remove`, `replace`; nothing is copied.
pub fn diff<'a>(left: Node<'a>, right: Node<'a>, mut emit: impl FnMut(&'static str, &str)) {
    diff_along::<Step<'_>>(left, right, &[], |op, path, _| emit(op, path));
}

/// One step of a path pattern for [`diff_along`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'p> {
    /// One object key, or one array index written as RFC 6901 writes it (`0`, `12`; not `01`).
    Key(&'p str),
    /// Any one key or index.
    Any,
}

/// Something that reads as a [`Step`] (a policy's path segment, a pointer token).
pub trait AsStep {
    fn step(&self) -> Step<'_>;
}

impl AsStep for Step<'_> {
    fn step(&self) -> Step<'_> {
        *self
    }
}

/// Where an operation reported by [`diff_along`] sits relative to the pattern.
#[derive(Debug, Clone, Copy)]
pub enum Along<'a> {
    /// At or below a place the whole pattern names.
    Under,
    /// At a proper ancestor of what the pattern names, reached after the first `depth` steps:
    /// the operation added, removed or replaced it whole. `old` and `new` are the values at
    /// the operation's path (`None`: absent), from which the caller can tell whether what the
    /// rest of the pattern names changed.
    Above {
        depth: usize,
        old: Option<Node<'a>>,
        new: Option<Node<'a>>,
    },
}

/// The operations of [`diff`]`(left, right)` related to the pattern `steps` (their path is at
/// or below a place the pattern names, or above one on the way), in `diff`'s order, each with
/// where it sits ([`Along`]). Only the parts of the documents the pattern leads to are
/// compared: deciding whether a few watched fields changed costs a few lookups, not a diff
/// of the whole objects. Empty `steps`: every operation of the diff, all [`Along::Under`].
pub fn diff_along<'a, S: AsStep>(
    left: Node<'a>,
    right: Node<'a>,
    steps: &[S],
    mut emit: impl FnMut(&'static str, &str, Along<'a>),
) {
    let mut path = String::with_capacity(128);
    let mut scratch = Vec::new();
    walk(left, right, steps, 0, &mut path, &mut scratch, &mut emit);
}

/// Where an operation at a child of the current path sits (`rest`: the steps after the child's).
fn child<'a, S>(
    steps: &[S],
    rest: &[S],
    depth: usize,
    old: Option<Node<'a>>,
    new: Option<Node<'a>>,
) -> Along<'a> {
    if steps.is_empty() || rest.is_empty() {
        Along::Under
    } else {
        Along::Above {
            depth: depth + 1,
            old,
            new,
        }
    }
}

fn walk<'a, S: AsStep>(
    left: Node<'a>,
    right: Node<'a>,
    steps: &[S],
    depth: usize,
    path: &mut String,
    scratch: &mut Vec<(&'a str, Node<'a>)>,
    emit: &mut impl FnMut(&'static str, &str, Along<'a>),
) {
    // Below the pattern every key and index is followed (`None`), as by the plain diff.
    let (step, rest) = match steps.split_first() {
        Some((s, rest)) => (Some(s.step()), rest),
        None => (None, steps),
    };
    match (left.tok(), right.tok(), step) {
        // One key: the diff visits it once (its last value), as below.
        (Tok::Obj { .. }, Tok::Obj { .. }, Some(Step::Key(key))) => {
            let (lv, rv) = (left.get(key), right.get(key));
            if lv.is_none() && rv.is_none() {
                return;
            }
            let len = super::push_key(path, key);
            match (lv, rv) {
                (Some(lv), Some(rv)) => walk(lv, rv, rest, depth + 1, path, scratch, emit),
                (None, _) => emit("add", path, child(steps, rest, depth, lv, rv)),
                (_, None) => emit("remove", path, child(steps, rest, depth, lv, rv)),
            }
            path.truncate(len);
        }
        // Most of two versions of an object is the same, token for token: nothing to report.
        (Tok::Obj { .. }, Tok::Obj { .. }, _) if left.same_tokens(right) => {}
        (Tok::Obj { .. }, Tok::Obj { .. }, _) => {
            // Both sides' entries in `serde_json::Map` order, on a shared stack: deeper levels
            // push above `end` and pop back before returning.
            let base = scratch.len();
            left.sorted_entries_into(scratch);
            let mid = scratch.len();
            right.sorted_entries_into(scratch);
            let end = scratch.len();
            let mut li = base;
            for ri in mid..end {
                let (key, rv) = scratch[ri];
                while li < mid && key_cmp(scratch[li].0, key).is_lt() {
                    li += 1;
                }
                let len = super::push_key(path, key);
                if li < mid && scratch[li].0 == key {
                    let lv = scratch[li].1;
                    walk(lv, rv, rest, depth + 1, path, scratch, emit);
                } else {
                    emit("add", path, child(steps, rest, depth, None, Some(rv)));
                }
                path.truncate(len);
            }
            let mut ri = mid;
            for li in base..mid {
                let (key, lv) = scratch[li];
                while ri < end && key_cmp(scratch[ri].0, key).is_lt() {
                    ri += 1;
                }
                if !(ri < end && scratch[ri].0 == key) {
                    let len = super::push_key(path, key);
                    emit("remove", path, child(steps, rest, depth, Some(lv), None));
                    path.truncate(len);
                }
            }
            scratch.truncate(base);
        }
        (Tok::Arr { len: nl, .. }, Tok::Arr { len: nr, .. }, _) => {
            // json_patch's array diff: element-wise; removals at the tail all name the index
            // where the first one happened (each removal shifts the rest down), so that is the
            // path (and the old value) they are reported with.
            let (nl, nr) = (*nl, *nr);
            let only = match step {
                Some(Step::Key(k)) => match super::parse_index(k) {
                    Some(i) => Some(i),
                    None => return,
                },
                _ => None,
            };
            let wanted = |i: usize| only.is_none_or(|o| o == i);
            let len = path.len();
            let at = |path: &mut String, i: usize| {
                path.truncate(len);
                let _ = write!(path, "/{i}");
            };
            let common = nl.min(nr);
            match only {
                Some(i) if i < common => {
                    let (lv, rv) = (left.at(i), right.at(i));
                    if let (Some(lv), Some(rv)) = (lv, rv) {
                        at(path, i);
                        walk(lv, rv, rest, depth + 1, path, scratch, emit);
                    }
                }
                Some(_) => {}
                None => {
                    for (i, (lv, rv)) in left.elements().zip(right.elements()).enumerate() {
                        at(path, i);
                        walk(lv, rv, rest, depth + 1, path, scratch, emit);
                    }
                }
            }
            if nl > nr && wanted(nr) {
                at(path, nr);
                let old = left.at(nr);
                for _ in nr..nl {
                    emit("remove", path, child(steps, rest, depth, old, None));
                }
            }
            if nr > nl {
                let added = right.elements().enumerate().skip(nl);
                for (i, rv) in added.filter(|(i, _)| wanted(*i)) {
                    at(path, i);
                    emit("add", path, child(steps, rest, depth, None, Some(rv)));
                }
            }
            path.truncate(len);
        }
        _ if left == right => {}
        _ => {
            let along = if steps.is_empty() {
                Along::Under
            } else {
                Along::Above {
                    depth,
                    old: Some(left),
                    new: Some(right),
                }
            };
            emit("replace", path, along);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every way of reading a node agrees with the `Value` it came from.
    fn same(node: Node<'_>, value: &Value) {
        assert_eq!(node.to_value(), *value);
        assert_eq!(node.is_null(), value.is_null());
        assert_eq!(node.as_str(), value.as_str());
        assert_eq!(node.as_i64(), value.as_i64());
        assert_eq!(node.as_u64(), value.as_u64());
        assert_eq!(node.as_bool(), value.as_bool());
        assert_eq!(node.to_string(), value.to_string());
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    same(node.get(k).expect("key present"), v);
                }
                assert!(node.get("no such key").is_none());
                assert!(node.is_object());
            }
            Value::Array(a) => {
                assert_eq!(node.len(), a.len());
                for (i, v) in a.iter().enumerate() {
                    same(node.at(i).expect("element"), v);
                }
                assert!(node.at(a.len()).is_none());
            }
            _ => assert!(node.entries().next().is_none() && node.elements().next().is_none()),
        }
    }

    #[test]
    fn parsed_documents_read_like_serde_json_values() {
        let texts = [
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","annotations":{"x/y":"1"}},"data":{"k":"v\n\"q\"\u00e9"}}"#,
            r#"[1, -2, 3.5, 1e3, 18446744073709551615, -9223372036854775808, true, false, null, "", [], {}]"#,
            r#"{"a":{"b":[{"c":[[]]}]},"esc\\aped":"\ud83d\ude00","":0}"#,
            r#""just a string""#,
            "12",
            "null",
        ];
        for t in texts {
            let value: Value = serde_json::from_str(t).unwrap();
            let doc = Doc::parse(t).unwrap();
            same(doc.root(), &value);
            same(Doc::from_value(&value).root(), &value);
            assert!(doc.root() == Doc::from_value(&value).root());
        }
    }

    #[test]
    fn repeated_keys_mean_the_last_value_as_in_serde_json() {
        let t = r#"{"a":1,"b":{"x":1},"a":2,"b":{"y":2},"c":[1],"a":3}"#;
        let value: Value = serde_json::from_str(t).unwrap();
        let doc = Doc::parse(t).unwrap();
        assert_eq!(doc.root().get("a").unwrap().as_i64(), Some(3));
        assert_eq!(doc.root().to_value(), value);
        assert!(doc.root() == Doc::from_value(&value).root());
        assert_eq!(doc.root().pointer("/b/y").unwrap().as_i64(), Some(2));
        assert!(doc.root().pointer("/b/x").is_none());
    }

    #[test]
    fn equality_is_serde_json_equality() {
        let pairs = [
            (json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})),
            (json!({"a": 1}), json!({"a": 1.0})),
            (json!([1, 2]), json!([2, 1])),
            (json!({"a": null}), json!({})),
            (json!("1"), json!(1)),
            (
                json!({"a": {"b": [1, {"c": "d"}]}}),
                json!({"a": {"b": [1, {"c": "d"}]}}),
            ),
            (json!(-0.0), json!(0.0)),
            (json!(u64::MAX), json!(u64::MAX)),
        ];
        for (a, b) in &pairs {
            let (da, db) = (
                Doc::parse(a.to_string()).unwrap(),
                Doc::parse(b.to_string()).unwrap(),
            );
            assert_eq!(da.root() == db.root(), a == b, "{a} vs {b}");
            assert!(da.root() == da.root());
        }
        // Repeated keys: equal to the object holding the last values only.
        let dup = Doc::parse(r#"{"a":1,"a":2}"#).unwrap();
        assert!(dup.root() == Doc::from_value(&json!({"a": 2})).root());
        assert!(dup.root() != Doc::from_value(&json!({"a": 1})).root());
    }

    #[test]
    fn kubernetes_objects_drop_managed_fields_and_need_object_metadata() {
        let t = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","managedFields":[{"manager":"kubectl","fieldsV1":{"f:data":{}}}],"labels":{"managedFields":"kept"}},"spec":{"managedFields":"kept"}}"#;
        let doc = Doc::parse_object(t).unwrap();
        let mut expected: Value = serde_json::from_str(t).unwrap();
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(doc.root().to_value(), expected);
        assert_eq!(doc.root().get("metadata").unwrap().len(), 2);

        for (bad, want) in [
            (r#"[1]"#, "a Kubernetes object"),
            (r#""x""#, "a Kubernetes object"),
            (r#"null"#, "a Kubernetes object"),
            (r#"{"metadata":"x"}"#, "object metadata"),
            (r#"{"metadata":[]}"#, "object metadata"),
            (r#"{"metadata":null}"#, "object metadata"),
            (r#"{"metadata":{}} trailing"#, "trailing"),
            (r#"{"metadata":{}"#, "EOF"),
        ] {
            let e = Doc::parse_object(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        // Plain parsing accepts any value and keeps everything.
        assert!(Doc::parse(r#"{"metadata":"x"}"#).is_ok());
        assert!(Doc::parse("[1] x").is_err());
    }

    /// `parse_object_prefix` reads one object from the start of the text, whatever follows,
    /// by the fast builder or (for what that declines) through serde, and counts its bytes.
    #[test]
    fn object_prefix_reads_one_object_and_counts_it() {
        let objects = [
            r#"{"metadata":{"name":"a","managedFields":[{"m":1}]},"spec":{"v":"1.2"}}"#,
            // A `\u` escape: the fast builder declines, serde reads it.
            r#"{"metadata":{"name":"\u0061"},"spec":{"v":[1,2.5e3,{"x":null}]}}"#,
            r#"{ }"#,
        ];
        for object in objects {
            for rest in ["", ",\"oldObject\":{\"a\":1}}}", "}}", " garbage"] {
                let text = format!("{object}{rest}");
                let (doc, end) = Doc::parse_object_prefix(&text).expect("valid JSON");
                assert_eq!(end, object.len(), "{text}");
                let doc = doc.expect("a Kubernetes object");
                assert_eq!(doc, Doc::parse_object(object).unwrap(), "{text}");
                assert_eq!(doc.source(), object);
            }
        }
        // Valid JSON but not a readable Kubernetes object: counted, and the reason kept.
        for (object, why) in [
            (r#"{"metadata":7}"#, "object metadata"),
            (r#"[1]"#, "Kubernetes object"),
        ] {
            let text = format!("{object},{{}}");
            let (doc, end) = Doc::parse_object_prefix(&text).expect("valid JSON");
            assert_eq!(end, object.len());
            let e = doc.expect_err("not an object").to_string();
            assert!(e.contains(why), "{e}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let (doc, end) = Doc::parse_object_prefix(&format!("{deep}}}")).expect("valid JSON");
        assert_eq!(end, deep.len());
        assert!(doc.expect_err("too deep").to_string().contains("recursion"));
        // Not JSON: the outer error.
        for bad in [r#"{"a":tru}"#, r#"{"a":1"#, "", r#"{"a" 1}"#] {
            assert!(Doc::parse_object_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pointer_agrees_with_serde_json() {
        let value = json!({
            "metadata": {"name": "a", "annotations": {"x/y": "1", "t~x": "2", "": "3"}},
            "spec": {"list": [10, 20, {"k": true}], "0": "zero"},
        });
        let doc = Doc::parse(value.to_string()).unwrap();
        for p in [
            "",
            "/",
            "/metadata",
            "/metadata/name",
            "/metadata/annotations/x~1y",
            "/metadata/annotations/t~0x",
            "/metadata/annotations/",
            "/spec/list/0",
            "/spec/list/2/k",
            "/spec/list/3",
            "/spec/list/01",
            "/spec/list/+1",
            "/spec/list/-",
            "/spec/0",
            "/missing/x",
            "metadata",
            "/metadata/name/x",
            "/spec/list/2/k/z",
        ] {
            assert_eq!(
                doc.root().pointer(p).map(Node::to_value),
                value.pointer(p).cloned(),
                "pointer {p:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(Doc::parse(deep)
            .unwrap_err()
            .to_string()
            .contains("recursion"));
    }
}
