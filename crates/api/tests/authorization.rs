//! The authorization matrix: every documented route against every kind of caller, black-box,
//! on a real server with real resources.
//!
//! The callers are member A (the owner of the member resources below), member B (another
//! member), merchant M's key (the seller A buys from, and the owner of the merchant resources),
//! merchant N's key (another merchant), a platform key, the admin key, and four callers that
//! must be refused before anything else happens: no credentials, A's session after logging
//! out, a merchant key after its revocation, and a garbage bearer token.
//!
//! For each route the matrix says what each caller gets. A refusal is checked three ways: the
//! status and error code are the documented ones; the body shows nothing the caller may not see
//! (ids, contact details, account numbers, amounts, secrets of others); and nothing changed
//! anywhere — the digest of every table that holds money, state or credentials is the same
//! after the refused requests as before them. Where the code hides existence, another member's
//! or merchant's resource answers the resource's own 404, exactly as a missing one (`hidden`):
//! members' resources to another member, orders, refunds and escrows to strangers, merchants'
//! resources to another merchant's key. Where the caller's kind may never use the route, the
//! answer is `403 forbidden` whatever the resource (`FORBIDDEN`): keys on `/me` routes,
//! merchant keys on members' resources, members on merchant and staff routes.
//!
//! Refusals run before the permitted calls of the same row, so that each refusal meets a state
//! in which the owner's identical request then succeeds: a refusal can only be due to who asked,
//! never to the body or the state. The rows run in their order here; the last ones end sessions
//! and therefore come last. Probes then name one tenant in the path and another's resource
//! elsewhere, reuse another caller's `Idempotency-Key`, and read a two-seller checkout as each
//! seller; at the end every entry in A's history must come from a permitted call.
//!
//! A second test sends, to every route that takes a JSON body (and to the actions that take
//! none), the fields a client could wish were honoured (`member_id`, `balance`, `status`,
//! `role`, `fee_bps`, another merchant's id, …): each is refused with `400 invalid_request`
//! naming the unknown field and changes nothing, and the same body without it is accepted.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use common::{
    link_active_account, linked_member, open_account, post_money, send, spawn_app, Linked, TestApp,
    TestMerchant, ADMIN_KEY, BANK, HOLDER, MEMBER_PASSWORD, MERCHANT_BANK,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The partner bank of linked partner accounts (the default configuration's).
const PARTNER_BANK: &str = "089";
/// The settlement and reconciliation day the operator routes act on: long past, no sales.
const DAY: &str = "2025-01-02";
/// What A charges into the wallet at the start: a distinctive figure that shows in A's history,
/// so that a leaked history is found by looking for it.
const A_CHARGE: &str = "98765";
/// What each member's bank account holds before linking.
const BANK_BALANCE: i64 = 1_000_000;
/// The address of member C, whom the log-in row logs in.
const LOGIN_EMAIL: &str = "c@example.com";
/// The item A's first checkout holds.
const ITEM: &str = "listing:authz-1";

// ---------------------------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------------------------

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Member A, who owns the member resources.
    Owner,
    /// Member B.
    Other,
    /// Merchant M's key: A's seller, the owner of the merchant resources.
    Merchant,
    /// Merchant N's key.
    OtherMerchant,
    Platform,
    Admin,
    Anonymous,
    /// A's session token after `DELETE /v1/sessions/current`.
    RevokedSession,
    /// A key of M's after `POST /v1/admin/api-keys/{id}/revoke`.
    RevokedKey,
    /// A bearer token shaped like a session token that no session has.
    Garbage,
}

/// The callers that authenticate, in the order the permitted calls of a row run.
const AUTHENTICATED: [Who; 6] = [
    Who::Owner,
    Who::Other,
    Who::Merchant,
    Who::OtherMerchant,
    Who::Platform,
    Who::Admin,
];

/// The callers refused with `401 unauthenticated` on every route that needs credentials.
const UNAUTHENTICATED: [Who; 4] = [
    Who::Anonymous,
    Who::RevokedSession,
    Who::RevokedKey,
    Who::Garbage,
];

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// What one caller gets from one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Permitted: answers this status.
    Ok(u16),
    /// Permitted by authorization, then refused by a business rule (this status and code):
    /// the proof that the caller got past the authorization check.
    Refused(u16, &'static str),
    /// Refused for who the caller is: this status and code, no data of others, no change.
    Denied(u16, &'static str),
}

const FORBIDDEN: Expect = Expect::Denied(403, "forbidden");
const UNAUTHENTICATED_ANSWER: Expect = Expect::Denied(401, "unauthenticated");

/// Another tenant's resource, answered exactly as a missing one.
fn hidden(code: &'static str) -> Expect {
    Expect::Denied(404, code)
}

/// What each authenticated caller gets from a route; the unauthenticated ones get 401 unless
/// the route is public.
#[derive(Debug, Clone, Copy)]
struct Access {
    public: bool,
    owner: Expect,
    other: Expect,
    merchant: Expect,
    other_merchant: Expect,
    platform: Expect,
    admin: Expect,
}

impl Access {
    fn of(&self, who: Who) -> Expect {
        match who {
            Who::Owner => self.owner,
            Who::Other => self.other,
            Who::Merchant => self.merchant,
            Who::OtherMerchant => self.other_merchant,
            Who::Platform => self.platform,
            Who::Admin => self.admin,
            Who::Anonymous | Who::RevokedSession | Who::RevokedKey | Who::Garbage => {
                if self.public {
                    self.admin
                } else {
                    UNAUTHENTICATED_ANSWER
                }
            }
        }
    }

    /// The same access with one caller's answer replaced.
    fn but(mut self, who: Who, expect: Expect) -> Access {
        match who {
            Who::Owner => self.owner = expect,
            Who::Other => self.other = expect,
            Who::Merchant => self.merchant = expect,
            Who::OtherMerchant => self.other_merchant = expect,
            Who::Platform => self.platform = expect,
            Who::Admin => self.admin = expect,
            _ => panic!("unauthenticated callers are not configurable"),
        }
        self
    }
}

fn everyone_gets(expect: Expect) -> Access {
    Access {
        public: false,
        owner: expect,
        other: expect,
        merchant: expect,
        other_merchant: expect,
        platform: expect,
        admin: expect,
    }
}

/// No credentials needed: everyone, the refused credentials included, gets `status`.
fn public(status: u16) -> Access {
    Access {
        public: true,
        ..everyone_gets(Expect::Ok(status))
    }
}

/// Admin keys only (the ledger, API keys, jobs, operators).
fn admin_only(ok: Expect) -> Access {
    everyone_gets(FORBIDDEN).but(Who::Admin, ok)
}

/// Admin and platform keys (merchant management, batches, points grants, item locks).
fn operators(ok: Expect) -> Access {
    everyone_gets(FORBIDDEN)
        .but(Who::Platform, ok)
        .but(Who::Admin, ok)
}

/// A route about the calling member themself (`/me`, the caller's wallet): each member gets
/// their own; keys have no "me".
fn member_self(owner: Expect, other: Expect) -> Access {
    everyone_gets(FORBIDDEN)
        .but(Who::Owner, owner)
        .but(Who::Other, other)
}

/// A member's resource named in the path: the owner and staff keys see it; another member
/// gets the resource's 404; merchant keys never read members' resources.
fn member_owned(ok: u16, not_found: &'static str) -> Access {
    everyone_gets(FORBIDDEN)
        .but(Who::Owner, Expect::Ok(ok))
        .but(Who::Other, hidden(not_found))
        .but(Who::Platform, Expect::Ok(ok))
        .but(Who::Admin, Expect::Ok(ok))
}

/// A merchant's resource: its own key and staff keys; another merchant's key gets
/// `merchant_not_found`; members are refused.
fn merchant_owned(ok: Expect) -> Access {
    everyone_gets(FORBIDDEN)
        .but(Who::Merchant, ok)
        .but(Who::OtherMerchant, hidden("merchant_not_found"))
        .but(Who::Platform, ok)
        .but(Who::Admin, ok)
}

/// A payment order or what hangs off it: its buyer (A), its seller's key (M) and staff see it;
/// the other member and the other merchant get the resource's 404.
fn order_party(ok: Expect, not_found: &'static str) -> Access {
    everyone_gets(ok)
        .but(Who::Other, hidden(not_found))
        .but(Who::OtherMerchant, hidden(not_found))
}

// ---------------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------------

type PathFn = fn(&World) -> String;
type BodyFn = fn(&World, u32) -> Value;

/// A request body. Builders get a fresh number per request for the ids a client chooses
/// (checkout ids, email addresses), so that every caller sends the same request otherwise.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// `{}`: an action that takes no fields.
    Empty,
    Json(BodyFn),
}

/// Work a row needs just before it runs, because it depends on an earlier row's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Nothing,
    /// Reads the newest verification code of A's pending account from the bank's statement.
    ReadVerificationCode,
}

/// What a row keeps from the owner's successful answer, for a later row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    Nothing,
    /// The ARS digits of the consent session A opened.
    ArsCode,
}

struct Row {
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The concrete path; the route itself when it has no parameters.
    path: Option<PathFn>,
    body: Body,
    /// Sends a fresh `Idempotency-Key` (required on money-moving routes).
    keyed: bool,
    access: Access,
    before: Before,
    capture: Capture,
}

fn row(method: &'static str, route: &'static str, access: Access) -> Row {
    Row {
        method,
        route,
        path: None,
        body: Body::None,
        keyed: false,
        access,
        before: Before::Nothing,
        capture: Capture::Nothing,
    }
}

impl Row {
    fn at(mut self, path: PathFn) -> Row {
        self.path = Some(path);
        self
    }
    fn json(mut self, body: BodyFn) -> Row {
        self.body = Body::Json(body);
        self
    }
    fn empty(mut self) -> Row {
        self.body = Body::Empty;
        self
    }
    fn keyed(mut self) -> Row {
        self.keyed = true;
        self
    }
    fn before(mut self, before: Before) -> Row {
        self.before = before;
        self
    }
    fn capture(mut self, capture: Capture) -> Row {
        self.capture = capture;
        self
    }
}

