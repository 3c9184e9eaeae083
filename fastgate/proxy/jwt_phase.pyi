# Types of the compiled token check (fastgate/proxy/jwt_phase.pyx) for type checkers.
from typing import Any

from fastgate.proxy.request import Request
from fastgate.proxy.steps import Outcome

class BearerCheck:
    def __init__(self, verifier: Any, stats: Any, options: bool, missing: Any,
                 refused: Any) -> None: ...
    def __call__(self, conn: Any, req: Request, loc: Any) -> Outcome: ...
