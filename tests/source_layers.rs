//! The layering rules of the house, read from the source itself (no build, no network):
//!
//! 1. No file outside `src/api` and `src/app` imports `crate::api`.
//! 2. `src/service` and `src/adapters` never name `tonic` (or `tonic_*`).
//! 3. Vendor names (ack, tke, rancher, harbor, acr, tcr — as a word of an identifier, `AckProvider`,
//!    `tke_endpoint`, or of a string, `"rancher"`) appear only under `src/adapters`, in the wiring
//!    (`src/app`) and in the settings (`src/config.rs` and `src/config/`, whose keys and flags name them).
//! 4. No import circle between files.
//!
//! Comments are not code and `#[cfg(test)]` modules are not the product, so both are skipped.
//! Places that still break a rule while the restructuring is under way are listed in the
//! `KNOWN_*` constants below: the test fails on anything new, and also on a listed place that no
//! longer breaks the rule, so the lists only shrink. Empty them to make the rules strict.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Files (relative to the repository) that still import `crate::api`.
const KNOWN_API_IMPORTS: &[&str] = &[];
/// Files under `src/service` or `src/adapters` that still name tonic.
const KNOWN_TONIC_USERS: &[&str] = &[];
/// Files outside the adapters, the wiring and the settings that still name a vendor.
const KNOWN_VENDOR_NAMES: &[&str] = &[];
/// Import circles still there, each as its files (sorted).
const KNOWN_CYCLES: &[&[&str]] = &[];

const VENDORS: [&str; 6] = ["ack", "tke", "rancher", "harbor", "acr", "tcr"];

// ---- the rules -------------------------------------------------------------------------------

#[test]
fn only_the_transport_and_the_wiring_import_the_api() {
    let offenders: Vec<String> = sources()
        .iter()
        .filter(|f| !f.under(&["src/api/", "src/app/"]))
        .filter(|f| {
            f.paths
                .iter()
                .any(|p| p.first().map(String::as_str) == Some("api"))
        })
        .map(|f| f.rel.clone())
        .collect();
    check(
        "files outside src/api and src/app that import crate::api",
        offenders,
        KNOWN_API_IMPORTS,
    );
}

#[test]
fn use_cases_and_adapters_do_not_use_tonic() {
    let offenders: Vec<String> = sources()
        .iter()
        .filter(|f| f.under(&["src/service/", "src/adapters/"]))
        .filter(|f| f.idents().any(|i| i == "tonic" || i.starts_with("tonic_")))
        .map(|f| f.rel.clone())
        .collect();
    check(
        "files in src/service or src/adapters that use tonic",
        offenders,
        KNOWN_TONIC_USERS,
    );
}

#[test]
fn vendor_names_stay_in_the_adapters_and_the_wiring() {
    let mut offenders = Vec::new();
    for file in sources() {
        if file.under(&["src/adapters/", "src/app/", "src/config.rs", "src/config/"]) {
            continue;
        }
        let mut found = BTreeSet::new();
        for token in &file.tokens {
            let (Token::Ident(text) | Token::Str(text)) = token else {
                continue;
            };
            if let Some(word) = words(text).find(|w| VENDORS.contains(&w.as_str())) {
                found.insert(match token {
                    Token::Str(_) => format!("\"{word}\""),
                    _ => text.clone(),
                });
            }
        }
        if !found.is_empty() {
            eprintln!(
                "{}: {}",
                file.rel,
                found.into_iter().collect::<Vec<_>>().join(", ")
            );
            offenders.push(file.rel.clone());
        }
    }
    check(
        "files outside src/adapters, src/app and src/config that name a vendor",
        offenders,
        KNOWN_VENDOR_NAMES,
    );
}

#[test]
fn no_import_circle_between_files() {
    let files = sources();
    let by_module: BTreeMap<&[String], &Source> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    // An edge from a file to the file of the longest module prefix of each path it names. A
    // module naming its own children (`mod.rs` re-exporting them) is composition, not an import.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for file in &files {
        let out = edges.entry(file.rel.as_str()).or_default();
        for path in &file.paths {
            let target = (1..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]))
                .filter(|t| !t.module.starts_with(&file.module));
            if let Some(target) = target {
                out.insert(target.rel.as_str());
            }
        }
    }
    let cycles: Vec<String> = strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.join(" <-> "))
        .collect();
    let known: Vec<String> = KNOWN_CYCLES.iter().map(|c| c.join(" <-> ")).collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    check("import circles between files", cycles, &known);
}

