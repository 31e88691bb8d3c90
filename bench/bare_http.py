"""The baseline of bench/lookup.py: a bare nameko HTTP handler, nothing else."""
import eventlet

eventlet.monkey_patch()  # noqa: E402

import json  # noqa: E402
import sys  # noqa: E402

from nameko.web.handlers import http  # noqa: E402

from cqo.runner import run  # noqa: E402


class BareService:
    name = "bare_http"

    @http("GET", "/api/v1/enterprises/<string:uscc>")
    def get(self, request, uscc):
        return 200, {"Content-Type": "application/json"}, json.dumps({"uscc": uscc})


if __name__ == "__main__":
    run([BareService], {"AMQP_URI": "memory://", "WEB_SERVER_ADDRESS": f"127.0.0.1:{sys.argv[1]}",
                        "max_workers": 50})
