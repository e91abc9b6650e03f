//! A minimal, strict XML reader for UPnP device descriptions and SOAP
//! bodies: elements, attributes (read and discarded), text with the five
//! predefined entities and numeric references, comments, processing
//! instructions, CDATA. No DTDs. Namespace prefixes are kept in
//! [`Element::name`]; [`Element::local_name`] drops them.
//!
//! Strict: mismatched or unclosed tags, stray `<`, unknown entities,
//! trailing content after the root, more than [`MAX_DEPTH`] levels or
//! [`MAX_NODES`] elements are errors — never a panic, never unbounded
//! memory.

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document.
pub const MAX_NODES: usize = 4096;

/// An element with its children and text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Qualified name (`s:Envelope`).
    pub name: String,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside it (entities decoded).
    pub text: String,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The input ended inside a construct.
    #[error("XML: unexpected end")]
    UnexpectedEnd,
    /// A character that cannot appear there, at a byte offset.
    #[error("XML: unexpected input at byte {0}")]
    Unexpected(usize),
    /// `</b>` closing `<a>`.
    #[error("XML: </{found}> closes <{open}>")]
    Mismatch {
        /// The open element.
        open: String,
        /// The closing tag found.
        found: String,
    },
    /// `&foo;`.
    #[error("XML: unknown entity at byte {0}")]
    Entity(usize),
    /// Nesting or element count over the limits.
    #[error("XML: document too large or too deep")]
    TooLarge,
    /// No root element.
    #[error("XML: no root element")]
    NoRoot,
}

impl Element {
    /// The name without a namespace prefix.
    pub fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    /// The first child with local name `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local_name() == name)
    }

    /// The text of the first child named `name`, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Every descendant (depth first, self included) with local name `name`.
    pub fn descendants<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.local_name() == name {
            out.push(self);
        }
        for c in &self.children {
            c.descendants(name, out);
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    nodes: usize,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

impl<'a> Parser<'a> {
    fn starts_with(&self, pat: &[u8]) -> bool {
        self.s[self.pos..].starts_with(pat)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn skip_past(&mut self, end: &[u8]) -> Result<(), XmlError> {
        let rest = &self.s[self.pos..];
        match rest.windows(end.len()).position(|w| w == end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(XmlError::UnexpectedEnd),
        }
    }

    /// Skips comments, PIs, whitespace (outside the root).
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            if self.starts_with(b"<?") {
                self.skip_past(b"?>")?;
            } else if self.starts_with(b"<!--") {
                self.skip_past(b"-->")?;
            } else if self.starts_with(b"<!") {
                return Err(XmlError::Unexpected(self.pos));
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.pos;
        while self.pos < self.s.len() && is_name_byte(self.s[self.pos]) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(if self.pos >= self.s.len() {
                XmlError::UnexpectedEnd
            } else {
                XmlError::Unexpected(self.pos)
            });
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .map(str::to_owned)
            .map_err(|_| XmlError::Unexpected(start))
    }

    fn peek(&self) -> Result<u8, XmlError> {
        self.s.get(self.pos).copied().ok_or(XmlError::UnexpectedEnd)
    }

    /// Decodes text up to `<` into `out`.
    fn text(&mut self, out: &mut String) -> Result<(), XmlError> {
        let start = self.pos;
        let end = self.s[self.pos..]
            .iter()
            .position(|&b| b == b'<')
            .map_or(self.s.len(), |i| self.pos + i);
        let raw =
            std::str::from_utf8(&self.s[start..end]).map_err(|_| XmlError::Unexpected(start))?;
        decode_entities(raw, start, out)?;
        self.pos = end;
        Ok(())
    }

    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth > MAX_DEPTH {
            return Err(XmlError::TooLarge);
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(XmlError::TooLarge);
        }
        if self.peek()? != b'<' {
            return Err(XmlError::Unexpected(self.pos));
        }
        self.pos += 1;
        let name = self.name()?;
        // Attributes.
        loop {
            self.skip_ws();
            match self.peek()? {
                b'/' => {
                    self.pos += 1;
                    if self.peek()? != b'>' {
                        return Err(XmlError::Unexpected(self.pos));
                    }
                    self.pos += 1;
                    return Ok(Element {
                        name,
                        ..Element::default()
                    });
                }
                b'>' => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    self.name()?;
                    self.skip_ws();
                    if self.peek()? != b'=' {
                        return Err(XmlError::Unexpected(self.pos));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let quote = self.peek()?;
                    if quote != b'"' && quote != b'\'' {
                        return Err(XmlError::Unexpected(self.pos));
                    }
                    self.pos += 1;
                    let close = self.s[self.pos..]
                        .iter()
                        .position(|&b| b == quote)
                        .ok_or(XmlError::UnexpectedEnd)?;
                    if self.s[self.pos..self.pos + close].contains(&b'<') {
                        return Err(XmlError::Unexpected(self.pos));
                    }
                    self.pos += close + 1;
                }
            }
        }
        let mut element = Element {
            name,
            ..Element::default()
        };
        loop {
            if self.pos >= self.s.len() {
                return Err(XmlError::UnexpectedEnd);
            }
            if self.starts_with(b"</") {
                self.pos += 2;
                let found = self.name()?;
                self.skip_ws();
                if self.peek()? != b'>' {
                    return Err(XmlError::Unexpected(self.pos));
                }
                self.pos += 1;
                if found != element.name {
                    return Err(XmlError::Mismatch {
                        open: element.name,
                        found,
                    });
                }
                return Ok(element);
            } else if self.starts_with(b"<!--") {
                self.skip_past(b"-->")?;
            } else if self.starts_with(b"<![CDATA[") {
                self.pos += 9;
                let start = self.pos;
                self.skip_past(b"]]>")?;
                let raw = std::str::from_utf8(&self.s[start..self.pos - 3])
                    .map_err(|_| XmlError::Unexpected(start))?;
                element.text.push_str(raw);
            } else if self.starts_with(b"<?") {
                self.skip_past(b"?>")?;
            } else if self.starts_with(b"<") {
                let child = self.element(depth + 1)?;
                element.children.push(child);
            } else {
                self.text(&mut element.text)?;
            }
        }
    }
}

/// Decodes the predefined entities and numeric references of `raw`.
fn decode_entities(raw: &str, offset: usize, out: &mut String) -> Result<(), XmlError> {
    let mut rest = raw;
    let mut at = offset;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let semi = after.find(';').ok_or(XmlError::Entity(at + i))?;
        let entity = &after[..semi];
        let ch = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(XmlError::Entity(at + i))?
            }
        };
        out.push(ch);
        let consumed = i + 1 + semi + 1;
        rest = &rest[consumed..];
        at += consumed;
    }
    out.push_str(rest);
    Ok(())
}

