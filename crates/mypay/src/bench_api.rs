//! `mypay bench api`: an open-loop load of member transfers and checkouts against a running
//! server, over HTTP.
//!
//! Open loop means requests are sent at a fixed arrival rate whatever the server's answers do,
//! and each latency is measured from the instant the request was *meant* to be sent. A slow
//! answer therefore cannot slow the load down and hide itself (coordinated omission): if the
//! server falls behind, the queue shows up in the latencies.
//!
//! Setup goes through the product's own front door: members sign up, log in, link an account at
//! the sandbox bank (holder check, 1-won code, debit consent) and charge their wallets; a
//! merchant is onboarded with a settlement account. Every run uses fresh names, so it can run
//! against a server that already holds data.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Latencies are recorded in microseconds up to a minute.
const LATENCY_US_MAX: u64 = 60_000_000;
/// What each member charges into their wallet before the load, in won.
const WALLET_FUNDING: i64 = 1_000_000;
/// Transfers and checkouts move between 1 and this many won.
const AMOUNT_MAX: i64 = 100;
/// The bank the members' and the merchant's accounts are at.
const BANK_CODE: &str = "004";
/// Members and merchants are set up this many at a time.
const SETUP_CONCURRENCY: usize = 8;

#[derive(Debug, Args)]
pub struct ApiBenchArgs {
    /// The server to load, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The sandbox bank the server is configured with (`mypay serve --bank-url`): the
    /// benchmark opens its members' accounts there and reads their 1-won codes.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub bank_url: String,
    /// An admin API key of the server, to onboard the merchant.
    #[arg(long, env = "MYPAY_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_key: String,
    /// Offered arrival rates in requests per second, each measured in turn.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000")]
    pub rates: Vec<u32>,
    /// How long each rate is measured.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub seconds: u64,
    /// Load at the first rate before measuring, unrecorded, so that connections are open and
    /// caches warm.
    #[arg(long, default_value_t = 2)]
    pub warmup_seconds: u64,
    /// Members sending transfers and paying at checkout.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    pub members: u64,
    /// The share of arrivals that are checkouts (paid from the wallet) rather than transfers.
    #[arg(long, default_value_t = 0.1)]
    pub checkout_share: f64,
    /// Requests outstanding at most; an arrival beyond it is not sent and counts as shed, so an
    /// overloaded server shows as shed load instead of an unbounded queue in the client.
    #[arg(long, default_value_t = 4_096)]
    pub max_in_flight: usize,
}

/// A member ready to pay: their id and session token.
#[derive(Clone)]
struct Member {
    id: String,
    token: String,
}

/// Who the load runs between.
struct Fixture {
    members: Vec<Member>,
    merchant: String,
    run: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Transfer,
    Checkout,
}

/// What one rate's requests saw.
struct Tally {
    transfers: Histogram<u64>,
    checkouts: Histogram<u64>,
    /// Answers other than success, by status and error code.
    errors: std::collections::BTreeMap<String, u64>,
    shed: u64,
}

impl Tally {
    fn new() -> Tally {
        let histogram =
            || Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds");
        Tally {
            transfers: histogram(),
            checkouts: histogram(),
            errors: Default::default(),
            shed: 0,
        }
    }

    fn errors(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.shed
    }
}

