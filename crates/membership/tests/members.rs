//! The membership service against a real database: SQLite by default, PostgreSQL when
//! `MYPAY_TEST_DATABASE_URL` names a server. Time is a manual clock, moved to test expiry and
//! the login lock.

use std::sync::Arc;

use ledger::{
    AccountCode, AccountFlags, AccountKind, HoldId, Ledger, ManualClock, NewAccount, NewHold,
    NewTransaction, PostHold, TransactionId, WriterConfig,
};
use membership::{
    Email, Member, MemberConfig, MemberError, MemberName, MemberStatus, Members, NewMember,
    NewSession, Password, Phone, ProfileChange, SessionToken, LOGIN_FAILURES_MAX, LOGIN_LOCK_S,
    SESSIONS_PER_MEMBER_MAX,
};
use money::{Currency, Money};
use testkit::TestDb;

/// 2026-11-22T00:00:00Z.
const START_MICROS: i64 = 1_795_305_600_000_000;
const SECOND_MICROS: i64 = 1_000_000;

struct Harness {
    members: Members,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    _db: TestDb,
}

async fn start() -> Harness {
    start_with(MemberConfig::default()).await
}

async fn start_with(config: MemberConfig) -> Harness {
    let db = TestDb::new(8).await;
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let ledger = Arc::new(Ledger::start(
        db.db.clone(),
        clock.clone(),
        WriterConfig::default(),
    ));
    let members = Members::new(db.db.clone(), ledger.clone(), config);
    Harness {
        members,
        ledger,
        clock,
        _db: db,
    }
}

impl Harness {
    /// Signs up the member most tests start with: kim@example.com, 010-1234-5678.
    async fn sign_up_kim(&self) -> Member {
        self.members
            .sign_up(new_member("kim@example.com", "010-1234-5678"))
            .await
            .unwrap()
    }

    /// Logs that member in with the right password.
    async fn log_in_kim(&self) -> NewSession {
        self.members
            .log_in(&email("kim@example.com"), &presented(PASSWORD))
            .await
            .unwrap()
    }
}

fn new_member(email: &str, phone: &str) -> NewMember {
    NewMember {
        email: Email::parse(email).unwrap(),
        phone: Phone::parse(phone).unwrap(),
        name: MemberName::parse("김민수").unwrap(),
        password: Password::parse(PASSWORD.to_owned()).unwrap(),
    }
}

const PASSWORD: &str = "correct horse battery";

fn presented(password: &str) -> Password {
    Password::presented(password.to_owned()).unwrap()
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn code(error: MemberError) -> &'static str {
    error.code()
}

