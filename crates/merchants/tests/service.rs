//! The merchants service against a real database (SQLite, or PostgreSQL when
//! `MYPAY_TEST_DATABASE_URL` names a server) and a scripted bank: holder checks and what a
//! refused one leaves behind, sealing, changes, paging, request keys, and the ledger accounts
//! under concurrent first use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bank_accounts::AccountKeys;
use banking::{
    AccountNumber, BankAccount, BankCode, BankError, BankFees, BankGateway, BankTranId,
    CollectRequest, DebitConsent, HolderName, InquiryOutcome, PayerNumber, PayoutRequest,
    RealNameOutcome, RefusalCode, StatementCursor, StatementPage, TransferOutcome, TransferQuery,
};
use ledger::{
    AccountCode, AccountFlags, AccountKind, Ledger, LedgerError, NewAccount, NewTransaction,
    SystemClock, TransactionId, WriterConfig,
};
use merchants::{
    MerchantAccount, MerchantError, MerchantId, MerchantPatch, MerchantStatus, Merchants,
    NewMerchant,
};
use money::{Currency, Money};
use sqlx::Row;
use testkit::TestDb;
use tokio::task::JoinSet;
use wallet::bank_transfer::BankTransfers;
use wallet::RequestKey;

/// What the scripted bank answers a holder-name inquiry with.
#[derive(Debug, Clone)]
enum Answer {
    Holder(&'static str),
    Refused(RefusalCode),
    Unavailable,
}

/// A bank that only answers holder-name inquiries, from a script; unknown accounts are not
/// found. Merchants send no transfers, so every other call is a test failure.
#[derive(Default)]
struct ScriptedBank {
    answers: Mutex<HashMap<String, Answer>>,
    inquiries: AtomicUsize,
}

impl ScriptedBank {
    fn answer(&self, number: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(number.to_owned(), answer);
    }

