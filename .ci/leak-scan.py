#!/usr/bin/env python3
"""Leak scan: what the test suite's servers logged and stored holds no unmasked account
number, no card number and no secret.

Usage: .ci/leak-scan.py [--self-test] [--show-allowed] [--repo ROOT] [DIR]

DIR is the directory a test run was given as MYPAY_TEST_ARTIFACTS (see
crates/testkit/src/artifacts.rs):

  DIR/logs/       JSON-lines logs of the in-process servers (one per test binary) and the
                  stderr of the `mypay` subprocesses the tests started;
  DIR/db/         every test database when its test ended: SQLite copies (*.sqlite), pg_dump
                  output (*.sql) or the JSON-lines fallback dump (*.jsonl);
  DIR/reports/    files mypay wrote (settlement CSV reports);
  DIR/sensitive/  what to look for, recorded by the test helpers: account_numbers.txt (the
                  numbers tests opened and linked) and secrets.tsv (KIND<TAB>VALUE: API keys,
                  session tokens, passwords, account-number keys, PSP secret keys). Never scanned.

Besides the recorded values, the account numbers and secrets written as literals in the test
sources and the README (and the generation patterns such as format!("1100{n:08}")) are read
from the repository, because many tests open accounts and keys without the shared helpers.

What counts as a finding:
  account_number  a known account number, bare or with hyphens/spaces between its digits,
                  not part of a longer letter/digit run; masked forms (********1234,
                  ***-***-1234) cannot match because their digits are hidden;
  card_number     a Luhn-valid run of 13-19 digits (or 4-4-4-4 style groups separated by one
                  space or hyphen), not part of a longer letter/digit run;
  secret          a recorded or literal secret anywhere; the shapes mypay mints (mpk_ API keys,
                  mps_ session tokens, whsec_ webhook secrets), PSP secret keys (test_sk_,
                  live_sk_), Basic credentials that decode to one, keyring entries
                  (id:base64 of 32 bytes), passwords in PostgreSQL URLs, and a clear value in a
                  field or column named password/secret/token/api_key.

Allowed, narrowly, and counted in the summary (--show-allowed lists them):
  - a card-number-shaped value that is a unix time in ms, us or ns between 2000 and 2100 in a
    field or column whose name says it is a time (created_at, expires_at, timestamp, ...):
    mypay stores times as microseconds, and 10 % of those are Luhn-valid;
  - an mps_-shaped value in console_sessions.csrf_token: the synchronizer CSRF token, stored by
    design next to the session's digest (the session token itself is stored only as a digest);
  - a time in jobs.unique_key when the whole value is `{schedule}@{slot time}`;
  - a value of ledger_accounts.version: a random i64 version token written on every change;
  - the table _sqlx_migrations (the migration source text, not data).
Not ours, not scanned: log lines of the sandbox bank and PSP (targets banking::sandbox*,
psp::sandbox*; they are the counterparties and know account numbers); their data directories
are not kept by the tests at all.

Exit status: 0 no finding, 1 findings, 2 nothing was scanned (or DIR is missing).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import csv
import io
import json
import os
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

# --- what is foreign or allowed ------------------------------------------------------------

FOREIGN_TARGETS = ("banking::sandbox", "psp::sandbox")
SKIPPED_TABLES = {"_sqlx_migrations"}
# (table, column) pairs where an mps_-shaped value is a CSRF token, stored by design.
CSRF_COLUMNS = {("console_sessions", "csrf_token")}
# (table, column) pairs holding random integers: the ledger's per-account version token
# (rand::random::<i64>() per write, crates/ledger/src/committer.rs), 19 digits, so 10 % of them
# pass Luhn.
RANDOM_INTEGER_COLUMNS = {("ledger_accounts", "version")}
# (table, column) pairs whose whole value has this shape, the digits a time: the scheduler's
# `{name}@{slot}` unique key of a cron slot's job (crates/jobs/src/schedule.rs).
TIME_SHAPED_COLUMNS = {("jobs", "unique_key"): re.compile(r"[a-z][a-z0-9_.\-]*@-?[0-9]+")}

TIME_KEY = re.compile(
    r"(^|[_.\-])(at|time|times|timestamp|ts|micros|us|ms|ns|date|until|since|expires?|"
    r"deadline|due|lease|now|clock|started|finished|created|updated|requested|resolved|"
    r"completed|claimed|attempted|scheduled|calculated|before|after|from|to|day|slot|next)"
    r"([_.\-]|$)",
    re.IGNORECASE,
)
MIN_TIME_S = 946_684_800  # 2000-01-01
MAX_TIME_S = 4_102_444_800  # 2100-01-01

# --- detectors ------------------------------------------------------------------------------

# A run of digits, optionally with single hyphens or spaces between digits, not inside a longer
# letter/digit run (nor a decimal number).
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z_])(?<![0-9]\.)[0-9](?:[ \-]?[0-9]){5,22}(?![0-9A-Za-z_])(?!\.[0-9])")
CARD_CONTIGUOUS = re.compile(r"(?<![0-9A-Za-z_])(?<![0-9]\.)[0-9]{13,19}(?![0-9A-Za-z_])(?!\.[0-9])")
CARD_GROUPED = re.compile(
    r"(?<![0-9A-Za-z_\-])(?:[0-9]{4}([ \-])[0-9]{4}\1[0-9]{4}\1[0-9]{1,4}(?:\1[0-9]{1,3})?"
    r"|[0-9]{4}([ \-])[0-9]{6}\2[0-9]{4,5})(?![0-9A-Za-z_])(?![ \-][0-9])"
)
SECRET_SHAPES = [
    ("api_key", re.compile(r"mpk_[A-Za-z0-9_\-]{16,}")),
    ("session_token", re.compile(r"mps_[A-Za-z0-9_\-]{43}(?![A-Za-z0-9_\-])")),
    ("webhook_secret", re.compile(r"whsec_[A-Za-z0-9_\-]{16,}")),
    ("psp_secret_key", re.compile(r"(?<![A-Za-z0-9])(?:test|live)_g?sk_[A-Za-z0-9_]{4,}")),
    ("account_keyring", re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9_\-]{1,32}:[A-Za-z0-9+/]{43}=")),
]
BASIC_AUTH = re.compile(r"Basic\s+([A-Za-z0-9+/]{8,}={0,2})")
PG_PASSWORD = re.compile(r"postgres(?:ql)?://[^:/@\s\"']+:([^@\s\"']+)@")
SECRET_FIELD = re.compile(
    r"^(password|new_password|current_password|secret|secret_key|token|session_token|"
    r"access_token|api_key|client_secret)$",
    re.IGNORECASE,
)
HASHED_VALUE = re.compile(r"^(\$argon2(id|i|d)\$|[0-9a-f]{64}$|\*+$|\*\*\*|<redacted>|null$)")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def plausible_time(digits: str) -> bool:
    value = int(digits)
    for scale in (1_000, 1_000_000, 1_000_000_000):
        if MIN_TIME_S * scale <= value < MAX_TIME_S * scale:
            return True
    return False


def mask(value: str) -> str:
    """Enough to recognise a value, never the value."""
    digits = re.sub(r"[^0-9]", "", value)
    if digits and len(digits) >= len(value) - 4 and len(digits) >= 6:
        return "*" * (len(digits) - 4) + digits[-4:]
    head = value[:4] if len(value) > 10 else value[:2]
    return f"{head}…(len {len(value)})"


def excerpt(text: str, start: int, end: int) -> str:
    left = text[max(0, start - 40) : start]
    right = text[end : end + 40]
    return (left + "⟦" + mask(text[start:end]) + "⟧" + right).replace("\n", " ").replace("\t", " ")


# --- what to look for ------------------------------------------------------------------------

SOURCE_GLOBS = ["crates/*/tests/**/*.rs", "crates/*/src/**/*.rs", "README.md", "e2e/*.mjs"]
DIGIT_LITERAL = re.compile(r'"([0-9](?:-?[0-9]){5,15})"')
# What precedes a string literal that is an account number: a JSON field (account_num,
# account_number, cntr_account_num), a binding named *number*/*account*, or an argument of a
# call named *account*/*link* or AccountNumber::parse. Other digit literals (amounts, balances,
# phone numbers, tracking numbers) are not account numbers.
ACCOUNT_CONTEXT = re.compile(
    r'(account_num(?:ber)?"?\s*[:=]\s*(?:json!\()?'
    r'|(?i:\b\w*(?:number|account)\w*)\s*(?::\s*&(?:\'static\s+)?str)?\s*=\s*'
    r'|(?i:\b\w*(?:account|link)\w*)\s*\([^()"]*(?:"[^"]*"\s*,\s*)*[^()"]*'
    r'|AccountNumber::parse\(\s*)$'
)
GENERATED = re.compile(r'(?i:number|account)\w*\s*=\s*format!\("([0-9]{2,})\{[^}:]*(?::0?([0-9]+))?\}"')
SECRET_CONST = re.compile(r'const\s+\w*(?:KEY|SECRET|PASSWORD|TOKEN)\w*\s*:\s*&str\s*=\s*"([^"]{8,})"')
PASSWORD_LITERAL = re.compile(r'"(?:password|new_password|current_password)"\s*:\s*"([^"]{8,})"')
# Source literals shorter than this are not looked for: 6-8 digit strings are verification
# codes, amounts and dates far more often than account numbers, and would only add noise.
LITERAL_DIGITS_MIN = 9


@dataclass
class Wanted:
    accounts: set[str] = field(default_factory=set)
    account_patterns: list[re.Pattern] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # value -> kind
    sources: collections.Counter = field(default_factory=collections.Counter)


def is_phone(digits: str) -> bool:
    # Korean mobile (010-1234-5678) and Seoul landline (02-123-4567) numbers: the members'
    # phone field, which tests write next to account numbers.
    return bool(re.fullmatch(r"01[016789][0-9]{7,8}|02[0-9]{7,8}", digits))


def load_wanted(root: Path, artifacts: Path) -> Wanted:
    wanted = Wanted()
    recorded = artifacts / "sensitive" / "account_numbers.txt"
    if recorded.exists():
        for line in recorded.read_text().splitlines():
            digits = re.sub(r"[^0-9]", "", line)
            if 6 <= len(digits) <= 16 and len(set(digits)) > 1:
                wanted.accounts.add(digits)
                wanted.sources["account numbers recorded by helpers"] += 1
    secrets = artifacts / "sensitive" / "secrets.tsv"
    if secrets.exists():
        for line in secrets.read_text().splitlines():
            kind, _, value = line.partition("\t")
            if len(value) >= 8:
                wanted.secrets.setdefault(value, kind)
                wanted.sources[f"secrets recorded by helpers ({kind})"] += 1
    seen_patterns = set()
    for pattern in SOURCE_GLOBS:
        for path in root.glob(pattern):
            if "target" in path.parts:
                continue
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                for m in DIGIT_LITERAL.finditer(line):
                    digits = m.group(1).replace("-", "")
                    # A run of one digit ("000000000000") is a malformed input a test sends,
                    # never a number anyone holds, and sits inside every round timestamp.
                    if (
                        LITERAL_DIGITS_MIN <= len(digits) <= 16
                        and len(set(digits)) > 1
                        and ACCOUNT_CONTEXT.search(line[: m.start()])
                        and digits not in wanted.accounts
                    ):
                        wanted.accounts.add(digits)
                        wanted.sources["account-number literals in sources"] += 1
                for prefix, width in GENERATED.findall(line):
                    regex = f"{prefix}[0-9]{{{width}}}" if width else f"{prefix}[0-9]{{1,4}}"
                    if regex not in seen_patterns:
                        seen_patterns.add(regex)
                        wanted.account_patterns.append(re.compile(regex))
                        wanted.sources["account-number generation patterns in sources"] += 1
                # Constants named *KEY*/*SECRET* in library code are labels and prefixes, not
                # secrets: only the tests' constants are read.
                in_tests = "tests" in path.parts
                for regex in (SECRET_CONST, PASSWORD_LITERAL) if in_tests else (PASSWORD_LITERAL,):
                    for value in regex.findall(line):
                        if value not in wanted.secrets:
                            wanted.secrets[value] = "literal in sources"
                            wanted.sources["secret literals in sources"] += 1
    return wanted


# --- scanning --------------------------------------------------------------------------------


@dataclass
class Scan:
    wanted: Wanted
    findings: list = field(default_factory=list)
    allowed: list = field(default_factory=list)
    files: collections.Counter = field(default_factory=collections.Counter)
    bytes: int = 0
    lines: int = 0
    rows: int = 0
    cells: int = 0
    foreign_lines: int = 0
    skipped_rows: int = 0
    # The recorded/literal secrets present in the file being scanned (prefiltered per file).
    present: list = field(default_factory=list)

    def find(self, kind: str, where: str, key: str, text: str, start: int, end: int, what: str):
        self.findings.append((kind, where, key, what, excerpt(text, start, end)))

    def allow(self, reason: str, where: str, key: str, text: str, start: int, end: int):
        self.allowed.append((reason, where, key, excerpt(text, start, end)))

    def prefilter(self, blob: str):
        self.present = [s for s in self.wanted.secrets if s in blob]

    def text(self, text: str, where: str, key: str = "", table: str = ""):
        """Runs every detector over one value (a log field, a cell, a line)."""
        if not text:
            return
        spans = []  # (start, end) already reported, so one value is reported once

        def overlaps(start, end):
            return any(s < end and start < e for s, e in spans)

        for secret in self.present:
            start = text.find(secret)
            while start != -1:
                end = start + len(secret)
                if not overlaps(start, end):
                    spans.append((start, end))
                    self.find("secret", where, key, text, start, end, self.wanted.secrets[secret])
                start = text.find(secret, end)
        for kind, regex in SECRET_SHAPES:
            for m in regex.finditer(text):
                if overlaps(m.start(), m.end()):
                    continue
                if kind == "session_token" and (table, key) in CSRF_COLUMNS:
                    self.allow("csrf token column", where, key, text, m.start(), m.end())
                    continue
                spans.append((m.start(), m.end()))
                self.find("secret", where, key, text, m.start(), m.end(), kind)
        for m in BASIC_AUTH.finditer(text):
            try:
                decoded = base64.b64decode(m.group(1) + "==", validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
            if ":" in decoded and not overlaps(m.start(), m.end()):
                spans.append((m.start(), m.end()))
                self.find("secret", where, key, text, m.start(), m.end(), "basic credentials")
        for m in PG_PASSWORD.finditer(text):
            if not re.fullmatch(r"\*+|<redacted>|REDACTED", m.group(1)):
                spans.append((m.start(1), m.end(1)))
                self.find("secret", where, key, text, m.start(1), m.end(1), "database password")
        if key and SECRET_FIELD.match(key.rsplit(".", 1)[-1]) and not HASHED_VALUE.match(text) and not overlaps(0, len(text)):
            if len(text) >= 8:
                spans.append((0, len(text)))
                self.find("secret", where, key, text, 0, len(text), f"clear value in field {key}")

        if not any(c.isdigit() for c in text):
            return
        accounts = self.wanted.accounts
        for m in DIGIT_RUN.finditer(text):
            digits = re.sub(r"[ \-]", "", m.group(0))
            hit = digits in accounts or any(p.fullmatch(digits) for p in self.wanted.account_patterns)
            if not hit and len(digits) > 10:
                # A known number inside a longer digit run, e.g. bank code and number glued.
                hit = any(
                    digits[i : i + n] in accounts
                    for n in {len(a) for a in accounts if len(a) >= 10}
                    for i in range(0, len(digits) - n + 1)
                )
            if hit and not overlaps(m.start(), m.end()):
                spans.append((m.start(), m.end()))
                if plausible_time(digits) and TIME_KEY.search(key.rsplit(".", 1)[-1]):
                    self.allow("unix time in a time field", where, key, text, m.start(), m.end())
                    continue
                self.find("account_number", where, key, text, m.start(), m.end(), "unmasked account number")
        for regex in (CARD_CONTIGUOUS, CARD_GROUPED):
            for m in regex.finditer(text):
                digits = re.sub(r"[ \-]", "", m.group(0))
                if not (13 <= len(digits) <= 19) or not luhn(digits) or overlaps(m.start(), m.end()):
                    continue
                spans.append((m.start(), m.end()))
                leaf = key.rsplit(".", 1)[-1]
                if regex is CARD_CONTIGUOUS and plausible_time(digits) and TIME_KEY.search(leaf):
                    self.allow("unix time in a time field", where, key, text, m.start(), m.end())
                    continue
                shape = TIME_SHAPED_COLUMNS.get((table, key))
                if shape and shape.fullmatch(text) and plausible_time(digits):
                    self.allow("scheduled slot time in a job key", where, key, text, m.start(), m.end())
                    continue
                if (table, key) in RANDOM_INTEGER_COLUMNS and re.fullmatch(r"-?[0-9]+", text):
                    self.allow("random version token", where, key, text, m.start(), m.end())
                    continue
                self.find("card_number", where, key, text, m.start(), m.end(), "Luhn-valid 13-19 digits")

    def value(self, value, where: str, key: str, table: str = ""):
        """A JSON value: walked with its key path; strings holding JSON are walked too."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.text(str(k), where, key, table)
                self.value(v, where, f"{key}.{k}" if key else str(k), table)
        elif isinstance(value, list):
            for v in value:
                self.value(v, where, key, table)
        elif isinstance(value, str):
            stripped = value.strip()
            if stripped[:1] in ("{", "[") and len(stripped) > 1:
                try:
                    self.value(json.loads(stripped), where, key, table)
                    return
                except ValueError:
                    pass
            self.text(value, where, key, table)
        elif isinstance(value, bool) or value is None:
            return
        else:
            self.text(str(value), where, key, table)

    # --- files ---

    def read(self, path: Path, kind: str) -> str:
        """A file's text, counted under `kind`, with the known secrets it holds picked out."""
        data = path.read_bytes()
        self.files[kind] += 1
        self.bytes += len(data)
        text = data.decode("utf-8", "replace")
        self.prefilter(text)
        return text

    def log_file(self, path: Path, rel: str):
        text = self.read(path, "log")
        for n, line in enumerate(text.splitlines(), 1):
            self.lines += 1
            where = f"{rel}:{n}"
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                target = str(event.get("target", ""))
                if target.startswith(FOREIGN_TARGETS):
                    self.foreign_lines += 1
                    continue
                self.value(event, where, "")
            else:
                self.text(line, where, "")

    def text_file(self, path: Path, rel: str, kind: str):
        text = self.read(path, kind)
        if path.suffix == ".csv":
            reader = csv.reader(io.StringIO(text))
            header = next(reader, [])
            self.lines += 1
            for n, row in enumerate(reader, 2):
                self.lines += 1
                self.rows += 1
                for i, cell in enumerate(row):
                    self.cells += 1
                    self.text(cell, f"{rel}:{n}", header[i] if i < len(header) else "")
            return
        for n, line in enumerate(text.splitlines(), 1):
            self.lines += 1
            self.text(line, f"{rel}:{n}", "")

    def sqlite_file(self, path: Path, rel: str):
        self.files["sqlite"] += 1
        self.bytes += path.stat().st_size
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.text_factory = lambda b: b.decode("utf-8", "replace")
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            contents = []
            for table in tables:
                cursor = db.execute(f'SELECT * FROM "{table}"')
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
                contents.append((table, columns, rows))
        finally:
            db.close()
        blob = "\0".join(str(v) for _, _, rows in contents for row in rows for v in row)
        self.prefilter(blob)
        for table, columns, rows in contents:
            self.table(rel, table, columns, rows)

    def table(self, rel: str, table: str, columns: list, rows):
        if table in SKIPPED_TABLES or table.startswith("sqlite_"):
            self.skipped_rows += len(rows)
            return
        for n, row in enumerate(rows, 1):
            self.rows += 1
            ident = row[0] if row and isinstance(row[0], str) and re.fullmatch(r"[a-z]+_[0-9A-Za-z]+", row[0]) else f"row {n}"
            for column, cell in zip(columns, row):
                if cell is None:
                    continue
                self.cells += 1
                if isinstance(cell, bytes):
                    cell = cell.decode("latin-1")
                where = f"{rel}: {table}.{column} ({ident})"
                cell_text = str(cell)
                stripped = cell_text.strip()
                if stripped[:1] in ("{", "[") and len(stripped) > 1:
                    try:
                        self.value(json.loads(stripped), where, column, table)
                        continue
                    except ValueError:
                        pass
                self.text(cell_text, where, column, table)

    def pg_dump_file(self, path: Path, rel: str):
        text = self.read(path, "pg_dump")
        copy = re.compile(r"^COPY (?:[\w\"]+\.)?\"?([\w]+)\"? \((.*)\) FROM stdin;$")
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            line = lines[i]
            self.lines += 1
            m = copy.match(line)
            if not m:
                if not line.startswith("--"):
                    self.text(line, f"{rel}:{i + 1}", "")
                i += 1
                continue
            table = m.group(1)
            columns = [c.strip().strip('"') for c in m.group(2).split(",")]
            rows = []
            i += 1
            while i < len(lines) and lines[i] != "\\.":
                rows.append([None if v == "\\N" else unescape_copy(v) for v in lines[i].split("\t")])
                self.lines += 1
                i += 1
            self.table(rel, table, columns, rows)
            i += 1

    def jsonl_dump_file(self, path: Path, rel: str):
        text = self.read(path, "json_dump")
        by_table: dict[str, list] = collections.defaultdict(list)
        for line in text.splitlines():
            self.lines += 1
            record = json.loads(line)
            by_table[record["table"]].append(record["row"])
        for table, records in by_table.items():
            columns = list(records[0].keys())
            rows = [[r.get(c) if not isinstance(r.get(c), (dict, list)) else json.dumps(r.get(c)) for c in columns] for r in records]
            self.table(rel, table, columns, rows)


