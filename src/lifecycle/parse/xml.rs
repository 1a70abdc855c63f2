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
    // No per-event trimming: text arrives in pieces around each `&...;` reference, and
    // trimming the pieces would eat the spaces next to them. A leaf's whole text is trimmed
    // once in `finish`; whitespace between elements is dropped there too.
    let mut reader = Reader::from_str(text);
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
                let name = e.local_name().as_ref().to_string();
                stack.push(Frame {
                    name,
                    children: Map::new(),
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                match stack.last_mut() {
                    Some(parent) => {
                        insert(&mut parent.children, name, Value::String(String::new()))
                    }
                    None => root = Some((name, Value::String(String::new()))),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            // `&amp;`, `&#38;`...: text arrives in pieces around each reference.
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_string()
                    }
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
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

#[cfg(test)]
mod tests {
    use super::to_value;
    use serde_json::json;

    #[test]
    fn references_and_cdata_are_resolved_into_the_text() {
        let v = to_value(
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule>\
             <ID>a &amp; b&#47;c&#x2F;&lt;d&gt;</ID><Filter><Prefix><![CDATA[x/y&z]]></Prefix></Filter>\
             <Status>Enabled</Status></Rule></LifecycleConfiguration>",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"LifecycleConfiguration": {"Rule": {
                "ID": "a & b/c/<d>", "Filter": {"Prefix": "x/y&z"}, "Status": "Enabled"}}})
        );
    }

    #[test]
    fn unknown_entities_and_bad_char_refs_are_errors() {
        let e = to_value("<Rule><ID>&nbsp;</ID></Rule>").unwrap_err();
        assert!(e.contains("unknown entity &nbsp;"), "{e}");
        let e = to_value("<Rule><ID>&#0;</ID></Rule>").unwrap_err();
        assert!(e.contains("bad character reference"), "{e}");
    }
}
