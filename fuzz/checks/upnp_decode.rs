//! The `upnp_decode` check: what an IGD or anything on the LAN may send —
//! SSDP answers, HTTP responses (lengths, chunked bodies), XML documents,
//! device descriptions and SOAP answers — on arbitrary bytes.
//!
//! Properties: nothing panics; a parsed HTTP response never has a body
//! larger than the input; an XML document that parses re-serialises (text
//! escaped) to one that parses to the same texts; a description's control
//! URL is an `http://` URL; a SOAP answer yields arguments or a typed
//! fault, never both.

use net::mesh::traversal::portmap::http::{self, Url};
use net::mesh::traversal::portmap::{upnp, xml};

fn serialise(e: &xml::Element, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    out.push('>');
    out.push_str(&xml::escape(&e.text));
    for c in &e.children {
        serialise(c, out);
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

fn texts(e: &xml::Element, out: &mut Vec<String>) {
    out.push(e.text.clone());
    for c in &e.children {
        texts(c, out);
    }
}

/// Panics when `data` breaks a property above.
pub fn check(data: &[u8]) {
    let _ = upnp::parse_ssdp_response(data);
    for eof in [false, true] {
        if let Ok(Some(r)) = http::parse_response(data, eof) {
            assert!(r.body.len() <= data.len());
        }
    }
    if let Ok(root) = xml::parse(data) {
        let mut doc = String::new();
        serialise(&root, &mut doc);
        let again = xml::parse(doc.as_bytes()).expect("re-serialised XML parses");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        texts(&root, &mut a);
        texts(&again, &mut b);
        assert_eq!(a, b);
    }
    let location = Url::parse("http://192.168.1.1:5000/rootDesc.xml").expect("a URL");
    if let Ok(service) = upnp::parse_description(data, &location) {
        assert!(upnp::SERVICE_TYPES.contains(&service.service_type.as_str()));
        assert!(service.control_url.path.starts_with('/'));
    }
    for status in [200, 500] {
        match upnp::parse_soap_response(status, data, "AddPortMapping") {
            Ok(_) => assert_eq!(status, 200),
            Err(upnp::UpnpError::Fault { description, .. }) => {
                assert!(description.chars().count() <= 200)
            }
            Err(_) => {}
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(url) = Url::parse(text) {
            assert!(url.path.starts_with('/'));
        }
        let _ = location.join(text);
    }
}
