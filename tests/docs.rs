//! docs/registry.md is generated from the schemas in schemas/: this test
//! regenerates it and fails when the committed file is stale.
//! Regenerate with `SPINE_BLESS=1 cargo test --test docs`.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::Value;

const SCHEMAS: [(&str, &str); 3] = [
    ("SERVICE_REGISTRY.yaml", "service-registry.schema.json"),
    ("STACK_REGISTRY.yaml", "stack-registry.schema.json"),
    ("services.health.yaml", "services-health.schema.json"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Follow a local `$ref` (`#/$defs/x`), keeping the referring node's description.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> (&'a Value, Option<&'a str>) {
    let desc = node["description"].as_str();
    match node["$ref"].as_str() {
        Some(r) => {
            let target = r
                .strip_prefix('#')
                .and_then(|p| root.pointer(p))
                .unwrap_or_else(|| panic!("unresolved $ref {r}"));
            let (t, d) = resolve(root, target);
            (t, desc.or(d))
        }
        None => (node, desc),
    }
}

fn type_of(root: &Value, node: &Value) -> String {
    let (n, _) = resolve(root, node);
    if let Some(e) = n["enum"].as_array() {
        return e
            .iter()
            .map(|v| {
                format!(
                    "`{}`",
                    v.as_str().map_or_else(|| v.to_string(), String::from)
                )
            })
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(c) = n.get("const") {
        return format!("`{c}`");
    }
    if let Some(alts) = n["oneOf"].as_array().or(n["anyOf"].as_array()) {
        return alts
            .iter()
            .map(|a| type_of(root, a))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let t = match &n["type"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if n.get("properties").is_some() => "object".into(),
        _ => "any".into(),
    };
    if t == "array" && n.get("items").is_some() {
        return format!("array of {}", type_of(root, &n["items"]));
    }
    if t == "object" && n["additionalProperties"].is_object() && n.get("properties").is_none() {
        return format!("map of {}", type_of(root, &n["additionalProperties"]));
    }
    t
}

fn constraints(root: &Value, node: &Value) -> String {
    let (n, _) = resolve(root, node);
    let mut c = Vec::new();
    if let Some(p) = n["pattern"].as_str() {
        c.push(format!("pattern `{}`", p.replace('|', "\\|")));
    }
    for (k, w) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minItems", "min items"),
        ("minLength", "min length"),
    ] {
        if let Some(v) = n.get(k) {
            c.push(format!("{w} {v}"));
        }
    }
    if let Some(f) = n["format"].as_str() {
        c.push(format!("format {f}"));
    }
    if let Some(d) = n.get("default") {
        c.push(format!("default `{d}`"));
    }
    c.join(", ")
}

fn walk(root: &Value, node: &Value, path: &str, out: &mut String, depth: usize) {
    assert!(depth < 16, "schema too deep at {path}");
    let (n, desc) = resolve(root, node);
    if let Some(items) = n.get("items") {
        walk(root, items, &format!("{path}[]"), out, depth + 1);
        return;
    }
    if let Some(ap) = n.get("additionalProperties").filter(|a| a.is_object())
        && n.get("properties").is_none()
    {
        walk(root, ap, &format!("{path}.<key>"), out, depth + 1);
        return;
    }
    let Some(props) = n["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = n["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let closed = n["additionalProperties"] == Value::Bool(false);
    let _ = writeln!(out, "### `{path}`\n");
    if let Some(d) = desc {
        let _ = writeln!(out, "{d}\n");
    }
    let _ = writeln!(
        out,
        "{}\n",
        if closed {
            "Closed: any other key is an error."
        } else {
            "Open: other keys are allowed (and ignored)."
        }
    );
    let _ = writeln!(
        out,
        "| key | type | required | meaning |\n|---|---|---|---|"
    );
    for (k, v) in props {
        let (_, d) = resolve(root, v);
        let extra = constraints(root, v);
        let meaning = match (d.unwrap_or(""), extra.as_str()) {
            (d, "") => d.to_string(),
            ("", e) => e.to_string(),
            (d, e) => format!("{d} ({e})"),
        };
        let req = if required.contains(&k.as_str()) {
            "yes"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| `{k}` | {} | {req} | {} |",
            type_of(root, v),
            meaning.replace('\n', " ")
        );
    }
    out.push('\n');
    for (k, v) in props {
        walk(root, v, &format!("{path}.{k}"), out, depth + 1);
    }
}

fn generate() -> String {
    let mut out = String::from(
        "# Registry reference\n\n\
<!-- Generated from schemas/*.schema.json by tests/docs.rs; do not edit by hand.\n     \
Regenerate: SPINE_BLESS=1 cargo test --test docs -->\n\n\
Every key spine reads from the three registry files, with its type and meaning, as the\n\
JSON Schemas in `schemas/` define them (`spine verify` gates V01-V03 check them). The\n\
operator's own sections are **open** (unknown keys are allowed, a wrong type is an error);\n\
spine's `desired` sections are **closed** (a typo is an error with a \"did you mean\").\n\
Paths use `.<key>` for a map entry and `[]` for a list item.\n\n",
    );
    for (file, schema) in SCHEMAS {
        let text = std::fs::read_to_string(repo().join("schemas").join(schema)).unwrap();
        let root: Value = serde_json::from_str(&text).unwrap();
        let _ = writeln!(out, "## {file}\n\nSchema: `schemas/{schema}`.\n");
        walk(&root, &root, file, &mut out, 0);
    }
    out.trim_end().to_string() + "\n"
}

#[test]
fn registry_reference_is_generated_from_the_schemas() {
    let path = repo().join("docs/registry.md");
    let fresh = generate();
    if std::env::var_os("SPINE_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/registry.md is stale (the schemas changed): run `SPINE_BLESS=1 cargo test --test docs` and commit it"
    );
    // Every key of spine's closed sections is documented.
    for key in [
        "access",
        "network",
        "tailscale",
        "legacy_roots",
        "expect_body",
        "secrets",
    ] {
        assert!(fresh.contains(&format!("| `{key}` |")), "{key} missing");
    }
}
