from __future__ import annotations

from pathlib import Path

from conformance.runner import CONFORMANCE_LABEL, ginkgo_command, upstream_phases


def test_a_focus_narrows_the_conformance_tests_in_both_phases() -> None:
    phases = upstream_phases(r"\[sig-apps\]", "", 4, CONFORMANCE_LABEL)
    for phase in phases:
        command = ginkgo_command(
            Path("/ginkgo"), Path("/e2e.test"), Path("/k.yaml"), phase=phase, report_dir=Path("/r")
        )
        assert "--label-filter=Conformance" in command
        assert command.index("--label-filter=Conformance") < command.index("/e2e.test")
    assert [p.focus for p in phases] == [
        r"\[sig-apps\]",
        r"(?:\[sig-apps\]).*\[Serial\]|\[Serial\].*(?:\[sig-apps\])",
    ]
    plain = upstream_phases(r"\[sig-apps\]", "", 4)[0]
    assert not any(
        arg.startswith("--label-filter")
        for arg in ginkgo_command(
            Path("/ginkgo"), Path("/e2e.test"), Path("/k.yaml"), phase=plain, report_dir=Path("/r")
        )
    )