    fn inquiries(&self) -> usize {
        self.inquiries.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl BankGateway for ScriptedBank {
    fn next_tran_id(&self) -> BankTranId {
        panic!("merchants send no transfers")
    }

    async fn real_name(&self, account: &BankAccount) -> Result<RealNameOutcome, BankError> {
        self.inquiries.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get(account.account_number.expose())
            .cloned();
        match answer {
            Some(Answer::Holder(name)) => Ok(RealNameOutcome::Found {
                holder_name: HolderName::parse(name).unwrap(),
            }),
            Some(Answer::Refused(code)) => Err(BankError::Refused {
                code,
                message: "refused".into(),
            }),
            Some(Answer::Unavailable) => Err(BankError::Unavailable {
                reason: "timeout".into(),
            }),
            None => Ok(RealNameOutcome::NotFound),
        }
    }

    async fn register_consent(&self, _: &DebitConsent) -> Result<(), BankError> {
        panic!("merchants register no consents")
    }

    async fn revoke_consent(&self, _: &PayerNumber) -> Result<(), BankError> {
        panic!("merchants revoke no consents")
    }

    async fn collect(&self, _: &CollectRequest) -> TransferOutcome {
        panic!("merchants collect nothing")
    }

    async fn payout(&self, _: &PayoutRequest) -> TransferOutcome {
        panic!("merchants pay nothing out")
    }

    async fn transfer_result(&self, _: &TransferQuery) -> Result<InquiryOutcome, BankError> {
        panic!("merchants send no transfers")
    }

    async fn statement(
        &self,
        _: time::Date,
        _: Option<&StatementCursor>,
    ) -> Result<StatementPage, BankError> {
        panic!("merchants read no statements")
    }
}

/// What the scripted bank charges per holder-name inquiry, so that its booking shows.
const REAL_NAME_FEE: i64 = 7;
const SHOP_NUMBER: &str = "110123456789";
const SHOP_HOLDER: &str = "(주)마이커피";

struct Harness {
    merchants: Merchants,
    bank: Arc<ScriptedBank>,
    ledger: Arc<Ledger>,
    db: TestDb,
}

async fn start() -> Harness {
    let db = TestDb::new(16).await;
    let ledger = Arc::new(Ledger::start(
        db.db.clone(),
        Arc::new(SystemClock),
        WriterConfig::default(),
    ));
    let bank = Arc::new(ScriptedBank::default());
    bank.answer(SHOP_NUMBER, Answer::Holder(SHOP_HOLDER));
    let fees = BankFees {
        real_name: REAL_NAME_FEE,
        ..BankFees::default()
    };
    let transfers = Arc::new(BankTransfers::new(
        db.db.clone(),
        bank.clone(),
        ledger.clone(),
        fees,
    ));
    let (keys, _, _) = AccountKeys::generate("k1").unwrap();
    let merchants = Merchants::new(db.db.clone(), ledger.clone(), transfers, Arc::new(keys));
    Harness {
        merchants,
        bank,
        ledger,
        db,
    }
}

fn account(bank_code: &str, number: &str) -> BankAccount {
    BankAccount::new(
        BankCode::parse(bank_code).unwrap(),
        AccountNumber::parse(number).unwrap(),
    )
}

fn shop(name: &str) -> NewMerchant {
    NewMerchant {
        name: name.into(),
        fee_bps: 250,
        account: account("088", SHOP_NUMBER),
        holder_name: HolderName::parse(SHOP_HOLDER).unwrap(),
        request_key: None,
    }
}

impl Harness {
    async fn merchant_rows(&self) -> i64 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM merchants")
            .fetch_one(self.db.db.pool())
            .await
            .unwrap();
        row.try_get("n").unwrap()
    }

    /// The posted balance of `expense:bank_fees` (zero before any fee).
    async fn bank_fees_booked(&self) -> i64 {
        let code = AccountCode::parse("expense:bank_fees").unwrap();
        match self.ledger.account_by_code(&code).await {
            Ok(account) => account.balance().unwrap().posted.minor(),
            Err(LedgerError::AccountNotFound(_)) => 0,
            Err(error) => panic!("{error}"),
        }
    }
}

#[tokio::test]
async fn onboarding_checks_the_holder_and_stores_the_number_only_sealed() {
    let h = start().await;
    let merchant = h
        .merchants
        .onboard(shop("  마이커피 강남점 "))
        .await
        .unwrap();
    assert!(merchant.id.as_str().starts_with("mer_"));
    assert_eq!(merchant.name, "마이커피 강남점");
    assert_eq!(merchant.status, MerchantStatus::Active);
    assert!(merchant.is_active());
    assert_eq!(merchant.fee_bps, 250);
    assert_eq!(merchant.settlement.bank_code.as_str(), "088");
    assert_eq!(merchant.settlement.account_number_masked, "***-***-6789");
    assert_eq!(merchant.settlement.holder_name_masked, "(******");
    assert_eq!(h.merchants.get(&merchant.id).await.unwrap(), merchant);
    assert_eq!(h.bank.inquiries(), 1);
    assert_eq!(h.bank_fees_booked().await, REAL_NAME_FEE);

    let row = sqlx::query("SELECT * FROM merchants")
        .fetch_one(h.db.db.pool())
        .await
        .unwrap();
    for column in [
        "settlement_number_sealed",
        "settlement_key_id",
        "settlement_last4",
    ] {
        let value: String = row.try_get(column).unwrap();
        assert!(!value.contains("0123456"), "{column} holds the number");
    }
    assert!(!format!("{merchant:?}").contains(SHOP_NUMBER));

    let (target, holder) = h.merchants.settlement_target(&merchant.id).await.unwrap();
    assert_eq!(target, account("088", SHOP_NUMBER));
    assert_eq!(holder.expose(), SHOP_HOLDER);
}

#[tokio::test]
async fn holder_names_match_ignoring_spaces_and_latin_case() {
    let h = start().await;
    h.bank
        .answer("220000000001", Answer::Holder("MYPAY COFFEE"));
    let mut new = shop("Mypay Coffee");
    new.account = account("004", "220000000001");
    new.holder_name = HolderName::parse("Mypay Coffee").unwrap();
    let merchant = h.merchants.onboard(new).await.unwrap();
    let (_, holder) = h.merchants.settlement_target(&merchant.id).await.unwrap();
    assert_eq!(
        holder.expose(),
        "MYPAY COFFEE",
        "the bank's spelling is kept"
    );
}

#[tokio::test]
async fn a_refused_check_stores_nothing() {
    let h = start().await;
    let mut other_holder = shop("a");
    other_holder.holder_name = HolderName::parse("홍길동").unwrap();
    match h.merchants.onboard(other_holder).await {
        Err(MerchantError::HolderNameMismatch { actual_masked }) => {
            assert_eq!(actual_masked, "(******")
        }
        other => panic!("{other:?}"),
    }
    let mut unknown = shop("b");
    unknown.account = account("088", "999999999999");
    let error = h.merchants.onboard(unknown).await.unwrap_err();
    assert_eq!(error.code(), "bank_account_not_found");

    for (answer, code) in [
        (Answer::Unavailable, "bank_unavailable"),
        (
            Answer::Refused(RefusalCode::BankSystemError),
            "bank_unavailable",
        ),
        (Answer::Refused(RefusalCode::NotPermitted), "bank_refused"),
    ] {
        h.bank.answer("330000000001", answer);
        let mut new = shop("c");
        new.account = account("088", "330000000001");
        let error = h.merchants.onboard(new).await.unwrap_err();
        assert_eq!(error.code(), code);
    }
    assert_eq!(h.merchant_rows().await, 0);
    // The bank bills every inquiry it answered (four), not the one it never answered.
    assert_eq!(h.bank.inquiries(), 5);
    assert_eq!(h.bank_fees_booked().await, 4 * REAL_NAME_FEE);
}

#[tokio::test]
async fn names_and_fee_rates_are_checked_before_the_bank_is_asked() {
    let h = start().await;
    let mut too_high = shop("shop");
    too_high.fee_bps = 10_001;
    assert_eq!(
        h.merchants.onboard(too_high).await.unwrap_err().code(),
        "fee_bps_invalid"
    );
    let error = h.merchants.onboard(shop(" ")).await.unwrap_err();
    assert_eq!(error.code(), "merchant_name_invalid");
    assert_eq!(h.bank.inquiries(), 0);
    for fee_bps in [0, 10_000] {
        let mut edge = shop("edge");
        edge.fee_bps = fee_bps;
        assert_eq!(h.merchants.onboard(edge).await.unwrap().fee_bps, fee_bps);
    }
}

#[tokio::test]
async fn changes_apply_to_the_named_fields_only() {
    let h = start().await;
    let merchant = h.merchants.onboard(shop("shop")).await.unwrap();
    let unchanged = h
        .merchants
        .update(&merchant.id, MerchantPatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, merchant);
    let suspended = h
        .merchants
        .update(
            &merchant.id,
            MerchantPatch {
                status: Some(MerchantStatus::Suspended),
                ..MerchantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(suspended.status, MerchantStatus::Suspended);
    assert!(!suspended.is_active());
    assert_eq!((suspended.name.as_str(), suspended.fee_bps), ("shop", 250));
    let renamed = h
        .merchants
        .update(
            &merchant.id,
            MerchantPatch {
                name: Some("shop two".into()),
                fee_bps: Some(0),
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "shop two");
    assert_eq!(renamed.fee_bps, 0);
    assert_eq!(renamed.status, MerchantStatus::Suspended);
    assert!(renamed.updated_at >= merchant.updated_at);
    assert_eq!(renamed.created_at, merchant.created_at);

    let bad_fee = MerchantPatch {
        fee_bps: Some(10_001),
        ..MerchantPatch::default()
    };
    assert_eq!(
        h.merchants
            .update(&merchant.id, bad_fee)
            .await
            .unwrap_err()
            .code(),
        "fee_bps_invalid"
    );
    let missing = MerchantId::generate();
    let patch = MerchantPatch {
        name: Some("x".into()),
        ..MerchantPatch::default()
    };
    assert_eq!(
        h.merchants
            .update(&missing, patch)
            .await
            .unwrap_err()
            .code(),
        "merchant_not_found"
    );
    assert_eq!(
        h.merchants.get(&missing).await.unwrap_err().code(),
        "merchant_not_found"
    );
}

#[tokio::test]
async fn a_new_settlement_account_is_checked_like_the_first() {
    let h = start().await;
    let merchant = h.merchants.onboard(shop("shop")).await.unwrap();
    h.bank.answer("440000005555", Answer::Holder("홍길동"));
    let refused = h
        .merchants
        .change_settlement_account(
            &merchant.id,
            account("004", "440000005555"),
            HolderName::parse(SHOP_HOLDER).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "holder_name_mismatch");
    let (target, _) = h.merchants.settlement_target(&merchant.id).await.unwrap();
    assert_eq!(target, account("088", SHOP_NUMBER), "the old account stays");

    let changed = h
        .merchants
        .change_settlement_account(
            &merchant.id,
            account("004", "4400-0000-5555"),
            HolderName::parse("홍 길동").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(changed.settlement.bank_code.as_str(), "004");
    assert_eq!(changed.settlement.account_number_masked, "***-***-5555");
    assert_eq!(changed.settlement.holder_name_masked, "홍**");
    let (target, holder) = h.merchants.settlement_target(&merchant.id).await.unwrap();
    assert_eq!(target, account("004", "440000005555"));
    assert_eq!(holder.expose(), "홍길동");

    let missing = MerchantId::generate();
    let error = h
        .merchants
        .change_settlement_account(
            &missing,
            account("004", "440000005555"),
            HolderName::parse("홍길동").unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "merchant_not_found");
    assert_eq!(
        h.bank.inquiries(),
        3,
        "a missing merchant asks the bank nothing"
    );
}

#[tokio::test]
async fn a_sealed_number_moved_to_another_merchant_does_not_open() {
    let h = start().await;
    let a = h.merchants.onboard(shop("a")).await.unwrap();
    let b = h.merchants.onboard(shop("b")).await.unwrap();
    sqlx::query(
        "UPDATE merchants SET settlement_number_sealed = \
         (SELECT settlement_number_sealed FROM merchants WHERE id = $1) WHERE id = $2",
    )
    .bind(a.id.as_str())
    .bind(b.id.as_str())
    .execute(h.db.db.pool())
    .await
    .unwrap();
    let error = h.merchants.settlement_target(&b.id).await.unwrap_err();
    assert_eq!(error.code(), "internal_error");
    assert!(h.merchants.settlement_target(&a.id).await.is_ok());
}

#[tokio::test]
async fn merchants_page_in_onboarding_order() {
    let h = start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            h.merchants
                .onboard(shop(&format!("shop {n}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h.merchants.list(after.as_deref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|m| m.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn a_request_key_finds_the_merchant_it_onboarded() {
    let h = start().await;
    let key = RequestKey {
        scope: "key_platform".into(),
        key: "onboard-1".into(),
    };
    let keyed = |name: &str| NewMerchant {
        request_key: Some(key.clone()),
        ..shop(name)
    };
    let first = h.merchants.onboard(keyed("shop")).await.unwrap();
    let again = h.merchants.onboard(keyed("shop")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(h.bank.inquiries(), 1, "a replay asks the bank nothing");
    let error = h
        .merchants
        .onboard(keyed("another shop"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "idempotency_key_reused");
    let other_scope = NewMerchant {
        request_key: Some(RequestKey {
            scope: "key_other".into(),
            key: "onboard-1".into(),
        }),
        ..shop("shop")
    };
    assert_ne!(h.merchants.onboard(other_scope).await.unwrap().id, first.id);

    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let merchants = h.merchants.clone();
        let new = NewMerchant {
            request_key: Some(RequestKey {
                scope: "key_platform".into(),
                key: "onboard-2".into(),
            }),
            ..shop("racing shop")
        };
        tasks.spawn(async move { merchants.onboard(new).await.unwrap().id });
    }
    let ids: Vec<MerchantId> = tasks.join_all().await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(h.merchant_rows().await, 3);
}

#[tokio::test]
async fn ledger_accounts_open_once_under_concurrent_first_use() {
    let h = start().await;
    let merchant = h.merchants.onboard(shop("shop")).await.unwrap();
    let mut tasks = JoinSet::new();
    for n in 0..16 {
        let merchants = h.merchants.clone();
        let id = merchant.id.clone();
        let purpose = if n % 2 == 0 {
            MerchantAccount::Payable
        } else {
            MerchantAccount::Escrow
        };
        tasks.spawn(async move {
            let account = merchants
                .ledger_account(&id, purpose, Currency::KRW)
                .await
                .unwrap();
            (purpose, account)
        });
    }
    let opened = tasks.join_all().await;
    for purpose in [MerchantAccount::Payable, MerchantAccount::Escrow] {
        let ids: Vec<_> = opened
            .iter()
            .filter(|(p, _)| *p == purpose)
            .map(|(_, id)| id.clone())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{purpose:?}: {ids:?}");
        let account = h.ledger.account(ids[0].as_str()).await.unwrap();
        assert_eq!(
            account.code.as_str(),
            purpose.code(&merchant.id, Currency::KRW)
        );
        assert_eq!(account.kind, AccountKind::Liability);
        assert_eq!(account.currency, Currency::KRW);
        assert_eq!(account.flags, purpose.flags());
    }
    let usd = h
        .merchants
        .ledger_account(&merchant.id, MerchantAccount::Payable, Currency::USD)
        .await
        .unwrap();
    assert_eq!(
        h.ledger.account(usd.as_str()).await.unwrap().currency,
        Currency::USD
    );

    let missing = MerchantId::generate();
    let error = h
        .merchants
        .ledger_account(&missing, MerchantAccount::Payable, Currency::KRW)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "merchant_not_found");
}

#[tokio::test]
async fn payable_may_go_negative_and_escrow_may_not() {
    let h = start().await;
    let merchant = h.merchants.onboard(shop("shop")).await.unwrap();
    let open = |purpose| {
        h.merchants
            .ledger_account(&merchant.id, purpose, Currency::KRW)
    };
    let payable = open(MerchantAccount::Payable).await.unwrap();
    let escrow = open(MerchantAccount::Escrow).await.unwrap();
    let platform = h
        .ledger
        .create_account(NewAccount {
            code: AccountCode::parse("asset:test:platform").unwrap(),
            kind: AccountKind::Asset,
            currency: Currency::KRW,
            flags: AccountFlags::empty(),
            metadata: None,
        })
        .await
        .unwrap()
        .id;
    let won = |n| Money::from_minor(n, Currency::KRW);
    // A refund taken from a merchant that was already settled: the payable goes below zero.
    let refund = NewTransaction::transfer(
        TransactionId::parse("test:refund").unwrap(),
        payable.clone(),
        platform.clone(),
        won(5_000),
    );
    h.ledger.post_transaction(refund).await.unwrap();
    let balance = h.ledger.balance(payable.as_str()).await.unwrap();
    assert_eq!(balance.posted, won(-5_000));
    // Nothing can leave escrow that was not held there.
    let release = NewTransaction::transfer(
        TransactionId::parse("test:release").unwrap(),
        escrow,
        payable,
        won(1),
    );
    let error = h.ledger.post_transaction(release).await.unwrap_err();
    assert!(
        matches!(error, LedgerError::InsufficientFunds { .. }),
        "{error}"
    );
}
