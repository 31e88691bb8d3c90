"""Broker-free parts of the messaging plumbing: decoding, error codes, the failure
wrapper's decisions, the fault-injection proxy."""
import json
import socket
import threading

import pytest
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError

from shared.errors import ValidationFailed
from shared.messaging import dead
from shared.messaging.consumer import Delivery, MessageDecodeError, RequeueMessage, decode_json
from shared.messaging.dead import classify
from shared.messaging.outbox import dumps
from tests.support.tcp_proxy import TcpProxy


def test_outbox_json_is_compact_and_keeps_chinese():
    assert dumps({"名称": "沧州", "n": [1, 2]}) == '{"名称":"沧州","n":[1,2]}'


def test_decode_json():
    assert decode_json('{"a":"沧州"}'.encode(), "application/json", "utf-8") == {"a": "沧州"}
    assert decode_json(b'{"a":1}', None, None) == {"a": 1}
    assert decode_json(b'{"a":1}', "application/json", "binary") == {"a": 1}
    with pytest.raises(MessageDecodeError):
        decode_json(b"{not json", "application/json", "utf-8")
    with pytest.raises(MessageDecodeError):
        decode_json(b"\xff\xfe", "application/json", "utf-8")
    with pytest.raises(MessageDecodeError):
        decode_json(b"<a/>", "application/xml", "utf-8")


@pytest.mark.parametrize("exc, code", [
    (ValidationFailed("统一社会信用代码无效", code="USCC_INVALID"), "USCC_INVALID"),
    (ValidationError({"uscc": ["无效"]}), "VALIDATION_FAILED"),
    (MessageDecodeError("body is not valid JSON"), "MALFORMED_MESSAGE"),
    (KeyError("filing_id"), "MALFORMED_PAYLOAD"),
    (RuntimeError("boom"), "HANDLER_ERROR"),
])
def test_classify(exc, code):
    got_code, reason = classify(exc)
    assert got_code == code
    assert reason


def test_classify_keeps_the_chinese_message_and_truncates():
    assert classify(ValidationFailed("任职年限不足"))[1] == "任职年限不足"
    assert len(classify(RuntimeError("x" * 5000))[1]) == 1000


def _echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _echo(conn):
    try:
        while data := conn.recv(4096):
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def _recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_proxy_forwards_then_cuts_after_n_bytes_and_refuses_while_paused():
    srv = _echo_server()
    with TcpProxy(*srv.getsockname()) as proxy:
        c = socket.create_connection((proxy.host, proxy.port), timeout=5)
        c.sendall(b"hello")
        assert _recv_exactly(c, 5) == b"hello"
        proxy.cut_after(10, pause=True)
        c.sendall(b"0123456789abcdef")  # the cut falls inside this chunk
        assert proxy.wait_cut(5)
        got = b""
        with pytest.raises(OSError):
            while True:
                chunk = c.recv(100)
                if not chunk:
                    raise ConnectionResetError("closed")
                got += chunk
        assert got in (b"", b"0123456789")  # never more than the first 10 bytes
        assert proxy.bytes_up == 5 + 10
        c.close()
        # paused: a new connection is accepted and reset at once
        with pytest.raises(OSError):
            with socket.create_connection((proxy.host, proxy.port), timeout=5) as c2:
                c2.sendall(b"x")
                if not c2.recv(1):
                    raise ConnectionResetError("closed")
        assert proxy.refused >= 1
        proxy.resume()
        c3 = socket.create_connection((proxy.host, proxy.port), timeout=5)
        c3.sendall(b"again")
        assert _recv_exactly(c3, 5) == b"again"
        proxy.cut()
        assert proxy.cuts == 2
        c3.close()
    srv.close()


# -- the failure wrapper's decisions, with dead-lettering faked ---------------------

def _delivery(body=b'{"n": 1}', decode_error=None, delivery_count=0):
    return Delivery(body=None, raw=body, message_id="m-1",
                    headers={"x-delivery-count": delivery_count}, exchange="cqo.decisions",
                    routing_key="decision.130921", queue="filing.130921.decisions",
                    content_type="application/json", content_encoding="utf-8",
                    redelivered=False, decode_error=decode_error)


class _Service:
    db = object()

    def __init__(self, exc=None):
        self.exc, self.calls = exc, 0

    @dead.dead_letter_on_error("unit", requeue_delay=0, max_transient_retries=2)
    def handle(self, body, message):
        self.calls += 1
        if self.exc:
            raise self.exc
        return "done"


@pytest.fixture
def dead_lettered(monkeypatch):
    recorded = []
    monkeypatch.setattr(dead, "dead_letter",
                        lambda db, delivery, consumer, exc: recorded.append((consumer, exc)))
    return recorded


def test_wrapper_passes_success_through(dead_lettered):
    assert _Service().handle({"n": 1}, _delivery()) == "done"
    assert dead_lettered == []


def test_wrapper_dead_letters_failures_and_returns(dead_lettered):
    service = _Service(KeyError("n"))
    assert service.handle({}, _delivery()) is None  # returns: the message is acked
    assert [(c, type(e)) for c, e in dead_lettered] == [("unit", KeyError)]


def test_wrapper_skips_the_handler_for_an_undecodable_body(dead_lettered):
    service = _Service()
    error = MessageDecodeError("body is not valid JSON")
    service.handle(None, _delivery(b"{x", decode_error=error))
    assert service.calls == 0
    assert dead_lettered == [("unit", error)]


def test_wrapper_requeues_transient_errors_until_the_delivery_count_says_enough(dead_lettered):
    transient = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    with pytest.raises(RequeueMessage):
        _Service(transient).handle({}, _delivery(delivery_count=1))
    assert dead_lettered == []
    _Service(transient).handle({}, _delivery(delivery_count=2))
    assert [type(e) for _, e in dead_lettered] == [OperationalError]


def test_wrapper_requeues_when_dead_lettering_fails(monkeypatch):
    def broken(*args):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(dead, "dead_letter", broken)
    with pytest.raises(dead.DeadLetteringFailed):
        _Service(ValueError("bad")).handle({}, _delivery())
    assert issubclass(dead.DeadLetteringFailed, RequeueMessage)


def test_raw_json_object_embeds_serialized_items_unchanged():
    from shared.messaging.outbox import RawJson
    items = ['{"filing_id": "a", "name": "沧州"}', '{"filing_id":"b"}']
    text = RawJson.object({"batch_id": "x", "chunk": 1}, {"filings": items})
    assert json.loads(text) == {"batch_id": "x", "chunk": 1,
                                "filings": [{"filing_id": "a", "name": "沧州"}, {"filing_id": "b"}]}
    assert items[0] in text  # not re-encoded
    assert json.loads(RawJson.object({}, {"filings": []})) == {"filings": []}


@pytest.mark.parametrize("uri, user", [
    ("amqp://cqo_130921:secret@127.0.0.1:5672/cqo-130921", "cqo_130921"),
    ("amqp://cqo%40x:p%3Aw@h:5672/v", "cqo@x"),  # quoted in the URI, plain on the wire
    ("amqp://a:b@h1:5672/v;amqp://a:b@h2:5672/v", "a"),  # failover: every node, one user
    ("amqp://127.0.0.1:5672//", None),  # no user named: no user_id (not kombu's guest)
])
def test_the_outbox_publishes_as_the_login_user_of_its_uri(uri, user):
    from shared.messaging.publisher import login_user

    assert login_user(uri) == user
