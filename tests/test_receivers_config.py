"""Receiver config: Alertmanager's keys and defaults, global inheritance, secrets, load-time errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.config.receivers import (
    DEFAULT_PAGERDUTY_URL,
    SPEC_EMAIL_SUBJECT,
    SPEC_SLACK_TEXT,
    ReceiverConfig,
    alerting_global,
    with_global_defaults,
)
from daemon.config.secret import Secret


def receivers(data: list[dict[str, Any]], glob: dict[str, Any] | None = None, **context: Any) -> list[ReceiverConfig]:
    g = alerting_global(glob or {}, context)
    filled = with_global_defaults(data, g)
    return [ReceiverConfig.model_validate(r, context=context) for r in filled]


def errors(data: dict[str, Any], glob: dict[str, Any] | None = None, **context: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        receivers([data], glob, **context)
    out = []
    for e in info.value.errors():
        loc = ".".join(str(p) for p in e["loc"])
        field = (e.get("ctx") or {}).get("field")
        out.append((loc + ("." + field if field else ""), (e.get("ctx") or {}).get("message") or e["msg"]))
    return out


def test_alertmanager_defaults() -> None:
    (r,) = receivers(
        [
            {
                "name": "team",
                "slack_configs": [{"api_url": "https://hooks.slack.com/services/T/B/X"}],
                "email_configs": [{"to": "a@example.com"}],
                "pagerduty_configs": [{"routing_key": "key"}],
                "webhook_configs": [{"url": "http://127.0.0.1:5001/"}],
            }
        ],
        {"smtp_smarthost": "smtp.example.com:587", "smtp_from": "alertd@example.com"},
    )
    slack, mail, pd, hook = r.slack_configs[0], r.email_configs[0], r.pagerduty_configs[0], r.webhook_configs[0]
    assert (slack.send_resolved, mail.send_resolved, pd.send_resolved, hook.send_resolved) == (False, False, True, True)
    assert slack.text == SPEC_SLACK_TEXT and slack.mention == "none" and not slack.update_message
    assert mail.smarthost == "smtp.example.com:587" and mail.from_ == "alertd@example.com"
    assert mail.hello == "localhost" and mail.require_tls is True and mail.subject == SPEC_EMAIL_SUBJECT
    assert pd.url == DEFAULT_PAGERDUTY_URL and pd.severity == "error" and pd.routing_key == Secret("key")
    assert hook.max_alerts == 0


def test_global_values_are_inherited_unless_set(tmp_path: Path) -> None:
    password = tmp_path / "smtp-password"
    password.write_text("s3cret\n")
    glob = {
        "smtp_smarthost": "mail:25",
        "smtp_from": "g@example.com",
        "smtp_hello": "alertd.example.com",
        "smtp_auth_username": "user",
        "smtp_auth_password_file": str(password),
        "smtp_require_tls": False,
        "slack_api_url": "https://hooks.example/global",
        "pagerduty_url": "http://127.0.0.1:1/v2/enqueue",
        "http_config": {"bearer_token": "t"},
    }
    (r,) = receivers(
        [
            {
                "name": "r",
                "email_configs": [{"to": "a@x.org"}, {"to": "b@x.org", "smarthost": "other:2525", "from": "me@x.org", "require_tls": True}],
                "slack_configs": [{}, {"token": "xoxb-1", "channel": "#c"}],
                "pagerduty_configs": [{"routing_key": "k"}],
                "webhook_configs": [{"url": "http://h/"}],
            }
        ],
        glob,
    )
    first, second = r.email_configs
    assert (first.smarthost, first.from_, first.hello, first.auth_username) == ("mail:25", "g@example.com", "alertd.example.com", "user")
    assert first.auth_password == Secret("s3cret") and first.require_tls is False
    assert (second.smarthost, second.from_, second.require_tls) == ("other:2525", "me@x.org", True)
    assert r.slack_configs[0].api_url == Secret("https://hooks.example/global")
    # A bot token talks to the Web API: the global webhook URL is not its base.
    assert r.slack_configs[1].api_url is None and r.slack_configs[1].api_base() == "https://slack.com/api/"
    assert r.pagerduty_configs[0].url == "http://127.0.0.1:1/v2/enqueue"
    assert r.webhook_configs[0].http_config is not None and r.webhook_configs[0].http_config.auth_headers() == {"Authorization": "Bearer t"}


def test_secrets_from_env_and_files(tmp_path: Path) -> None:
    (tmp_path / "rk").write_text("routing-from-file\n")
    (tmp_path / "hook").write_text("http://127.0.0.1:9/hook\n")
    (tmp_path / "tok").write_text("xoxb-file\n")
    (r,) = receivers(
        [
            {
                "name": "r",
                "pagerduty_configs": [{"routing_key_file": "rk"}, {"routing_key": "${PD_KEY}"}],
                "webhook_configs": [{"url_file": "hook"}],
                "slack_configs": [{"token_file": "tok", "channel": "#x"}, {"api_url_file": "hook"}],
            }
        ],
        env={"PD_KEY": "from-env"},
        base_dir=str(tmp_path),
    )
    assert [p.routing_key for p in r.pagerduty_configs] == [Secret("routing-from-file"), Secret("from-env")]
    assert r.webhook_configs[0].url == Secret("http://127.0.0.1:9/hook")
    assert r.slack_configs[0].bot_token() == Secret("xoxb-file")
    assert "routing-from-file" not in repr(r) and "from-env" not in r.model_dump_json()


def test_slack_bot_token_from_http_config_and_alertmanager_api_url() -> None:
    (r,) = receivers(
        [
            {
                "name": "r",
                "slack_configs": [
                    {
                        "api_url": "http://127.0.0.1:8080/api/chat.postMessage",
                        "http_config": {"authorization": {"credentials": "xoxb-am"}},
                        "channel": "#alerts",
                    }
                ],
            }
        ]
    )
    slack = r.slack_configs[0]
    assert slack.bot_token() == Secret("xoxb-am") and slack.api_base() == "http://127.0.0.1:8080/api/"


def test_update_message_implies_send_resolved() -> None:
    (r,) = receivers([{"name": "r", "slack_configs": [{"token": "x", "channel": "#c", "update_message": True}]}])
    assert r.slack_configs[0].send_resolved is True


@pytest.mark.parametrize(
    ("receiver", "glob", "where", "message"),
    [
        ({"name": "r", "email_configs": [{"to": "a@b.c"}]}, {"smtp_from": "x@y.z"}, "email_configs.0.smarthost", "no global SMTP smarthost set"),
        ({"name": "r", "email_configs": [{"to": "a@b.c"}]}, {"smtp_smarthost": "h:25"}, "email_configs.0.from", "no global SMTP from set"),
        ({"name": "r", "email_configs": [{"to": ""}]}, {"smtp_smarthost": "h:25", "smtp_from": "x@y"}, "email_configs.0.to", "missing to address in email config"),
        ({"name": "r", "email_configs": [{"to": "a@b.c", "smarthost": "nohost"}]}, {"smtp_from": "x@y"}, "email_configs.0.smarthost", "missing port"),
        ({"name": "r", "email_configs": [{"to": "a@b.c", "headers": {"X-A": "1", "x-a": "2"}}]}, {"smtp_from": "x@y", "smtp_smarthost": "h:1"}, "email_configs.0.headers", 'duplicate header "X-A"'),
        ({"name": "r", "email_configs": [{"to": "a@b.c", "headers": {"Bad Name": "1"}}]}, {"smtp_from": "x@y", "smtp_smarthost": "h:1"}, "email_configs.0.headers", "not a valid header name"),
        ({"name": "r", "pagerduty_configs": [{}]}, None, "pagerduty_configs.0", "missing routing key"),
        ({"name": "r", "pagerduty_configs": [{"service_key": "x"}]}, None, "pagerduty_configs.0.service_key", "Extra inputs"),
        ({"name": "r", "webhook_configs": [{}]}, None, "webhook_configs.0", "one of url or url_file must be configured"),
        ({"name": "r", "webhook_configs": [{"url": "ftp://x"}]}, None, "webhook_configs.0.url", "unsupported scheme"),
        ({"name": "r", "webhook_configs": [{"url": "http://x", "max_alerts": -1}]}, None, "webhook_configs.0.max_alerts", "greater than or equal"),
        ({"name": "r", "slack_configs": [{}]}, None, "slack_configs.0", "one of api_url, api_url_file or a bot token"),
        ({"name": "r", "slack_configs": [{"token": "x"}]}, None, "slack_configs.0.channel", "needs a channel"),
        ({"name": "r", "slack_configs": [{"api_url": "http://h", "update_message": True}]}, None, "slack_configs.0.update_message", "needs a bot token"),
        ({"name": "r", "slack_configs": [{"token": "x", "channel": "c", "update_message": True, "send_resolved": False}]}, None, "slack_configs.0.send_resolved", "needs send_resolved"),
        ({"name": "r", "slack_configs": [{"api_url": "http://h", "mention": "@everyone"}]}, None, "slack_configs.0.mention", '"@here", "@channel"'),
        ({"name": "r", "slack_configs": [{"api_url": "http://h", "text": "{{ .CommonLabels.x }}"}]}, None, "slack_configs.0.text", "Go templates"),
        ({"name": "r", "slack_configs": [{"api_url": "http://h", "api_url_file": "/x"}]}, None, "slack_configs.0", "at most one of api_url & api_url_file"),
        ({"name": "r", "opsgenie_configs": [{}]}, None, "opsgenie_configs", "Extra inputs"),
        ({"name": ""}, None, "name", "missing name in receiver"),
    ],
)
def test_load_time_errors(receiver: dict[str, Any], glob: dict[str, Any] | None, where: str, message: str) -> None:
    found = errors(receiver, glob)
    assert any(loc == where and message in text for loc, text in found), found


def test_unreadable_secret_file_names_the_key_not_the_content(tmp_path: Path) -> None:
    found = errors({"name": "r", "pagerduty_configs": [{"routing_key_file": str(tmp_path / "missing")}]})
    assert found == [("pagerduty_configs.0.routing_key_file", f'cannot read "{tmp_path / "missing"}": No such file or directory')]


def test_email_subject_header_is_the_subject() -> None:
    (r,) = receivers(
        [{"name": "r", "email_configs": [{"to": "a@b.c", "headers": {"subject": "[{severity}] x", "X-Team": "{team}"}}]}],
        {"smtp_smarthost": "h:25", "smtp_from": "f@x"},
    )
    mail = r.email_configs[0]
    assert mail.subject == "[{severity}] x" and mail.headers == {"X-Team": "{team}"}


def test_readme_receivers_examples_load(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Receivers\n") : readme.index("\n## ", readme.index("## Receivers\n") + 1)]
    examples = re.findall(r"```yaml receivers\n(.*?)```", section, flags=re.S)
    assert examples
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pagerduty").write_text("R0UTING\n")
    import yaml

    env = {"SMTP_PASSWORD": "pw", "SLACK_BOT_TOKEN": "xoxb-1"}
    for example in examples:
        data = yaml.safe_load(example)
        loaded = receivers(data["receivers"], data.get("global"), env=env, base_dir=str(tmp_path))
        assert [r.name for r in loaded] == ["p0", "p1", "p2", "audit"]
        p0 = loaded[0]
        assert p0.slack_configs[0].update_message and p0.slack_configs[0].mention == "@here"
        assert p0.email_configs[0].auth_password == Secret("pw") and p0.pagerduty_configs[0].routing_key == Secret("R0UTING")
    # The Slack format shown is the default, verbatim.
    shown = re.search(r"```\n(🚨.*?)```", section, flags=re.S)
    assert shown is not None and shown.group(1).rstrip("\n") == SPEC_SLACK_TEXT