def unescape_copy(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(m.group(1), m.group(1)), value)


def self_test() -> int:
    """Plants one value of each kind (and each allowed look-alike) in a fresh artifacts
    directory, and checks that the scan reports exactly the planted leaks."""
    import tempfile

    token = "mps_" + "A" * 43
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub in ("logs", "db", "reports", "sensitive"):
            (root / sub).mkdir()
        (root / "sensitive" / "account_numbers.txt").write_text("5550-1234-9876\n")
        (root / "sensitive" / "secrets.tsv").write_text("password\tplanted pass phrase\n")
        events = [
            {"level": "INFO", "target": "mypay::x", "fields": {"message": "linked 555012349876"}},
            {"level": "INFO", "target": "mypay::x", "fields": {"message": "card 4111 1111 1111 1111"}},
            {"level": "INFO", "target": "mypay::x", "fields": {"body": json.dumps({"token": token})}},
            {"level": "INFO", "target": "mypay::x", "fields": {"message": "pw planted pass phrase"}},
            {"level": "INFO", "target": "mypay::x", "fields": {"message": "masked ********9876 ***-***-9876"}},
            {"level": "INFO", "target": "mypay::x", "fields": {"created_at": 1795305600000004}},
            {"level": "INFO", "target": "banking::sandbox::x", "fields": {"account": "555012349876"}},
        ]
        (root / "logs" / "t-1.log").write_text("".join(json.dumps(e) + "\n" for e in events))
        db = sqlite3.connect(root / "db" / "t__x__y.sqlite")
        db.execute("CREATE TABLE merchants (id TEXT, settlement_number TEXT, created_at BIGINT)")
        db.execute("INSERT INTO merchants VALUES ('mer_01', '555-0123-49876', 1795305600000004)")
        db.execute("CREATE TABLE console_sessions (token_digest TEXT, csrf_token TEXT)")
        db.execute("INSERT INTO console_sessions VALUES ('ab', ?)", (token,))
        db.commit()
        db.close()
        (root / "reports" / "r.csv").write_text("id,note\nx,pan 4012888888881881\n")
        out = io.StringIO()
        saved, sys.stdout = sys.stdout, out
        try:
            status = scan_dir(root, Path("/nonexistent"), show_allowed=False, max_findings=100)
        finally:
            sys.stdout = saved
        text = out.getvalue()
    expected = {
        "findings account_number: 2",  # the log line and the hyphenated column value
        "findings card_number: 2",  # grouped in a log, contiguous in a report
        "findings secret: 2",  # the session token in a JSON body, the recorded password
        "1 csrf token column",
        "2 unix time in a time field",
        "1 log lines of the sandbox bank/PSP",
    }
    missing = [e for e in expected if e not in text]
    if status != 1 or missing:
        print(text)
        print(f"self-test FAILED: status {status}, missing {missing}")
        return 1
    print("self-test passed: every planted leak found, every planted look-alike allowed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, nargs="?")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--show-allowed", action="store_true")
    parser.add_argument("--max-findings", type=int, default=200, help="findings listed (all are counted)")
    parser.add_argument("--self-test", action="store_true", help="check the scanner on planted values, then scan DIR if given")
    args = parser.parse_args()
    if args.self_test and self_test() != 0:
        return 1
    if args.dir is None:
        if args.self_test:
            return 0
        parser.error("DIR is required")
    return scan_dir(args.dir, args.repo, args.show_allowed, args.max_findings)


