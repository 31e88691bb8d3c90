"""ID numbers in clear where they must never be (docs/architecture.md, "Identity
protection"), looked for from outside.

A `PiiAudit` watches a running deployment the way an operator would see it:
- a tap queue bound to every exchange of the broker vhost (topic exchanges with `#`,
  fanout and headers exchanges plainly, direct ones with the keys already bound to them)
  and to the vhost's firehose (publishes to the default exchange, exchanges declared
  after the tap), so every message published while the audit runs is captured with its
  body and headers;
- every HTTP response received through `audit.request` (problem+json bodies included);
- every log file of the services (a callable lists them when the audit scans).

`submit_id_numbers` drives a county filing service's public HTTP API with invalid ID
numbers of every type and valid ones (POST /api/v1/filings and PUT corrections).
`audit.assert_clean()` fails, saying where, when a number it watches shows up exactly,
case-insensitively, or with its separators removed. Numbers are only ever shown masked.

    audit = PiiAudit(broker, vhost, log_files=lambda: workdir.glob("*.log"))
    with audit:                               # the tap is bound before anything is sent
        filings = submit_id_numbers(audit, county_url, form=..., enterprise=..., officer=...)
        ...                                   # wait for the effects (decisions, notices)
        audit.assert_clean()

Other services (talent, notify) reuse the audit: `audit.watch(cases)` for numbers sent
some other way, `audit.request(...)` for their own HTTP calls, `audit.include(where,
text)` for what the test reads elsewhere (database rows, e-mails, SMS requests).
"""
from __future__ import annotations

import copy
import json
import random
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterable

import pytest
import requests
from kombu import Connection

from shared.personal_data import mask_id
from tests.support.infra import Broker
from shared.validators.person_id import gb11643_check_char

HTTP_TIMEOUT = 30
TRACE_EXCHANGE = "amq.rabbitmq.trace"
_SEPARATORS = re.compile(r"[\W_]+")  # spaces, hyphens, dots, slashes... (CJK stays: a "word")
_MIN_NEEDLE = 7  # shorter strings would be found by chance in any log


# -- the numbers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class IdCase:
    """One ID number submitted to the services; its repr shows it masked only."""

    id_type: str
    number: str = field(repr=False)
    label: str  # what is wrong with it ("valid" for a valid one)
    valid: bool = False

    @property
    def masked(self) -> str:
        return mask_id(self.number) or "*"

    def __str__(self) -> str:
        return f"{self.id_type} {self.label} {self.masked}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(n))


def _birth(rng: random.Random) -> date:
    return date(1955, 1, 1) + timedelta(days=rng.randrange(15000))


def _gb11643(rng: random.Random, division: str, birth: str | None = None) -> str:
    body = division + (birth or _birth(rng).strftime("%Y%m%d")) + _digits(rng, 3)
    return body + gb11643_check_char(body)


def _wrong_check(number: str) -> str:
    return number[:17] + ("1" if number[17] != "1" else "2")


def mistyped(number: str) -> str:
    """A resident ID number as a clerk mistypes it: two neighbouring digits after the
    division code swapped (the last such pair that the check character no longer fits)."""
    for i in range(14, 5, -1):
        a, b = number[i], number[i + 1]
        if a != b:
            typo = number[:i] + b + a + number[i + 2:]
            if gb11643_check_char(typo[:17]) != typo[17]:
                return typo
    return _wrong_check(number)


