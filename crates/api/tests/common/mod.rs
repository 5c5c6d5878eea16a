//! Black-box test support: a real server on a free port with its own database.

#![allow(dead_code)]

use std::sync::Arc;

use api::{ApiConfig, AppState, Secret};
use banking::sandbox::{self, SandboxConfig, SandboxHandle};
use banking::{HttpBank, HttpBankConfig, InstitutionCode};
use ledger::{Clock, Ledger, ManualClock, SystemClock, WriterConfig};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use testkit::{artifacts, TestDb};

/// The bank every test merchant's settlement account is at.
pub const MERCHANT_BANK: &str = "088";

/// The admin key every test server is configured with.
pub const ADMIN_KEY: &str = "mpk_test_admin_key_0123456789abcdefghijklmnopqrstu";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub admin_key: String,
    pub client: Client,
    pub ledger: Arc<Ledger>,
    pub db: TestDb,
    /// The sandbox bank the server talks to, in-process as `mypay serve` runs it by default.
    pub bank: SandboxHandle,
    /// The sandbox bank's data directory, removed when the test ends.
    pub bank_dir: tempfile::TempDir,
    /// The wallet service the server runs, to call resolver passes directly.
    pub wallets: wallet::Wallets,
    /// The webhooks service the server runs, to run delivery passes directly.
    pub webhooks: webhooks::Webhooks,
    /// The sandbox PSP the server charges cards at, in-process as `mypay serve` runs it;
    /// `None` while a test has stopped it ([`TestApp::stop_psp`]).
    pub psp: Option<psp::sandbox::SandboxPspHandle>,
    /// Where the sandbox PSP listens (`http://127.0.0.1:…`), also while it is stopped.
    pub psp_url: String,
    psp_address: std::net::SocketAddr,
    pub psp_dir: tempfile::TempDir,
    /// The payments service the server runs, to call resumer passes directly.
    pub payments: payments::Payments,
    /// The server's job queue, to enqueue jobs and read them directly.
    pub jobs: jobs::Jobs,
    /// The settlement service the server runs, to call resolver passes directly.
    pub settlements: settlement::Settlements,
    /// The remittance service the server runs, to arm its failure points and run its passes.
    pub remittances: remittance::Remittances,
}

/// How long the test sandbox PSP withholds the replies of its `timeout` and `lost_reply`
/// cards: longer than [`PSP_TIMEOUT`], so the adapter gives up first.
pub const PSP_HOLD: std::time::Duration = std::time::Duration::from_secs(6);
/// How long the server waits for the PSP before taking a charge's outcome as unknown.
pub const PSP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Starts the application on `127.0.0.1:0` against a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig::default()).await
}

/// Like [`spawn_app`], with a chosen configuration.
pub async fn spawn_app_with(config: ApiConfig) -> TestApp {
    spawn_app_on(config, Arc::new(SystemClock)).await
}

/// 2026-11-22T00:00:00Z, where manual clocks start.
pub const MANUAL_START_MICROS: i64 = 1_795_305_600_000_000;

/// Like [`spawn_app`], on a clock that only the test moves: the ledger and session expiry
/// both read it.
pub async fn spawn_app_with_manual_clock() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(MANUAL_START_MICROS));
    let app = spawn_app_on(ApiConfig::default(), clock.clone()).await;
    (app, clock)
}

