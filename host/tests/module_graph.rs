//! The files of the host crate depend on each other in one direction only (issue 17): the
//! graph read from the `crate::` and `super::` paths of `host/src` has no circle.
//!
//! Every path counts, in `use` trees and in code (also inside string literals, where serde
//! attributes name functions); comments do not. A path names the file of its longest prefix
//! that is a module file (`crate::run::task::Caller` is `run/task.rs`, `crate::run::Session`
//! is `run/mod.rs`), and `super` is read from the inline module it is written in, so a test
//! module's `use super::*` names its own file. A folder's `mod.rs` may use the files of its
//! folder: it declares them, and they may use what it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One use of another file: where it is written and the path that names the other file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    line: usize,
    to: String,
    path: String,
}

#[test]
fn the_host_crate_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_sources(&src, &src, &mut files);
    assert!(files.contains_key("lib.rs") && files.len() > 20, "the sources are read: {:?}", files.keys());
    let circles = circles(&edges(&files));
    assert!(circles.is_empty(), "{}", report(&circles));
}

#[test]
fn a_circle_is_found_and_each_of_its_edges_listed() {
    let files = sources(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
        ("a.rs", "use crate::b::{self, Thing};\nfn f() -> b::Thing { todo!() }"),
        ("b.rs", "// crate::c::commented is no use\nuse crate::c;\n"),
        ("c.rs", "pub fn g() {\n    crate::a::f();\n}"),
    ]);
    let circles = circles(&edges(&files));
    assert_eq!(circles.len(), 1, "{circles:?}");
    let listed: Vec<(&str, usize, &str)> =
        circles[0].iter().map(|e| (e.from.as_str(), e.line, e.to.as_str())).collect();
    assert_eq!(listed, [("a.rs", 1, "b.rs"), ("b.rs", 2, "c.rs"), ("c.rs", 2, "a.rs")]);
    let text = report(&circles);
    assert!(text.contains("a.rs:1 uses crate::b::Thing (b.rs)"), "{text}");
}

#[test]
fn one_way_uses_wiring_test_modules_and_strings_are_read_as_they_are() {
    let files = sources(&[
        ("lib.rs", "pub mod run; pub mod store; pub mod units;"),
        ("run/mod.rs", "pub mod task;\nuse crate::run::task::Caller;\npub struct Session;"),
        ("run/task.rs", "use super::Session;\nuse crate::store::{local::LocalStore, Lookup};"),
        ("store/mod.rs", "pub mod local;\npub enum Lookup {}"),
        (
            "store/local.rs",
            "#[serde(deserialize_with = \"crate::units::size\")]\nstruct S;\n\
             let url = \"s3://bucket\"; // crate::run is mentioned in a comment\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::Lookup;\n}",
        ),
        ("units.rs", "pub fn size() {}"),
    ]);
    let found: BTreeSet<(String, String)> = edges(&files).into_iter().map(|e| (e.from, e.to)).collect();
    let expected = [
        ("run/task.rs", "run/mod.rs"),
        ("run/task.rs", "store/local.rs"),
        ("run/task.rs", "store/mod.rs"),
        ("store/local.rs", "store/mod.rs"),
        ("store/local.rs", "units.rs"),
    ];
    assert_eq!(found, expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
    assert!(circles(&edges(&files)).is_empty());
}

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(path, text)| (path.to_string(), text.to_string())).collect()
}

/// Every `.rs` file under `dir`, by its path relative to `src` with `/` separators.
fn read_sources(src: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_sources(src, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// What a message lists for the circles found: each circle's files, then its edges.
fn report(circles: &[Vec<Edge>]) -> String {
    let mut out = String::from("import circles between the files of host/src; make each of them go one way:\n");
    for circle in circles {
        let files: BTreeSet<&str> = circle.iter().map(|e| e.from.as_str()).collect();
        out.push_str(&format!("circle: {}\n", files.into_iter().collect::<Vec<_>>().join(", ")));
        for e in circle {
            out.push_str(&format!("  {}:{} uses {} ({})\n", e.from, e.line, e.path, e.to));
        }
    }
    out
}

/// The module path of a file: `run/task.rs` is `run::task`, `run/mod.rs` is `run`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file of the longest prefix of `module` that is a module file.
fn file_of<'f>(files: &'f BTreeMap<String, String>, module: &[String]) -> Option<&'f str> {
    (1..=module.len()).rev().find_map(|n| {
        let name = module[..n].join("/");
        [format!("{name}.rs"), format!("{name}/mod.rs")]
            .into_iter()
            .find_map(|candidate| files.get_key_value(&candidate).map(|(k, _)| k.as_str()))
    })
}

