//! The OpenAPI document: served without a token, and in step with the router: every
//! route the router registers is documented, and every documented operation is routed.

use crate::helpers::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

/// API routes come only from `routes::api()`, which registers each handler with its
/// operation (utoipa-axum): `ingress::router` adds no route of its own, only layers,
/// fallbacks and the web page's routes (`web::pages()`, `web::dev_token()`), which are not
/// API operations on purpose (see docs/contract.md §8).
fn router_adds_no_route_of_its_own() {
    let source = include_str!("../../src/lib.rs");
    let router = source.split("pub fn router(").nth(1).expect("lib.rs defines `router`");
    let router = router.split("\n}\n").next().unwrap();
    assert!(router.contains("routes::api()"), "the router is built from routes::api()");
    assert!(!router.contains(".route("), "a route added outside routes::api() would go undocumented");
    let merged: Vec<&str> = router.split(".merge(").skip(1).map(|m| m.split(')').next().unwrap()).collect();
    assert_eq!(merged, ["web::pages(", "web::dev_token("], "only the web page's routes are merged besides the API");
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
    router_adds_no_route_of_its_own();
    let doc: Value = serde_json::from_str(ingress::openapi::document_json()).unwrap();
    let documented = documented(&doc);
    assert_eq!(documented.len(), 31, "every operation of the API is documented once");
    for web in ["/", "/ops", "/assets/{*path}", "/dev/token"] {
        assert!(!documented.iter().any(|(_, path)| path == web), "{web} is the web page, not an API operation");
    }

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
