//! The routes the API declares, read from its source: each
//! `.route("PATH", get(..).post(..))` in `src/api/*.rs`, so that tests which
//! must cover every route fail when one is added without them.

/// Every `(method, path)` the API's routers declare, sorted.
pub fn declared_routes() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = source.as_str();
        while let Some(at) = rest.find(".route(") {
            let call = &rest[at + ".route(".len()..];
            let inside = &call[..closing_paren(call)];
            let path = inside.split('"').nth(1).unwrap().to_owned();
            for method in ["get", "post", "patch", "put", "delete"] {
                if inside.contains(&format!("{method}(")) {
                    routes.push((method.to_uppercase(), path.clone()));
                }
            }
            rest = &call[inside.len()..];
        }
    }
    routes.sort();
    routes
}

/// The index of the parenthesis closing the call whose arguments `text` starts.
fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}