/// Every use of another file, at most one per (file, line, file used).
fn edges(files: &BTreeMap<String, String>) -> Vec<Edge> {
    let mut edges = BTreeSet::new();
    for (file, text) in files {
        let folder = file.strip_suffix("mod.rs");
        for (line, path, inline) in paths(text) {
            let mut module = module_of(file);
            module.extend(inline);
            let mut segments = path.iter();
            let mut target = match segments.next().map(String::as_str) {
                Some("crate") => Vec::new(),
                _ => {
                    module.pop();
                    module
                }
            };
            for segment in segments {
                match segment.as_str() {
                    "super" => {
                        target.pop();
                    }
                    "self" => {}
                    name => target.push(name.to_owned()),
                }
            }
            let Some(to) = file_of(files, &target) else { continue };
            if to == file || folder.is_some_and(|folder| to.starts_with(folder)) {
                continue;
            }
            edges.insert(Edge { from: file.clone(), line, to: to.to_owned(), path: path.join("::") });
        }
    }
    let mut seen = BTreeSet::new();
    edges.into_iter().filter(|e| seen.insert((e.from.clone(), e.line, e.to.clone()))).collect()
}

/// The edges inside each strongly connected set of more than one file (Tarjan).
fn circles(edges: &[Edge]) -> Vec<Vec<Edge>> {
    struct Walk<'e> {
        next: BTreeMap<&'e str, BTreeSet<&'e str>>,
        index: BTreeMap<&'e str, usize>,
        low: BTreeMap<&'e str, usize>,
        stack: Vec<&'e str>,
        sets: Vec<BTreeSet<&'e str>>,
    }
    fn visit<'e>(walk: &mut Walk<'e>, v: &'e str) {
        let n = walk.index.len();
        walk.index.insert(v, n);
        walk.low.insert(v, n);
        walk.stack.push(v);
        for w in walk.next.get(v).cloned().unwrap_or_default() {
            if !walk.index.contains_key(w) {
                visit(walk, w);
                let low = walk.low[v].min(walk.low[w]);
                walk.low.insert(v, low);
            } else if walk.stack.contains(&w) {
                let low = walk.low[v].min(walk.index[w]);
                walk.low.insert(v, low);
            }
        }
        if walk.low[v] == walk.index[v] {
            let mut set = BTreeSet::new();
            while let Some(w) = walk.stack.pop() {
                set.insert(w);
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                walk.sets.push(set);
            }
        }
    }
    let mut walk = Walk {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        sets: Vec::new(),
    };
    for e in edges {
        walk.next.entry(e.from.as_str()).or_default().insert(e.to.as_str());
    }
    let starts: Vec<&str> = walk.next.keys().copied().collect();
    for v in starts {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.sets
        .iter()
        .map(|set| {
            edges.iter().filter(|e| set.contains(e.from.as_str()) && set.contains(e.to.as_str())).cloned().collect()
        })
        .collect()
}

/// A token of Rust source: an identifier or keyword, `::`, another punctuation character,
/// or the contents of a string literal; comments are dropped.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Path,
    Punct(char),
    Str(String),
}

