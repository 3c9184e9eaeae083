# Types of the compiled phase loop (fastgate/proxy/_walk.pyx) for type checkers.
from collections.abc import Callable
from typing import Any

from fastgate.config.model import Location, Server
from fastgate.proxy.locate import Locator
from fastgate.proxy.request import Request
from fastgate.proxy.steps import Outcome

class Walker:
    def __init__(self, locator: Locator,
                 before: Callable[[Any, Request, Any], Outcome],
                 plan_of: Callable[[Any], tuple[Any, ...]],
                 find_config: Callable[[Any, Request, Any], Outcome | None],
                 resume: Callable[..., Any]) -> None: ...
    def enter(self, conn: Any, req: Request, server: Any) -> Outcome: ...
    def find(self, conn: Any, req: Request, server: Any) -> Outcome: ...
    def locate(self, req: Request, server: Server) -> Location: ...
    def walk(self, conn: Any, req: Request, loc: Any, at: int) -> Outcome: ...
    def walk_nested(self, conn: Any, req: Request, loc: Any) -> Outcome: ...
