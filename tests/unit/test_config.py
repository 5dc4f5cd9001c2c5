"""irm.toml: found like ansible.cfg, each setting taken from the option, else the environment, else the
file, else irm's default; an unknown key or a wrong type names the file and line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_bad_input_corpus import _main


def _opened_by(journal: Path) -> list[str]:
    code, out, err = _main(["incident", "list", "--json", "--journal", str(journal)])
    assert code == 0, err
    return [i["opened_by"] for i in json.loads(out)]


def test_option_then_environment_then_file_then_default(tmp_path: Path) -> None:
    cfg = tmp_path / "irm.toml"
    from_file = tmp_path / "from-file.db"
    cfg.write_text(f'journal = "{from_file}"\noperator = "file-op"\n')
    env = {"IRM_CONFIG": str(cfg), "IRM_JOURNAL": "", "IRM_OPERATOR": ""}
    open_ = ["incident", "open", "--worm", "W", "--vector", "tcp/1"]
    assert _main(open_, env=env)[0] == 0  # both from the file
    assert _opened_by(from_file) == ["file-op"]
    from_env = tmp_path / "from-env.db"
    assert _main(open_, env={**env, "IRM_JOURNAL": str(from_env), "IRM_OPERATOR": "env-op"})[0] == 0
    assert _opened_by(from_env) == ["env-op"]
    from_option = tmp_path / "from-option.db"
    assert _main([*open_, "--journal", str(from_option), "--operator", "opt-op"],
                 env={**env, "IRM_JOURNAL": str(from_env), "IRM_OPERATOR": "env-op"})[0] == 0
    assert _opened_by(from_option) == ["opt-op"]
    code, out, _ = _main(["config", "show", "--json"], env={**env, "IRM_OPERATOR": "env-op"})
    shown = {s["key"]: (s["value"], s["from"]) for s in json.loads(out)["settings"]}
    assert code == 0 and json.loads(out)["file"] == str(cfg)
    assert shown["journal"] == (str(from_file), str(cfg))
    assert shown["operator"] == ("env-op", "environment IRM_OPERATOR")
    assert shown["soak"] == ("60s", "default")


def test_an_unknown_key_or_a_wrong_type_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "irm.toml"
    for text, message in (('operator = "x"\n\njurnal = "/tmp/j.db"\n', f"{cfg}:3: unknown key 'jurnal'"),
                          ('confirm_timeout = "soon"\n', f"{cfg}:1: 'confirm_timeout' must be int"),
                          ('sources = "suricata:/x"\n', f"{cfg}:1: 'sources' must be a list of strings"),
                          ("operator = \n", f"{cfg}: not valid TOML")):
        cfg.write_text(text)
        code, _, err = _main(["status", "--journal", str(tmp_path / "none.db")], env={"IRM_CONFIG": str(cfg)})
        assert code == 2 and err.startswith(f"irm: error: {message}"), err
    code, _, err = _main(["status"], env={"IRM_CONFIG": str(tmp_path / "missing.toml")})
    assert code == 2 and "IRM_CONFIG names" in err