def _full_width(text: str) -> str:  # what a Chinese IME types
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def id_cases(division: str = "130921", seed: int | None = None) -> list[IdCase]:
    """Invalid numbers of every ID type, one per way each can be wrong, and one valid
    number per type. Every number is drawn afresh (none is a part of another), so a
    leak is told apart from chance and from another case."""
    rng = random.Random(seed)
    future = (date.today() + timedelta(days=400)).strftime("%Y%m%d")
    hmt_prefix = rng.choice(("810000", "820000", "830000"))
    foreign = lambda: "9" + _digits(rng, 5)  # noqa: E731 - 9 + province + nationality
    cases = [
        IdCase("resident_id", _gb11643(rng, division), "valid", True),
        IdCase("resident_id", _gb11643(rng, division)[:17], "17 characters"),
        IdCase("resident_id", division + _digits(rng, 9), "old 15-digit number"),
        IdCase("resident_id", (lambda n: n[:9] + "A" + n[10:])(_gb11643(rng, division)),
               "letter among the first 17"),
        IdCase("resident_id", _gb11643(rng, division)[:17] + "Y", "check character Y"),
        IdCase("resident_id", _gb11643(rng, division, "19900230"), "impossible birth date"),
        IdCase("resident_id", _gb11643(rng, division, future), "birth date in the future"),
        IdCase("resident_id", _gb11643(rng, division, "18991231"), "birth date before 1900"),
        IdCase("resident_id", _wrong_check(_gb11643(rng, division)), "wrong check character"),
        IdCase("resident_id", (lambda n: f"{n[:6]} {n[6:14]} {n[14:]}")(
            _wrong_check(_gb11643(rng, division))), "spaces inside"),
        IdCase("resident_id", _full_width(_wrong_check(_gb11643(rng, division))),
               "full-width, wrong check character"),
        IdCase("passport", "E" + _digits(rng, 8), "valid", True),
        IdCase("passport", f"E{_digits(rng, 4)}-{_digits(rng, 4)}", "hyphen inside"),
        IdCase("passport", _letters(rng, 9), "no digit"),
        IdCase("passport", "G" + _digits(rng, 20), "21 characters"),
        IdCase("passport", f"e{_digits(rng, 4)}中{_digits(rng, 4)}", "Chinese character inside"),
        IdCase("passport", f"e.{_digits(rng, 4)}.{_digits(rng, 4)}", "lower case with dots"),
        IdCase("hmt_permit", "H" + _digits(rng, 8), "valid", True),
        IdCase("hmt_permit", "H" + _digits(rng, 7), "home-return permit one digit short"),
        IdCase("hmt_permit", "K" + _digits(rng, 8), "home-return permit wrong letter"),
        IdCase("hmt_permit", _digits(rng, 10), "10 digits"),
        IdCase("hmt_permit", _gb11643(rng, division), "mainland resident ID"),
        IdCase("hmt_permit", _wrong_check(_gb11643(rng, hmt_prefix)),
               "residence permit wrong check character"),
        IdCase("hmt_permit", _gb11643(rng, hmt_prefix, "19870431"),
               "residence permit impossible birth date"),
        IdCase("foreign_permanent", _gb11643(rng, foreign()), "valid", True),
        IdCase("foreign_permanent", _letters(rng, 2) + _digits(rng, 13), "old card, 2 letters"),
        IdCase("foreign_permanent", _digits(rng, 15), "old card, digits only"),
        IdCase("foreign_permanent", _gb11643(rng, "1" + _digits(rng, 5)), "2023 card not starting with 9"),
        IdCase("foreign_permanent", _wrong_check(_gb11643(rng, foreign())),
               "2023 card wrong check character"),
        IdCase("foreign_permanent", _letters(rng, 3) + _digits(rng, 9), "12 characters"),
    ]
    assert {c.id_type for c in cases if c.valid} == {c.id_type for c in cases}
    return cases


# -- finding them --------------------------------------------------------------------------------

