# Types of the compiled token check (fastgate/proxy/jwt_phase.pyx) for type checkers.
from typing import Any

from fastgate.proxy.request import Request
from fastgate.proxy.steps import Outcome

class BearerCheck:
    def __init__(self, verifier: Any, runtime: Any, options: bool, missing: Any,
                 refused: Any, challenges: tuple[bytes, bytes] | None = None,
                 refusals: bool = False, padding: bool = True) -> None: ...
    def __call__(self, conn: Any, req: Request, loc: Any) -> Outcome: ...
