"""Label selectors: parsing, printing, matching and upstream's exact error messages.

Cases marked "upstream" are taken from k8s.io/apimachinery/pkg/labels/selector_test.go; the
error messages are the ones kube-apiserver returns in a 400 for ``?labelSelector=``. Hypothesis
checks that printing round-trips and that matching agrees with a direct reading of each term.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from k3py.api.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    from_label_selector_object,
    label_key_errors,
    label_selector_from_set,
    label_value_errors,
    new_requirement,
    parse_label_selector,
)

NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
BAD_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
BAD_PREFIX = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
TWO_SLASHES = (
    "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
    "'example.com/MyName')"
)

# -- parsing and printing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    # upstream TestSelectorParse: printing gives back the input without its spaces
    ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"],
)
def test_upstream_good_strings_print_back_without_spaces(text: str) -> None:
    assert str(parse_label_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("\rx", "x"),
        ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x  notin\t\t(abc,def)", "x notin (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ()", "x in ()"),
        ("x in (,)", "x in ()"),
        ("x in (,,a)", "x in (,a)"),
        ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("x in (def,abc,abc)", "x in (abc,def)"),  # a set: sorted, de-duplicated
        ("x,y in (a)", "x,y in (a)"),
        ("x=a,a=x", "a=x,x=a"),  # requirements are sorted by key
        ("y==b,x!=c", "x!=c,y==b"),
        ("notin=in", "notin=in"),  # keywords are identifiers where a value or key is expected
        ("in in (in)", "in in (in)"),
        ("x=in,y notin (notin)", "x=in,y notin (notin)"),
        ("j>3,i<04", "i<04,j>3"),
        ("a.b/c-d_e=F.g-H_i", "a.b/c-d_e=F.g-H_i"),
        ("x=a,x!=b", "x=a,x!=b"),
        ("a=b \x00garbage here", "a=b"),  # upstream's byte reader: a NUL where a token starts ends the input
    ],
)
def test_parse_and_print(text: str, printed: str) -> None:
    assert str(parse_label_selector(text)) == printed


def test_parse_keeps_each_requirement() -> None:
    selector = parse_label_selector("env in (prod, staging),!canary,tier,app=web,release!=1,x>5,y<7")
    assert selector.requirements == (
        Requirement("app", Operator.EQUALS, ("web",)),
        Requirement("canary", Operator.DOES_NOT_EXIST),
        Requirement("env", Operator.IN, ("prod", "staging")),
        Requirement("release", Operator.NOT_EQUALS, ("1",)),
        Requirement("tier", Operator.EXISTS),
        Requirement("x", Operator.GREATER_THAN, ("5",)),
        Requirement("y", Operator.LESS_THAN, ("7",)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # upstream TestSelectorParse bad strings
        ("x=a||y=b", f'unable to parse requirement: values[0][x]: Invalid value: "a||y": {BAD_VALUE}'),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, "
            "the value must be an integer",
        ),
        # structure
        (",", "found ',', expected: !, identifier, or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a,=b", "found '=', expected: identifier after ','"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a (b)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
        ("x in", "unable to parse requirement: found '' expected: '('"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("x in (a),", "found '', expected: identifier after ','"),
        ("x in (a)b", "found 'b', expected: ',' or 'end of string'"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ("a=b\x00c", "found 'c', expected: ',' or 'end of string'"),  # ... and within a token splits it
        # keys
        ("x/y/z", f'unable to parse requirement: <nil>: Invalid value: "x/y/z": {TWO_SLASHES}'),
        ("-x", f'unable to parse requirement: <nil>: Invalid value: "-x": {NAME_PART}'),
        ("x_", f'unable to parse requirement: <nil>: Invalid value: "x_": {NAME_PART}'),
        (
            "k" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": name part must be no '
            "more than 63 bytes",
        ),
        ("/x", 'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty'),
        (
            "x/",
            'unable to parse requirement: <nil>: Invalid value: "x/": name part must be non-empty; '
            f"{NAME_PART}",
        ),
        (
            "Example.com/x",
            f'unable to parse requirement: <nil>: Invalid value: "Example.com/x": {BAD_PREFIX}',
        ),
        ("é=1", f'unable to parse requirement: <nil>: Invalid value: "é": {NAME_PART}'),
        ("tab\x01=1", f'unable to parse requirement: <nil>: Invalid value: "tab\\x01": {NAME_PART}'),
        # values
        ("x=-a", f'unable to parse requirement: values[0][x]: Invalid value: "-a": {BAD_VALUE}'),
        (
            "x=" + "v" * 64,
            f'unable to parse requirement: values[0][x]: Invalid value: "{"v" * 64}": must be '
            "no more than 63 bytes",
        ),
        (
            "x in (a@,b@)",
            f'unable to parse requirement: [values[0][x]: Invalid value: "a@": {BAD_VALUE}, '
            f'values[1][x]: Invalid value: "b@": {BAD_VALUE}]',
        ),
        (
            "j>-3",
            f'unable to parse requirement: values[0][j]: Invalid value: "-3": {BAD_VALUE}',
        ),  # still a label value
        (
            "x>1.5",
            "unable to parse requirement: values[0]: Invalid value: \"1.5\": for 'Gt', 'Lt' operators, "
            "the value must be an integer",
        ),
        (
            "x<99999999999999999999",
            "unable to parse requirement: values[0]: Invalid value: "
            "\"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x>",
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the "
            "value must be an integer",
        ),
    ],
)
def test_bad_selectors_are_refused_with_upstreams_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert caught.value.message == message
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    ["a", "a=b", "a==b", "a!=b", "a in (b)", "a notin (b)", "!a", "a>1", "a<1", " a = b , c "],
)
def test_whitespace_is_allowed_around_tokens(text: str) -> None:
    spaced = parse_label_selector(text.replace(" ", "  \t"))
    assert spaced == parse_label_selector(text)


def test_empty_selector() -> None:
    assert parse_label_selector("").empty
    assert parse_label_selector("  \t\n").empty
    assert not parse_label_selector("a").empty
    assert parse_label_selector("").matches({"any": "thing"})


# -- matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        # upstream TestSelectorMatches
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
        # set-based
        ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
        ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
        ("x notin (),y", {"y": ""}, True),
        ("x notin (),!y", {"y": ""}, False),
        ("!x,y", {"y": ""}, True),
        ("x in ()", {"y": "baz"}, False),
        ("x in ()", {"x": ""}, True),
        ("x notin (a)", {}, True),  # notin and != match a missing key
        ("x!=a", {}, True),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        # integer comparisons need integers on both sides
        ("z>1", {"z": "v2"}, False),
        ("z>1", {"z": "+2"}, True),
        ("z<1", {"z": "-2"}, True),
        ("z>1", {"z": " 2"}, False),
        ("z>1", {"z": "2_0"}, False),
        ("z>1", {"z": "9223372036854775808"}, False),  # out of int64
        ("z>1", {}, False),
    ],
)
def test_matching(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(text).matches(labels) is matches


def test_requires_exact_match() -> None:
    selector = parse_label_selector("a=1,b in (2),c in (3,4),d!=5,e")
    assert selector.requires_exact_match("a") == "1"
    assert selector.requires_exact_match("b") == "2"
    assert selector.requires_exact_match("c") is None
    assert selector.requires_exact_match("d") is None
    assert selector.requires_exact_match("e") is None
    assert selector.requires_exact_match("f") is None


def test_selector_from_a_set() -> None:
    selector = label_selector_from_set({"tier": "web", "app": "shop"})
    assert str(selector) == "app=shop,tier=web"
    assert selector.matches({"app": "shop", "tier": "web", "extra": "x"})
    assert not selector.matches({"app": "shop"})
    assert label_selector_from_set({}).empty


# -- metav1.LabelSelector objects ---------------------------------------------------------------


def test_label_selector_object_conversion() -> None:
    selector = from_label_selector_object(
        {
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "qa"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "owner", "operator": "Exists"},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env in (prod,qa),owner,tier=front,zone notin (b)"
    assert selector.matches({"app": "web", "tier": "front", "env": "qa", "owner": "me"})
    assert not selector.matches({"app": "web", "tier": "front", "env": "qa", "owner": "me", "canary": ""})
    assert not selector.matches({"app": "web", "tier": "front", "env": "qa", "owner": "me", "zone": "b"})


def test_nil_selector_selects_nothing_and_empty_selects_everything() -> None:
    nothing = from_label_selector_object(None)
    assert nothing == LabelSelector(nothing=True)
    assert not nothing.matches({})
    assert not nothing.empty
    assert str(nothing) == ""
    everything = from_label_selector_object({})
    assert everything.empty
    assert everything.matches({"a": "b"})
    assert from_label_selector_object({"matchLabels": {}, "matchExpressions": []}).empty


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]},
            'values: Invalid value: []string{"x", "y"}: '
            "values set must be empty for exists and does not exist",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]},
            '"in" is not a valid label selector operator',
        ),
        ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": {NAME_PART}'),
        ({"matchLabels": {"a": "b c"}}, f'values[0][a]: Invalid value: "b c": {BAD_VALUE}'),
        (
            {"matchExpressions": [{"key": "-a", "operator": "In"}]},
            f"[key: Invalid value: \"-a\": {NAME_PART}, values: Invalid value: []string(nil): for 'in', "
            "'notin' operators, values set can't be empty]",
        ),
    ],
)
def test_label_selector_object_errors(obj: dict[str, object], message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        from_label_selector_object(obj)
    assert caught.value.message == message


def test_new_requirement_uses_the_given_path() -> None:
    with pytest.raises(SelectorError) as caught:
        new_requirement("a", Operator.EQUALS, ["x", "y"], path="spec.selector")
    assert caught.value.message == (
        'spec.selector.values: Invalid value: []string{"x", "y"}: '
        "exact-match compatibility requires one single value"
    )


# -- key and value rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a", "A", "1", "a.b", "a-b_c.d", "k" * 63, "example.com/a", "a.b.c/d", "x" * 253 + "/n", "123/456"],
)
def test_valid_keys(key: str) -> None:
    assert label_key_errors(key) == []


def test_prefix_longer_than_253_bytes() -> None:
    assert label_key_errors("x" * 254 + "/n") == ["prefix part must be no more than 253 bytes"]


@pytest.mark.parametrize("value", ["", "a", "A-b_c.d", "v" * 63, "0"])
def test_valid_values(value: str) -> None:
    assert label_value_errors(value) == []


def test_long_bad_value_reports_both_problems() -> None:
    assert label_value_errors("-" * 64) == ["must be no more than 63 bytes", BAD_VALUE]


# -- properties ---------------------------------------------------------------------------------

_NAME = st.from_regex(r"[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_KEY = st.one_of(
    _NAME,
    st.builds(
        lambda p, n: f"{p}/{n}", st.from_regex(r"[a-z0-9]{1,5}(\.[a-z0-9]{1,5}){0,2}", fullmatch=True), _NAME
    ),
)
_VALUE = st.one_of(st.just(""), _NAME)
_INT = st.integers(0, 1000).map(str)  # a bound is a label value too: no sign


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from(list(Operator)))
    key = draw(_KEY)
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return Requirement(key, op)
    if op in (Operator.IN, Operator.NOT_IN):
        return Requirement(key, op, tuple(sorted(draw(st.sets(_VALUE, min_size=1, max_size=3)))))
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return Requirement(key, op, (draw(_INT),))
    return Requirement(key, op, (draw(_VALUE),))


def _reference_match(r: Requirement, labels: dict[str, str]) -> bool:
    present = r.key in labels
    value = labels.get(r.key)
    if r.operator in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
        return present and value in r.values
    if r.operator in (Operator.NOT_IN, Operator.NOT_EQUALS):
        return not present or value not in r.values
    if r.operator is Operator.EXISTS:
        return present
    if r.operator is Operator.DOES_NOT_EXIST:
        return not present
    if not present or value is None or not value.lstrip("+-").isdigit():
        return False
    if r.operator is Operator.GREATER_THAN:
        return int(value) > int(r.values[0])
    return int(value) < int(r.values[0])


@given(st.lists(_requirements(), max_size=5))
def test_printing_round_trips(requirements: list[Requirement]) -> None:
    text = ",".join(str(r) for r in requirements)
    parsed = parse_label_selector(text)
    assert sorted(parsed.requirements, key=str) == sorted(requirements, key=str)
    assert parse_label_selector(str(parsed)) == parsed


@given(
    st.lists(_requirements(), max_size=4),
    st.dictionaries(_KEY, st.one_of(_VALUE, _INT), max_size=4),
)
def test_matching_is_the_conjunction_of_the_terms(
    requirements: list[Requirement], labels: dict[str, str]
) -> None:
    selector = parse_label_selector(",".join(str(r) for r in requirements))
    assert selector.matches(labels) == all(_reference_match(r, labels) for r in requirements)


@given(st.text(alphabet=st.sampled_from("ab=!(),<> \tin1-./_é\x00"), max_size=20))
def test_any_text_parses_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse_label_selector(text)
    except SelectorError as err:
        assert err.message
    else:
        assert parse_label_selector(str(selector)) == selector