def _compact(text: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _needles(number: str) -> list[str]:
    """How a number may be written out: as sent, NFKC-folded (what a validator
    normalises to), and as JSON text with non-ASCII escaped; compared case-insensitively."""
    raw = number.strip()
    folded = unicodedata.normalize("NFKC", raw).upper()
    forms = {raw, folded, "".join(folded.split()),
             json.dumps(raw)[1:-1], json.dumps(folded)[1:-1]}
    return sorted({f.casefold() for f in forms if len(_compact(f)) >= _MIN_NEEDLE},
                  key=len, reverse=True)


def longest_fragment(number: str, text: str, form_words: Iterable[str] = ()) -> int:
    """Length of the longest run of the number's characters (separators ignored, case
    folded) that `text` also holds, once the `form_words` it names as the expected form
    (a fixed prefix such as 810000) are taken out. A message that names only positions
    and forms shares runs of one or two characters with a number."""
    needle, hay = _compact(number), unicodedata.normalize("NFKC", text)
    for word in form_words:
        hay = hay.replace(word, " ")
    hay = _compact(hay)
    best = 0
    for start in range(len(needle)):
        size = best + 1
        while start + size <= len(needle) and needle[start:start + size] in hay:
            best, size = size, size + 1
    return best


def assert_not_shown(text: str, cases: Iterable[IdCase], where: str, *,
                     form_words: Iterable[str] = (), max_fragment: int | None = None) -> None:
    """Fail, numbers masked, if `text` shows one of `cases` (as the audit looks for them)
    or, with `max_fragment`, a longer run of one's characters than that."""
    cases, matcher = list(cases), Matcher(cases)
    problems = [f"{case.masked} ({case.id_type}: {case.label}) {how}"
                for case, how in matcher.find(text)]
    if max_fragment is not None:
        problems += [f"{case.masked} ({case.id_type}: {case.label}): a run of {size} of its "
                     f"characters" for case in cases
                     if (size := longest_fragment(case.number, text, form_words)) > max_fragment]
    if problems:
        pytest.fail(f"ID number shown in {where}: " + "; ".join(problems), pytrace=False)


@dataclass
class Leak:
    where: str      # a log file and line, an HTTP response, a tapped message's part
    case: IdCase
    how: str        # "exact", "case-insensitive", "with separators removed"
    context: str    # the text around it, the numbers masked

    def __str__(self) -> str:
        return f"{self.case.masked} ({self.case.id_type}: {self.case.label}), {self.how}, in {self.where}" + (
            f"\n      {self.context}" if self.context else "")


class Matcher:
    """Which of the watched numbers a text shows in clear."""

    def __init__(self, cases: Iterable[IdCase] = ()):
        self.cases: list[IdCase] = []
        self.add(cases)

    def add(self, cases: Iterable[IdCase]) -> None:
        for case in cases:
            if case not in self.cases:
                if len(_compact(case.number)) < _MIN_NEEDLE:
                    raise ValueError(f"{case}: too short to be looked for without false alarms")
                self.cases.append(case)

    def find(self, text: str) -> list[tuple[IdCase, str]]:
        found, folded, compact = [], text.casefold(), None
        for case in self.cases:
            number = case.number.strip()
            if number and number in text:
                found.append((case, "exact"))
            elif any(needle in folded for needle in _needles(number)):
                found.append((case, "case-insensitive"))
            else:
                compact = _compact(text) if compact is None else compact
                if _compact(number) in compact:
                    found.append((case, "with separators removed"))
        return found

    def redact(self, text: str) -> str:
        """`text` with every watched number (in every written form found) masked."""
        for case in self.cases:
            for needle in _needles(case.number):
                text = re.sub(re.escape(needle), case.masked, text, flags=re.IGNORECASE)
        return text

    def context(self, text: str, limit: int = 240) -> str:
        shown = self.redact(text.strip())
        if self.find(shown):  # written some other way (separators): do not show it at all
            return "(context withheld: the number is in it in a form that cannot be masked)"
        return shown if len(shown) <= limit else shown[:limit] + "…"


# -- the tap queue -------------------------------------------------------------------------------

@dataclass
class Captured:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict
    properties: dict

    @property
    def route(self) -> str:
        return f"exchange {self.exchange!r} routing key {self.routing_key!r}"


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _flatten(value, path: str = "") -> Iterable[tuple[str, str]]:
    """(path, text) of every key and scalar of a header table (tables nest in firehose copies)."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child + " (name)", _text(key)
            yield from _flatten(item, child)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    elif value is not None:
        yield path, _text(value)


class Tap:
    """A queue of the test's own bound to every exchange of `vhost`, and to the vhost's
    firehose (`firehose=False` to leave tracing alone). Bind it before the traffic of
    interest: a message published before `open()` is not seen."""

    def __init__(self, broker: Broker, vhost: str, *, firehose: bool = True):
        self.broker, self.vhost, self.firehose = broker, vhost, firehose
        self.queue = f"pii.tap.{uuid.uuid4().hex[:12]}"
        self.bound: list[str] = []
        self.skipped: list[str] = []
        self.captured: list[Captured] = []
        self._connection: Connection | None = None

    def open(self) -> "Tap":
        self._connection = Connection(self.broker.vhost_uri(self.vhost))
        channel = self._connection.default_channel
        # classic, not exclusive: it outlives a dropped connection; close() deletes it
        channel.queue_declare(self.queue, durable=False, auto_delete=False,
                              arguments={"x-queue-type": "classic"})
        if self.firehose:
            self.broker.set_tracing(self.vhost, True)
        for exchange in self.broker.exchanges(self.vhost):
            self._bind(channel, exchange)
        return self

    def _bind(self, channel, exchange: dict) -> None:
        name, kind = exchange["name"], exchange["type"]
        if name == "":  # the default exchange cannot be bound: the firehose covers it
            self.skipped.append("(default exchange)")
        elif name == TRACE_EXCHANGE:
            if self.firehose:  # publishes only: a delivery is a copy of a publish
                channel.queue_bind(self.queue, name, routing_key="publish.#")
                self.bound.append(name)
        elif kind == "topic":
            channel.queue_bind(self.queue, name, routing_key="#")
            self.bound.append(name)
        elif kind == "fanout":
            channel.queue_bind(self.queue, name, routing_key="")
            self.bound.append(name)
        elif kind == "headers":  # x-match all with no header to match: every message
            channel.queue_bind(self.queue, name, routing_key="", arguments={"x-match": "all"})
            self.bound.append(name)
        elif kind == "direct":
            keys = {b["routing_key"] for b in self.broker.bindings_from(self.vhost, name)}
            for key in sorted(keys):
                channel.queue_bind(self.queue, name, routing_key=key)
            self.bound.append(name)
        else:  # a plugin's type (x-consistent-hash...): the firehose still sees its publishes
            self.skipped.append(f"{name} ({kind})")

    def drain(self, quiet: float = 2.0, timeout: float = 60.0) -> list[Captured]:
        """Take every message on the tap until none has come for `quiet` seconds; returns
        everything captured so far (all of it once the tap is closed)."""
        if self._connection is None:
            return self.captured
        channel = self._connection.default_channel
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            message = channel.basic_get(self.queue, no_ack=True)
            if message is None:
                time.sleep(0.1)
                continue
            last = time.monotonic()
            info = message.delivery_info or {}
            properties = dict(message.properties or {})
            headers = dict(properties.pop("application_headers", None) or message.headers or {})
            self.captured.append(Captured(info.get("exchange", ""), info.get("routing_key", ""),
                                          bytes(message.body if isinstance(message.body, bytes)
                                                else _text(message.body).encode("utf-8")),
                                          headers, properties))
        return self.captured

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.default_channel.queue_delete(self.queue)
        except Exception:  # noqa: BLE001 - the vhost may be gone already
            pass
        finally:
            self._connection.release()
            self._connection = None
        if self.firehose:
            try:
                self.broker.set_tracing(self.vhost, False)
            except requests.RequestException:
                pass


# -- the audit -----------------------------------------------------------------------------------

@dataclass
class Received:
    method: str
    url: str
    status: int
    headers: dict
    text: str


class PiiAudit:
    """Watches `cases` (IdCase) across the tap, the HTTP responses and the log files."""

    def __init__(self, broker: Broker, vhost: str, *,
                 log_files: Callable[[], Iterable[Path]] = lambda: (),
                 cases: Iterable[IdCase] = (), firehose: bool = True):
        self.matcher = Matcher(cases)
        self.tap = Tap(broker, vhost, firehose=firehose)
        self.log_files = log_files
        self.received: list[Received] = []
        self.texts: list[tuple[str, str]] = []  # (where, text) handed in by the test
        self.session = requests.Session()

    def __enter__(self) -> "PiiAudit":
        self.tap.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.tap.close()
        self.session.close()

    @property
    def cases(self) -> list[IdCase]:
        return self.matcher.cases

    def watch(self, cases: Iterable[IdCase]) -> None:
        self.matcher.add(cases)

    def redact(self, text: str) -> str:
        return self.matcher.redact(text)

    def include(self, where: str, text: str) -> None:
        """Scan `text` too, found elsewhere by the test (a database row, an e-mail as a
        server received it, an SMS gateway's request); `where` names it in a finding."""
        self.texts.append((where, text))

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """An HTTP call whose response (status, headers, body) the audit scans."""
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        resp = self.session.request(method, url, **kwargs)
        self.received.append(Received(method, url, resp.status_code, dict(resp.headers),
                                      resp.text))
        return resp

    # scanning
    def leaks(self, quiet: float = 2.0) -> list[Leak]:
        """Everything found so far, after draining the tap until it has been quiet."""
        self.tap.drain(quiet=quiet)
        found: list[Leak] = []
        for path in sorted(Path(p) for p in self.log_files()):
            found += self._scan_log(path)
        for resp in self.received:
            where = f"the HTTP response {resp.status} to {resp.method} {resp.url}"
            found += self._scan(resp.text, where + " (body)")
            for name, value in resp.headers.items():
                found += self._scan(f"{name}: {value}", f"{where} (header {name})")
        for where, text in self.texts:
            found += self._scan(text, where)
        for i, message in enumerate(self.tap.captured, start=1):
            where = f"tapped message #{i} ({message.route})"
            found += self._scan(_text(message.body), where + " body")
            for path, value in _flatten(message.headers):
                found += self._scan(value, f"{where} header {path}")
            for path, value in _flatten(message.properties):
                found += self._scan(value, f"{where} property {path}")
        return found

    def _scan(self, text: str, where: str) -> list[Leak]:
        found = self.matcher.find(text)
        if not found:
            return []
        where = self.matcher.context(where, limit=1000)  # a URL may hold a number too
        return [Leak(where, case, how, self.matcher.context(text)) for case, how in found]

    def _scan_log(self, path: Path) -> list[Leak]:
        text = path.read_bytes().decode("utf-8", errors="replace")
        if not self.matcher.find(text):
            return []
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            found += self._scan(line, f"log {path.name} line {number}")
        # a number split over two lines is still in the file
        on_lines = {leak.case for leak in found}
        found += [Leak(f"log {path} (across lines)", case, how, "")
                  for case, how in self.matcher.find(text) if case not in on_lines]
        return found

    def assert_clean(self, quiet: float = 2.0) -> None:
        """Fail, naming every place a watched number was found; numbers shown masked."""
        found = self.leaks(quiet)
        if found:
            shown = "\n".join(f"  - {leak}" for leak in found[:80])
            more = f"\n  ... and {len(found) - 80} more" if len(found) > 80 else ""
            # pytrace=False: no traceback, whose locals and source lines could show a number
            pytest.fail(f"{len(found)} ID number occurrence(s) in clear (shown masked here):\n"
                        f"{shown}{more}", pytrace=False)

    def summary(self) -> str:
        return (f"{len(self.cases)} numbers watched, {len(self.received)} HTTP responses, "
                f"{len(self.texts)} other texts, {len(self.tap.captured)} tapped messages, exchanges bound: "
                f"{', '.join(self.tap.bound)}")


# -- driving a county filing service -------------------------------------------------------------

def _with_id(form: dict, case: IdCase) -> dict:
    body = copy.deepcopy(form)
    body["cqo"]["id_type"], body["cqo"]["id_number"] = case.id_type, case.number
    return body


def _expect(audit: PiiAudit, resp: requests.Response, status: int, what: str, case: IdCase) -> dict:
    if resp.status_code != status:
        pytest.fail(f"{what} with {case}: expected HTTP {status}, got {resp.status_code}: "
                    f"{audit.redact(resp.text)[:600]}", pytrace=False)
    return resp.json()


def submit_id_numbers(audit: PiiAudit, base_url: str, *, form: Callable[[int], dict],
                      enterprise: Callable[[str], dict], officer: dict,
                      cases: Iterable[IdCase] | None = None, first: int = 1) -> list[str]:
    """File every case with a county filing service's HTTP API (`base_url` ends in /api/v1).

    `form(n)` is a complete valid intake form of the n-th enterprise (the same enterprise
    for the same n), `enterprise(uscc)` the headers of that enterprise, `officer` those
    of the county's officer. Each valid number opens a filing of its own enterprise
    (201); every invalid number is refused (422) when filed (POST /filings) and when
    sent as the correction of a returned filing (PUT /filings/{id}), after which the
    correction goes through with a valid number. The valid filings are then approved,
    so they travel to the city and its decisions come back. Returns their ids."""
    if cases is None:
        cases = id_cases(form(first)["enterprise"]["county"])
    cases = list(cases)
    audit.watch(cases)
    valid = [c for c in cases if c.valid]
    invalid = [c for c in cases if not c.valid]
    filings = []
    for n, case in enumerate(valid, start=first):
        body = _with_id(form(n), case)
        resp = audit.request("POST", base_url + "/filings", json=body,
                             headers=enterprise(body["enterprise"]["uscc"]))
        filings.append((n, case, _expect(audit, resp, 201, "POST /filings", case)["id"]))

    spare = form(first + len(valid))  # an enterprise of its own: nothing of it gets stored
    for case in invalid:
        resp = audit.request("POST", base_url + "/filings", json=_with_id(spare, case),
                             headers=enterprise(spare["enterprise"]["uscc"]))
        _expect(audit, resp, 422, "POST /filings", case)

    n, case, filing_id = filings[0]
    corrected = form(n)
    headers = enterprise(corrected["enterprise"]["uscc"])
    resp = audit.request("POST", f"{base_url}/filings/{filing_id}/review", headers=officer,
                         json={"decision": "return", "comment": "请核对证件号码后重新提交"})
    _expect(audit, resp, 200, "returning the filing", case)
    for bad in invalid:
        resp = audit.request("PUT", f"{base_url}/filings/{filing_id}",
                             json=_with_id(corrected, bad), headers=headers)
        _expect(audit, resp, 422, "PUT /filings/{id}", bad)
    resp = audit.request("PUT", f"{base_url}/filings/{filing_id}", json=_with_id(corrected, case),
                         headers=headers)
    _expect(audit, resp, 200, "PUT /filings/{id}", case)

    for _, case, filing_id in filings:
        resp = audit.request("POST", f"{base_url}/filings/{filing_id}/review", headers=officer,
                             json={"decision": "approve", "comment": "材料齐全"})
        _expect(audit, resp, 200, "approving the filing", case)
    return [filing_id for _, _, filing_id in filings]
