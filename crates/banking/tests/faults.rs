//! Fault injection against the real sandbox over HTTP: for collect and payout, `error` is a
//! failure with nothing moved; `timeout` is unknown with nothing moved and nothing found;
//! `lost_reply` is unknown with the money moved once and the inquiry saying so. Latency, faults
//! on the other operations, and both ways of setting faults (at start and by the admin API).

mod common;

use std::time::{Duration, Instant};

use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use banking::{
    BankAccount, BankError, BankGateway, HttpBank, InquiryOutcome, RefusalCode, TransferKind,
    TransferOutcome, TransferQuery,
};
use common::Bank;
use serde_json::{json, Value};

/// Client timeout for calls that are meant to time out.
const IMPATIENT: Duration = Duration::from_millis(400);
/// How long the sandbox withholds a reply in these tests: longer than `IMPATIENT`, short
/// enough that a withheld connection does not outlive the test by much.
const HOLD_MS: u64 = 3_000;

/// One transfer of either kind, so that each scenario runs for collect and for payout.
struct Scene {
    bank: Bank,
    member: BankAccount,
    kind: TransferKind,
}

impl Scene {
    async fn new(kind: TransferKind, faults: Vec<FaultRule>) -> Scene {
        let bank = Bank::start_with(|config| config.faults = faults).await;
        let member = bank
            .open_with_consent("110123456789", 100_000, "PAYER1")
            .await;
        Scene { bank, member, kind }
    }

    /// Sends one transfer of 10,000 won through `gateway` and returns its outcome and the
    /// query that finds it.
    async fn transfer(&self, gateway: &HttpBank) -> (TransferOutcome, TransferQuery) {
        let (outcome, bank_tran_id, requested_at) = match self.kind {
            TransferKind::Collect => {
                let request = self.bank.collect_request(&self.member, "PAYER1", 10_000);
                (
                    gateway.collect(&request).await,
                    request.bank_tran_id,
                    request.requested_at,
                )
            }
            TransferKind::Payout => {
                let request = self.bank.payout_request(&self.member, 10_000, "지급");
                (
                    gateway.payout(&request).await,
                    request.bank_tran_id,
                    request.requested_at,
                )
            }
        };
        let query = TransferQuery {
            kind: self.kind,
            bank_tran_id,
            requested_at,
            amount: common::amount(10_000),
        };
        (outcome, query)
    }

    /// The member's balance after one executed transfer of this kind.
    fn moved_once(&self) -> i64 {
        match self.kind {
            TransferKind::Collect => 90_000,
            TransferKind::Payout => 110_000,
        }
    }

    async fn member_balance(&self) -> i64 {
        self.bank.balance(&self.member).await
    }

    /// Repeats the transfer the query names, with the same id and request time.
    async fn retry(&self, query: &TransferQuery) -> TransferOutcome {
        match self.kind {
            TransferKind::Collect => {
                let mut request = self.bank.collect_request(&self.member, "PAYER1", 10_000);
                request.bank_tran_id = query.bank_tran_id.clone();
                request.requested_at = query.requested_at;
                self.bank.gateway.collect(&request).await
            }
            TransferKind::Payout => {
                let mut request = self.bank.payout_request(&self.member, 10_000, "지급");
                request.bank_tran_id = query.bank_tran_id.clone();
                request.requested_at = query.requested_at;
                self.bank.gateway.payout(&request).await
            }
        }
    }
}

fn op(kind: TransferKind) -> FaultOp {
    match kind {
        TransferKind::Collect => FaultOp::Collect,
        TransferKind::Payout => FaultOp::Payout,
    }
}

