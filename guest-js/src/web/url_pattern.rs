//! Natives of `url_pattern.js`: the URL Pattern Standard's parsing and input
//! processing (the `urlpattern` crate, Deno's implementation). Matching is
//! done in JavaScript with the regular expressions the crate generates, as
//! the standard says (ECMAScript syntax, the `u` flag), so a pattern's own
//! regexp groups behave as they do in a browser.

use javy::quickjs::{Ctx, Exception, Result};
use urlpattern::quirks::{self, StringOrInit};
use urlpattern::regexp::RegExp;
use urlpattern::{Error, RegexSyntax, UrlPatternInit, UrlPatternOptions};

/// A generated regular expression, kept as ECMAScript source for
/// `url_pattern.js` to compile. The crate runs one itself only to ask
/// whether a protocol pattern matches a special scheme (`http`, `ws`, …);
/// that uses `regex-lite`, whose syntax covers what such patterns use —
/// the full `regex` crate the crate's own matcher uses would add ~1.3 MB of
/// code and Unicode tables to every instance's image.
struct EcmaSource {
    pattern: String,
    ignore_case: bool,
}

impl RegExp for EcmaSource {
    fn syntax() -> RegexSyntax {
        RegexSyntax::EcmaScript
    }

    /// Accepts any source: `url_pattern.js` compiles every component's
    /// expression with the engine's `RegExp` and reports the ones it refuses.
    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> std::result::Result<Self, ()> {
        Ok(EcmaSource {
            pattern: pattern.to_owned(),
            ignore_case: flags.contains('i'),
        })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let regex = regex_lite::RegexBuilder::new(&self.pattern)
            .case_insensitive(self.ignore_case)
            .build()
            .ok()?;
        let captures = regex.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|c| c.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        &self.pattern
    }
}

/// The standard's "process a URLPatternInit" for a constructor's input:
/// a pattern string is parsed against `base_url`, an init takes its own.
fn construct_input(
    input: StringOrInit<'_>,
    base_url: Option<&str>,
) -> std::result::Result<UrlPatternInit, Error> {
    let parse_url = |url: &str| url::Url::parse(url).map_err(Error::Url);
    match input {
        StringOrInit::String(pattern) => UrlPatternInit::parse_constructor_string::<EcmaSource>(
            &pattern,
            base_url.map(parse_url).transpose()?,
        ),
        StringOrInit::Init(_) if base_url.is_some() => Err(Error::BaseUrlWithInit),
        StringOrInit::Init(init) => Ok(UrlPatternInit {
            protocol: init.protocol,
            username: init.username,
            password: init.password,
            hostname: init.hostname,
            port: init.port,
            pathname: init.pathname,
            search: init.search,
            hash: init.hash,
            base_url: init.base_url.as_deref().map(parse_url).transpose()?,
        }),
    }
}

/// The input of a constructor or of `test`/`exec`, as `url_pattern.js`
/// sends it: a JSON string (a pattern string) or object (a URLPatternInit).
fn input(ctx: &Ctx<'_>, json: &str) -> Result<StringOrInit<'static>> {
    serde_json::from_str(json)
        .map_err(|e| Exception::throw_type(ctx, &format!("Invalid URLPattern input: {e}")))
}

/// `urlPatternParse(inputJson, baseURL?, ignoreCase)`: the compiled
/// pattern, one list per component in the standard's order —
/// `[patternString, regexpString, ...groupNames]` — then `["true"]` or
/// `["false"]` for whether it has regexp groups; or a TypeError. (Lists of
/// strings, not JSON: parsing JSON was a fifth of a construction's time.)
pub(super) fn parse(
    ctx: Ctx<'_>,
    input_json: String,
    base_url: Option<String>,
    ignore_case: bool,
) -> Result<Vec<Vec<String>>> {
    let init = construct_input(input(&ctx, &input_json)?, base_url.as_deref()).map_err(|e| {
        Exception::throw_type(&ctx, &format!("Failed to construct 'URLPattern': {e}"))
    })?;
    let options = UrlPatternOptions {
        regex_syntax: RegexSyntax::EcmaScript,
        ignore_case,
    };
    let pattern = quirks::parse_pattern::<EcmaSource>(init, options).map_err(|e| {
        Exception::throw_type(&ctx, &format!("Failed to construct 'URLPattern': {e}"))
    })?;
    let components = [
        pattern.protocol,
        pattern.username,
        pattern.password,
        pattern.hostname,
        pattern.port,
        pattern.pathname,
        pattern.search,
        pattern.hash,
    ];
    let mut lists: Vec<Vec<String>> = components
        .into_iter()
        .map(|c| {
            let mut list = vec![c.pattern_string, c.regexp_string];
            list.extend(c.group_name_list);
            list
        })
        .collect();
    lists.push(vec![pattern.has_regexp_groups.to_string()]);
    Ok(lists)
}

/// `urlPatternInput(inputJson, baseURL?)`: the eight components to match
/// (in the standard's order), `undefined` when the input is not a URL (no
/// match), or a TypeError (a base URL beside an init).
pub(super) fn match_input(
    ctx: Ctx<'_>,
    input_json: String,
    base_url: Option<String>,
) -> Result<Option<Vec<String>>> {
    let processed = quirks::process_match_input(input(&ctx, &input_json)?, base_url.as_deref())
        .map_err(|e| Exception::throw_type(&ctx, &format!("URLPattern: {e}")))?;
    let Some(components) = processed.and_then(|(input, _)| quirks::parse_match_input(input)) else {
        return Ok(None);
    };
    Ok(Some(vec![
        components.protocol,
        components.username,
        components.password,
        components.hostname,
        components.port,
        components.pathname,
        components.search,
        components.hash,
    ]))
}
