//! The OpenAPI document: served without a token, and in step with the router: every
//! route the router registers is documented, and every documented operation is routed.

use crate::helpers::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

/// `(METHOD, path)` of every `.route(...)` in `ingress::router`, read from its source so
/// that a route added there without an annotation fails this test.
fn routed() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/lib.rs");
    let router = source.split("pub fn router(").nth(1).expect("lib.rs defines `router`");
    let router = router.split("\n}\n").next().unwrap();
    let mut routes = BTreeSet::new();
    for call in router.split(".route(\"").skip(1) {
        let (path, rest) = call.split_once('"').unwrap();
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let methods = &rest[..end];
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let called = methods
                .match_indices(&format!("{method}("))
                .any(|(i, _)| i == 0 || !methods[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
            if called {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    assert!(routes.len() > 10, "the router source was not understood: {routes:?}");
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let app = TestApp::ingress().await;
    let response = app.get(None, "/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    assert_eq!(body, ingress::openapi::document_json());
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(documented(&doc).contains(&("GET".into(), "/openapi.json".into())));
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let doc: Value = serde_json::from_str(ingress::openapi::document_json()).unwrap();
    let documented = documented(&doc);
    let routed = routed();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes without a #[utoipa::path] in openapi::ApiDoc: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented but not in the router: {unrouted:?}");

    // And the running app agrees: no documented operation falls through to the fallbacks.
    let app = TestApp::ingress().await;
    for (method, path) in &documented {
        let concrete: String = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { "probe" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let request = app.http.request(method.parse().unwrap(), app.url(&concrete));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let code = response.json::<Value>().await.ok().and_then(|b| b["code"].as_str().map(str::to_owned));
        assert!(
            !(status == 405 || (status == 404 && code.as_deref() == Some("not_found"))),
            "{method} {concrete} is documented but answered {status} {code:?}"
        );
    }
}
