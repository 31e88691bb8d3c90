"""shared/logs.py: the JSON line, the correlation ids and their isolation per greenthread."""
from __future__ import annotations

import io
import json
import logging

import eventlet

from shared import logs


def _logger(style="json"):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(style))
    handler.addFilter(logs.CorrelationFilter())
    logger = logging.getLogger(f"test_logs.{style}.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate, logger.level = False, logging.DEBUG
    return logger, stream


def _records(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_bound_ids_and_readable_chinese():
    logger, stream = _logger()
    with logs.bind(filing_id="f-1", message_id=None):
        with logs.bind(message_id="m-1"):
            logger.info("备案 %s 已决定", "f-1")
        logger.info("after")
    logger.info("outside")
    inner, after, outside = _records(stream)
    assert inner["message"] == "备案 f-1 已决定" and "备案" in stream.getvalue()
    assert (inner["filing_id"], inner["message_id"]) == ("f-1", "m-1")
    assert after["filing_id"] == "f-1" and "message_id" not in after
    assert "filing_id" not in outside
    assert {"time", "level", "logger", "message"} <= inner.keys() and inner["level"] == "INFO"


def test_an_extra_given_at_the_call_wins_over_the_bound_id():
    logger, stream = _logger()
    with logs.bind(filing_id="batch-context"):
        logger.info("one of the batch", extra={"filing_id": "f-7"})
    assert _records(stream)[0]["filing_id"] == "f-7"


def test_a_traceback_stays_inside_the_line():
    logger, stream = _logger()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (record,) = _records(stream)
    assert "ValueError: boom" in record["exc_info"]


def test_plain_style_is_a_text_line():
    logger, stream = _logger("plain")
    with logs.bind(filing_id="f-1"):
        logger.warning("text")
    assert stream.getvalue().rstrip().endswith("WARNING " + logger.name + " text")


def test_greenthreads_never_see_each_others_ids():
    logger, stream = _logger()

    def worker(fid):
        with logs.bind(filing_id=fid):
            for _ in range(3):
                eventlet.sleep(0)  # interleave with the other workers
                logger.info("step", extra={"expected": fid})

    pool = eventlet.GreenPool()
    for fid in ("a", "b", "c"):
        pool.spawn(worker, fid)
    pool.waitall()
    records = _records(stream)
    assert len(records) == 9
    assert all(r["filing_id"] == r["expected"] for r in records)
