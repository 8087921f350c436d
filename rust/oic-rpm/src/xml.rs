//! Small helpers over quick-xml: attribute values and element text with entities resolved.

use std::io::BufRead;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// Returns the value of attribute `name` (qualified name as written, such as `xml:base`),
/// with entities resolved.
pub(crate) fn attribute(start: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    let Some(found) = start
        .try_get_attribute(name)
        .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    let value = found
        .normalized_value(XmlVersion::Implicit1_0)
        .map_err(|error| error.to_string())?;
    Ok(Some(value.into_owned()))
}

/// Reads the text content of the element whose start tag was just read, up to its end tag.
/// Nested elements are skipped.
pub(crate) fn text_of<R: BufRead>(reader: &mut Reader<R>) -> Result<String, String> {
    let mut text = String::new();
    let mut depth = 0_usize;
    let mut buffer = Vec::new();
    loop {
        match reader
            .read_event_into(&mut buffer)
            .map_err(|error| error.to_string())?
        {
            Event::Text(content) => text.push_str(&content.xml10_content()),
            Event::CData(content) => text.push_str(&content.xml10_content()),
            Event::GeneralRef(reference) => push_reference(&mut text, &reference)?,
            Event::Start(_) => depth += 1,
            Event::End(_) if depth == 0 => return Ok(text),
            Event::End(_) => depth -= 1,
            Event::Eof => return Err("unexpected end of the document".to_owned()),
            _ => {}
        }
        buffer.clear();
    }
}

/// Appends the character that an entity or character reference stands for.
fn push_reference(text: &mut String, reference: &BytesRef<'_>) -> Result<(), String> {
    if let Some(character) = reference
        .resolve_char_ref()
        .map_err(|error| error.to_string())?
    {
        text.push(character);
        return Ok(());
    }
    let name: &str = reference;
    let value =
        resolve_predefined_entity(name).ok_or_else(|| format!("unknown entity `&{name};`"))?;
    text.push_str(value);
    Ok(())
}