fn tokens(text: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' || (matches!(c, 'r' | 'b') && matches!(at(i + 1), '"' | '#' | 'r')) {
            // A string, byte string or raw string: `"…"`, `b"…"`, `r#"…"#`, `br"…"`.
            let start_line = line;
            let mut j = i;
            while matches!(at(j), 'r' | 'b') {
                j += 1;
            }
            let raw = chars[i..j].contains(&'r');
            let hashes = (j..).take_while(|&k| at(k) == '#').count();
            j += hashes;
            if at(j) != '"' {
                // An identifier such as `r#type` or `bytes`, not a string.
                let end = (i..).find(|&k| !(at(k).is_alphanumeric() || at(k) == '_' || at(k) == '#')).unwrap();
                out.push((line, Token::Ident(chars[i..end].iter().collect::<String>().replace('#', ""))));
                i = end;
                continue;
            }
            j += 1;
            let mut contents = String::new();
            loop {
                match at(j) {
                    '\0' => break,
                    '\\' if !raw => {
                        contents.push(at(j + 1));
                        j += 2;
                    }
                    '"' if (1..=hashes).all(|h| at(j + h) == '#') => {
                        j += 1 + hashes;
                        break;
                    }
                    other => {
                        line += usize::from(other == '\n');
                        contents.push(other);
                        j += 1;
                    }
                }
            }
            out.push((start_line, Token::Str(contents)));
            i = j;
        } else if c == '\'' {
            // A character literal (`'a'`, `'\n'`), or the quote of a lifetime.
            if at(i + 1) == '\\' {
                i = (i + 2..).find(|&k| at(k) == '\'' || at(k) == '\0').unwrap() + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let end = (i..).find(|&k| !(at(k).is_alphanumeric() || at(k) == '_')).unwrap();
            out.push((line, Token::Ident(chars[i..end].iter().collect())));
            i = end;
        } else if c == ':' && at(i + 1) == ':' {
            out.push((line, Token::Path));
            i += 2;
        } else {
            out.push((line, Token::Punct(c)));
            i += 1;
        }
    }
    out
}

/// Every `crate::`/`super::` path in `text`: its line, its segments, and the inline modules
/// (`mod tests { … }`) it is written in.
fn paths(text: &str) -> Vec<(usize, Vec<String>, Vec<String>)> {
    let tokens = tokens(text);
    let ident = |i: usize| match tokens.get(i) {
        Some((_, Token::Ident(name))) => Some(name.as_str()),
        _ => None,
    };
    let is = |i: usize, token: Token| tokens.get(i).is_some_and(|(_, t)| *t == token);
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let here: Vec<String> = inline.iter().map(|(name, _)| name.clone()).collect();
        let line = tokens[i].0;
        match &tokens[i].1 {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Token::Ident(word) if word == "mod" && ident(i + 1).is_some() && is(i + 2, Token::Punct('{')) => {
                inline.push((ident(i + 1).unwrap().to_owned(), depth + 1));
            }
            Token::Ident(word) if word == "use" => {
                let end = (i..tokens.len()).find(|&k| is(k, Token::Punct(';'))).unwrap_or(tokens.len());
                for path in use_tree(&tokens[i + 1..end], Vec::new()) {
                    if matches!(path.first().map(String::as_str), Some("crate" | "super")) {
                        out.push((line, path, here.clone()));
                    }
                }
                i = end;
                continue;
            }
            Token::Ident(word) if (word == "crate" || word == "super") && is(i + 1, Token::Path) => {
                let mut path = vec![word.clone()];
                let mut k = i + 1;
                while is(k, Token::Path) && ident(k + 1).is_some() {
                    path.push(ident(k + 1).unwrap().to_owned());
                    k += 2;
                }
                out.push((line, path, here));
                i = k;
                continue;
            }
            Token::Str(contents) => {
                for found in contents.match_indices("crate::").chain(contents.match_indices("super::")) {
                    let rest = &contents[found.0..];
                    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
                    let path = rest[..end].split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
                    out.push((line, path, here.clone()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The full paths a `use` tree names, each prefixed with `prefix`.
fn use_tree(tokens: &[(usize, Token)], prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut path = prefix.clone();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].1 {
            Token::Ident(word) if word == "as" => i += 1,
            Token::Ident(name) => path.push(name.clone()),
            Token::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for k in i..tokens.len() {
                    match tokens[k].1 {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') | Token::Punct(',') if depth == 1 => {
                            out.extend(use_tree(&tokens[start..k], path.clone()));
                            start = k + 1;
                            if tokens[k].1 == Token::Punct('}') {
                                depth = 0;
                            }
                        }
                        Token::Punct('}') => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        i = k;
                        break;
                    }
                }
                path = prefix.clone();
            }
            Token::Punct(',') => {
                out.push(std::mem::replace(&mut path, prefix.clone()));
            }
            _ => {}
        }
        i += 1;
    }
    if path.len() > prefix.len() {
        out.push(path);
    }
    out
}