#[tokio::test]
async fn sign_up_log_in_authenticate_and_log_out() {
    let h = start().await;
    let member = h
        .members
        .sign_up(new_member("Kim@Example.com", "010-1234-5678"))
        .await
        .unwrap();
    assert!(member.id.as_str().starts_with("usr_"));
    assert_eq!(member.email.as_str(), "kim@example.com");
    assert_eq!(member.phone.as_str(), "+821012345678");
    assert_eq!(member.status, MemberStatus::Active);
    assert_eq!(member.created_at, START_MICROS);
    assert_eq!(h.members.get(&member.id).await.unwrap(), member);

    let login = h
        .members
        .log_in(&email("KIM@example.com"), &presented(PASSWORD))
        .await
        .unwrap();
    assert_eq!(login.session.member_id, member.id);
    assert_eq!(
        login.session.expires_at,
        START_MICROS + 24 * 3600 * SECOND_MICROS
    );
    let session = h.members.authenticate(&login.token).await.unwrap();
    assert_eq!(session, Some(login.session.clone()));

    h.members.log_out(&login.session.id).await.unwrap();
    assert_eq!(h.members.authenticate(&login.token).await.unwrap(), None);
    h.members.log_out(&login.session.id).await.unwrap();
    let unknown = SessionToken::generate().unwrap();
    assert_eq!(h.members.authenticate(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn emails_and_phones_belong_to_one_active_member() {
    let h = start().await;
    let first = h.sign_up_kim().await;
    let same_email = h
        .members
        .sign_up(new_member("KIM@EXAMPLE.COM", "010-9999-0000"))
        .await
        .unwrap_err();
    assert_eq!(code(same_email), "email_taken");
    let same_phone = h
        .members
        .sign_up(new_member("lee@example.com", "+82 10 1234 5678"))
        .await
        .unwrap_err();
    assert_eq!(code(same_phone), "phone_taken");

    let second = h
        .members
        .sign_up(new_member("lee@example.com", "010-2222-3333"))
        .await
        .unwrap();
    let change = ProfileChange {
        email: Some(email("kim@example.com")),
        ..ProfileChange::default()
    };
    let error = h.members.update(&second.id, change).await.unwrap_err();
    assert_eq!(code(error), "email_taken");
    let change = ProfileChange {
        phone: Some(Phone::parse("01012345678").unwrap()),
        ..ProfileChange::default()
    };
    let error = h.members.update(&second.id, change).await.unwrap_err();
    assert_eq!(code(error), "phone_taken");

    // Closing frees both for a new sign-up; the closed member keeps them on record.
    h.members.close(&first.id).await.unwrap();
    let again = h.sign_up_kim().await;
    assert_ne!(again.id, first.id);
    let closed = h.members.get(&first.id).await.unwrap();
    assert_eq!(closed.email.as_str(), "kim@example.com");
    assert_eq!(closed.status, MemberStatus::Closed);
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_admit_exactly_one() {
    let h = Arc::new(start().await);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.members
                .sign_up(new_member("race@example.com", &format!("010-5555-000{i}")))
                .await
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(error) => assert_eq!(code(error), "email_taken"),
        }
    }
    assert_eq!(admitted, 1);
}

#[tokio::test]
async fn wrong_passwords_unknown_and_closed_members_are_all_invalid_credentials() {
    let h = start().await;
    let member = h.sign_up_kim().await;
    for (address, password) in [
        ("kim@example.com", "correct horse batterY"),
        ("kim@example.com", "short"),
        ("nobody@example.com", PASSWORD),
    ] {
        let error = h
            .members
            .log_in(&email(address), &presented(password))
            .await
            .unwrap_err();
        assert_eq!(code(error), "invalid_credentials", "{address}");
    }
    h.members.close(&member.id).await.unwrap();
    let error = h
        .members
        .log_in(&email("kim@example.com"), &presented(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(code(error), "invalid_credentials");
}

#[tokio::test]
async fn repeated_failures_lock_an_address_for_a_while_registered_or_not() {
    let h = start().await;
    h.sign_up_kim().await;
    for address in ["kim@example.com", "nobody@example.com"] {
        for _ in 0..LOGIN_FAILURES_MAX {
            let error = h
                .members
                .log_in(&email(address), &presented("wrong password"))
                .await
                .unwrap_err();
            assert_eq!(code(error), "invalid_credentials");
        }
        // Locked now, even for the right password; the other address is unaffected.
        let error = h
            .members
            .log_in(&email(address), &presented(PASSWORD))
            .await
            .unwrap_err();
        assert!(
            matches!(error, MemberError::LoginLocked { retry_after_s } if retry_after_s == LOGIN_LOCK_S),
            "{error:?}"
        );
    }
    h.members
        .log_in(&email("other@example.com"), &presented(PASSWORD))
        .await
        .map(|_| ())
        .unwrap_err();

    h.clock
        .advance_micros((LOGIN_LOCK_S - 1) * SECOND_MICROS + 1);
    let error = h
        .members
        .log_in(&email("kim@example.com"), &presented(PASSWORD))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MemberError::LoginLocked { retry_after_s: 1 }),
        "{error:?}"
    );
    h.clock.advance_micros(SECOND_MICROS);
    h.log_in_kim().await;
    // A success forgets earlier failures: four more failures do not lock.
    for _ in 0..LOGIN_FAILURES_MAX - 1 {
        h.members
            .log_in(&email("kim@example.com"), &presented("wrong password"))
            .await
            .unwrap_err();
    }
    h.log_in_kim().await;
}

#[tokio::test]
async fn sessions_expire_with_the_clock_and_ttls_are_bounded() {
    let h = start_with(MemberConfig { session_ttl_s: 600 }).await;
    h.sign_up_kim().await;
    let login = h.log_in_kim().await;
    assert_eq!(login.session.expires_at, START_MICROS + 600 * SECOND_MICROS);
    h.clock.advance_micros(600 * SECOND_MICROS - 1);
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_some());
    h.clock.advance_micros(1);
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_none());

    for (asked, granted) in [(1, 300), (i64::MAX, 30 * 24 * 3600)] {
        let h = start_with(MemberConfig {
            session_ttl_s: asked,
        })
        .await;
        h.sign_up_kim().await;
        let login = h.log_in_kim().await;
        assert_eq!(
            login.session.expires_at,
            START_MICROS + granted * SECOND_MICROS
        );
    }
}