async fn error_is_a_failure_and_moves_nothing(kind: TransferKind) {
    let scene = Scene::new(kind, vec![FaultRule::next(op(kind), FaultKind::Error, 1)]).await;
    let master = scene.bank.master_balance().await;
    let (outcome, query) = scene.transfer(&scene.bank.gateway).await;
    assert!(
        matches!(
            outcome,
            TransferOutcome::Failed {
                code: RefusalCode::BankSystemError,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(RefusalCode::BankSystemError.is_transient());
    assert_eq!(scene.member_balance().await, 100_000);
    assert_eq!(scene.bank.master_balance().await, master);
    // The bank recorded its refusal under the id.
    let inquiry = scene.bank.gateway.transfer_result(&query).await.unwrap();
    assert!(
        matches!(
            inquiry,
            InquiryOutcome::Failed {
                code: RefusalCode::BankSystemError,
                ..
            }
        ),
        "{inquiry:?}"
    );
    // The rule is used up: the next transfer, with a new id, goes through.
    let (next, _) = scene.transfer(&scene.bank.gateway).await;
    assert!(
        matches!(next, TransferOutcome::Succeeded { .. }),
        "{next:?}"
    );
    assert_eq!(scene.member_balance().await, scene.moved_once());
}

async fn timeout_is_unknown_moves_nothing_and_is_not_found(kind: TransferKind) {
    let rule = FaultRule::next(op(kind), FaultKind::Timeout, 1).with_hold_ms(HOLD_MS);
    let scene = Scene::new(kind, vec![rule]).await;
    let master = scene.bank.master_balance().await;
    let (outcome, query) = scene.transfer(&scene.bank.impatient(IMPATIENT)).await;
    assert!(
        matches!(outcome, TransferOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    assert_eq!(scene.member_balance().await, 100_000);
    assert_eq!(scene.bank.master_balance().await, master);
    assert_eq!(
        scene.bank.gateway.transfer_result(&query).await.unwrap(),
        InquiryOutcome::NotFound
    );
    // Not found: retry with the same id, which executes it now, once.
    assert!(matches!(
        scene.retry(&query).await,
        TransferOutcome::Succeeded { .. }
    ));
    assert!(matches!(
        scene.retry(&query).await,
        TransferOutcome::Succeeded { .. }
    ));
    assert_eq!(scene.member_balance().await, scene.moved_once());
}

async fn lost_reply_is_unknown_but_moved_once(kind: TransferKind) {
    let rule = FaultRule::next(op(kind), FaultKind::LostReply, 1).with_hold_ms(HOLD_MS);
    let scene = Scene::new(kind, vec![rule]).await;
    let (outcome, query) = scene.transfer(&scene.bank.impatient(IMPATIENT)).await;
    assert!(
        matches!(outcome, TransferOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    assert_eq!(scene.member_balance().await, scene.moved_once());
    let inquiry = scene.bank.gateway.transfer_result(&query).await.unwrap();
    assert!(
        matches!(&inquiry, InquiryOutcome::Succeeded { bank_tran_id, .. } if *bank_tran_id == query.bank_tran_id),
        "{inquiry:?}"
    );
    // A retry with the same id is answered from the record; nothing moves again.
    assert!(matches!(
        scene.retry(&query).await,
        TransferOutcome::Succeeded { .. }
    ));
    assert_eq!(scene.member_balance().await, scene.moved_once());
}

#[tokio::test]
async fn collect_error() {
    error_is_a_failure_and_moves_nothing(TransferKind::Collect).await;
}

#[tokio::test]
async fn payout_error() {
    error_is_a_failure_and_moves_nothing(TransferKind::Payout).await;
}

#[tokio::test]
async fn collect_timeout() {
    timeout_is_unknown_moves_nothing_and_is_not_found(TransferKind::Collect).await;
}

#[tokio::test]
async fn payout_timeout() {
    timeout_is_unknown_moves_nothing_and_is_not_found(TransferKind::Payout).await;
}

#[tokio::test]
async fn collect_lost_reply() {
    lost_reply_is_unknown_but_moved_once(TransferKind::Collect).await;
}

#[tokio::test]
async fn payout_lost_reply() {
    lost_reply_is_unknown_but_moved_once(TransferKind::Payout).await;
}

#[tokio::test]
async fn a_withheld_reply_is_unknown_even_to_a_patient_client() {
    // The client outwaits the hold; the sandbox then answers 504, which still says nothing.
    let rule = FaultRule::next(FaultOp::Collect, FaultKind::LostReply, 1).with_hold_ms(200);
    let scene = Scene::new(TransferKind::Collect, vec![rule]).await;
    let (outcome, _) = scene.transfer(&scene.bank.gateway).await;
    match outcome {
        TransferOutcome::Unknown { reason } => assert!(reason.contains("504"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(scene.member_balance().await, 90_000);
}

#[tokio::test]
async fn latency_delays_the_answer_and_a_slow_bank_still_executes() {
    let rules = vec![
        FaultRule::next(FaultOp::Payout, FaultKind::Latency, 1).with_latency_ms(300),
        FaultRule::next(FaultOp::Payout, FaultKind::Latency, 1).with_latency_ms(1_000),
    ];
    let scene = Scene::new(TransferKind::Payout, rules).await;
    let started = Instant::now();
    let (outcome, _) = scene.transfer(&scene.bank.gateway).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        matches!(outcome, TransferOutcome::Succeeded { .. }),
        "{outcome:?}"
    );

    // Slower than the client's patience: unknown to the client, yet the bank carries on.
    let (outcome, query) = scene.transfer(&scene.bank.impatient(IMPATIENT)).await;
    assert!(
        matches!(outcome, TransferOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(matches!(
        scene.bank.gateway.transfer_result(&query).await.unwrap(),
        InquiryOutcome::Succeeded { .. }
    ));
    assert_eq!(scene.member_balance().await, 120_000);
}

#[tokio::test]
async fn faults_reach_the_calls_that_move_nothing() {
    let bank = Bank::start_with(|config| {
        config.faults = vec![
            FaultRule::next(FaultOp::RealName, FaultKind::Error, 1),
            FaultRule::next(FaultOp::Statement, FaultKind::Timeout, 1).with_hold_ms(HOLD_MS),
            FaultRule::next(FaultOp::Result, FaultKind::Error, 1),
            FaultRule::next(FaultOp::Consent, FaultKind::Error, 1),
        ]
    })
    .await;
    let member = bank.open("004", "110123456789", "홍길동", 0).await;
    let error = bank.gateway.real_name(&member).await.unwrap_err();
    assert_eq!(error.code(), "bank_system_error");
    assert!(bank.gateway.real_name(&member).await.is_ok());

    let today = banking::kst::bank_date(time::OffsetDateTime::now_utc());
    let error = bank
        .impatient(IMPATIENT)
        .statement(today, None)
        .await
        .unwrap_err();
    assert!(matches!(error, BankError::Unavailable { .. }), "{error:?}");
    assert!(bank.gateway.statement(today, None).await.is_ok());

    let query = TransferQuery {
        kind: TransferKind::Collect,
        bank_tran_id: bank.gateway.next_tran_id(),
        requested_at: time::OffsetDateTime::now_utc(),
        amount: common::amount(1),
    };
    let error = bank.gateway.transfer_result(&query).await.unwrap_err();
    assert_eq!(error.code(), "bank_system_error");
    assert_eq!(
        bank.gateway.transfer_result(&query).await.unwrap(),
        InquiryOutcome::NotFound
    );

    let consent = banking::DebitConsent {
        payer_number: common::payer("PAYER1"),
        account: member,
    };
    assert_eq!(
        bank.gateway
            .register_consent(&consent)
            .await
            .unwrap_err()
            .code(),
        "bank_system_error"
    );
    bank.gateway.register_consent(&consent).await.unwrap();
}

async fn put_faults(bank: &Bank, body: Value) -> reqwest::Response {
    bank.admin
        .put(bank.url("/admin/faults"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn faults_are_set_listed_and_cleared_through_the_admin_api() {
    let scene = Scene::new(TransferKind::Collect, Vec::new()).await;
    let bank = &scene.bank;
    let response = put_faults(
        bank,
        json!({"faults": [
            {"op": "collect", "kind": "error", "count": 2},
            {"op": "payout", "kind": "latency", "latency_ms": 10}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed["faults"][0]["count"], 2);
    assert!(listed["faults"][1].get("count").is_none(), "{listed}");

    let (first, _) = scene.transfer(&bank.gateway).await;
    assert!(matches!(first, TransferOutcome::Failed { .. }), "{first:?}");
    let listed: Value = bank
        .admin
        .get(bank.url("/admin/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["faults"][0]["count"], 1,
        "one call used up: {listed}"
    );

    // POST appends after the rules in force; DELETE clears them all.
    let appended = bank
        .admin
        .post(bank.url("/admin/faults"))
        .json(&json!({"faults": [{"op": "result", "kind": "timeout"}]}))
        .send()
        .await
        .unwrap();
    let appended: Value = appended.json().await.unwrap();
    assert_eq!(appended["faults"].as_array().unwrap().len(), 3);
    assert_eq!(appended["faults"][2]["hold_ms"], 60_000);
    let cleared = bank
        .admin
        .delete(bank.url("/admin/faults"))
        .send()
        .await
        .unwrap();
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["faults"], json!([]));
    let (after, _) = scene.transfer(&bank.gateway).await;
    assert!(
        matches!(after, TransferOutcome::Succeeded { .. }),
        "{after:?}"
    );

    // Nonsense is refused and changes nothing.
    for body in [
        json!({"faults": [{"op": "collect", "kind": "explode"}]}),
        json!({"faults": [{"op": "collect", "kind": "error", "count": 0}]}),
        json!({"faults": [{"op": "collect", "kind": "error", "colour": "red"}]}),
        json!([]),
    ] {
        let response = put_faults(bank, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_request");
    }
    assert!(bank.sandbox.faults().list().is_empty());
}

#[tokio::test]
async fn the_admin_api_needs_the_token_when_one_is_set() {
    let token = "sandbox-admin-token-for-tests";
    let bank = Bank::start_with(|config| {
        config.admin_token = Some(banking::sandbox::AdminToken::new(token).unwrap())
    })
    .await;
    let anonymous = bank
        .admin
        .get(bank.url("/admin/master"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthenticated");
    let wrong = bank
        .admin
        .get(bank.url("/admin/faults"))
        .bearer_auth("sandbox-admin-token-for-test")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let master: Value = bank
        .admin
        .get(bank.url("/admin/master"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(master["master"], true);
    assert_eq!(master["account_num"], "100200300400");
    assert_eq!(master["balance_amt"], "1000000000");
    // The bank's own API does not use the admin token.
    let member = banking::BankAccount::new(
        banking::BankCode::parse("004").unwrap(),
        banking::AccountNumber::parse("110123456789").unwrap(),
    );
    assert!(bank.gateway.real_name(&member).await.is_ok());
}
