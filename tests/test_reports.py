"""The reports of ``gradverify check``: the JSON against its shipped JSON Schema, the JUnit XML
against junit-10.xsd (tests/schemas, the schema CI servers and pytest's own tests use), and
the single-file HTML page. One real run produces every kind of outcome: PASS, a wrong
gradient (failure), a raising kernel (error), INCONCLUSIVE examples, and an interrupted run."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from gradverify import reports
from gradverify.cli import main
from gradverify.runner import CheckResult, TargetResult

jsonschema = pytest.importorskip("jsonschema")
xmlschema = pytest.importorskip("xmlschema")

JUNIT_XSD = Path(__file__).resolve().parent / "schemas" / "junit-10.xsd"

MIXED_OPS = '''
import numpy as np
import gradverify.engine as tf
from gradverify.engine import meta


@tf.op("RepBadSoftplus", inputs={"x": meta.reals}, api=None,
       reference=lambda x: np.logaddexp(0.0, x))
def rep_bad_softplus(x):
    return np.logaddexp(0.0, x)


@rep_bad_softplus.gradient
def _(op, grad):
    return grad * tf.sigmoid(-op.inputs[0])


@tf.op("RepRaise", inputs={"x": meta.reals}, api=None, reference=lambda x: x)
def rep_raise(x):
    raise ValueError("kernel refuses <all> & every input")


@rep_raise.gradient
def _(op, grad):
    return grad


# Its output overflows everywhere: no numeric derivative exists, every example INCONCLUSIVE.
@tf.op("RepOverflow", inputs={"x": meta.reals}, api=None,
       reference=lambda x: np.exp(x * 0.0 + 1000.0))
def rep_overflow(x):
    return np.exp(x * 0.0 + 1000.0)


@rep_overflow.gradient
def _(op, grad):
    return grad * 0.0
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One check run with a pass, a failure, an error and inconclusive examples."""
    d = tmp_path_factory.mktemp("reports")
    (d / "mixed_ops.py").write_text(MIXED_OPS)
    args = ["check", str(d / "mixed_ops.py"), "--ops", "RepBadSoftplus,RepRaise,RepOverflow,Square",
            "--properties", "metadata,shapes,gradient,gradient_order2", "--examples", "6",
            "--mode", "full",
            "--jobs", "2", "--seed", "3", "--json", str(d / "r.json"), "--junit",
            str(d / "r.xml"), "--report-dir", str(d / "html"), "--quiet", "--timings"]
    status = main(args)
    yield d, status
    from gradverify.engine import registry
    for name in ("RepBadSoftplus", "RepRaise", "RepOverflow"):
        if name in registry.list_ops():
            registry.unregister(name)
    sys.modules.pop("gradverify_user_mixed_ops", None)


def test_the_run_has_every_kind_of_outcome(run):
    d, status = run
    assert status == 1
    doc = json.loads((d / "r.json").read_text())
    verdicts = {(t["name"], c["check"]): (c["verdict"], c["error"])
                for t in doc["targets"] for c in t["checks"]}
    assert verdicts[("RepBadSoftplus", "gradient")] == ("FAIL", False)
    assert verdicts[("RepRaise", "shapes")] == ("FAIL", True)
    assert verdicts[("RepRaise", "gradient")] == ("FAIL", True)
    assert verdicts[("Square", "gradient")] == ("PASS", False)
    assert verdicts[("RepOverflow", "gradient")] == ("INCONCLUSIVE", False)


