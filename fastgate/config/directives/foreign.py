"""Directives of other JWT modules for nginx: fastgate does not take them, and says
whose they are and what fastgate writes instead (not just "unknown directive")."""

from __future__ import annotations

TESLAGOV = "TeslaGov's ngx-http-auth-jwt-module"
KJDEV = "kjdev's nginx-auth-jwt"

# name → (whose, what to write in fastgate)
FOREIGN: dict[str, tuple[str, str]] = {
    "auth_jwt_enabled": (TESLAGOV, "auth_jwt on|off"),
    "auth_jwt_algorithm": (TESLAGOV, "auth_jwt_alg ALG"),
    "auth_jwt_location": (TESLAGOV, "auth_jwt $http_NAME or auth_jwt $cookie_NAME"),
    "auth_jwt_validation_type": (TESLAGOV, "auth_jwt $http_NAME or auth_jwt $cookie_NAME"),
    "auth_jwt_redirect": (TESLAGOV, "error_page 401 URL"),
    "auth_jwt_loginurl": (TESLAGOV, "error_page 401 URL"),
    "auth_jwt_use_keyfile": (TESLAGOV, "auth_jwt_key_file PATH or auth_jwt_key PATH file"),
    "auth_jwt_keyfile_path": (TESLAGOV, "auth_jwt_key_file PATH or auth_jwt_key PATH file"),
    "auth_jwt_validate_sub": (TESLAGOV, 'auth_jwt_require with a map of $jwt_claim_sub'),
    "auth_jwt_extract_request_claims": (TESLAGOV, "proxy_set_header NAME $jwt_claim_NAME"),
    "auth_jwt_extract_response_claims": (TESLAGOV, "add_header NAME $jwt_claim_NAME"),
    "auth_jwt_require_claim": (KJDEV, "auth_jwt_require with a map of $jwt_claim_NAME"),
    "auth_jwt_require_header": (KJDEV, "auth_jwt_require with a map of $jwt_header_NAME"),
    "auth_jwt_validate_exp": (KJDEV, "nothing: exp is always checked (auth_jwt_leeway)"),
    "auth_jwt_validate_sig": (KJDEV, "nothing: the signature is always checked"),
    "auth_jwt_revocation_list_kid": (KJDEV, "nothing yet (no revocation lists)"),
    "auth_jwt_revocation_list_sub": (KJDEV, "nothing yet (no revocation lists)"),
    "auth_jwt_phase": (KJDEV, "nothing: auth_jwt runs in the access phase"),
}


def foreign_message(name: str) -> str | None:
    found = FOREIGN.get(name)
    if found is None:
        return None
    whose, instead = found
    return f'unknown directive "{name}": it is {whose}\'s; in fastgate write {instead}'
