//! The request decoders, through the real router: any operation of the OpenAPI document,
//! with any path parameters, query string and body, sent by any kind of caller, to a server on
//! its own SQLite database with the sandbox bank and PSP beside it. Every request must be
//! answered without a 5xx (the router turns a panic into a 500, so a panic is caught too), and
//! every refusal must carry the JSON error envelope with a code.
//!
//! Bodies are raw bytes, or JSON built from the field names and string values the OpenAPI
//! document itself lists, so that the fuzzer gets past `deny_unknown_fields` into the typed
//! decoders (amounts, currencies, ids, enums, nested objects) instead of stopping at the door.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

const ADMIN_KEY: &str = "mpk_fuzz_admin_key_0123456789abcdefghijklmnopqrstuv";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Arbitrary, Debug)]
struct Call {
    operation: u16,
    caller: Caller,
    params: Vec<String>,
    query: Vec<(Name, Text)>,
    body: RequestBody,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Caller {
    Admin,
    Member,
    Merchant,
    Anonymous,
    Garbage,
}

#[derive(Arbitrary, Debug)]
enum RequestBody {
    Empty,
    /// Any bytes, declared as JSON.
    Raw(Vec<u8>),
    /// Any bytes under another content type.
    Other(Vec<u8>),
    /// A JSON document built from the schema's words.
    Json(JsonValue),
}

#[derive(Arbitrary, Debug)]
enum JsonValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Text),
    Array(Vec<JsonValue>),
    Object(Vec<(Name, JsonValue)>),
}

/// A field or parameter name: one the document lists, or any string.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u16),
    Any(String),
}

/// A string value: one the document lists (an enum value or example), one the fixture knows
/// (an id of its member or merchant), or any string.
#[derive(Arbitrary, Debug)]
enum Text {
    Known(u16),
    Fixture(u8),
    Any(String),
}

/// The server and what the fuzzer draws from, built once per process.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    operations: Vec<(Method, String)>,
    names: Vec<String>,
    words: Vec<String>,
    ids: Vec<String>,
    member_token: String,
    merchant_key: String,
    _dirs: Vec<tempfile::TempDir>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::start)
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dirs: Vec<tempfile::TempDir> =
            (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
        let router = runtime.block_on(server(&dirs));
        let document = serde_json::to_value(api::openapi()).expect("document");
        let operations = operations(&document);
        let (mut names, mut words) = (Vec::new(), Vec::new());
        collect_words(&document["components"], &mut names, &mut words);
        names.sort();
        names.dedup();
        words.sort();
        words.dedup();
        let mut fixture = Fixture {
            runtime,
            router,
            operations,
            names,
            words,
            ids: Vec::new(),
            member_token: String::new(),
            merchant_key: String::new(),
            _dirs: dirs,
        };
        fixture.enrol();
        fixture
    }

    /// Signs a member up and in, and onboards a merchant with a key, through the API itself.
    fn enrol(&mut self) {
        let (status, member) = self.call(
            Method::POST,
            "/v1/members",
            None,
            Some(
                json!({"email": "fuzz@example.com", "phone": "010-5555-0101",
                        "name": "김퍼즈", "password": PASSWORD}),
            ),
        );
        assert_eq!(status, StatusCode::CREATED, "{member}");
        let (status, session) = self.call(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"email": "fuzz@example.com", "password": PASSWORD})),
        );
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let admin = format!("Bearer {ADMIN_KEY}");
        let (status, merchant) = self.call(
            Method::POST,
            "/v1/merchants",
            Some(&admin),
            Some(
                json!({"name": "퍼즈상점", "fee_bps": 250, "settlement_account": {
                "bank_code": "088", "account_number": "770000000001", "holder_name": "퍼즈상점"}}),
            ),
        );
        assert_eq!(status, StatusCode::CREATED, "{merchant}");
        let merchant_id = merchant["id"].as_str().expect("merchant id").to_owned();
        let (status, key) = self.call(
            Method::POST,
            &format!("/v1/merchants/{merchant_id}/api-keys"),
            Some(&admin),
            Some(json!({"name": "fuzz"})),
        );
        assert_eq!(status, StatusCode::CREATED, "{key}");
        self.member_token = session["token"].as_str().expect("token").to_owned();
        self.merchant_key = key["secret"].as_str().expect("secret").to_owned();
        self.ids = vec![
            member["id"].as_str().expect("member id").to_owned(),
            merchant_id,
            key["id"].as_str().expect("key id").to_owned(),
        ];
    }

    /// One call through the router, for the fixture's own set-up.
    fn call(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let (status, bytes) = self.send(request.body(body).expect("request"));
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("response body")
                .to_bytes();
            (status, bytes.to_vec())
        })
    }

    fn name(&self, name: &Name) -> String {
        match name {
            Name::Known(i) => pick(&self.names, *i).to_owned(),
            Name::Any(name) => name.clone(),
        }
    }

    fn text(&self, text: &Text) -> String {
        match text {
            Text::Known(i) => pick(&self.words, *i).to_owned(),
            Text::Fixture(i) => pick(&self.ids, u16::from(*i)).to_owned(),
            Text::Any(text) => text.clone(),
        }
    }

    fn json(&self, value: &JsonValue) -> Value {
        match value {
            JsonValue::Null => Value::Null,
            JsonValue::Bool(b) => Value::Bool(*b),
            JsonValue::Int(i) => Value::from(*i),
            JsonValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            JsonValue::Text(text) => Value::String(self.text(text)),
            JsonValue::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            JsonValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, value)| (self.name(name), self.json(value)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    /// The request for `call`, or `None` when its URI is not one a client could send.
    fn request(&self, call: &Call) -> Option<Request<Body>> {
        let (method, template) =
            &self.operations[usize::from(call.operation) % self.operations.len()];
        let mut params = call.params.iter();
        let mut path = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}')? + open;
            path.push_str(&rest[..open]);
            let value = params
                .next()
                .cloned()
                .unwrap_or_else(|| self.ids[0].clone());
            path.push_str(&percent_encode(&value));
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        if !call.query.is_empty() {
            let pairs: Vec<String> = call
                .query
                .iter()
                .map(|(name, value)| {
                    format!(
                        "{}={}",
                        percent_encode(&self.name(name)),
                        percent_encode(&self.text(value))
                    )
                })
                .collect();
            path = format!("{path}?{}", pairs.join("&"));
        }
        let mut request = Request::builder().method(method.clone()).uri(path);
        request = match call.caller {
            Caller::Admin => request.header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}")),
            Caller::Member => request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.member_token),
            ),
            Caller::Merchant => request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.merchant_key),
            ),
            Caller::Anonymous => request,
            Caller::Garbage => request.header(header::AUTHORIZATION, "Bearer mpk_not_a_key"),
        };
        let body = match &call.body {
            RequestBody::Empty => Body::empty(),
            RequestBody::Raw(bytes) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(bytes.clone())
            }
            RequestBody::Other(bytes) => {
                request = request.header(header::CONTENT_TYPE, "text/plain");
                Body::from(bytes.clone())
            }
            RequestBody::Json(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(self.json(value).to_string())
            }
        };
        request.body(body).ok()
    }
}