pub async fn api(args: ApiBenchArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.checkout_share) {
        bail!("--checkout-share must be between 0 and 1");
    }
    if args.rates.is_empty() || args.rates.contains(&0) {
        bail!("--rates must list positive rates");
    }
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.max_in_flight)
        .build()?;
    let started = Instant::now();
    let fixture = Arc::new(set_up(&client, &args).await?);
    eprintln!(
        "set up {} members and a merchant in {:.1} s",
        fixture.members.len(),
        started.elapsed().as_secs_f64()
    );
    if args.warmup_seconds > 0 {
        let warmup = Duration::from_secs(args.warmup_seconds);
        load(&client, &args, &fixture, args.rates[0], warmup, "warmup").await;
    }
    let mut failed = false;
    for &rate in &args.rates {
        let duration = Duration::from_secs(args.seconds);
        let (tally, elapsed) = load(&client, &args, &fixture, rate, duration, "measure").await;
        failed |= tally.errors() > 0;
        report(rate, &tally, elapsed, &args);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints one rate's figures, the last line machine-readable.
fn report(rate: u32, tally: &Tally, elapsed: f64, args: &ApiBenchArgs) {
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    let max = |h: &Histogram<u64>| h.max() as f64 / 1_000.0;
    let mut all = tally.transfers.clone();
    all.add(&tally.checkouts).expect("equal bounds");
    let achieved = all.len() as f64 / elapsed;
    println!(
        "offered {rate}/s, all answered in {elapsed:.1} s: achieved {achieved:.0}/s ({} transfers, {} checkouts), errors {}, shed {}",
        tally.transfers.len(),
        tally.checkouts.len(),
        tally.errors.values().sum::<u64>(),
        tally.shed
    );
    for (name, h) in [
        ("transfers", &tally.transfers),
        ("checkouts", &tally.checkouts),
    ] {
        if !h.is_empty() {
            println!(
                "  {name:<9} p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                ms(h, 0.5),
                ms(h, 0.99),
                max(h)
            );
        }
    }
    for (error, count) in &tally.errors {
        println!("  error {error}: {count}");
    }
    println!(
        "offered_per_s={rate} achieved_per_s={achieved:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} transfer_p99_ms={:.3} checkout_p99_ms={:.3} errors={} members={} checkout_share={}",
        ms(&all, 0.5),
        ms(&all, 0.99),
        max(&all),
        ms(&tally.transfers, 0.99),
        ms(&tally.checkouts, 0.99),
        tally.errors(),
        args.members,
        args.checkout_share,
    );
}

/// Offers `rate` arrivals per second for `duration` and waits for every answer.
async fn load(
    client: &Client,
    args: &ApiBenchArgs,
    fixture: &Arc<Fixture>,
    rate: u32,
    duration: Duration,
    phase: &str,
) -> (Tally, f64) {
    let tally = Arc::new(Mutex::new(Tally::new()));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    let (arrivals, mut due) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    // A thread of its own paces the arrivals: a thread sleeps to within tens of microseconds,
    // where the async timer rounds to a millisecond.
    let pacer = std::thread::spawn(move || pace(rate, started, started + duration, arrivals));
    let mut requests = JoinSet::new();
    let mut n = 0u64;
    while let Some(intended) = due.recv().await {
        n += 1;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tally.lock().expect("tally lock").shed += 1;
            continue;
        };
        let operation = if rand::rng().random_bool(args.checkout_share) {
            Operation::Checkout
        } else {
            Operation::Transfer
        };
        let (client, fixture, tally) = (client.clone(), fixture.clone(), tally.clone());
        let key = format!("bench-{}-{phase}-{rate}-{n}", fixture.run);
        let url = args.url.clone();
        requests.spawn(async move {
            let outcome = send(&client, &url, &fixture, operation, &key).await;
            let micros = u64::try_from(intended.elapsed().as_micros()).unwrap_or(LATENCY_US_MAX);
            let mut tally = tally.lock().expect("tally lock");
            match outcome {
                Ok(()) => {
                    let histogram = match operation {
                        Operation::Transfer => &mut tally.transfers,
                        Operation::Checkout => &mut tally.checkouts,
                    };
                    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
                }
                Err(error) => *tally.errors.entry(error).or_default() += 1,
            }
            drop(permit);
        });
        // Reap finished requests as we go so the set does not grow with the run.
        while requests.try_join_next().is_some() {}
    }
    pacer.join().expect("the pacer thread");
    while requests.join_next().await.is_some() {}
    // Until the last answer, not the last arrival: a server that falls behind finishes late,
    // and its achieved rate must show that.
    let elapsed = started.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("every request is done")
        .into_inner()
        .expect("tally lock");
    (tally, elapsed)
}