async fn spawn_app_on(config: ApiConfig, clock: Arc<dyn Clock>) -> TestApp {
    let config = keep_artifacts(config);
    let db = TestDb::new(16).await;
    let ledger = Arc::new(Ledger::start(db.db.clone(), clock, WriterConfig::default()));
    let configured = Secret::new(ADMIN_KEY.to_owned());
    let generated = api::ensure_admin_key(&db.db, Some(&configured))
        .await
        .expect("admin key");
    assert!(
        generated.is_none(),
        "a configured key is stored, not generated"
    );
    let bank_dir = tempfile::tempdir().expect("sandbox bank directory");
    let bank_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the sandbox bank");
    let bank = sandbox::spawn(bank_listener, SandboxConfig::new(bank_dir.path()))
        .await
        .expect("sandbox bank");
    let gateway = HttpBank::new(HttpBankConfig::new(
        bank.base_url(),
        InstitutionCode::parse("MYPAYTEST1").expect("institution code"),
        bank.master_account().clone(),
    ))
    .expect("bank client");
    let gateway: Arc<dyn banking::BankGateway> = Arc::new(gateway);
    let psp_dir = tempfile::tempdir().expect("sandbox PSP directory");
    let psp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the sandbox PSP");
    let psp_address = psp_listener.local_addr().expect("sandbox PSP address");
    let psp = spawn_psp(
        psp_listener,
        psp_dir.path(),
        psp::sandbox::IDEMPOTENCY_TTL_DEFAULT,
    )
    .await;
    let processor = psp::TossPayments::new(psp::TossConfig {
        timeout: PSP_TIMEOUT,
        ..psp::TossConfig::new(psp.base_url(), psp::SecretKey::new("test_sk_api_tests"))
    })
    .expect("PSP client");
    artifacts::record_secret("psp_secret_key", "test_sk_api_tests");
    let state = AppState::new(
        ledger.clone(),
        db.db.clone(),
        gateway,
        Arc::new(processor),
        api::metrics_handle(),
        config,
    );
    let wallets = state.wallets().clone();
    let webhooks = state.webhooks().clone();
    let payments = state.payments().clone();
    let jobs = state.jobs().clone();
    let settlements = state.settlements().clone();
    let remittances = state.remittances().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, api::router(state))
            .await
            .expect("serve");
    });
    TestApp {
        base: format!("http://{address}"),
        admin_key: ADMIN_KEY.to_owned(),
        client: Client::new(),
        ledger,
        db,
        bank,
        bank_dir,
        wallets,
        webhooks,
        psp_url: psp.base_url().to_owned(),
        psp: Some(psp),
        psp_address,
        psp_dir,
        payments,
        jobs,
        settlements,
        remittances,
    }
}

/// With `MYPAY_TEST_ARTIFACTS` set (see `testkit::artifacts`): records the admin key, gives the
/// configuration's ephemeral account-number keys a recorded twin (the same twin for every
/// server given the same keys, so servers sharing keys still share them), and writes
/// settlement reports under the artifacts directory when the test chose no directory. Without
/// it, the configuration is returned as it is.
fn keep_artifacts(mut config: ApiConfig) -> ApiConfig {
    use std::sync::Mutex;
    type Twins = Vec<(
        Arc<bank_accounts::AccountKeys>,
        Arc<bank_accounts::AccountKeys>,
    )>;
    static TWINS: Mutex<Twins> = Mutex::new(Vec::new());
    if !artifacts::enabled() {
        return config;
    }
    artifacts::install_logging();
    artifacts::record_secret("admin_api_key", ADMIN_KEY);
    let original = config.bank_accounts.keys.clone();
    if original.current_key_id() == "ephemeral" {
        let mut twins = TWINS.lock().expect("twins");
        let known = twins
            .iter()
            .find(|(from, _)| Arc::ptr_eq(from, &original))
            .map(|(_, twin)| twin.clone());
        let twin = known.unwrap_or_else(|| {
            let (keys, ring, index) =
                bank_accounts::AccountKeys::generate("ephemeral").expect("randomness");
            artifacts::record_secret("account_keyring", &ring);
            artifacts::record_secret("account_keyring", ring.split_once(':').map_or("", |r| r.1));
            artifacts::record_secret("account_index_key", &index);
            let twin = Arc::new(keys);
            twins.push((original, twin.clone()));
            twin
        });
        config.bank_accounts.keys = twin;
    }
    if config.settlement.report_dir.is_none() {
        config.settlement.report_dir = artifacts::report_dir();
    }
    config
}

/// Starts the test sandbox PSP on `listener` with its data in `dir`.
async fn spawn_psp(
    listener: tokio::net::TcpListener,
    dir: &std::path::Path,
    idempotency_ttl: std::time::Duration,
) -> psp::sandbox::SandboxPspHandle {
    psp::sandbox::spawn(
        listener,
        psp::sandbox::SandboxPspConfig {
            hold: PSP_HOLD,
            idempotency_ttl,
            ..psp::sandbox::SandboxPspConfig::new(dir)
        },
    )
    .await
    .expect("sandbox PSP")
}

impl TestApp {
    /// Stops the sandbox PSP, as in an outage: calls to it find nothing listening.
    pub async fn stop_psp(&mut self) {
        if let Some(psp) = self.psp.take() {
            psp.shutdown().await;
        }
    }