fuzz_target!(|call: Call| {
    let fixture = fixture();
    let Some(request) = fixture.request(&call) else {
        return;
    };
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let (status, bytes) = fixture.send(request);
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !status.is_server_error(),
        "{method} {uri} as {:?} answered {status}: {text}",
        call.caller
    );
    if status.is_client_error() {
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            body["error"]["code"].is_string(),
            "{method} {uri} as {:?} answered {status} without the error envelope: {text}",
            call.caller
        );
    }
});

/// The router of a server as `mypay serve` builds it, on a fresh SQLite database, with the
/// sandbox bank (holding the fixture merchant's settlement account) and PSP in-process.
async fn server(dirs: &[tempfile::TempDir]) -> axum::Router {
    let url =
        storage::DatabaseUrl::parse(&format!("sqlite://{}/fuzz.db", dirs[0].path().display()))
            .expect("database URL");
    let db = storage::Db::connect(&url, 8).await.expect("database");
    db.migrate().await.expect("migrations");
    let ledger = Arc::new(ledger::Ledger::start(
        db.clone(),
        Arc::new(ledger::SystemClock),
        ledger::WriterConfig::default(),
    ));
    api::ensure_admin_key(&db, Some(&api::Secret::new(ADMIN_KEY.to_owned())))
        .await
        .expect("admin key");
    let bank_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bank = banking::sandbox::spawn(
        bank_listener,
        banking::sandbox::SandboxConfig::new(dirs[1].path()),
    )
    .await
    .expect("sandbox bank");
    let opened = reqwest::Client::new()
        .post(format!("{}/admin/accounts", bank.base_url()))
        .json(
            &json!({"bank_code_std": "088", "account_num": "770000000001",
                      "account_holder_name": "퍼즈상점"}),
        )
        .send()
        .await
        .expect("sandbox bank admin");
    assert!(opened.status().is_success(), "{:?}", opened.text().await);
    let gateway = banking::HttpBank::new(banking::HttpBankConfig::new(
        bank.base_url(),
        banking::InstitutionCode::parse("MYPAYFUZZ1").expect("institution code"),
        bank.master_account().clone(),
    ))
    .expect("bank client");
    let psp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let psp = psp::sandbox::spawn(
        psp_listener,
        psp::sandbox::SandboxPspConfig::new(dirs[2].path()),
    )
    .await
    .expect("sandbox PSP");
    let processor = psp::TossPayments::new(psp::TossConfig {
        timeout: Duration::from_secs(3),
        ..psp::TossConfig::new(psp.base_url(), psp::SecretKey::new("test_sk_fuzz"))
    })
    .expect("PSP client");
    // The sandboxes live as long as the process: the fuzzer never stops them.
    std::mem::forget(bank);
    std::mem::forget(psp);
    let state = api::AppState::new(
        ledger,
        db,
        Arc::new(gateway),
        Arc::new(processor),
        api::metrics_handle(),
        api::ApiConfig::default(),
    );
    api::router(state)
}

/// Every (method, path) pair of the document.
fn operations(document: &Value) -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                operations.push((method, path.clone()));
            }
        }
    }
    operations.sort();
    operations
}

/// The property names, and the enum values and string examples, of every schema in `value`.
fn collect_words(value: &Value, names: &mut Vec<String>, words: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                names.extend(properties.keys().cloned());
            }
            if let Some(Value::Array(values)) = object.get("enum") {
                words.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(Value::String(example)) = object.get("example") {
                words.push(example.clone());
            }
            for child in object.values() {
                collect_words(child, names, words);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_words(item, names, words);
            }
        }
        _ => {}
    }
}

fn pick(list: &[String], i: u16) -> &str {
    list.get(usize::from(i) % list.len().max(1))
        .map_or("", String::as_str)
}

/// Everything but the unreserved characters (RFC 3986), as a client library encodes a path
/// segment or a query value.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, RESERVED).to_string()
}
