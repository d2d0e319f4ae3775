"""The HTTP client settings of a scrape job (Prometheus' ``http_config``): auth and TLS."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo, model_validator

from daemon.config.secret import Secret, read_secret_file
from daemon.config.section import Section, base_dir, field_error, join_dir


def secret_from_file(path: str, key: str, context: Any) -> tuple[Secret, str]:
    """The secret in ``path`` (relative to the config file) and the resolved path.

    Raises a field error naming ``key`` (never the content) when the file cannot be read.
    """
    resolved = join_dir(base_dir(context), path)
    try:
        return read_secret_file(resolved), resolved
    except UnicodeDecodeError:
        raise field_error(key, f'cannot read "{resolved}": not UTF-8 text') from None
    except OSError as exc:
        raise field_error(key, f'cannot read "{resolved}": {exc.strerror or exc}') from None


class BasicAuth(Section):
    """``basic_auth``: ``password`` or ``password_file`` (read when the config is loaded)."""

    unsupported = frozenset({"username_file", "username_ref", "password_ref"})

    username: str = ""
    password: Secret | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _read_password_file(self, info: ValidationInfo) -> BasicAuth:
        if self.password_file is None:
            return self
        if self.password is not None:
            raise field_error(None, "at most one of basic_auth password & password_file must be configured")
        secret, path = secret_from_file(self.password_file, "password_file", info.context)
        self._settle(password=secret, password_file=path)
        return self


class Authorization(Section):
    """``authorization``: a header ``<type> <credentials>``; credentials may come from a file."""

    unsupported = frozenset({"credentials_ref"})

    type: str = "Bearer"
    credentials: Secret | None = None
    credentials_file: str | None = None

    @model_validator(mode="after")
    def _read_credentials_file(self, info: ValidationInfo) -> Authorization:
        kind = self.type.strip() or "Bearer"
        if kind.lower() == "basic":
            raise field_error("type", 'authorization type cannot be set to "basic", use "basic_auth" instead')
        self._settle(type=kind)
        if self.credentials_file is not None:
            if self.credentials is not None:
                raise field_error(None, "at most one of authorization credentials & credentials_file must be configured")
            secret, path = secret_from_file(self.credentials_file, "credentials_file", info.context)
            self._settle(credentials=secret, credentials_file=path)
        return self


class TLSConfig(Section):
    """``tls_config``: CA, client certificate and key files (checked readable at load), SNI name."""

    unsupported = frozenset({"ca", "cert", "key", "ca_ref", "cert_ref", "key_ref", "min_version", "max_version"})

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _files_readable(self, info: ValidationInfo) -> TLSConfig:
        tls = self
        if tls.cert_file and not tls.key_file:
            raise field_error("key_file", "key_file must be configured when a client certificate is configured")
        if tls.key_file and not tls.cert_file:
            raise field_error("cert_file", "cert_file must be configured when a client key is configured")
        update: dict[str, str] = {}
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(tls, key)
            if not path:
                continue
            resolved = join_dir(base_dir(info.context), path)
            try:
                with open(resolved, "rb"):
                    pass
            except OSError as exc:
                raise field_error(key, f'cannot read "{resolved}": {exc.strerror or exc}') from None
            update[key] = resolved
        self._settle(**update)
        return self


def check_http_client(
    basic_auth: BasicAuth | None,
    authorization: Authorization | None,
    bearer_token: Secret | None,
    bearer_token_file: str | None,
) -> None:
    """Prometheus' rules on which auth settings may be combined; raises a field error."""
    if bearer_token is not None and bearer_token_file is not None:
        raise field_error(None, "at most one of bearer_token & bearer_token_file must be configured")
    legacy = bearer_token is not None or bearer_token_file is not None
    if basic_auth is not None and legacy:
        raise field_error(None, "at most one of basic_auth, bearer_token & bearer_token_file must be configured")
    if authorization is not None and legacy:
        raise field_error(None, "authorization is not compatible with bearer_token & bearer_token_file")
    if authorization is not None and basic_auth is not None:
        raise field_error(None, "at most one of basic_auth & authorization must be configured")