/// Every documented route, in the order the rows run.
fn matrix() -> Vec<Row> {
    use Expect::{Ok, Refused};
    vec![
        // Operations: public by design (probes and the contract).
        row("GET", "/healthz", public(200)),
        row("GET", "/readyz", public(200)),
        row("GET", "/metrics", public(200)),
        row("GET", "/v1/openapi.json", public(200)),
        // Signing up and logging in need no credentials, and ignore any that are sent.
        row("POST", "/v1/members", public(201)).json(|_, n| {
            json!({"email": format!("signup{n}@example.com"), "phone": format!("010-3000-{n:04}"),
                   "name": HOLDER, "password": MEMBER_PASSWORD})
        }),
        // Everyone logs in as member C, who exists for this row: a caller who knows C's
        // password is C, whatever else it sends.
        row("POST", "/v1/sessions", public(201))
            .json(|_, _| json!({"email": LOGIN_EMAIL, "password": MEMBER_PASSWORD})),
        // The ledger: admin keys only, whoever's money the accounts hold.
        row("POST", "/v1/ledger/accounts", admin_only(Ok(201))).json(|_, n| {
            json!({"code": format!("liability:authz:n{n}"), "kind": "liability", "currency": "KRW"})
        }),
        row("GET", "/v1/ledger/accounts", admin_only(Ok(200))),
        row("GET", "/v1/ledger/accounts/{id}", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/accounts/{}", w.a_wallet_account)),
        row(
            "GET",
            "/v1/ledger/accounts/{id}/balance",
            admin_only(Ok(200)),
        )
        .at(|w| format!("/v1/ledger/accounts/{}/balance", w.a_wallet_account)),
        row(
            "GET",
            "/v1/ledger/accounts/{id}/history",
            admin_only(Ok(200)),
        )
        .at(|w| format!("/v1/ledger/accounts/{}/history", w.a_wallet_account)),
        row("GET", "/v1/ledger/balances", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/balances?code_prefix=liability:member:{}", w.a.member.id)),
        row("POST", "/v1/ledger/transactions", admin_only(Ok(201))).json(|w, _| {
            common::transfer_body(None, &w.a_wallet_account, &w.sink_account, "1", "KRW")
        }),
        row("GET", "/v1/ledger/transactions/{id}", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/transactions/{}", w.a_charge_tx)),
        row("POST", "/v1/ledger/holds", admin_only(Ok(201))).json(|w, _| {
            json!({"debit_account_id": w.a_wallet_account, "credit_account_id": w.sink_account,
                   "amount": "1", "currency": "KRW"})
        }),
        row("GET", "/v1/ledger/holds/{id}", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/holds/{}", w.hold_to_post)),
        row("POST", "/v1/ledger/holds/{id}/post", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/holds/{}/post", w.hold_to_post))
            .empty(),
        row("POST", "/v1/ledger/holds/{id}/void", admin_only(Ok(200)))
            .at(|w| format!("/v1/ledger/holds/{}/void", w.hold_to_void))
            .empty(),
        // API keys: admin keys only; a merchant key cannot revoke or mint keys.
        row("POST", "/v1/admin/api-keys", admin_only(Ok(201)))
            .json(|_, n| json!({"role": "platform", "name": format!("authz key {n}")})),
        row("GET", "/v1/admin/api-keys", admin_only(Ok(200))),
        row(
            "POST",
            "/v1/admin/api-keys/{id}/revoke",
            admin_only(Ok(200)),
        )
        .at(|w| format!("/v1/admin/api-keys/{}/revoke", w.m_spare_key))
        .empty(),
        // Members: `/me` is the caller's own; another member's id answers like a missing one.
        row("GET", "/v1/members/me", member_self(Ok(200), Ok(200))),
        row("PATCH", "/v1/members/me", member_self(Ok(200), Ok(200)))
            .json(|_, _| json!({"name": HOLDER})),
        // Both members hold money, so closing is refused by the balance rule, after the
        // authorization check; a member closes only themself.
        row(
            "POST",
            "/v1/members/me/close",
            member_self(
                Refused(409, "balance_remaining"),
                Refused(409, "balance_remaining"),
            ),
        )
        .empty(),
        row(
            "GET",
            "/v1/members/{id}",
            member_owned(200, "member_not_found"),
        )
        .at(|w| format!("/v1/members/{}", w.a.member.id)),
        // Linked bank accounts. B may link the same account number for B (B's own link, which
        // the 1-won code then guards); A's links answer B like missing ones.
        row("POST", "/v1/bank-accounts", member_self(Ok(201), Ok(201)))
            .json(|w, _| json!({"bank_code": BANK, "account_number": w.a_new_number})),
        row(
            "GET",
            "/v1/bank-accounts",
            member_owned(200, "member_not_found"),
        )
        .at(|w| format!("/v1/bank-accounts?member_id={}", w.a.member.id)),
        row(
            "POST",
            "/v1/bank-accounts/partner",
            member_self(Ok(201), Refused(409, "partner_account_taken")),
        )
        .json(|w, _| json!({"bank_code": PARTNER_BANK, "account_number": w.a_partner_number})),
        row(
            "GET",
            "/v1/bank-accounts/{id}",
            member_owned(200, "bank_account_not_found"),
        )
        .at(|w| format!("/v1/bank-accounts/{}", w.a_account)),
        row(
            "DELETE",
            "/v1/bank-accounts/{id}",
            member_self(Ok(200), hidden("bank_account_not_found")),
        )
        .at(|w| format!("/v1/bank-accounts/{}", w.a_spare_account)),
        row(
            "POST",
            "/v1/bank-accounts/{id}/verification",
            member_self(Ok(201), hidden("bank_account_not_found")),
        )
        .at(|w| format!("/v1/bank-accounts/{}/verification", w.a_pending_account))
        .empty(),
        // B sends the right code for A's account: still not found, and A's account stays
        // unverified until A sends it.
        row(
            "POST",
            "/v1/bank-accounts/{id}/verify",
            member_self(Ok(200), hidden("bank_account_not_found")),
        )
        .at(|w| format!("/v1/bank-accounts/{}/verify", w.a_pending_account))
        .json(|w, _| json!({"code": w.verification_code}))
        .before(Before::ReadVerificationCode),
        row(
            "POST",
            "/v1/bank-accounts/{id}/consent",
            member_self(Ok(201), hidden("bank_account_not_found")),
        )
        .at(|w| format!("/v1/bank-accounts/{}/consent", w.a_pending_account))
        .empty()
        .capture(Capture::ArsCode),
        // The ARS provider confirms with a platform key (documented); by the time it runs here
        // A has confirmed, so the platform key meets the business rule, not a refusal.
        row(
            "POST",
            "/v1/bank-accounts/{id}/consent/confirm",
            member_self(Ok(200), hidden("bank_account_not_found")).but(
                Who::Platform,
                Refused(409, "debit_consent_exists"),
            ),
        )
        .at(|w| format!("/v1/bank-accounts/{}/consent/confirm", w.a_pending_account))
        .json(|w, _| json!({"code": w.ars_code})),
        // Wallets: the caller's own. A body naming A's bank account does not let B use it.
        row("GET", "/v1/wallets", member_self(Ok(200), Ok(200))),
        row("GET", "/v1/wallets/{currency}", member_self(Ok(200), Ok(200))).at(|_| "/v1/wallets/KRW".into()),
        row(
            "GET",
            "/v1/wallets/{currency}/history",
            member_self(Ok(200), Ok(200)),
        )
        .at(|_| "/v1/wallets/KRW/history".into()),
        row(
            "GET",
            "/v1/wallets/{currency}/transactions/{id}",
            member_self(Ok(200), hidden("money_transaction_not_found")),
        )
        .at(|w| format!("/v1/wallets/KRW/transactions/{}", w.a_charge_tx)),
        row(
            "POST",
            "/v1/wallets/{currency}/charges",
            member_self(Ok(201), hidden("bank_account_not_found")),
        )
        .at(|_| "/v1/wallets/KRW/charges".into())
        .json(|w, _| json!({"amount": "1000", "bank_account_id": w.a_account}))
        .keyed(),
        row(
            "POST",
            "/v1/wallets/{currency}/withdrawals",
            member_self(Ok(201), hidden("bank_account_not_found")),
        )
        .at(|_| "/v1/wallets/KRW/withdrawals".into())
        .json(|w, _| json!({"amount": "1000", "bank_account_id": w.a_account}))
        .keyed(),
        // A payout leaves from the caller's own wallet, whoever sends it: B pays from B's.
        row(
            "POST",
            "/v1/wallets/{currency}/payouts",
            member_self(Ok(201), Ok(201)),
        )
        .at(|_| "/v1/wallets/KRW/payouts".into())
        .json(|w, _| {
            json!({"amount": "1000", "bank_code": BANK, "account_number": w.b.account,
                   "holder_name": HOLDER})
        })
        .keyed(),
        row(
            "GET",
            "/v1/members/{member_id}/wallets/{currency}",
            member_owned(200, "wallet_not_found"),
        )
        .at(|w| format!("/v1/members/{}/wallets/KRW", w.a.member.id)),
        row(
            "GET",
            "/v1/members/{member_id}/wallets/{currency}/history",
            member_owned(200, "wallet_not_found"),
        )
        .at(|w| format!("/v1/members/{}/wallets/KRW/history", w.a.member.id)),
        // A transfer leaves from the caller's wallet: B's identical request is B to B.
        row(
            "POST",
            "/v1/transfers",
            member_self(Ok(201), Refused(422, "transfer_to_self")),
        )
        .json(|w, _| json!({"to": {"member_id": w.b.member.id}, "amount": "1000", "currency": "KRW"}))
        .keyed(),
        // Item locks: staff keys only (the holder is a buyer's checkout).
        row("GET", "/v1/items/{key}/lock", operators(Ok(200)))
            .at(|_| format!("/v1/items/{ITEM}/lock")),
        // Webhooks: the merchant's own key and staff keys, by the merchant in the path.
        row(
            "POST",
            "/v1/merchants/{merchant_id}/webhook-endpoints",
            merchant_owned(Ok(201)),
        )
        .at(|w| format!("/v1/merchants/{}/webhook-endpoints", w.m.id))
        .json(|_, n| json!({"url": format!("https://shop.example/hooks/{n}"), "event_types": []})),
        row(
            "GET",
            "/v1/merchants/{merchant_id}/webhook-endpoints",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/webhook-endpoints", w.m.id)),
        row(
            "GET",
            "/v1/merchants/{merchant_id}/webhook-endpoints/{id}",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/webhook-endpoints/{}", w.m.id, w.endpoint)),
        row(
            "DELETE",
            "/v1/merchants/{merchant_id}/webhook-endpoints/{id}",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/webhook-endpoints/{}", w.m.id, w.spare_endpoint)),
        row(
            "GET",
            "/v1/merchants/{merchant_id}/webhook-events",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/webhook-events", w.m.id)),
        // Re-queueing is the operators'; the delivery is pending, so staff meet the state rule.
        row(
            "POST",
            "/v1/webhook-deliveries/{id}/retry",
            operators(Refused(409, "webhook_delivery_not_dead")),
        )
        .at(|w| format!("/v1/webhook-deliveries/{}/retry", w.delivery))
        .empty(),
        // Dead letters: admin keys only; the job is queued, not dead.
        row("GET", "/v1/admin/jobs", admin_only(Ok(200))),
        row("GET", "/v1/admin/jobs/{id}", admin_only(Ok(200)))
            .at(|w| format!("/v1/admin/jobs/{}", w.job)),
        row(
            "POST",
            "/v1/admin/jobs/{id}/retry",
            admin_only(Refused(409, "job_not_dead")),
        )
        .at(|w| format!("/v1/admin/jobs/{}/retry", w.job))
        .empty(),
        row(
            "POST",
            "/v1/admin/jobs/{id}/discard",
            admin_only(Refused(409, "job_not_dead")),
        )
        .at(|w| format!("/v1/admin/jobs/{}/discard", w.job))
        .empty(),
        // Merchants: managed by operators; a merchant key reads only its own merchant and can
        // change nothing of it (fee, status, settlement account, keys).
        row("POST", "/v1/merchants", operators(Ok(201))).json(|w, _| {
            json!({"name": "New Shop", "fee_bps": 250, "settlement_account": {
                "bank_code": MERCHANT_BANK, "account_number": w.onboard_number,
                "holder_name": "New Shop"}})
        }),
        row("GET", "/v1/merchants", operators(Ok(200))),
        row(
            "GET",
            "/v1/merchants/{merchant_id}",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}", w.m.id)),
        row("PATCH", "/v1/merchants/{merchant_id}", operators(Ok(200)))
            .at(|w| format!("/v1/merchants/{}", w.m.id))
            .json(|_, _| json!({"fee_bps": 300})),
        row(
            "PUT",
            "/v1/merchants/{merchant_id}/settlement-account",
            operators(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/settlement-account", w.m.id))
        .json(|w, _| {
            json!({"bank_code": MERCHANT_BANK, "account_number": w.m_new_settlement_number,
                   "holder_name": M_NAME})
        }),
        row(
            "POST",
            "/v1/merchants/{merchant_id}/api-keys",
            operators(Ok(201)),
        )
        .at(|w| format!("/v1/merchants/{}/api-keys", w.m.id))
        .json(|_, n| json!({"name": format!("authz key {n}")})),
        // Payments. The body names A as the buyer: B may not pay with A's wallet, and keys other
        // than staff may not pay at all.
        row(
            "POST",
            "/v1/payments",
            everyone_gets(FORBIDDEN)
                .but(Who::Owner, Ok(201))
                .but(Who::Platform, Ok(201))
                .but(Who::Admin, Ok(201)),
        )
        .json(|w, n| {
            json!({"buyer": w.a.member.id, "checkout_id": format!("authz-chk-n{n}"),
                   "payment_orders": [{"seller_account": w.m.id, "amount": "1000", "currency": "KRW",
                                       "payment_order_id": format!("authz-po-n{n}")}],
                   "funding": {"money": "1000"}})
        }),
        row(
            "GET",
            "/v1/payments/{id}",
            order_party(Ok(200), "payment_not_found"),
        )
        .at(|w| format!("/v1/payments/{}", w.payment)),
        row(
            "GET",
            "/v1/payment-orders/{id}",
            order_party(Ok(200), "payment_order_not_found"),
        )
        .at(|w| format!("/v1/payment-orders/{}", w.order)),
        row(
            "POST",
            "/v1/members/{member_id}/points",
            operators(Ok(201)),
        )
        .at(|w| format!("/v1/members/{}/points", w.a.member.id))
        .json(|_, _| json!({"amount": "100"}))
        .keyed(),
        row("GET", "/v1/points", member_self(Ok(200), Ok(200))),
        row(
            "GET",
            "/v1/members/{member_id}/points",
            member_owned(200, "wallet_not_found"),
        )
        .at(|w| format!("/v1/members/{}/points", w.a.member.id)),
        // Refunds are the seller's and staff's: the buyer asks the seller, and members are
        // refused before the order is looked up.
        row(
            "POST",
            "/v1/payment-orders/{id}/refunds",
            order_party(Ok(201), "payment_order_not_found")
                .but(Who::Owner, FORBIDDEN)
                .but(Who::Other, FORBIDDEN),
        )
        .at(|w| format!("/v1/payment-orders/{}/refunds", w.order))
        .json(|_, _| json!({"amount": "100", "reason": "authorization matrix"}))
        .keyed(),
        row(
            "GET",
            "/v1/payment-orders/{id}/refunds",
            order_party(Ok(200), "payment_order_not_found"),
        )
        .at(|w| format!("/v1/payment-orders/{}/refunds", w.order)),
        row(
            "GET",
            "/v1/refunds/{id}",
            order_party(Ok(200), "refund_not_found"),
        )
        .at(|w| format!("/v1/refunds/{}", w.refund)),
        // Escrow: each party takes only its own steps (403 escrow_action_forbidden for a party's
        // wrong step); strangers get escrow_not_found. The steps run in the order of the state
        // machine, so that each permitted step succeeds and repeating it answers the same.
        row(
            "GET",
            "/v1/payment-orders/{id}/escrow",
            order_party(Ok(200), "escrow_not_found"),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow", w.escrow_order)),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/ship",
            order_party(Ok(200), "escrow_not_found").but(Who::Owner, ESCROW_STEP_FORBIDDEN),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/ship", w.escrow_order))
        .json(|_, _| json!({"tracking_number": "6012-3456-7890"})),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/deliver",
            order_party(Ok(200), "escrow_not_found").but(Who::Owner, ESCROW_STEP_FORBIDDEN),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/deliver", w.escrow_order))
        .empty(),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/dispute",
            order_party(Ok(200), "escrow_not_found"),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/dispute", w.escrow_order))
        .json(|_, _| json!({"reason": "authorization matrix"})),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/resolve",
            order_party(Ok(200), "escrow_not_found")
                .but(Who::Owner, ESCROW_STEP_FORBIDDEN)
                .but(Who::Merchant, ESCROW_STEP_FORBIDDEN),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/resolve", w.escrow_order))
        .json(|_, _| json!({"reason": "authorization matrix"})),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/confirm",
            order_party(Ok(200), "escrow_not_found").but(Who::Merchant, ESCROW_STEP_FORBIDDEN),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/confirm", w.escrow_order))
        .empty(),
        row(
            "POST",
            "/v1/payment-orders/{id}/escrow/cancel",
            order_party(Ok(200), "escrow_not_found"),
        )
        .at(|w| format!("/v1/payment-orders/{}/escrow/cancel", w.cancel_order))
        .json(|_, _| json!({"reason": "authorization matrix"})),
        // Settlement: runs are the operators'; a merchant reads its own settlements.
        row("POST", "/v1/settlements/runs", operators(Ok(200)))
            .json(|_, _| json!({"date": DAY})),
        row("GET", "/v1/settlements/runs/{date}", operators(Ok(200)))
            .at(|_| format!("/v1/settlements/runs/{DAY}")),
        row(
            "GET",
            "/v1/settlements/runs/{date}/report.csv",
            operators(Ok(200)),
        )
        .at(|_| format!("/v1/settlements/runs/{DAY}/report.csv")),
        row(
            "GET",
            "/v1/merchants/{merchant_id}/settlements",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/settlements", w.m.id)),
        // Remittances: requested by the sender's key or staff; N cannot send M's money; a
        // merchant key lists only its own (N's list must not show M's remittance).
        row(
            "POST",
            "/v1/remittances",
            merchant_owned(Ok(202)),
        )
        .json(|w, _| {
            json!({"sender_merchant_id": w.m.id, "recipient_merchant_id": w.r.id,
                   "amount": "1000", "currency": "KRW"})
        })
        .keyed(),
        row(
            "GET",
            "/v1/remittances",
            merchant_owned(Ok(200)).but(Who::OtherMerchant, Ok(200)),
        ),
        row(
            "GET",
            "/v1/remittances/{id}",
            merchant_owned(Ok(200)).but(Who::OtherMerchant, hidden("remittance_not_found")),
        )
        .at(|w| format!("/v1/remittances/{}", w.remittance)),
        row(
            "POST",
            "/v1/remittances/{id}/retry",
            operators(Refused(409, "remittance_not_retryable")),
        )
        .at(|w| format!("/v1/remittances/{}/retry", w.remittance))
        .empty(),
        row(
            "POST",
            "/v1/merchants/{merchant_id}/debit-mandate",
            operators(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/debit-mandate", w.m.id))
        .empty(),
        row(
            "GET",
            "/v1/merchants/{merchant_id}/debit-mandate",
            merchant_owned(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/debit-mandate", w.m.id)),
        row(
            "DELETE",
            "/v1/merchants/{merchant_id}/debit-mandate",
            operators(Ok(200)),
        )
        .at(|w| format!("/v1/merchants/{}/debit-mandate", w.m.id)),
        // Reconciliation: operators only.
        row("POST", "/v1/reconciliations", operators(Ok(200)))
            .json(|_, _| json!({"date": DAY})),
        row("GET", "/v1/reconciliations", operators(Ok(200))),
        row("GET", "/v1/reconciliations/{date}", operators(Ok(200)))
            .at(|_| format!("/v1/reconciliations/{DAY}")),
        // Console operators: admin keys only.
        row("POST", "/v1/admin/operators", admin_only(Ok(201))).json(|_, n| {
            json!({"email": format!("operator{n}@example.com"), "name": "Authz Operator",
                   "password": MEMBER_PASSWORD})
        }),
        // Last: logging out ends A's and B's sessions, which every row above uses.
        row(
            "DELETE",
            "/v1/sessions/current",
            member_self(Ok(204), Ok(204)),
        ),
    ]
}

const ESCROW_STEP_FORBIDDEN: Expect = Expect::Denied(403, "escrow_action_forbidden");

/// Merchant M's name, also the holder of its settlement accounts.
const M_NAME: &str = "Authz Shop";

// ---------------------------------------------------------------------------------------------
// The world: callers and their resources
// ---------------------------------------------------------------------------------------------

struct World {
    a: Linked,
    b: Linked,
    /// A's phone number as A signed up with it.
    a_phone: String,
    b_phone: String,
    m: TestMerchant,
    n: TestMerchant,
    /// The recipient of M's remittances (a third business, party to nothing else).
    r: TestMerchant,
    platform_key: String,
    revoked_session: String,
    revoked_key: String,
    // A's resources.
    /// A's first linked account, active.
    a_account: String,
    /// A second active account of A's, for the unlink row.
    a_spare_account: String,
    a_spare_number: String,
    /// A linked account waiting for its 1-won code, for the verification rows.
    a_pending_account: String,
    a_pending_number: String,
    /// An account at the bank in A's name, not linked yet.
    a_new_number: String,
    /// An account at the partner bank in A's name, not linked yet.
    a_partner_number: String,
    /// The ledger account of A's KRW wallet.
    a_wallet_account: String,
    /// The money transaction (and ledger transaction) of A's first charge.
    a_charge_tx: String,
    a_payment_tx: String,
    sink_account: String,
    hold_to_post: String,
    hold_to_void: String,
    payment: String,
    order: String,
    escrow_order: String,
    cancel_order: String,
    /// A checkout of A's with one order sold by M and one by N.
    split_payment: String,
    split_orders: [String; 2],
    refund: String,
    // M's resources.
    endpoint: String,
    spare_endpoint: String,
    endpoint_secret: String,
    delivery: String,
    remittance: String,
    job: String,
    m_spare_key: String,
    m_new_settlement_number: String,
    onboard_number: String,
    // Values earlier rows produce for later ones.
    verification_code: String,
    ars_code: String,
}

impl World {
    /// Signs the members up, links their accounts, charges their wallets, onboards the
    /// merchants, and makes one of each resource the matrix names.
    async fn build(app: &TestApp) -> World {
        let a = linked_member(app, 1, BANK_BALANCE).await;
        let b = linked_member(app, 2, BANK_BALANCE).await;
        let m = app.merchant_with_account(M_NAME).await;
        let n = app.merchant_with_account("Other Shop").await;
        let r = app.merchant_with_account("Recipient Co").await;
        let (_, platform_key) = app.api_key("platform").await;
        app.sign_up(LOGIN_EMAIL, "010-2000-0009").await;

        // M's endpoints exist before A pays, so that A's payments record deliveries to them.
        let (endpoint, endpoint_secret) = created_endpoint(app, &m.id, "main").await;
        let (spare_endpoint, _) = created_endpoint(app, &m.id, "spare").await;

        let a_charge_tx = charge(app, &a, A_CHARGE).await;
        charge(app, &b, "20000").await;

        let a_spare_number = "110000000091".to_owned();
        open_account(app, &a_spare_number, HOLDER, 0).await;
        let a_spare_account = link_active_account(app, &a.member, BANK, &a_spare_number).await;
        let a_pending_number = "110000000092".to_owned();
        open_account(app, &a_pending_number, HOLDER, 0).await;
        let (status, pending) = send(
            app.bearer(&a.member.token, Method::POST, "/v1/bank-accounts")
                .json(&json!({"bank_code": BANK, "account_number": a_pending_number})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{pending}");
        let a_new_number = "110000000093".to_owned();
        open_account(app, &a_new_number, HOLDER, 0).await;
        let a_partner_number = "100000000094".to_owned();
        app.open_bank_account(PARTNER_BANK, &a_partner_number, HOLDER)
            .await;
        let a_account = a_linked_account(app, &a).await;

        let (payment, order, a_payment_tx) = pay(app, &a, &m.id, "1", 10_000, false, true).await;
        let (_, escrow_order, _) = pay(app, &a, &m.id, "2", 5_000, true, false).await;
        let (_, cancel_order, _) = pay(app, &a, &m.id, "3", 4_000, true, false).await;
        let (split_payment, split_orders) = pay_two_sellers(app, &a, &m.id, &n.id).await;
        let (status, refund) = post_money(
            app,
            ADMIN_KEY,
            &format!("/v1/payment-orders/{order}/refunds"),
            &json!({"amount": "100", "reason": "setup"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{refund}");

        let (status, events) = app
            .get(&format!("/v1/merchants/{}/webhook-events", m.id))
            .await;
        assert_eq!(status, StatusCode::OK, "{events}");
        let delivery = events["data"][0]["deliveries"][0]["id"]
            .as_str()
            .expect("a delivery of A's payment to M's endpoint")
            .to_owned();

        let (status, mandate) = app
            .post(&format!("/v1/merchants/{}/debit-mandate", m.id), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{mandate}");
        let (status, remittance) = post_money(
            app,
            &m.key,
            "/v1/remittances",
            &json!({"sender_merchant_id": m.id, "recipient_merchant_id": r.id,
                    "amount": "1000", "currency": "KRW"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{remittance}");
        let (status, jobs) = app.get("/v1/admin/jobs").await;
        assert_eq!(status, StatusCode::OK, "{jobs}");
        let job = jobs["data"][0]["id"].as_str().expect("a job").to_owned();
        for path in ["/v1/settlements/runs", "/v1/reconciliations"] {
            let (status, body) = app.post(path, &json!({"date": DAY})).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }

        let a_wallet_account = app
            .ledger
            .account_by_code(
                &ledger::AccountCode::parse(&format!("liability:member:{}:money:KRW", a.member.id))
                    .expect("code"),
            )
            .await
            .expect("A's wallet account")
            .id
            .to_string();
        let sink_account = app
            .account("liability:authz:sink", "liability", "KRW", false)
            .await;
        let hold_to_post = hold(app, &a_wallet_account, &sink_account, "authz-hold-post").await;
        let hold_to_void = hold(app, &a_wallet_account, &sink_account, "authz-hold-void").await;

        let (m_spare_key, _) = merchant_key(app, &m.id, "spare").await;
        let (revoked_id, revoked_key) = merchant_key(app, &m.id, "revoked").await;
        let (status, body) = app
            .post(
                &format!("/v1/admin/api-keys/{revoked_id}/revoke"),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, session) = app.log_in(&a.member.email, MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let revoked_session = session["token"].as_str().expect("token").to_owned();
        let (status, body) =
            send(app.bearer(&revoked_session, Method::DELETE, "/v1/sessions/current")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        let m_new_settlement_number = "7700000000095".to_owned();
        app.open_bank_account(MERCHANT_BANK, &m_new_settlement_number, M_NAME)
            .await;
        let onboard_number = "7700000000096".to_owned();
        app.open_bank_account(MERCHANT_BANK, &onboard_number, "New Shop")
            .await;

        World {
            a_phone: "010-2000-0001".into(),
            b_phone: "010-2000-0002".into(),
            a,
            b,
            m,
            n,
            r,
            platform_key,
            revoked_session,
            revoked_key,
            a_account,
            a_spare_account,
            a_spare_number,
            a_pending_account: pending["id"].as_str().expect("id").to_owned(),
            a_pending_number,
            a_new_number,
            a_partner_number,
            a_wallet_account,
            a_charge_tx,
            a_payment_tx,
            sink_account,
            hold_to_post,
            hold_to_void,
            payment,
            order,
            escrow_order,
            cancel_order,
            split_payment,
            split_orders,
            refund: refund["id"].as_str().expect("refund id").to_owned(),
            endpoint,
            spare_endpoint,
            endpoint_secret,
            delivery,
            remittance: remittance["id"].as_str().expect("id").to_owned(),
            job,
            m_spare_key,
            m_new_settlement_number,
            onboard_number,
            verification_code: String::new(),
            ars_code: String::new(),
        }
    }

    /// The bearer token a caller sends, if any.
    fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Owner => Some(self.a.member.token.clone()),
            Who::Other => Some(self.b.member.token.clone()),
            Who::Merchant => Some(self.m.key.clone()),
            Who::OtherMerchant => Some(self.n.key.clone()),
            Who::Platform => Some(self.platform_key.clone()),
            Who::Admin => Some(ADMIN_KEY.to_owned()),
            Who::Anonymous => None,
            Who::RevokedSession => Some(self.revoked_session.clone()),
            Who::RevokedKey => Some(self.revoked_key.clone()),
            Who::Garbage => Some(format!("mps_{}", "A".repeat(43))),
        }
    }

    /// What must not show in answers, by whose it is.
    fn secrets(&self) -> Vec<(Group, &'static str, String)> {
        let mask = |number: &str| format!("***-***-{}", &number[number.len() - 4..]);
        let e164 = |phone: &str| format!("+82{}", phone[1..].replace('-', ""));
        let w = self;
        vec![
            (
                Group::Credentials,
                "A's session token",
                w.a.member.token.clone(),
            ),
            (
                Group::Credentials,
                "B's session token",
                w.b.member.token.clone(),
            ),
            (Group::Credentials, "M's key", w.m.key.clone()),
            (Group::Credentials, "N's key", w.n.key.clone()),
            (
                Group::Credentials,
                "the platform key",
                w.platform_key.clone(),
            ),
            (Group::Credentials, "the admin key", ADMIN_KEY.to_owned()),
            (Group::APrivate, "A's email", w.a.member.email.clone()),
            (Group::APrivate, "A's phone", w.a_phone.clone()),
            (Group::APrivate, "A's phone (E.164)", e164(&w.a_phone)),
            (Group::APrivate, "A's account number", w.a.account.clone()),
            (
                Group::APrivate,
                "A's masked account number",
                mask(&w.a.account),
            ),
            (
                Group::APrivate,
                "A's spare account number",
                w.a_spare_number.clone(),
            ),
            (
                Group::APrivate,
                "A's pending account number",
                w.a_pending_number.clone(),
            ),
            (Group::APrivate, "A's linked account", w.a_account.clone()),
            (
                Group::APrivate,
                "A's spare linked account",
                w.a_spare_account.clone(),
            ),
            (
                Group::APrivate,
                "A's pending linked account",
                w.a_pending_account.clone(),
            ),
            (
                Group::APrivate,
                "A's wallet account",
                w.a_wallet_account.clone(),
            ),
            (Group::APrivate, "A's charge", w.a_charge_tx.clone()),
            (
                Group::APrivate,
                "A's payment's money transaction",
                w.a_payment_tx.clone(),
            ),
            (Group::APrivate, "A's charged amount", A_CHARGE.to_owned()),
            (
                Group::APrivate,
                "a hold on A's wallet",
                w.hold_to_post.clone(),
            ),
            (
                Group::ASellerVisible,
                "A's member id",
                w.a.member.id.clone(),
            ),
            (Group::ASellerVisible, "A's payment", w.payment.clone()),
            (Group::ASellerVisible, "A's order", w.order.clone()),
            (
                Group::ASellerVisible,
                "A's escrow order",
                w.escrow_order.clone(),
            ),
            (
                Group::ASellerVisible,
                "A's cancelled order",
                w.cancel_order.clone(),
            ),
            (
                Group::ASellerVisible,
                "A's client order id",
                "authz-po-1".into(),
            ),
            (Group::ASellerVisible, "A's refund", w.refund.clone()),
            (Group::BPrivate, "B's member id", w.b.member.id.clone()),
            (Group::BPrivate, "B's email", w.b.member.email.clone()),
            (Group::BPrivate, "B's phone (E.164)", e164(&w.b_phone)),
            (
                Group::BPrivate,
                "B's masked account number",
                mask(&w.b.account),
            ),
            (
                Group::MPrivate,
                "M's webhook secret",
                w.endpoint_secret.clone(),
            ),
            (Group::MPrivate, "M's endpoint", w.endpoint.clone()),
            (
                Group::MPrivate,
                "M's spare endpoint",
                w.spare_endpoint.clone(),
            ),
            (Group::MPrivate, "M's delivery", w.delivery.clone()),
            (Group::MPrivate, "M's remittance", w.remittance.clone()),
            (
                Group::MPrivate,
                "M's settlement account number",
                w.m.account.clone(),
            ),
            (Group::MPrivate, "M's spare key", w.m_spare_key.clone()),
        ]
    }
}

/// Whose a secret is; [`may_see`] says who may read each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Tokens and keys: nobody ever reads one back.
    Credentials,
    /// A's contact details, accounts, wallet and money transactions.
    APrivate,
    /// What A's seller sees of A's orders.
    ASellerVisible,
    BPrivate,
    MPrivate,
}

fn may_see(who: Who, group: Group) -> bool {
    use Group::*;
    match who {
        Who::Owner => matches!(group, APrivate | ASellerVisible),
        Who::Other => group == BPrivate,
        Who::Merchant => matches!(group, MPrivate | ASellerVisible),
        Who::Platform | Who::Admin => group != Credentials,
        Who::OtherMerchant
        | Who::Anonymous
        | Who::RevokedSession
        | Who::RevokedKey
        | Who::Garbage => false,
    }
}

async fn created_endpoint(app: &TestApp, merchant: &str, name: &str) -> (String, String) {
    let (status, body) = app
        .post(
            &format!("/v1/merchants/{merchant}/webhook-endpoints"),
            &json!({"url": format!("https://shop.example/hooks/{name}"), "event_types": []}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Charges a member's wallet from their default account; returns the money transaction.
async fn charge(app: &TestApp, member: &Linked, amount: &str) -> String {
    let (status, body) = post_money(
        app,
        &member.member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": amount}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["transaction"]["id"].as_str().expect("mtx").to_owned()
}

/// The member's first linked account: the one `linked_member` linked.
async fn a_linked_account(app: &TestApp, member: &Linked) -> String {
    let (status, list) =
        send(app.bearer(&member.member.token, Method::GET, "/v1/bank-accounts")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["data"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|account| {
            account["account_number_masked"]
                .as_str()
                .is_some_and(|m| m.ends_with(&member.account[member.account.len() - 4..]))
        })
        .and_then(|account| account["id"].as_str())
        .expect("the first linked account")
        .to_owned()
}

/// A pays M `amount` from the wallet in checkout `n`; returns (payment, order, money tx).
async fn pay(
    app: &TestApp,
    buyer: &Linked,
    seller: &str,
    n: &str,
    amount: i64,
    escrow: bool,
    with_item: bool,
) -> (String, String, String) {
    let items = if with_item { json!([ITEM]) } else { json!([]) };
    let (status, body) = send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&json!({
                "checkout_id": format!("authz-checkout-{n}"),
                "payment_orders": [{"seller_account": seller, "amount": amount.to_string(),
                                    "currency": "KRW", "payment_order_id": format!("authz-po-{n}"),
                                    "escrow": escrow}],
                "funding": {"money": amount.to_string()},
                "items": items,
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    let order = &body["payment_orders"][0];
    (
        body["id"].as_str().expect("payment").to_owned(),
        order["id"].as_str().expect("order").to_owned(),
        order["money_transaction_id"]
            .as_str()
            .expect("the order's money transaction")
            .to_owned(),
    )
}

/// A pays M 2,000 and N 3,000 in one checkout; returns the payment and its two orders.
async fn pay_two_sellers(app: &TestApp, buyer: &Linked, m: &str, n: &str) -> (String, [String; 2]) {
    let (status, body) = send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&json!({
                "checkout_id": "authz-checkout-split",
                "payment_orders": [
                    {"seller_account": m, "amount": "2000", "currency": "KRW",
                     "payment_order_id": "authz-split-m"},
                    {"seller_account": n, "amount": "3000", "currency": "KRW",
                     "payment_order_id": "authz-split-n"},
                ],
                "funding": {"money": "5000"},
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let order = |i: usize| {
        body["payment_orders"][i]["id"]
            .as_str()
            .expect("order")
            .to_owned()
    };
    (
        body["id"].as_str().expect("payment").to_owned(),
        [order(0), order(1)],
    )
}

async fn hold(app: &TestApp, debit: &str, credit: &str, id: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/ledger/holds",
            &json!({"id": id, "debit_account_id": debit, "credit_account_id": credit,
                    "amount": "1", "currency": "KRW"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id.to_owned()
}

async fn merchant_key(app: &TestApp, merchant: &str, name: &str) -> (String, String) {
    let (status, body) = app
        .post(
            &format!("/v1/merchants/{merchant}/api-keys"),
            &json!({"name": name}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["secret"].as_str().expect("secret").to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// Requests and checks
// ---------------------------------------------------------------------------------------------

/// An answer: its status, its raw text (searched for leaks) and its JSON (`Null` if none),
/// with the request's path and body, whose values the caller knew already.
struct Reply {
    status: u16,
    text: String,
    json: Value,
    request: String,
}

async fn exchange(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    keyed: bool,
) -> Reply {
    let mut request = app.client.request(common::method(method), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    if keyed {
        request = request.header("Idempotency-Key", ulid::Ulid::new().to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    let request = format!("{path} {}", body.map(Value::to_string).unwrap_or_default());
    Reply {
        status,
        text,
        json,
        request,
    }
}

/// A digest of everything a refused request must leave as it was: every ledger account's
/// totals, and per table the number of rows with the latest change (or the count of revoked,
/// resolved or deleted rows where a table records no change time).
async fn digest(app: &TestApp) -> Vec<String> {
    let pool = app.db.db.pool();
    let accounts: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT code, debits_posted, credits_posted, debits_pending, credits_pending \
         FROM ledger_accounts ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .expect("ledger accounts");
    let mut lines: Vec<String> = accounts
        .into_iter()
        .map(|(code, dp, cp, dh, ch)| format!("{code}: posted {dp}/{cp} pending {dh}/{ch}"))
        .collect();
    for (table, second) in DIGESTED_TABLES {
        let sql = format!("SELECT COUNT(*), {second} FROM {table}");
        let (count, latest): (i64, Option<i64>) = sqlx::query_as(&sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
        lines.push(format!("{table}: {count} rows, {second} = {latest:?}"));
    }
    lines
}

/// The tables a refused request must not touch, with what reveals an update of a row.
const DIGESTED_TABLES: &[(&str, &str)] = &[
    ("ledger_transactions", "MAX(posted_at)"),
    ("ledger_postings", "COUNT(*)"),
    ("ledger_holds", "COUNT(resolved_at)"),
    ("members", "MAX(updated_at)"),
    ("member_sessions", "COUNT(revoked_at)"),
    ("api_keys", "COUNT(revoked_at)"),
    ("bank_accounts", "MAX(updated_at)"),
    ("bank_account_deposits", "COUNT(*)"),
    ("bank_transfers", "MAX(updated_at)"),
    ("wallets", "COUNT(*)"),
    ("wallet_operations", "MAX(updated_at)"),
    ("wallet_daily_usage", "CAST(SUM(used) AS BIGINT)"),
    ("merchants", "MAX(updated_at)"),
    ("merchant_debit_mandates", "MAX(updated_at)"),
    (
        "webhook_endpoints",
        "COUNT(CASE WHEN status = 'deleted' THEN 1 END)",
    ),
    ("webhook_events", "COUNT(*)"),
    ("webhook_deliveries", "MAX(updated_at)"),
    ("event_publications", "COUNT(*)"),
    ("payments", "MAX(updated_at)"),
    ("payment_orders", "MAX(updated_at)"),
    ("refunds", "MAX(updated_at)"),
    ("escrows", "MAX(updated_at)"),
    ("item_locks", "MAX(expires_at)"),
    ("jobs", "MAX(updated_at)"),
    ("settlement_runs", "MAX(updated_at)"),
    ("settlements", "MAX(updated_at)"),
    ("remittances", "MAX(updated_at)"),
    ("remittance_records", "COUNT(*)"),
    ("reconciliation_runs", "MAX(run_at)"),
    ("operators", "COUNT(disabled_at)"),
];

/// The secrets in `reply` that `who` may not see and did not send itself.
fn leaks(world: &World, who: Who, request: &str, reply: &str) -> Vec<&'static str> {
    world
        .secrets()
        .into_iter()
        .filter(|(group, _, value)| {
            !may_see(who, *group) && reply.contains(value.as_str()) && !request.contains(value)
        })
        .map(|(_, label, _)| label)
        .collect()
}

/// Every string in a JSON value, for the ids the permitted calls produced.
fn strings(value: &Value, into: &mut HashSet<String>) {
    match value {
        Value::String(text) => {
            into.insert(text.clone());
        }
        Value::Array(items) => items.iter().for_each(|item| strings(item, into)),
        Value::Object(map) => map.values().for_each(|item| strings(item, into)),
        _ => {}
    }
}

/// What the run counted, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    cells: usize,
    denied: usize,
    allowed: usize,
    refused: usize,
    probes: usize,
    failures: Vec<String>,
}

/// Runs one row: every refused caller first, with the digest taken around them, then the
/// permitted callers in order.
async fn run_row(
    app: &TestApp,
    world: &mut World,
    row: &Row,
    seq: &mut u32,
    tally: &mut Tally,
    produced: &mut HashSet<String>,
) {
    if row.before == Before::ReadVerificationCode {
        world.verification_code = newest_code(app, &world.a_pending_number).await;
    }
    let everyone = AUTHENTICATED.iter().chain(UNAUTHENTICATED.iter()).copied();
    let (denied, permitted): (Vec<Who>, Vec<Who>) =
        everyone.partition(|who| matches!(row.access.of(*who), Expect::Denied(..)));
    let what = format!("{} {}", row.method, row.route);
    let before = digest(app).await;
    for who in denied {
        let expect = row.access.of(who);
        let reply = call(app, world, row, who, seq).await;
        check(world, &what, who, expect, &reply, tally);
        tally.denied += 1;
    }
    let after = digest(app).await;
    if before != after {
        let changed: Vec<String> = after
            .iter()
            .filter(|line| !before.contains(line))
            .cloned()
            .collect();
        tally.failures.push(format!(
            "{} {}: refused requests changed {changed:?}",
            row.method, row.route
        ));
    }
    for who in permitted {
        let expect = row.access.of(who);
        let reply = call(app, world, row, who, seq).await;
        check(world, &what, who, expect, &reply, tally);
        match expect {
            Expect::Ok(_) => tally.allowed += 1,
            _ => tally.refused += 1,
        }
        strings(&reply.json, produced);
        if row.capture == Capture::ArsCode && who == Who::Owner {
            if let Some(code) = reply.json["ars_code"].as_str() {
                world.ars_code = code.to_owned();
            }
        }
    }
}

async fn call(app: &TestApp, world: &World, row: &Row, who: Who, seq: &mut u32) -> Reply {
    *seq += 1;
    let path = row
        .path
        .map_or_else(|| row.route.to_owned(), |path| path(world));
    let body = match row.body {
        Body::None => None,
        Body::Empty => Some(json!({})),
        Body::Json(build) => Some(build(world, *seq)),
    };
    let token = world.token(who);
    exchange(
        app,
        token.as_deref(),
        row.method,
        &path,
        body.as_ref(),
        row.keyed,
    )
    .await
}

/// Checks one answer against its expectation; failures are collected, not raised, so that one
/// run reports every mismatch.
fn check(world: &World, what: &str, who: Who, expect: Expect, reply: &Reply, tally: &mut Tally) {
    tally.cells += 1;
    let text = &reply.text;
    let code = reply.json["error"]["code"].as_str().unwrap_or("");
    let (status, wanted_code) = match expect {
        Expect::Ok(status) => (status, None),
        Expect::Refused(status, code) | Expect::Denied(status, code) => (status, Some(code)),
    };
    let context = format!("{what} as {who:?}");
    if reply.status != status || wanted_code.is_some_and(|wanted| wanted != code) {
        tally.failures.push(format!(
            "{context}: expected {expect:?}, got {} {}",
            reply.status,
            text.chars().take(300).collect::<String>()
        ));
    }
    let leaked = leaks(world, who, &reply.request, text);
    if !leaked.is_empty() {
        tally
            .failures
            .push(format!("{context}: the answer shows {leaked:?}: {text}"));
    }
}

/// The code in the newest 1-won deposit's memo on an account of A's.
async fn newest_code(app: &TestApp, number: &str) -> String {
    let (status, statement) = send(app.client.get(format!(
        "{}/admin/accounts/{BANK}/{number}/transactions",
        app.bank.base_url()
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{statement}");
    statement["res_list"][0]["print_content"]
        .as_str()
        .and_then(|memo| memo.strip_prefix("MYPAY "))
        .expect("the newest deposit carries a code")
        .to_owned()
}

/// Every (method, route) the OpenAPI document lists.
fn documented_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in &api::openapi().paths.paths {
        let item = serde_json::to_value(item).expect("path item");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if item.get(method.to_lowercase()).is_some() {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A route added without a row here fails this test, and so does a row for a route that is
/// gone: the matrix and the document name the same routes, each once.
#[test]
fn the_matrix_covers_every_documented_route() {
    let rows = matrix();
    let mut named = BTreeSet::new();
    for row in &rows {
        assert!(
            named.insert((row.method.to_owned(), row.route.to_owned())),
            "{} {} has two rows",
            row.method,
            row.route
        );
    }
    let documented = documented_routes();
    let missing: Vec<_> = documented.difference(&named).collect();
    let stale: Vec<_> = named.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}; rows for routes the \
         document does not list: {stale:?}"
    );
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let started = Instant::now();
    let app = spawn_app().await;
    let mut world = World::build(&app).await;
    let a_history_before = history_ids(&app, &world.a.member.id).await;
    let mut tally = Tally::default();
    let mut produced: HashSet<String> = a_history_before.into_iter().map(|(id, _)| id).collect();
    let mut seq = 0;
    let rows = matrix();
    // The probes only read (or are refused), and need the sessions the last rows end.
    probe_cross_references(&app, &world, &mut tally).await;
    sellers_see_only_their_own_orders(&app, &world, &mut tally).await;
    idempotency_keys_belong_to_their_caller(&app, &world, &mut tally, &mut produced).await;
    for row in &rows {
        run_row(&app, &mut world, row, &mut seq, &mut tally, &mut produced).await;
    }
    // Cancelling an escrow refunds the buyer; the escrow's answer does not name the refund's
    // money transaction, its refund list does.
    let (status, refunds) = app
        .get(&format!(
            "/v1/payment-orders/{}/refunds",
            world.cancel_order
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{refunds}");
    strings(&refunds, &mut produced);

    // Every entry in A's history is one the setup or a permitted call produced: nothing a
    // refused caller sent became a movement of A's money.
    let unexplained: Vec<(String, String)> = history_ids(&app, &world.a.member.id)
        .await
        .into_iter()
        .filter(|(id, _)| !produced.contains(id))
        .collect();
    if !unexplained.is_empty() {
        tally.failures.push(format!(
            "A's history has entries no permitted call produced: {unexplained:?}"
        ));
    }
    common::assert_books_hold(&app).await;
    println!(
        "authorization matrix: {} routes x {} callers = {} checks ({} refused, {} permitted, \
         {} permitted then refused by a business rule), {} cross-reference probes; {:.1?}",
        rows.len(),
        AUTHENTICATED.len() + UNAUTHENTICATED.len(),
        tally.cells,
        tally.denied,
        tally.allowed,
        tally.refused,
        tally.probes,
        started.elapsed()
    );
    assert!(
        tally.failures.is_empty(),
        "{} mismatches:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}

/// The ids and kinds of a member's whole KRW history, as an admin key reads it.
async fn history_ids(app: &TestApp, member: &str) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/members/{member}/wallets/KRW/history?limit=100");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for entry in page["data"].as_array().expect("entries") {
            ids.push((
                entry["id"].as_str().expect("id").to_owned(),
                entry["kind"].as_str().unwrap_or("").to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// Requests that name one tenant in the path and another's resource elsewhere (in a second
/// path segment, the query or a client-chosen id), which a check on the path's tenant alone
/// would let through.
async fn probe_cross_references(app: &TestApp, world: &World, tally: &mut Tally) {
    let w = world;
    let probes: Vec<(Who, &str, String, Expect)> = vec![
        // N names itself in the path and M's endpoint after it.
        (
            Who::OtherMerchant,
            "GET",
            format!("/v1/merchants/{}/webhook-endpoints/{}", w.n.id, w.endpoint),
            hidden("webhook_endpoint_not_found"),
        ),
        (
            Who::OtherMerchant,
            "DELETE",
            format!("/v1/merchants/{}/webhook-endpoints/{}", w.n.id, w.endpoint),
            hidden("webhook_endpoint_not_found"),
        ),
        // A merchant key's list is its own whatever merchant the query names.
        (
            Who::OtherMerchant,
            "GET",
            format!("/v1/remittances?merchant_id={}", w.m.id),
            Expect::Ok(200),
        ),
        // An unknown query parameter on a route without one names nobody else's wallet.
        (
            Who::Other,
            "GET",
            format!("/v1/wallets/KRW?member_id={}", w.a.member.id),
            Expect::Ok(200),
        ),
        (
            Who::Other,
            "GET",
            format!("/v1/wallets/KRW/history?member_id={}", w.a.member.id),
            Expect::Denied(400, "invalid_request"),
        ),
        // Orders are reachable by the client's own order id too, under the same rule.
        (
            Who::Other,
            "GET",
            "/v1/payment-orders/authz-po-1".to_owned(),
            hidden("payment_order_not_found"),
        ),
        (
            Who::OtherMerchant,
            "GET",
            "/v1/payment-orders/authz-po-1/refunds".to_owned(),
            hidden("payment_order_not_found"),
        ),
        (
            Who::Other,
            "GET",
            "/v1/payment-orders/authz-escrow-2/escrow".to_owned(),
            hidden("escrow_not_found"),
        ),
        // A merchant key cannot make itself another merchant's key.
        (
            Who::Merchant,
            "GET",
            format!("/v1/merchants/{}/settlements", w.n.id),
            hidden("merchant_not_found"),
        ),
    ];
    let before = digest(app).await;
    for (who, method, path, expect) in probes {
        let token = world.token(who);
        let reply = exchange(app, token.as_deref(), method, &path, None, false).await;
        check(
            world,
            &format!("{method} {path}"),
            who,
            expect,
            &reply,
            tally,
        );
        tally.probes += 1;
    }
    if digest(app).await != before {
        tally
            .failures
            .push("a cross-reference probe changed something".into());
    }
}

/// Each seller of a two-seller checkout sees the payment with its own order only: not the
/// other seller's order, its amount, or the buyer's money transactions.
async fn sellers_see_only_their_own_orders(app: &TestApp, world: &World, tally: &mut Tally) {
    let sellers = [
        (
            Who::Merchant,
            &world.split_orders[0],
            &world.split_orders[1],
            "authz-split-n",
            "3000",
        ),
        (
            Who::OtherMerchant,
            &world.split_orders[1],
            &world.split_orders[0],
            "authz-split-m",
            "2000",
        ),
    ];
    for (who, own, others, others_client_id, others_amount) in sellers {
        let token = world.token(who).expect("a key");
        let path = format!("/v1/payments/{}", world.split_payment);
        let reply = exchange(app, Some(&token), "GET", &path, None, false).await;
        tally.probes += 1;
        let orders = reply.json["payment_orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let shown: Vec<&str> = orders.iter().filter_map(|o| o["id"].as_str()).collect();
        let hidden_shows = [others.as_str(), others_client_id, "mtx_"]
            .into_iter()
            .filter(|secret| reply.text.contains(secret))
            .collect::<Vec<_>>();
        if reply.status != 200
            || shown != [own.as_str()]
            || !hidden_shows.is_empty()
            || reply.json["amount"] == others_amount
        {
            tally.failures.push(format!(
                "GET {path} as {who:?}: expected its own order {own} only, got {} {}",
                reply.status, reply.text
            ));
        }
    }
}

/// An `Idempotency-Key` belongs to the caller that used it: the same key and body from
/// another member is that member's own request (here refused by a rule), never a replay of
/// the first caller's answer; from a refused credential it is refused before any replay.
async fn idempotency_keys_belong_to_their_caller(
    app: &TestApp,
    world: &World,
    tally: &mut Tally,
    produced: &mut HashSet<String>,
) {
    let key = "authz-shared-key";
    let body = json!({"to": {"member_id": world.b.member.id}, "amount": "1000", "currency": "KRW"});
    let send_as = |who: Who| {
        let mut request = app.client.post(app.url("/v1/transfers")).json(&body);
        if let Some(token) = world.token(who) {
            request = request.bearer_auth(token);
        }
        request.header("Idempotency-Key", key).send()
    };
    let first = send_as(Who::Owner).await.expect("request");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    strings(&first, produced);
    for (who, status, code) in [
        (Who::Other, 422, "transfer_to_self"),
        (Who::Merchant, 403, "forbidden"),
        (Who::RevokedSession, 401, "unauthenticated"),
        (Who::Anonymous, 401, "unauthenticated"),
    ] {
        tally.probes += 1;
        let response = send_as(who).await.expect("request");
        let replayed = response.headers().contains_key("idempotency-replayed");
        let got = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if replayed || got != status || answer["error"]["code"] != code {
            tally.failures.push(format!(
                "POST /v1/transfers with A's Idempotency-Key as {who:?}: expected {status} {code}, \
                 got {got} (replayed: {replayed}) {answer}"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mass assignment
// ---------------------------------------------------------------------------------------------

/// A field a client adds to a valid body, at a JSON pointer ("" is the top level).
type Extra = (&'static str, &'static str, Value);

/// Sends `valid` with each extra field added in turn: each is refused with `400
/// invalid_request` naming the unknown field, and together they change nothing. Then sends
/// `valid` itself, which must answer `ok`: the refusals were due to the extra fields only.
#[allow(clippy::too_many_arguments)]
async fn refuses_extra_fields(
    app: &TestApp,
    token: Option<String>,
    who: Who,
    method: &str,
    path: &str,
    valid: Value,
    extras: &[Extra],
    ok: u16,
    failures: &mut Vec<String>,
    cases: &mut usize,
) -> Value {
    let keyed = path.contains("/charges")
        || path.contains("/withdrawals")
        || path.contains("/payouts")
        || path.contains("/transfers")
        || path.contains("/points")
        || path.contains("/refunds")
        || path.ends_with("/remittances");
    let before = digest(app).await;
    for (pointer, field, value) in extras {
        *cases += 1;
        let mut body = valid.clone();
        body.pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{method} {path}: no object at {pointer:?}"))
            .insert((*field).to_owned(), value.clone());
        let reply = exchange(app, token.as_deref(), method, path, Some(&body), keyed).await;
        let message = reply.json["error"]["message"].as_str().unwrap_or("");
        let refused = reply.status == 400
            && reply.json["error"]["code"] == "invalid_request"
            && message.contains("unknown field")
            && message.contains(field);
        if !refused {
            failures.push(format!(
                "{method} {path} as {who:?} with {pointer}/{field}: expected 400 invalid_request \
                 (unknown field), got {} {}",
                reply.status, reply.text
            ));
        }
    }
    if digest(app).await != before {
        failures.push(format!(
            "{method} {path}: a refused extra field changed something"
        ));
    }
    let reply = exchange(app, token.as_deref(), method, path, Some(&valid), keyed).await;
    if reply.status != ok {
        failures.push(format!(
            "{method} {path} as {who:?} without extra fields: expected {ok}, got {} {}",
            reply.status, reply.text
        ));
    }
    reply.json
}

/// Fields that would be dangerous if a create or update honoured them, at the top level.
fn identity_extras(other_member: &str, other_merchant: &str) -> Vec<Extra> {
    vec![
        ("", "id", json!("usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")),
        ("", "member_id", json!(other_member)),
        ("", "owner", json!(other_member)),
        ("", "merchant_id", json!(other_merchant)),
        ("", "role", json!("admin")),
        ("", "status", json!("active")),
        ("", "balance", json!("100000000")),
        ("", "verified", json!(true)),
        ("", "created_at", json!("2020-01-01T00:00:00Z")),
        ("", "fee_bps", json!(0)),
    ]
}

#[tokio::test]
async fn extra_fields_are_refused_everywhere_and_change_nothing() {
    let started = Instant::now();
    let app = spawn_app().await;
    let world = World::build(&app).await;
    let (a, b, m, n) = (
        &world.a.member.id,
        &world.b.member.id,
        &world.m.id,
        &world.n.id,
    );
    let common = identity_extras(b, n);
    let with = |more: Vec<Extra>| -> Vec<Extra> { common.iter().cloned().chain(more).collect() };
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut routes = 0;
    macro_rules! case {
        ($who:expr, $method:expr, $path:expr, $valid:expr, $extras:expr, $ok:expr) => {{
            routes += 1;
            refuses_extra_fields(
                &app,
                world.token($who),
                $who,
                $method,
                &$path,
                $valid,
                &$extras,
                $ok,
                &mut failures,
                &mut cases,
            )
            .await
        }};
    }

    // Members and sessions.
    case!(
        Who::Anonymous,
        "POST",
        "/v1/members",
        json!({"email": "new@example.com", "phone": "010-2000-0077", "name": HOLDER,
               "password": MEMBER_PASSWORD}),
        with(vec![("", "password_hash", json!("$argon2id$v=19$…"))]),
        201
    );
    case!(
        Who::Anonymous,
        "POST",
        "/v1/sessions",
        json!({"email": LOGIN_EMAIL, "password": MEMBER_PASSWORD}),
        with(vec![("", "expires_at", json!("2099-01-01T00:00:00Z"))]),
        201
    );
    case!(
        Who::Owner,
        "PATCH",
        "/v1/members/me",
        json!({"name": HOLDER}),
        with(vec![
            ("", "closed_at", json!(null)),
            ("", "password_hash", json!("x"))
        ]),
        200
    );
    // Closing takes a member without money, who may close.
    let closing = app.member("closing@example.com", "010-2000-0078").await;
    routes += 1;
    refuses_extra_fields(
        &app,
        Some(closing.token),
        Who::Owner,
        "POST",
        "/v1/members/me/close",
        json!({}),
        &with(vec![]),
        200,
        &mut failures,
        &mut cases,
    )
    .await;

    // Linked accounts: a new link taken through every step, each step's body with extras.
    let number = "110000000097";
    open_account(&app, number, HOLDER, 0).await;
    let link_extras = with(vec![
        ("", "kind", json!("partner")),
        ("", "holder_name", json!("홍길동")),
        ("", "payer_number", json!("MP0000000001")),
    ]);
    let link = case!(
        Who::Owner,
        "POST",
        "/v1/bank-accounts",
        json!({"bank_code": BANK, "account_number": number}),
        link_extras,
        201
    );
    let id = link["id"].as_str().unwrap_or_default().to_owned();
    let step_extras = with(vec![
        ("", "attempts_left", json!(99)),
        ("", "payer_number", json!("MP0000000001")),
    ]);
    case!(
        Who::Owner,
        "POST",
        format!("/v1/bank-accounts/{id}/verification"),
        json!({}),
        step_extras,
        201
    );
    let code = newest_code(&app, number).await;
    case!(
        Who::Owner,
        "POST",
        format!("/v1/bank-accounts/{id}/verify"),
        json!({"code": code}),
        step_extras,
        200
    );
    let session = case!(
        Who::Owner,
        "POST",
        format!("/v1/bank-accounts/{id}/consent"),
        json!({}),
        step_extras,
        201
    );
    let ars = session["ars_code"].as_str().unwrap_or_default().to_owned();
    case!(
        Who::Owner,
        "POST",
        format!("/v1/bank-accounts/{id}/consent/confirm"),
        json!({"code": ars}),
        step_extras,
        200
    );
    case!(
        Who::Owner,
        "POST",
        "/v1/bank-accounts/partner",
        json!({"bank_code": PARTNER_BANK, "account_number": world.a_partner_number}),
        with(vec![("", "kind", json!("charge"))]),
        201
    );

    // Money: none of the movement's server-decided parts can be sent.
    let movement_extras = with(vec![
        ("", "fee", json!("0")),
        ("", "state", json!("succeeded")),
        ("", "currency", json!("USD")),
        ("", "from_member_id", json!(b)),
        ("", "counterparty", json!("me")),
    ]);
    for route in ["charges", "withdrawals"] {
        case!(
            Who::Owner,
            "POST",
            format!("/v1/wallets/KRW/{route}"),
            json!({"amount": "1000", "bank_account_id": world.a_account}),
            movement_extras,
            201
        );
    }
    case!(
        Who::Owner,
        "POST",
        "/v1/wallets/KRW/payouts",
        json!({"amount": "1000", "bank_code": BANK, "account_number": world.b.account,
               "holder_name": HOLDER}),
        movement_extras,
        201
    );
    // A transfer names its currency; the rest of the movement's extras stay refused.
    let mut transfer_extras: Vec<Extra> = movement_extras
        .iter()
        .filter(|(_, field, _)| *field != "currency")
        .cloned()
        .collect();
    transfer_extras.extend([
        ("/to", "account_id", json!(world.a_wallet_account)),
        ("/to", "name", json!("someone else")),
    ]);
    case!(
        Who::Owner,
        "POST",
        "/v1/transfers",
        json!({"to": {"member_id": b}, "amount": "1000", "currency": "KRW"}),
        transfer_extras,
        201
    );

    // Payments: the buyer, the seller's fee and every order's state are the server's.
    let mut payment_extras = with(vec![
        ("", "amount", json!("1")),
        ("", "paid", json!(true)),
        ("/payment_orders/0", "fee_bps", json!(0)),
        ("/payment_orders/0", "merchant_id", json!(n)),
        ("/payment_orders/0", "status", json!("SUCCESS")),
        ("/payment_orders/0", "refunded", json!("0")),
        (
            "/payment_orders/0",
            "money_transaction_id",
            json!(world.a_charge_tx),
        ),
        ("/funding", "member_id", json!(b)),
        ("/funding", "discount", json!("1000")),
    ]);
    payment_extras.retain(|(pointer, field, _)| !(pointer.is_empty() && *field == "buyer"));
    case!(
        Who::Owner,
        "POST",
        "/v1/payments",
        json!({"checkout_id": "authz-mass-1", "payment_orders": [{"seller_account": m,
               "amount": "1000", "currency": "KRW", "payment_order_id": "authz-mass-po-1"}],
               "funding": {"money": "1000"}}),
        payment_extras,
        201
    );
    case!(
        Who::Platform,
        "POST",
        format!("/v1/members/{a}/points"),
        json!({"amount": "100"}),
        with(vec![("", "expires_at", json!("2099-01-01T00:00:00Z"))]),
        201
    );
    case!(
        Who::Merchant,
        "POST",
        format!("/v1/payment-orders/{}/refunds", world.order),
        json!({"amount": "100", "reason": "mass assignment"}),
        with(vec![
            ("", "payment_order_id", json!(world.split_orders[1])),
            ("", "seller_account", json!(n)),
            ("", "to_member_id", json!(b)),
            ("", "from_escrow", json!(true)),
            ("", "money_transaction_id", json!(world.a_charge_tx)),
        ]),
        201
    );
    let escrow = format!("/v1/payment-orders/{}/escrow", world.escrow_order);
    let escrow_extras = with(vec![
        ("", "state", json!("confirmed")),
        ("", "closed_by", json!("buyer")),
        ("", "confirm_at", json!("2020-01-01T00:00:00Z")),
        ("", "release_amount", json!("1")),
    ]);
    for (who, step, body) in [
        (
            Who::Merchant,
            "ship",
            json!({"tracking_number": "6012-3456-7890"}),
        ),
        (Who::Merchant, "deliver", json!({})),
        (Who::Owner, "dispute", json!({"reason": "mass assignment"})),
        (Who::Admin, "resolve", json!({"reason": "mass assignment"})),
        (Who::Owner, "confirm", json!({})),
    ] {
        case!(
            who,
            "POST",
            format!("{escrow}/{step}"),
            body,
            escrow_extras,
            200
        );
    }
    case!(
        Who::Owner,
        "POST",
        format!("/v1/payment-orders/{}/escrow/cancel", world.cancel_order),
        json!({"reason": "mass assignment"}),
        with(vec![
            ("", "amount", json!("1")),
            ("", "refund_to", json!(b))
        ]),
        200
    );

    // Merchants: the holder check and the merchant's identity are the server's.
    app.open_bank_account(MERCHANT_BANK, "7700000000098", "Mass Shop")
        .await;
    case!(
        Who::Admin,
        "POST",
        "/v1/merchants",
        json!({"name": "Mass Shop", "fee_bps": 250, "settlement_account": {
            "bank_code": MERCHANT_BANK, "account_number": "7700000000098",
            "holder_name": "Mass Shop"}}),
        with(vec![
            ("/settlement_account", "verified", json!(true)),
            ("/settlement_account", "holder_checked", json!(true)),
        ])
        .into_iter()
        .filter(|(pointer, field, _)| !(pointer.is_empty() && *field == "fee_bps"))
        .collect::<Vec<_>>(),
        201
    );
    case!(
        Who::Admin,
        "PATCH",
        format!("/v1/merchants/{m}"),
        json!({"fee_bps": 300}),
        with(vec![(
            "",
            "settlement_account",
            json!({"bank_code": MERCHANT_BANK, "account_number": "7700000000098"})
        )])
        .into_iter()
        .filter(
            |(pointer, field, _)| !(pointer.is_empty() && matches!(*field, "fee_bps" | "status"))
        )
        .collect::<Vec<_>>(),
        200
    );
    case!(
        Who::Admin,
        "PUT",
        format!("/v1/merchants/{m}/settlement-account"),
        json!({"bank_code": MERCHANT_BANK, "account_number": world.m_new_settlement_number,
               "holder_name": M_NAME}),
        with(vec![("", "holder_checked", json!(true))]),
        200
    );
    case!(
        Who::Admin,
        "POST",
        format!("/v1/merchants/{m}/api-keys"),
        json!({"name": "mass key"}),
        with(vec![("", "secret", json!("mpk_chosen_by_the_client"))]),
        201
    );
    case!(
        Who::Merchant,
        "POST",
        format!("/v1/merchants/{m}/webhook-endpoints"),
        json!({"url": "https://shop.example/hooks/mass", "event_types": []}),
        with(vec![("", "secret", json!("whsec_chosen_by_the_client"))]),
        201
    );
    case!(
        Who::Merchant,
        "POST",
        "/v1/remittances",
        json!({"sender_merchant_id": m, "recipient_merchant_id": world.r.id,
               "amount": "1000", "currency": "KRW"}),
        with(vec![
            ("", "fee", json!("0")),
            ("", "state", json!("completed")),
            ("", "request_scope", json!("key_someone_else")),
        ]),
        202
    );

    // Staff routes: keys, operators, the ledger, batches.
    case!(
        Who::Admin,
        "POST",
        "/v1/admin/api-keys",
        json!({"role": "platform", "name": "mass key"}),
        with(vec![
            ("", "secret", json!("mpk_chosen_by_the_client")),
            ("", "revoked_at", json!(null))
        ])
        .into_iter()
        .filter(
            |(pointer, field, _)| !(pointer.is_empty() && matches!(*field, "role" | "merchant_id"))
        )
        .collect::<Vec<_>>(),
        201
    );
    case!(
        Who::Admin,
        "POST",
        "/v1/admin/operators",
        json!({"email": "mass-operator@example.com", "name": "Mass Operator",
               "password": MEMBER_PASSWORD}),
        with(vec![
            ("", "disabled_at", json!(null)),
            ("", "password_hash", json!("x"))
        ]),
        201
    );
    let ledger_extras = with(vec![
        ("", "debits_posted", json!(5)),
        ("", "version", json!(7)),
        ("", "kind_override", json!("asset")),
    ])
    .into_iter()
    .filter(|(_, field, _)| *field != "id")
    .collect::<Vec<_>>();
    case!(
        Who::Admin,
        "POST",
        "/v1/ledger/accounts",
        json!({"code": "liability:authz:mass", "kind": "liability", "currency": "KRW"}),
        ledger_extras,
        201
    );
    let mut posting_extras = ledger_extras.clone();
    posting_extras.extend([
        ("/postings/0", "balance_after", json!("0")),
        ("/postings/0", "hold_id", json!(world.hold_to_post)),
        ("", "posted_at", json!("2020-01-01T00:00:00Z")),
    ]);
    case!(
        Who::Admin,
        "POST",
        "/v1/ledger/transactions",
        common::transfer_body(
            None,
            &world.a_wallet_account,
            &world.sink_account,
            "1",
            "KRW"
        ),
        posting_extras,
        201
    );
    let hold_extras = with(vec![
        ("", "state", json!("posted")),
        ("", "posted_amount", json!("1")),
    ])
    .into_iter()
    .filter(|(_, field, _)| *field != "id")
    .collect::<Vec<_>>();
    case!(
        Who::Admin,
        "POST",
        "/v1/ledger/holds",
        json!({"debit_account_id": world.a_wallet_account, "credit_account_id": world.sink_account,
               "amount": "1", "currency": "KRW"}),
        hold_extras,
        201
    );
    case!(
        Who::Admin,
        "POST",
        format!("/v1/ledger/holds/{}/post", world.hold_to_post),
        json!({}),
        hold_extras,
        200
    );
    case!(
        Who::Admin,
        "POST",
        format!("/v1/ledger/holds/{}/void", world.hold_to_void),
        json!({}),
        hold_extras,
        200
    );
    for path in ["/v1/settlements/runs", "/v1/reconciliations"] {
        case!(
            Who::Admin,
            "POST",
            path,
            json!({"date": DAY}),
            with(vec![]),
            200
        );
    }

    // Actions without fields: a body with one is refused too, rather than ignored.
    let actions: [(Who, String, u16); 6] = [
        (
            Who::Admin,
            format!("/v1/admin/api-keys/{}/revoke", world.m_spare_key),
            200,
        ),
        (
            Who::Admin,
            format!("/v1/webhook-deliveries/{}/retry", world.delivery),
            409,
        ),
        (
            Who::Admin,
            format!("/v1/admin/jobs/{}/retry", world.job),
            409,
        ),
        (
            Who::Admin,
            format!("/v1/admin/jobs/{}/discard", world.job),
            409,
        ),
        (
            Who::Admin,
            format!("/v1/remittances/{}/retry", world.remittance),
            409,
        ),
        (Who::Admin, format!("/v1/merchants/{m}/debit-mandate"), 200),
    ];
    for (who, path, ok) in actions {
        case!(who, "POST", path, json!({}), with(vec![]), ok);
    }

    println!(
        "mass assignment: {routes} routes, {cases} refused extra fields; {:.1?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
