//! The dependencies between spine's top-level modules flow one way: no
//! import circles, none allowed. Reads every `crate::NAME` path in `src/`
//! (test modules left out) and fails on a circle, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module -> modules it names, from `crate::NAME` outside test code.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let from = top_module(&src, &f);
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let entry = g.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != from {
                entry.insert(name);
            }
        }
    }
    g
}

/// Strongly connected groups of more than one module (Tarjan).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.g.get(v).into_iter().flatten() {
            if !t.index.contains_key(w.as_str()) {
                visit(t, w);
                let lw = t.low[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w.as_str()) {
                let iw = t.index[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_import_circles() {
    let g = graph();
    assert!(g.len() > 10, "only {} modules found", g.len());
    let found = circles(&g);
    assert!(
        found.is_empty(),
        "import circles between modules: {found:?}\nthe graph: {g:#?}"
    );
}

/// Source text and positions are a leaf: `load` and `diag` both use them,
/// and `diag` never uses `load` (the circle that was broken).
#[test]
fn source_is_a_leaf_under_load_and_diag() {
    let g = graph();
    let uses = |m: &str| g.get(m).cloned().unwrap_or_default();
    assert!(
        uses("source").is_empty(),
        "source uses {:?}",
        uses("source")
    );
    assert!(uses("load").contains("source") && uses("load").contains("diag"));
    assert!(uses("diag").contains("source"));
    assert!(!uses("diag").contains("load"), "diag uses load again");
}

/// The one error type is a leaf too, so any stage may return it.
#[test]
fn the_error_type_is_a_leaf() {
    let g = graph();
    let uses = g.get("error").cloned().unwrap_or_default();
    assert!(g.contains_key("error"), "no src/error.rs");
    assert!(uses.is_empty(), "error uses {uses:?}");
}

#[test]
fn the_check_sees_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
}

/// The stages' order: a stage never reaches back to a later one.
#[test]
fn stages_point_backwards_only() {
    let g = graph();
    let order = [
        "shell", "model", "render", "gather", "kinds", "plan", "apply", "engine", "cmd",
    ];
    for (i, m) in order.iter().enumerate() {
        for later in &order[i + 1..] {
            assert!(
                !g.get(*m).is_some_and(|d| d.contains(*later)),
                "{m} uses {later}, which comes after it"
            );
        }
    }
}
