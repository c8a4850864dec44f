//! The house's layering, read from the imports of `src/` and the lock file, so that
//! a change that breaks it fails here instead of being noticed in a review:
//!
//! * the rules crate depends, even transitively, on nothing that does I/O;
//! * each room of the gateway crate imports only the rooms below it, and only
//!   start-up code (`app.rs`) imports the store;
//! * no room but `http` derives the API's schema, and the core names no transport
//!   or database library;
//! * no two files import each other, directly or around a circle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, relative to the crate root.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The source without comments, string literals (so that a doc line naming a
/// module is not an import) and its inline test module (always last in a file),
/// whose `super` is not the file's.
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// The module path of a source file: `src/core/issue.rs` → `["core", "issue"]`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "mod.rs" | "lib.rs" | "main.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The room a module path lives in: its first segment (`""` for the crate root).
fn room(module: &[String]) -> String {
    module.first().cloned().unwrap_or_default()
}

/// The crate-level module paths a file reaches: `crate::…` paths, `super::…` paths
/// resolved against the file's own module, and (for `main.rs`) `otpgw::…` paths.
fn reached(file: &Path, text: &str) -> Vec<Vec<String>> {
    let module = module_of(file);
    let code = code(text);
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let word_at = |i: usize, w: &str| -> bool {
        let w: Vec<char> = w.chars().collect();
        bytes.len() >= i + w.len()
            && bytes[i..i + w.len()] == w[..]
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
    };
    let mut i = 0;
    while i < bytes.len() {
        let from_root = word_at(i, "crate::") || (word_at(i, "otpgw::") && is_binary(file));
        let (base, skip): (Vec<String>, usize) = if from_root {
            (Vec::new(), 7)
        } else if word_at(i, "super::") {
            // From `a/b.rs` (module a::b) `super` is `a`; from `a/mod.rs` (module a)
            // it is the crate root.
            let mut base = module.clone();
            let mut j = i;
            while word_at(j, "super::") {
                base.pop();
                j += 7;
            }
            (base, j - i)
        } else {
            i += 1;
            continue;
        };
        let j = path_at(&bytes, i + skip, base, &mut out);
        i = j.max(i + 1);
    }
    out
}

/// Reads the path that starts at `j` below `base` into `out`; a group
/// (`use super::{a, b::c}`) reaches each of its members, so sibling modules named
/// in one `use` are seen as what they are. Returns where the path ends.
fn path_at(
    bytes: &[char],
    mut j: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        let start = j;
        while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
            j += 1;
        }
        if j == start {
            if bytes.get(j) == Some(&'{') {
                j += 1;
                loop {
                    while bytes.get(j).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        j += 1;
                    }
                    if j >= bytes.len() || bytes[j] == '}' {
                        return j + 1;
                    }
                    let before = j;
                    j = path_at(bytes, j, path.clone(), out);
                    // Skip what is not a path (`self`, `as x`, `*`).
                    while bytes.get(j).is_some_and(|c| *c != ',' && *c != '}') {
                        j += 1;
                    }
                    if j == before {
                        j += 1;
                    }
                }
            }
            break;
        }
        path.push(bytes[start..j].iter().collect());
        if j + 1 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' {
            j += 2;
        } else {
            break;
        }
    }
    out.push(path);
    j
}

/// The source file of the longest prefix of `path` that names a module.
fn file_of(path: &[String], files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    for n in (0..=path.len()).rev() {
        let prefix = &path[..n];
        let base: PathBuf = std::iter::once("src".to_owned())
            .chain(prefix.iter().cloned())
            .collect();
        let candidates = if n == 0 {
            vec![PathBuf::from("src/lib.rs")]
        } else {
            vec![base.with_extension("rs"), base.join("mod.rs")]
        };
        if let Some(f) = candidates.into_iter().find(|c| files.contains(c)) {
            return Some(f);
        }
    }
    None
}

