//! S3 XML → `serde_json::Value`: elements become objects keyed by local name (namespaces and
//! attributes dropped), repeated children become lists, leaf text becomes a string, and an
//! empty element (`<Filter/>`) becomes `""`.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

/// Nesting limit; lifecycle documents are 4–5 levels deep.
const MAX_DEPTH: usize = 64;

struct Frame {
    name: String,
    children: Map<String, Value>,
    text: String,
}

fn insert(map: &mut Map<String, Value>, name: String, v: Value) {
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(v),
        Some(existing) => {
            let first = std::mem::replace(existing, Value::Null);
            *existing = Value::Array(vec![first, v]);
        }
        None => {
            map.insert(name, v);
        }
    }
}

fn finish(frame: Frame) -> Value {
    if frame.children.is_empty() {
        Value::String(frame.text.trim().to_string())
    } else {
        Value::Object(frame.children)
    }
}

/// Convert an XML document to `{"<root>": value}`. Errors describe the XML problem.
pub(crate) fn to_value(text: &str) -> Result<Value, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                if root.is_some() {
                    return Err("content after the root element".to_string());
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Frame {
                    name,
                    children: Map::new(),
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some(parent) => {
                        insert(&mut parent.children, name, Value::String(String::new()))
                    }
                    None => root = Some((name, Value::String(String::new()))),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| format!("bad text: {e}"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or("unbalanced end tag")?;
                let name = frame.name.clone();
                let v = finish(frame);
                match stack.last_mut() {
                    Some(parent) => insert(&mut parent.children, name, v),
                    None => root = Some((name, v)),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("unexpected end of input inside an element".to_string());
    }
    let (name, v) = root.ok_or("no root element")?;
    let mut m = Map::new();
    m.insert(name, v);
    Ok(Value::Object(m))
}