def scan_dir(root: Path, repo: Path, show_allowed: bool, max_findings: int) -> int:
    if not root.is_dir():
        print(f"leak scan: {root} is not a directory", file=sys.stderr)
        return 2
    wanted = load_wanted(repo, root)
    scan = Scan(wanted)
    for sub in ("logs", "db", "reports"):
        base = root / sub
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            if sub == "logs":
                scan.log_file(path, rel)
            elif path.suffix == ".sqlite":
                scan.sqlite_file(path, rel)
            elif path.suffix == ".sql":
                scan.pg_dump_file(path, rel)
            elif path.suffix == ".jsonl":
                scan.jsonl_dump_file(path, rel)
            else:
                scan.text_file(path, rel, "report" if sub == "reports" else "other")

    print(f"leak scan of {root}")
    print("looking for:")
    print(f"  {len(wanted.accounts)} account numbers and {len(wanted.account_patterns)} generation patterns "
          f"({', '.join(p.pattern for p in wanted.account_patterns)}), card numbers (Luhn), "
          f"{len(wanted.secrets)} known secrets and {len(SECRET_SHAPES) + 3} secret shapes")
    for source, count in sorted(wanted.sources.items()):
        print(f"    {count:6d}  {source}")
    files = ", ".join(f"{n} {k}" for k, n in sorted(scan.files.items())) or "no files"
    print(f"scanned: {files}; {scan.bytes:,} bytes, {scan.lines:,} lines, {scan.rows:,} rows, {scan.cells:,} cells")
    print(f"not scanned: {scan.foreign_lines:,} log lines of the sandbox bank/PSP, {scan.skipped_rows:,} rows of {', '.join(sorted(SKIPPED_TABLES))}")
    reasons = collections.Counter(a[0] for a in scan.allowed)
    print("allowed: " + (", ".join(f"{n:,} {r}" for r, n in sorted(reasons.items())) or "none"))
    if show_allowed:
        for reason, where, key, text in scan.allowed:
            print(f"  ALLOWED {reason}: {where} [{key}] {text}")
    kinds = collections.Counter(f[0] for f in scan.findings)
    for kind in ("account_number", "card_number", "secret"):
        print(f"findings {kind}: {kinds.get(kind, 0)}")
    for kind, where, key, what, text in scan.findings[:max_findings]:
        print(f"  {kind.upper()} ({what}) at {where}" + (f" [{key}]" if key else "") + f": {text}")
    if len(scan.findings) > max_findings:
        print(f"  … and {len(scan.findings) - max_findings} more")
    if sum(scan.files.values()) == 0 or scan.bytes == 0:
        print("leak scan: nothing was scanned", file=sys.stderr)
        return 2
    if not wanted.accounts:
        print("leak scan: warning: no account numbers to look for", file=sys.stderr)
    return 1 if scan.findings else 0


if __name__ == "__main__":
    sys.exit(main())
