//! Natives of `url.js`: WHATWG URL parsing and setters (the `url` crate)
//! and application/x-www-form-urlencoded (the `form_urlencoded` crate).

use url::{quirks, Url};

/// The components `url.js` reads, in its index order.
fn components(url: &Url) -> Vec<String> {
    vec![
        quirks::href(url).to_string(),
        quirks::origin(url),
        quirks::protocol(url).to_string(),
        quirks::username(url).to_string(),
        quirks::password(url).to_string(),
        quirks::host(url).to_string(),
        quirks::hostname(url).to_string(),
        quirks::port(url).to_string(),
        quirks::pathname(url).to_string(),
        quirks::search(url).to_string(),
        quirks::hash(url).to_string(),
    ]
}

/// `urlParse(input, base?)`: the components, or `undefined` for a failure.
pub(super) fn parse(input: String, base: Option<String>) -> Option<Vec<String>> {
    let base = match base {
        Some(base) => Some(Url::parse(&base).ok()?),
        None => None,
    };
    Url::options()
        .base_url(base.as_ref())
        .parse(&input)
        .ok()
        .map(|url| components(&url))
}

/// `urlSet(href, setter, value)`: the components after the setter ran
/// (setters ignore values they cannot use, as the standard says), or
/// `undefined` when `href` itself does not parse.
pub(super) fn set(href: String, setter: String, value: String) -> Option<Vec<String>> {
    let mut url = Url::parse(&href).ok()?;
    let _ = match setter.as_str() {
        "protocol" => quirks::set_protocol(&mut url, &value),
        "username" => quirks::set_username(&mut url, &value),
        "password" => quirks::set_password(&mut url, &value),
        "host" => quirks::set_host(&mut url, &value),
        "hostname" => quirks::set_hostname(&mut url, &value),
        "port" => quirks::set_port(&mut url, &value),
        "pathname" => {
            quirks::set_pathname(&mut url, &value);
            Ok(())
        }
        "search" => {
            quirks::set_search(&mut url, &value);
            Ok(())
        }
        "hash" => {
            quirks::set_hash(&mut url, &value);
            Ok(())
        }
        _ => return None,
    };
    Some(components(&url))
}

/// `formDecode(text)`: the name/value pairs of urlencoded text.
pub(super) fn form_decode(text: String) -> Vec<Vec<String>> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(name, value)| vec![name.into_owned(), value.into_owned()])
        .collect()
}

/// `formEncode(pairs)`: urlencoded text of name/value pairs.
pub(super) fn form_encode(pairs: Vec<Vec<String>>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for pair in &pairs {
        if let [name, value] = pair.as_slice() {
            serializer.append_pair(name, value);
        }
    }
    serializer.finish()
}