/// The lexer and the path reader this test stands on, on small inputs whose answers are known.
#[test]
fn the_reader_sees_what_it_should() {
    let text = r##"
        //! crate::api in a comment is not an import; nor is "ack" here.
        use crate::{api::status, service::{self, clusters::Clusters as C}, kube::*};
        use super::sibling::Thing;
        /* crate::api::hidden */
        fn f() { let _ = crate::store::Store::open(r#"tke"#); let c = '"'; let _l: &'static str = "x"; }
        #[cfg(test)]
        mod tests { use crate::api::test_only; const V: &str = "rancher"; }
        mod inner { use super::super::up; }
    "##;
    let file = Source::parse("src/a/b.rs", text);
    let paths: BTreeSet<String> = file.paths.iter().map(|p| p.join("::")).collect();
    let expected: BTreeSet<String> = [
        "api::status",
        "service",
        "service::clusters::Clusters",
        "kube",
        "a::sibling::Thing",
        "store::Store::open",
        "a::up",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);
    let strings: Vec<&str> = file
        .tokens
        .iter()
        .filter_map(|t| match t {
            Token::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(strings, ["tke", "x"], "comments and test modules skipped");
    assert_eq!(
        words("AckProvider").collect::<Vec<_>>(),
        ["ack", "provider"]
    );
    assert_eq!(
        words("tke_endpoint").collect::<Vec<_>>(),
        ["tke", "endpoint"]
    );
    assert_eq!(
        words("Alibaba Cloud ACK").collect::<Vec<_>>(),
        ["alibaba", "cloud", "ack"]
    );
    assert!(!words("backoff_tracker").any(|w| VENDORS.contains(&w.as_str())));
    let edges: BTreeMap<&str, BTreeSet<&str>> = [
        ("a", BTreeSet::from(["b"])),
        ("b", BTreeSet::from(["c"])),
        ("c", BTreeSet::from(["a"])),
        ("d", BTreeSet::from(["a"])),
    ]
    .into();
    assert_eq!(strongly_connected(&edges), [vec!["a", "b", "c"], vec!["d"]]);
}

/// Fails on offenders not in `known`, and on known ones that are fixed (so the list shrinks).
fn check(what: &str, found: Vec<String>, known: &[&str]) {
    let new: Vec<&String> = found
        .iter()
        .filter(|f| !known.contains(&f.as_str()))
        .collect();
    let fixed: Vec<&&str> = known
        .iter()
        .filter(|k| !found.iter().any(|f| f == *k))
        .collect();
    for f in &found {
        eprintln!("{what}: {f}");
    }
    assert!(new.is_empty(), "{what}: {new:#?}");
    assert!(
        fixed.is_empty(),
        "{what}: fixed, remove them from the known list: {fixed:#?}"
    );
}

// ---- reading the source -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

/// One source file: its tokens outside comments and test modules, and every path it names that
/// starts at `crate`, `self` or `super`, resolved to segments below the crate root.
struct Source {
    rel: String,
    module: Vec<String>,
    tokens: Vec<Token>,
    paths: Vec<Vec<String>>,
}

impl Source {
    fn parse(rel: &str, text: &str) -> Source {
        let module = module_of(rel);
        let tokens = skip_test_modules(lex(text));
        let paths = paths_in(&tokens, &module);
        Source {
            rel: rel.to_string(),
            module,
            tokens,
            paths,
        }
    }

    fn under(&self, places: &[&str]) -> bool {
        places.iter().any(|p| self.rel.starts_with(p))
    }

    fn idents(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match t {
            Token::Ident(i) => Some(i.as_str()),
            _ => None,
        })
    }
}

/// Every `.rs` file of the library under `src/` (not `main.rs`, the binary's own crate).
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path: PathBuf = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel != "src/main.rs" {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    files.push(Source::parse(&rel, &text));
                }
            }
        }
    }
    assert!(
        files.len() > 50,
        "read only {} files: wrong directory?",
        files.len()
    );
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

/// `src/lib.rs` → [], `src/a/mod.rs` → [a], `src/a/b.rs` → [a, b].
fn module_of(rel: &str) -> Vec<String> {
    let inner = rel.trim_start_matches("src/").trim_end_matches(".rs");
    let mut segments: Vec<String> = inner.split('/').map(String::from).collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
        segments.pop();
    }
    segments
}

/// Identifiers, string contents and punctuation; comments dropped; lifetimes and char literals
/// told apart; numbers and other literals dropped.
fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some()) {
            let (content, end) = string_at(&chars, i);
            tokens.push(Token::Str(content));
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '"') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // b"..." and r"..." were handled above; a prefix like br"" lands here only as b.
            tokens.push(Token::Ident(word.trim_start_matches("r#").to_string()));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    tokens
}

