//! Escrow over HTTP, black-box, on a clock only the test moves: an escrow order's money from
//! the seller's escrow account to its payable account (by the buyer, or by the timer exactly a
//! week after delivery), disputes that stop the timers and move them by the time they lasted,
//! cancellation within 72 hours refunding the buyer, steps out of order, who may take which
//! step, the events each step records, refunds against an escrow (a partial refund kept out of
//! the release, a pending one holding it back), a cancellation beside a pending refund that
//! waits for it and then refunds what the PSP refused, confirmations racing cancellations, and
//! a confirmation cut short finished by the due pass.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    assert_books_hold, assert_error, linked_member, post_money, posted, send,
    spawn_app_with_manual_clock, Linked, TestApp, MANUAL_START_MICROS, MEMBER_PASSWORD, PSP_HOLD,
};
use ledger::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const SECOND_US: i64 = 1_000_000;
const HOUR_US: i64 = 3_600 * SECOND_US;
const DAY_US: i64 = 24 * HOUR_US;
/// The default cancel window and automatic confirmation delay.
const CANCEL_WINDOW_US: i64 = 72 * HOUR_US;
const AUTO_CONFIRM_US: i64 = 7 * DAY_US;

/// A test server on a manual clock with one seller and one buyer whose wallet holds 50,000.
struct Market {
    app: TestApp,
    clock: Arc<ManualClock>,
    seller: String,
    seller_key: String,
    buyer: Linked,
}

