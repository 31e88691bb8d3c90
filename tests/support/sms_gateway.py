"""The SMS gateway of cqo/demo_channels.py with scripted answers: the statuses in
`script` in turn (then 200); 299 is a refusal inside a 200 answer."""
from __future__ import annotations

from cqo.demo_channels import SmsGateway as _Gateway


class SmsGateway(_Gateway):
    def __init__(self, script=()):
        super().__init__()
        self.script = list(script)  # statuses to answer first, in order

    def answer(self) -> int:
        return self.script.pop(0) if self.script else 200