/// At `r"`, `r#"`, `br"`, `b"`: the index of the opening quote and the number of hashes.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    // An identifier that merely starts with r or b (`return`, `bytes`) is not a string.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
        if chars.get(j) == Some(&'"') {
            return Some((j, 0));
        }
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((j + hashes, hashes))
}

/// The content of the string literal starting at `i`, and the index after it.
fn string_at(chars: &[char], i: usize) -> (String, usize) {
    let (quote, hashes, raw) = match raw_string_start(chars, i) {
        Some((q, h)) => (q, h, chars[q - 1 - h] == 'r' || h > 0),
        None => (i, 0, false),
    };
    let mut j = quote + 1;
    let mut content = String::new();
    while j < chars.len() {
        if !raw && chars[j] == '\\' {
            content.push(chars.get(j + 1).copied().unwrap_or(' '));
            j += 2;
            continue;
        }
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return (content, j + 1 + hashes);
        }
        content.push(chars[j]);
        j += 1;
    }
    (content, j)
}

/// Drops `#[cfg(test)] mod name { ... }` (and `#[cfg(test)] mod name;`).
fn skip_test_modules(tokens: Vec<Token>) -> Vec<Token> {
    let attribute = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_test_mod = tokens[i..].starts_with(&attribute)
            && tokens.get(i + attribute.len()) == Some(&Token::Ident("mod".into()));
        if !is_test_mod {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += attribute.len() + 2; // `mod name`
        if tokens.get(i) == Some(&Token::Punct('{')) {
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        } else {
            i += 1; // `;`
        }
    }
    out
}

/// Every path starting at `crate`, `self` or `super` (use trees expanded), resolved against the
/// file's module and the inline modules it sits in.
fn paths_in(tokens: &[Token], module: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new(); // (name, brace depth at its `{`)
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(kw) if kw == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Punct('{'))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Token::Ident(start) if matches!(start.as_str(), "crate" | "self" | "super") => {
                let after_dollar = i > 0 && tokens[i - 1] == Token::Punct('$');
                let visibility = i > 0 && tokens[i - 1] == Token::Ident("in".into());
                if is_sep(tokens, i + 1) && !after_dollar && !visibility {
                    let here: Vec<String> = module
                        .iter()
                        .cloned()
                        .chain(inline.iter().map(|(n, _)| n.clone()))
                        .collect();
                    let (trees, end) = use_tree(tokens, i);
                    for tree in trees {
                        if let Some(resolved) = resolve(&here, &tree) {
                            paths.push(resolved);
                        }
                    }
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    paths
}

fn is_sep(tokens: &[Token], i: usize) -> bool {
    tokens.get(i) == Some(&Token::Punct(':')) && tokens.get(i + 1) == Some(&Token::Punct(':'))
}

/// A path or use tree from `i`: its expanded paths (segments as written) and the index after it.
fn use_tree(tokens: &[Token], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(i) {
            Some(Token::Ident(segment)) => {
                prefix.push(segment.clone());
                i += 1;
                if tokens.get(i) == Some(&Token::Ident("as".into())) {
                    i += 2; // `as name`
                    return (vec![prefix], i);
                }
                if !is_sep(tokens, i) {
                    return (vec![prefix], i);
                }
                i += 2;
            }
            Some(Token::Punct('*')) => return (vec![prefix], i + 1),
            Some(Token::Punct('{')) => {
                i += 1;
                let mut all = Vec::new();
                while let Some(token) = tokens.get(i) {
                    match token {
                        Token::Punct('}') => {
                            i += 1;
                            break;
                        }
                        Token::Punct(',') => i += 1,
                        _ => {
                            let (trees, end) = use_tree(tokens, i);
                            for tree in trees {
                                let mut full = prefix.clone();
                                // `self` inside braces names the prefix itself.
                                full.extend(
                                    tree.into_iter()
                                        .filter(|s| s != "self" || prefix.is_empty()),
                                );
                                all.push(full);
                            }
                            i = end.max(i + 1);
                        }
                    }
                }
                return (all, i);
            }
            _ => return (vec![prefix], i),
        }
    }
}

/// `crate::a::b` → [a, b]; `super::x` / `self::x` against the module `here`.
fn resolve(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here[..here.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    let mut rest = rest;
    while let Some((s, more)) = rest.split_first() {
        if s != "super" {
            break;
        }
        base.pop()?;
        rest = more;
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The lower-case words of an identifier or a string: `AckProvider` → ack, provider.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words.into_iter()
}

/// Tarjan's strongly connected components, each sorted, in order of their first file.
fn strongly_connected<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(v, edges, &mut state);
        }
    }
    state.out.sort();
    state.out
}
