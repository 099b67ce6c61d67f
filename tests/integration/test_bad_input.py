"""A corpus of broken manifests: exit 1 naming file:line in one line, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli.main import main
from tests.conftest import Orch

GOOD = """\
apiVersion: orch/v1
kind: Agent
metadata: {name: executor}
spec: {command: "sleep 1000"}
"""

CORPUS: dict[str, bytes] = {
    "alias-bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "python-object-tag": b"!!python/object/apply:os.system ['touch /tmp/orch-pwned']\n",
    "custom-tag": b"apiVersion: orch/v1\nkind: Agent\nmetadata: !thing {name: x}\n",
    "invalid-utf8": GOOD.encode().replace(b"sleep", b"sl\xff\xfeep"),
    "deep-nesting": b"spec: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "huge": b"# " + b"x" * (2 * 1024 * 1024) + b"\n",
    "yaml-syntax": b"apiVersion: orch/v1\nkind: Agent\nmetadata: {name: x\n",
    "not-a-mapping": b"- just\n- a list\n",
    "wrong-types": b"apiVersion: orch/v1\nkind: Agent\nmetadata: {name: 42}\n"
    b"spec: {command: [1], restartPolicy: 7, env: [a]}\n",
    "unknown-field": GOOD.encode() + b"  bogus: 1\n",
    "bad-duration": GOOD.encode().replace(b'sleep 1000"}', b'sleep", crashLoop: {window: 5x}}'),
    "bad-regex": GOOD.encode().replace(b'1000"}', b"1000\", ignore: ['([']}"),
    "bad-name": GOOD.encode().replace(b"executor", b"Executor_1"),
    "duplicate": (GOOD + "---\n" + GOOD).encode(),
    "unknown-kind": GOOD.encode().replace(b"kind: Agent", b"kind: Pod"),
    "empty": b"",
}


def snapshot(orch: Orch) -> object:
    return [
        (i["metadata"]["name"], i["metadata"]["generation"], i["spec"])
        for i in orch.json("get", "agents")["items"]
    ]


def apply_in_process(orch: Orch, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`orch apply -f PATH` run by this process (a CLI process per file costs a second under
    load); its exit code and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["--state-dir", str(orch.state_dir), "--socket", orch.socket, "apply", "-f", str(path)]
        )
    code = exit_info.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


@pytest.mark.tmux
def test_broken_manifests_are_refused_and_change_nothing(
    orch: Orch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = orch.workdir / "team.yaml"
    good.write_text(GOOD)
    orch.run("apply", "-f", str(good))
    before = snapshot(orch)
    for name, content in CORPUS.items():
        path = orch.workdir / f"{name}.yaml"
        path.write_bytes(content)
        code, stderr = apply_in_process(orch, path, capsys)
        assert code == 1, (name, stderr)
        assert "Traceback" not in stderr, name
        assert stderr.count("\n") == 1, (name, stderr)
        assert str(path) in stderr, (name, stderr)
        if name not in ("huge", "empty"):
            assert f"{path}:" in stderr, (name, stderr)
    # ... and as its own process: exit 1 and the one line
    result = orch.run("apply", "-f", str(orch.workdir / "yaml-syntax.yaml"), check=False)
    assert (result.returncode, result.stderr.count("\n")) == (1, 1), result.stderr
    assert not Path("/tmp/orch-pwned").exists()
    assert snapshot(orch) == before
    print(f"\nbad input: {len(CORPUS)} hand-written manifests refused, nothing changed")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["apiVersion", "kind", "metadata", "spec", "name", "command", "steps", "x"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=yaml_values)
def test_random_documents_never_crash_apply(
    tmp_path_factory: pytest.TempPathFactory, document: object, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "m.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--state-dir",
                str(folder / "state"),
                "--socket",
                "orch-fuzz-none",
                "diff",
                "-f",
                str(path),
            ]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code in (0, 1), err
    assert "Traceback" not in err and "internal error" not in err
    if err:  # invalid: one line naming the file (a valid one is a diff, exit 1 as kubectl's)
        assert err.count("\n") == 1 and str(path) in err
