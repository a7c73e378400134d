//! HTML for `cachehost ui`: escaping (every value shown goes through [`esc`], so a task result
//! holding `<script>` is text) and the page frame around each page.

use std::fmt::Write as _;

/// `text` with `& < > " '` replaced by entities: safe in element content and in quoted
/// attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` encoded for one component of a URL query or path (RFC 3986 unreserved kept).
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// A JSON value, pretty-printed and escaped, in a `<pre>`.
pub fn json_block(value: &serde_json::Value) -> String {
    format!("<pre class=\"json\">{}</pre>", esc(&serde_json::to_string_pretty(value).unwrap_or_default()))
}

/// Which page of the navigation bar is open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The runs list and run pages.
    Runs,
    /// The cache pages.
    Cache,
    /// The stats page.
    Stats,
}

/// A whole page: `title` (escaped here) and `body` (already HTML).
pub fn page(nav: Nav, title: &str, body: &str) -> String {
    let link = |which: Nav, href: &str, label: &str| {
        let current = if which == nav { " class=\"current\"" } else { "" };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · cachehost</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"stylesheet\" href=\"/assets/style.css\">\
         <script src=\"/assets/app.js\" defer></script></head><body><header><span class=\"brand\">cachehost</span>\
         <nav>{}{}{}</nav></header><main>{body}</main></body></html>\n",
        esc(title),
        link(Nav::Runs, "/", "Runs"),
        link(Nav::Cache, "/cache", "Cache"),
        link(Nav::Stats, "/stats", "Stats"),
    )
}

/// The CSS class of a state, coloured as Prefect colours it.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "Completed" => "s-completed",
        "Cached" => "s-cached",
        "Failed" => "s-failed",
        "TimedOut" => "s-timedout",
        "Crashed" => "s-crashed",
        "Running" => "s-running",
        _ => "s-other",
    }
}

/// A state as a coloured badge.
pub fn state_badge(state: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", state_class(state), esc(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_becomes_text() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let block = json_block(&serde_json::json!("</pre><script>"));
        assert!(!block.contains("<script>") && block.contains("&lt;/pre&gt;&lt;script&gt;"), "{block}");
    }

    #[test]
    fn url_components_are_percent_encoded() {
        assert_eq!(url("a b/c?d=&é"), "a%20b%2Fc%3Fd%3D%26%C3%A9");
    }
}