/// Emits the intended send instant of each arrival, `1/rate` apart, until `end`. When it falls
/// behind it does not skip: the late arrivals go out at once and their latency counts from
/// when they were due.
fn pace(
    rate: u32,
    start: Instant,
    end: Instant,
    arrivals: tokio::sync::mpsc::UnboundedSender<Instant>,
) {
    let interval = Duration::from_secs(1) / rate;
    let mut i = 0u32;
    loop {
        let intended = start + interval * i;
        if intended >= end {
            return;
        }
        if let Some(wait) = intended.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if arrivals.send(intended).is_err() {
            return;
        }
        i += 1;
    }
}

/// Sends one request; an error is named by its status and code, so that the report can count
/// each kind.
async fn send(
    client: &Client,
    url: &str,
    fixture: &Fixture,
    operation: Operation,
    key: &str,
) -> Result<(), String> {
    // The thread-local generator is not `Send`, so it is done with before the first await.
    let (from, to, amount) = {
        let mut rng = rand::rng();
        let count = fixture.members.len();
        let from = rng.random_range(0..count);
        let to = (from + rng.random_range(1..count)) % count;
        (from, to, rng.random_range(1..=AMOUNT_MAX).to_string())
    };
    let payer = &fixture.members[from];
    let request = match operation {
        Operation::Transfer => {
            let to = &fixture.members[to];
            client.post(format!("{url}/v1/transfers")).json(&json!({
                "to": {"member_id": to.id}, "amount": amount, "currency": "KRW",
            }))
        }
        Operation::Checkout => client.post(format!("{url}/v1/payments")).json(&json!({
            "checkout_id": key,
            "funding": {"money": amount},
            "payment_orders": [{
                "seller_account": fixture.merchant, "amount": amount, "currency": "KRW",
                "payment_order_id": key,
            }],
        })),
    };
    let response = request
        .bearer_auth(&payer.token)
        .header("Idempotency-Key", key)
        .send()
        .await
        .map_err(|error| {
            if error.is_timeout() {
                "timeout".to_owned()
            } else {
                "connection".to_owned()
            }
        })?;
    let status = response.status();
    if status == StatusCode::CREATED {
        return Ok(());
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Err(format!(
        "{} {}",
        status.as_u16(),
        body["error"]["code"].as_str().unwrap_or("")
    ))
}

/// Sets up the merchant and the members, `SETUP_CONCURRENCY` members at a time.
async fn set_up(client: &Client, args: &ApiBenchArgs) -> anyhow::Result<Fixture> {
    let run = ulid::Ulid::new().to_string().to_lowercase();
    // Account numbers and phone numbers are digits; a run's come from its own random base.
    let base: u64 = rand::rng().random_range(10_000_000..90_000_000);
    let setup = Setup {
        client: client.clone(),
        url: args.url.clone(),
        bank: args.bank_url.clone(),
    };
    let merchant = setup
        .merchant(&args.admin_key, &format!("{base}9999"), &run)
        .await
        .context("cannot onboard the merchant")?;
    let setup = Arc::new(setup);
    let mut members = Vec::new();
    let mut tasks = JoinSet::new();
    for i in 0..args.members {
        if tasks.len() >= SETUP_CONCURRENCY {
            members.push(tasks.join_next().await.expect("a task")??);
        }
        let (setup, run) = (setup.clone(), run.clone());
        tasks.spawn(async move {
            setup
                .member(&run, i, base)
                .await
                .with_context(|| format!("cannot set up member {i}"))
        });
    }
    while let Some(member) = tasks.join_next().await {
        members.push(member??);
    }
    Ok(Fixture {
        members,
        merchant,
        run,
    })
}

/// The calls that set a run up.
struct Setup {
    client: Client,
    url: String,
    bank: String,
}

impl Setup {
    /// A POST that must succeed; answers the body.
    async fn call(
        &self,
        url: String,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.post(&url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {url} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn open_bank_account(
        &self,
        number: &str,
        holder: &str,
        balance: i64,
    ) -> anyhow::Result<()> {
        self.call(
            format!("{}/admin/accounts", self.bank),
            None,
            None,
            &json!({"bank_code_std": BANK_CODE, "account_num": number,
                    "account_holder_name": holder, "balance_amt": balance.to_string()}),
        )
        .await
        .map(|_| ())
    }

    async fn merchant(&self, admin_key: &str, account: &str, run: &str) -> anyhow::Result<String> {
        let holder = "주식회사벤치";
        self.open_bank_account(account, holder, 0).await?;
        let merchant = self
            .call(
                format!("{}/v1/merchants", self.url),
                Some(admin_key),
                Some(&format!("bench-{run}-merchant")),
                &json!({"name": "Bench shop", "fee_bps": 250, "settlement_account": {
                    "bank_code": BANK_CODE, "account_number": account, "holder_name": holder}}),
            )
            .await?;
        field(&merchant, "id")
    }

    /// Signs a member up, links an account with a debit consent and charges the wallet.
    async fn member(&self, run: &str, i: u64, base: u64) -> anyhow::Result<Member> {
        let email = format!("bench-{run}-{i}@example.com");
        let password = format!("bench password {run}");
        let name = "김벤치";
        let phone_digits = format!("{:08}", (base + i) % 100_000_000);
        let phone = format!("010-{}-{}", &phone_digits[..4], &phone_digits[4..]);
        let signed_up = self
            .call(
                format!("{}/v1/members", self.url),
                None,
                None,
                &json!({"email": email, "phone": phone, "name": name, "password": password}),
            )
            .await?;
        let session = self
            .call(
                format!("{}/v1/sessions", self.url),
                None,
                None,
                &json!({"email": email, "password": password}),
            )
            .await?;
        let token = field(&session, "token")?;
        let number = format!("{}{:04}", base, i);
        // The 1-won verification deposit tops the account up to a round figure.
        self.open_bank_account(&number, name, WALLET_FUNDING * 2 - 1)
            .await?;
        let link = self
            .call(
                format!("{}/v1/bank-accounts", self.url),
                Some(&token),
                Some(&format!("bench-{run}-link-{i}")),
                &json!({"bank_code": BANK_CODE, "account_number": number}),
            )
            .await?;
        let account = field(&link, "id")?;
        let code = self.one_won_code(&number).await?;
        let accounts = format!("{}/v1/bank-accounts/{account}", self.url);
        self.call(
            format!("{accounts}/verify"),
            Some(&token),
            None,
            &json!({"code": code}),
        )
        .await?;
        let consent = self
            .call(
                format!("{accounts}/consent"),
                Some(&token),
                None,
                &json!({}),
            )
            .await?;
        let ars = field(&consent, "ars_code")?;
        self.call(
            format!("{accounts}/consent/confirm"),
            Some(&token),
            None,
            &json!({"code": ars}),
        )
        .await?;
        self.call(
            format!("{}/v1/wallets/KRW/charges", self.url),
            Some(&token),
            Some(&format!("bench-{run}-charge-{i}")),
            &json!({"amount": WALLET_FUNDING.to_string(), "bank_account_id": account}),
        )
        .await?;
        Ok(Member {
            id: field(&signed_up, "id")?,
            token,
        })
    }

    /// The code in the memo of the 1-won deposit, as the member reads it on their statement.
    async fn one_won_code(&self, number: &str) -> anyhow::Result<String> {
        let url = format!(
            "{}/admin/accounts/{BANK_CODE}/{number}/transactions",
            self.bank
        );
        let statement: Value = self.client.get(&url).send().await?.json().await?;
        let memo = statement["res_list"][0]["print_content"]
            .as_str()
            .ok_or_else(|| anyhow!("no 1-won deposit on {number}: {statement}"))?;
        Ok(memo.trim_start_matches("MYPAY ").to_owned())
    }
}

fn field(body: &Value, name: &str) -> anyhow::Result<String> {
    body[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {name} in {body}"))
}