    /// Starts the stopped sandbox PSP again on its address with its books, remembering
    /// idempotency keys for `idempotency_ttl` (zero forgets every key sent before).
    pub async fn start_psp(&mut self, idempotency_ttl: std::time::Duration) {
        assert!(self.psp.is_none(), "the sandbox PSP is running");
        let listener = tokio::net::TcpListener::bind(self.psp_address)
            .await
            .expect("bind the sandbox PSP's address again");
        self.psp = Some(spawn_psp(listener, self.psp_dir.path(), idempotency_ttl).await);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the admin key.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key)
    }

    /// GET with the admin key, returning status and JSON.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.admin(Method::GET, path).send().await.expect("request")).await
    }

    /// POST JSON with the admin key, returning status and JSON.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        json_of(
            self.admin(Method::POST, path)
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Opens an account and returns its id.
    pub async fn account(&self, code: &str, kind: &str, currency: &str, guarded: bool) -> String {
        let flags = if guarded {
            json!(["must_not_go_negative"])
        } else {
            json!([])
        };
        let (status, body) = self
            .post(
                "/v1/ledger/accounts",
                &json!({"code": code, "kind": kind, "currency": currency, "flags": flags}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("account id").to_owned()
    }

    /// Posts a two-leg transfer: debit `from`, credit `to`.
    pub async fn transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        currency: &str,
    ) -> (StatusCode, Value) {
        self.post(
            "/v1/ledger/transactions",
            &transfer_body(None, from, to, amount, currency),
        )
        .await
    }

    /// The current balance of an account.
    pub async fn balance(&self, account: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1/ledger/accounts/{account}/balance"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Opens an account at the sandbox bank held in `holder`'s name, as a business would at
    /// the counter.
    pub async fn open_bank_account(&self, bank_code: &str, number: &str, holder: &str) {
        artifacts::record_account_number(number);
        let (status, body) = send(
            self.client
                .post(format!("{}/admin/accounts", self.bank.base_url()))
                .json(&json!({
                    "bank_code_std": bank_code, "account_num": number,
                    "account_holder_name": holder,
                })),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }

    /// Onboards a merchant named `name` (2.5 % fee) with a fresh settlement account at the
    /// sandbox bank held in its name, and creates a key bound to it. Returns (merchant id,
    /// key secret).
    pub async fn merchant(&self, name: &str) -> (String, String) {
        let merchant = self.merchant_with_account(name).await;
        (merchant.id, merchant.key)
    }

    /// Like [`TestApp::merchant`], also returning the settlement account's number (at
    /// [`MERCHANT_BANK`]), to read what the bank paid into it.
    pub async fn merchant_with_account(&self, name: &str) -> TestMerchant {
        let number = format!("77{:010}", ulid::Ulid::new().random() % 10_000_000_000);
        self.open_bank_account(MERCHANT_BANK, &number, name).await;
        let (status, merchant) = self
            .post(
                "/v1/merchants",
                &json!({
                    "name": name, "fee_bps": 250,
                    "settlement_account": {
                        "bank_code": MERCHANT_BANK, "account_number": number, "holder_name": name,
                    },
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{merchant}");
        let id = merchant["id"].as_str().expect("merchant id").to_owned();
        let (status, key) = self
            .post(
                &format!("/v1/merchants/{id}/api-keys"),
                &json!({"name": format!("{name} server")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        let key = key["secret"].as_str().expect("secret").to_owned();
        artifacts::record_secret("api_key", &key);
        TestMerchant {
            id,
            key,
            account: number,
        }
    }

    /// Creates an API key of role `admin` or `platform` and returns (id, secret); merchant
    /// keys are bound to a merchant: see [`TestApp::merchant`].
    pub async fn api_key(&self, role: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/admin/api-keys",
                &json!({"role": role, "name": format!("{role} key")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let secret = body["secret"].as_str().expect("secret").to_owned();
        artifacts::record_secret("api_key", &secret);
        (body["id"].as_str().expect("id").to_owned(), secret)
    }
}

/// An onboarded merchant: its id, a key bound to it, and its settlement account's number.
#[derive(Debug, Clone)]
pub struct TestMerchant {
    pub id: String,
    pub key: String,
    pub account: String,
}

/// The password every test member signs up with.
pub const MEMBER_PASSWORD: &str = "correct horse battery";

/// A signed-up member and a live session token.
#[derive(Debug, Clone)]
pub struct TestMember {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl TestApp {
    /// An anonymous request.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with a bearer token (a session token or an API key).
    pub fn bearer(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Signs a member up with `MEMBER_PASSWORD` and returns the member view.
    pub async fn sign_up(&self, email: &str, phone: &str) -> Value {
        artifacts::record_secret("password", MEMBER_PASSWORD);
        let (status, body) = send(self.anonymous(Method::POST, "/v1/members").json(&json!({
            "email": email, "phone": phone, "name": "김민수", "password": MEMBER_PASSWORD,
        })))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Logs in and returns the session view.
    pub async fn log_in(&self, email: &str, password: &str) -> (StatusCode, Value) {
        artifacts::record_secret("password", password);
        let (status, body) = send(
            self.anonymous(Method::POST, "/v1/sessions")
                .json(&json!({"email": email, "password": password})),
        )
        .await;
        if let Some(token) = body["token"].as_str() {
            artifacts::record_secret("session_token", token);
        }
        (status, body)
    }

    /// Signs a member up and logs them in.
    pub async fn member(&self, email: &str, phone: &str) -> TestMember {
        let member = self.sign_up(email, phone).await;
        let (status, session) = self.log_in(email, MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        TestMember {
            id: member["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            token: session["token"].as_str().expect("token").to_owned(),
        }
    }
}

/// A transfer request body.
pub fn transfer_body(
    id: Option<&str>,
    from: &str,
    to: &str,
    amount: &str,
    currency: &str,
) -> Value {
    let mut body = json!({
        "postings": [
            {"account_id": from, "direction": "debit", "amount": amount, "currency": currency},
            {"account_id": to, "direction": "credit", "amount": amount, "currency": currency},
        ]
    });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts the error envelope: status, code, and a request id.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{body}"
    );
}

/// A liability wallet (must not go negative) funded from an asset account; returns
/// (wallet, bank) after moving `funding` from bank to wallet.
pub async fn funded_wallet(
    app: &TestApp,
    name: &str,
    currency: &str,
    funding: &str,
) -> (String, String) {
    let wallet = app
        .account(
            &format!("liability:member:{name}:money"),
            "liability",
            currency,
            true,
        )
        .await;
    let bank = app
        .account(&format!("asset:bank:{name}"), "asset", currency, false)
        .await;
    let (status, body) = app.transfer(&bank, &wallet, funding, currency).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (wallet, bank)
}

/// Sends a raw request with the admin key and returns status and JSON.
pub async fn send(builder: RequestBuilder) -> (StatusCode, Value) {
    json_of(builder.send().await.expect("request")).await
}

pub fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

/// Links `number` at `bank_code` for `member` the way a member does, through the API: link
/// (holder-name check and 1-won deposit), read the code from the deposit's memo on the sandbox
/// bank's statement, verify, start the debit consent and confirm its ARS digits. The account
/// must exist at the sandbox bank in the member's name. Returns the linked account's id, active.
pub async fn link_active_account(
    app: &TestApp,
    member: &TestMember,
    bank_code: &str,
    number: &str,
) -> String {
    artifacts::record_account_number(number);
    let (status, body) = send(
        app.bearer(&member.token, Method::POST, "/v1/bank-accounts")
            .json(&json!({"bank_code": bank_code, "account_number": number})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("link id").to_owned();
    let (status, statement) = send(app.client.get(format!(
        "{}/admin/accounts/{bank_code}/{number}/transactions",
        app.bank.base_url()
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{statement}");
    let memo = statement["res_list"][0]["print_content"]
        .as_str()
        .expect("the deposit's memo");
    let code = memo
        .strip_prefix("MYPAY ")
        .expect("the memo carries the code");
    let step = |path: String, body: Value| async move {
        let (status, answer) =
            send(app.bearer(&member.token, Method::POST, &path).json(&body)).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    };
    step(
        format!("/v1/bank-accounts/{id}/verify"),
        json!({"code": code}),
    )
    .await;
    let session = step(format!("/v1/bank-accounts/{id}/consent"), json!({})).await;
    let ars = session["ars_code"].as_str().expect("ARS digits").to_owned();
    let active = step(
        format!("/v1/bank-accounts/{id}/consent/confirm"),
        json!({"code": ars}),
    )
    .await;
    assert_eq!(active["status"], "active", "{active}");
    id
}

/// Every test member's bank, and the holder name members sign up with.
pub const BANK: &str = "004";
pub const HOLDER: &str = "김민수";

pub async fn bank_admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    if let Some(number) = body.as_ref().and_then(|b| b["account_num"].as_str()) {
        artifacts::record_account_number(number);
    }
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.bank.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, body) = send(request).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

pub async fn open_account(app: &TestApp, number: &str, holder: &str, balance: i64) {
    bank_admin(
        app,
        Method::POST,
        "/admin/accounts",
        Some(json!({
            "bank_code_std": BANK, "account_num": number,
            "account_holder_name": holder, "balance_amt": balance.to_string(),
        })),
    )
    .await;
}

/// A member with a linked, consented account at the sandbox bank.
pub struct Linked {
    pub member: TestMember,
    pub account: String,
}

/// A member `n` with a bank account holding `balance` won, linked through the API with a debit
/// consent. The account opens with one won less: the 1-won verification deposit tops it up.
pub async fn linked_member(app: &TestApp, n: u32, balance: i64) -> Linked {
    let member = app
        .member(&format!("m{n}@example.com"), &format!("010-2000-{n:04}"))
        .await;
    let account = format!("1100{n:08}");
    open_account(app, &account, HOLDER, balance - 1).await;
    link_active_account(app, &member, BANK, &account).await;
    Linked { member, account }
}

/// A POST with a fresh Idempotency-Key.
pub async fn post_money(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    send(
        app.bearer(token, Method::POST, path)
            .header("Idempotency-Key", ulid::Ulid::new().to_string())
            .json(body),
    )
    .await
}

/// Grants `amount` points to a member with the admin key.
pub async fn grant_points(app: &TestApp, member: &str, amount: i64) {
    let (status, body) = send(
        app.admin(Method::POST, &format!("/v1/members/{member}/points"))
            .header("Idempotency-Key", ulid::Ulid::new().to_string())
            .json(&json!({"amount": amount.to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Charges a member's wallet from their linked account.
pub async fn charge(app: &TestApp, linked: &Linked, amount: i64) {
    let (status, body) = post_money(
        app,
        &linked.member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": amount.to_string()}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The posted balance of a ledger account by code, zero when it was never opened.
pub async fn posted(app: &TestApp, code: &str) -> i64 {
    match app
        .ledger
        .account_by_code(&ledger::AccountCode::parse(code).unwrap())
        .await
    {
        Ok(account) => account.balance().unwrap().posted.minor(),
        Err(ledger::LedgerError::AccountNotFound(_)) => 0,
        Err(error) => panic!("{error}"),
    }
}

/// A merchant's payable account code.
pub fn payable(merchant: &str) -> String {
    format!("liability:merchant:{merchant}:payable:KRW")
}

/// A merchant's escrow account code.
pub fn escrow(merchant: &str) -> String {
    format!("liability:merchant:{merchant}:escrow:KRW")
}

/// The signed postings (debits positive) of a ledger transaction, by account code, sorted.
pub async fn postings(app: &TestApp, id: &str) -> Vec<(String, i64)> {
    let tx = app.ledger.transaction(id).await.expect("the transaction");
    let mut legs = Vec::new();
    for posting in tx.postings {
        let account = app
            .ledger
            .account(posting.account_id.as_str())
            .await
            .unwrap();
        legs.push((account.code.as_str().to_owned(), posting.signed_minor()));
    }
    legs.sort();
    legs
}

/// What the sandbox PSP holds for an order id.
pub async fn psp_lookup(app: &TestApp, order_id: &str) -> psp::PaymentLookup {
    use psp::CardProcessor;
    artifacts::record_secret("psp_secret_key", "test_sk_check");
    let processor = psp::TossPayments::new(psp::TossConfig::new(
        &app.psp_url,
        psp::SecretKey::new("test_sk_check"),
    ))
    .unwrap();
    processor
        .payment_by_order(&psp::PspOrderId::parse(order_id).unwrap())
        .await
        .unwrap()
}

/// The ledger's invariants hold.
pub async fn assert_books_hold(app: &TestApp) {
    let report = ledger::check(app.ledger.db()).await.expect("check");
    assert!(report.is_ok(), "{report}");
}

/// A job handler that fails until the test says the cause is fixed, to make dead letters.
#[derive(Debug, Default)]
pub struct Flaky {
    pub fixed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl jobs::JobHandler for Flaky {
    async fn run(&self, _job: &jobs::Job) -> Result<(), jobs::JobFailure> {
        if self.fixed.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err(jobs::JobFailure::Retry("the partner bank is down".into()))
        }
    }
}