async fn market(n: u32) -> Market {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let (seller, seller_key) = app.merchant("Second-hand Shop").await;
    let buyer = linked_member(&app, n, 200_000).await;
    let (status, body) = post_money(
        &app,
        &buyer.member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": "50000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Market {
        app,
        clock,
        seller,
        seller_key,
        buyer,
    }
}

impl Market {
    /// Pays one order from the buyer's wallet; returns its `po_` id.
    async fn pay(&self, payment_order_id: &str, amount: i64, escrow: bool) -> String {
        let funding = json!({"money": amount.to_string()});
        self.pay_with(payment_order_id, amount, escrow, funding)
            .await
    }

    /// Pays one order with the given funding; returns its `po_` id.
    async fn pay_with(
        &self,
        payment_order_id: &str,
        amount: i64,
        escrow: bool,
        funding: Value,
    ) -> String {
        let body = json!({
            "checkout_id": format!("chk-{payment_order_id}"),
            "funding": funding,
            "payment_orders": [{
                "seller_account": self.seller, "amount": amount.to_string(), "currency": "KRW",
                "payment_order_id": payment_order_id, "escrow": escrow,
            }],
        });
        let (status, payment) = send(
            self.app
                .bearer(&self.buyer.member.token, Method::POST, "/v1/payments")
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{payment}");
        assert_eq!(payment["status"], "succeeded", "{payment}");
        payment["payment_orders"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Takes an escrow step as `token`.
    async fn step(&self, token: &str, order: &str, step: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.app
                .bearer(
                    token,
                    Method::POST,
                    &format!("/v1/payment-orders/{order}/escrow/{step}"),
                )
                .json(&body),
        )
        .await
    }

    /// Takes a step that must succeed; returns the escrow after it.
    async fn ok(&self, token: &str, order: &str, step: &str, body: Value) -> Value {
        let (status, escrow) = self.step(token, order, step, body).await;
        assert_eq!(status, StatusCode::OK, "{step}: {escrow}");
        escrow
    }

    async fn escrow(&self, token: &str, order: &str) -> (StatusCode, Value) {
        send(self.app.bearer(
            token,
            Method::GET,
            &format!("/v1/payment-orders/{order}/escrow"),
        ))
        .await
    }

    /// The escrow as the admin key reads it.
    async fn read(&self, order: &str) -> Value {
        let (status, escrow) = self.escrow(&self.app.admin_key, order).await;
        assert_eq!(status, StatusCode::OK, "{escrow}");
        escrow
    }

    fn buyer(&self) -> &str {
        &self.buyer.member.token
    }

    /// Moves the clock and logs the buyer in again: sessions last a day on the same clock.
    async fn advance(&mut self, micros: i64) {
        self.clock.advance_micros(micros);
        let (status, session) = self
            .app
            .log_in(&self.buyer.member.email, MEMBER_PASSWORD)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        self.buyer.member.token = session["token"].as_str().unwrap().to_owned();
    }

    fn now(&self) -> i64 {
        use ledger::Clock;
        self.clock.now_micros()
    }

    async fn due(&self) -> usize {
        self.app.payments.escrow_due(100).await.unwrap()
    }

    /// The escrow events recorded for the seller (of one escrow per test), oldest first:
    /// (type, version, data).
    async fn events(&self) -> Vec<(String, i64, Value)> {
        let (status, page) = send(self.app.bearer(
            &self.seller_key,
            Method::GET,
            &format!("/v1/merchants/{}/webhook-events?limit=100", self.seller),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut events: Vec<(String, i64, Value)> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["type"] == "escrow")
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["resource"]["version"].as_i64().unwrap(),
                    e["data"].clone(),
                )
            })
            .collect();
        // Versions order one resource's events; ids only roughly order events.
        events.sort_by_key(|(_, version, _)| *version);
        events
    }

    async fn wallet(&self) -> i64 {
        let (status, body) = send(
            self.app
                .bearer(self.buyer(), Method::GET, "/v1/wallets/KRW"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["available"].as_str().unwrap().parse().unwrap()
    }

    fn escrow_account(&self) -> String {
        format!("liability:merchant:{}:escrow:KRW", self.seller)
    }

    fn payable_account(&self) -> String {
        format!("liability:merchant:{}:payable:KRW", self.seller)
    }
}

/// Microseconds of an RFC 3339 time in a response.
fn micros(value: &Value) -> i64 {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    let instant = OffsetDateTime::parse(text, &Rfc3339).unwrap();
    i64::try_from(instant.unix_timestamp_nanos() / 1000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_escrow_is_shipped_delivered_and_confirmed_into_the_sellers_payable_account() {
    let mut m = market(1).await;
    let order = m.pay("order-escrow-happy", 8_000, true).await;
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 8_000);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 0);

    let (status, held) = m.escrow(m.buyer(), &order).await;
    assert_eq!(status, StatusCode::OK, "{held}");
    assert_eq!(held["state"], "held");
    assert_eq!(held["id"], order.as_str());
    assert_eq!(held["payment_order_id"], "order-escrow-happy");
    assert_eq!(held["amount"], "8000");
    assert_eq!(held["refunded"], "0");
    assert_eq!(held["buyer"], m.buyer.member.id.as_str());
    assert_eq!(held["seller_account"], m.seller.as_str());
    assert_eq!(held["closing"], Value::Null);
    let held_at = micros(&held["held_at"]);
    assert_eq!(micros(&held["cancel_until"]), held_at + CANCEL_WINDOW_US);
    assert!(held_at >= MANUAL_START_MICROS);

    let shipped = m
        .ok(
            &m.seller_key,
            &order,
            "ship",
            json!({"tracking_number": "CJ-601234567890"}),
        )
        .await;
    assert_eq!(shipped["state"], "shipped");
    assert_eq!(shipped["tracking_number"], "CJ-601234567890");
    assert_eq!(micros(&shipped["shipped_at"]), m.now());
    // Shipping again under the same number changes nothing.
    let again = m
        .ok(
            &m.seller_key,
            &order,
            "ship",
            json!({"tracking_number": "CJ-601234567890"}),
        )
        .await;
    assert_eq!(again, shipped);

    m.advance(DAY_US).await;
    let delivered = m.ok(&m.seller_key, &order, "deliver", json!({})).await;
    assert_eq!(delivered["state"], "delivered");
    let delivered_at = micros(&delivered["delivered_at"]);
    assert_eq!(delivered_at, m.now());
    assert_eq!(
        micros(&delivered["confirm_at"]),
        delivered_at + AUTO_CONFIRM_US
    );

    m.advance(HOUR_US).await;
    let buyer = m.buyer().to_owned();
    let confirmed = m.ok(&buyer, &order, "confirm", json!({})).await;
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["closed_by"], "buyer");
    assert_eq!(micros(&confirmed["closed_at"]), m.now());
    assert_eq!(confirmed["closing"], Value::Null);

    // The release is one ledger transaction under the order's id: escrow → payable.
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 8_000);
    let release = m
        .app
        .ledger
        .transaction(&format!("{order}.release"))
        .await
        .unwrap();
    let mut legs = Vec::new();
    for posting in release.postings {
        let account = m
            .app
            .ledger
            .account(posting.account_id.as_str())
            .await
            .unwrap();
        legs.push((account.code.as_str().to_owned(), posting.signed_minor()));
    }
    legs.sort();
    assert_eq!(
        legs,
        vec![(m.escrow_account(), 8_000), (m.payable_account(), -8_000)]
    );

    // Confirming again answers the same escrow and moves nothing.
    let again = m.ok(&buyer, &order, "confirm", json!({})).await;
    assert_eq!(again, confirmed);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 8_000);
    let (_, read) = send(
        m.app
            .bearer(&buyer, Method::GET, &format!("/v1/payment-orders/{order}")),
    )
    .await;
    assert_eq!(read["escrow_state"], "confirmed", "{read}");

    // Each step was recorded for the seller with the escrow's version after it.
    let events = m.events().await;
    let kinds: Vec<(&str, i64)> = events.iter().map(|(t, v, _)| (t.as_str(), *v)).collect();
    assert_eq!(
        kinds,
        vec![
            ("escrow.shipped", shipped["version"].as_i64().unwrap()),
            ("escrow.delivered", delivered["version"].as_i64().unwrap()),
            ("escrow.confirmed", confirmed["version"].as_i64().unwrap()),
        ]
    );
    let (_, _, data) = &events[2];
    assert_eq!(data["id"], order.as_str());
    assert_eq!(data["state"], "confirmed");
    assert_eq!(data["actor"], "buyer");
    assert_eq!(data["amount"], "8000");
    assert_eq!(events[0].2["tracking_number"], "CJ-601234567890");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivered_escrow_confirms_itself_exactly_a_week_after_delivery() {
    let mut m = market(2).await;
    let order = m.pay("order-escrow-timer", 12_000, true).await;
    m.ok(&m.seller_key, &order, "ship", json!({})).await;
    m.advance(2 * DAY_US).await;
    let delivered = m.ok(&m.seller_key, &order, "deliver", json!({})).await;
    let confirm_at = micros(&delivered["confirm_at"]);

    m.advance(confirm_at - m.now() - 1).await;
    assert_eq!(m.due().await, 0, "one microsecond early");
    assert_eq!(m.read(&order).await["state"], "delivered");
    assert_eq!(posted(&m.app, &m.payable_account()).await, 0);

    m.advance(1).await;
    assert_eq!(m.due().await, 1);
    let confirmed = m.read(&order).await;
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["closed_by"], "timer");
    assert_eq!(micros(&confirmed["closed_at"]), confirm_at);
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 12_000);
    assert_eq!(m.due().await, 0, "nothing is confirmed twice");
    let events = m.events().await;
    let (kind, _, data) = events.last().unwrap();
    assert_eq!(kind, "escrow.confirmed");
    assert_eq!(data["actor"], "timer");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dispute_stops_the_timers_and_resolving_it_moves_them_by_the_time_it_lasted() {
    let mut m = market(3).await;
    let order = m.pay("order-escrow-dispute", 9_000, true).await;
    let held = m.read(&order).await;
    let cancel_until = micros(&held["cancel_until"]);
    m.ok(&m.seller_key, &order, "ship", json!({})).await;
    m.advance(HOUR_US).await;
    let delivered = m.ok(&m.seller_key, &order, "deliver", json!({})).await;
    let confirm_at = micros(&delivered["confirm_at"]);

    m.advance(HOUR_US).await;
    let buyer = m.buyer().to_owned();
    let disputed = m
        .ok(
            &buyer,
            &order,
            "dispute",
            json!({"reason": "상자가 비어 있었습니다"}),
        )
        .await;
    let disputed_at = micros(&disputed["disputed_at"]);
    assert_eq!(disputed_at, m.now());
    assert_eq!(disputed["disputed_by"], "buyer");
    // Disputing again answers the open dispute.
    assert_eq!(m.ok(&buyer, &order, "dispute", json!({})).await, disputed);

    // Ten days later both deadlines have passed, but nothing happens while disputed.
    let paused = 10 * DAY_US;
    m.advance(paused).await;
    assert!(m.now() > confirm_at && m.now() > cancel_until);
    assert_eq!(m.due().await, 0);
    assert_eq!(m.read(&order).await, disputed);
    let buyer = m.buyer().to_owned();
    for (token, step) in [
        (buyer.as_str(), "confirm"),
        (buyer.as_str(), "cancel"),
        (m.seller_key.as_str(), "ship"),
    ] {
        let (status, body) = m.step(token, &order, step, json!({})).await;
        assert_error(status, &body, 409, "escrow_disputed");
    }
    // Only staff resolve.
    for token in [buyer.as_str(), m.seller_key.as_str()] {
        let (status, body) = m.step(token, &order, "resolve", json!({})).await;
        assert_error(status, &body, 403, "escrow_action_forbidden");
    }
    let (_, platform) = m.app.api_key("platform").await;
    let resolved = m
        .ok(
            &platform,
            &order,
            "resolve",
            json!({"reason": "the seller sent the item again"}),
        )
        .await;
    assert_eq!(resolved["disputed_at"], Value::Null);
    assert_eq!(resolved["disputed_by"], Value::Null);
    assert_eq!(resolved["state"], "delivered");
    assert_eq!(micros(&resolved["cancel_until"]), cancel_until + paused);
    assert_eq!(micros(&resolved["confirm_at"]), confirm_at + paused);

    // The timer now runs from where it stopped: due exactly at the moved deadline.
    let new_confirm_at = confirm_at + paused;
    m.advance(new_confirm_at - m.now() - 1).await;
    assert_eq!(m.due().await, 0);
    m.advance(1).await;
    assert_eq!(m.due().await, 1);
    assert_eq!(m.read(&order).await["state"], "confirmed");
    assert_eq!(posted(&m.app, &m.payable_account()).await, 9_000);

    let kinds: Vec<String> = m.events().await.into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(
        kinds,
        vec![
            "escrow.shipped",
            "escrow.delivered",
            "escrow.disputed",
            "escrow.resolved",
            "escrow.confirmed"
        ]
    );
    let events = m.events().await;
    assert_eq!(events[2].2["reason"], "상자가 비어 있었습니다");
    assert_eq!(events[2].2["actor"], "buyer");
    assert_eq!(events[3].2["actor"], "staff");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_out_of_order_are_refused_with_stable_codes() {
    let mut m = market(4).await;
    let order = m.pay("order-escrow-order", 5_000, true).await;
    let direct = m.pay("order-direct-1", 1_000, false).await;
    let buyer = m.buyer().to_owned();

    let (status, body) = m.step(&m.seller_key, &order, "deliver", json!({})).await;
    assert_error(status, &body, 409, "escrow_state_invalid");
    let (status, body) = m.step(&buyer, &order, "confirm", json!({})).await;
    assert_error(status, &body, 409, "escrow_state_invalid");
    // Resolving with no dispute open changes nothing.
    let held = m.read(&order).await;
    assert_eq!(
        m.ok(&m.app.admin_key, &order, "resolve", json!({})).await,
        held
    );

    // Orders without escrow, and orders that do not exist, have none.
    for id in [
        direct.as_str(),
        "order-direct-1",
        "po_nope",
        "no-such-order",
    ] {
        let (status, body) = m.escrow(&buyer, id).await;
        assert_error(status, &body, 404, "escrow_not_found");
        let (status, body) = m.step(&m.app.admin_key, id, "ship", json!({})).await;
        assert_error(status, &body, 404, "escrow_not_found");
    }

    // Malformed steps change nothing.
    for (step, body) in [
        ("ship", json!({"tracking_number": "has space"})),
        ("ship", json!({"tracking_number": ""})),
        ("ship", json!({"carrier": "CJ"})),
        ("dispute", json!({"reason": "x".repeat(201)})),
        ("confirm", json!({"reason": "nice"})),
    ] {
        let (status, answer) = m.step(&m.app.admin_key, &order, step, body).await;
        assert_error(status, &answer, 400, "invalid_request");
    }
    assert_eq!(m.read(&order).await, held);

    // The client's order id names the escrow as well as the po_ id does.
    m.ok(&m.seller_key, "order-escrow-order", "ship", json!({}))
        .await;
    // Past its confirmation time a delivered escrow can no longer be disputed.
    m.ok(&m.seller_key, &order, "deliver", json!({})).await;
    m.advance(AUTO_CONFIRM_US).await;
    let buyer = m.buyer().to_owned();
    let (status, body) = m.step(&buyer, &order, "dispute", json!({})).await;
    assert_error(status, &body, 409, "escrow_state_invalid");

    // A confirmed escrow takes no further step.
    m.ok(&buyer, &order, "confirm", json!({})).await;
    for (token, step) in [
        (m.seller_key.as_str(), "ship"),
        (m.seller_key.as_str(), "deliver"),
        (buyer.as_str(), "dispute"),
        (buyer.as_str(), "cancel"),
    ] {
        let (status, body) = m.step(token, &order, step, json!({})).await;
        assert_error(status, &body, 409, "escrow_state_invalid");
    }
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_buyer_the_seller_and_staff_see_an_escrow_each_taking_its_own_steps() {
    let m = market(5).await;
    let order = m.pay("order-escrow-who", 6_000, true).await;
    let stranger = m.app.member("stranger@example.com", "010-3000-0001").await;
    let (_, other_shop_key) = m.app.merchant("Other Shop").await;
    let (_, platform) = m.app.api_key("platform").await;
    let buyer = m.buyer().to_owned();

    for token in [
        buyer.as_str(),
        m.seller_key.as_str(),
        platform.as_str(),
        m.app.admin_key.as_str(),
    ] {
        let (status, body) = m.escrow(token, &order).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for token in [stranger.token.as_str(), other_shop_key.as_str()] {
        let (status, body) = m.escrow(token, &order).await;
        assert_error(status, &body, 404, "escrow_not_found");
        for step in ["ship", "deliver", "confirm", "dispute", "resolve", "cancel"] {
            let (status, body) = m.step(token, &order, step, json!({})).await;
            assert_error(status, &body, 404, "escrow_not_found");
        }
    }
    let (status, body) = send(
        m.app
            .anonymous(Method::GET, &format!("/v1/payment-orders/{order}/escrow")),
    )
    .await;
    assert_error(status, &body, 401, "unauthenticated");

    // The buyer neither ships nor delivers; the seller neither confirms nor resolves.
    let (status, body) = m.step(&buyer, &order, "ship", json!({})).await;
    assert_error(status, &body, 403, "escrow_action_forbidden");
    m.ok(&platform, &order, "ship", json!({})).await;
    let (status, body) = m.step(&buyer, &order, "deliver", json!({})).await;
    assert_error(status, &body, 403, "escrow_action_forbidden");
    m.ok(&m.seller_key, &order, "deliver", json!({})).await;
    let (status, body) = m.step(&m.seller_key, &order, "confirm", json!({})).await;
    assert_error(status, &body, 403, "escrow_action_forbidden");
    // The seller may dispute too; staff resolve.
    let disputed = m.ok(&m.seller_key, &order, "dispute", json!({})).await;
    assert_eq!(disputed["disputed_by"], "seller");
    let (status, body) = m.step(&m.seller_key, &order, "resolve", json!({})).await;
    assert_error(status, &body, 403, "escrow_action_forbidden");
    m.ok(&m.app.admin_key, &order, "resolve", json!({})).await;
    let confirmed = m.ok(&buyer, &order, "confirm", json!({})).await;
    assert_eq!(confirmed["state"], "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_cut_short_after_its_claim_is_finished_by_the_due_pass() {
    let mut m = market(6).await;
    let order = m.pay("order-escrow-crash", 7_000, true).await;
    m.ok(&m.seller_key, &order, "ship", json!({})).await;
    // A confirmation that claimed the escrow and stopped before the release (a crash), as the
    // claim leaves the row.
    sqlx::query(
        "UPDATE escrows SET closing = 'confirm', closed_by = 'buyer', release_amount = 7000, \
         version = version + 1 WHERE payment_order_id = $1",
    )
    .bind(&order)
    .execute(m.app.db.db.pool())
    .await
    .unwrap();
    let claimed = m.read(&order).await;
    assert_eq!(claimed["closing"], "confirm");
    // A claimed confirmation excludes a cancellation and a dispute.
    let buyer = m.buyer().to_owned();
    for step in ["cancel", "dispute"] {
        let (status, body) = m.step(&buyer, &order, step, json!({})).await;
        assert_error(status, &body, 409, "escrow_state_invalid");
    }
    // The due pass leaves it to its own request for a while, then finishes it.
    assert_eq!(m.due().await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 0);
    m.advance(15 * SECOND_US).await;
    assert_eq!(m.due().await, 1);
    let confirmed = m.read(&order).await;
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["closed_by"], "buyer");
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 7_000);
    assert_eq!(m.due().await, 0);
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_within_72_hours_refunds_the_buyer_and_later_is_refused() {
    let mut m = market(7).await;
    let first = m.pay("order-escrow-cancel-1", 8_000, true).await;
    let second = m.pay("order-escrow-cancel-2", 6_000, true).await;
    assert_eq!(m.wallet().await, 36_000);
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 14_000);
    m.ok(&m.seller_key, &first, "ship", json!({})).await;
    let cancel_until = micros(&m.read(&first).await["cancel_until"]);
    assert_eq!(cancel_until, micros(&m.read(&second).await["cancel_until"]));

    // The window's last microsecond still cancels.
    m.advance(cancel_until - m.now()).await;
    let buyer = m.buyer().to_owned();
    let cancelled = m
        .ok(&buyer, &first, "cancel", json!({"reason": "단순 변심"}))
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["closed_by"], "buyer");
    assert_eq!(cancelled["refunded"], "8000");
    assert_eq!(cancelled["closing"], Value::Null);
    assert_eq!(m.wallet().await, 44_000);
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 6_000);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 0);
    // Cancelling again answers the same escrow; nothing else applies any more.
    assert_eq!(m.ok(&buyer, &first, "cancel", json!({})).await, cancelled);
    assert_eq!(m.wallet().await, 44_000);
    let (status, body) = m.step(&buyer, &first, "confirm", json!({})).await;
    assert_error(status, &body, 409, "escrow_state_invalid");

    // The refund is the refunds API's, under the escrow's key and with the buyer's reason.
    let (status, refunds) = send(m.app.bearer(
        &buyer,
        Method::GET,
        &format!("/v1/payment-orders/{first}/refunds"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{refunds}");
    let refunds = refunds["data"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["status"], "succeeded");
    assert_eq!(refunds[0]["amount"], "8000");
    assert_eq!(refunds[0]["reason"], "단순 변심");

    // One microsecond later the window has closed, for every party.
    m.advance(1).await;
    let buyer = m.buyer().to_owned();
    for token in [
        buyer.as_str(),
        m.seller_key.as_str(),
        m.app.admin_key.as_str(),
    ] {
        let (status, body) = m.step(token, &second, "cancel", json!({})).await;
        assert_error(status, &body, 422, "escrow_cancel_window_closed");
    }
    assert_eq!(m.read(&second).await["state"], "held");
    assert_eq!(m.wallet().await, 44_000);

    let events = m.events().await;
    let (kind, _, data) = events.last().unwrap();
    assert_eq!(kind, "escrow.cancelled");
    assert_eq!(data["id"], first.as_str());
    assert_eq!(data["actor"], "buyer");
    assert_eq!(data["reason"], "단순 변심");
    assert_eq!(data["refunded"], "8000");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_in_progress_holds_the_release_back_and_refunds_are_kept_out_of_it() {
    let mut m = market(8).await;
    let card = json!({"card": {"billing_key": "bk_test_ok_escrow", "amount": "10000"}});
    let order = m.pay_with("order-escrow-refund", 10_000, true, card).await;
    m.ok(&m.seller_key, &order, "ship", json!({})).await;
    m.ok(&m.seller_key, &order, "deliver", json!({})).await;

    // Staff refund 3,000 of the card part; the PSP's reply is lost, so it stays pending.
    let refunds = format!("/v1/payment-orders/{order}/refunds");
    let (status, refund) = send(
        m.app
            .admin(Method::POST, &refunds)
            .header("Idempotency-Key", "partial-1")
            .json(&json!({"amount": "3000", "reason": "test:lost_reply part of the box"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{refund}");
    let buyer = m.buyer().to_owned();
    let (status, body) = m.step(&buyer, &order, "confirm", json!({})).await;
    assert_error(status, &body, 409, "refund_in_progress");
    m.advance(AUTO_CONFIRM_US).await;
    assert_eq!(m.due().await, 0, "the timer waits for the refund");
    assert_eq!(m.read(&order).await["state"], "delivered");

    // The refund ends (the PSP answers the cancellation sent again); the timer then releases
    // what it left.
    tokio::time::sleep(PSP_HOLD).await;
    m.app
        .payments
        .resume_refunds(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 7_000);
    assert_eq!(m.due().await, 1);
    let confirmed = m.read(&order).await;
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["refunded"], "3000");
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 7_000);

    // A refund after the release takes from payable, never from escrow.
    let (status, refund) = send(
        m.app
            .admin(Method::POST, &refunds)
            .header("Idempotency-Key", "after-release")
            .json(&json!({"amount": "2000", "reason": "late damage claim"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    assert_eq!(posted(&m.app, &m.payable_account()).await, 5_000);
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancellation_beside_a_pending_refund_waits_for_it_and_refunds_what_it_gives_back() {
    let mut m = market(9).await;
    let card = json!({"card": {"billing_key": "bk_test_ok_escrow9", "amount": "10000"}});
    let order = m.pay_with("order-escrow-beside", 10_000, true, card).await;

    // Staff refund 3,000 while the PSP is down: the refund is reserved and waits.
    m.app.stop_psp().await;
    let refunds = format!("/v1/payment-orders/{order}/refunds");
    let (status, staff_refund) = send(
        m.app
            .admin(Method::POST, &refunds)
            .header("Idempotency-Key", "beside-1")
            .json(&json!({"amount": "3000", "reason": "test:refuse the PSP says no"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{staff_refund}");
    m.app.start_psp(psp::sandbox::IDEMPOTENCY_TTL_DEFAULT).await;

    // The buyer cancels: the 7,000 left comes back at once, but the escrow stays claimed while
    // the staff refund may still give its 3,000 back to the order. The answer is not kept for
    // replay.
    let buyer = m.buyer().to_owned();
    let (status, cancelling) = m
        .step(
            &buyer,
            &order,
            "cancel",
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelling}");
    assert_eq!(cancelling["closing"], "cancel");
    assert_eq!(
        cancelling["refunded"], "10000",
        "7,000 refunded, 3,000 reserved"
    );
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 3_000);
    m.advance(HOUR_US).await;
    assert_eq!(m.due().await, 0, "the staff refund is still pending");
    assert_eq!(m.read(&order).await["closing"], "cancel");

    // The PSP refuses the staff refund when it is sent again (it never cancelled it): its
    // 3,000 goes back to the order, and the due pass refunds it under the escrow's next key.
    let pass = m
        .app
        .payments
        .resume_refunds(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(pass.finished, 1);
    let id = staff_refund["id"].as_str().unwrap();
    let (_, failed) = m.app.get(&format!("/v1/refunds/{id}")).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure_code"], "not_cancelable");
    m.advance(HOUR_US).await;
    assert_eq!(m.due().await, 1);
    let cancelled = m.read(&order).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["closing"], Value::Null);
    assert_eq!(cancelled["refunded"], "10000");
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);

    let (_, list) = m.app.get(&refunds).await;
    let list: Vec<(String, String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["amount"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |amount: &str, status: &str, reason: &str| {
        (amount.to_owned(), status.to_owned(), reason.to_owned())
    };
    assert_eq!(
        list,
        vec![
            row("3000", "failed", "test:refuse the PSP says no"),
            row("7000", "succeeded", "changed my mind"),
            row("3000", "succeeded", "changed my mind"),
        ]
    );
    let record = match common::psp_lookup(&m.app, "order-escrow-beside").await {
        psp::PaymentLookup::Found(record) => record,
        psp::PaymentLookup::NotFound => panic!("the PSP has no payment"),
    };
    assert_eq!(record.balance_amount, 0, "{record:?}");
    assert_eq!(record.cancels.len(), 2, "{record:?}");
    let events = m.events().await;
    let (kind, _, data) = events.last().unwrap();
    assert_eq!(kind, "escrow.cancelled");
    assert_eq!(data["refunded"], "10000");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmations_racing_cancellations_move_the_money_once() {
    let m = market(9).await;
    let order = m.pay("order-escrow-race", 9_000, true).await;
    m.ok(&m.seller_key, &order, "ship", json!({})).await;
    let before = m.wallet().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, base) = (m.app.client.clone(), m.app.base.clone());
        let (token, step) = if i % 2 == 0 {
            (m.buyer().to_owned(), "confirm")
        } else {
            (m.seller_key.clone(), "cancel")
        };
        let path = format!("{base}/v1/payment-orders/{order}/escrow/{step}");
        tasks.spawn(async move {
            let response = client.post(path).bearer_auth(token).json(&json!({})).send();
            let (status, body) = common::json_of(response.await.unwrap()).await;
            (step, status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    let end = m.read(&order).await;
    let winner = if end["state"] == "confirmed" {
        "confirm"
    } else {
        "cancel"
    };
    assert!(
        end["state"] == "confirmed" || end["state"] == "cancelled",
        "{end}"
    );
    for (step, status, body) in &answers {
        if *step == winner {
            // A cancellation that meets another one still refunding answers 202 `cancelling`.
            let pending = *status == StatusCode::ACCEPTED && body["closing"] == "cancel";
            assert!(
                *status == StatusCode::OK || pending,
                "{step}: {status} {body}"
            );
        } else {
            assert_error(*status, body, 409, "escrow_state_invalid");
        }
    }
    assert_eq!(posted(&m.app, &m.escrow_account()).await, 0);
    let (payable, refunded) = if winner == "confirm" {
        (9_000, 0)
    } else {
        (0, 9_000)
    };
    assert_eq!(posted(&m.app, &m.payable_account()).await, payable);
    assert_eq!(m.wallet().await, before + refunded);
    assert_books_hold(&m.app).await;
}
