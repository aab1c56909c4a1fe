"""The CEL evaluator: CEL's semantics (64-bit overflow, truncating division, heterogeneous
equality, error absorption by ``&&``/``||``), macros, construction of objects as dicts, lazy
activations, the cost limit, and, generated, integer arithmetic against Python's with int64
bounds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.cel import DYN, CelEvalError, CelType, Env, compile, schema_type
from k3py.api.cel.types import DOUBLE, INT, STRING, list_of, map_of
from k3py.api.schema import Schemas

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ENV = Env({"x": DYN, "n": INT, "s": STRING, "xs": list_of(INT), "m": map_of(STRING, DYN)})


def run(expression: str, env: Env = ENV, **activation: object) -> object:
    return compile(expression, env).evaluate(activation)


def failure(expression: str, env: Env = ENV, **activation: object) -> str:
    with pytest.raises(CelEvalError) as caught:
        run(expression, env, **activation)
    return str(caught.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ("7 % -2", 1),
        ("7u / 2u", 3),
        ("1.0 / 0.0", float("inf")),
        ("'ab' + 'c'", "abc"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("'a' < 'b' && 2 > 1.5 && 3u >= 3", True),
        ("2 in [1, 2]", True),
        ("'a' in {'a': 1}", True),
        ("size('héllo')", 5),
        ("'abc'.matches('^a.c$')", True),
        ("'abc'.contains('b') && 'abc'.startsWith('a') && 'abc'.endsWith('c')", True),
        ("int('-12') + int(2.9) + int(-2.9)", -12),
        ("uint(3) + 1u", 4),
        ("double('1.5') * 2.0", 3.0),
        ("string(1.0) + string(-2) + string(true) + string(1e6)", "1-2true1e+06"),
        ("bool('false')", False),
        ("type(1) == int && type('a') == string && type([]) == list", True),
        ("dyn(1) == 1.0 && dyn(2u) == 2 && dyn(1.5) != 1", True),
        ("dyn([1, dyn([2.0])]) == [1.0, dyn([2])]", True),
        ("{'a': [1]} == {'a': [1]} && {'a': 1} != {'a': 2}", True),
        ("null == null", True),
        ("true ? 'y' : 'n'", "y"),
        ("[1, 2, 3].all(v, v > 0)", True),
        ("[1, 2, 3].exists(v, v > 2)", True),
        ("[1, 2, 3].exists_one(v, v > 1)", False),
        ("[1, 2, 3].map(v, v * 2)", [2, 4, 6]),
        ("[1, 2, 3].map(v, v > 1, v * 10)", [20, 30]),
        ("[1, 2, 3].filter(v, v % 2 == 1)", [1, 3]),
        ("{'a': 1, 'b': 2}.filter(k, k == 'b')", ["b"]),
        ("{'a': 1}.all(k, v, k == 'a' && v == 1)", True),
        ("[5, 6].transformList(i, v, i + v)", [5, 7]),
        ("{'a': 1}.transformMap(k, v, v * 2)", {"a": 2}),
        ("has({'a': 1}.a) && !has({'a': 1}.b)", True),
        ("{'a': {'b': 1}}.?a.?b.orValue(0) + {'a': 1}.?c.orValue(5)", 6),
        ("optional.none().hasValue()", False),
        ("[?optional.of(1), ?optional.none()]", [1]),
        ("{'a': 1, ?'b': optional.none()}", {"a": 1}),
        ("duration('1h30m').getMinutes()", 90),
        ("string(duration('1.5s'))", "1.5s"),
        ("timestamp('2024-03-01T10:00:00Z') + duration('-1h')", "2024-03-01T09:00:00Z"),
        ("timestamp('2024-03-01T10:00:00+02:00').getHours()", 8),
        ("timestamp('2024-03-01T10:00:00Z').getDayOfWeek()", 5),
        ("'Hello'.lowerAscii() + 'x'.upperAscii()", "helloX"),
        ("'a-b-c'.replace('-', '+', 1)", "a+b-c"),
        ("'a,b,c'.split(',', 2)", ["a", "b,c"]),
        ("['a', 'b'].join(', ')", "a, b"),
        ("'hello'.substring(1) + 'hello'.substring(1, 2)", "elloe"),
        ("'  x '.trim()", "x"),
        ("'banana'.indexOf('an') + 'banana'.lastIndexOf('an')", 4),
        ("'%s has %d items costing %.2f'.format([dyn('cart'), 3, 9.5])", "cart has 3 items costing 9.50"),
        ("'x1y22'.find('[0-9]+')", "1"),
        (
            "'/metadata/labels/' + jsonpatch.escapeKey('k8s.io/my~label')",
            "/metadata/labels/k8s.io~1my~0label",
        ),
        ("'x1y22'.findAll('[0-9]+')", ["1", "22"]),
        ("[3, 1, 2].max() + [3, 1, 2].min() + [3, 1, 2].sum()", 10),
        ("[1, 2, 2].isSorted() && ![2, 1].isSorted()", True),
        ("[1, 2, 1].indexOf(1) + [1, 2, 1].lastIndexOf(1)", 2),
        ("[3, 1, 2].sort() + [1, 1, 2].distinct()", [1, 2, 3, 1, 2]),
        ("[[1], [2, 3]].flatten()", [1, 2, 3]),
        ("[1, 2, 3, 4].slice(1, 3)", [2, 3]),
        ("[3, 1, 2].sortBy(v, -v)", [3, 2, 1]),
        ("lists.range(3)", [0, 1, 2]),
        (
            "sets.contains([1, 2], [2]) && sets.intersects([1], [1, 3]) && sets.equivalent([1, 2], [2, 1])",
            True,
        ),
        ("url('https://a.example:8443/p?q=1&q=2').getQuery()", {"q": ["1", "2"]}),
        (
            "url('https://a.example:8443/p').getHostname() + url('https://a.example:8443/p').getPort()",
            "a.example8443",
        ),
        ("isURL('/path') && !isURL('no scheme')", True),
        ("ip('10.0.0.1').family() == 4 && ip('::1').isLoopback() && isIP('1.2.3.4') && !isIP('1.2.3')", True),
        (
            "cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))"
            " && !cidr('10.0.0.0/8').containsCIDR('11.0.0.0/16')",
            True,
        ),
        ("string(cidr('10.1.2.3/8').masked())", "10.0.0.0/8"),
        ("quantity('1') == quantity('1000m') && quantity('1.5Gi').isGreaterThan(quantity('1Gi'))", True),
        ("quantity('500m').add(quantity('1500m'))", "2"),
        ("quantity('2k').asInteger() + quantity('-1').sign()", 1999),
        ("isQuantity('1Gi') && !isQuantity('1 Gi')", True),
        ("semver('1.2.3').isLessThan(semver('1.10.0')) && semver('v1.2', true).minor() == 2", True),
        ("semver('1.0.0-alpha.1').compareTo(semver('1.0.0-alpha.beta')) + semver('2.0.0').major()", 1),
        ("isSemver('1.2.3-rc.1+build') && !isSemver('1.2')", True),
        ("format.dns1123Label().validate('good-name').hasValue()", False),
        ("format.dns1123Label().validate('Bad_Name').value().size()", 1),
        ("format.named('uuid').value().validate('nope')", ["does not match the UUID format"]),
        ("format.named('nope').hasValue()", False),
        ("!format.dns1123LabelPrefix().validate('prefix-').hasValue()", True),
    ],
)
def test_values(expression: str, expected: object) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("1 % 0", "modulus by zero"),
        ("9223372036854775807 + 1", "integer overflow"),
        ("-9223372036854775808 - 1", "integer overflow"),
        ("-9223372036854775808 / -1", "integer overflow"),
        ("0u - 1u", "unsigned integer overflow"),
        ("int(1e19)", "integer overflow"),
        ("uint(-1)", "unsigned integer overflow"),
        ("int('x')", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("{'a': 1}['b']", "no such key: b"),
        ("m.missing", "no such key: missing"),
        ("[1][2]", "index '2' out of range in list size '1'"),
        ("x + 1", "no such overload"),
        ("optional.none().value()", "optional.none() dereference"),
        ("'abc'.substring(5)", "index out of range: 5"),
        ("[].max()", "max called on empty list"),
        ("duration(x + '1x')", 'time: invalid duration "a1x"'),
        ("semver(x)", "Invalid semver: a"),
        ("quantity('1 Gi')", "quantities must match the regular expression"),
        ("[1, 2].all(v, 1 / (v - 1) > 0)", "division by zero"),
        ("{1: 'a', 1: 'b'}", "insert failed: key 1 already exists"),
        ("y", "no such attribute(s): y"),
    ],
)
def test_errors(expression: str, message: str) -> None:
    env = Env({**ENV.variables, "y": DYN})
    assert message in failure(expression, env, x="a", m={})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("false && 1 / 0 == 1", False),
        ("1 / 0 == 1 && false", False),
        ("true || 1 / 0 == 1", True),
        ("1 / 0 == 1 || true", True),
        ("x && false", False),  # a non-bool is an error, absorbed like one
        ("[0, 1].exists(v, 1 / v == 1)", True),
        ("[0, 1].all(v, 1 / v == 2)", False),
    ],
)
def test_errors_are_absorbed_the_cel_way(expression: str, expected: object) -> None:
    assert run(expression, x=1) == expected


def test_unabsorbed_errors_surface() -> None:
    assert failure("true && 1 / 0 == 1") == "division by zero"
    assert failure("1 / 0 == 1 || false") == "division by zero"
    assert failure("[0, 1].all(v, 1 / v == 1)") == "division by zero"


@given(INT64, INT64, st.sampled_from(["+", "-", "*", "/", "%"]))
def test_int_arithmetic_matches_python_within_int64(a: int, b: int, op: str) -> None:
    program = compile(f"x {op} n", ENV)
    if op in "/%" and b == 0:
        expected: int | None = None
    elif op == "/":
        quotient = abs(a) // abs(b)
        expected = quotient if (a < 0) == (b < 0) else -quotient
    elif op == "%":
        expected = (abs(a) % abs(b)) * (-1 if a < 0 else 1)
    else:
        expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    if expected is None or not -(2**63) <= expected < 2**63:
        with pytest.raises(CelEvalError):
            program.evaluate({"x": a, "n": b})
    else:
        assert program.evaluate({"x": a, "n": b}) == expected


@given(st.lists(st.integers(-5, 5), max_size=6), st.integers(-5, 5))
def test_macros_match_python(items: list[int], pivot: int) -> None:
    assert run("xs.all(v, v > n)", xs=items, n=pivot) == all(v > pivot for v in items)
    assert run("xs.exists(v, v > n)", xs=items, n=pivot) == any(v > pivot for v in items)
    assert run("xs.exists_one(v, v == n)", xs=items, n=pivot) == (items.count(pivot) == 1)
    expected = [v * 2 for v in items if v > pivot]
    assert run("xs.filter(v, v > n).map(v, v * 2)", xs=items, n=pivot) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_print_as_go_does_and_read_back(value: float) -> None:
    env = Env({"d": DOUBLE})
    text = compile("string(d)", env).evaluate({"d": value})
    assert isinstance(text, str)
    assert compile("double(string(d)) == d", env).evaluate({"d": value}) is True
    mantissa = text.lstrip("-").split("e")[0]
    assert not mantissa.endswith(".0") and ("e" in text) == (not 1e-4 <= abs(value) < 1e6 and value != 0)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_uint_arithmetic_stays_in_range(a: int, b: int) -> None:
    env = Env({})
    for op, expected in (("+", a + b), ("-", a - b), ("*", a * b)):
        program = compile(f"{a}u {op} {b}u", env)
        if 0 <= expected < 2**64:
            assert program.evaluate({}) == expected
        else:
            with pytest.raises(CelEvalError, match="unsigned integer overflow"):
                program.evaluate({})


class CountingMapping(Mapping[str, object]):
    """An activation value that computes its items on demand, like a policy's variables."""

    def __init__(self, data: dict[str, object]) -> None:
        self.data = data
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> object:
        self.reads.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("iterated")

    def __len__(self) -> int:
        raise AssertionError("sized")


