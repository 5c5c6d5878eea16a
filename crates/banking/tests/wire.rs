//! The sandbox's HTTP API as a client of a bank sees it, with hand-written JSON: this pins the
//! open-banking shape itself, which the adapter tests cannot, since adapter and sandbox share
//! their definitions. Also the parts the adapter never uses: batches, filters, sort orders and
//! the admin API's refusals.

mod common;

use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use banking::{kst, BankGateway};
use common::Bank;
use serde_json::{json, Value};
use time::OffsetDateTime;

fn now() -> String {
    kst::format_dtime(OffsetDateTime::now_utc())
}

async fn post(bank: &Bank, path: &str, body: &Value) -> (u16, Value) {
    let response = bank
        .admin
        .post(bank.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn withdraw(id: &str, amount: &str) -> Value {
    json!({
        "bank_tran_id": id,
        "cntr_account_type": "N",
        "cntr_account_num": "100200300400",
        "dps_print_content": "충전",
        "bank_code_std": "004",
        "account_num": "110123456789",
        "payer_num": "PAYER1",
        "wd_print_content": "마이페이",
        "tran_amt": amount,
        "tran_dtime": now(),
    })
}

#[tokio::test]
async fn a_withdrawal_in_open_banking_json() {
    let bank = Bank::start().await;
    bank.open_with_consent("110123456789", 50_000, "PAYER1")
        .await;
    let (status, reply) = post(
        &bank,
        "/v2.0/transfer/withdraw/acnt_num",
        &withdraw("M202600001U000000001", "12000"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["rsp_code"], "A0000");
    assert_eq!(reply["bank_rsp_code"], "000");
    assert_eq!(reply["bank_tran_id"], "M202600001U000000001");
    assert_eq!(reply["tran_amt"], "12000");
    assert_eq!(reply["account_num_masked"], "********6789");
    assert_eq!(reply["account_holder_name"], "홍길동");
    assert_eq!(reply["dps_account_num_masked"], "********0400");
    assert_eq!(reply["api_tran_dtm"].as_str().unwrap().len(), 17);
    assert_eq!(reply["bank_tran_date"].as_str().unwrap().len(), 8);
    assert!(
        !reply.to_string().contains("110123456789"),
        "replies mask account numbers"
    );

    // Money may only go into the platform's master account.
    let mut elsewhere = withdraw("M202600001U000000002", "1000");
    elsewhere["cntr_account_num"] = json!("999999999999");
    let (status, reply) = post(&bank, "/v2.0/transfer/withdraw/acnt_num", &elsewhere).await;
    assert_eq!((status, reply["rsp_code"].as_str()), (200, Some("A0002")));
    assert_eq!(reply["bank_rsp_code"], "421");
}

#[tokio::test]
async fn malformed_requests_are_a0001_and_never_echo_account_numbers() {
    let bank = Bank::start_with(|config| {
        config.faults = vec![FaultRule::next(FaultOp::Collect, FaultKind::Error, 1)]
    })
    .await;
    let member = bank
        .open_with_consent("110123456789", 50_000, "PAYER1")
        .await;
    let path = "/v2.0/transfer/withdraw/acnt_num";
    let response = bank
        .admin
        .post(bank.url(path))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["rsp_code"], "A0001");

    let mut unknown_field = withdraw("M202600001U000000001", "1000");
    unknown_field["colour"] = json!("red");
    let cases = [
        unknown_field,
        withdraw("M202600001X000000001", "1000"),
        withdraw("M202600001U000000001", "0"),
        withdraw("M202600001U000000001", "1,000"),
        {
            let mut bad = withdraw("M202600001U000000001", "1000");
            bad["account_num"] = json!("1101234567890123456789");
            bad
        },
        {
            let mut bad = withdraw("M202600001U000000001", "1000");
            bad["tran_dtime"] = json!("2026-03-02");
            bad
        },
    ];
    for body in cases {
        let (status, reply) = post(&bank, path, &body).await;
        assert_eq!(
            (status, reply["rsp_code"].as_str()),
            (400, Some("A0001")),
            "{body}"
        );
        assert!(!reply.to_string().contains("1101234567890"), "{reply}");
    }
    // Malformed requests reach neither the book nor the fault rules.
    assert!(bank.transactions(&member).await.is_empty());
    assert_eq!(bank.sandbox.faults().list().len(), 1);
}

#[tokio::test]
async fn a_deposit_batch_answers_each_transfer() {
    let bank = Bank::start().await;
    bank.open("004", "110123456789", "홍길동", 0).await;
    let body = json!({
        "cntr_account_type": "N",
        "cntr_account_num": "100200300400",
        "wd_print_content": "정산",
        "tran_dtime": now(),
        "req_cnt": "2",
        "req_list": [
            {"tran_no": "1", "bank_tran_id": "M202600001U000000011", "bank_code_std": "004",
             "account_num": "110123456789", "print_content": "정산 3월", "tran_amt": "7000"},
            {"tran_no": "2", "bank_tran_id": "M202600001U000000012", "bank_code_std": "004",
             "account_num": "000000000000", "print_content": "정산 3월", "tran_amt": "3000"}
        ]
    });
    let (status, reply) = post(&bank, "/v2.0/transfer/deposit/acnt_num", &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["rsp_code"], "A0002", "one of the two was refused");
    assert_eq!(reply["res_cnt"], "2");
    assert_eq!(reply["res_list"][0]["tran_no"], "1");
    assert_eq!(reply["res_list"][0]["bank_rsp_code"], "000");
    assert_eq!(reply["res_list"][1]["bank_rsp_code"], "111");
    let member = common::account("004", "110123456789");
    assert_eq!(bank.balance(&member).await, 7_000);

    // The result inquiry answers for both, by their ids.
    let inquiry = json!({
        "check_type": "2", "tran_dtime": now(), "req_cnt": "3",
        "req_list": [
            {"tran_no": "1", "org_bank_tran_id": "M202600001U000000011",
             "org_bank_tran_date": &reply["res_list"][0]["bank_tran_date"], "org_tran_amt": "7000"},
            {"tran_no": "2", "org_bank_tran_id": "M202600001U000000012",
             "org_bank_tran_date": &reply["res_list"][0]["bank_tran_date"], "org_tran_amt": "3000"},
            {"tran_no": "3", "org_bank_tran_id": "M202600001U000000013",
             "org_bank_tran_date": &reply["res_list"][0]["bank_tran_date"], "org_tran_amt": "3000"}
        ]
    });
    let (status, result) = post(&bank, "/v2.0/transfer/result", &inquiry).await;
    assert_eq!((status, result["rsp_code"].as_str()), (200, Some("A0000")));
    let codes: Vec<_> = result["res_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["bank_rsp_code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["000", "111", "511"]);

    for broken in [
        {
            let mut b = body.clone();
            b["req_cnt"] = json!("3");
            b
        },
        {
            let mut b = body.clone();
            b["req_list"][1]["bank_tran_id"] = json!("M202600001U000000011");
            b
        },
        {
            let mut b = body.clone();
            b["req_list"] = json!([]);
            b["req_cnt"] = json!("0");
            b
        },
    ] {
        let (status, reply) = post(&bank, "/v2.0/transfer/deposit/acnt_num", &broken).await;
        assert_eq!(
            (status, reply["rsp_code"].as_str()),
            (400, Some("A0001")),
            "{broken}"
        );
    }
}

#[tokio::test]
async fn the_transaction_list_filters_and_sorts() {
    let bank = Bank::start().await;
    let member = bank
        .open_with_consent("110123456789", 50_000, "PAYER1")
        .await;
    let gateway = &bank.gateway;
    for won in [1_000, 2_000] {
        gateway
            .collect(&bank.collect_request(&member, "PAYER1", won))
            .await;
    }
    gateway
        .payout(&bank.payout_request(&member, 500, "환불"))
        .await;
    let today = kst::format_date(kst::bank_date(OffsetDateTime::now_utc()));
    let list = |inquiry_type: &str, sort_order: &str, account_num: &str| {
        let query = [
            ("bank_tran_id", "M202600001U000000099"),
            (
                "bank_code_std",
                if account_num == "100200300400" {
                    "088"
                } else {
                    "004"
                },
            ),
            ("account_num", account_num),
            ("inquiry_type", inquiry_type),
            ("inquiry_base", "D"),
            ("from_date", today.as_str()),
            ("to_date", today.as_str()),
            ("sort_order", sort_order),
            ("tran_dtime", &now()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let request = bank
            .admin
            .get(bank.url("/v2.0/account/transaction_list/acnt_num"))
            .query(&query);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let amounts = |reply: &Value| -> Vec<String> {
        reply["res_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                format!(
                    "{}{}",
                    row["inout_type"].as_str().unwrap(),
                    row["tran_amt"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (status, all) = list("A", "A", "100200300400").await;
    assert_eq!(status, 200);
    assert_eq!(amounts(&all), ["입금1000", "입금2000", "출금500"]);
    assert_eq!(all["next_page_yn"], "N");
    assert_eq!(all["balance_amt"], "1000002500");
    let (_, deposits_newest_first) = list("I", "D", "100200300400").await;
    assert_eq!(amounts(&deposits_newest_first), ["입금2000", "입금1000"]);
    let (_, withdrawals) = list("O", "A", "100200300400").await;
    assert_eq!(amounts(&withdrawals), ["출금500"]);

    // The platform may read its own account's statement, not a member's.
    let (status, refused) = list("A", "A", "110123456789").await;
    assert_eq!((status, refused["rsp_code"].as_str()), (200, Some("A0002")));
    assert_eq!(refused["bank_rsp_code"], "421");
    let (status, bad) = list("X", "A", "100200300400").await;
    assert_eq!((status, bad["rsp_code"].as_str()), (400, Some("A0001")));
}

#[tokio::test]
async fn the_admin_api_refuses_clearly() {
    let bank = Bank::start().await;
    bank.open("004", "110123456789", "홍길동", 1_000).await;
    let open = |holder: &str, balance: &str| {
        json!({"bank_code_std": "004", "account_num": "110-123-456789",
               "account_holder_name": holder, "balance_amt": balance})
    };
    let (status, same) = post(&bank, "/admin/accounts", &open("홍길동", "1000")).await;
    assert_eq!(status, 200, "opening it again as it is: {same}");
    let (status, conflict) = post(&bank, "/admin/accounts", &open("김철수", "1000")).await;
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (409, Some("account_exists"))
    );
    let (status, invalid) = post(&bank, "/admin/accounts", &open("홍길동", "-5")).await;
    assert_eq!(
        (status, invalid["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );

    let missing = bank
        .admin
        .get(bank.url("/admin/accounts/004/999999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let (status, _) = post(
        &bank,
        "/admin/accounts/004/999999999/deposits",
        &json!({"tran_amt": "1", "print_content": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    let bad_path = bank
        .admin
        .get(bank.url("/admin/accounts/04/110123456789"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_path.status(), 400);
    let limit = bank
        .admin
        .get(bank.url("/admin/accounts/004/110123456789/transactions?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(limit.status(), 400);

    let (status, entry) = post(
        &bank,
        "/admin/accounts/004/110123456789/deposits",
        &json!({"tran_amt": "2500", "print_content": "월급"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(entry["after_balance_amt"], "3500");
    assert_eq!(entry["tran_type"], "현금");
    assert_eq!(entry["bank_tran_id"], Value::Null);
}
