//! The admin dashboard's HTTP side over a real socket: off without a password, the login
//! refused and accepted, the session cookie's flags, and actions refused without a
//! session or from another site. The page itself is tested in Chromium
//! (bindings-wasm/tests/admin.test.mjs).

mod common;

use common::{Client, Server};
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

const PASSWORD: &str = "a long admin password";

fn http() -> reqwest::Client {
    // Redirects are looked at, not followed.
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The login form's POST, as a browser sends it.
fn login_form(server: &Server, password: &str) -> reqwest::RequestBuilder {
    http()
        .post(server.url("/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password={}", password.replace(' ', "+")))
}

/// Logs in and answers the session cookie (`name=value`) and the whole Set-Cookie line.
async fn login(server: &Server) -> (String, String) {
    let r = login_form(server, PASSWORD).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let line = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = line.split(';').next().unwrap().to_owned();
    (pair, line)
}

#[tokio::test]
async fn the_dashboard_is_not_there_without_a_password() {
    let server = Server::dev();
    for path in ["/admin", "/admin/api/stats"] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    let r = login_form(&server, PASSWORD).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn a_short_admin_password_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(["--admin-password", "short", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_password"));
}

#[tokio::test]
async fn login_logout_and_refused_actions() {
    let server = Server::dev_with(&["--admin-password", PASSWORD]);

    // Not logged in: the login form, and no figures.
    let page = http().get(server.url("/admin")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    let r = http()
        .get(server.url("/admin/api/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A wrong password: 401 and no cookie.
    let r = login_form(&server, "not the password")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get(SET_COOKIE).is_none());

    // A login posted by another site's page: refused.
    let r = login_form(&server, PASSWORD)
        .header(ORIGIN, "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let (session, line) = login(&server).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(line.contains(flag), "{line} lacks {flag}");
    }
    let stats: Value = http()
        .get(server.url("/admin/api/stats"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["connections"], 0);

    // A forged cookie is no session.
    let forged = format!("{}0", session);
    let r = http()
        .get(server.url("/admin/api/stats"))
        .header(COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Actions: refused without the dashboard's header, or from another site, even with
    // the session; done with both.
    let mut client = Client::connect(&server).await;
    client.subscribe("public:admin").await;
    let publish = |headers: &[(&str, &str)]| {
        let mut r = http()
            .post(server.url("/admin/api/publish"))
            .header(COOKIE, &session)
            .json(&json!({"channel": "public:admin", "data": "{\"n\": 1}"}));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    assert_eq!(publish(&[]).await.unwrap().status().as_u16(), 403);
    let cross = [
        ("x-hubbub-admin", "1"),
        ("origin", "https://elsewhere.example"),
    ];
    assert_eq!(publish(&cross).await.unwrap().status().as_u16(), 403);
    let r = publish(&[("x-hubbub-admin", "1")]).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        client.recv().await,
        json!({"message": {"channel": "public:admin", "event": "message", "data": {"n": 1}}})
    );

    // Logout clears the cookie.
    let r = http()
        .post(server.url("/admin/logout"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}