def test_lazy_activations_are_read_only_where_the_expression_goes() -> None:
    variables = CountingMapping({"a": 1, "b": 2})
    env = Env({"variables": map_of(STRING, DYN), "other": DYN})
    program = compile("variables.a == 1 || variables.b == 2", env)
    assert program.evaluate({"variables": variables}) is True
    assert variables.reads == ["a"]
    assert compile("true || other", env).evaluate({}) is True


def test_objects_built_from_schemas_evaluate_to_dicts() -> None:
    node = Schemas.get().kind("apps", "v1", "Deployment")
    assert node is not None
    deployment: CelType = schema_type(node, "Object")
    env = Env({"object": deployment}, {"Object": deployment})
    program = compile("Object{spec: Object.spec{replicas: object.spec.replicas + 1}}", env)
    assert program.evaluate({"object": {"spec": {"replicas": 2}}}) == {"spec": {"replicas": 3}}
    patch = compile("[JSONPatch{op: 'replace', path: '/spec/replicas', value: 5}]", env).evaluate({})
    assert patch == [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    assert compile("has(object.spec.paused)", env).evaluate({"object": {"spec": {}}}) is False
    missing = compile("object.spec.replicas", env)
    with pytest.raises(CelEvalError, match="no such key: replicas"):
        missing.evaluate({"object": {"spec": {}}})


def test_cost_limit() -> None:
    program = compile("xs.map(a, xs.map(b, a * b)).size()", ENV)
    items = list(range(50))
    assert program.evaluate({"xs": items}, cost_limit=100_000) == 50
    with pytest.raises(CelEvalError, match="operation cancelled: actual cost limit exceeded"):
        program.evaluate({"xs": items}, cost_limit=1_000)
    with pytest.raises(CelEvalError, match="cost limit"):
        compile("xs.all(a, 1 / 0 == 1 || xs.all(b, true))", ENV).evaluate({"xs": items}, cost_limit=100)


def test_json_integers_stand_for_doubles() -> None:
    env = Env({"ratio": DOUBLE, "weights": list_of(DOUBLE)})
    program = compile("ratio > 0.5 && weights.all(w, w * 2.0 >= 2.0) && ratio / 2.0 == 0.5", env)
    assert program.evaluate({"ratio": 1, "weights": [1, 2]}) is True


def test_results_are_json_like() -> None:
    assert run("1u") == 1 and type(run("1u")) is int
    assert run("duration('90s')") == "90s"
    assert run("type(1)") == "int"
    assert run("optional.of({'a': [1u]})") == {"a": [1]}