/// Parses a document into its root element.
///
/// # Errors
/// [`XmlError`] for anything outside the subset or malformed.
pub fn parse(doc: &[u8]) -> Result<Element, XmlError> {
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let mut p = Parser {
        s: doc,
        pos: 0,
        nodes: 0,
    };
    p.skip_misc()?;
    if p.pos >= p.s.len() {
        return Err(XmlError::NoRoot);
    }
    let root = p.element(0)?;
    p.skip_misc()?;
    if p.pos != p.s.len() {
        return Err(XmlError::Unexpected(p.pos));
    }
    Ok(root)
}

/// Escapes text for an element body.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_soap_body() {
        let doc = br#"<?xml version="1.0"?>
<!-- hi -->
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle='x'>
  <s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:x">
    <NewExternalIPAddress>8.8.4.4</NewExternalIPAddress>
    <Empty/><T>a &amp; b &lt;&#65;&#x42;&gt;<![CDATA[<raw>]]></T>
  </u:GetExternalIPAddressResponse></s:Body>
</s:Envelope>
"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.local_name(), "Envelope");
        let body = root.child("Body").unwrap();
        let resp = body.child("GetExternalIPAddressResponse").unwrap();
        assert_eq!(resp.child_text("NewExternalIPAddress"), Some("8.8.4.4"));
        assert_eq!(resp.child_text("Empty"), Some(""));
        assert_eq!(resp.child_text("T"), Some("a & b <AB><raw>"));
        let mut found = Vec::new();
        root.descendants("T", &mut found);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn refuses_malformed_documents() {
        for bad in [
            &b""[..],
            b"   ",
            b"<a>",
            b"<a></b>",
            b"<a><b></a></b>",
            b"<a>&bogus;</a>",
            b"<a>&amp</a>",
            b"<a x=1></a>",
            b"<a x='1></a>",
            b"<a></a><b></b>",
            b"<a></a>junk",
            b"<!DOCTYPE a><a/>",
            b"< a/>",
            b"<a/",
            b"<a><![CDATA[x</a>",
            b"<a>&#xD800;</a>",
            b"<a>\xff</a>",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 2) + &"</a>".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooLarge));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let wide = format!("<r>{}</r>", "<x/>".repeat(MAX_NODES + 1));
        assert_eq!(parse(wide.as_bytes()), Err(XmlError::TooLarge));
    }

    #[test]
    fn escape_round_trips() {
        let text = "a<b>&\"c'";
        let doc = format!("<t>{}</t>", escape(text));
        assert_eq!(parse(doc.as_bytes()).unwrap().text, text);
    }
}
