"""`python -m cqo.healthcheck`: the image's HEALTHCHECK. Exit 0 when the service in this
container answers 200 on /api/v1/health (its database and broker checked), else 1.

Standard library only and no cqo imports: it runs every few seconds beside the service.
The port is the one the service listens on (WEB_SERVER_ADDRESS, as the service reads it).
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("WEB_SERVER_ADDRESS", "0.0.0.0:8080").rsplit(":", 1)[-1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