def test_json_report_is_valid_against_the_shipped_schema(run):
    d, _ = run
    schema = reports.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = json.loads((d / "r.json").read_text())
    jsonschema.validate(doc, schema)
    # The schema has teeth: a wrong verdict or a missing field is rejected.
    broken = json.loads((d / "r.json").read_text())
    broken["targets"][0]["checks"][0]["verdict"] = "MAYBE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    del doc["complete"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_junit_is_valid_with_errors_failures_timestamp_and_hostname(run):
    d, _ = run
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(d / "r.xml"))
    import xml.etree.ElementTree as ET
    root = ET.parse(d / "r.xml").getroot()
    suite = root.find("testsuite")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", suite.get("timestamp"))
    assert suite.get("hostname")
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    raised = cases[("gradverify.RepRaise", "shapes")]
    assert raised.find("error") is not None and raised.find("failure") is None
    assert "ValueError: kernel refuses <all> & every input" in raised.find("error").text
    wrong = cases[("gradverify.RepBadSoftplus", "gradient")]
    assert wrong.find("failure") is not None and wrong.find("error") is None
    assert int(root.get("errors")) >= 1 and int(root.get("failures")) >= 1
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["seed"] == "3" and props["ops"] == "RepBadSoftplus, RepRaise, RepOverflow, Square"
    assert props["version.numpy"] and props["complete"] == "true"


def test_the_schemas_reject_what_ci_servers_reject():
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    results = [TargetResult("Op", "op", [CheckResult("Op", "shapes", "PASS", 1)])]
    tree = reports.junit_tree(results, {"seed": 0})
    assert schema.is_valid(tree.getroot())
    tree.getroot().set("skipped", "0")   # what the old report wrote on <testsuites>
    assert not schema.is_valid(tree.getroot())


def test_an_interrupted_report_is_valid_and_marked(tmp_path):
    results = [TargetResult("Op", "op", [CheckResult("Op", "shapes", "PASS", 1)])]
    state = reports.RunState(complete=False, interrupted_by="SIGTERM",
                             not_run=[("Op", "gradient")], meta=reports.run_metadata())
    reports.write_junit(tmp_path / "j.xml", results, {"seed": 0}, state=state)
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(tmp_path / "j.xml"))
    text = (tmp_path / "j.xml").read_text()
    assert 'name="run interrupted"' in text and "Op[gradient]" in text
    doc = reports.json_document(results, [], {"seed": 0}, state=state)
    jsonschema.validate(doc, reports.json_schema())
    assert doc["complete"] is False and doc["interrupted"]["signal"] == "SIGTERM"


def test_html_is_one_file_with_every_check_and_the_run(run):
    d, _ = run
    assert [p.name for p in (d / "html").iterdir()] == ["index.html"]
    page = (d / "html" / "index.html").read_text()
    # images embedded, nothing loaded from elsewhere
    assert "data:image/png;base64," in page
    assert not re.search(r'src="(?!data:)', page) and "<link" not in page
    # the run: command line, seed, timestamp, versions, platform
    for fact in ("mixed_ops.py --ops RepBadSoftplus,RepRaise,RepOverflow,Square", "<b>seed</b>",
                 "time (UTC)", "numpy ", "scipy ", "hypothesis ", "gradverify ", "platform"):
        assert fact in page.replace("<th>", "<b>").replace("</th>", "</b>"), fact
    # every check is listed, passes collapsed
    doc = json.loads((d / "r.json").read_text())
    for t in doc["targets"]:
        for c in t["checks"]:
            assert f"<td>{t['name']}</td><td>{c['check']}</td>" in page, (t["name"], c)
    n_pass = doc["summary"]["PASS"]
    assert f"<details><summary>{n_pass} passing checks</summary>" in page
    # the raising kernel's message is escaped, not markup
    assert "kernel refuses &lt;all&gt; &amp; every input" in page


def test_html_inconclusive_rows_say_why_in_words(run):
    d, _ = run
    page = (d / "html" / "index.html").read_text()
    rows = re.findall(r'<td class="INCONCLUSIVE">INCONCLUSIVE</td><td>([^<]*)</td>', page)
    assert rows and all(len(r.split()) >= 4 for r in rows), rows


def test_no_heatmap_for_a_single_entry_jacobian():
    from gradverify import plots
    if not plots.available():
        pytest.skip("matplotlib not installed")
    import io
    from types import SimpleNamespace

    import numpy as np
    check = SimpleNamespace(tolerance=1e-8, arrays={"analytic": np.array([[0.3]]),
                                                    "numeric": np.array([[0.7]])})
    assert plots.jacobian_plot(None, check, io.BytesIO()) is None