/// The rooms of the gateway crate, top to bottom, and which rooms each may import.
fn allowed() -> HashMap<&'static str, &'static [&'static str]> {
    HashMap::from([
        (
            "main",
            &["app", "cardfile", "config", "core", "http", "telemetry"][..],
        ),
        (
            "app",
            &[
                "cardfile",
                "config",
                "core",
                "http",
                "oidc",
                "replies",
                "simswap",
                "smpp",
                "store",
                "telemetry",
            ][..],
        ),
        ("http", &["cardfile", "config", "core", "telemetry"][..]),
        ("cardfile", &["core"][..]),
        ("smpp", &["config", "core", "replies", "telemetry"][..]),
        ("replies", &["config", "core", "telemetry"][..]),
        ("store", &["config", "core", "telemetry"][..]),
        ("simswap", &["config", "core", "telemetry"][..]),
        ("oidc", &["config", "core", "telemetry"][..]),
        ("core", &["config", "telemetry"][..]),
        ("telemetry", &["config"][..]),
        ("config", &[][..]),
    ])
}

fn gateway_files() -> Vec<(PathBuf, String)> {
    sources(&root().join("src"))
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

/// The executable's own files (`main.rs` and its `cli/` modules): they reach the
/// library as `otpgw::…`.
fn is_binary(file: &Path) -> bool {
    file == Path::new("src/main.rs") || file.starts_with("src/cli")
}

fn room_of_file(file: &Path) -> String {
    if is_binary(file) {
        return "main".into();
    }
    room(&module_of(file))
}

/// Every room imports only rooms below it (and itself); only `app.rs` imports the
/// store.
#[test]
fn rooms_import_only_rooms_below_them() {
    let allowed = allowed();
    let mut wrong = BTreeSet::new();
    for (file, text) in gateway_files() {
        let from = room_of_file(&file);
        if from.is_empty() {
            continue; // lib.rs: the module list
        }
        let may = allowed.get(from.as_str()).unwrap_or_else(|| {
            panic!(
                "{} is in no known room ({from}): add it to the map",
                file.display()
            )
        });
        for path in reached(&file, &text) {
            let to = room(&path);
            if to.is_empty() || to == from || (from == "main" && (to == "app" || to == "cli")) {
                continue;
            }
            if !may.contains(&to.as_str()) {
                wrong.insert(format!(
                    "{} ({from}) imports {to}: {}",
                    file.display(),
                    path.join("::")
                ));
            }
        }
        if from == "app" || file == Path::new("src/app.rs") {
            continue;
        }
        for path in reached(&file, &text) {
            if room(&path) == "store" && from != "store" {
                wrong.insert(format!("{} imports the store", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Only HTTP derives the API's schema; the core and the store name no HTTP, SMPP
/// or (for the core) database library; only the store names a database driver.
#[test]
fn libraries_stay_in_their_rooms() {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "core",
            &[
                "sqlx",
                "rusqlite",
                "axum",
                "hyper",
                "rusmpp",
                "utoipa",
                "maud",
                "reqwest",
                "moka",
                "openidconnect",
            ],
        ),
        (
            "oidc",
            &[
                "sqlx", "rusqlite", "axum", "hyper", "rusmpp", "utoipa", "maud",
            ],
        ),
        (
            "simswap",
            &[
                "sqlx", "rusqlite", "axum", "hyper", "rusmpp", "utoipa", "maud",
            ],
        ),
        ("store", &["axum", "hyper", "rusmpp", "utoipa", "maud"]),
        (
            "replies",
            &["sqlx", "rusqlite", "axum", "hyper", "rusmpp", "utoipa"],
        ),
        (
            "smpp",
            &["sqlx", "rusqlite", "axum", "hyper", "utoipa", "maud"],
        ),
        (
            "config",
            &["sqlx", "rusqlite", "axum", "hyper", "rusmpp", "utoipa"],
        ),
        ("http", &["sqlx", "rusqlite", "rusmpp"]),
    ];
    let mut wrong = Vec::new();
    for (file, text) in gateway_files() {
        let from = room_of_file(&file);
        let code = code(&text);
        if let Some((_, libs)) = forbidden.iter().find(|(r, _)| *r == from) {
            for lib in *libs {
                if code.contains(&format!("{lib}::")) {
                    wrong.push(format!("{} ({from}) uses {lib}", file.display()));
                }
            }
        }
        if from != "http" && (code.contains("ToSchema") || code.contains("utoipa")) {
            wrong.push(format!(
                "{} derives or names the API schema outside http/",
                file.display()
            ));
        }
    }
    for file in sources(&root().join("rules/src")) {
        let code = code(&std::fs::read_to_string(root().join(&file)).unwrap());
        if code.contains("ToSchema") || code.contains("utoipa") {
            wrong.push(format!("{} derives the API schema", file.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The rules crate depends, even transitively, on nothing with I/O (read from
/// Cargo.lock, which is what the build uses).
#[test]
fn the_rules_crate_depends_on_no_io_library() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let name = package
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        let list = package
            .split("dependencies = [")
            .nth(1)
            .map(|d| d.split(']').next().unwrap_or(""))
            .unwrap_or("");
        let names = list
            .split(',')
            .map(|d| {
                d.trim()
                    .trim_matches('"')
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .filter(|d| !d.is_empty())
            .collect();
        deps.entry(name).or_insert(names);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec!["otpgw-rules".to_owned()];
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    assert!(
        seen.contains("otpgw-parsers"),
        "the walk found the rules' dependencies: {seen:?}"
    );
    for io in ["tokio", "sqlx", "axum", "hyper", "rusmpp", "mio", "reqwest"] {
        assert!(
            !seen.contains(io),
            "otpgw-rules depends on {io} (through {seen:?})"
        );
    }
}

/// No two files of the gateway crate import each other, directly or around a
/// circle. A module naming its own children (`mod`, re-exports) is the module
/// tree, not an import, and is left out.
#[test]
fn no_file_imports_form_a_circle() {
    let files: BTreeSet<PathBuf> = gateway_files().into_iter().map(|(f, _)| f).collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (file, text) in gateway_files() {
        let own = module_of(&file);
        let is_parent = file.ends_with("mod.rs") || file == Path::new("src/lib.rs");
        for path in reached(&file, &text) {
            let Some(to) = file_of(&path, &files) else {
                continue;
            };
            let descendant = is_parent && module_of(&to).starts_with(&own);
            if to != file && !descendant {
                edges.entry(file.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        f: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
        circles: &mut Vec<String>,
    ) {
        state.insert(f.clone(), 1);
        stack.push(f.clone());
        for g in edges.get(f).into_iter().flatten() {
            match state.get(g) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == g).unwrap_or(0);
                    let circle: Vec<String> = stack[at..]
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    circles.push(format!("{} -> {}", circle.join(" -> "), g.display()));
                }
                Some(_) => {}
                None => visit(g, edges, state, stack, circles),
            }
        }
        stack.pop();
        state.insert(f.clone(), 2);
    }
    let (mut state, mut circles) = (BTreeMap::new(), Vec::new());
    for f in &files {
        if !state.contains_key(f) {
            visit(f, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// The checks above are only as good as their reading of the imports: they must
/// see what is there.
#[test]
fn the_import_reader_sees_imports() {
    let text = "use crate::core::{Core, ports::CardStore};\nuse super::error::port; // crate::http\nlet s = \"crate::smpp\";";
    let paths = reached(Path::new("src/store/cards.rs"), text);
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(paths.contains(&path(&["core", "Core"])), "{paths:?}");
    assert!(
        paths.contains(&path(&["core", "ports", "CardStore"])),
        "each member of a group: {paths:?}"
    );
    let siblings = reached(
        Path::new("src/http/docs.rs"),
        "use super::{admin, codes::{push, show}, self as here};",
    );
    assert!(
        siblings.contains(&path(&["http", "admin"]))
            && siblings.contains(&path(&["http", "codes", "push"]))
            && siblings.contains(&path(&["http", "codes", "show"])),
        "sibling modules named in one group: {siblings:?}"
    );
    assert!(
        paths.contains(&vec![
            "store".to_owned(),
            "error".to_owned(),
            "port".to_owned()
        ]),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.first().is_some_and(|r| r == "http" || r == "smpp")),
        "comments and strings are not imports: {paths:?}"
    );
    assert_eq!(room_of_file(Path::new("src/http/console/pages.rs")), "http");
}