#[tokio::test]
async fn a_member_keeps_a_bounded_number_of_live_sessions() {
    let h = start().await;
    h.sign_up_kim().await;
    let mut tokens = Vec::new();
    for _ in 0..=SESSIONS_PER_MEMBER_MAX {
        let login = h.log_in_kim().await;
        tokens.push(login.token);
        h.clock.advance_micros(1);
    }
    assert!(
        h.members.authenticate(&tokens[0]).await.unwrap().is_none(),
        "the oldest session made room"
    );
    for token in &tokens[1..] {
        assert!(h.members.authenticate(token).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn profile_changes_and_password_changes_revoke_every_session() {
    let h = start().await;
    let member = h.sign_up_kim().await;
    let login = h.log_in_kim().await;
    h.clock.advance_micros(SECOND_MICROS);

    let change = ProfileChange {
        name: Some(MemberName::parse("Kim Minsu").unwrap()),
        email: Some(email("minsu@example.com")),
        phone: Some(Phone::parse("+82 10 8765 4321").unwrap()),
        ..ProfileChange::default()
    };
    let updated = h.members.update(&member.id, change).await.unwrap();
    assert_eq!(updated.name.as_str(), "Kim Minsu");
    assert_eq!(updated.email.as_str(), "minsu@example.com");
    assert_eq!(updated.phone.as_str(), "+821087654321");
    assert_eq!(updated.updated_at, START_MICROS + SECOND_MICROS);
    assert_eq!(updated.created_at, START_MICROS);
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_some());
    // Nothing to change is a no-op that still answers the member.
    let same = h
        .members
        .update(&member.id, ProfileChange::default())
        .await
        .unwrap();
    assert_eq!(same.email, updated.email);

    let new_password = Password::parse("a much longer passphrase".into()).unwrap();
    let needs_current = ProfileChange {
        new_password: Some(new_password.clone()),
        ..ProfileChange::default()
    };
    let error = h
        .members
        .update(&member.id, needs_current)
        .await
        .unwrap_err();
    assert_eq!(code(error), "invalid_request");
    let only_current = ProfileChange {
        current_password: Some(presented(PASSWORD)),
        ..ProfileChange::default()
    };
    let error = h
        .members
        .update(&member.id, only_current)
        .await
        .unwrap_err();
    assert_eq!(code(error), "invalid_request");
    let wrong_current = ProfileChange {
        new_password: Some(new_password.clone()),
        current_password: Some(presented("not the password")),
        name: Some(MemberName::parse("Mallory").unwrap()),
        ..ProfileChange::default()
    };
    let error = h
        .members
        .update(&member.id, wrong_current)
        .await
        .unwrap_err();
    assert_eq!(code(error), "current_password_incorrect");
    assert_eq!(
        h.members.get(&member.id).await.unwrap().name.as_str(),
        "Kim Minsu",
        "a refused change changes nothing"
    );

    let change = ProfileChange {
        new_password: Some(new_password),
        current_password: Some(presented(PASSWORD)),
        ..ProfileChange::default()
    };
    h.members.update(&member.id, change).await.unwrap();
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_none());
    let error = h
        .members
        .log_in(&email("minsu@example.com"), &presented(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(code(error), "invalid_credentials");
    h.members
        .log_in(
            &email("minsu@example.com"),
            &presented("a much longer passphrase"),
        )
        .await
        .unwrap();

    let missing = membership::MemberId::generate();
    let error = h
        .members
        .update(&missing, ProfileChange::default())
        .await
        .unwrap_err();
    assert_eq!(code(error), "member_not_found");
    assert_eq!(
        code(h.members.get(&missing).await.unwrap_err()),
        "member_not_found"
    );
    assert_eq!(
        code(h.members.close(&missing).await.unwrap_err()),
        "member_not_found"
    );
}

fn krw(minor: i64) -> Money {
    Money::from_minor(minor, Currency::KRW)
}

async fn open(h: &Harness, code: &str, kind: AccountKind) -> ledger::Account {
    h.ledger
        .create_account(NewAccount {
            code: AccountCode::parse(code).unwrap(),
            kind,
            currency: Currency::KRW,
            flags: if kind == AccountKind::Liability {
                AccountFlags::MUST_NOT_GO_NEGATIVE
            } else {
                AccountFlags::empty()
            },
            metadata: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn closing_is_refused_while_money_or_holds_remain() {
    let h = start().await;
    let member = h.sign_up_kim().await;
    let login = h.log_in_kim().await;
    let prefix = member.id.ledger_code_prefix();
    let money = open(&h, &format!("{prefix}money:KRW"), AccountKind::Liability).await;
    let points = open(&h, &format!("{prefix}points:KRW"), AccountKind::Liability).await;
    let master = open(&h, "asset:bank:master", AccountKind::Asset).await;
    // Empty accounts do not stand in the way, but money does.
    h.ledger
        .post_transaction(NewTransaction::transfer(
            TransactionId::parse("charge-1").unwrap(),
            master.id.clone(),
            money.id.clone(),
            krw(15_000),
        ))
        .await
        .unwrap();
    let error = h.members.close(&member.id).await.unwrap_err();
    assert!(
        matches!(&error, MemberError::BalanceRemaining { account_code } if *account_code == money.code.as_str()),
        "{error:?}"
    );

    // Money reserved to leave still counts until the hold is posted.
    h.ledger
        .reserve_hold(NewHold {
            id: HoldId::parse("withdraw-1").unwrap(),
            debit_account_id: money.id.clone(),
            credit_account_id: master.id.clone(),
            amount: krw(15_000),
            expires_at: None,
            metadata: None,
            balance_limits: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        code(h.members.close(&member.id).await.unwrap_err()),
        "balance_remaining"
    );
    h.ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("withdraw-1").unwrap(),
            amount: None,
            transaction_id: None,
        })
        .await
        .unwrap();

    // Money promised to arrive (an incoming hold) counts too.
    h.ledger
        .reserve_hold(NewHold {
            id: HoldId::parse("reward-1").unwrap(),
            debit_account_id: master.id.clone(),
            credit_account_id: points.id.clone(),
            amount: krw(500),
            expires_at: None,
            metadata: None,
            balance_limits: Vec::new(),
        })
        .await
        .unwrap();
    let error = h.members.close(&member.id).await.unwrap_err();
    assert!(
        matches!(&error, MemberError::BalanceRemaining { account_code } if *account_code == points.code.as_str()),
        "{error:?}"
    );
    h.ledger
        .void_hold(HoldId::parse("reward-1").unwrap())
        .await
        .unwrap();
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_some());

    h.clock.advance_micros(SECOND_MICROS);
    let closed = h.members.close(&member.id).await.unwrap();
    assert_eq!(closed.status, MemberStatus::Closed);
    assert_eq!(closed.closed_at, Some(START_MICROS + SECOND_MICROS));
    assert!(h
        .members
        .authenticate(&login.token)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        code(h.members.close(&member.id).await.unwrap_err()),
        "member_closed"
    );
    let change = ProfileChange {
        name: Some(MemberName::parse("Ghost").unwrap()),
        ..ProfileChange::default()
    };
    assert_eq!(
        code(h.members.update(&member.id, change).await.unwrap_err()),
        "member_closed"
    );
}
