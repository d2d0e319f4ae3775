"""Relabelling: Prometheus' documented behaviour for every action, its validation, and RE2 patterns."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.scrape.relabel import RegexError, Relabeler, RelabelConfig, compile_re2, translate_re2


def rule(**fields: Any) -> RelabelConfig:
    return RelabelConfig.model_validate(fields)


def relabel(labels: dict[str, str], *rules: dict[str, Any]) -> dict[str, str] | None:
    return Relabeler([rule(**fields) for fields in rules]).apply(labels)


def test_replace_with_capture_groups() -> None:
    out = relabel(
        {"a": "foo", "b": "bar"},
        {"source_labels": ["a"], "regex": "f(.*)", "target_label": "d", "replacement": "ch${1}-ch${1}"},
    )
    assert out == {"a": "foo", "b": "bar", "d": "choo-choo"}


def test_replace_joins_sources_with_separator() -> None:
    out = relabel(
        {"a": "foo", "b": "bar", "c": "baz"},
        {"source_labels": ["a", "b"], "regex": "f(.*);(.*)r", "target_label": "a", "replacement": "b${1}${2}m"},
        {"source_labels": ["c", "a"], "regex": "(b).*b(.*)ba(.*)", "target_label": "d", "replacement": "$1$2$2$3"},
    )
    assert out == {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}


def test_replace_no_match_changes_nothing() -> None:
    labels = {"a": "boo"}
    assert relabel(labels, {"source_labels": ["a"], "regex": "f", "target_label": "b", "replacement": "bar"}) == labels


def test_regex_is_fully_anchored() -> None:
    assert relabel({"a": "xfoo"}, {"source_labels": ["a"], "regex": "foo", "action": "drop"}) == {"a": "xfoo"}
    assert relabel({"a": "foo"}, {"source_labels": ["a"], "regex": "foo", "action": "drop"}) is None
    # $ is the end of the text, never before a trailing newline; . matches newlines.
    assert relabel({"a": "foo\n"}, {"source_labels": ["a"], "regex": "foo$", "action": "drop"}) == {"a": "foo\n"}
    assert relabel({"a": "foo\nbar"}, {"source_labels": ["a"], "regex": "foo.bar", "action": "drop"}) is None


def test_default_regex_and_replacement_copy_a_label() -> None:
    assert relabel({"abc": "def"}, {"source_labels": ["abc"], "target_label": "cde"}) == {"abc": "def", "cde": "def"}


def test_replace_with_static_value_and_empty_removes() -> None:
    assert relabel({"a": "1"}, {"target_label": "env", "replacement": "prod"}) == {"a": "1", "env": "prod"}
    assert relabel({"a": "1", "b": "2"}, {"source_labels": ["missing"], "target_label": "b"}) == {"a": "1"}


def test_replace_target_label_from_groups() -> None:
    base = {"a": "some-name-value"}
    regex = "some-([^-]+)-([^,]+)"
    assert relabel(base, {"source_labels": ["a"], "regex": regex, "replacement": "${2}", "target_label": "${1}"}) == {
        **base,
        "name": "value",
    }
    # A replacement that expands to nothing removes the (absent) label; invalid target names are skipped.
    assert relabel(base, {"source_labels": ["a"], "regex": regex, "replacement": "${3}", "target_label": "${1}"}) == base
    for target in ("${3}", "0${3}", "-${3}"):
        fields = {"source_labels": ["a"], "regex": regex, "replacement": "${1}", "target_label": target}
        if target != "${3}":  # Prometheus' config validation already refuses these
            with pytest.raises(ValidationError):
                rule(**fields)
        else:
            assert relabel(base, fields) == base


def test_real_life_tag_parsing() -> None:
    tags = {"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar"}
    out = relabel(
        tags,
        {"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)path:(/[^,]+).*", "replacement": "${1}",
         "target_label": "__metrics_path__"},
        {"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)job:([^,]+).*", "replacement": "${1}",
         "target_label": "job"},
        {"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)label:([^=]+)=([^,]+).*", "replacement": "${2}",
         "target_label": "${1}"},
    )
    assert out == {**tags, "__metrics_path__": "/secret", "job": "some-job", "foo": "bar"}


def test_keep_and_drop() -> None:
    assert relabel({"a": "foo"}, {"source_labels": ["a"], "regex": "f.*", "action": "keep"}) == {"a": "foo"}
    assert relabel({"a": "foo"}, {"source_labels": ["a"], "regex": "b.*", "action": "keep"}) is None
    assert relabel({"a": "foo"}, {"source_labels": ["a"], "regex": ".*o.*", "action": "drop"}) is None
    # An unset label is the empty string: `regex: ""` matches it.
    assert relabel({"a": "foo"}, {"source_labels": ["b"], "regex": "", "action": "drop"}) is None


def test_keepequal_and_dropequal() -> None:
    labels = {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}
    assert relabel(labels, {"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port1"}) == labels
    assert relabel(labels, {"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port2"}) is None
    assert relabel(labels, {"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port1"}) is None
    assert relabel(labels, {"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port2"}) == labels


def prometheus_sum64(text: str, modulus: int) -> int:
    # The specification: big-endian integer of the last 8 bytes of the MD5 sum.
    return int.from_bytes(hashlib.md5(text.encode()).digest()[8:], "big") % modulus


def test_hashmod_known_values() -> None:
    assert relabel({"c": "baz"}, {"source_labels": ["c"], "target_label": "d", "action": "hashmod", "modulus": 1000}) == {
        "c": "baz",
        "d": "976",
    }
    assert relabel({"a": "foo\nbar"}, {"source_labels": ["a"], "target_label": "b", "action": "hashmod", "modulus": 1000})[
        "b"
    ] == "734"  # type: ignore[index]


@pytest.mark.parametrize("value", ["10.0.0.1:9100", "", "ünïcode", "a;b"])
@pytest.mark.parametrize("modulus", [1, 3, 7, 2**64 - 1])
def test_hashmod_matches_specification(value: str, modulus: int) -> None:
    out = relabel({"v": value}, {"source_labels": ["v"], "target_label": "h", "action": "hashmod", "modulus": modulus})
    assert out is not None and out["h"] == str(prometheus_sum64(value, modulus))


def test_labelmap() -> None:
    out = relabel({"a": "foo", "b1": "bar", "b2": "baz"}, {"regex": "(b.*)", "replacement": "bar_${1}", "action": "labelmap"})
    assert out == {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"}
    meta = {"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"}
    out = relabel(meta, {"regex": "__meta_(my.*)", "replacement": "${1}", "action": "labelmap"})
    assert out == {**meta, "my_bar": "aaa", "my_baz": "bbb"}


def test_labeldrop_and_labelkeep() -> None:
    labels = {"a": "foo", "b1": "bar", "b2": "baz"}
    assert relabel(labels, {"regex": "(b.*)", "action": "labelkeep"}) == {"b1": "bar", "b2": "baz"}
    assert relabel(labels, {"regex": "(b.*)", "action": "labeldrop"}) == {"a": "foo"}


def test_lowercase_and_uppercase() -> None:
    out = relabel(
        {"foo": "bAr123Foo"},
        {"source_labels": ["foo"], "action": "uppercase", "target_label": "foo_uppercase"},
        {"source_labels": ["foo"], "action": "lowercase", "target_label": "foo_lowercase"},
    )
    assert out == {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"}


def test_drop_after_labeldrop_sequence() -> None:
    labels = {"__meta_kubernetes_pod_container_port_name": "foo", "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091"}
    out = relabel(
        labels,
        {"regex": "^__meta_kubernetes_pod_container_port_name$", "action": "labeldrop"},
        {"source_labels": ["__meta_kubernetes_pod_annotation_XXX_metrics_port"], "regex": "(.+)", "action": "replace",
         "replacement": "metrics", "target_label": "__meta_kubernetes_pod_container_port_name"},
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "^metrics$", "action": "keep"},
    )
    assert out == {
        "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
        "__meta_kubernetes_pod_container_port_name": "metrics",
    }


def test_apply_does_not_modify_its_input() -> None:
    labels = {"a": "1"}
    relabel(labels, {"target_label": "a", "replacement": "2"})
    assert labels == {"a": "1"}


def test_action_is_case_insensitive() -> None:
    assert rule(action="Keep").action == "keep"


def test_defaults() -> None:
    config = rule(target_label="x")
    assert (config.action, config.separator, config.regex, config.replacement) == ("replace", ";", "(.*)", "$1")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "hashmod", "target_label": "x"}, "relabel configuration for hashmod requires non-zero modulus"),
        ({"action": "replace"}, "relabel configuration for replace action requires 'target_label' value"),
        ({"action": "uppercase"}, "relabel configuration for uppercase action requires 'target_label' value"),
        ({"action": "replace", "target_label": "a-b"}, "\"a-b\" is invalid 'target_label' for replace action"),
        ({"action": "lowercase", "target_label": "${1}"}, "\"${1}\" is invalid 'target_label' for lowercase action"),
        ({"action": "lowercase", "target_label": "x", "replacement": "y"}, "'replacement' can not be set for lowercase action"),
        ({"action": "labelmap", "replacement": "a-$1"}, "\"a-$1\" is invalid 'replacement' for labelmap action"),
        ({"action": "keepequal", "target_label": "x", "regex": "a"}, "keepequal action requires only 'source_labels' and"),
        ({"action": "labeldrop", "source_labels": []}, "labeldrop action requires only 'regex', and no other fields"),
        ({"action": "labelkeep", "target_label": "x"}, "labelkeep action requires only 'regex', and no other fields"),
        ({"action": "explode"}, 'unknown relabel action "explode"'),
        ({"source_labels": ["not-a-name"], "target_label": "x"}, '"not-a-name" is not a valid label name'),
        ({"regex": "a(", "target_label": "x"}, "error parsing regexp"),
    ],
)
def test_validation(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rule(**fields)
    assert message in str(caught.value)


# --- RE2 patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("(?i)foo", ["FOO", "foo"], ["fooo"]),
        ("a(?i)b|c", ["aB", "C"], ["Ab", "b"]),
        ("(?P<x>a+)b", ["aab"], ["b"]),
        ("(?<x>a+)b", ["aab"], ["b"]),
        ("[[:digit:]]+x", ["12x"], ["ax"]),
        (r"\Qa.b\E", ["a.b"], ["axb"]),
        ("x{,3}", ["x{,3}"], ["xxx"]),
        (r"\d+", ["123"], ["١٢٣"]),  # \d is ASCII in RE2
        (r"\x{41}\101", ["AA"], ["A"]),
        ("(?m)a$\nb", ["a\nb"], []),
        ("a{2,3}?", ["aa", "aaa"], ["a"]),
    ],
)
def test_re2_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_re2(pattern)
    for text in matches:
        assert regex.fullmatch(text), (pattern, text, translate_re2(pattern))
    for text in misses:
        assert not regex.fullmatch(text), (pattern, text, translate_re2(pattern))


@pytest.mark.parametrize(
    "pattern", ["(?=a)", "(?!a)", "(?<=a)b", r"(a)\1", "(?P=x)", "a**", "a++", r"\pL", "(?U)a", "(", ")", "[a", "a{1001}", "*"]
)
def test_re2_rejects(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_re2(pattern)
